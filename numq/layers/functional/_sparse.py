"""Embedding lookups (``torch.nn.functional.embedding`` / ``embedding_bag``) and their backward.

Indices are integer arrays; weights are float arrays of shape ``(num_embeddings, D)``.
Validation happens here; the bag reductions run in
:mod:`numq.kernels.embedding_float`.
"""
import math
import numbers

import numpy as np

from ...kernels import embedding_float as _k
from ..parameter import Parameter

__all__ = ["embedding", "embedding_backward", "embedding_bag", "embedding_bag_backward"]

_MODES = {"sum": _k.MODE_SUM, "mean": _k.MODE_MEAN, "max": _k.MODE_MAX}
_NO_MAX = np.empty((0, 0), np.int64)  # max_indices placeholder for sum / mean


# ------------------------------------------------------------------ validation
def _array(x):
    return x.data if isinstance(x, Parameter) else x


def _weight(weight, arg="weight"):
    w = _array(weight)
    if not isinstance(w, np.ndarray):
        w = np.asarray(w)
    if w.dtype.kind != "f" or w.dtype.itemsize not in (4, 8):
        raise TypeError(f"{arg} must be a float32 or float64 array; got dtype {w.dtype}")
    if w.ndim != 2:
        raise ValueError(f"{arg} must be 2-d (num_embeddings, embedding_dim); got shape {w.shape}")
    return w


def _indices(x, num_embeddings, arg="input"):
    """``x`` as an int64 array (same shape) after checking every index is in range."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if x.size == 0 and x.dtype.kind == "f":
            x = x.astype(np.int64)  # np.asarray([]) is float64
    if x.dtype.kind not in "iu":
        raise TypeError(f"{arg} must be an integer array of indices; got dtype {x.dtype}")
    if x.size:
        lo, hi = x.min(), x.max()
        if lo < 0 or hi >= num_embeddings:
            # torch raises IndexError here too ("index out of range in self")
            raise IndexError(f"{arg} holds an index out of range: every index must lie in "
                             f"[0, {num_embeddings - 1}]; got range [{lo}, {hi}]")
    return np.asarray(x, dtype=np.int64, order="C")  # (ascontiguousarray makes 0-d 1-d)


def _padding_idx(padding_idx, num_embeddings):
    """torch's normalisation: negative counts from the end; -1 (internal) means none."""
    if padding_idx is None:
        return -1
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"padding_idx must be an int or None; got {type(padding_idx).__name__}")
    p = int(padding_idx)
    if not -num_embeddings <= p < num_embeddings:
        raise ValueError(f"padding_idx must be within num_embeddings: in "
                         f"[{-num_embeddings}, {num_embeddings - 1}]; got {p}")
    return p % num_embeddings


def _max_norm(max_norm, norm_type):
    if max_norm is None:
        return None, None
    if isinstance(max_norm, (bool, np.bool_)) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"max_norm must be a number or None; got {type(max_norm).__name__}")
    if not (isinstance(norm_type, numbers.Real) and not isinstance(norm_type, (bool, np.bool_))):
        raise TypeError(f"norm_type must be a number; got {type(norm_type).__name__}")
    if not float(max_norm) >= 0 or math.isnan(float(max_norm)):
        raise ValueError(f"max_norm must be >= 0; got {max_norm!r}")
    if not float(norm_type) > 0:
        raise ValueError(f"norm_type must be > 0; got {norm_type!r}")
    return float(max_norm), float(norm_type)


def _check_sparse(sparse):
    if sparse:
        raise ValueError("sparse=True is not supported: numq keeps dense gradients; "
                         "use sparse=False")


def _flag(v, arg):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{arg} must be a bool; got {type(v).__name__}")
    return bool(v)


def _renorm_(weight, idx, max_norm, norm_type):
    """Rescale in place every looked-up row whose ``norm_type``-norm exceeds ``max_norm``.

    As ``torch.embedding_renorm_``: scale = max_norm / (norm + 1e-7); not differentiated.
    """
    if idx.size == 0:
        return
    rows = np.unique(idx)
    sub = weight[rows]
    norms = np.linalg.norm(sub.astype(np.float64), ord=norm_type, axis=1)
    over = norms > max_norm
    if np.any(over):
        scale = (max_norm / (norms[over] + 1e-7)).astype(weight.dtype)
        weight[rows[over]] = sub[over] * scale[:, None]


def _grad_dtype(grad, dtype, arg="grad_output"):
    g = np.asarray(grad)
    if g.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {g.dtype}")
    return np.ascontiguousarray(g, dtype=dtype)


def _inverse_frequency(idx, num_weights, dtype):
    """``1 / count(idx[i])`` for every entry: torch's ``scale_grad_by_freq`` factor."""
    counts = np.bincount(idx, minlength=num_weights)
    return (1.0 / counts[idx]).astype(dtype)


# ------------------------------------------------------------------- embedding
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Look up rows of ``weight`` (``torch.nn.functional.embedding``).

    Parameters
    ----------
    input : array_like of int
        Indices, any shape, each in ``[0, num_embeddings)``.
    weight : ndarray or Parameter, shape (num_embeddings, embedding_dim), float
    padding_idx : int, optional
        Only affects the gradient (see :func:`embedding_backward`); may be negative.
    max_norm : float, optional
        Rows looked up whose ``norm_type``-norm exceeds it are rescaled to norm
        ``max_norm`` **in place** in ``weight`` before the lookup, as torch does.
    norm_type : float
        The p of the p-norm for ``max_norm`` (``inf`` allowed).
    scale_grad_by_freq : bool
        Only affects the gradient.
    sparse : bool
        Must be False (numq has no sparse gradients).

    Returns
    -------
    ndarray, shape ``input.shape + (embedding_dim,)``, weight's dtype
    """
    w = _weight(weight)
    _padding_idx(padding_idx, w.shape[0])
    _check_sparse(sparse)
    _flag(scale_grad_by_freq, "scale_grad_by_freq")
    idx = _indices(input, w.shape[0])
    mn, nt = _max_norm(max_norm, norm_type)
    if mn is not None:
        _renorm_(w, idx.reshape(-1), mn, nt)
    return np.take(w, idx, axis=0)


def embedding_backward(grad_output, input, num_weights, padding_idx=None,
                       scale_grad_by_freq=False):
    """Weight gradient of :func:`embedding`.

    Parameters
    ----------
    grad_output : ndarray, shape ``input.shape + (embedding_dim,)``, float
    input : array_like of int
        The indices given to the forward.
    num_weights : int
        ``num_embeddings``.
    padding_idx : int, optional
        Its row gets no gradient.
    scale_grad_by_freq : bool
        Divide each entry's contribution by how often its index occurs in ``input``.

    Returns
    -------
    ndarray, shape (num_weights, embedding_dim), grad_output's dtype (float32/float64)
    """
    if isinstance(num_weights, (bool, np.bool_)) or not isinstance(num_weights, numbers.Integral):
        raise TypeError(f"num_weights must be an int; got {type(num_weights).__name__}")
    if num_weights < 1:
        raise ValueError(f"num_weights must be >= 1; got {num_weights}")
    num_weights = int(num_weights)
    idx = _indices(input, num_weights)
    g = np.asarray(grad_output)
    if g.dtype.kind != "f":
        raise TypeError(f"grad_output must be a float array; got dtype {g.dtype}")
    if g.shape[:-1] != idx.shape or g.ndim != idx.ndim + 1:
        raise ValueError(f"grad_output must have shape input.shape + (embedding_dim,) = "
                         f"{idx.shape} + (D,); got {g.shape}")
    pad = _padding_idx(padding_idx, num_weights)
    sgbf = _flag(scale_grad_by_freq, "scale_grad_by_freq")
    dtype = np.float64 if g.dtype == np.float64 else np.float32
    return _embedding_backward(g.astype(dtype, copy=False), idx, num_weights, pad, sgbf)


def _embedding_backward(grad_output, idx, num_weights, pad, sgbf):
    """Validated core: every entry is its own bag of one in the bag kernel."""
    flat = idx.reshape(-1)
    d = grad_output.shape[-1]
    g = np.ascontiguousarray(grad_output.reshape(flat.size, d))
    gw = np.zeros((num_weights, d), g.dtype)
    scale = (_inverse_frequency(flat, num_weights, g.dtype) if sgbf and flat.size
             else np.empty(0, g.dtype))
    offsets = np.arange(flat.size + 1, dtype=np.int64)
    sizes = np.ones(flat.size, np.int64)
    _k.embedding_bag_backward(g, flat, offsets, scale, _k.MODE_SUM, pad, sizes, _NO_MAX, gw)
    return gw


# --------------------------------------------------------------- embedding_bag
class _Bags:
    """Validated, flattened embedding-bag arguments (what forward and backward share)."""

    __slots__ = ("idx", "offsets", "psw", "mode", "pad", "sgbf", "input_shape", "num_weights")


def _prepare_bags(input, num_weights, dtype, offsets, scale_grad_by_freq, mode,
                  per_sample_weights, include_last_offset, padding_idx):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of 'sum', 'mean' or 'max'; got {mode!r}")
    b = _Bags()
    b.mode = _MODES[mode]
    b.num_weights = num_weights
    b.pad = _padding_idx(padding_idx, num_weights)
    b.sgbf = _flag(scale_grad_by_freq, "scale_grad_by_freq")
    ilo = _flag(include_last_offset, "include_last_offset")
    if b.sgbf and b.mode == _k.MODE_MAX:
        raise ValueError("scale_grad_by_freq is not supported with mode='max'")
    idx = _indices(input, num_weights)
    b.input_shape = idx.shape
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("offsets must be None when input is 2-d (each row is a bag); "
                             f"got offsets of shape {np.shape(offsets)}")
        nb, length = idx.shape
        offs = np.arange(0, nb * length + 1, max(length, 1), dtype=np.int64)
        if length == 0:
            offs = np.zeros(nb + 1, np.int64)
        idx = idx.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets must be given (a 1-d array of bag starts) when input "
                             "is 1-d")
        offs = _offsets(offsets, idx.size, ilo)
    else:
        raise ValueError(f"input must be 1-d (with offsets) or 2-d (one bag per row); "
                         f"got {idx.ndim}-d input of shape {idx.shape}")
    b.idx, b.offsets = idx, offs
    if per_sample_weights is None:
        b.psw = None
    else:
        if b.mode != _k.MODE_SUM:
            raise ValueError(f"per_sample_weights is only supported for mode='sum'; got "
                             f"mode={mode!r}")
        p = _array(per_sample_weights)
        p = np.asarray(p)
        if p.dtype.kind != "f":
            raise TypeError(f"per_sample_weights must be a float array; got dtype {p.dtype}")
        if p.shape != b.input_shape:
            raise ValueError(f"per_sample_weights must have the shape of input "
                             f"{b.input_shape}; got {p.shape}")
        b.psw = np.ascontiguousarray(p.reshape(-1), dtype=dtype)
    return b


def _offsets(offsets, n, include_last_offset):
    o = np.asarray(offsets)
    if o.dtype.kind not in "iu":
        raise TypeError(f"offsets must be an integer array; got dtype {o.dtype}")
    if o.ndim != 1:
        raise ValueError(f"offsets must be 1-d; got shape {o.shape}")
    o = o.astype(np.int64)
    if o.size and o[0] != 0:
        raise ValueError(f"offsets[0] must be 0 (the first bag starts at position 0); "
                         f"got {o[0]}")
    if o.size > 1 and np.any(np.diff(o) < 0):
        raise ValueError("offsets must be non-decreasing")
    if o.size and o[-1] > n:
        raise ValueError(f"offsets[-1] must be <= len(input) = {n}; got {o[-1]}")
    if include_last_offset:
        if o.size == 0:
            raise ValueError("offsets must hold at least one entry when include_last_offset "
                             "is True")
        return np.ascontiguousarray(o)
    return np.concatenate([o, np.array([n], np.int64)])


def _bag_forward(w, b):
    nbags = b.offsets.size - 1
    out = np.empty((nbags, w.shape[1]), w.dtype)
    max_idx = (np.empty((nbags, w.shape[1]), np.int64) if b.mode == _k.MODE_MAX else _NO_MAX)
    sizes = np.empty(nbags, np.int64)
    psw = b.psw if b.psw is not None else np.empty(0, w.dtype)
    wc = np.ascontiguousarray(w)
    _k.embedding_bag_forward(wc, b.idx, b.offsets, psw, b.mode, b.pad, out, max_idx, sizes)
    return out, max_idx, sizes


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embedding rows (``torch.nn.functional.embedding_bag``).

    Parameters
    ----------
    input : array_like of int
        2-d ``(B, N)``: each row is a bag (``offsets`` must be None); or 1-d: the
        concatenated bags, split by ``offsets``.
    weight : ndarray or Parameter, shape (num_embeddings, embedding_dim), float
    offsets : array_like of int, optional
        1-d start positions of the bags (``offsets[0] == 0``, non-decreasing). With
        ``include_last_offset`` the last entry is the end of the last bag.
    max_norm, norm_type
        As in :func:`embedding` (rows renormalised in place).
    scale_grad_by_freq : bool
        Only affects the gradient; not with mode ``'max'``.
    mode : {'sum', 'mean', 'max'}
    sparse : bool
        Must be False.
    per_sample_weights : ndarray, optional
        Shape of ``input``; scales each entry (mode ``'sum'`` only).
    include_last_offset : bool
    padding_idx : int, optional
        Entries equal to it are left out of their bag (and of the mean's count).

    Returns
    -------
    ndarray, shape (B, embedding_dim), weight's dtype
        Empty bags give zero rows.
    """
    out, _, _, _ = _embedding_bag(input, weight, offsets, max_norm, norm_type,
                                  scale_grad_by_freq, mode, sparse, per_sample_weights,
                                  include_last_offset, padding_idx)
    return out


def _embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode,
                   sparse, per_sample_weights, include_last_offset, padding_idx):
    """Validated forward; returns ``(out, bags, max_indices, bag_size)`` for the backward."""
    w = _weight(weight)
    _check_sparse(sparse)
    mn, nt = _max_norm(max_norm, norm_type)
    b = _prepare_bags(input, w.shape[0], w.dtype, offsets, scale_grad_by_freq, mode,
                      per_sample_weights, include_last_offset, padding_idx)
    if mn is not None:
        _renorm_(w, b.idx, mn, nt)
    out, max_idx, sizes = _bag_forward(w, b)
    return out, b, max_idx, sizes


def embedding_bag_backward(grad_output, input, weight, offsets=None, mode="mean",
                           per_sample_weights=None, include_last_offset=False, padding_idx=None,
                           scale_grad_by_freq=False, max_indices=None):
    """Gradients of :func:`embedding_bag` with respect to ``weight`` and ``per_sample_weights``.

    Parameters
    ----------
    grad_output : ndarray, shape (B, embedding_dim), float
    input, weight, offsets, mode, per_sample_weights, include_last_offset, padding_idx, \
scale_grad_by_freq
        As given to the forward (``weight`` after any ``max_norm`` renormalisation; it is
        read for mode ``'max'`` without ``max_indices`` and for ``per_sample_weights``).
    max_indices : ndarray of int, shape (B, embedding_dim), optional
        Mode ``'max'``: the winning row of each output element (-1 for empty bags); by
        default recomputed from ``weight``.

    Returns
    -------
    grad_weight : ndarray, shape weight.shape
    grad_per_sample_weights : ndarray of input's shape, or None
        None when ``per_sample_weights`` is None.
    """
    w = _weight(weight)
    b = _prepare_bags(input, w.shape[0], w.dtype, offsets, scale_grad_by_freq, mode,
                      per_sample_weights, include_last_offset, padding_idx)
    nbags = b.offsets.size - 1
    g = _grad_dtype(grad_output, w.dtype)
    if g.shape != (nbags, w.shape[1]):
        raise ValueError(f"grad_output must have shape (num_bags, embedding_dim) = "
                         f"{(nbags, w.shape[1])}; got {g.shape}")
    sizes = None
    if b.mode == _k.MODE_MAX:
        if max_indices is None:
            _, max_indices, sizes = _bag_forward(w, b)
        else:
            mi = np.asarray(max_indices)
            if mi.dtype.kind not in "iu" or mi.shape != g.shape:
                raise ValueError(f"max_indices must be an integer array of shape {g.shape}")
            if mi.size and (mi.min() < -1 or mi.max() >= w.shape[0]):
                raise ValueError(f"max_indices must lie in [-1, {w.shape[0] - 1}]")
            max_indices = np.ascontiguousarray(mi, dtype=np.int64)
    else:
        max_indices = _NO_MAX
    if sizes is None:
        sizes = _bag_sizes(b)
    return _embedding_bag_backward(g, w, b, max_indices, sizes)


def _bag_sizes(b):
    """Non-padding entries per bag (what the forward kernel counts)."""
    valid = np.zeros(b.idx.size + 1, np.int64)
    np.cumsum(b.idx != b.pad, out=valid[1:])
    return valid[b.offsets[1:]] - valid[b.offsets[:-1]]


def _embedding_bag_backward(g, w, b, max_indices, sizes):
    """Validated core: ``(grad_weight, grad_per_sample_weights or None)``."""
    gw = np.zeros(w.shape, w.dtype)
    scale = np.empty(0, w.dtype)
    if b.mode != _k.MODE_MAX:
        if b.sgbf and b.idx.size:
            # true frequencies over the whole input; torch 2.13's CPU kernel reads the wrong
            # count for some indices (pytorch#190063), numq follows the documented rule
            scale = _inverse_frequency(b.idx, b.num_weights, w.dtype)
        if b.psw is not None:
            scale = b.psw * scale if scale.size else b.psw
    _k.embedding_bag_backward(g, b.idx, b.offsets, scale, b.mode, b.pad, sizes, max_indices, gw)
    gpsw = None
    if b.psw is not None:
        gpsw = _psw_grad(g, w, b)
    return gw, gpsw


def _psw_grad(g, w, b):
    """d out[bag(i)] / d psw[i] = weight[idx[i]]: dot of the bag's gradient with the row."""
    n = b.idx.size
    gp = np.zeros(n, w.dtype)
    counts = np.diff(b.offsets)
    end = int(b.offsets[-1])  # entries past the last bag belong to no bag
    if end:
        bag_of = np.repeat(np.arange(counts.size), counts)
        rows = b.idx[:end]
        gp[:end] = np.einsum("ij,ij->i", g[bag_of], w[rows])
        gp[:end][rows == b.pad] = 0
    return gp.reshape(b.input_shape)
