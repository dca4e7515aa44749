"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``)."""
import numpy as np

from .optimizer import Optimizer, _fma, _hyper

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, optionally with AMSGrad and L2 (or decoupled) weight decay.

    The update is torch's single-tensor implementation, term for term (``t`` the step)::

        g = -g if maximize else g
        p = p * (1 - lr * weight_decay)          # decoupled (AdamW), or else
        g = g + weight_decay * p                 # L2 (Adam)
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                      # amsgrad: use vmax instead of v below
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps
        p = p - lr / (1 - beta1**t) * m / denom

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups (dicts).
    lr : float
        Learning rate (default 1e-3).
    betas : (float, float)
        Decay rates of the first and second moment averages, each in ``[0, 1)``.
    eps : float
        Added to the denominator.
    weight_decay : float
    amsgrad : bool
    maximize : bool
    decoupled_weight_decay : bool
        True gives AdamW.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        lr = _hyper(lr, "lr")
        eps = _hyper(eps, "eps")
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of floats; got {betas!r}") from None
        betas = (_hyper(b1, "betas[0]", hi=1.0, hi_open=True),
                 _hyper(b2, "betas[1]", hi=1.0, hi_open=True))
        weight_decay = _hyper(weight_decay, "weight_decay")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=bool(amsgrad), maximize=bool(maximize), foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=bool(decoupled_weight_decay))
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One update of every parameter that has a ``grad``; returns ``closure()``'s loss."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in self._params_with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                # scalars round to the parameter dtype first, as torch's scalar arguments
                # do; _fma rounds a * x + y once where torch's CPU kernels fuse it
                g = -p.grad if group["maximize"] else p.grad
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] = step = float(state["step"]) + 1.0
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = _fma(weight_decay, p.data, g)
                # m.lerp_(g, 1 - beta1); torch switches formula at weight 0.5
                w = np.asarray(1 - beta1, dtype=m.dtype)
                if abs(w) < 0.5:
                    _fma(w, g - m, m, out=m)
                else:
                    _fma(w - 1, g - m, g, out=m)
                # v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                v *= beta2
                _fma((1 - beta2) * g, g, v, out=v)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                step_size = lr / bias_correction1
                if amsgrad:
                    vmax = state["max_exp_avg_sq"]
                    np.maximum(vmax, v, out=vmax)
                    v = vmax
                denom = np.sqrt(v)
                denom /= bias_correction2_sqrt
                denom += eps
                upd = (-step_size) * m
                upd /= denom
                p.data += upd
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=1e-2``), as ``torch.optim.AdamW``.

    See :class:`Adam` for the parameters and the update.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for g in self.param_groups:  # an AdamW stays decoupled whatever was saved
            g["decoupled_weight_decay"] = True
