"""numq's ``torch.ao.nn.quantized.functional``: functions on quantized tensors.

A thin module: each op family lives in its own ``_functional_*.py`` and is re-exported
here.
"""
from ._functional_linear import linear

__all__ = ["linear"]
from ._functional_conv import conv1d, conv2d, conv3d  # noqa: E402
__all__ += ["conv1d", "conv2d", "conv3d"]
