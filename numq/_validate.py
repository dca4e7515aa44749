"""Argument checks shared by the public functions. Kernels never see bad input.

Every check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
wrong value) with a message that names the argument and says what was expected.
"""
import math
import numbers

import numpy as np

__all__ = ["float_array", "scale_scalar", "int_scalar", "float_scalar", "axis_index",
           "channel_params", "quant_range"]

_FLOATS = (np.float16, np.float32, np.float64)
_F32_NATIVE = np.dtype(np.float32)
_F32_OVERFLOW = 2.0**128 - 2.0**103  # the smallest float that rounds to float32 inf
_F32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def float_array(x, arg="input"):
    """Return ``x`` as a C-contiguous native float32 array.

    Accepts float16/32/64 arrays (any strides, byte order) and Python float sequences;
    float64 and float16 are rounded to float32 as ``Tensor.float()`` would. Integer,
    bool and complex inputs raise ``TypeError``.
    """
    if not isinstance(x, np.ndarray):
        if hasattr(x, "dequantize") and hasattr(x, "q_scale"):
            raise TypeError(f"{arg} must be a float array, got a quantized tensor")
        x = np.asarray(x)
        if x.dtype.kind in "iub" and x.size == 0:
            x = x.astype(np.float32)
    dt = x.dtype
    if dt == _F32_NATIVE and x.flags.c_contiguous:
        return x  # the common case costs no conversion and no errstate
    if dt.kind != "f" or dt.type not in _FLOATS:
        raise TypeError(f"{arg} must be a float16/float32/float64 array; got dtype {dt}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes +-inf, silently
        # not ascontiguousarray: it turns a 0-d array into shape (1,)
        return np.asarray(x, dtype=np.float32, order="C")


def _real(v, arg):
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{arg} must be a real number; got {type(v).__name__}")
    return v


def scale_scalar(scale, arg="scale"):
    """Return ``scale`` as a Python float; it must be finite and > 0."""
    s = scale if type(scale) is float else float(_real(scale, arg))
    if not (math.isfinite(s) and s > 0.0):
        raise ValueError(f"{arg} must be a finite positive number; got {s!r}")
    # kernels use f32(scale): it must neither overflow nor round to zero
    if not (_F32_TINY / 2 < s < _F32_OVERFLOW):
        raise ValueError(f"{arg} must be representable as a positive finite float32; got {s!r}")
    return s


def float_scalar(v, arg):
    """Return ``v`` as a finite Python float."""
    f = float(_real(v, arg))
    if not math.isfinite(f):
        raise ValueError(f"{arg} must be finite; got {f!r}")
    return f


def int_scalar(v, arg, lo=None, hi=None):
    """Return ``v`` as a Python int in ``[lo, hi]`` (integral floats are refused)."""
    if type(v) is not int:
        v = _real(v, arg)
    if not isinstance(v, numbers.Integral):
        raise TypeError(f"{arg} must be an integer; got {type(v).__name__} {v!r}")
    v = int(v)
    if lo is not None and v < lo:
        raise ValueError(f"{arg} must be >= {lo}; got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{arg} must be <= {hi}; got {v}")
    return v


def axis_index(axis, ndim, arg="axis"):
    """Return ``axis`` normalised to ``[0, ndim)`` (negative axes count from the end)."""
    a = int_scalar(axis, arg)
    if not -ndim <= a < ndim:
        raise ValueError(f"{arg} must be in [{-ndim}, {ndim - 1}] for a {ndim}-d input; got {a}")
    return a % ndim


def channel_params(scales, zero_points, n, dtype_lo, dtype_hi, *, float_zp_ok=False):
    """Validate per-channel qparams for ``n`` channels.

    Returns ``(scales float64 (n,), zero_points, float_zp)`` where zero points are int64,
    or float32 when ``float_zp_ok`` and a float array was given.
    """
    s = np.asarray(scales)
    if s.dtype.kind not in "fiu" or s.dtype.kind == "b":
        raise TypeError(f"scales must be a real array; got dtype {s.dtype}")
    s = np.ascontiguousarray(s, dtype=np.float64).reshape(-1) if s.ndim <= 1 else None
    if s is None:
        raise ValueError(f"scales must be 1-d; got shape {np.shape(scales)}")
    if s.size != n:
        raise ValueError(f"scales must have one entry per channel ({n}); got {s.size}")
    with np.errstate(over="ignore"):
        s32 = s.astype(np.float32)
    if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(np.isfinite(s32)) and np.all(s32 > 0)):
        raise ValueError("scales must be finite and positive (as float32) for every channel")
    z = np.asarray(zero_points)
    if z.ndim > 1:
        raise ValueError(f"zero_points must be 1-d; got shape {z.shape}")
    z = z.reshape(-1)
    if z.size != n:
        raise ValueError(f"zero_points must have one entry per channel ({n}); got {z.size}")
    if z.dtype.kind == "f":
        if not float_zp_ok:
            raise TypeError("zero_points must be an integer array for this dtype; got float")
        if not np.all(np.isfinite(z)):
            raise ValueError("zero_points must be finite")
        return s, np.ascontiguousarray(z, dtype=np.float32), True
    if z.dtype.kind not in "iu":
        raise TypeError(f"zero_points must be an integer or float array; got dtype {z.dtype}")
    z = z.astype(np.int64)
    if z.size and (z.min() < dtype_lo or z.max() > dtype_hi):
        raise ValueError(f"zero_points must lie in [{dtype_lo}, {dtype_hi}]; "
                         f"got range [{z.min()}, {z.max()}]")
    return s, np.ascontiguousarray(z), False


def quant_range(quant_min, quant_max):
    """Validate ``quant_min <= quant_max`` integer bounds; return them as ints."""
    qmin = int_scalar(quant_min, "quant_min")
    qmax = int_scalar(quant_max, "quant_max")
    if qmin > qmax:
        raise ValueError(f"quant_min must be <= quant_max; got {qmin} > {qmax}")
    return qmin, qmax
