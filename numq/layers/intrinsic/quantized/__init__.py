"""numq's ``torch.ao.nn.intrinsic.quantized``: fused quantized layers."""
from . import dynamic
from .linear_relu import LinearReLU

__all__ = ["LinearReLU", "dynamic"]
