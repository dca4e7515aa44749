"""numq's ``torch.nn``: Module, containers and float layers with explicit backward.

``numq.layers.X`` is ``torch.nn.X``. Every trainable layer has ``forward`` (saving what
it needs in ``self._saved`` in training mode) and ``backward(grad_output)`` (returning
the input gradient and accumulating parameter ``.grad``).
"""
from . import functional, init
from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .containers import Identity, ModuleDict, ModuleList, Sequential
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .module import IncompatibleKeys, Module, RemovableHandle
from .normalization import *  # noqa: F401,F403
from .parameter import Parameter
from .pooling import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from . import (activation, attention, conv, dropout, flatten, linear, loss, normalization,
               pooling, rnn, sparse, upsampling)

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Identity",
           "RemovableHandle", "IncompatibleKeys", "functional", "init"] + [
    n for m in (activation, attention, conv, dropout, flatten, linear, loss, normalization,
                pooling, rnn, sparse, upsampling) for n in m.__all__]
from . import intrinsic, quantized  # noqa: E402  (quantized layers build on the float ones)
