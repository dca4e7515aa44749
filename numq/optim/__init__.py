"""numq.optim: optimizers with ``torch.optim``'s names, arguments and update rules.

They update :class:`numq.layers.Parameter` values in place from their ``.grad``::

    opt = numq.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); model.backward(loss_fn.backward()); opt.step()
"""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
