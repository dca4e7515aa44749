"""numq's ``torch.ao.nn.quantized.dynamic``: float in, float out, weights packed once."""
from .linear import Linear

__all__ = ["Linear"]
