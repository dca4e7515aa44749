"""Float fused modules (``torch.ao.nn.intrinsic``): containers that the quantization
workflow swaps for one fused quantized (or QAT) layer."""
from ..activation import ReLU
from ..containers import Sequential
from ..linear import Linear

__all__ = ["_FusedModule", "LinearReLU"]


class _FusedModule(Sequential):
    """Marks a ``Sequential`` as a fusion of layers (torch's ``_FusedModule``)."""


class LinearReLU(_FusedModule):
    """``Linear`` followed by ``ReLU``; a float ``Sequential`` (forward and backward as
    such) that ``convert`` replaces with the fused quantized ``LinearReLU``.

    Parameters
    ----------
    linear : numq.layers.Linear
    relu : numq.layers.ReLU
    """

    def __init__(self, linear, relu):
        if type(linear) is not Linear or type(relu) is not ReLU:
            raise TypeError(f"LinearReLU: incorrect types for input modules: "
                            f"{type(linear).__name__} and {type(relu).__name__} "
                            "(expected Linear and ReLU)")
        super().__init__(linear, relu)
