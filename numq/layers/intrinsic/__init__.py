"""numq's ``torch.ao.nn.intrinsic``: float fused modules, and (in :mod:`.quantized`) the
fused quantized layers they convert to."""
from . import fused
from .fused import _FusedModule, LinearReLU
from . import quantized

__all__ = ["LinearReLU", "quantized"]
