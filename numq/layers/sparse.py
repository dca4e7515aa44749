"""Embedding layers: ``Embedding`` and ``EmbeddingBag`` (``torch.nn.Embedding*``)."""
import numbers

import numpy as np

from .. import _random
from . import init
from .functional import _sparse as F
from .module import Module
from .parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _positive_int(v, arg):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{arg} must be an int; got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{arg} must be > 0; got {v}")
    return int(v)


def _float_dtype(dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return dt


def _check_device(device):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"device must be None or 'cpu'; got {device!r}")


def _make_weight(num_embeddings, embedding_dim, _weight, _freeze, dtype):
    if _weight is None:
        return Parameter(np.empty((num_embeddings, embedding_dim), _float_dtype(dtype)),
                         requires_grad=not _freeze)
    w = _weight.data if isinstance(_weight, Parameter) else np.asarray(_weight)
    if w.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"_weight must have shape (num_embeddings, embedding_dim) = "
                         f"{(num_embeddings, embedding_dim)}; got {w.shape}")
    if dtype is not None:
        w = w.astype(_float_dtype(dtype))
    return Parameter(w, requires_grad=not _freeze)


def _pretrained(embeddings):
    e = embeddings.data if isinstance(embeddings, Parameter) else np.asarray(embeddings)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be 2-d (num_embeddings, embedding_dim); "
                         f"got shape {e.shape}")
    return e


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

    Mirrors ``torch.nn.Embedding``: ``weight`` of shape (num_embeddings, embedding_dim)
    initialised from N(0, 1), with the ``padding_idx`` row set to zero. ``forward(input)``
    takes an integer array of any shape and returns ``input.shape + (embedding_dim,)``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    padding_idx : int, optional
        This row is zero-initialised and never receives a gradient (may be negative).
    max_norm : float, optional
        Looked-up rows with a larger ``norm_type``-norm are rescaled in place in
        ``weight`` on every forward (as torch).
    norm_type : float
    scale_grad_by_freq : bool
        Scale gradients by the inverse frequency of each index in the mini-batch.
    sparse : bool
        Must be False: numq has no sparse gradients (True raises ``ValueError``).
    _weight : ndarray, optional
        Initial weight (copied); ``_freeze`` makes it non-trainable.
    device : None or 'cpu'
    dtype : float32 (default) or float64
    generator : numpy Generator or int, optional
        Source of the initial weights (default: numq's global generator).

    Notes
    -----
    ``backward(grad_output)`` accumulates ``weight.grad`` and returns None: indices have
    no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None, *, generator=None):
        super().__init__()
        _check_device(device)
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            padding_idx = F._padding_idx(padding_idx, self.num_embeddings)
        self.padding_idx = padding_idx
        F._max_norm(max_norm, norm_type)
        F._check_sparse(sparse)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = F._flag(scale_grad_by_freq, "scale_grad_by_freq")
        self.sparse = sparse
        self.weight = _make_weight(self.num_embeddings, self.embedding_dim, _weight, _freeze,
                                   dtype)
        if _weight is None:
            self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """N(0, 1) weights, zero ``padding_idx`` row (torch's ``reset_parameters``)."""
        init.normal_(self.weight, generator=_random.resolve(generator))
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An ``Embedding`` holding a copy of ``embeddings`` (2-d); frozen unless ``freeze=False``.

        The ``padding_idx`` row is kept as given (not zeroed), as in torch.
        """
        e = _pretrained(embeddings)
        return cls(e.shape[0], e.shape[1], _weight=e, _freeze=freeze, padding_idx=padding_idx,
                   max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)

    def forward(self, input):
        w = self.weight.data
        if not self.training:
            return F.embedding(input, w, self.padding_idx, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.sparse)
        idx = F._indices(input, w.shape[0])
        if self.max_norm is not None:
            mn, nt = F._max_norm(self.max_norm, self.norm_type)
            F._renorm_(w, idx.reshape(-1), mn, nt)
        out = np.take(w, idx, axis=0)
        # a private copy of the indices: the caller may reuse its array before backward
        self._saved = (idx.copy() if np.may_share_memory(idx, input) else idx, w.dtype)
        return out

    def backward(self, grad_output):
        idx, dtype = self._take_saved()
        g = F._grad_dtype(grad_output, dtype)
        if g.shape != idx.shape + (self.embedding_dim,):
            raise ValueError(f"grad_output must have shape {idx.shape + (self.embedding_dim,)}; "
                             f"got {g.shape}")
        pad = -1 if self.padding_idx is None else self.padding_idx
        if self.weight.requires_grad:
            self.weight.accumulate(F._embedding_backward(g, idx, self.num_embeddings, pad,
                                                         bool(self.scale_grad_by_freq)))
        return None

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        if self.sparse is not False:
            s += f", sparse={self.sparse!r}"
        return s


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings, without the per-index intermediate.

    Mirrors ``torch.nn.EmbeddingBag`` (default ``mode='mean'``). ``forward(input,
    offsets=None, per_sample_weights=None)``: a 2-d ``input`` holds one bag per row; a
    1-d ``input`` is split into bags by ``offsets``. Returns ``(num_bags, embedding_dim)``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    max_norm, norm_type, scale_grad_by_freq
        As :class:`Embedding` (``scale_grad_by_freq`` not with mode 'max').
    mode : {'mean', 'sum', 'max'}
    sparse : bool
        Must be False.
    _weight : ndarray, optional
    include_last_offset : bool
        ``offsets`` has one extra entry: the end of the last bag.
    padding_idx : int, optional
        Entries equal to it are excluded from their bag (and from the mean's count);
        its row is zero-initialised and receives no gradient.
    device, dtype, generator
        As :class:`Embedding`.

    Notes
    -----
    ``backward(grad_output)`` accumulates ``weight.grad`` and returns the gradient of
    ``per_sample_weights`` (input's shape) when they were given, else None. Mode 'max'
    sends each output element's gradient to the row that won it.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None, *,
                 generator=None):
        super().__init__()
        _check_device(device)
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        F._max_norm(max_norm, norm_type)
        F._check_sparse(sparse)
        if not isinstance(mode, str) or mode not in F._MODES:
            raise ValueError(f"mode must be one of 'sum', 'mean' or 'max'; got {mode!r}")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = F._flag(scale_grad_by_freq, "scale_grad_by_freq")
        if self.scale_grad_by_freq and mode == "max":
            raise ValueError("scale_grad_by_freq is not supported with mode='max'")
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = F._flag(include_last_offset, "include_last_offset")
        if padding_idx is not None:
            padding_idx = F._padding_idx(padding_idx, self.num_embeddings)
        self.padding_idx = padding_idx
        self.weight = _make_weight(self.num_embeddings, self.embedding_dim, _weight, False,
                                   dtype)
        if _weight is None:
            self.reset_parameters(generator)

    reset_parameters = Embedding.reset_parameters

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """An ``EmbeddingBag`` holding a copy of ``embeddings``; frozen unless ``freeze=False``."""
        e = _pretrained(embeddings)
        m = cls(e.shape[0], e.shape[1], _weight=e, max_norm=max_norm, norm_type=norm_type,
                scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                include_last_offset=include_last_offset, padding_idx=padding_idx)
        m.weight.requires_grad = not freeze
        return m

    def forward(self, input, offsets=None, per_sample_weights=None):
        out, bags, max_idx, sizes = F._embedding_bag(
            input, self.weight.data, offsets, self.max_norm, self.norm_type,
            self.scale_grad_by_freq, self.mode, self.sparse, per_sample_weights,
            self.include_last_offset, self.padding_idx)
        if self.training:
            self._saved = (bags, max_idx, sizes)
        return out

    def backward(self, grad_output):
        bags, max_idx, sizes = self._take_saved()
        w = self.weight.data
        g = F._grad_dtype(grad_output, w.dtype)
        expected = (bags.offsets.size - 1, self.embedding_dim)
        if g.shape != expected:
            raise ValueError(f"grad_output must have shape {expected}; got {g.shape}")
        gw, gpsw = F._embedding_bag_backward(g, w, bags, max_idx, sizes)
        self.weight.accumulate(gw)
        return gpsw

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        return s
