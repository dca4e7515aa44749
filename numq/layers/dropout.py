"""``Dropout`` (``torch.nn.Dropout``) with explicit backward."""
from .._random import resolve
from .functional import _activation as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero elements with probability ``p`` in training, scaling the rest by ``1 / (1 - p)``.

    In eval mode the input is returned unchanged (and nothing is saved).

    Parameters
    ----------
    p : float
        Drop probability in [0, 1].
    inplace : bool
        Accepted for torch compatibility (shown in ``repr``); numq never modifies the
        input.
    generator : numpy.random.Generator or int or None
        numq extension: the mask's random source. An int seeds a generator once, here,
        so successive forwards draw different masks; ``None`` uses numq's global
        generator (``numq.manual_seed``) at each call. numq's masks are not torch's.
    """

    def __init__(self, p=0.5, inplace=False, *, generator=None):
        super().__init__()
        self.p = p
        F._check_p(p)
        self.inplace = inplace
        self.generator = None if generator is None else resolve(generator)

    def forward(self, input):
        out, mask = F.dropout(input, self.p, self.training, generator=self.generator,
                              return_mask=True)
        if self.training:
            self._saved = mask  # the boolean keep-mask; p is read again in backward
        return out

    def backward(self, grad_output):
        """``grad_output * mask / (1 - p)`` for the last training-mode forward's mask."""
        return F.dropout_backward(grad_output, self._take_saved(), self.p)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
