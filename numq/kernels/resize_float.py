"""Float resize kernels: nearest-neighbour gather and separable linear interpolation.

Contract: arrays are C-contiguous, native-endian, float32 or float64 (one dtype per
call); index arrays are int64 and in range; weight arrays have the data's dtype. The
callers (:mod:`numq.layers.functional`) validate the arguments and compute the source
indices and weights with ATen's rules; the kernels only apply them.

Nearest works on ``(P, D, H, W)`` arrays with one index array per axis (1-d and 2-d
resizes use singleton leading axes). Linear interpolation is separable: one pass per
resized axis, each mixing two source positions,
``out[.., o, ..] = x[.., i0[o], ..] * w0[o] + x[.., i1[o], ..] * w1[o]``. Applying the
width pass first, then height, then depth evaluates exactly ATen's nested expression
``sum_d wd * (sum_h wh * (sum_w ww * x))``. ``lerp_last_f`` resizes the last axis of a
``(R, L)`` array; ``lerp_mid_f`` the middle axis of a ``(P, L, Q)`` array.

Threads: a serial loop below :data:`PARALLEL_MIN` elements, a ``prange`` over
independent planes or rows above it (bit-identical results).
"""
import numpy as np
from numba import prange

from .._threads import parallel_region
from ._jit import kernel
from .quantize import PARALLEL_MIN

__all__ = ["nearest_f", "nearest_backward_f", "lerp_last_f", "lerp_last_backward_f",
           "lerp_mid_f", "lerp_mid_backward_f"]

_ROWS_PER_TASK = 64  # rows of a last-axis pass handed to a thread at once


def _parallel(tasks, work):
    return tasks > 1 and work >= PARALLEL_MIN


# -------------------------------------------------------------------------- nearest

@kernel
def _nearest_plane(x, p, idd, idh, idw, out):
    for od in range(out.shape[1]):
        d = idd[od]
        for oh in range(out.shape[2]):
            h = idh[oh]
            for ow in range(out.shape[3]):
                out[p, od, oh, ow] = x[p, d, h, idw[ow]]


@kernel
def _nearest_serial(x, idd, idh, idw, out):
    for p in range(x.shape[0]):
        _nearest_plane(x, p, idd, idh, idw, out)


@kernel(parallel=True)
def _nearest_parallel(x, idd, idh, idw, out):
    for p in prange(x.shape[0]):
        _nearest_plane(x, p, idd, idh, idw, out)


def nearest_f(x, idd, idh, idw, out):
    """``out[p, d, h, w] = x[p, idd[d], idh[h], idw[w]]`` for ``x (P, D, H, W)``."""
    if out.size == 0:
        return
    if _parallel(x.shape[0], x.size + out.size):
        with parallel_region():
            _nearest_parallel(x, idd, idh, idw, out)
    else:
        _nearest_serial(x, idd, idh, idw, out)


@kernel
def _nearest_back_plane(g, p, idd, idh, idw, gin):
    gin[p] = 0
    for od in range(g.shape[1]):
        d = idd[od]
        for oh in range(g.shape[2]):
            h = idh[oh]
            for ow in range(g.shape[3]):
                gin[p, d, h, idw[ow]] += g[p, od, oh, ow]


@kernel
def _nearest_back_serial(g, idd, idh, idw, gin):
    for p in range(g.shape[0]):
        _nearest_back_plane(g, p, idd, idh, idw, gin)


@kernel(parallel=True)
def _nearest_back_parallel(g, idd, idh, idw, gin):
    for p in prange(g.shape[0]):
        _nearest_back_plane(g, p, idd, idh, idw, gin)


def nearest_backward_f(g, idd, idh, idw, gin):
    """Adjoint of :func:`nearest_f`: ``gin`` (overwritten) sums ``g`` per source pixel,
    in output order."""
    if gin.size == 0:
        return
    if _parallel(g.shape[0], g.size + gin.size):
        with parallel_region():
            _nearest_back_parallel(g, idd, idh, idw, gin)
    else:
        _nearest_back_serial(g, idd, idh, idw, gin)


# -------------------------------------------------------------- linear, last axis

@kernel
def _lerp_last_rows(x, r0, r1, i0, i1, w0, w1, out):
    for r in range(r0, r1):
        for o in range(out.shape[1]):
            out[r, o] = x[r, i0[o]] * w0[o] + x[r, i1[o]] * w1[o]


@kernel(parallel=True)
def _lerp_last_parallel(x, i0, i1, w0, w1, out):
    R = x.shape[0]
    ntask = (R + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for t in prange(ntask):
        _lerp_last_rows(x, t * _ROWS_PER_TASK, min(R, (t + 1) * _ROWS_PER_TASK),
                        i0, i1, w0, w1, out)


def lerp_last_f(x, i0, i1, w0, w1, out):
    """Linear resize of the last axis: ``x (R, L) -> out (R, O)``.

    ``out[r, o] = x[r, i0[o]] * w0[o] + x[r, i1[o]] * w1[o]`` (two roundings, no FMA).
    """
    if out.size == 0:
        return
    if _parallel(x.shape[0] // _ROWS_PER_TASK, x.size + out.size):
        with parallel_region():
            _lerp_last_parallel(x, i0, i1, w0, w1, out)
    else:
        _lerp_last_rows(x, 0, x.shape[0], i0, i1, w0, w1, out)


@kernel
def _lerp_last_back_rows(g, r0, r1, i0, i1, w0, w1, gin):
    for r in range(r0, r1):
        for i in range(gin.shape[1]):
            gin[r, i] = 0
        for o in range(g.shape[1]):
            v = g[r, o]
            gin[r, i0[o]] += v * w0[o]
            gin[r, i1[o]] += v * w1[o]


@kernel(parallel=True)
def _lerp_last_back_parallel(g, i0, i1, w0, w1, gin):
    R = g.shape[0]
    ntask = (R + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for t in prange(ntask):
        _lerp_last_back_rows(g, t * _ROWS_PER_TASK, min(R, (t + 1) * _ROWS_PER_TASK),
                             i0, i1, w0, w1, gin)


def lerp_last_backward_f(g, i0, i1, w0, w1, gin):
    """Adjoint of :func:`lerp_last_f`: ``g (R, O) -> gin (R, L)`` (overwritten)."""
    if gin.size == 0:
        return
    if _parallel(g.shape[0] // _ROWS_PER_TASK, g.size + gin.size):
        with parallel_region():
            _lerp_last_back_parallel(g, i0, i1, w0, w1, gin)
    else:
        _lerp_last_back_rows(g, 0, g.shape[0], i0, i1, w0, w1, gin)


# ------------------------------------------------------------ linear, middle axis

@kernel
def _lerp_mid_row(x, t, i0, i1, w0, w1, out):
    # task t = (plane p, output row o): one contiguous output row of length Q
    O = out.shape[1]
    p = t // O
    o = t - p * O
    a = i0[o]
    b = i1[o]
    wa = w0[o]
    wb = w1[o]
    for q in range(out.shape[2]):
        out[p, o, q] = x[p, a, q] * wa + x[p, b, q] * wb


@kernel
def _lerp_mid_serial(x, i0, i1, w0, w1, out):
    for t in range(out.shape[0] * out.shape[1]):
        _lerp_mid_row(x, t, i0, i1, w0, w1, out)


@kernel(parallel=True)
def _lerp_mid_parallel(x, i0, i1, w0, w1, out):
    for t in prange(out.shape[0] * out.shape[1]):
        _lerp_mid_row(x, t, i0, i1, w0, w1, out)


def lerp_mid_f(x, i0, i1, w0, w1, out):
    """Linear resize of the middle axis: ``x (P, L, Q) -> out (P, O, Q)``.

    ``out[p, o, :] = x[p, i0[o], :] * w0[o] + x[p, i1[o], :] * w1[o]``.
    """
    if out.size == 0:
        return
    if _parallel(out.shape[0] * out.shape[1], x.size + out.size):
        with parallel_region():
            _lerp_mid_parallel(x, i0, i1, w0, w1, out)
    else:
        _lerp_mid_serial(x, i0, i1, w0, w1, out)


@kernel
def _lerp_mid_back_plane(g, p, i0, i1, w0, w1, gin):
    gin[p] = 0
    for o in range(g.shape[1]):
        a = i0[o]
        b = i1[o]
        wa = w0[o]
        wb = w1[o]
        for q in range(g.shape[2]):
            v = g[p, o, q]
            gin[p, a, q] += v * wa
            gin[p, b, q] += v * wb


@kernel
def _lerp_mid_back_serial(g, i0, i1, w0, w1, gin):
    for p in range(g.shape[0]):
        _lerp_mid_back_plane(g, p, i0, i1, w0, w1, gin)


@kernel(parallel=True)
def _lerp_mid_back_parallel(g, i0, i1, w0, w1, gin):
    for p in prange(g.shape[0]):
        _lerp_mid_back_plane(g, p, i0, i1, w0, w1, gin)


def lerp_mid_backward_f(g, i0, i1, w0, w1, gin):
    """Adjoint of :func:`lerp_mid_f`: ``g (P, O, Q) -> gin (P, L, Q)`` (overwritten)."""
    if gin.size == 0:
        return
    if _parallel(g.shape[0], g.size + gin.size):
        with parallel_region():
            _lerp_mid_back_parallel(g, i0, i1, w0, w1, gin)
    else:
        _lerp_mid_back_serial(g, i0, i1, w0, w1, gin)
