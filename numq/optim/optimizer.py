"""``Optimizer``: the base class of numq's optimizers (``torch.optim.Optimizer``).

Parameters are :class:`numq.layers.Parameter` objects; ``step()`` updates ``param.data``
in place from ``param.grad`` (parameters whose ``grad`` is None are skipped, as in torch).
Per-parameter state lives in ``self.state[param]`` (a dict of arrays and numbers).
"""
import collections
import copy
import itertools
import numbers
import warnings

import numpy as np

from ..layers.parameter import Parameter

__all__ = ["Optimizer", "required"]


def _fma(a, x, y, out=None):
    """``a * x + y`` rounded once, like the fused multiply-adds of torch's vectorized
    ``add(alpha=)``, ``addcmul`` and ``lerp`` CPU kernels.

    float32 is exact through float64 (the product of two float32 values fits a double;
    the final double rounding only matters in vanishingly rare ties). float64 arrays use
    plain NumPy arithmetic (one extra rounding of the product).
    """
    dt = np.result_type(x, y)
    if dt == np.float32:
        r = np.multiply(np.asarray(a, np.float32), x, dtype=np.float64)
        r += y
    else:
        r = a * x + y
    if out is None:
        return r.astype(dt, copy=False)
    out[...] = r
    return out


class _Required:
    """Marks a hyper-parameter without a default (``torch.optim.optimizer.required``)."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _hyper(value, arg, lo=0.0, hi=None, hi_open=False):
    """A hyper-parameter as a Python float in ``[lo, hi]`` / ``[lo, hi)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{arg} must be a real number; got {type(value).__name__}")
    v = float(value)
    if not (v >= lo) or (hi is not None and (v >= hi if hi_open else v > hi)):
        bound = f"[{lo}, {hi})" if hi_open else (f"[{lo}, {hi}]" if hi is not None else f">= {lo}")
        raise ValueError(f"{arg} must be {'in ' if hi is not None else ''}{bound}; got {value!r}")
    return v


class Optimizer:
    """Base class: holds ``param_groups`` and per-parameter ``state``.

    Parameters
    ----------
    params : iterable
        Parameters, ``(name, Parameter)`` pairs, or dicts (parameter groups) with a
        ``"params"`` entry and optional per-group hyper-parameters.
    defaults : dict
        Hyper-parameters used by groups that don't set them.

    Attributes
    ----------
    param_groups : list of dict
        Each group: ``{"params": [Parameter, ...], <hyper-parameters>}``.
    state : dict
        ``state[param]`` is a dict of that parameter's optimizer state.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Parameters or dicts, but got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError("params must be an ordered collection (a list or a generator); "
                            "got a set, whose order changes between runs")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k not in ("params", "param_names"):
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"``), filling missing hyper-parameters from
        ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict; got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("param_group must have a 'params' entry")
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections "
                            "(a list or a generator), not a set")
        else:
            params = list(params)
        names = None
        if params and all(isinstance(p, tuple) and len(p) == 2 for p in params):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError("optimizer can only optimize numq Parameters; got "
                                f"{type(p).__name__}")
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {k}")
            group.setdefault(k, v)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=2)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's ``grad``: to None (default) or to zeros in place."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure=None):
        """Update the parameters once; ``closure()`` (optional) recomputes and returns the loss."""
        raise TypeError(f"{type(self).__name__} does not define step(); use a subclass "
                        "such as numq.optim.SGD")

    def _closure(self, closure):
        return None if closure is None else closure()

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are replaced by their position across all groups, as in torch; state
        values are the optimizer's own arrays (not copies).
        """
        index = {}
        counter = itertools.count()
        packed_groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = next(counter)
                ids.append(index[id(p)])
            packed["params"] = ids
            packed_groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict):
        """Load a :meth:`state_dict` (arrays are copied and cast to each parameter's dtype)."""
        if not isinstance(state_dict, collections.abc.Mapping) or \
                "state" not in state_dict or "param_groups" not in state_dict:
            raise TypeError("state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        groups = self.param_groups
        if len(saved_groups) != len(groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer ({len(groups)})")
        for g, s in zip(groups, saved_groups):
            if len(g["params"]) != len(s["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group ({len(s['params'])} "
                                 f"vs {len(g['params'])})")
        id_map = dict(zip(itertools.chain.from_iterable(s["params"] for s in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in groups)))
        new_state = collections.defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map:
                continue
            p = id_map[k]
            new_state[p] = {name: self._cast_state(p, name, val) for name, val in v.items()}
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(p, name, val):
        if name == "step":
            return float(np.asarray(val))
        if val is None:
            return None
        if hasattr(val, "detach"):  # a torch tensor: take its values without importing torch
            val = val.detach().cpu().numpy()
        arr = np.asarray(val)
        if arr.dtype.kind == "f":
            if arr.ndim and arr.shape != p.shape:
                raise ValueError(f"state {name!r} has shape {arr.shape}; its parameter has "
                                 f"shape {p.shape}")
            return np.array(arr, dtype=p.dtype, copy=True)
        return copy.deepcopy(val)

    def _params_with_grad(self, group):
        return [p for p in group["params"] if p.grad is not None]
