"""Min/max reductions for observers and dynamic quantization (NaN-propagating, as torch).

Public kernels
--------------
minmax_f32(x)
    ``(min, max)`` of a contiguous float32 array, as ``torch.aminmax(x)``.
minmax_per_channel_f32(x3, min_out, max_out)
    Per-channel ``min`` / ``max`` of an ``(outer, C, inner)`` array, as
    ``torch.aminmax(y, dim=1)`` after the observer's permute + flatten.

Both are thin Python wrappers: they pick the serial kernel below
:data:`~numq.kernels.quantize.PARALLEL_MIN` elements and a ``prange`` driver (inside
:func:`numq._threads.parallel_region`) above it.

How the loops stay fast and exact
---------------------------------
Float ``min``/``max`` reductions do not vectorise without fast-math (``nnan``), which
numq forbids. Instead every float32 is read as its int32 bit pattern and mapped to an
order key ``k = b ^ ((b >> 31) & 0x7fffffff)``: signed-integer order of keys is the float
order (``-inf < ... < -0.0 < +0.0 < ... < +inf``), and integer min/max vectorise
(``vpminsd``/``vpmaxsd``) with exact results. NaNs land outside ``[key(-inf), key(+inf)]``
(positive NaNs above, negative NaNs below), so one comparison of the final keys tells
whether the data held a NaN; then both results are NaN, as ``torch.aminmax``,
``torch.min`` and ``torch.max`` return. The map is its own inverse, so the winning
keys decode back to the exact input values.

Signed zeros: of ``-0.0`` and ``+0.0`` the min is ``-0.0`` and the max ``+0.0``; torch may
return either zero, which never changes a quantization parameter.
"""
import numpy as np
from numba import prange

from .._threads import get_num_threads, parallel_region
from ._jit import kernel
from .quantize import PARALLEL_MIN

__all__ = ["minmax_f32", "minmax_per_channel_f32"]

_KEY_HI = np.int32(0x7FFFFFFF)            # identity for min over keys
_KEY_LO = np.int32(-0x80000000)           # identity for max over keys
_KEY_PINF = np.int32(0x7F800000)          # key(+inf) (a positive float's key is its bits)
_KEY_NINF = np.int32(-0x7F800001)         # key(-inf) = 0xff800000 ^ 0x7fffffff
_ROWS_MIN_INNER = 64                      # inner >= this: reduce rows; below: planes
_TASK_MIN = PARALLEL_MIN // 4             # smallest piece of work given to a thread
_SUPER_ROW = 1024                         # plane strategy: inner-loop width to aim for


@kernel(inline="always")
def _flip(b):
    # float bits <-> order key; an involution (the sign bit is kept)
    return np.int32(b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))


@kernel
def _keys_minmax(xi):
    """Min and max order keys of a 1-d int32 view (serial; the vectorised hot loop)."""
    mn = _KEY_HI
    mx = _KEY_LO
    for i in range(xi.size):
        k = _flip(xi[i])
        mn = min(mn, k)
        mx = max(mx, k)
    return mn, mx


@kernel
def _decode(mn, mx):
    """Float32 (min, max) from the extreme keys; (nan, nan) if a NaN was seen."""
    if mn < _KEY_NINF or mx > _KEY_PINF:
        return np.float32(np.nan), np.float32(np.nan)
    buf = np.empty(2, np.int32)
    buf[0] = _flip(mn)
    buf[1] = _flip(mx)
    f = buf.view(np.float32)
    return f[0], f[1]


@kernel
def _store_channel(mn, mx, c, min_out, max_out):
    a, b = _decode(mn, mx)
    min_out[c] = a
    max_out[c] = b


# Parallel drivers contain only their prange loop: with parallel=True Numba turns array
# expressions (arr.min(), np.full) into parallel regions of their own, which inside a
# serial merge loop would launch one region per iteration. Merges live in these
# serial helpers instead.

@kernel
def _key_planes(n):
    """Fresh min/max key accumulators (identities) of length ``n``."""
    return np.full(n, _KEY_HI, np.int32), np.full(n, _KEY_LO, np.int32)


@kernel
def _merge_groups(mins, maxs, ngroups, min_out, max_out):
    """Store channel ``c`` = merge of ``mins/maxs[c * g:(c + 1) * g]``, g = size // ngroups."""
    g = mins.size // ngroups
    for c in range(ngroups):
        _store_channel(mins[c * g:(c + 1) * g].min(), maxs[c * g:(c + 1) * g].max(), c,
                       min_out, max_out)


# ------------------------------------------------------------------- per tensor

@kernel
def _minmax_serial(xi):
    mn, mx = _keys_minmax(xi)
    return _decode(mn, mx)


@kernel
def _minmax_serial_merge(mins, maxs):
    return _decode(mins.min(), maxs.max())


@kernel(parallel=True)
def _minmax_parallel(xi, nchunks):
    n = xi.size
    step = (n + nchunks - 1) // nchunks
    mins = np.empty(nchunks, np.int32)
    maxs = np.empty(nchunks, np.int32)
    for c in prange(nchunks):
        lo = c * step
        hi = min(n, lo + step)
        a, b = _keys_minmax(xi[lo:hi])
        mins[c] = a
        maxs[c] = b
    return mins, maxs


def _nchunks(n):
    # a few chunks per thread balance the load; each chunk >= _TASK_MIN elements
    return max(1, min(get_num_threads() * 4, n // _TASK_MIN))


def minmax_f32(x):
    """Return ``(min, max)`` of a float32 array as two ``np.float32`` (``torch.aminmax``).

    Parameters
    ----------
    x : numpy.ndarray
        C-contiguous native float32 array, any shape, at least one element.

    Returns
    -------
    (numpy.float32, numpy.float32)
        The smallest and largest element; both NaN if ``x`` contains a NaN (torch
        propagates NaN through ``aminmax`` / ``min`` / ``max``). Infinities are values.

    Raises
    ------
    ValueError
        If ``x`` is empty: a min/max has no identity (torch's ``min()`` and
        ``aminmax()`` raise for an empty tensor too).
    """
    if x.size == 0:
        raise ValueError("minmax_f32: x must have at least one element; the min/max of an "
                         "empty array is undefined (torch.aminmax raises too)")
    xi = x.reshape(-1).view(np.int32)
    n = xi.size
    if n < PARALLEL_MIN:
        mn, mx = _minmax_serial(xi)
    else:
        with parallel_region():
            mins, maxs = _minmax_parallel(xi, _nchunks(n))
        # keys are ints: merging the chunks is exact whatever the order
        mn, mx = _minmax_serial_merge(mins, maxs)
    return np.float32(mn), np.float32(mx)


# ------------------------------------------------------------------ per channel
# Two layouts, two strategies:
#   rows   (inner >= 64): each (o, c) row is a contiguous run; reduce runs with the
#          vectorised scalar loop. Work = C channels x pieces of each channel.
#   planes (inner < 64, e.g. channel axis last): the C*inner plane of one outer index is
#          contiguous; fold whole planes elementwise into key accumulators (vectorises
#          across channels), then reduce each channel's `inner` accumulators.

@kernel
def _channel_keys(xi, C, inner, c, t0, t1):
    """Keys of channel ``c`` over its flat (outer, inner) positions ``[t0, t1)``."""
    mn = _KEY_HI
    mx = _KEY_LO
    t = t0
    while t < t1:
        o = t // inner
        i = t - o * inner
        stop = min(inner, i + (t1 - t))
        base = (o * C + c) * inner
        a, b = _keys_minmax(xi[base + i:base + stop])
        mn = min(mn, a)
        mx = max(mx, b)
        t += stop - i
    return mn, mx


@kernel
def _rows_serial(xi, C, inner, min_out, max_out):
    m = xi.size // (C * inner) * inner
    for c in range(C):
        mn, mx = _channel_keys(xi, C, inner, c, 0, m)
        _store_channel(mn, mx, c, min_out, max_out)


@kernel(parallel=True)
def _rows_parallel(xi, C, inner, nsplit, min_out, max_out):
    m = xi.size // (C * inner) * inner      # elements per channel
    step = (m + nsplit - 1) // nsplit
    mins = np.empty(C * nsplit, np.int32)
    maxs = np.empty(C * nsplit, np.int32)
    for task in prange(C * nsplit):
        c = task // nsplit
        t0 = (task - c * nsplit) * step
        t1 = min(m, t0 + step)
        a, b = _channel_keys(xi, C, inner, c, t0, t1)
        mins[task] = a
        maxs[task] = b
    _merge_groups(mins, maxs, C, min_out, max_out)


@kernel
def _plane_fold(xi, W, o0, o1, j0, accmin, accmax):
    """Fold columns ``[j0, j0 + accmin.size)`` of rows ``[o0, o1)`` of width ``W``."""
    w = accmin.size
    for o in range(o0, o1):
        row = xi[o * W + j0:o * W + j0 + w]
        for j in range(w):
            k = _flip(row[j])
            accmin[j] = min(accmin[j], k)
            accmax[j] = max(accmax[j], k)


@kernel
def _plane_finish(xi, P, k, nrow, accmin, accmax, inner, min_out, max_out):
    """Merge ``nrow`` partial super-rows and the tail rows into ``accmin[:P]``, merge the
    ``k`` plane copies of a super-row, then reduce each channel's ``inner`` columns."""
    W = P * k
    am = accmin[0:P]
    ax = accmax[0:P]
    for j in range(W, nrow * W):
        accmin[j % W] = min(accmin[j % W], accmin[j])
        accmax[j % W] = max(accmax[j % W], accmax[j])
    tail = xi[xi.size // W * W:]
    _plane_fold(tail, P, 0, tail.size // P, 0, am, ax)
    for g in range(1, k):
        for j in range(P):
            am[j] = min(am[j], accmin[g * P + j])
            ax[j] = max(ax[j], accmax[g * P + j])
    for c in range(P // inner):
        mn = am[c * inner:(c + 1) * inner].min()
        mx = ax[c * inner:(c + 1) * inner].max()
        _store_channel(mn, mx, c, min_out, max_out)


@kernel
def _planes_serial(xi, C, inner, k, min_out, max_out):
    # `k` consecutive planes form one super-row of width W = k * C * inner, so that a
    # tiny plane (e.g. 3 channels last) still gives the inner loop ~1K elements
    P = C * inner
    W = P * k
    accmin, accmax = _key_planes(W)
    _plane_fold(xi, W, 0, xi.size // W, 0, accmin, accmax)
    _plane_finish(xi, P, k, 1, accmin, accmax, inner, min_out, max_out)


@kernel(parallel=True)
def _planes_parallel(xi, C, inner, k, nrow, cw, min_out, max_out):
    # Tasks form a grid: `nrow` blocks of super-rows x column blocks `cw` elements wide
    # (whole channels; only when k == 1). Column blocks need no merging; each row block
    # fills a private partial super-row, merged afterwards.
    P = C * inner
    W = P * k
    nsuper = xi.size // W
    ncol = (W + cw - 1) // cw
    rstep = (nsuper + nrow - 1) // nrow
    # flat (nrow * W) partials: 1-d slices stay C-contiguous (one specialisation)
    pmin, pmax = _key_planes(nrow * W)
    for task in prange(nrow * ncol):
        r = task // ncol
        j0 = (task - r * ncol) * cw
        j1 = min(W, j0 + cw)
        o0 = r * rstep
        o1 = min(nsuper, o0 + rstep)
        if o0 < o1:
            _plane_fold(xi, W, o0, o1, j0, pmin[r * W + j0:r * W + j1],
                        pmax[r * W + j0:r * W + j1])
    _plane_finish(xi, P, k, nrow, pmin, pmax, inner, min_out, max_out)


def minmax_per_channel_f32(x3, min_out, max_out):
    """Per-channel min and max of ``x3`` viewed as ``(outer, C, inner)``, into the outputs.

    This is what a per-channel observer computes: the reduction over every axis but the
    channel axis (``torch.aminmax(x.transpose(0, ch_axis).flatten(1), dim=1)``), done in
    place without moving the channel axis.

    Parameters
    ----------
    x3 : numpy.ndarray
        C-contiguous native float32 array of shape ``(outer, C, inner)`` with
        ``outer * inner >= 1``.
    min_out, max_out : numpy.ndarray
        C-contiguous float32 arrays of shape ``(C,)``; overwritten (not merged with
        their previous contents: a running observer combines with ``np.minimum`` etc.).

    Notes
    -----
    A channel holding a NaN gets NaN in both outputs, as torch. Fast for both layouts:
    channel axis last (``inner == 1``) and long contiguous runs (large ``inner``).

    Raises
    ------
    ValueError
        If ``outer * inner == 0`` with ``C > 0``: each channel would be empty (torch's
        ``aminmax`` raises for an empty reduction too).
    """
    outer, C, inner = x3.shape
    if C == 0:
        return
    if outer * inner == 0:
        raise ValueError(f"minmax_per_channel_f32: x3 of shape {x3.shape} has no element in "
                         "each channel; the min/max of an empty channel is undefined")
    xi = x3.reshape(-1).view(np.int32)
    n = xi.size
    parallel = n >= PARALLEL_MIN
    if inner >= _ROWS_MIN_INNER:
        if not parallel:
            _rows_serial(xi, C, inner, min_out, max_out)
            return
        target = get_num_threads() * 4
        per_channel = outer * inner
        nsplit = max(1, min(-(-target // C), per_channel // _TASK_MIN))
        with parallel_region():
            _rows_parallel(xi, C, inner, nsplit, min_out, max_out)
        return
    P = C * inner
    k = max(1, _SUPER_ROW // P)
    if not parallel:
        _planes_serial(xi, C, inner, k, min_out, max_out)
        return
    target = get_num_threads() * 4
    cw = k * P
    if k == 1:
        # wide plane: split it into blocks of whole channels, >= _SUPER_ROW elements each
        ncol = max(1, min(C, target, P // _SUPER_ROW))
        cw = -(-C // ncol) * inner
    ncol = -(-(k * P) // cw)
    nrow = max(1, min(n // (k * P), -(-target // ncol), n // ncol // _TASK_MIN))
    with parallel_region():
        _planes_parallel(xi, C, inner, k, nrow, cw, min_out, max_out)
