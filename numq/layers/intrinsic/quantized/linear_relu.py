"""Quantized ``LinearReLU`` (``torch.ao.nn.intrinsic.quantized.LinearReLU``)."""
from ....dtypes import qint8
from ...quantized import linear as _qlinear
from .. import fused as _fused

__all__ = ["LinearReLU"]


class LinearReLU(_qlinear.Linear):
    """Quantized ``relu(x @ W.T + b)`` fused in one requantization (quint8 in and out).

    As :class:`numq.layers.quantized.Linear` (attributes, state dict, ``weight()``,
    ``set_weight_bias``), but the constructor's bias flag is ``bias`` and the output is
    clamped below at ``zero_point`` (the quantized 0.0), as torch's ``linear_relu``.
    ``from_float`` takes an observed ``numq.layers.intrinsic.LinearReLU``.
    """

    _FLOAT_MODULE = (_fused.LinearReLU,)
    _relu = True

    def __init__(self, in_features, out_features, bias=True, dtype=qint8):
        super().__init__(in_features, out_features, bias, dtype)
