"""numq's ``torch.ao.nn.quantized``: layers on quantized tensors (QTensor in, QTensor out).

Weights are prepacked once (at ``from_float`` / ``set_weight_bias`` /
``load_state_dict``); :mod:`.functional` holds the functional forms and :mod:`.dynamic`
the float-in / float-out layers.
"""
from . import dynamic, functional
from .conv import Conv1d, Conv2d, Conv3d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear, LinearPackedParams

__all__ = ["Linear", "LinearPackedParams", "Conv1d", "Conv2d", "Conv3d",
           "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "dynamic", "functional"]
