"""Stochastic gradient descent (``torch.optim.SGD``)."""
import numpy as np

from .optimizer import Optimizer, _fma, _hyper

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay.

    The update is torch's, term for term (``g`` the gradient, ``b`` the momentum buffer)::

        g = -g if maximize else g
        g = g + weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups (dicts).
    lr : float
        Learning rate (default 1e-3, torch's).
    momentum, dampening, weight_decay : float
    nesterov : bool
        Needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool
        Ascend instead of descend.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        lr = _hyper(lr, "lr")
        momentum = _hyper(momentum, "momentum")
        dampening = _hyper(dampening, "dampening", lo=-np.inf)
        weight_decay = _hyper(weight_decay, "weight_decay")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")
        # foreach / differentiable / fused are accepted for torch compatibility; numq has
        # one implementation
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=bool(nesterov),
                        maximize=bool(maximize), foreach=foreach,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One update of every parameter that has a ``grad``; returns ``closure()``'s loss."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in self._params_with_grad(group):
                # scalars round to the parameter dtype first, as torch's scalar arguments
                # do; _fma rounds a * x + y once where torch's CPU kernels fuse it
                g = -p.grad if group["maximize"] else p.grad
                if weight_decay != 0:
                    g = _fma(weight_decay, p.data, g)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(g, dtype=p.data.dtype, copy=True)
                        state["momentum_buffer"] = buf
                    else:
                        buf *= momentum
                        _fma(1 - dampening, g, buf, out=buf)
                    g = _fma(momentum, buf, g) if nesterov else buf
                _fma(-lr, g, p.data, out=p.data)
        return loss
