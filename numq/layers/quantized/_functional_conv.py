"""Quantized convolution: ``torch.ao.nn.quantized.functional.conv{1,2,3}d`` and the
checked calls the quantized Conv layers make into :mod:`numq.kernels.conv`.

Every check of the convolution family lives here (layers only hold state): the quint8
input, the qint8 weight, the float bias, the geometry (stride, padding, dilation,
groups, output size) and the output qparams.

The output is a QTensor whose integer array is channels-last in memory (a transposed
view, as torch's x86 engine returns a channels-last tensor): ``is_contiguous()`` is
False, exactly as torch's, and every QTensor method behaves as on a contiguous tensor.
A following convolution reads it without any layout conversion.
"""
import numpy as np

from ... import _validate as V
from ...dtypes import as_qdtype, per_tensor_affine, quint8
from ...kernels import conv as _K
from ...qtensor import QTensor
from ..functional import _linear_conv as _LF
from . import _checks as _C

__all__ = ["conv1d", "conv2d", "conv3d"]

_DIMS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


_arr = _C.array_of


def check_qweight(weight, rank, name):
    """A qint8 weight ``(OC, C/groups, *k)`` -> ``(codes, scales, zero_points)``.

    Scales / zero points are Python scalars (per tensor) or ``(OC,)`` float64 / int64
    arrays (per channel along axis 0), as :func:`numq.kernels.conv.pack_conv_weight` takes.
    """
    _C.check_qweight_type(weight, name)
    if weight.ndim != rank + 2:
        raise ValueError(f"{name}: weight must be {rank + 2}-d (out_channels, "
                         f"in_channels/groups, *kernel_size); got shape {tuple(weight.shape)}")
    if 0 in weight.shape:
        raise ValueError(f"{name}: weight must not have an empty dimension; got shape "
                         f"{tuple(weight.shape)}")
    return _C.qweight_qparams(weight, name, "out_channels")


def check_bias(bias, n, name):
    """``None``, or the bias as a new float32 ``(n,)`` array."""
    return _C.check_bias(bias, n, name, "output channel")


def check_qinput(input, rank, name):
    """A quint8 per-tensor QTensor of rank ``rank + 2``."""
    if not isinstance(input, QTensor):
        raise TypeError(f"{name}: input must be a quint8 QTensor (quantize it with "
                        f"numq.quantize_per_tensor); got {type(input).__name__}")
    if input.dtype is not quint8:
        raise TypeError(f"{name}: input must have dtype numq.quint8; got {input.dtype!r}")
    if input.qscheme() is not per_tensor_affine:
        raise ValueError(f"{name}: input must be per-tensor quantized; got "
                         f"{input.qscheme()!r}")
    if input.ndim != rank + 2:
        raise ValueError(f"{name}: input shape must be `{_DIMS[rank]}` (a {rank + 2}-d "
                         f"batched input); got shape {tuple(input.shape)}")
    return input


def geometry(stride, padding, dilation, rank, name):
    """``(stride, padding, dilation)`` as rank-tuples (ints or sequences, as torch)."""
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of {rank} ints; "
                         f"quantized convolution does not support padding={padding!r}")
    return (_LF._ntuple(stride, rank, name, "stride", 1),
            _LF._ntuple(padding, rank, name, "padding", 0),
            _LF._ntuple(dilation, rank, name, "dilation", 1))


def run(input, packed, bias, stride, padding, dilation, scale, zero_point, relu, name):
    """Checked quantized convolution with a prepacked weight; returns a quint8 QTensor.

    ``input`` must already be a checked QTensor (:func:`check_qinput`); this checks the
    channel count and output size against ``packed`` and calls the kernel.
    """
    C = input.shape[1]
    if C != packed.in_channels:
        raise ValueError(f"{name}: input has {C} channels, but the weight expects "
                         f"in_channels = {packed.in_channels} (weight.shape[1] * groups = "
                         f"{packed.in_channels // packed.groups} * {packed.groups})")
    if input.shape[0] == 0:
        raise ValueError(f"{name}: input batch size must be >= 1; got shape "
                         f"{tuple(input.shape)}")
    spatial = tuple(input.shape[2:])
    out = _K.conv_output_size(spatial, packed.kernel_size, stride, padding, dilation)
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: output size {out} is too small (every dimension must be "
                         f">= 1) for input size {spatial}, kernel_size {packed.kernel_size}, "
                         f"stride {stride}, padding {padding}, dilation {dilation}")
    y = _K.qconv(input._int, input._scale, input._zp, packed, bias, stride, padding,
                 dilation, scale, zero_point, relu)
    return QTensor._from_parts(y, quint8, scale=scale, zero_point=zero_point)


def pack(weight, groups, rank, name):
    """Check ``weight`` / ``groups`` and prepack; returns the PackedConvWeight."""
    codes, s, z = check_qweight(weight, rank, name)
    groups = _LF._groups(groups, name)
    OC = codes.shape[0]
    k = int(np.prod(codes.shape[1:]))
    if k > _K._G.K_MAX:
        raise ValueError(f"{name}: in_channels/groups * prod(kernel_size) must be <= "
                         f"{_K._G.K_MAX} (int32 accumulation stays exact); got {k}")
    if OC % groups:
        raise ValueError(f"{name}: out_channels ({OC}, weight.shape[0]) must be divisible "
                         f"by groups ({groups})")
    return _K.pack_conv_weight(codes, s, z, groups)


def _conv(rank, input, weight, bias, stride, padding, dilation, groups, padding_mode, scale,
          zero_point, dtype):
    name = f"conv{rank}d"
    if padding_mode != "zeros":
        raise ValueError(f"{name}: only padding_mode='zeros' is supported by the quantized "
                         f"functional convolution (as in torch); got {padding_mode!r}")
    if as_qdtype(dtype, allowed=(quint8,)) is not quint8:
        raise TypeError(f"{name}: dtype must be numq.quint8; got {dtype!r}")
    check_qinput(input, rank, name)
    stride, padding, dilation = geometry(stride, padding, dilation, rank, name)
    s = V.scale_scalar(scale, f"{name}: scale")
    z = V.int_scalar(zero_point, f"{name}: zero_point", 0, 255)
    packed = pack(weight, groups, rank, name)
    b = check_bias(bias, packed.out_channels, name)
    return run(input, packed, b, stride, padding, dilation, s, z, False, name)


_DOC = """Quantized {rank}-d convolution (``torch.ao.nn.quantized.functional.conv{rank}d``).

The weight is prepacked on every call; use ``numq.layers.quantized.Conv{rank}d`` to pack
it once.

Parameters
----------
input : QTensor
    quint8, per tensor, shape ``{dims}``.
weight : QTensor
    qint8, per tensor or per channel (axis 0), shape ``(out_channels,
    in_channels/groups, *kernel_size)``.
bias : float array (out_channels,) or None
    Not quantized (added in float32 before requantization, as torch's x86 engine).
stride, padding, dilation : int or tuple of {rank} ints
groups : int
padding_mode : 'zeros'
    The only mode (as in torch).
scale, zero_point : float, int
    Output quantization parameters (zero point in [0, 255]).
dtype : QDType
    ``numq.quint8`` (the only output dtype).

Returns
-------
QTensor
    quint8 ``(N, out_channels, *out_size)``, exact with torch 2.13's x86 engine; its
    integer array is channels-last in memory.
"""


def conv1d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 scale, zero_point, dtype)


def conv2d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 scale, zero_point, dtype)


def conv3d(input, weight, bias, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", scale=1.0, zero_point=0, dtype=quint8):
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 scale, zero_point, dtype)


conv1d.__doc__ = _DOC.format(rank=1, dims=_DIMS[1])
conv2d.__doc__ = _DOC.format(rank=2, dims=_DIMS[2])
conv3d.__doc__ = _DOC.format(rank=3, dims=_DIMS[3])
