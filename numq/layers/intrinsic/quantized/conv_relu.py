"""Quantized ``ConvReLU1d/2d/3d`` (``torch.ao.nn.intrinsic.quantized.ConvReLU*d``)."""
from ...quantized import conv as _qconv
from .. import fused_conv as _fused

__all__ = ["ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]

_DOC = """Quantized ``relu(conv{rank}d(x))`` fused in one requantization (quint8 in and out).

As :class:`numq.layers.quantized.Conv{rank}d` (arguments, attributes, state dict,
``weight()``, ``set_weight_bias``), but the output is clamped below at ``zero_point``
(the quantized 0.0), as torch's ``conv{rank}d_relu``. ``from_float`` takes an observed
``numq.layers.intrinsic.ConvReLU{rank}d``.
"""


class ConvReLU1d(_qconv.Conv1d):
    __doc__ = _DOC.format(rank=1)
    _FLOAT_MODULE = _fused.ConvReLU1d
    _relu = True


class ConvReLU2d(_qconv.Conv2d):
    __doc__ = _DOC.format(rank=2)
    _FLOAT_MODULE = _fused.ConvReLU2d
    _relu = True


class ConvReLU3d(_qconv.Conv3d):
    __doc__ = _DOC.format(rank=3)
    _FLOAT_MODULE = _fused.ConvReLU3d
    _relu = True
