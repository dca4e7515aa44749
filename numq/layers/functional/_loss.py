"""Losses (``torch.nn.functional.cross_entropy``, ``nll_loss``, ``mse_loss``) and their backward.

Every forward returns the loss (a NumPy scalar of the input's float dtype for
``reduction='mean'``/``'sum'``, an array for ``'none'``). Every ``*_backward`` returns the
gradient of that loss with respect to ``input`` given ``grad_output`` (the gradient of
whatever the loss feeds; ``1.0`` for a training step). A scalar ``grad_output`` with
``reduction='none'`` is broadcast, i.e. it differentiates ``grad_output * loss.sum()``.

The class axis is axis 1 (axis 0 for an unbatched 1-d input), as in torch. Internally
every input is viewed as ``(M, C)`` rows (class axis last) so one code path serves
``(C,)``, ``(N, C)`` and ``(N, C, d1, ...)``.
"""
import warnings

import numpy as np

from ._activation import log_softmax

__all__ = ["cross_entropy", "cross_entropy_backward", "nll_loss", "nll_loss_backward",
           "mse_loss", "mse_loss_backward"]

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ validation helpers
def _reduction(reduction, size_average=None, reduce=None):
    """torch's rule: the deprecated ``size_average``/``reduce`` flags override ``reduction``."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='mean', 'sum' or 'none' instead.", DeprecationWarning,
                      stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")
    return reduction


def _float_input(x, arg="input"):
    """``x`` as a float32/float64 array (float16 is computed in float32)."""
    a = np.asarray(x.data if hasattr(x, "accumulate") else x)
    if a.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return a


def _check_classes(input, name):
    if input.ndim == 0:
        raise ValueError(f"input must have at least 1 dimension (classes) for {name}; "
                         "got a 0-d array")
    C = input.shape[0] if input.ndim == 1 else input.shape[1]
    if C == 0:
        raise ValueError(f"input must have at least one class (size of dim "
                         f"{0 if input.ndim == 1 else 1} > 0) for {name}; got shape {input.shape}")
    return C


def _class_weight(weight, C, dtype):
    if weight is None:
        return None
    w = np.asarray(weight.data if hasattr(weight, "accumulate") else weight)
    if w.dtype.kind != "f":
        raise TypeError(f"weight must be a float array; got dtype {w.dtype}")
    if w.shape != (C,):
        raise ValueError(f"weight must have shape ({C},) (one entry per class); "
                         f"got shape {w.shape}")
    return w.astype(dtype, copy=False)


def _rows(x):
    """View ``(C,)``, ``(N, C)``, ``(N, C, d...)`` as ``(M, C)`` with the class axis last."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unrows(g, shape):
    """Inverse of :func:`_rows` (a C-contiguous array of ``shape``)."""
    if len(shape) <= 2:
        return g.reshape(shape)
    moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return np.ascontiguousarray(np.moveaxis(g.reshape(moved), -1, 1))


def _batch_shape(shape):
    """Shape of a class-index target / an unreduced loss for an input of ``shape``."""
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def _class_target(target, shape, C, ignore_index):
    """Validate integer class targets; return ``(t (M,) int64 with ignored rows set to 0,
    valid (M,) bool)``."""
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices; got dtype {t.dtype}")
    want = _batch_shape(shape)
    if t.shape != want:
        raise ValueError(f"target must have shape {want} for input of shape {tuple(shape)}; "
                         f"got {t.shape}")
    t = t.reshape(-1).astype(np.int64, copy=False)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if bad.any():
        raise ValueError(f"target must hold class indices in [0, {C - 1}] or ignore_index "
                         f"({ignore_index}); got {int(t[bad][0])}")
    return np.where(valid, t, 0), valid


def _ignore_index(ignore_index):
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index,
                                                                    (int, np.integer)):
        raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
    return int(ignore_index)


def _reduce(per_row, reduction, denom, out_shape):
    if reduction == "none":
        return per_row.reshape(out_shape)
    total = per_row.sum(dtype=per_row.dtype)
    if reduction == "sum":
        return per_row.dtype.type(total)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty / all-ignored batch -> nan
        return per_row.dtype.type(total / denom)


def _row_scale(grad_output, reduction, denom, out_shape, dtype):
    """Per-row factor ``d total / d loss_row`` as an (M,) array (or a 0-d array)."""
    g = np.asarray(grad_output, dtype=dtype)
    if reduction == "none":
        if g.ndim != 0 and g.shape != tuple(out_shape):
            raise ValueError(f"grad_output must be a scalar or have the loss's shape "
                             f"{tuple(out_shape)}; got {g.shape}")
        return g.reshape(-1) if g.ndim else g
    if g.size != 1:
        raise ValueError(f"grad_output must be a scalar for reduction={reduction!r}; "
                         f"got shape {g.shape}")
    g = g.reshape(())
    if reduction == "mean":
        # nothing counted (every target ignored, or an empty batch): the loss is nan, but
        # no element contributed to it, so its gradient is zero as in torch
        g = g / np.asarray(denom, dtype=dtype) if denom != 0 else np.zeros((), dtype)
    return g


# ----------------------------------------------------------------------- cross entropy
class _CE:
    """Everything cross-entropy's backward needs (kept by ``CrossEntropyLoss``)."""

    __slots__ = ("shape", "dtype", "logp", "t", "valid", "probs", "w", "reduction",
                 "denom", "eps", "out_shape")


def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    """Forward; returns ``(loss, ctx)``."""
    x = _float_input(input)
    C = _check_classes(x, "cross_entropy")
    ignore_index = _ignore_index(ignore_index)
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must be in [0.0, 1.0]; got {label_smoothing!r}")
    dt = x.dtype
    w = _class_weight(weight, C, dt)
    ctx = _CE()
    ctx.shape, ctx.dtype, ctx.w, ctx.reduction, ctx.eps = x.shape, dt, w, reduction, eps
    logp = _rows(log_softmax(x, dim=0 if x.ndim == 1 else 1))
    ctx.logp = logp
    ctx.out_shape = _batch_shape(x.shape)
    t_arr = np.asarray(target)
    if t_arr.dtype.kind == "f":
        # class probabilities: same shape as input; mean divides by the number of rows
        if t_arr.shape != x.shape:
            raise ValueError(f"target must be class indices (an integer array of shape "
                             f"{_batch_shape(x.shape)}) or class probabilities (a float array "
                             f"of the input's shape {x.shape}); got a {t_arr.dtype} array of "
                             f"shape {t_arr.shape}")
        q = _rows(t_arr.astype(dt, copy=False))
        if eps > 0:
            q = q * dt.type(1 - eps) + dt.type(eps / C)
        a = q * w if w is not None else q
        ctx.probs, ctx.t, ctx.valid = a, None, None
        per_row = -(logp * a).sum(axis=1)
        ctx.denom = logp.shape[0]
        return _reduce(per_row, reduction, ctx.denom, ctx.out_shape), ctx
    if t_arr.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices or a float array "
                        f"of class probabilities; got dtype {t_arr.dtype}")
    t, valid = _class_target(t_arr, x.shape, C, ignore_index)
    ctx.t, ctx.valid, ctx.probs = t, valid, None
    rows = np.arange(t.size)
    wy = (w[t] if w is not None else np.ones(t.size, dt)) * valid
    per_row = -logp[rows, t] * wy
    if eps > 0:
        smooth = -(logp * w).sum(axis=1) if w is not None else -logp.sum(axis=1)
        smooth *= valid
        per_row = per_row * dt.type(1 - eps) + smooth * dt.type(eps / C)
    ctx.denom = wy.sum(dtype=dt)
    return _reduce(per_row.astype(dt, copy=False), reduction, ctx.denom, ctx.out_shape), ctx


def _cross_entropy_grad(grad_output, ctx):
    g = _row_scale(grad_output, ctx.reduction, ctx.denom, ctx.out_shape, ctx.dtype)
    g = g.reshape(-1, 1) if g.ndim else g
    p = np.exp(ctx.logp)
    dt = ctx.dtype
    if ctx.probs is not None:
        a = ctx.probs
        grad = p * a.sum(axis=1, keepdims=True)
        grad -= a
        grad *= g
        return _unrows(grad, ctx.shape)
    # class indices: d loss_row / d x = S p - a with a = (1-eps) w_y onehot(y) + eps/C w
    t, valid, w, eps = ctx.t, ctx.valid, ctx.w, ctx.eps
    C = p.shape[1]
    wy = (w[t] if w is not None else np.ones(t.size, dt)) * valid
    W = w.sum(dtype=dt) if w is not None else dt.type(C)
    S = wy * dt.type(1 - eps) + valid * (W * dt.type(eps / C))
    grad = p * S[:, None]
    if eps > 0:
        grad -= (valid[:, None] * dt.type(eps / C)) * (w[None, :] if w is not None else 1)
    grad[np.arange(t.size), t] -= wy * dt.type(1 - eps)
    grad *= g
    return _unrows(grad, ctx.shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits ``input`` and ``target`` (``torch.nn.functional.cross_entropy``).

    Parameters
    ----------
    input : ndarray
        Unnormalised scores, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
    target : ndarray
        Class indices (integer, shape ``()``, ``(N,)`` or ``(N, d1, ...)``), or class
        probabilities (float, the input's shape).
    weight : ndarray, optional
        Per-class rescaling weights, shape ``(C,)``.
    size_average, reduce : bool, optional
        Deprecated; override ``reduction`` as in torch.
    ignore_index : int
        Class-index targets equal to it contribute nothing (nor to the mean's denominator).
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by the summed weights of the non-ignored targets (class
        indices) or by the number of rows (probabilities).
    label_smoothing : float
        In ``[0, 1]``; mixes the target with the uniform distribution.

    Returns
    -------
    numpy scalar or ndarray
        The loss, in the input's float dtype.
    """
    reduction = _reduction(reduction, size_average, reduce)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)[0]


def cross_entropy_backward(grad_output, input, target, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0):
    """Gradient of :func:`cross_entropy` with respect to ``input``.

    Parameters
    ----------
    grad_output : float or ndarray
        Gradient of the loss (a scalar; for ``reduction='none'`` a scalar or an array of
        the loss's shape).
    input, target, weight, ignore_index, reduction, label_smoothing
        As given to :func:`cross_entropy`.

    Returns
    -------
    ndarray
        Same shape and dtype as the (float32/float64) input.
    """
    reduction = _reduction(reduction)
    return _cross_entropy_grad(grad_output, _cross_entropy(input, target, weight, ignore_index,
                                                           reduction, label_smoothing)[1])


# ---------------------------------------------------------------------------- NLL loss
class _NLL:
    __slots__ = ("shape", "dtype", "t", "wy", "reduction", "denom", "out_shape")


def _nll_loss(input, target, weight, ignore_index, reduction):
    x = _float_input(input)
    C = _check_classes(x, "nll_loss")
    ignore_index = _ignore_index(ignore_index)
    t_arr = np.asarray(target)
    if t_arr.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices; got dtype "
                        f"{t_arr.dtype}")
    dt = x.dtype
    w = _class_weight(weight, C, dt)
    t, valid = _class_target(t_arr, x.shape, C, ignore_index)
    wy = (w[t] if w is not None else np.ones(t.size, dt)) * valid
    per_row = -_rows(x)[np.arange(t.size), t] * wy
    ctx = _NLL()
    ctx.shape, ctx.dtype, ctx.t, ctx.wy, ctx.reduction = x.shape, dt, t, wy, reduction
    ctx.denom = wy.sum(dtype=dt)
    ctx.out_shape = _batch_shape(x.shape)
    return _reduce(per_row, reduction, ctx.denom, ctx.out_shape), ctx


def _nll_loss_grad(grad_output, ctx):
    g = _row_scale(grad_output, ctx.reduction, ctx.denom, ctx.out_shape, ctx.dtype)
    rows_shape = (int(np.prod(_batch_shape(ctx.shape))), ctx.shape[0 if len(ctx.shape) == 1 else 1])
    grad = np.zeros(rows_shape, ctx.dtype)
    grad[np.arange(ctx.t.size), ctx.t] = -ctx.wy * g
    return _unrows(grad, ctx.shape)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (``torch.nn.functional.nll_loss``).

    Parameters
    ----------
    input : ndarray
        Log-probabilities, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
    target : ndarray
        Integer class indices, shape ``()``, ``(N,)`` or ``(N, d1, ...)``.
    weight : ndarray, optional
        Per-class weights, shape ``(C,)``.
    size_average, reduce : bool, optional
        Deprecated; override ``reduction`` as in torch.
    ignore_index : int
        Targets equal to it contribute nothing.
    reduction : {'mean', 'sum', 'none'}
        ``'mean'`` divides by the summed weights of the non-ignored targets.

    Returns
    -------
    numpy scalar or ndarray
    """
    reduction = _reduction(reduction, size_average, reduce)
    return _nll_loss(input, target, weight, ignore_index, reduction)[0]


def nll_loss_backward(grad_output, input, target, weight=None, ignore_index=-100,
                      reduction="mean"):
    """Gradient of :func:`nll_loss` with respect to ``input`` (same shape as ``input``)."""
    reduction = _reduction(reduction)
    return _nll_loss_grad(grad_output, _nll_loss(input, target, weight, ignore_index,
                                                 reduction)[1])


# ---------------------------------------------------------------------------- MSE loss
class _MSE:
    __slots__ = ("shape", "dtype", "diff", "weight", "reduction", "denom")


def _mse_loss(input, target, reduction, weight):
    x = _float_input(input)
    dt = x.dtype
    t = np.asarray(target.data if hasattr(target, "accumulate") else target)
    if t.dtype.kind not in "fiu":
        raise TypeError(f"target must be a real array; got dtype {t.dtype}")
    if t.shape != x.shape:
        warnings.warn(f"Using a target size ({t.shape}) that is different to the input size "
                      f"({x.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)
        try:
            np.broadcast_shapes(x.shape, t.shape)
        except ValueError:
            raise ValueError(f"target shape {t.shape} does not broadcast with input shape "
                             f"{x.shape}") from None
    diff = x - t.astype(dt, copy=False)
    sq = diff * diff
    ctx = _MSE()
    ctx.shape, ctx.dtype, ctx.diff, ctx.reduction = x.shape, dt, diff, reduction
    if weight is not None:
        wt = np.asarray(weight.data if hasattr(weight, "accumulate") else weight)
        if wt.dtype.kind != "f":
            raise TypeError(f"weight must be a float array; got dtype {wt.dtype}")
        if wt.shape != x.shape:
            raise ValueError(f"weight must have the input's shape {x.shape}; got {wt.shape}")
        wt = wt.astype(dt, copy=False)
        sq = sq * wt
        ctx.weight, ctx.denom = wt, wt.sum(dtype=dt)
    else:
        ctx.weight, ctx.denom = None, sq.size
    return _reduce(sq.reshape(-1), reduction, ctx.denom, sq.shape), ctx


def _mse_loss_grad(grad_output, ctx):
    g = _row_scale(grad_output, ctx.reduction, ctx.denom, ctx.diff.shape, ctx.dtype)
    g = g.reshape(ctx.diff.shape) if g.ndim else g
    grad = ctx.diff * ctx.dtype.type(2)
    if ctx.weight is not None:
        grad *= ctx.weight
    grad *= g
    if grad.shape != tuple(ctx.shape):  # the input was broadcast against the target: sum back
        lead = grad.ndim - len(ctx.shape)
        grad = grad.sum(axis=tuple(range(lead)))
        keep = tuple(i for i, n in enumerate(ctx.shape) if n == 1 and grad.shape[i] != 1)
        if keep:
            grad = grad.sum(axis=keep, keepdims=True)
    return np.ascontiguousarray(grad, dtype=ctx.dtype)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (``torch.nn.functional.mse_loss``).

    Parameters
    ----------
    input, target : ndarray
        Predictions and targets; a target of another shape is broadcast (with torch's
        warning).
    size_average, reduce : bool, optional
        Deprecated; override ``reduction`` as in torch.
    reduction : {'mean', 'sum', 'none'}
    weight : ndarray, optional
        Element weights of the input's shape; ``'mean'`` then divides by their sum.

    Returns
    -------
    numpy scalar or ndarray
    """
    reduction = _reduction(reduction, size_average, reduce)
    return _mse_loss(input, target, reduction, weight)[0]


def mse_loss_backward(grad_output, input, target, reduction="mean", weight=None):
    """Gradient of :func:`mse_loss` with respect to ``input`` (same shape as ``input``)."""
    reduction = _reduction(reduction)
    return _mse_loss_grad(grad_output, _mse_loss(input, target, reduction, weight)[1])
