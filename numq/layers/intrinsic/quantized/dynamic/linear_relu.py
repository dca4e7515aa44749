"""Dynamic quantized ``LinearReLU`` (``torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU``)."""
from .....dtypes import qint8
from ....quantized.dynamic import linear as _dlinear
from ... import fused as _fused

__all__ = ["LinearReLU"]


class LinearReLU(_dlinear.Linear):
    """Dynamic quantized ``relu(x @ W.T + b)``: float in, float out, qint8 or float16.

    As :class:`numq.layers.quantized.dynamic.Linear`, with ``max(0, y)`` applied to the
    float output (after the fused bias for qint8; after the bias add for float16);
    the constructor's bias flag is ``bias``.
    """

    _FLOAT_MODULE = (_fused.LinearReLU,)
    _relu = True

    def __init__(self, in_features, out_features, bias=True, dtype=qint8):
        super().__init__(in_features, out_features, bias, dtype)
