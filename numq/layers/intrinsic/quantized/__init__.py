"""numq's ``torch.ao.nn.intrinsic.quantized``: fused quantized layers."""
from . import dynamic
from .linear_relu import LinearReLU

__all__ = ["LinearReLU", "dynamic"]
from .conv_relu import ConvReLU1d, ConvReLU2d, ConvReLU3d  # noqa: E402
__all__ += ["ConvReLU1d", "ConvReLU2d", "ConvReLU3d"]
