"""Normalization functional forms (``torch.nn.functional``) and their backward.

``batch_norm``, ``instance_norm``, ``group_norm`` and ``layer_norm`` normalise with the
*biased* variance of the batch (``(x - mean) / sqrt(var + eps)``) and then apply an
optional per-channel (per-element for ``layer_norm``) affine ``* weight + bias``.
Running statistics, when given and updated, are changed *in place* with the *unbiased*
variance, as torch does: ``running = (1 - momentum) * running + momentum * batch_stat``.

Compute dtype: the dtype of the first given array among ``weight``, ``bias``,
``running_mean``, ``running_var`` (a layer's parameter dtype); without any, the input's
(float64 stays float64, other floats become float32). The input is cast to it.

Each ``f_backward(grad_output, input, ...)`` takes the forward's arguments and returns
``(grad_input, grad_weight, grad_bias)`` (``None`` for an absent weight / bias). The
optional ``save_mean`` / ``save_invstd`` (the batch statistics a forward computed, as
returned by the layers' private helpers) skip recomputing them.

Sums run over the contiguous last axis first (NumPy's pairwise summation) and only then
over the short outer axes, which keeps float32 statistics accurate for large inputs.
"""
import numbers

import numpy as np

from ._activation import _as_dtype, _as_float, _real


def _grad_like(grad_output, x):
    """``grad_output`` in ``x``'s dtype; it must have ``x``'s shape."""
    g = _as_dtype(grad_output, x.dtype, "grad_output")
    if g.shape != x.shape:
        raise ValueError(f"grad_output must have the shape of input {x.shape}; got {g.shape}")
    return g

__all__ = ["batch_norm", "instance_norm", "group_norm", "layer_norm",
           "batch_norm_backward", "instance_norm_backward", "group_norm_backward",
           "layer_norm_backward"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


# --------------------------------------------------------------------------- checks
def _compute_dtype(*arrays):
    for a in arrays:
        if a is not None:
            dt = np.asarray(a).dtype
            if dt.kind != "f":
                break  # reported by _vec with the argument's name
            return _F64 if dt == _F64 else _F32
    return None


def _input(input, dtype):
    x = _as_float(input)
    if dtype is not None and x.dtype != dtype:
        x = x.astype(dtype)
    return x


def _vec(v, arg, shape, dtype, what):
    """Optional weight/bias/statistic: a float array of ``shape`` cast to ``dtype``."""
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{arg} must have shape {shape} ({what}); got {a.shape}")
    return a if a.dtype == dtype else a.astype(dtype)


def _running(v, arg, n, update):
    """A running statistic: ``None`` or a float ndarray of shape (n,) (writeable if updated)."""
    if v is None:
        return None
    if update and not isinstance(v, np.ndarray):
        raise TypeError(f"{arg} must be a float numpy array (updated in place) or None; got "
                        f"{type(v).__name__}")
    v = np.asarray(v)
    if v.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array or None; got dtype {v.dtype}")
    if v.shape != (n,):
        raise ValueError(f"{arg} must have shape ({n},) (one entry per input channel, "
                         f"input.shape[1] = {n}); got {v.shape}")
    if update and not v.flags.writeable:
        raise ValueError(f"{arg} must be writeable: it is updated in place in training")
    return v


def _eps(eps):
    e = _real(eps, "eps")
    if e < 0:
        raise ValueError(f"eps must be >= 0; got {e}")
    return e


def _momentum(momentum):
    return _real(momentum, "momentum")


def _ndim_at_least(x, n, name):
    if x.ndim < n:
        raise ValueError(f"{name}: input must have at least {n} dimensions (N, C, ...); "
                         f"got shape {x.shape}")


def _check_rank(input, allowed, layer):
    """Layer rank check with torch's message, e.g. ``expected 4D input (got 3D input)``."""
    nd = np.ndim(input)
    if nd not in allowed:
        want = " or ".join(f"{d}D" for d in allowed)
        raise ValueError(f"{layer}: expected {want} input (got {nd}D input)")


def _bool(v, arg):
    if not isinstance(v, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"{arg} must be a bool; got {type(v).__name__}")
    return bool(v)


# ------------------------------------------------------------------------ kernels
def _ncs(a):
    """(N, C, S) view of an (N, C, *) array (S = product of the trailing sizes; 1 if none)."""
    return a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:], dtype=np.int64)))


def _chan_sum(a3):
    """Per-channel sum of an (N, C, S) array: last axis first (pairwise), then N."""
    return a3.sum(axis=2).sum(axis=0)


def _bn_stats(x3, eps):
    """Biased batch mean / variance per channel of (N, C, S) and ``1/sqrt(var + eps)``."""
    cnt = x3.shape[0] * x3.shape[2]
    mean = _chan_sum(x3) / cnt
    xc = x3 - mean[:, None]
    var = _chan_sum(np.square(xc)) / cnt
    return mean, var, 1.0 / np.sqrt(var + eps), xc


def _row_stats(x2, eps):
    """Per-row biased mean / variance of (R, K) and ``1/sqrt(var + eps)``; centred rows."""
    mean = x2.mean(axis=1)
    xc = x2 - mean[:, None]
    var = np.square(xc).mean(axis=1)
    return mean, var, 1.0 / np.sqrt(var + eps), xc


def _affine_chan(xhat3, w, b):
    """In place: ``xhat3 * w[c] + b[c]`` on an (N, C, S) array."""
    if w is not None:
        xhat3 *= w[:, None]
    if b is not None:
        xhat3 += b[:, None]
    return xhat3


def _update_running(running, batch_stat, momentum):
    # in place so state_dict references stay valid (torch updates its buffers in place)
    running *= (1.0 - momentum)
    running += (momentum * batch_stat).astype(running.dtype, copy=False)


def _empty_grads(x, w, b):
    """Gradients for an empty input: all zeros (nothing flowed through the op)."""
    return (np.zeros_like(x), None if w is None else np.zeros_like(w),
            None if b is None else np.zeros_like(b))


def _rows_backward(dxhat2, xhat2, invstd):
    """Gradient through row normalisation of (R, K) rows.

    ``invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` per row. Overwrites ``xhat2`` (a scratch copy) with the result.
    """
    k = xhat2.shape[1]
    mean_d = dxhat2.sum(axis=1) / k
    mean_dx = (dxhat2 * xhat2).sum(axis=1) / k
    xhat2 *= -mean_dx[:, None]
    xhat2 += dxhat2
    xhat2 -= mean_d[:, None]
    xhat2 *= invstd[:, None]
    return xhat2


# --------------------------------------------------------------------- batch_norm
def _bn_prepare(input, running_mean, running_var, weight, bias, training):
    dtype = _compute_dtype(weight, bias, running_mean, running_var)
    x = _input(input, dtype)
    _ndim_at_least(x, 2, "batch_norm")
    dtype = x.dtype
    c = x.shape[1]
    training = _bool(training, "training")
    rm = _running(running_mean, "running_mean", c, training)
    rv = _running(running_var, "running_var", c, training)
    w = _vec(weight, "weight", (c,), dtype, "one entry per input channel, input.shape[1]")
    b = _vec(bias, "bias", (c,), dtype, "one entry per input channel, input.shape[1]")
    return x, rm, rv, w, b, training


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    """:func:`batch_norm` returning ``(out, x, save_mean, save_invstd)`` (x: the cast input)."""
    x, rm, rv, w, b, training = _bn_prepare(input, running_mean, running_var, weight, bias,
                                            training)
    eps = _eps(eps)
    momentum = _momentum(momentum)
    n, c = x.shape[:2]
    x3 = _ncs(x)
    if training:
        if n * x3.shape[2] == 1:
            raise ValueError("Expected more than 1 value per channel when training, got "
                             f"input size {x.shape}")
        cnt = n * x3.shape[2]
        if cnt == 0:
            raise ValueError(f"batch_norm: input must not be empty in training; got shape "
                             f"{x.shape}")
        mean, var, invstd, xhat = _bn_stats(x3, eps)
        if rm is not None:
            _update_running(rm, mean, momentum)
        if rv is not None:
            _update_running(rv, var * (cnt / (cnt - 1)), momentum)
        xhat *= invstd[:, None]
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm: running_mean and running_var must be given when "
                             "training=False (they normalise the input)")
        mean = rm.astype(x.dtype, copy=False)
        invstd = 1.0 / np.sqrt(rv.astype(x.dtype, copy=False) + x.dtype.type(eps))
        xhat = (x3 - mean[:, None]) * invstd[:, None]
    out = _affine_chan(xhat, w, b).reshape(x.shape)
    return out, x, mean, invstd


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over all axes but the channel axis 1 (``F.batch_norm``).

    Parameters
    ----------
    input : ndarray, shape (N, C, *)
    running_mean, running_var : ndarray of shape (C,) or None
        In training they are updated in place (if given); otherwise they normalise.
    weight, bias : ndarray of shape (C,) or None
    training : bool
        Normalise with the batch statistics (and update the running ones).
    momentum : float
        Weight of the batch statistic in the running update.
    eps : float
        Added to the variance.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum,
                       eps)[0]


def _chan_affine_grads(g3, xhat3, has_w, has_b):
    gw = _chan_sum(g3 * xhat3) if has_w else None
    gb = _chan_sum(g3) if has_b else None
    return gw, gb


def batch_norm_backward(grad_output, input, running_mean, running_var, weight=None, bias=None,
                        training=False, eps=1e-5, *, save_mean=None, save_invstd=None):
    """Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``training`` says which statistics the forward used (batch or running); the running
    statistics are not changed. ``save_mean`` / ``save_invstd`` (shape (C,)) are the batch
    statistics of the forward, recomputed from ``input`` when not given.
    """
    x, rm, rv, w, b, _ = _bn_prepare(input, running_mean, running_var, weight, bias, False)
    eps = _eps(eps)
    g = _grad_like(grad_output, x)
    n, c = x.shape[:2]
    x3 = _ncs(x)
    g3 = _ncs(g)
    training = _bool(training, "training")
    if training:
        if save_mean is None or save_invstd is None:
            mean, _, invstd, _ = _bn_stats(x3, eps)
        else:
            mean = _vec(save_mean, "save_mean", (c,), x.dtype, "the forward's batch mean")
            invstd = _vec(save_invstd, "save_invstd", (c,), x.dtype, "the forward's 1/std")
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm_backward: running_mean and running_var must be given "
                             "when training=False")
        mean = rm.astype(x.dtype, copy=False)
        invstd = 1.0 / np.sqrt(rv.astype(x.dtype, copy=False) + x.dtype.type(eps))
    xhat = (x3 - mean[:, None]) * invstd[:, None]
    gw, gb = _chan_affine_grads(g3, xhat, w is not None, b is not None)
    scale = invstd if w is None else invstd * w
    if not training:
        gi = g3 * scale[:, None]
    else:
        cnt = n * x3.shape[2]
        mean_g = _chan_sum(g3) / cnt
        mean_gx = (gw if gw is not None else _chan_sum(g3 * xhat)) / cnt
        xhat *= -mean_gx[:, None]
        xhat += g3
        xhat -= mean_g[:, None]
        xhat *= scale[:, None]
        gi = xhat
    return gi.reshape(x.shape), gw, gb


# ------------------------------------------------------------------ instance_norm
def _in_prepare(input, running_mean, running_var, weight, bias, use_input_stats):
    dtype = _compute_dtype(weight, bias, running_mean, running_var)
    x = _input(input, dtype)
    _ndim_at_least(x, 3, "instance_norm")
    c = x.shape[1]
    use = _bool(use_input_stats, "use_input_stats")
    rm = _running(running_mean, "running_mean", c, use)
    rv = _running(running_var, "running_var", c, use)
    w = _vec(weight, "weight", (c,), x.dtype, "one entry per input channel, input.shape[1]")
    b = _vec(bias, "bias", (c,), x.dtype, "one entry per input channel, input.shape[1]")
    return x, rm, rv, w, b, use


def _instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                   use_input_stats=True, momentum=0.1, eps=1e-5):
    """:func:`instance_norm` returning ``(out, x, save_mean, save_invstd)``; stats (N, C)."""
    x, rm, rv, w, b, use = _in_prepare(input, running_mean, running_var, weight, bias,
                                       use_input_stats)
    eps = _eps(eps)
    momentum = _momentum(momentum)
    n, c = x.shape[:2]
    x3 = _ncs(x)
    s = x3.shape[2]
    if not use:
        if rm is None or rv is None:
            raise ValueError("instance_norm: running_mean and running_var must be given when "
                             "use_input_stats=False")
        mean = rm.astype(x.dtype, copy=False)
        invstd = 1.0 / np.sqrt(rv.astype(x.dtype, copy=False) + x.dtype.type(eps))
        xhat = (x3 - mean[:, None]) * invstd[:, None]
        return _affine_chan(xhat, w, b).reshape(x.shape), x, mean, invstd
    if s == 1:
        raise ValueError("Expected more than 1 spatial element when training, got input size "
                         f"{x.shape}")
    if x.size == 0:
        return x.copy(), x, np.zeros((n, c), x.dtype), np.zeros((n, c), x.dtype)
    mean, var, invstd, xhat = _row_stats(x3.reshape(n * c, s), eps)
    # torch runs batch_norm on (1, N*C, ...) with the running stats repeated N times, then
    # averages the N updated copies: the update uses the batch-mean of the instance stats
    if rm is not None:
        _update_running(rm, mean.reshape(n, c).mean(axis=0), momentum)
    if rv is not None:
        _update_running(rv, (var * (s / (s - 1))).reshape(n, c).mean(axis=0), momentum)
    xhat *= invstd[:, None]
    out = _affine_chan(xhat.reshape(n, c, s), w, b).reshape(x.shape)
    return out, x, mean.reshape(n, c), invstd.reshape(n, c)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance normalisation: each (sample, channel) over its spatial axes (``F.instance_norm``).

    Parameters
    ----------
    input : ndarray, shape (N, C, *spatial) with at least one spatial axis
    running_mean, running_var : ndarray of shape (C,) or None
        Updated in place when ``use_input_stats`` (with the batch-mean of the instance
        statistics); used to normalise when not.
    weight, bias : ndarray of shape (C,) or None
    use_input_stats : bool
    momentum, eps : float
    """
    return _instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                          momentum, eps)[0]


def instance_norm_backward(grad_output, input, running_mean=None, running_var=None,
                           weight=None, bias=None, use_input_stats=True, eps=1e-5, *,
                           save_mean=None, save_invstd=None):
    """Gradients of :func:`instance_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``save_mean`` / ``save_invstd``: the forward's instance statistics, shape (N, C).
    """
    use = _bool(use_input_stats, "use_input_stats")
    if not use:
        return batch_norm_backward(grad_output, input, running_mean, running_var, weight, bias,
                                   False, eps)
    x, _, _, w, b, _ = _in_prepare(input, running_mean, running_var, weight, bias, False)
    eps = _eps(eps)
    g = _grad_like(grad_output, x)
    n, c = x.shape[:2]
    x3 = _ncs(x)
    g3 = _ncs(g)
    s = x3.shape[2]
    if x.size == 0:
        return _empty_grads(x, w, b)
    if save_mean is None or save_invstd is None:
        mean, _, invstd, _ = _row_stats(x3.reshape(n * c, s), eps)
    else:
        mean = _vec(save_mean, "save_mean", (n, c), x.dtype, "the forward's (N, C) means")
        invstd = _vec(save_invstd, "save_invstd", (n, c), x.dtype, "the forward's 1/std")
        mean, invstd = mean.reshape(-1), invstd.reshape(-1)
    xhat3 = (x3 - mean.reshape(n, c, 1)) * invstd.reshape(n, c, 1)
    gw, gb = _chan_affine_grads(g3, xhat3, w is not None, b is not None)
    dxhat = g3 if w is None else g3 * w[:, None]
    gi = _rows_backward(dxhat.reshape(n * c, s), xhat3.reshape(n * c, s), invstd)
    return gi.reshape(x.shape), gw, gb


# -------------------------------------------------------------------- group_norm
def _gn_prepare(input, num_groups, weight, bias):
    dtype = _compute_dtype(weight, bias)
    x = _input(input, dtype)
    _ndim_at_least(x, 2, "group_norm")
    if isinstance(num_groups, (bool, np.bool_)) or not isinstance(num_groups, numbers.Integral):
        raise TypeError(f"num_groups must be an int; got {type(num_groups).__name__}")
    groups = int(num_groups)
    c = x.shape[1]
    if groups <= 0:
        raise ValueError(f"num_groups must be positive; got {groups}")
    if c % groups:
        raise ValueError(f"group_norm: the number of input channels (input.shape[1] = {c}) "
                         f"must be divisible by num_groups ({groups}); input shape {x.shape}")
    w = _vec(weight, "weight", (c,), x.dtype, "one entry per input channel, input.shape[1]")
    b = _vec(bias, "bias", (c,), x.dtype, "one entry per input channel, input.shape[1]")
    return x, groups, w, b


def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """:func:`group_norm` returning ``(out, x, save_mean, save_invstd)``; stats (N, G)."""
    x, groups, w, b = _gn_prepare(input, num_groups, weight, bias)
    eps = _eps(eps)
    n, c = x.shape[:2]
    if x.size == 0:
        return x.copy(), x, np.zeros((n, groups), x.dtype), np.zeros((n, groups), x.dtype)
    mean, _, invstd, xhat = _row_stats(x.reshape(n * groups, -1), eps)
    xhat *= invstd[:, None]
    out = _affine_chan(xhat.reshape(n, c, -1), w, b).reshape(x.shape)
    return out, x, mean.reshape(n, groups), invstd.reshape(n, groups)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation: channels split into ``num_groups`` groups (``F.group_norm``).

    Each (sample, group) is normalised over its channels and spatial axes, then the
    per-channel ``weight`` / ``bias`` (shape (C,)) apply.
    """
    return _group_norm(input, num_groups, weight, bias, eps)[0]


def group_norm_backward(grad_output, input, num_groups, weight=None, bias=None, eps=1e-5, *,
                        save_mean=None, save_invstd=None):
    """Gradients of :func:`group_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``save_mean`` / ``save_invstd``: the forward's group statistics, shape (N, num_groups).
    """
    x, groups, w, b = _gn_prepare(input, num_groups, weight, bias)
    eps = _eps(eps)
    g = _grad_like(grad_output, x)
    n, c = x.shape[:2]
    if x.size == 0:
        return _empty_grads(x, w, b)
    rows = x.reshape(n * groups, -1)
    if save_mean is None or save_invstd is None:
        mean, _, invstd, _ = _row_stats(rows, eps)
    else:
        mean = _vec(save_mean, "save_mean", (n, groups), x.dtype, "the forward's (N, G) means")
        invstd = _vec(save_invstd, "save_invstd", (n, groups), x.dtype, "the forward's 1/std")
        mean, invstd = mean.reshape(-1), invstd.reshape(-1)
    xhat = (rows - mean[:, None]) * invstd[:, None]
    g3 = _ncs(g)
    xhat3 = xhat.reshape(n, c, -1)
    gw, gb = _chan_affine_grads(g3, xhat3, w is not None, b is not None)
    dxhat = g3 if w is None else g3 * w[:, None]
    gi = _rows_backward(dxhat.reshape(n * groups, -1), xhat, invstd)
    return gi.reshape(x.shape), gw, gb


# -------------------------------------------------------------------- layer_norm
def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(normalized_shape)
    except TypeError:
        raise TypeError("normalized_shape must be an int or a sequence of ints; got "
                        f"{type(normalized_shape).__name__}") from None
    for d in shape:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"normalized_shape must hold ints; got {normalized_shape!r}")
        if d < 0:
            raise ValueError(f"normalized_shape must hold non-negative sizes; got "
                             f"{normalized_shape!r}")
    if not shape:
        raise ValueError("normalized_shape must name at least one dimension; got ()")
    return tuple(int(d) for d in shape)


def _ln_prepare(input, normalized_shape, weight, bias):
    shape = _normalized_shape(normalized_shape)
    dtype = _compute_dtype(weight, bias)
    x = _input(input, dtype)
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"layer_norm: given normalized_shape={list(shape)}, expected input "
                         f"with shape [*, {', '.join(map(str, shape))}], but got input of "
                         f"size {list(x.shape)}")
    w = _vec(weight, "weight", shape, x.dtype, "normalized_shape")
    b = _vec(bias, "bias", shape, x.dtype, "normalized_shape")
    return x, shape, w, b


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """:func:`layer_norm` returning ``(out, x, save_mean, save_invstd)``; stats per row."""
    x, shape, w, b = _ln_prepare(input, normalized_shape, weight, bias)
    eps = _eps(eps)
    k = int(np.prod(shape))
    if x.size == 0:
        r = int(np.prod(x.shape[:x.ndim - len(shape)], dtype=np.int64))
        return x.copy(), x, np.zeros(r, x.dtype), np.zeros(r, x.dtype)
    rows = x.reshape(-1, k)
    mean, _, invstd, xhat = _row_stats(rows, eps)
    xhat *= invstd[:, None]
    if w is not None:
        xhat *= w.reshape(-1)
    if b is not None:
        xhat += b.reshape(-1)
    return xhat.reshape(x.shape), x, mean, invstd


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing ``normalized_shape`` axes (``F.layer_norm``).

    ``weight`` / ``bias`` (shape ``normalized_shape``) apply element-wise.
    """
    return _layer_norm(input, normalized_shape, weight, bias, eps)[0]


def layer_norm_backward(grad_output, input, normalized_shape, weight=None, bias=None,
                        eps=1e-5, *, save_mean=None, save_invstd=None):
    """Gradients of :func:`layer_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``save_mean`` / ``save_invstd``: the forward's per-row statistics, shape
    ``(prod(input.shape[:-len(normalized_shape)]),)``.
    """
    x, shape, w, b = _ln_prepare(input, normalized_shape, weight, bias)
    eps = _eps(eps)
    g = _grad_like(grad_output, x)
    k = int(np.prod(shape))
    if x.size == 0:
        return _empty_grads(x, w, b)
    rows = x.reshape(-1, k)
    g2 = g.reshape(-1, k)
    r = rows.shape[0]
    if save_mean is None or save_invstd is None:
        mean, _, invstd, _ = _row_stats(rows, eps)
    else:
        mean = _vec(save_mean, "save_mean", (r,), x.dtype, "the forward's per-row means")
        invstd = _vec(save_invstd, "save_invstd", (r,), x.dtype, "the forward's per-row 1/std")
    xhat = (rows - mean[:, None]) * invstd[:, None]
    gw = (g2 * xhat).sum(axis=0).reshape(shape) if w is not None else None
    gb = g2.sum(axis=0).reshape(shape) if b is not None else None
    dxhat = g2 if w is None else g2 * w.reshape(-1)
    gi = _rows_backward(dxhat, xhat, invstd)
    return gi.reshape(x.shape), gw, gb
