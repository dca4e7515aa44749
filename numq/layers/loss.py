"""Loss modules (``torch.nn.CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``).

``loss = loss_fn(input, target)`` returns the loss and, in training mode, keeps what the
gradient needs in ``self._saved``; ``loss_fn.backward()`` (``grad_output=1.0``) returns
the gradient with respect to ``input``, ready for ``model.backward``::

    out = model(x); loss = loss_fn(out, y)
    opt.zero_grad(); model.backward(loss_fn.backward()); opt.step()
"""
import numpy as np

from .functional import _loss as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = F._reduction(reduction, size_average, reduce)

    def _finish(self, loss, ctx):
        if self.training:
            self._saved = ctx
        return loss


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if weight is not None:
            weight = np.asarray(weight.data if hasattr(weight, "accumulate") else weight)
            if weight.dtype.kind != "f":
                raise TypeError(f"weight must be a float array; got dtype {weight.dtype}")
            weight = np.array(weight, copy=True)
        # a buffer, as in torch: it appears in state_dict() when given
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy between logits and class indices or class probabilities.

    Parameters
    ----------
    weight : ndarray, optional
        Per-class weights, shape ``(C,)`` (a buffer, as in torch).
    size_average, reduce : bool, optional
        Deprecated; override ``reduction``.
    ignore_index : int
        Class-index targets equal to it are skipped (default -100).
    reduction : {'mean', 'sum', 'none'}
    label_smoothing : float
        In ``[0, 1]``.

    See Also
    --------
    numq.layers.functional.cross_entropy
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = F._ignore_index(ignore_index)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0.0, 1.0]; got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return self._finish(*F._cross_entropy(input, target, self.weight, self.ignore_index,
                                              self.reduction, self.label_smoothing))

    def backward(self, grad_output=1.0):
        """Gradient of the last loss with respect to ``input``."""
        return F._cross_entropy_grad(grad_output, self._take_saved())


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (e.g. a ``LogSoftmax`` output).

    Parameters
    ----------
    weight : ndarray, optional
        Per-class weights, shape ``(C,)``.
    size_average, reduce : bool, optional
        Deprecated; override ``reduction``.
    ignore_index : int
        Targets equal to it are skipped (default -100).
    reduction : {'mean', 'sum', 'none'}
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = F._ignore_index(ignore_index)

    def forward(self, input, target):
        return self._finish(*F._nll_loss(input, target, self.weight, self.ignore_index,
                                         self.reduction))

    def backward(self, grad_output=1.0):
        """Gradient of the last loss with respect to ``input``."""
        return F._nll_loss_grad(grad_output, self._take_saved())


class MSELoss(_Loss):
    """Mean squared error between ``input`` and ``target``.

    Parameters
    ----------
    size_average, reduce : bool, optional
        Deprecated; override ``reduction``.
    reduction : {'mean', 'sum', 'none'}
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input, target):
        return self._finish(*F._mse_loss(input, target, self.reduction, None))

    def backward(self, grad_output=1.0):
        """Gradient of the last loss with respect to ``input``."""
        return F._mse_loss_grad(grad_output, self._take_saved())
