"""Quantized linear: ``torch.ao.nn.quantized.functional.linear`` and the checked calls
that the quantized Linear layers make into the int8 GEMM kernels.

Every check of the Linear family lives here (layers only hold state): the quantized
input, the qint8 weight, the float bias, the output qparams. The kernels in
:mod:`numq.kernels.gemm` see only validated, contiguous arrays.
"""
import warnings

import numpy as np

from ... import _validate as V
from ...dtypes import per_tensor_affine, qint8, quint8
from ...kernels import gemm as _G
from ...kernels.reduce import minmax_f32
from ...qtensor import QTensor
from . import _checks as _C

__all__ = ["linear"]

_FP16_MAX = 65504.0


_arr = _C.array_of


# ------------------------------------------------------------------- checks
def _check_qweight(weight, name):
    """Validate a qint8 weight QTensor ``(out_features, in_features)``.

    Returns ``(codes int8 (N, K) C-contiguous, scales, zero_points)`` where scales /
    zero points are Python scalars (per tensor) or float64 / int64 ``(N,)`` arrays
    (per channel along axis 0), ready for :func:`numq.kernels.gemm.pack_linear_weight`.
    """
    _C.check_qweight_type(weight, name)
    if weight.ndim != 2:
        raise ValueError(f"{name}: weight must be 2-d (out_features, in_features); got "
                         f"shape {tuple(weight.shape)}")
    n, k = weight.shape
    if n < 1 or not 1 <= k <= _G.K_MAX:
        raise ValueError(f"{name}: weight shape (out_features, in_features) must have "
                         f"out_features >= 1 and 1 <= in_features <= {_G.K_MAX}; got "
                         f"{(n, k)}")
    return _C.qweight_qparams(weight, name, "out_features")


def _check_bias(bias, n, name):
    """``None``, or the bias as a new float32 C-contiguous ``(n,)`` array."""
    return _C.check_bias(bias, n, name, "output feature")


def _check_fp16_weight(weight, name, check_only=False):
    """A float weight ``(N, K)`` as fbgemm's fp16 packing holds it: clipped to +-65504,
    rounded to float16, kept as float32 (what the fp32 GEMM reads).

    ``check_only`` validates and returns None."""
    if isinstance(weight, QTensor):
        raise TypeError(f"{name}: a float16 dynamic Linear takes a float weight; got a "
                        "QTensor")
    w = np.asarray(_arr(weight))
    if w.dtype.kind != "f":
        raise TypeError(f"{name}: weight must be a float array; got dtype {w.dtype}")
    if w.ndim != 2:
        raise ValueError(f"{name}: weight must be 2-d (out_features, in_features); got "
                         f"shape {w.shape}")
    if check_only:
        return None
    w = np.asarray(w, dtype=np.float32)
    if np.any(np.abs(w) > _FP16_MAX):
        warnings.warn(f"{name}: weight values beyond float16's range were clipped to "
                      f"+-{_FP16_MAX:g}", UserWarning, stacklevel=4)
    return np.clip(w, -_FP16_MAX, _FP16_MAX).astype(np.float16).astype(np.float32)


def _check_out_qparams(scale, zero_point, name):
    """Output (scale, zero_point) of a static layer: finite scale > 0, zp in [0, 255]."""
    return (V.scale_scalar(scale, f"{name}: scale"),
            V.int_scalar(zero_point, f"{name}: zero_point", 0, 255))


def _rows(shape, k):
    m = 1
    for d in shape[:-1]:
        m *= d
    return m


def _check_qinput(input, k, name):
    """A quint8 per-tensor QTensor ``(*, k)`` -> ``(codes (M, k) uint8, lead shape)``.

    Runs on every forward call, so it reads the QTensor's fields directly.
    """
    if not isinstance(input, QTensor):
        raise TypeError(f"{name}: input must be a quint8 QTensor (a static quantized layer "
                        "takes quantized input; use numq.quantize_per_tensor, or a dynamic "
                        f"layer for float input); got {type(input).__name__}")
    if input._dtype is not quint8:
        raise TypeError(f"{name}: input must have dtype numq.quint8; got {input.dtype!r}")
    if input._axis is not None:
        raise ValueError(f"{name}: input must be quantized per tensor; got "
                         f"{input.qscheme()!r}")
    a = input._int
    shape = a.shape
    if len(shape) < 2:
        raise ValueError(f"{name}: input must have at least 2 dimensions (*, in_features), "
                         f"as torch requires; got shape {shape}")
    if shape[-1] != k:
        raise ValueError(f"{name}: input's last dimension must equal in_features={k}; got "
                         f"shape {shape}")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a.reshape(_rows(shape, k), k), shape[:-1]


def _check_finput(input, k, name):
    """A float array ``(*, k)`` -> ``(float32 (M, k) C-contiguous, lead shape)``."""
    if isinstance(input, QTensor):
        raise TypeError(f"{name}: input must be a float array (a dynamic layer quantizes "
                        "its input itself); got a QTensor")
    x = _arr(input)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a float16/float32/float64 array; got dtype "
                        f"{x.dtype}")
    x = V.float_array(x, f"{name}: input")
    shape = x.shape
    if len(shape) < 2:
        raise ValueError(f"{name}: input must have at least 2 dimensions (*, in_features), "
                         f"as torch requires; got shape {shape}")
    if shape[-1] != k:
        raise ValueError(f"{name}: input's last dimension must equal in_features={k}; got "
                         f"shape {shape}")
    return x.reshape(_rows(shape, k), k), shape[:-1]


# -------------------------------------------------------------- computations
def _linear_static(input, packed, bias, scale, zero_point, relu, name):
    """Checked static quantized linear on a prepacked weight; returns a quint8 QTensor.

    ``bias`` (float32 (N,) or None), ``scale`` and ``zero_point`` must already be valid.
    """
    x2, lead = _check_qinput(input, packed.k, name)
    n = packed.n
    if x2.shape[0] == 0:
        out = np.empty((0, n), np.uint8)
    else:
        out = _G.qlinear(x2, input._scale, input._zp, packed, bias, scale, zero_point,
                         relu=relu)
    return QTensor._from_parts(out.reshape(lead + (n,)), quint8, scale=scale,
                               zero_point=zero_point)


def _linear_dynamic(input, packed, bias, relu, name):
    """Checked dynamic int8 linear (float in, float32 out) on a prepacked weight.

    One (scale, zero point) for the whole input, fbgemm's rule with ``reduce_range``
    (activations in [0, 127]), as torch's dynamic Linear on x86.
    """
    x2, lead = _check_finput(input, packed.k, name)
    n = packed.n
    if x2.shape[0] == 0:  # no rows: nothing to choose qparams from (torch returns empty)
        return np.empty(lead + (n,), np.float32)
    lo, hi = minmax_f32(x2.reshape(-1))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name}: input must be finite to choose its quantization "
                         "parameters (it holds NaN or inf)")
    out = _G.qlinear_dynamic(x2, packed, bias, relu=relu, reduce_range=True)
    return out.reshape(lead + (n,))


def _linear_fp16(input, weight32, bias, relu, name):
    """Checked float16-weight linear: float32 GEMM on the fp16-rounded weight, then the
    bias added, then ReLU (the order of fbgemm's fp16 path)."""
    n, k = weight32.shape
    x2, lead = _check_finput(input, k, name)
    out = np.matmul(x2, weight32.T)
    if bias is not None:
        out += bias
    if relu:
        np.maximum(out, np.float32(0), out=out)
    return out.reshape(lead + (n,))


def _pack(weight, name):
    """Validate a qint8 weight QTensor and pack it for the GEMM kernels."""
    codes, scales, zps = _check_qweight(weight, name)
    return _G.pack_linear_weight(codes, scales, zps)


def _unpack(packed):
    """The qint8 weight QTensor held by ``packed`` (a new QTensor on each call)."""
    codes = _G.unpack_linear_weight(packed)
    if packed.per_channel:
        return QTensor._from_parts(codes, qint8, scales=np.array(packed.scales, np.float64),
                                   zero_points=np.array(packed.zero_points, np.int64), axis=0)
    return QTensor._from_parts(codes, qint8, scale=float(packed.scales[0]),
                               zero_point=int(packed.zero_points[0]))


# -------------------------------------------------------------------- public
def linear(input, weight, bias=None, scale=None, zero_point=None):
    """Quantized ``y = x @ weight.T + bias`` (``torch.ao.nn.quantized.functional.linear``).

    Parameters
    ----------
    input : QTensor
        quint8, per-tensor, shape ``(*, in_features)`` with at least 2 dimensions.
    weight : QTensor
        qint8, shape ``(out_features, in_features)``, per tensor or per channel along
        axis 0.
    bias : array_like of float, shape (out_features,), optional
        Kept in float32 (never quantized to int32 on this engine).
    scale, zero_point : float, int, optional
        Output quantization parameters; default to the input's.

    Returns
    -------
    QTensor
        quint8, shape ``(*, out_features)``, per tensor with ``(scale, zero_point)``.

    Notes
    -----
    The weight is packed on every call, as torch does; use
    :class:`numq.layers.quantized.Linear` to pack it once. Output codes follow NUMERICS'
    "Static quantized Linear" rule and equal torch 2.13's (x86 / fbgemm) bit for bit.
    """
    name = "linear"
    if not isinstance(input, QTensor):
        raise TypeError(f"{name}: input must be a quint8 QTensor; got {type(input).__name__}")
    if input.qscheme() is not per_tensor_affine:
        raise ValueError(f"{name}: input must be quantized per tensor; got "
                         f"{input.qscheme()!r}")
    if scale is None:
        scale = input.q_scale()
    if zero_point is None:
        zero_point = input.q_zero_point()
    scale, zero_point = _check_out_qparams(scale, zero_point, name)
    packed = _pack(weight, name)
    b = _check_bias(bias, packed.n, name)
    return _linear_static(input, packed, b, scale, zero_point, False, name)
