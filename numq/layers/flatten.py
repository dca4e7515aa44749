"""``Flatten`` (``torch.nn.Flatten``) with explicit backward."""
import numpy as np

from .._validate import int_scalar
from .module import Module

__all__ = ["Flatten"]


def _flat_shape(shape, start_dim, end_dim):
    """Output shape of flattening axes ``start_dim..end_dim`` (inclusive) of ``shape``."""
    nd = max(len(shape), 1)  # a 0-d input flattens like a 1-element 1-d one, as torch
    s = int_scalar(start_dim, "start_dim")
    e = int_scalar(end_dim, "end_dim")
    for v, arg in ((s, "start_dim"), (e, "end_dim")):
        if not -nd <= v < nd:
            raise ValueError(f"Flatten: {arg} must be in [{-nd}, {nd - 1}] for a "
                             f"{len(shape)}-d input; got {v}")
    s, e = s % nd, e % nd
    if s > e:
        raise ValueError(f"Flatten: start_dim ({start_dim}) cannot come after end_dim "
                         f"({end_dim}) for a {len(shape)}-d input")
    shape = tuple(shape) or (1,)
    return shape[:s] + (int(np.prod(shape[s:e + 1], dtype=np.int64)),) + shape[e + 1:]


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one (``torch.nn.Flatten``).

    Any array dtype is accepted (it is a reshape); the result is a view when NumPy can
    make one. ``backward`` reshapes the gradient back to the input's shape.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = int_scalar(start_dim, "start_dim")
        self.end_dim = int_scalar(end_dim, "end_dim")

    def forward(self, input):
        x = np.asarray(input)
        out = x.reshape(_flat_shape(x.shape, self.start_dim, self.end_dim))
        if self.training:
            self._saved = x.shape
        return out

    def backward(self, grad_output):
        """The gradient reshaped to the input's shape."""
        shape = self._take_saved()
        g = np.asarray(grad_output)
        if g.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"grad_output must have {int(np.prod(shape))} elements (the "
                             f"flattened input of shape {shape}); got shape {g.shape}")
        return g.reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
