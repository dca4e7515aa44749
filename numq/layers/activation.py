"""Activation layers (``torch.nn.ReLU`` ... ``torch.nn.Softmax``) with explicit backward.

Each layer's training-mode ``forward`` keeps, in ``self._saved``, the one array its
``backward`` needs (the input, or the output for ReLU, Sigmoid, Tanh, Softmax and
LogSoftmax); eval mode keeps nothing. Float32 and float64 inputs are computed in their
own dtype (these layers have no parameters to impose one), so a ``model.double()`` stays
float64 end to end.

``inplace``: accepted (and shown in ``repr``) for compatibility with torch, but numq's
layers never modify their input: the result is always a new array. A later layer or the
caller may still hold the input, and some backwards need it. The functional forms in
:mod:`numq.layers.functional` do honour ``inplace=True``.
"""
import warnings

from .._validate import int_scalar
from .functional import _activation as F
from .module import Module

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "GELU", "SiLU", "Hardswish",
           "Hardsigmoid", "Hardtanh", "Sigmoid", "Tanh", "Threshold", "Softmax", "LogSoftmax"]


def _inplace_repr(inplace, first=False):
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class _Elementwise(Module):
    """Shared forward/backward plumbing: ``_f(x)`` computes, ``_df(grad, saved)`` differentiates."""

    _save_output = False  # save the output instead of the input for backward

    def forward(self, input):
        x = F._as_float(input)
        out = self._f(x)
        if self.training:
            self._saved = out if self._save_output else x
        return out

    def backward(self, grad_output):
        """Gradient with respect to the input of the last training-mode forward."""
        return self._df(grad_output, self._take_saved())


class ReLU(_Elementwise):
    """``max(x, 0)`` element-wise (``torch.nn.ReLU``).

    Parameters
    ----------
    inplace : bool
        Accepted for torch compatibility; numq never modifies the input.
    """

    _save_output = True

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _f(self, x):
        return F.relu(x)

    def _df(self, g, y):
        return F.relu_backward(g, y)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class Hardtanh(_Elementwise):
    """``clip(x, min_val, max_val)`` (``torch.nn.Hardtanh``).

    Parameters
    ----------
    min_val, max_val : float
        Clipping range; ``max_val`` must exceed ``min_val``.
    inplace : bool
        Accepted for torch compatibility; numq never modifies the input.
    min_value, max_value : float, optional
        Deprecated aliases of ``min_val`` / ``max_val`` (as in torch, with a FutureWarning).
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
                 max_value=None):
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`",
                          FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`",
                          FutureWarning, stacklevel=2)
            max_val = max_value
        F._check_hardtanh(min_val, max_val)
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def _f(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def _df(self, g, x):
        return F.hardtanh_backward(g, x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace_repr(self.inplace)


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)`` (``torch.nn.ReLU6``, a :class:`Hardtanh` on [0, 6])."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class LeakyReLU(_Elementwise):
    """``x if x > 0 else negative_slope * x`` (``torch.nn.LeakyReLU``)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        F._real(negative_slope, "negative_slope")
        self.negative_slope = negative_slope
        self.inplace = inplace

    def _f(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def _df(self, g, x):
        return F.leaky_relu_backward(g, x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + _inplace_repr(self.inplace)


class ELU(_Elementwise):
    """``x if x > 0 else alpha * (exp(x) - 1)`` (``torch.nn.ELU``)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        F._real(alpha, "alpha")
        self.alpha = alpha
        self.inplace = inplace

    def _f(self, x):
        return F.elu(x, self.alpha)

    def _df(self, g, x):
        return F.elu_backward(g, x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace)


class CELU(_Elementwise):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``torch.nn.CELU``)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        F._check_celu_alpha(alpha)
        self.alpha = alpha
        self.inplace = inplace

    def _f(self, x):
        return F.celu(x, self.alpha)

    def _df(self, g, x):
        return F.celu_backward(g, x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace)


class GELU(_Elementwise):
    """Gaussian error linear unit (``torch.nn.GELU``).

    Parameters
    ----------
    approximate : {'none', 'tanh'}
        ``'none'``: exact ``x * Phi(x)``; ``'tanh'``: torch's tanh approximation.
    """

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = F._check_approximate(approximate)

    def _f(self, x):
        return F.gelu(x, self.approximate)

    def _df(self, g, x):
        return F.gelu_backward(g, x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_Elementwise):
    """``x * sigmoid(x)`` (``torch.nn.SiLU``)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _f(self, x):
        return F.silu(x)

    def _df(self, g, x):
        return F.silu_backward(g, x)

    def extra_repr(self):
        return _inplace_repr(self.inplace, first=True)


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6`` (``torch.nn.Hardswish``; its repr never shows ``inplace``)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _f(self, x):
        return F.hardswish(x)

    def _df(self, g, x):
        return F.hardswish_backward(g, x)


class Hardsigmoid(_Elementwise):
    """``relu6(x + 3) / 6`` (``torch.nn.Hardsigmoid``; its repr never shows ``inplace``)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _f(self, x):
        return F.hardsigmoid(x)

    def _df(self, g, x):
        return F.hardsigmoid_backward(g, x)


class Sigmoid(_Elementwise):
    """Logistic sigmoid (``torch.nn.Sigmoid``)."""

    _save_output = True

    def _f(self, x):
        return F.sigmoid(x)

    def _df(self, g, y):
        return F.sigmoid_backward(g, y)


class Tanh(_Elementwise):
    """Hyperbolic tangent (``torch.nn.Tanh``)."""

    _save_output = True

    def _f(self, x):
        return F.tanh(x)

    def _df(self, g, y):
        return F.tanh_backward(g, y)


class Threshold(_Elementwise):
    """``x if x > threshold else value`` (``torch.nn.Threshold``)."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        F._real(threshold, "threshold", finite=False)
        F._real(value, "value", finite=False)
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def _f(self, x):
        return F.threshold(x, self.threshold, self.value)

    def _df(self, g, x):
        return F.threshold_backward(g, x, self.threshold)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + _inplace_repr(self.inplace)


class _SoftmaxBase(Module):
    _fwd = None
    _bwd = None
    _name = ""

    def __init__(self, dim=None):
        super().__init__()
        if dim is not None:
            int_scalar(dim, "dim")  # checked against the input's rank at forward
        self.dim = dim

    def forward(self, input):
        x = F._as_float(input)
        # resolve dim here (torch's implicit choice for None warns, as torch does)
        d = F._softmax_dim(self.dim, x.ndim, self._name, 4)
        out = type(self)._fwd(x, d)
        if self.training:
            self._saved = (out, d)
        return out

    def backward(self, grad_output):
        """Gradient with respect to the input of the last training-mode forward."""
        out, d = self._take_saved()
        return type(self)._bwd(grad_output, out, d)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """Softmax along ``dim`` (``torch.nn.Softmax``; ``dim=None`` uses torch's legacy choice
    with its deprecation warning)."""

    _fwd = staticmethod(F.softmax)
    _bwd = staticmethod(F.softmax_backward)
    _name = "softmax"


class LogSoftmax(_SoftmaxBase):
    """``log(softmax(x))`` along ``dim``, computed stably (``torch.nn.LogSoftmax``)."""

    _fwd = staticmethod(F.log_softmax)
    _bwd = staticmethod(F.log_softmax_backward)
    _name = "log_softmax"
