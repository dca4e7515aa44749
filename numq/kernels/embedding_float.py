"""Float embedding-bag kernels: the bag reductions behind ``torch.nn.EmbeddingBag``.

Public kernels
--------------
embedding_bag_forward(weight, indices, offsets, per_sample_weights, mode, padding_idx,
                      out, max_indices, bag_size)
    Reduce the rows ``weight[indices[offsets[b]:offsets[b+1]]]`` of every bag ``b`` into
    ``out[b]`` by sum (optionally weighted), mean or max.
embedding_bag_backward(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                       max_indices, grad_weight)
    Scatter-add the bag gradients back to the weight rows (the adjoint of the forward).

Both are thin Python wrappers choosing a serial kernel for small problems and a
``prange`` driver (inside :func:`numq._threads.parallel_region`) above
:data:`~numq.kernels.quantize.PARALLEL_MIN` gathered elements. The forward parallelises
over bags (each bag writes its own output row). The backward cannot, since two bags may
hit the same weight row; it parallelises over blocks of embedding columns instead, so
every thread owns a disjoint slice of ``grad_weight``.

Numerics: sums run in the weight's dtype, one index after another, as PyTorch's CPU
kernel does; mean multiplies the sum by ``1 / bag_size``; max keeps the first maximal
row (a strictly larger value replaces it). Entries equal to ``padding_idx`` are skipped
and not counted in ``bag_size``; an empty bag gives zeros (and max index -1).
"""
import numpy as np
from numba import prange

from .._threads import get_num_threads, parallel_region
from ._jit import kernel
from .quantize import PARALLEL_MIN

__all__ = ["MODE_SUM", "MODE_MEAN", "MODE_MAX", "embedding_bag_forward",
           "embedding_bag_backward"]

MODE_SUM, MODE_MEAN, MODE_MAX = 0, 1, 2  # torch's mode codes
_COL_BLOCK = 16  # backward column blocks: whole 64-byte lines of float32


@kernel
def _bag_sum(weight, indices, start, end, psw, padding_idx, out_row):
    """Sum (weighted when ``psw`` is non-empty) of one bag into ``out_row``; returns its size."""
    d = out_row.shape[0]
    for j in range(d):
        out_row[j] = 0
    weighted = psw.shape[0] > 0
    cnt = 0
    for i in range(start, end):
        r = indices[i]
        if r == padding_idx:
            continue
        cnt += 1
        if weighted:
            s = psw[i]
            for j in range(d):
                out_row[j] += s * weight[r, j]
        else:
            for j in range(d):
                out_row[j] += weight[r, j]
    return cnt


@kernel
def _bag_max(weight, indices, start, end, padding_idx, out_row, arg_row):
    """Elementwise max of one bag into ``out_row``, the winning rows into ``arg_row``."""
    d = out_row.shape[0]
    for j in range(d):
        out_row[j] = 0
        arg_row[j] = -1
    cnt = 0
    for i in range(start, end):
        r = indices[i]
        if r == padding_idx:
            continue
        if cnt == 0:
            for j in range(d):
                out_row[j] = weight[r, j]
                arg_row[j] = r
        else:
            for j in range(d):
                w = weight[r, j]
                if w > out_row[j]:
                    out_row[j] = w
                    arg_row[j] = r
        cnt += 1
    return cnt


@kernel
def _one_bag(weight, indices, offsets, psw, mode, padding_idx, out, max_indices, bag_size, b):
    start = offsets[b]
    end = offsets[b + 1]
    if mode == 2:
        bag_size[b] = _bag_max(weight, indices, start, end, padding_idx, out[b], max_indices[b])
    else:
        n = _bag_sum(weight, indices, start, end, psw, padding_idx, out[b])
        bag_size[b] = n
        if mode == 1 and n > 0:
            inv = 1.0 / n
            row = out[b]
            for j in range(row.shape[0]):
                row[j] = row[j] * inv


@kernel
def _forward_serial(weight, indices, offsets, psw, mode, padding_idx, out, max_indices,
                    bag_size):
    for b in range(out.shape[0]):
        _one_bag(weight, indices, offsets, psw, mode, padding_idx, out, max_indices, bag_size, b)


@kernel(parallel=True)
def _forward_parallel(weight, indices, offsets, psw, mode, padding_idx, out, max_indices,
                      bag_size):
    for b in prange(out.shape[0]):
        _one_bag(weight, indices, offsets, psw, mode, padding_idx, out, max_indices, bag_size, b)


def embedding_bag_forward(weight, indices, offsets, per_sample_weights, mode, padding_idx,
                          out, max_indices, bag_size):
    """Reduce every bag of embedding rows (``torch.nn.functional.embedding_bag``'s core).

    Parameters
    ----------
    weight : ndarray, shape (num_embeddings, D), float32 or float64, C-contiguous
    indices : ndarray, shape (n,), int64
        Row numbers, all in ``[0, num_embeddings)``.
    offsets : ndarray, shape (B + 1,), int64
        Bag ``b`` is ``indices[offsets[b]:offsets[b + 1]]``; non-decreasing, within ``[0, n]``.
    per_sample_weights : ndarray, shape (n,) or (0,), weight's dtype
        Scales for mode sum; an empty array means unweighted.
    mode : int
        :data:`MODE_SUM`, :data:`MODE_MEAN` or :data:`MODE_MAX`.
    padding_idx : int
        Entries equal to it are skipped; pass -1 for none.
    out : ndarray, shape (B, D), weight's dtype
        Written with the reductions (zeros for empty bags).
    max_indices : ndarray, shape (B, D) int64 for mode max, else any int64 array
        The row that won each max (-1 for an empty bag); untouched in other modes.
    bag_size : ndarray, shape (B,), int64
        Written with the number of non-padding entries of each bag.
    """
    nthreads = get_num_threads()
    if nthreads > 1 and out.shape[0] > 1 and indices.shape[0] * weight.shape[1] >= PARALLEL_MIN:
        with parallel_region():
            _forward_parallel(weight, indices, offsets, per_sample_weights, mode, padding_idx,
                              out, max_indices, bag_size)
    else:
        _forward_serial(weight, indices, offsets, per_sample_weights, mode, padding_idx, out,
                        max_indices, bag_size)


@kernel
def _backward_cols(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                   max_indices, grad_weight, j0, j1):
    """Accumulate columns ``[j0, j1)`` of every bag's gradient into ``grad_weight``."""
    nbags = grad_output.shape[0]
    if mode == 2:
        for b in range(nbags):
            for j in range(j0, j1):
                r = max_indices[b, j]
                if r >= 0:
                    grad_weight[r, j] += grad_output[b, j]
        return
    scaled = scale.shape[0] > 0
    for b in range(nbags):
        s0 = 1.0
        if mode == 1:
            if bag_size[b] == 0:
                continue
            s0 = 1.0 / bag_size[b]
        for i in range(offsets[b], offsets[b + 1]):
            r = indices[i]
            if r == padding_idx:
                continue
            s = s0 * scale[i] if scaled else s0
            if s == 1.0:  # the common unscaled sum: a plain add, exactly as torch
                for j in range(j0, j1):
                    grad_weight[r, j] += grad_output[b, j]
            else:
                for j in range(j0, j1):
                    grad_weight[r, j] += s * grad_output[b, j]


@kernel(parallel=True)
def _backward_parallel(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                       max_indices, grad_weight, block):
    d = grad_weight.shape[1]
    nblocks = (d + block - 1) // block
    for t in prange(nblocks):
        j0 = t * block
        _backward_cols(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                       max_indices, grad_weight, j0, min(d, j0 + block))


def embedding_bag_backward(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                           max_indices, grad_weight):
    """Add the weight gradient of :func:`embedding_bag_forward` into ``grad_weight``.

    Parameters
    ----------
    grad_output : ndarray, shape (B, D), C-contiguous, grad_weight's dtype
    indices, offsets, mode, padding_idx, bag_size, max_indices
        As passed to / returned by :func:`embedding_bag_forward`.
    scale : ndarray, shape (n,) or (0,), float
        Extra per-entry factors (per-sample weights, ``1 / frequency``); empty for none.
        Ignored in mode max.
    grad_weight : ndarray, shape (num_embeddings, D), float32 or float64
        Accumulated into (``+=``); rows never indexed are left as they are.
    """
    nthreads = get_num_threads()
    d = grad_weight.shape[1]
    if (nthreads > 1 and d >= 2 * _COL_BLOCK
            and max(indices.shape[0], grad_output.shape[0]) * d >= PARALLEL_MIN):
        block = -(-d // nthreads)
        block = -(-block // _COL_BLOCK) * _COL_BLOCK
        with parallel_region():
            _backward_parallel(grad_output, indices, offsets, scale, mode, padding_idx,
                               bag_size, max_indices, grad_weight, block)
    else:
        _backward_cols(grad_output, indices, offsets, scale, mode, padding_idx, bag_size,
                       max_indices, grad_weight, 0, d)
