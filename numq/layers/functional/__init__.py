"""Float functional forms (``torch.nn.functional``): forward functions and their backward.

Each op ``f`` has ``f(...)`` (forward, on NumPy arrays) and, when differentiable,
``f_backward(grad_out, ...)`` returning input (and parameter) gradients; layers in
:mod:`numq.layers` call these.
"""
from ._activation import *  # noqa: F401,F403
from ._attention import *  # noqa: F401,F403
from ._linear_conv import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._pooling import *  # noqa: F401,F403
from ._rnn import *  # noqa: F401,F403
from ._sparse import *  # noqa: F401,F403
from ._upsampling import *  # noqa: F401,F403
from . import (_activation, _attention, _linear_conv, _loss, _norm, _pooling, _rnn, _sparse,
               _upsampling)

__all__ = [n for m in (_activation, _attention, _linear_conv, _loss, _norm, _pooling, _rnn,
                       _sparse, _upsampling) for n in m.__all__]
