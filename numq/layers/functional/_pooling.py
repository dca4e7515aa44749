"""Pooling: ``max_pool{1,2,3}d``, ``avg_pool{1,2,3}d``, ``adaptive_avg_pool{1,2,3}d`` and
their backward functions (``torch.nn.functional`` names and arguments).

Window rules are ATen's CPU ones: output sizes from ``pooling_output_shape`` (with the
``ceil_mode`` rule that the last window must start inside the input or the left
padding), average divisors that count the padding but not the part of a ``ceil_mode``
window hanging past it, adaptive windows ``[floor(o * L / O), ceil((o + 1) * L / O))``.
Every function validates its arguments here; the Numba kernels
(:mod:`numq.kernels.pool_float`) trust them. 1-d and 2-d pooling run the 3-d kernels
with singleton leading spatial axes.

Inputs are float32 or float64 arrays (float16 is computed in float32); the output has
the input's dtype. Unbatched inputs ``(C, *spatial)`` are accepted, as in torch.
"""
import functools
import math
import numbers
import operator

import numpy as np

from ...kernels import pool_float as _k

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "max_pool1d_backward", "max_pool2d_backward", "max_pool3d_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "avg_pool1d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_avg_pool1d_backward", "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d_backward",
]

_FLOATS = (np.float16, np.float32, np.float64)


# ---------------------------------------------------------------- shared validation

def _float_input(x, arg="input"):
    """``x`` as a C-contiguous native float32/float64 array (float16 -> float32)."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "dequantize") and hasattr(x, "q_scale"):
            raise TypeError(f"{arg} must be a float array, got a quantized tensor "
                            "(dequantize it first)")
        x = np.asarray(x)
    dt = x.dtype
    if dt.kind != "f" or dt.type not in _FLOATS:
        raise TypeError(f"{arg} must be a float16/float32/float64 array; got dtype {dt}")
    if dt.type is np.float16:
        dt = np.dtype(np.float32)
    elif not dt.isnative:
        dt = dt.newbyteorder("=")
    if x.dtype == dt and x.flags.c_contiguous:
        return x
    return np.asarray(x, dtype=dt, order="C")  # keeps 0-d arrays 0-d (for the rank error)


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _ints(v, nd, arg, fname):
    """An int or a sequence of 1 or ``nd`` ints, as an ``nd``-tuple of Python ints."""
    if _is_int(v):
        return (int(v),) * nd
    if isinstance(v, (tuple, list)) and all(_is_int(e) for e in v):
        if len(v) == 1:
            return (int(v[0]),) * nd
        if len(v) == nd:
            return tuple(int(e) for e in v)
        raise ValueError(f"{fname}: {arg} must be a single int or a tuple of {nd} ints; "
                         f"got {tuple(v)!r}")
    raise TypeError(f"{fname}: {arg} must be an int or a tuple of ints; got "
                    f"{type(v).__name__} {v!r}")


def _bool(v, arg, fname):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fname}: {arg} must be a bool; got {type(v).__name__}")
    return bool(v)


def _spatial_input(input, nd, fname, arg="input"):
    """Validate a ``(N, C, *spatial)`` or ``(C, *spatial)`` input.

    Returns ``(x, x4)``: the float array and its ``(P, D, H, W)`` view (singleton
    leading spatial axes for ``nd < 3``).
    """
    x = _float_input(input, arg)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fname}: {arg} must be {nd + 1}-d (C, {_axes(nd)}) or {nd + 2}-d "
                         f"(N, C, {_axes(nd)}); got shape {x.shape}")
    spatial = x.shape[-nd:]
    if 0 in spatial:
        raise ValueError(f"{fname}: {arg} must have non-zero spatial sizes; got shape "
                         f"{x.shape}")
    return x, _as4(x, nd)


def _axes(nd):
    return ", ".join(("D", "H", "W")[3 - nd:]) if nd > 1 else "L"


def _as4(x, nd):
    lead = x.shape[:-nd]
    return x.reshape((math.prod(lead),) + (1,) * (3 - nd) + x.shape[-nd:])


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def _check_grad(grad_output, expect_shape, dtype, fname):
    g = _float_input(grad_output, "grad_output")
    if g.shape != tuple(expect_shape):
        raise ValueError(f"{fname}: grad_output must have the forward output's shape "
                         f"{tuple(expect_shape)}; got {g.shape}")
    return g if dtype is None or g.dtype == dtype else g.astype(dtype)


def _input_shape(input_shape, nd, fname):
    try:
        shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        raise TypeError(f"{fname}: input_shape must be a tuple of ints; got "
                        f"{input_shape!r}") from None
    if len(shape) not in (nd + 1, nd + 2) or min(shape) < 0 or 0 in shape[-nd:]:
        raise ValueError(f"{fname}: input_shape must be a {nd + 1}-d or {nd + 2}-d shape "
                         f"with non-zero spatial sizes; got {shape}")
    return shape


# ------------------------------------------------------------------------ geometry

def _out_len(L, k, s, p, d, ceil_mode):
    """ATen's ``pooling_output_shape``."""
    span = L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = span // s + 1  # floor division, as div_rtn
    if ceil_mode and (o - 1) * s >= L + p:
        o -= 1  # the last window must start inside the input or the left padding
    return o


def _window_args(fname, nd, kernel_size, stride, padding, dilation):
    k = _ints(kernel_size, nd, "kernel_size", fname)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _ints(stride, nd, "stride", fname)
    p = _ints(padding, nd, "padding", fname)
    d = _ints(dilation, nd, "dilation", fname)
    for name, vals, lo in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1),
                           ("padding", p, 0)):
        if min(vals) < lo:
            raise ValueError(f"{fname}: {name} must be >= {lo}; got {vals}")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{fname}: padding must be at most half of kernel_size; got "
                         f"padding={p}, kernel_size={k}")
    return k, s, p, d


def _out_sizes(fname, spatial, k, s, p, d, ceil_mode):
    out = tuple(_out_len(L, *a, ceil_mode) for L, *a in zip(spatial, k, s, p, d))
    if min(out) < 1:
        raise ValueError(f"{fname}: the output would be empty: input size {spatial}, "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d} give "
                         f"output size {out}")
    return out


@functools.lru_cache(maxsize=256)
def _max_plan(spatial, k, s, p, d, ceil_mode, fname):
    """Output size and per-axis window tables (torch's start adjustment) of a max pool."""
    out = _out_sizes(fname, spatial, k, s, p, d, ceil_mode)
    tables = []
    for L, O, ki, si, pi, di in zip(_pad3(spatial, 1), _pad3(out, 1), _pad3(k, 1),
                                    _pad3(s, 1), _pad3(p, 0), _pad3(d, 1)):
        start = np.arange(O, dtype=np.int64) * si - pi
        end = np.minimum(start + (ki - 1) * di + 1, L)
        # ATen moves a negative start forward by whole dilation steps
        neg = start < 0
        start[neg] += ((-start[neg] + di - 1) // di) * di
        tables.append(np.ascontiguousarray(np.stack([start, end])))
    dil = np.array(_pad3(d, 1), dtype=np.int64)
    return out, tables[0], tables[1], tables[2], dil


@functools.lru_cache(maxsize=256)
def _avg_plan(spatial, k, s, p, ceil_mode, count_include_pad, divisor_override, dtype,
              fname):
    """Output size, window tables and per-window divisors of an average pool."""
    out = _out_sizes(fname, spatial, k, s, p, (1,) * len(k), ceil_mode)
    tables, padded, inside = [], [], []
    for L, O, ki, si, pi in zip(_pad3(spatial, 1), _pad3(out, 1), _pad3(k, 1),
                                _pad3(s, 1), _pad3(p, 0)):
        start = np.arange(O, dtype=np.int64) * si - pi
        end = np.minimum(start + ki, L + pi)      # a ceil_mode window stops at the padding
        padded.append(end - start)
        start = np.maximum(start, 0)
        end = np.minimum(end, L)
        inside.append(end - start)
        tables.append(np.ascontiguousarray(np.stack([start, end])))
    if divisor_override is not None:
        div = np.full(_pad3(out, 1), divisor_override, dtype=np.int64)
    else:
        sizes = padded if count_include_pad else inside
        div = sizes[0][:, None, None] * sizes[1][None, :, None] * sizes[2][None, None, :]
    div = np.ascontiguousarray(div.astype(dtype))  # ATen: float sum / int64 divisor
    return out, tables[0], tables[1], tables[2], div


def _adaptive_table(L, O):
    o = np.arange(O, dtype=np.int64)
    return np.ascontiguousarray(np.stack([(o * L) // O, -((-(o + 1) * L) // O)]))


@functools.lru_cache(maxsize=256)
def _adaptive_plan(spatial, out, dtype):
    t = [_adaptive_table(L, O) for L, O in zip(_pad3(spatial, 1), _pad3(out, 1))]
    return t[0], t[1], t[2], np.ones((1, 1, 1), dtype=dtype)


# ---------------------------------------------------------------------- max pooling

def _max_pool(nd, fname, input, kernel_size, stride, padding, dilation, ceil_mode,
              want_indices):
    x, x4 = _spatial_input(input, nd, fname)
    k, s, p, d = _window_args(fname, nd, kernel_size, stride, padding, dilation)
    ceil_mode = _bool(ceil_mode, "ceil_mode", fname)
    out_sp, td, th, tw, dil = _max_plan(x.shape[-nd:], k, s, p, d, ceil_mode, fname)
    out_shape = x.shape[:-nd] + out_sp
    out = np.empty(out_shape, dtype=x.dtype)
    ind = np.empty(out_shape if want_indices else (1,), dtype=np.int64)
    o4 = _as4(out, nd)
    _k.max_pool_f(x4, td, th, tw, dil, o4, ind.reshape(o4.shape) if want_indices
                  else ind.reshape(1, 1, 1, 1), want_indices)
    return out, (ind if want_indices else None)


def _max_pool_doc(nd):
    shape = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[nd]
    return f"""{nd}-d max pooling (``torch.nn.functional.max_pool{nd}d``).

    Parameters
    ----------
    input : ndarray
        Float array {shape} or without the batch axis.
    kernel_size : int or tuple of {nd} ints
    stride : int or tuple, optional
        Default ``kernel_size``.
    padding : int or tuple, default 0
        Implicit ``-inf`` padding on both sides; at most half of ``kernel_size``.
    dilation : int or tuple, default 1
    ceil_mode : bool, default False
        Round the output size up (windows must still start inside the input or the
        left padding).
    return_indices : bool, default False
        Also return the int64 argmax of each window as a flat index into its
        ``(N, C)`` plane (the first of equal maxima; NaN propagates).

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``return_indices``
    """


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    out, ind = _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation,
                         ceil_mode, _bool(return_indices, "return_indices", "max_pool1d"))
    return (out, ind) if return_indices else out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    out, ind = _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation,
                         ceil_mode, _bool(return_indices, "return_indices", "max_pool2d"))
    return (out, ind) if return_indices else out


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    out, ind = _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation,
                         ceil_mode, _bool(return_indices, "return_indices", "max_pool3d"))
    return (out, ind) if return_indices else out


max_pool1d.__doc__ = _max_pool_doc(1)
max_pool2d.__doc__ = _max_pool_doc(2)
max_pool3d.__doc__ = _max_pool_doc(3)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """``max_pool1d(..., return_indices=True)``: returns ``(output, indices)``."""
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation,
                     ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """``max_pool2d(..., return_indices=True)``: returns ``(output, indices)``."""
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation,
                     ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    """``max_pool3d(..., return_indices=True)``: returns ``(output, indices)``."""
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation,
                     ceil_mode, True)


def _max_pool_backward(nd, fname, grad_output, indices, input_shape):
    shape = _input_shape(input_shape, nd, fname)
    ind = np.asarray(indices)
    if ind.dtype.kind not in "iu":
        raise TypeError(f"{fname}: indices must be an integer array; got dtype {ind.dtype}")
    if ind.ndim != len(shape) or ind.shape[:-nd] != shape[:-nd]:
        raise ValueError(f"{fname}: indices of shape {ind.shape} do not match input_shape "
                         f"{shape}")
    g = _check_grad(grad_output, ind.shape, None, fname)
    P = math.prod(shape[:-nd])
    M = math.prod(ind.shape[-nd:])
    gin = np.empty(shape, dtype=g.dtype)
    _k.max_pool_backward_f(g.reshape(P, M),
                           np.ascontiguousarray(ind, dtype=np.int64).reshape(P, M),
                           gin.reshape(P, math.prod(shape[-nd:])))
    return gin


def max_pool1d_backward(grad_output, indices, input_shape):
    """Input gradient of :func:`max_pool1d` from its ``indices``.

    Each output gradient goes to its window's argmax (overlapping windows add up).

    Parameters
    ----------
    grad_output : ndarray
        Gradient of the pooled output (its shape).
    indices : ndarray
        The int64 indices returned with ``return_indices=True``.
    input_shape : tuple of int
        Shape of the forward input.

    Returns
    -------
    ndarray of shape ``input_shape`` (``grad_output``'s float dtype)
    """
    return _max_pool_backward(1, "max_pool1d_backward", grad_output, indices, input_shape)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Input gradient of :func:`max_pool2d` (see :func:`max_pool1d_backward`)."""
    return _max_pool_backward(2, "max_pool2d_backward", grad_output, indices, input_shape)


def max_pool3d_backward(grad_output, indices, input_shape):
    """Input gradient of :func:`max_pool3d` (see :func:`max_pool1d_backward`)."""
    return _max_pool_backward(3, "max_pool3d_backward", grad_output, indices, input_shape)


# ------------------------------------------------------------------ average pooling

def _avg_args(nd, fname, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    k, s, p, _ = _window_args(fname, nd, kernel_size, stride, padding, 1)
    ceil_mode = _bool(ceil_mode, "ceil_mode", fname)
    count_include_pad = _bool(count_include_pad, "count_include_pad", fname)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"{fname}: divisor_override must be an int or None; got "
                            f"{type(divisor_override).__name__}")
        divisor_override = int(divisor_override)
        if divisor_override == 0:
            raise ValueError(f"{fname}: divisor_override must not be zero")
    return k, s, p, ceil_mode, count_include_pad, divisor_override


def _avg_pool(nd, fname, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, x4 = _spatial_input(input, nd, fname)
    args = _avg_args(nd, fname, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
    out_sp, td, th, tw, div = _avg_plan(x.shape[-nd:], *args, x.dtype.str, fname)
    out = np.empty(x.shape[:-nd] + out_sp, dtype=x.dtype)
    _k.avg_pool_f(x4, td, th, tw, div, False, _as4(out, nd))
    return out


def _avg_pool_doc(nd, override=True):
    shape = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}[nd]
    extra = """
    divisor_override : int, optional
        Divide every window sum by this instead.""" if override else ""
    return f"""{nd}-d average pooling (``torch.nn.functional.avg_pool{nd}d``).

    Parameters
    ----------
    input : ndarray
        Float array {shape} or without the batch axis.
    kernel_size : int or tuple of {nd} ints
    stride : int or tuple, optional
        Default ``kernel_size``.
    padding : int or tuple, default 0
        Implicit zero padding; at most half of ``kernel_size``.
    ceil_mode : bool, default False
        Round the output size up; a window hanging past the right padding is cut there.
    count_include_pad : bool, default True
        Count padded positions in the divisor.{extra}

    Returns
    -------
    ndarray (the input's float dtype)
    """


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


avg_pool1d.__doc__ = _avg_pool_doc(1, override=False)
avg_pool2d.__doc__ = _avg_pool_doc(2)
avg_pool3d.__doc__ = _avg_pool_doc(3)


def _avg_pool_backward(nd, fname, grad_output, input_shape, kernel_size, stride, padding,
                       ceil_mode, count_include_pad, divisor_override):
    shape = _input_shape(input_shape, nd, fname)
    args = _avg_args(nd, fname, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
    g = _float_input(grad_output, "grad_output")
    out_sp, td, th, tw, div = _avg_plan(shape[-nd:], *args, g.dtype.str, fname)
    g = _check_grad(g, shape[:-nd] + out_sp, None, fname)
    gin = np.empty(shape, dtype=g.dtype)
    _k.avg_pool_backward_f(_as4(g, nd), td, th, tw, div, False, _as4(gin, nd))
    return gin


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    """Input gradient of :func:`avg_pool1d` (same pooling arguments).

    Returns an array of shape ``input_shape``: each window position receives its
    output gradient divided by the forward's divisor.
    """
    return _avg_pool_backward(1, "avg_pool1d_backward", grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              None)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Input gradient of :func:`avg_pool2d` (see :func:`avg_pool1d_backward`)."""
    return _avg_pool_backward(2, "avg_pool2d_backward", grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Input gradient of :func:`avg_pool3d` (see :func:`avg_pool1d_backward`)."""
    return _avg_pool_backward(3, "avg_pool3d_backward", grad_output, input_shape,
                              kernel_size, stride, padding, ceil_mode, count_include_pad,
                              divisor_override)


# --------------------------------------------------------- adaptive average pooling

def _adaptive_size(output_size, spatial, fname):
    """Resolve ``output_size`` (int, or tuple with ``None`` = keep the input size)."""
    nd = len(spatial)
    if output_size is None or _is_int(output_size):
        vals = (output_size,) * nd
    elif isinstance(output_size, (tuple, list)):
        vals = tuple(output_size)
        if len(vals) != nd:
            raise ValueError(f"{fname}: output_size must be an int or a tuple of {nd} "
                             f"entries; got {output_size!r}")
    else:
        raise TypeError(f"{fname}: output_size must be an int, None or a tuple; got "
                        f"{type(output_size).__name__}")
    out = []
    for v, L in zip(vals, spatial):
        if v is None:
            out.append(L)
        elif not _is_int(v):
            raise TypeError(f"{fname}: output_size entries must be ints or None; got "
                            f"{output_size!r}")
        elif v < 0:
            raise ValueError(f"{fname}: output_size must be >= 0; got {output_size!r}")
        else:
            out.append(int(v))
    return tuple(out)


def _adaptive_pool(nd, fname, input, output_size):
    x, x4 = _spatial_input(input, nd, fname)
    out_sp = _adaptive_size(output_size, x.shape[-nd:], fname)
    if nd < 3 and out_sp == (1,) * nd:
        # global pooling: torch takes the mean (a blocked sum), which is also far more
        # accurate over large planes than a running float32 sum
        flat = x4.reshape(x4.shape[0], math.prod(x4.shape[1:]))
        return flat.mean(axis=1, dtype=x.dtype).reshape(x.shape[:-nd] + out_sp)
    td, th, tw, dummy = _adaptive_plan(x.shape[-nd:], out_sp, x.dtype.str)
    out = np.empty(x.shape[:-nd] + out_sp, dtype=x.dtype)
    _k.avg_pool_f(x4, td, th, tw, dummy, True, _as4(out, nd))
    return out


def adaptive_avg_pool1d(input, output_size):
    """1-d adaptive average pooling (``torch.nn.functional.adaptive_avg_pool1d``).

    Output position ``o`` of ``O`` averages input positions
    ``[floor(o * L / O), ceil((o + 1) * L / O))``.

    Parameters
    ----------
    input : ndarray
        Float array ``(N, C, L)`` or ``(C, L)``.
    output_size : int or tuple of 1 (int or None)
        ``None`` keeps the input size.

    Returns
    -------
    ndarray (the input's float dtype)
    """
    return _adaptive_pool(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """2-d adaptive average pooling (see :func:`adaptive_avg_pool1d`); ``output_size``
    is an int or a ``(H, W)`` tuple whose entries may be ``None``."""
    return _adaptive_pool(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """3-d adaptive average pooling (see :func:`adaptive_avg_pool1d`); ``output_size``
    is an int or a ``(D, H, W)`` tuple whose entries may be ``None``."""
    return _adaptive_pool(3, "adaptive_avg_pool3d", input, output_size)


def _adaptive_backward(nd, fname, grad_output, input_shape):
    shape = _input_shape(input_shape, nd, fname)
    g = _float_input(grad_output, "grad_output")
    if g.ndim != len(shape) or g.shape[:-nd] != shape[:-nd]:
        raise ValueError(f"{fname}: grad_output of shape {g.shape} does not match "
                         f"input_shape {shape}")
    td, th, tw, dummy = _adaptive_plan(shape[-nd:], g.shape[-nd:], g.dtype.str)
    gin = np.empty(shape, dtype=g.dtype)
    _k.avg_pool_backward_f(_as4(g, nd), td, th, tw, dummy, True, _as4(gin, nd))
    return gin


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    """Input gradient of :func:`adaptive_avg_pool1d`; the output size is
    ``grad_output``'s. Returns an array of shape ``input_shape``."""
    return _adaptive_backward(1, "adaptive_avg_pool1d_backward", grad_output, input_shape)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Input gradient of :func:`adaptive_avg_pool2d` (see the 1-d version)."""
    return _adaptive_backward(2, "adaptive_avg_pool2d_backward", grad_output, input_shape)


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    """Input gradient of :func:`adaptive_avg_pool3d` (see the 1-d version)."""
    return _adaptive_backward(3, "adaptive_avg_pool3d_backward", grad_output, input_shape)
