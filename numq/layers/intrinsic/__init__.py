"""numq's ``torch.ao.nn.intrinsic``: float fused modules, and (in :mod:`.quantized`) the
fused quantized layers they convert to."""
from . import fused
from .fused import _FusedModule, LinearReLU
from . import quantized

__all__ = ["LinearReLU", "quantized"]
from .fused_conv import ConvReLU1d, ConvReLU2d, ConvReLU3d  # noqa: E402
__all__ += ["ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]
