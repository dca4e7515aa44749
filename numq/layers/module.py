"""``Module``: the parts of ``torch.nn.Module`` that models and quantization use.

Training is explicit: a layer's ``forward`` saves what its ``backward`` needs in ONE
attribute, ``self._saved`` (only in training mode), and ``backward(grad_out)`` returns
the input gradient and accumulates parameter ``.grad``. A container that calls the same
layer twice saves ``layer._saved`` after each call and restores it before the matching
backward (see :class:`numq.layers.Sequential`).
"""
import collections
import itertools
import weakref

import numpy as np

from .parameter import Parameter

__all__ = ["Module", "RemovableHandle", "IncompatibleKeys"]

IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = weakref.ref(hooks) if hooks is not None else None
        self.id = next(RemovableHandle._ids)

    def remove(self):
        hooks = self._hooks() if self._hooks is not None else None
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _HookDict(collections.OrderedDict):
    """An OrderedDict that can be weak-referenced by its handles."""


class Module:
    """Base class of every numq layer and model.

    Subclasses call ``super().__init__()`` first, then assign :class:`Parameter`,
    sub-``Module`` and buffer attributes; they define ``forward`` and, when trainable,
    ``backward``.
    """

    _saved = None

    def __init__(self):
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = collections.OrderedDict()
        d["_buffers"] = collections.OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = collections.OrderedDict()
        d["_forward_pre_hooks"] = _HookDict()
        d["_forward_hooks"] = _HookDict()
        d["_saved"] = None

    # ------------------------------------------------------------ registration
    def _check_name(self, name, kind):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a str; got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f'{kind} name can\'t be empty or contain "."; got {name!r}')

    def register_parameter(self, name, param):
        """Add a parameter (or ``None``, a declared-but-absent parameter such as a bias)."""
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"param must be a numq Parameter or None; got {type(param).__name__}")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute {name!r} already exists")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state saved in ``state_dict`` (unless not persistent), not trained."""
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"tensor must be a numpy array or None; got {type(tensor).__name__}")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Add a child module (or ``None``)."""
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"module must be a numq Module or None; got {type(module).__name__}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The module at dotted path ``target`` (``""`` is this module)."""
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {item!r}")
            mod = mod._modules[item]
        return mod

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name, d, self._buffers, self._modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(numq Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, d, self._parameters, self._buffers)
            self._modules[name] = value
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            d["_modules"][name] = None
        elif params is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _remove_from(name, d, *dicts):
        d.pop(name, None)
        for dd in dicts:
            dd.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            sub = d.get(key)
            if sub is not None and name in sub:
                return sub[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(key, {}):
                del self.__dict__[key][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # --------------------------------------------------------------- calling
    def register_forward_pre_hook(self, hook):
        """``hook(module, args) -> None or new args`` runs before ``forward``."""
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = hook
        return h

    def register_forward_hook(self, hook):
        """``hook(module, args, output) -> None or new output`` runs after ``forward``."""
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = hook
        return h

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            res = hook(self, args)
            if res is not None:
                args = res if isinstance(res, tuple) else (res,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            res = hook(self, args, out)
            if res is not None:
                out = res
        return out

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def backward(self, grad_output):
        """Input gradient for the last training-mode forward; accumulates parameter grads."""
        raise TypeError(f"{type(self).__name__} does not define backward()")

    def _take_saved(self):
        """Return and clear ``self._saved``; a clear error if no forward saved anything."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called without a preceding "
                               "forward() in training mode (or called twice)")
        self._saved = None
        return saved

    # ------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yield ``(name, module)`` for this module and every descendant."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from mod.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, attr, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mprefix, mod in mods:
            for name, v in getattr(mod, attr).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mprefix + ("." if mprefix else "") + name, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield ``(dotted_name, Parameter)``; shared parameters once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively), then on this module."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------- mode
    def train(self, mode=True):
        """Set training mode here and in every descendant."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be a bool; got {type(mode).__name__}")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's ``grad`` (to None, or to zeros)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype):
        """Cast floating parameters and buffers to ``dtype`` (a NumPy float dtype)."""
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"dtype must be a float dtype; got {dt}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dt)
                    p.grad = None if p.grad is None else p.grad.astype(dt)
            for k, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[k] = b.astype(dt)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers as ``{dotted_name: ndarray}`` (torch's keys).

        The arrays are the module's own (not copies), as torch returns tensors that share
        storage; copy them to snapshot.
        """
        if destination is None:
            destination = collections.OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        local = [(k, p, True) for k, p in self._parameters.items() if p is not None]
        local += [(k, b, False) for k, b in self._buffers.items()
                  if b is not None and k not in self._non_persistent]
        for name, cur, is_param in local:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            val = np.asarray(state_dict[key].data if isinstance(state_dict[key], Parameter)
                             else state_dict[key])
            target = cur.data if is_param else cur
            if val.shape != target.shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{val.shape} from checkpoint, the shape in current model "
                                  f"is {target.shape}.")
                continue
            if val.dtype.kind not in "fiub":
                error_msgs.append(f"{key}: expected a numeric array, got dtype {val.dtype}")
                continue
            target[...] = val

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Returns ``(missing_keys, unexpected_keys)``. With ``strict=True`` (default) any
        missing or unexpected key raises ``KeyError``; a shape mismatch always raises
        ``ValueError``. Values are copied in place (cast to the existing dtype).
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"state_dict must be a mapping; got {type(state_dict).__name__}")
        missing, unexpected, errors = [], [], []
        expected = set()
        for prefix, mod in self.named_modules(remove_duplicate=False):
            p = prefix + "." if prefix else ""
            mod._load_from_state_dict(state_dict, p, strict, missing, unexpected, errors)
            expected.update(p + k for k, v in mod._parameters.items() if v is not None)
            expected.update(p + k for k, v in mod._buffers.items()
                            if v is not None and k not in mod._non_persistent)
            expected.update(getattr(mod, "_extra_state_keys", lambda p: ())(p))
        unexpected.extend(k for k in state_dict if k not in expected)
        missing = list(dict.fromkeys(missing))
        if errors:
            raise ValueError("Error(s) in loading state_dict for "
                             f"{type(self).__name__}:\n\t" + "\n\t".join(errors))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
            if unexpected:
                parts.append("Unexpected key(s) in state_dict: "
                             + ", ".join(map(repr, unexpected)))
            raise KeyError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                           + ". ".join(parts))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        child = []
        for name, m in self._modules.items():
            r = repr(m).replace("\n", "\n  ")
            child.append(f"({name}): {r}")
        body = lines + child
        if not body:
            return f"{type(self).__name__}()"
        if len(body) == 1 and not child:
            return f"{type(self).__name__}({body[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"
