"""numq's ``torch.ao.nn.intrinsic.quantized.dynamic``: fused dynamic quantized layers."""
from .linear_relu import LinearReLU

__all__ = ["LinearReLU"]
