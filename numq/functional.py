"""Public quantize / dequantize functions (``torch.quantize_per_tensor`` ...).

This layer validates every argument, allocates outputs and picks the kernel; kernels in
:mod:`numq.kernels` never see bad input.
"""
import numpy as np

from . import _validate as V
from .dtypes import qint32, quint4x2, quint8, qint8, float16, as_qdtype
from .kernels import quantize as K
from .kernels._align import aligned_empty
from .kernels.qparams import choose_qparams_dynamic, choose_qparams_dynamic_range
from .kernels.reduce import minmax_f32
from .qtensor import QTensor

__all__ = ["quantize_per_tensor", "quantize_per_channel", "dequantize",
           "quantize_per_tensor_dynamic", "_make_per_tensor_quantized_tensor",
           "_make_per_channel_quantized_tensor"]

_STATIC = (quint8, qint8, qint32, quint4x2)


def _quantize_flat(x, scale, zero_point, dtype):
    """Quantize contiguous float32 ``x`` per tensor; returns storage ints shaped like ``x``."""
    flat = x.reshape(-1)
    if dtype is qint32:
        out = np.empty(flat.size, np.int32)
        K.quantize_per_tensor_qint32_f32(flat, scale, zero_point, out)
    elif dtype is quint4x2:  # torch's sub-byte rule: round before adding the zero point
        out = np.empty(flat.size, dtype.storage)
        K.quantize_per_tensor_sub_byte_f32(flat, scale, zero_point, dtype.qmin, dtype.qmax, out)
    else:   # large ones 64-byte aligned: int8 kernels read them with whole-line tile loads
        out = (aligned_empty(flat.size, dtype.storage) if flat.size >= 1 << 16
               else np.empty(flat.size, dtype.storage))
        K.quantize_per_tensor_f32(flat, scale, zero_point, dtype.qmin, dtype.qmax, out)
    return out.reshape(x.shape)


def quantize_per_tensor(input, scale, zero_point, dtype):
    """Quantize a float array with one scale and zero point (``torch.quantize_per_tensor``).

    Parameters
    ----------
    input : array_like of float16/float32/float64
        Values to quantize; float16/float64 are first rounded to float32. A list of
        arrays returns a list of QTensors (``scale`` / ``zero_point`` are then lists).
    scale : float
        Positive, finite.
    zero_point : int
        Within the dtype's integer range.
    dtype : QDType
        ``numq.quint8``, ``qint8``, ``qint32`` or ``quint4x2``.

    Returns
    -------
    QTensor
        ``clamp(rint(x / scale + zero_point))`` with PyTorch's exact rounding: one
        rounding (fma) for quint8 / qint8, two for qint32; quint4x2 rounds ``x / scale``
        before adding the zero point, as torch's sub-byte kernel does.
    """
    if isinstance(input, (list, tuple)) and input and not np.isscalar(input[0]) \
            and not isinstance(input[0], (list, tuple)):
        if not isinstance(scale, (list, tuple, np.ndarray)) or len(scale) != len(input):
            raise ValueError("scale must have one entry per input array")
        if not isinstance(zero_point, (list, tuple, np.ndarray)) or len(zero_point) != len(input):
            raise ValueError("zero_point must have one entry per input array")
        return [quantize_per_tensor(a, s, z, dtype) for a, s, z in zip(input, scale, zero_point)]
    dt = as_qdtype(dtype, allowed=_STATIC)
    x = V.float_array(input)
    s = V.scale_scalar(scale)
    z = V.int_scalar(zero_point, "zero_point", dt.qmin, dt.qmax)
    return QTensor._from_parts(_quantize_flat(x, s, z, dt), dt, scale=s, zero_point=z)


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    """Quantize a float array with one (scale, zero point) per slice along ``axis``.

    ``torch.quantize_per_channel``. Integer ``zero_points`` give ``per_channel_affine``;
    float ``zero_points`` give ``per_channel_affine_float_qparams`` (quint8 / quint4x2
    only, as in torch).

    Parameters
    ----------
    input : array_like of float
    scales : array_like of float, shape (C,)
    zero_points : array_like of int or float, shape (C,)
    axis : int
        Channel axis (negative counts from the end).
    dtype : QDType

    Returns
    -------
    QTensor
    """
    dt = as_qdtype(dtype, allowed=_STATIC)
    x = V.float_array(input)
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension for per-channel quantization")
    ax = V.axis_index(axis, x.ndim)
    C = x.shape[ax]
    s, z, float_zp = V.channel_params(scales, zero_points, C, dt.qmin, dt.qmax,
                                      float_zp_ok=dt in (quint8, quint4x2))
    outer = int(np.prod(x.shape[:ax], dtype=np.int64))
    x3 = x.reshape(outer, C, -1) if x.size else x.reshape(outer, C, 0)
    out = np.empty(x3.shape, np.int32 if dt is qint32 else dt.storage)
    if x.size:
        if float_zp:
            K.quantize_per_channel_float_qparams_f32(x3, s, z, dt.qmin, dt.qmax, out)
        else:
            K.quantize_per_channel_f32(x3, s, z, dt.qmin, dt.qmax, out)
    return QTensor._from_parts(out.reshape(x.shape), dt, scales=s, zero_points=z, axis=ax)


def dequantize(tensor):
    """Return the float32 values of a QTensor (``torch.dequantize``).

    A list/tuple of QTensors gives a list of arrays; a float array is returned as is
    (as ``torch.dequantize`` does for float tensors).
    """
    if isinstance(tensor, (list, tuple)):
        return [dequantize(t) for t in tensor]
    if isinstance(tensor, QTensor):
        return tensor.dequantize()
    if isinstance(tensor, np.ndarray) and tensor.dtype.kind == "f":
        return tensor
    raise TypeError(f"tensor must be a QTensor, a float array or a list of them; "
                    f"got {type(tensor).__name__}")


def quantize_per_tensor_dynamic(input, dtype, reduce_range):
    """Quantize with qparams chosen from the input's min/max (``torch.quantize_per_tensor_dynamic``).

    The range is extended to include 0 and qparams follow fbgemm's
    ``ChooseQuantizationParams``. ``dtype`` is ``quint8``, ``qint8`` or ``float16``
    (``float16`` returns a float16 array, as torch returns a half tensor).
    """
    dt = as_qdtype(dtype, allowed=(quint8, qint8, float16))
    if not isinstance(reduce_range, (bool, np.bool_)):
        raise TypeError(f"reduce_range must be a bool; got {type(reduce_range).__name__}")
    x = V.float_array(input)
    if dt is float16:
        return x.astype(np.float16)
    if x.size == 0:
        raise ValueError("input must not be empty: its min/max choose the qparams")
    xmin, xmax = minmax_f32(x.reshape(-1))
    if not (np.isfinite(xmin) and np.isfinite(xmax)):
        raise ValueError("input must be finite to choose dynamic qparams (it holds NaN or inf)")
    qmin, qmax = choose_qparams_dynamic_range(dt.name, bool(reduce_range))
    scale, zp = choose_qparams_dynamic(float(xmin), float(xmax), qmin, qmax)
    return QTensor._from_parts(_quantize_flat(x, scale, zp, dt), dt, scale=scale, zero_point=zp)


def _storage_array(data, dt, arg="input"):
    a = np.asarray(data)
    want = np.dtype(np.int32) if dt is qint32 else dt.storage
    if a.dtype.kind not in "iu":
        raise TypeError(f"{arg} must be an integer array (the int_repr); got dtype {a.dtype}")
    if a.size and (a.min() < dt.qmin or a.max() > dt.qmax):
        raise ValueError(f"{arg} values must lie in [{dt.qmin}, {dt.qmax}] for {dt!r}")
    return np.array(a, dtype=want, copy=True)


def _make_per_tensor_quantized_tensor(input, scale, zero_point, dtype=None):
    """Build a per-tensor QTensor from integer values (``torch._make_per_tensor_quantized_tensor``).

    ``dtype`` defaults from the integer array's dtype as torch does (uint8 -> quint8,
    int8 -> qint8, int32 -> qint32). For ``quint4x2`` pass unpacked values in [0, 15].
    """
    if dtype is None:
        dtype = np.asarray(input).dtype
    dt = as_qdtype(dtype, allowed=_STATIC)
    s = V.scale_scalar(scale)
    z = V.int_scalar(zero_point, "zero_point", dt.qmin, dt.qmax)
    return QTensor._from_parts(_storage_array(input, dt), dt, scale=s, zero_point=z)


def _make_per_channel_quantized_tensor(input, scale, zero_point, axis, dtype=None):
    """Build a per-channel QTensor from integer values (``torch._make_per_channel_quantized_tensor``)."""
    if dtype is None:
        dtype = np.asarray(input).dtype
    dt = as_qdtype(dtype, allowed=_STATIC)
    q = _storage_array(input, dt)
    if q.ndim == 0:
        raise ValueError("input must have at least one dimension for per-channel qparams")
    ax = V.axis_index(axis, q.ndim)
    s, z, _ = V.channel_params(scale, zero_point, q.shape[ax], dt.qmin, dt.qmax,
                               float_zp_ok=dt in (quint8, quint4x2))
    return QTensor._from_parts(q, dt, scales=s, zero_points=z, axis=ax)
