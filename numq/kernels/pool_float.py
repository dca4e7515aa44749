"""Float pooling kernels: max / average / adaptive-average pooling and their backward.

Contract shared by every kernel here: arrays are C-contiguous, native-endian, float32 or
float64 (all float arrays of one call share the dtype); index and window tables are
int64. 1-d and 2-d pooling use the 3-d kernels with leading singleton spatial axes, so
``x`` is always ``(P, D, H, W)`` with ``P = N * C`` planes. The callers (in
:mod:`numq.layers.functional`) validate everything and build the per-axis window tables;
the kernels only walk them.

Window tables
-------------
A table ``t`` has shape ``(2, O)``: output position ``o`` reads input positions
``range(t[0, o], t[1, o], step)`` along its axis (``step`` is the dilation for max
pooling, 1 for the averages). Starts may exceed ends (an empty window).

Threads
-------
Each public wrapper runs a serial loop over the planes below :data:`PARALLEL_MIN`
elements (or with a single plane) and a ``prange`` over the planes above it; planes are
independent, so the parallel result is bit-identical to the serial one.
"""
import numpy as np
from numba import prange

from .._threads import parallel_region
from ._jit import kernel
from .quantize import PARALLEL_MIN

__all__ = ["max_pool_f", "max_pool_backward_f", "avg_pool_f", "avg_pool_backward_f"]


def _parallel(planes, work):
    return planes > 1 and work >= PARALLEL_MIN


# ------------------------------------------------------------------------- max pool

@kernel
def _max_plane(x, p, H, W, td, th, tw, dil, out, ind, want):
    # x[p] and out[p] are flat planes; while loops and a branchless update keep the hot
    # loop simple (random data makes an if/else on "greater" mispredict half the time)
    xp = x[p]
    op = out[p]
    OH = th.shape[1]
    OW = tw.shape[1]
    dd = dil[0]
    dh = dil[1]
    dw = dil[2]
    j = 0
    for od in range(td.shape[1]):
        d0 = td[0, od]
        d1 = td[1, od]
        for oh in range(OH):
            h0 = th[0, oh]
            h1 = th[1, oh]
            for ow in range(OW):
                w0 = tw[0, ow]
                w1 = tw[1, ow]
                # torch's argmax starts at the window's first in-range position (even
                # when the window is empty) and its max at -inf.
                best = (d0 * H + h0) * W + w0
                if d0 < d1 and h0 < h1 and w0 < w1:
                    # starting from the first element is the same as starting from
                    # -inf: a later value replaces it only if strictly greater (ties
                    # keep the first maximum) or NaN (the last NaN wins), as torch.
                    m = xp[best]
                    d = d0
                    while d < d1:
                        h = h0
                        while h < h1:
                            base = (d * H + h) * W
                            w = w0
                            while w < w1:
                                v = xp[base + w]
                                take = (v > m) | (v != v)
                                m = v if take else m
                                best = base + w if take else best
                                w += dw
                            h += dh
                        d += dd
                    op[j] = m
                else:
                    op[j] = -np.inf
                if want:
                    ind[p, j] = best
                j += 1


@kernel
def _max_serial(x, H, W, td, th, tw, dil, out, ind, want):
    for p in range(x.shape[0]):
        _max_plane(x, p, H, W, td, th, tw, dil, out, ind, want)


@kernel(parallel=True)
def _max_parallel(x, H, W, td, th, tw, dil, out, ind, want):
    for p in prange(x.shape[0]):
        _max_plane(x, p, H, W, td, th, tw, dil, out, ind, want)


def max_pool_f(x, td, th, tw, dil, out, ind, want_indices):
    """Max pooling of ``x (P, D, H, W)`` into ``out (P, OD, OH, OW)``.

    Parameters
    ----------
    x : ndarray, float32 or float64, C-contiguous, 4-d
    td, th, tw : ndarray, int64, shape (2, OD), (2, OH), (2, OW)
        Window tables (see the module docstring); starts must already be moved into
        the input (``>= 0``) by whole dilation steps, ends clipped to the input.
    dil : ndarray, int64, shape (3,)
        Dilations (the table steps), each >= 1.
    out : ndarray, same dtype as ``x``, C-contiguous, shape (P, OD, OH, OW)
        Receives the maxima (NaN-propagating; ``-inf`` for an empty window).
    ind : ndarray, int64, C-contiguous
        With ``want_indices``, shape (P, OD, OH, OW): receives the flat per-plane index
        ``(d * H + h) * W + w`` of each maximum (the first of equal maxima, the last
        NaN). Otherwise any int64 array (not written).
    want_indices : bool
    """
    P = x.shape[0]
    if P == 0 or out.size == 0:
        return
    x2 = x.reshape(P, -1)
    o2 = out.reshape(P, -1)
    i2 = ind.reshape(P, -1) if want_indices else ind.reshape(1, -1)
    H, W = x.shape[2], x.shape[3]
    if _parallel(P, x.size + out.size):
        with parallel_region():
            _max_parallel(x2, H, W, td, th, tw, dil, o2, i2, want_indices)
    else:
        _max_serial(x2, H, W, td, th, tw, dil, o2, i2, want_indices)


@kernel
def _max_back_plane(g, ind, p, gin):
    n = gin.shape[1]
    for i in range(n):
        gin[p, i] = 0
    for j in range(g.shape[1]):
        k = ind[p, j]
        # an empty window's index may point outside the plane (torch then writes into
        # the next plane); such gradients are dropped instead.
        if 0 <= k < n:
            gin[p, k] += g[p, j]


@kernel
def _max_back_serial(g, ind, gin):
    for p in range(g.shape[0]):
        _max_back_plane(g, ind, p, gin)


@kernel(parallel=True)
def _max_back_parallel(g, ind, gin):
    for p in prange(g.shape[0]):
        _max_back_plane(g, ind, p, gin)


def max_pool_backward_f(g, ind, gin):
    """Route ``g (P, M)`` to the argmax positions ``ind (P, M)`` of ``gin (P, K)``.

    ``gin`` is overwritten (zeroed, then accumulated in output order, as torch does),
    so overlapping windows sum their gradients. Indices outside ``[0, K)`` are skipped.
    """
    if gin.size == 0:
        return
    if _parallel(gin.shape[0], gin.size + g.size):
        with parallel_region():
            _max_back_parallel(g, ind, gin)
    else:
        _max_back_serial(g, ind, gin)


# ------------------------------------------------------------- average pool (+adaptive)

@kernel
def _avg_plane(x, p, H, W, td, th, tw, div, adaptive, out):
    T = x.dtype.type
    xp = x[p]
    op = out[p]
    OH = th.shape[1]
    OW = tw.shape[1]
    j = 0
    for od in range(td.shape[1]):
        d0 = td[0, od]
        d1 = td[1, od]
        for oh in range(OH):
            h0 = th[0, oh]
            h1 = th[1, oh]
            for ow in range(OW):
                w0 = tw[0, ow]
                w1 = tw[1, ow]
                if d0 >= d1 or h0 >= h1 or w0 >= w1:
                    op[j] = 0
                    j += 1
                    continue
                # summed in the input dtype, in window order, like ATen's CPU kernels
                s = T(0)
                for d in range(d0, d1):
                    for h in range(h0, h1):
                        base = (d * H + h) * W
                        for w in range(base + w0, base + w1):
                            s += xp[w]
                if adaptive:
                    # ATen divides by each window extent in turn (not by the product)
                    op[j] = s / T(d1 - d0) / T(h1 - h0) / T(w1 - w0)
                else:
                    # ATen adds the mean to a zeroed output: -0.0 becomes +0.0
                    op[j] = T(0) + s / div[(od * OH + oh) * OW + ow]
                j += 1


@kernel
def _avg_serial(x, H, W, td, th, tw, div, adaptive, out):
    for p in range(x.shape[0]):
        _avg_plane(x, p, H, W, td, th, tw, div, adaptive, out)


@kernel(parallel=True)
def _avg_parallel(x, H, W, td, th, tw, div, adaptive, out):
    for p in prange(x.shape[0]):
        _avg_plane(x, p, H, W, td, th, tw, div, adaptive, out)


def avg_pool_f(x, td, th, tw, div, adaptive, out):
    """Average pooling of ``x (P, D, H, W)`` into ``out (P, OD, OH, OW)``.

    Parameters
    ----------
    x : ndarray, float32 or float64, C-contiguous, 4-d
    td, th, tw : ndarray, int64, shape (2, OD), (2, OH), (2, OW)
        Window tables with unit step; starts and ends inside the input.
    div : ndarray, dtype of ``x``, C-contiguous
        Shape (OD, OH, OW): the divisor of each window. Unused when ``adaptive`` (pass
        any non-empty array of the dtype).
    adaptive : bool
        Divide the window sum by its three extents in turn (adaptive pooling) instead of
        by ``div``.
    out : ndarray, dtype of ``x``, C-contiguous, shape (P, OD, OH, OW)
    """
    P = x.shape[0]
    if P == 0 or out.size == 0:
        return
    args = (x.reshape(P, -1), x.shape[2], x.shape[3], td, th, tw, div.reshape(-1),
            adaptive, out.reshape(P, -1))
    if _parallel(P, x.size + out.size):
        with parallel_region():
            _avg_parallel(*args)
    else:
        _avg_serial(*args)


@kernel
def _avg_back_plane(g, p, H, W, td, th, tw, div, adaptive, gin):
    T = g.dtype.type
    gp = g[p]
    ip = gin[p]
    ip[:] = 0
    OH = th.shape[1]
    OW = tw.shape[1]
    j = 0
    for od in range(td.shape[1]):
        d0 = td[0, od]
        d1 = td[1, od]
        for oh in range(OH):
            h0 = th[0, oh]
            h1 = th[1, oh]
            for ow in range(OW):
                w0 = tw[0, ow]
                w1 = tw[1, ow]
                if d0 >= d1 or h0 >= h1 or w0 >= w1:
                    j += 1
                    continue
                if adaptive:
                    delta = gp[j] / T(d1 - d0) / T(h1 - h0) / T(w1 - w0)
                else:
                    delta = gp[j] / div[(od * OH + oh) * OW + ow]
                for d in range(d0, d1):
                    for h in range(h0, h1):
                        base = (d * H + h) * W
                        for w in range(base + w0, base + w1):
                            ip[w] += delta
                j += 1


@kernel
def _avg_back_serial(g, H, W, td, th, tw, div, adaptive, gin):
    for p in range(g.shape[0]):
        _avg_back_plane(g, p, H, W, td, th, tw, div, adaptive, gin)


@kernel(parallel=True)
def _avg_back_parallel(g, H, W, td, th, tw, div, adaptive, gin):
    for p in prange(g.shape[0]):
        _avg_back_plane(g, p, H, W, td, th, tw, div, adaptive, gin)


def avg_pool_backward_f(g, td, th, tw, div, adaptive, gin):
    """Gradient of :func:`avg_pool_f`: spread ``g (P, OD, OH, OW)`` over the windows.

    ``gin (P, D, H, W)`` is overwritten. Each window receives ``g / divisor`` (computed
    as in the forward), accumulated in output order like ATen's backward kernels.
    """
    P = gin.shape[0]
    if gin.size == 0:
        return
    args = (g.reshape(P, -1), gin.shape[2], gin.shape[3], td, th, tw, div.reshape(-1),
            adaptive, gin.reshape(P, -1))
    if _parallel(P, gin.size + g.size):
        with parallel_region():
            _avg_back_parallel(*args)
    else:
        _avg_back_serial(*args)
