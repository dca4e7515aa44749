"""Float fused convolution modules (``torch.ao.nn.intrinsic.ConvReLU{1,2,3}d``).

Each is a ``Sequential(conv, relu)`` (forward and backward as such) that the
quantization workflow converts to the fused quantized layer
(:mod:`numq.layers.intrinsic.quantized.conv_relu`).
"""
from ..activation import ReLU
from ..conv import Conv1d, Conv2d, Conv3d
from .fused import _FusedModule

__all__ = ["ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]


class _ConvReLU(_FusedModule):
    _CONV = None

    def __init__(self, conv, relu):
        if type(conv) is not self._CONV or type(relu) is not ReLU:
            raise TypeError(f"{type(self).__name__}: incorrect types for input modules: "
                            f"{type(conv).__name__} and {type(relu).__name__} (expected "
                            f"{self._CONV.__name__} and ReLU)")
        super().__init__(conv, relu)


class ConvReLU1d(_ConvReLU):
    """``Conv1d`` followed by ``ReLU`` (a fused float module).

    Parameters
    ----------
    conv : numq.layers.Conv1d
    relu : numq.layers.ReLU
    """
    _CONV = Conv1d


class ConvReLU2d(_ConvReLU):
    """``Conv2d`` followed by ``ReLU`` (a fused float module).

    Parameters
    ----------
    conv : numq.layers.Conv2d
    relu : numq.layers.ReLU
    """
    _CONV = Conv2d


class ConvReLU3d(_ConvReLU):
    """``Conv3d`` followed by ``ReLU`` (a fused float module).

    Parameters
    ----------
    conv : numq.layers.Conv3d
    relu : numq.layers.ReLU
    """
    _CONV = Conv3d
