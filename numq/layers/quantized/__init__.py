"""numq's ``torch.ao.nn.quantized``: layers on quantized tensors (QTensor in, QTensor out).

Weights are prepacked once (at ``from_float`` / ``set_weight_bias`` /
``load_state_dict``); :mod:`.functional` holds the functional forms and :mod:`.dynamic`
the float-in / float-out layers.
"""
from . import dynamic, functional
from .linear import Linear, LinearPackedParams

__all__ = ["Linear", "LinearPackedParams", "dynamic", "functional"]
from .conv import Conv1d, Conv2d, Conv3d  # noqa: E402
__all__ += ["Conv1d", "Conv2d", "Conv3d"]
