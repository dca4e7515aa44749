"""``Linear`` (``torch.nn.Linear``): ``y = x @ weight.T + bias`` with explicit backward."""
import math

import numpy as np

from .. import _random
from . import init
from .functional import _linear_conv as F
from .module import Module
from .parameter import Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Affine map of the last dimension: ``y = x @ weight.T + bias``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Learn an additive bias (default True).
    dtype : float dtype, optional
        Parameter dtype (float32 by default). Inputs are cast to it.
    generator : np.random.Generator or int, optional
        Source of the initial values (default: numq's global generator, see
        :func:`numq.manual_seed`). Initialisation is torch's:
        ``kaiming_uniform_(a=sqrt(5))`` weight, ``U(-1/sqrt(in), 1/sqrt(in))`` bias.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None

    Notes
    -----
    Input ``(*, in_features)``, output ``(*, out_features)``. A training-mode
    ``forward`` keeps ``(input, weight)`` in ``self._saved``; ``backward(grad_output)``
    returns the input gradient and accumulates ``weight.grad`` / ``bias.grad``.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None, generator=None):
        super().__init__()
        for arg, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Linear: {arg} must be an int; got {type(v).__name__}")
            if v < 0:
                raise ValueError(f"Linear: {arg} must be >= 0; got {v}")
        dt = np.dtype(np.float32 if dtype is None else dtype)
        if dt.kind != "f":
            raise TypeError(f"Linear: dtype must be a float dtype; got {dt}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """torch's default initialisation (see the class docstring)."""
        gen = _random.resolve(generator)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=gen)
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound, generator=gen)

    def forward(self, input):
        """``input @ weight.T + bias`` over the last dimension."""
        w = self.weight.data
        x = F._float_array(input, w.dtype, "Linear", "input")
        y = F.linear(x, w, None if self.bias is None else self.bias.data)
        if self.training:
            self._saved = (x, w)
        return y

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` and ``bias.grad``."""
        x, w = self._take_saved()
        b = self.bias
        gi, gw, gb = F.linear_backward(
            grad_output, x, w,
            output_mask=(True, self.weight.requires_grad, b is not None and b.requires_grad))
        if gw is not None:
            self.weight.accumulate(gw)
        if gb is not None:
            b.accumulate(gb)
        return gi

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` that dynamic quantization leaves alone (``MultiheadAttention.out_proj``).

    Same behaviour as :class:`Linear`; the distinct class lets the quantization workflow
    skip it, as ``torch.nn.modules.linear.NonDynamicallyQuantizableLinear`` does.
    """
