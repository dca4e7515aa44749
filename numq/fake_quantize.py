"""Fake quantization (QAT): ``torch.fake_quantize_per_*_affine`` and friends on arrays.

Public functions validate, allocate outputs and call :mod:`numq.kernels.fake_quantize`.
Results are bit-exact with PyTorch 2.13's x86 CPU kernels (``shared/NUMERICS.md``,
"Fake quantize"), including NaN / inf handling and float64 / float16 inputs; the
learnable gradients dScale / dZeroPoint are sums, which numq accumulates in float64.

Deliberate differences from torch, all documented per function: numq rejects
non-finite or non-positive scales, non-finite zero points and grad factors, and
mismatched gradient shapes; accepts negative ``axis``, NumPy scale / zero-point arrays
of any real dtype (converted to float32 / int as torch stores them) and Python numbers
for the learnable qparams; and on empty input the learnable backward returns zero
gradients (torch returns its ``scale`` / ``zero_point`` arguments themselves).
"""
import numpy as np

from . import _validate as V
from .kernels import fake_quantize as K

__all__ = [
    "fake_quantize_per_tensor_affine", "fake_quantize_per_tensor_affine_cachemask",
    "fake_quantize_per_tensor_affine_backward",
    "fake_quantize_per_channel_affine", "fake_quantize_per_channel_affine_cachemask",
    "fake_quantize_per_channel_affine_backward",
    "_fake_quantize_learnable_per_tensor_affine",
    "_fake_quantize_learnable_per_tensor_affine_backward",
    "_fake_quantize_learnable_per_channel_affine",
    "_fake_quantize_learnable_per_channel_affine_backward",
]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# ------------------------------------------------------------------ validation


def _float_input(x, arg="input"):
    """Return ``(work, dtype)``: a contiguous native float32/float64 array to compute on
    (float16 widens to float32, which reproduces torch's Half arithmetic) and the native
    dtype of the result."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "q_scale"):
            raise TypeError(f"{arg} must be a float array, got a quantized tensor")
        x = np.asarray(x)
    if x.dtype.kind != "f" or x.dtype.itemsize not in (2, 4, 8):
        raise TypeError(f"{arg} must be a float16/float32/float64 array; got dtype {x.dtype}")
    dtype = x.dtype.newbyteorder("=")
    work = np.float32 if dtype.itemsize == 2 else dtype
    return np.asarray(x, dtype=work, order="C"), dtype  # keeps 0-d (ascontiguousarray does not)


def _result(a, dtype):
    """Cast a float32 result to float16 when the input was float16 (values beyond its range
    become inf, as torch's Half conversion gives)."""
    with np.errstate(over="ignore"):
        return a.astype(dtype, copy=False)


def _f32(a):
    """float32 copy of a qparam array; overflow to inf is caught by the finiteness checks."""
    with np.errstate(over="ignore"):
        return np.asarray(a).astype(np.float32)


def _float32_input(x, arg):
    """Learnable backward: torch accepts float32 only."""
    work, dtype = _float_input(x, arg)
    if dtype != np.float32:
        raise TypeError(f"{arg} must be a float32 array (as torch's learnable fake-quant "
                        f"backward requires); got dtype {dtype}")
    return work


def _grad_input(grad, x, arg):
    g, dtype = _float_input(grad, arg)
    if g.shape != x.shape:
        raise ValueError(f"{arg} must have the input's shape {x.shape}; got {g.shape}")
    return g, dtype


def _quant_range(quant_min, quant_max):
    V.int_scalar(quant_min, "quant_min", _INT32_MIN, _INT32_MAX)
    V.int_scalar(quant_max, "quant_max", _INT32_MIN, _INT32_MAX)
    return V.quant_range(quant_min, quant_max)


def _zero_point_in_range(zp, qmin, qmax):
    if not qmin <= zp <= qmax:
        raise ValueError(f"zero_point must be between quant_min and quant_max "
                         f"([{qmin}, {qmax}]); got {zp}")


def _int_zero_point(zero_point, qmin, qmax):
    if isinstance(zero_point, np.ndarray) and zero_point.size == 1:
        zero_point = zero_point.reshape(())
    zp = V.int_scalar(zero_point, "zero_point")
    _zero_point_in_range(zp, qmin, qmax)
    return zp


def _scale_scalar(scale):
    if isinstance(scale, np.ndarray) and scale.size == 1:
        scale = scale.reshape(())
    return V.scale_scalar(scale, "scale")


def _one_value(v, arg):
    """A learnable qparam: a real number or a one-element array, as float32."""
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{arg} must be a real number or a one-element array; got {a.dtype}")
    if a.size != 1:
        raise ValueError(f"{arg} must hold exactly one value; got shape {a.shape}")
    f = _f32(a.reshape(()))[()]
    if not np.isfinite(f):
        raise ValueError(f"{arg} must be finite (as float32); got {a.reshape(())!r}")
    return f


def _channel_array(v, arg, n):
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{arg} must be an array of real numbers; got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{arg} must be 1-d; got shape {a.shape}")
    if a.size != n:
        raise ValueError(f"{arg} must have one entry per channel (input.shape[axis] = {n}); "
                         f"got {a.size}")
    return a


def _channel_scale(scale, n):
    s = _f32(_channel_array(scale, "scale", n))
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("scale must be finite and positive (as float32) for every channel")
    return s


def _channel_zero_point(zero_point, n, qmin, qmax):
    """int32 zero points within [qmin, qmax], or float32 ones (torch allows any value)."""
    z = _channel_array(zero_point, "zero_point", n)
    if z.dtype.kind == "f":
        z = _f32(z)  # float16 widens exactly; float64 rounds as torch's .float()
        if not np.all(np.isfinite(z)):
            raise ValueError("zero_point must be finite (as float32) for every channel")
        return z
    if z.size and (z.min() < qmin or z.max() > qmax):
        raise ValueError(f"zero_point must be between quant_min and quant_max "
                         f"([{qmin}, {qmax}]); got values in [{z.min()}, {z.max()}]")
    return z.astype(np.int32)


def _learnable_channel_zero_point(zero_point, n, qmin, qmax):
    """``clamp(rint(f32(zp)), qmin, qmax)`` as float32, as torch's learnable ops."""
    z = _f32(_channel_array(zero_point, "zero_point", n))
    if not np.all(np.isfinite(z)):
        raise ValueError("zero_point must be finite (as float32) for every channel")
    return np.clip(np.rint(z), np.float32(qmin), np.float32(qmax))


def _channel_view(x, axis):
    """``(axis, x viewed as (outer, C, inner))`` for contiguous ``x``."""
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension for per-channel fake quantization")
    a = V.axis_index(axis, x.ndim)
    outer = int(np.prod(x.shape[:a], dtype=np.int64))
    inner = int(np.prod(x.shape[a + 1:], dtype=np.int64))
    return a, x.reshape(outer, x.shape[a], inner)


# --------------------------------------------------------------------- per tensor


def _per_tensor(x, dtype, scale, zp, qmin, qmax, with_mask):
    out = np.empty_like(x)
    mask = np.empty(x.shape if with_mask else 0, bool)
    if x.size:
        K.fake_quantize_per_tensor(x.reshape(-1), out.reshape(-1), mask.reshape(-1), scale,
                                   zp, qmin, qmax)
    return _result(out, dtype), mask


def fake_quantize_per_tensor_affine_cachemask(input, scale, zero_point, quant_min, quant_max):
    """Fake-quantize with one scale and zero point; also return the gradient mask.

    Parameters
    ----------
    input : array_like of float16/float32/float64
    scale : float
        Finite and positive; used as float32.
    zero_point : int
        Within ``[quant_min, quant_max]``.
    quant_min, quant_max : int
        ``quant_min <= quant_max``, within the int32 range.

    Returns
    -------
    out : ndarray, input's dtype
        ``(clamp(zp + rint(x / scale), quant_min, quant_max) - zp) * scale``, rounded as
        torch (NaN gives quant_min's value, +-inf the bound's).
    mask : ndarray of bool
        True where the rounded value was not clamped.
    """
    x, dtype = _float_input(input)
    s = _scale_scalar(scale)
    qmin, qmax = _quant_range(quant_min, quant_max)
    zp = _int_zero_point(zero_point, qmin, qmax)
    return _per_tensor(x, dtype, s, zp, qmin, qmax, True)


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """``torch.fake_quantize_per_tensor_affine``: the output of
    :func:`fake_quantize_per_tensor_affine_cachemask`, without the mask."""
    x, dtype = _float_input(input)
    s = _scale_scalar(scale)
    qmin, qmax = _quant_range(quant_min, quant_max)
    zp = _int_zero_point(zero_point, qmin, qmax)
    return _per_tensor(x, dtype, s, zp, qmin, qmax, False)[0]


def fake_quantize_per_tensor_affine_backward(grad_out, input, scale, zero_point, quant_min,
                                             quant_max):
    """Straight-through gradient of :func:`fake_quantize_per_tensor_affine`.

    Returns ``grad_out * mask`` (a product: NaN / inf gradients stay NaN where masked)
    in ``grad_out``'s dtype, the mask recomputed from ``input``; ``grad_out`` must have
    ``input``'s shape. Other arguments as the forward.
    """
    x, _ = _float_input(input)
    g, gdtype = _grad_input(grad_out, x, "grad_out")
    s = _scale_scalar(scale)
    qmin, qmax = _quant_range(quant_min, quant_max)
    zp = _int_zero_point(zero_point, qmin, qmax)
    dx = np.empty_like(g)
    if x.size:
        K.fake_quantize_per_tensor_backward(g.reshape(-1), x.reshape(-1), dx.reshape(-1), s,
                                            zp, qmin, qmax)
    return _result(dx, gdtype)


# -------------------------------------------------------------------- per channel


def _per_channel(x3, dtype, shape, scale, zp, qmin, qmax, with_mask):
    out = np.empty_like(x3)
    mask = np.empty(x3.shape if with_mask else (0, 0, 0), bool)
    if x3.size:
        K.fake_quantize_per_channel(x3, out, mask, scale, zp, qmin, qmax)
    return _result(out.reshape(shape), dtype), mask.reshape(shape if with_mask else 0)


def fake_quantize_per_channel_affine_cachemask(input, scale, zero_point, axis, quant_min,
                                               quant_max):
    """Fake-quantize with one scale and zero point per slice along ``axis``; with mask.

    Parameters
    ----------
    input : array_like of float16/float32/float64, at least 1-d
    scale : array_like, shape (input.shape[axis],)
        Finite and positive; used as float32.
    zero_point : array_like, shape (input.shape[axis],)
        Integers within ``[quant_min, quant_max]``, or floats (any finite value, as
        torch): then the code is ``rint(x / scale + zp)`` with ``y = (q - zp) * scale``.
    axis : int
        Channel axis; negative values count from the end.
    quant_min, quant_max : int

    Returns
    -------
    out : ndarray, input's dtype
    mask : ndarray of bool
        NaN, +-inf and values beyond the int64 range give quant_min's value and a False
        mask (torch converts the code to int64 before clamping).
    """
    x, dtype = _float_input(input)
    qmin, qmax = _quant_range(quant_min, quant_max)
    a, x3 = _channel_view(x, axis)
    s = _channel_scale(scale, x.shape[a])
    z = _channel_zero_point(zero_point, x.shape[a], qmin, qmax)
    return _per_channel(x3, dtype, x.shape, s, z, qmin, qmax, True)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """``torch.fake_quantize_per_channel_affine``: the output of
    :func:`fake_quantize_per_channel_affine_cachemask`, without the mask."""
    x, dtype = _float_input(input)
    qmin, qmax = _quant_range(quant_min, quant_max)
    a, x3 = _channel_view(x, axis)
    s = _channel_scale(scale, x.shape[a])
    z = _channel_zero_point(zero_point, x.shape[a], qmin, qmax)
    return _per_channel(x3, dtype, x.shape, s, z, qmin, qmax, False)[0]


def fake_quantize_per_channel_affine_backward(grad_out, input, scale, zero_point, axis,
                                              quant_min, quant_max):
    """Straight-through gradient of :func:`fake_quantize_per_channel_affine`:
    ``grad_out * mask`` in ``grad_out``'s dtype, the mask recomputed from ``input``."""
    x, _ = _float_input(input)
    g, gdtype = _grad_input(grad_out, x, "grad_out")
    qmin, qmax = _quant_range(quant_min, quant_max)
    a, x3 = _channel_view(x, axis)
    s = _channel_scale(scale, x.shape[a])
    z = _channel_zero_point(zero_point, x.shape[a], qmin, qmax)
    dx = np.empty_like(g)
    if x.size:
        K.fake_quantize_per_channel_backward(g.reshape(x3.shape), x3, dx.reshape(x3.shape), s,
                                             z, qmin, qmax)
    return _result(dx, gdtype)


# ----------------------------------------------------------------- learnable (LSQ)


def _fake_quantize_learnable_per_tensor_affine(input, scale, zero_point, quant_min, quant_max,
                                               grad_factor=1.0):
    """Forward of LSQ fake quantization with a learnable scale and zero point.

    ``scale`` and ``zero_point`` are numbers or one-element arrays (torch: float tensors);
    the zero point used is ``clamp(rint(f32(zero_point)), quant_min, quant_max)``. Then as
    :func:`fake_quantize_per_tensor_affine`. ``grad_factor`` only matters in the backward.
    """
    x, dtype = _float_input(input)
    s = _one_value(scale, "scale")
    z = _one_value(zero_point, "zero_point")
    qmin, qmax = _quant_range(quant_min, quant_max)
    V.float_scalar(grad_factor, "grad_factor")
    if not s > 0:
        raise ValueError(f"scale must be positive; got {s!r}")
    zp = int(min(max(np.rint(z), np.float32(qmin)), np.float32(qmax)))
    return _per_tensor(x, dtype, s, min(max(zp, qmin), qmax), qmin, qmax, False)[0]


def _fake_quantize_learnable_per_tensor_affine_backward(grad, input, scale, zero_point,
                                                        quant_min, quant_max, grad_factor=1.0):
    """Gradients of :func:`_fake_quantize_learnable_per_tensor_affine` (LSQ).

    Parameters
    ----------
    grad, input : array_like of float32, same shape
    scale, zero_point : float or one-element array
        As torch, this backward uses the zero point ``trunc(clamp(f32(zp) + 0.5))``
        (the forward uses ``rint``: they differ for negative and half-integer values).
    quant_min, quant_max : int
        ``quant_min <= 0 <= quant_max`` (torch's requirement).
    grad_factor : float
        Multiplies every term (LSQ's ``1 / sqrt(numel * quant_max)``).

    Returns
    -------
    dx : ndarray, float32
        ``grad`` where ``rint(x / scale + zp)`` lies in range, else 0.
    dscale, dzero_point : ndarray, float32, shape (1,)
        Sums of ``grad * (xfq - x) / scale`` in range, ``grad * (bound - zp)`` where
        clamped; and of ``-grad * scale`` where clamped. Summed in float64 (torch: float32).
    """
    x = _float32_input(input, "input")
    g = _float32_input(grad, "grad")
    if g.shape != x.shape:
        raise ValueError(f"grad must have the input's shape {x.shape}; got {g.shape}")
    s = _one_value(scale, "scale")
    z = _one_value(zero_point, "zero_point")
    qmin, qmax = _quant_range(quant_min, quant_max)
    gf = V.float_scalar(grad_factor, "grad_factor")
    if not s > 0:
        raise ValueError(f"scale must be positive; got {s!r}")
    if not qmin <= 0 <= qmax:
        raise ValueError(f"quant_min <= 0 <= quant_max is required; got [{qmin}, {qmax}]")
    zb = int(min(max(z + np.float32(0.5), np.float32(qmin)), np.float32(qmax)))  # trunc
    zb = min(max(zb, qmin), qmax)
    dx = np.empty_like(x)
    if x.size == 0:
        return dx, np.zeros(1, np.float32), np.zeros(1, np.float32)
    ds, dz = K.fake_quantize_learnable_per_tensor_backward(
        g.reshape(-1), x.reshape(-1), dx.reshape(-1), s, zb, qmin, qmax, gf)
    return dx, np.array([ds], np.float32), np.array([dz], np.float32)


def _fake_quantize_learnable_per_channel_affine(input, scale, zero_point, axis, quant_min,
                                                quant_max, grad_factor=1.0):
    """Forward of per-channel LSQ fake quantization.

    The zero points used are ``clamp(rint(f32(zero_point)), quant_min, quant_max)`` as
    integers; then as :func:`fake_quantize_per_channel_affine`.
    """
    x, dtype = _float_input(input)
    qmin, qmax = _quant_range(quant_min, quant_max)
    V.float_scalar(grad_factor, "grad_factor")
    a, x3 = _channel_view(x, axis)
    s = _channel_scale(scale, x.shape[a])
    z = _learnable_channel_zero_point(zero_point, x.shape[a], qmin, qmax).astype(np.int32)
    return _per_channel(x3, dtype, x.shape, s, z, qmin, qmax, False)[0]


def _fake_quantize_learnable_per_channel_affine_backward(grad, input, scale, zero_point, axis,
                                                         quant_min, quant_max,
                                                         grad_factor=1.0):
    """Gradients of :func:`_fake_quantize_learnable_per_channel_affine` (LSQ).

    As :func:`_fake_quantize_learnable_per_tensor_affine_backward`, with ``scale`` and
    ``zero_point`` arrays of shape ``(input.shape[axis],)`` (zero points rounded with
    ``rint`` and clamped); ``dscale`` / ``dzero_point`` are summed over every axis but
    ``axis`` and have that shape (also for 1-d input, where torch returns a 0-d total).
    """
    x = _float32_input(input, "input")
    g = _float32_input(grad, "grad")
    if g.shape != x.shape:
        raise ValueError(f"grad must have the input's shape {x.shape}; got {g.shape}")
    qmin, qmax = _quant_range(quant_min, quant_max)
    gf = V.float_scalar(grad_factor, "grad_factor")
    a, x3 = _channel_view(x, axis)
    C = x.shape[a]
    s = _channel_scale(scale, C)
    z = _learnable_channel_zero_point(zero_point, C, qmin, qmax)
    if not qmin <= 0 <= qmax:
        raise ValueError(f"quant_min <= 0 <= quant_max is required; got [{qmin}, {qmax}]")
    dx = np.empty_like(x3)
    dscale = np.zeros(C, np.float32)
    dzero_point = np.zeros(C, np.float32)
    if x.size:
        K.fake_quantize_learnable_per_channel_backward(g.reshape(x3.shape), x3, dx, dscale,
                                                       dzero_point, s, z, qmin, qmax, gf)
    return dx.reshape(x.shape), dscale, dzero_point
