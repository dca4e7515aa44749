"""Histogram kernels of ``HistogramObserver`` (bit-exact with PyTorch 2.13).

Public kernels
--------------
histc_f32(x, left, right, bins)
    ``torch.histc`` bin counts of a float32 array over the edges ``[left, right]``.
histc_range(lo, hi, data_min, data_max, bins)
    The edges ``torch.histc(x, bins, min=lo, max=hi)`` bins over (its degenerate-range
    rules), as the float32 ``(left, right)`` that :func:`histc_f32` takes.
upscale_histogram_f32(hist, orig_min, orig_max, new_min, new_max, upsample_rate, out)
    ``HistogramObserver._upscale_histogram``: an old histogram re-binned onto a wider
    range (added into ``out``).
sum_f32(a)
    ``torch.sum`` of a contiguous float32 array, in ATen's summation order.
cumsum_f32(a, out)
    ``torch.cumsum`` of a float32 array (double accumulator).
quantization_error_f32(hist, min_val, max_val, start_bin, end_bin, dst_nbins, scratch)
    ``HistogramObserver._compute_quantization_error``.
non_linear_param_search_f32(hist, min_val, max_val, dst_nbins)
    ``HistogramObserver._non_linear_param_search``: the chosen ``(start_bin, end_bin)``.

How torch's arithmetic is reproduced
------------------------------------
torch's observer is a chain of float32 tensor ops; each op rounds to float32 once, and
the kernels below do the same operations in the same order (Numba without fast-math
neither reassociates nor contracts into FMA). Three ATen kernels need more care:

- ``torch.histc`` (CPU, linear-interpolation rule): a value ``v`` in ``[L, R]`` goes to
  bin ``int64(f32(f32(v - L) * bins) / f32(R - L))`` (``v == R``: the last bin), where
  ``L`` and ``R`` are the first and last float32 ``linspace`` edges; NaN and values
  outside are skipped. Where the quotient overflows to inf (or is NaN), torch's x86
  build ends up in bin 0 (see :func:`histc_f32`), and so does numq.
- ``torch.linspace`` (float32) is a scalar loop that the compiler contracts to FMA:
  element ``i`` is ``fma(step, i, start)`` below ``steps // 2``, else
  ``fma(-step, steps - 1 - i, end)``, with ``step = f32(end - start) / f32(steps - 1)``.
- ``torch.sum`` is ATen's ``cascade_sum``: 8-float vectors (the AVX2 kernel, which ATen
  also dispatches to on AVX-512 CPUs), four interleaved vector accumulators, cascade
  levels of 16, then the lanes in order. :func:`sum_f32` replays it; the search compares
  such sums, so an ulp off could move a break point.

Counting is exact in int32 per chunk. torch accumulates counts in float32 per thread, so
the two differ only when one call puts more than 2**24 values in one bin.
"""
import numpy as np
from numba import prange

from .._threads import get_num_threads, parallel_region
from ._fma import fma32
from ._jit import kernel

__all__ = ["HISTC_PARALLEL_MIN", "histc_f32", "histc_range", "upscale_histogram_f32",
           "sum_f32", "cumsum_f32", "quantization_error_f32", "non_linear_param_search_f32"]

#: Below this many elements :func:`histc_f32` bins serially (threads cost more).
HISTC_PARALLEL_MIN = 1 << 16
_BLOCK = 512          # values binned per block: indices first (vectorised), then counts
_WAYS = 4             # interleaved count copies: repeated bins do not serialise on one slot
_TASK_MIN = 1 << 15   # smallest chunk given to one parallel task
_SUM_LANES = 8        # Vectorized<float>::size() of the AVX2 sum kernel

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_FHALF = np.float32(0.5)
_F3 = np.float32(3.0)
_F32_MAX = np.float32(np.finfo(np.float32).max)
_FINF = np.float32(np.inf)


# ------------------------------------------------------------------- binning

@kernel
def _bin_index(x, left, right, bins, idx):
    """``idx[j]`` = torch's bin of ``x[j]``, or ``bins`` (a dump slot) if not counted.

    Branch-free, so it vectorises; kept in its own function (a separate loop nest from
    the scatter), which LLVM compiles to far faster code than one fused loop body.
    """
    fb = np.float32(bins)
    width = np.float32(right - left)
    for j in range(x.size):
        v = x[j]
        t = ((v - left) * fb) / width
        inside = (v >= left) & (v <= right)
        # for values inside, t >= 0 and int(t) <= bins (t can pass bins by an ulp or
        # two when bins is not a power of 2; torch moves int(t) == bins to the last
        # bin), or t is inf / NaN when (v - left) * bins or right - left overflows
        # float32. torch converts inf/NaN to the int64 INT64_MIN (x86), and its
        # pointer arithmetic (INT64_MIN * 4 bytes wraps to 0) lands in bin 0: numq
        # does the same.
        top = (t >= fb) & (t < _FINF)
        ok = (t >= _F0) & (t < fb)
        pos = np.int32(t if ok else _F0)
        pos = np.int32(bins - 1) if top else pos
        idx[j] = pos if inside else np.int32(bins)


@kernel
def _bin_count(idx, counts, ustride):
    """``counts[(j % _WAYS) * stride + idx[j]] += 1`` for each ``j``."""
    # unsigned indices: no negative-index wraparound code in the scatter
    for j in range(idx.size):
        counts[np.uint64(j & (_WAYS - 1)) * ustride + np.uint64(idx[j])] += 1


@kernel
def _bin_chunk(x, left, right, bins, counts):
    """Add the bin counts of ``x`` to ``counts`` (int32, ``_WAYS * (bins + 1)``: ``_WAYS``
    interleaved copies, each with a dump slot ``bins`` for skipped values)."""
    ustride = np.uint64(bins + 1)
    idx = np.empty(_BLOCK, np.int32)
    n = x.size
    for b0 in range(0, n, _BLOCK):
        m = min(_BLOCK, n - b0)
        # indices first (vectorised), then the scatter, block by block (idx stays in L1)
        _bin_index(x[b0:b0 + m], left, right, bins, idx[:m])
        _bin_count(idx[:m], counts, ustride)


@kernel
def _fold_counts(counts, nrows, bins, out):
    """``out[b] = sum of counts[r, w, b]`` over rows and ways, as float32."""
    stride = bins + 1
    for b in range(bins):
        s = 0
        for r in range(nrows * _WAYS):
            s += counts[r * stride + b]
        out[b] = np.float32(s)


@kernel
def _histc_serial(x, left, right, bins, out):
    counts = np.zeros(_WAYS * (bins + 1), np.int32)
    _bin_chunk(x, left, right, bins, counts)
    _fold_counts(counts, 1, bins, out)


@kernel
def _zero_counts(nchunks, bins):
    return np.zeros(nchunks * _WAYS * (bins + 1), np.int32)


@kernel(parallel=True)
def _histc_parallel(x, left, right, bins, nchunks, counts):
    n = x.size
    step = (n + nchunks - 1) // nchunks
    size = _WAYS * (bins + 1)
    for c in prange(nchunks):
        lo = c * step
        hi = min(n, lo + step)
        _bin_chunk(x[lo:hi], left, right, bins, counts[c * size:(c + 1) * size])


def histc_f32(x, left, right, bins, out=None):
    """Bin counts of ``x`` over ``[left, right]`` by ``torch.histc``'s rule.

    Parameters
    ----------
    x : numpy.ndarray
        C-contiguous native float32 array (any shape).
    left, right : numpy.float32
        The first and last bin edges, ``left < right`` (finite): what
        :func:`histc_range` returns.
    bins : int
        Number of bins, >= 1.
    out : numpy.ndarray, optional
        float32 ``(bins,)`` to write the counts to (overwritten).

    Returns
    -------
    numpy.ndarray
        float32 ``(bins,)``: bin ``int64(f32(f32(v - left) * bins) / f32(right - left))``
        for each ``v`` in ``[left, right]``, ``v == right`` in the last bin; NaN and values
        outside are not counted. When that quotient is inf or NaN (``(v - left) * bins``
        or ``right - left`` overflows float32, e.g. a range of 1e36 with 2048 bins), the
        value counts in bin 0: torch converts the quotient to ``INT64_MIN`` and its
        pointer arithmetic wraps back to bin 0 (undefined behaviour in C++, but what the
        x86 build does).
    """
    if out is None:
        out = np.empty(bins, np.float32)
    xf = x.reshape(-1)
    left = np.float32(left)
    right = np.float32(right)
    n = xf.size
    if n < HISTC_PARALLEL_MIN:
        _histc_serial(xf, left, right, bins, out)
        return out
    nchunks = max(1, min(get_num_threads(), n // _TASK_MIN))
    counts = _zero_counts(nchunks, bins)
    with parallel_region():
        _histc_parallel(xf, left, right, bins, nchunks, counts)
    _fold_counts(counts, nchunks, bins, out)
    return out


def histc_range(lo, hi, data_min, data_max, bins):
    """The float32 edges ``(left, right)`` of ``torch.histc(x, bins, min=lo, max=hi)``.

    Parameters
    ----------
    lo, hi : float
        The requested range (float32 values in the observer).
    data_min, data_max : float
        ``x``'s min and max; used when ``lo == hi`` (torch's rule; torch does so for a
        non-empty ``x``, the only kind the observer bins).
    bins : int

    Returns
    -------
    (numpy.float32, numpy.float32)
        ``lo == hi``: the data's range; still equal: widened on each side by the larger of
        1 and one float32 step (in double, then rounded to float32 by ``linspace``).

    Raises
    ------
    ValueError
        The range is not finite (NaN included), or ``lo > hi``: torch raises
        ``RuntimeError`` ("range of [...] is not finite", "max must be larger than min").
    """
    lo = float(lo)
    hi = float(hi)
    if lo == hi:
        lo, hi = float(data_min), float(data_max)
    if lo == hi:
        # ATen's bins_edges_correction for float32 input: at least one float32 step
        # (where +-1 would vanish) and at least 1 on each side
        with np.errstate(over="ignore"):
            f_lo, f_hi = np.float32(lo), np.float32(hi)
        lo = min(float(np.nextafter(f_lo, -_F32_MAX)), lo - 1.0)
        hi = max(float(np.nextafter(f_hi, _F32_MAX)), hi + 1.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    if not lo < hi:
        raise ValueError("torch.histc: max must be larger than min")
    return _histc_edges(np.float32(lo), np.float32(hi), bins + 1)


@kernel
def _histc_edges(lo, hi, steps):
    """First and last element of ``torch.linspace(lo, hi, steps)`` (exactly as computed)."""
    step = np.float32(np.float32(hi - lo) / np.float32(steps - 1))
    return fma32(step, _F0, lo), fma32(-step, _F0, hi)


# ------------------------------------------------------------------- merging

@kernel(inline="always")
def _linspace_at(start, end, step, steps, i):
    """Element ``i`` of ``torch.linspace(start, end, steps)`` (float32)."""
    if i < steps // 2:
        return fma32(step, np.float32(i), start)
    return fma32(-step, np.float32(steps - i - 1), end)


@kernel
def _upper_bound(bd, v):
    """ATen's ``cus_upper_bound``: first index whose value is > ``v`` (binary search)."""
    s = 0
    e = bd.size
    while s < e:
        m = s + ((e - s) >> 1)
        if not bd[m] > v:
            s = m + 1
        else:
            e = m
    return s


@kernel
def upscale_histogram_f32(hist, orig_min, orig_max, new_min, new_max, upsample_rate, out):
    """Add ``hist`` (over ``[orig_min, orig_max]``) re-binned onto ``[new_min, new_max]``
    into ``out`` (``HistogramObserver._upscale_histogram``).

    Each of the ``bins`` old bins is split into ``upsample_rate`` equal parts of mass
    ``f32(count / upsample_rate)``; each part goes to the new bin holding its midpoint
    (``torch.bucketize(right=True) - 1`` against ``linspace(new_min, new_max, bins + 1)``,
    clamped to ``[0, bins - 1]``), summed in float32 in order.

    Parameters
    ----------
    hist : numpy.ndarray
        float32 ``(bins,)``.
    orig_min, orig_max, new_min, new_max : numpy.float32
    upsample_rate : int
    out : numpy.ndarray
        float32 ``(bins,)`` accumulator; torch adds to zeros, so pass zeros for its
        ``bincount``.
    """
    bins = hist.size
    n = bins * upsample_rate
    steps = n + 1
    bin_size = np.float32(np.float32(orig_max - orig_min) / np.float32(n))
    half_size = np.float32(_FHALF * bin_size)
    nb = bins + 1
    bstep = np.float32(np.float32(new_max - new_min) / np.float32(bins))
    bounds = np.empty(nb, np.float32)
    monotone = True
    for k in range(nb):
        bounds[k] = _linspace_at(new_min, new_max, bstep, nb, k)
        if k > 0 and not bounds[k - 1] <= bounds[k]:
            monotone = False
    fup = np.float32(upsample_rate)
    s = 0
    for i in range(n):
        mid = np.float32(_linspace_at(orig_min, orig_max, bin_size, steps, i) + half_size)
        if monotone and mid == mid:
            # on sorted edges the binary search's answer is the count of edges <= mid;
            # walk to it from the previous one (midpoints mostly increase)
            while s < nb and not bounds[s] > mid:
                s += 1
            while s > 0 and bounds[s - 1] > mid:
                s -= 1
            b = s
        else:
            b = _upper_bound(bounds, mid)
        b -= 1
        if b >= bins:
            b = bins - 1
        if b < 0:
            b = 0
        out[b] = np.float32(out[b] + np.float32(hist[i // upsample_rate] / fup))


# --------------------------------------------------------------------- sums

@kernel(inline="always")
def _ceil_log2(x):
    if x <= 2:
        return 1
    r = 0
    v = x - 1
    while v > 0:
        v >>= 1
        r += 1
    return r


@kernel
def _cascade_rows(a, base, stride, width, size, acc, out):
    """ATen ``multi_row_sum`` over 4 interleaved rows of ``width``-lane vectors.

    Row ``k``'s ``i``-th item is the vector at ``a[base + (i * 4 + k) * stride:][:width]``;
    ``acc`` is a float32 scratch of ``4 * 4 * width`` (levels x rows x lanes); the four
    row sums are written to ``out`` (``4 * width``).
    """
    num_levels = 4
    level_power = max(4, _ceil_log2(size) // num_levels)
    level_step = 1 << level_power
    level_mask = level_step - 1
    rw = 4 * width
    acc[:] = _F0
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            p = base + i * 4 * stride
            for k in range(4):
                for L in range(width):
                    acc[k * width + L] += a[p + k * stride + L]
            i += 1
        for j in range(1, num_levels):
            for q in range(rw):
                acc[j * rw + q] += acc[(j - 1) * rw + q]
                acc[(j - 1) * rw + q] = _F0
            if i & (level_mask << (j * level_power)):
                break
    while i < size:
        p = base + i * 4 * stride
        for k in range(4):
            for L in range(width):
                acc[k * width + L] += a[p + k * stride + L]
        i += 1
    for j in range(1, num_levels):
        for q in range(rw):
            acc[q] += acc[j * rw + q]
    for q in range(rw):
        out[q] = acc[q]


@kernel
def _row_sum(a, stride, width, size, acc, part):
    """ATen ``row_sum`` of ``size`` items (``width`` lanes each, ``stride`` apart) into
    ``part[:width]`` (``part`` holds ``4 * width``)."""
    size_ilp = size // 4
    _cascade_rows(a, 0, stride, width, size_ilp, acc, part)
    for i in range(size_ilp * 4, size):
        for L in range(width):
            part[L] += a[i * stride + L]
    for k in range(1, 4):
        for L in range(width):
            part[L] += part[k * width + L]


@kernel
def sum_f32(a):
    """``torch.sum(a)`` of a contiguous 1-d float32 array, bit for bit.

    ATen's ``cascade_sum``: ``n // 8`` vectors of 8 floats summed by ``row_sum`` (four
    interleaved accumulators, cascade levels of 16 items), then the ``n % 8`` tail and
    the 8 lanes added in order; below 8 elements a scalar ``row_sum``. (Single-threaded
    torch; for ``n >= 32768`` multi-threaded torch splits the sum differently.)

    Returns
    -------
    numpy.float32
    """
    n = a.size
    W = _SUM_LANES
    acc = np.empty(16 * W, np.float32)
    part = np.empty(4 * W, np.float32)
    if n < W:
        _row_sum(a, 1, 1, n, acc[:16], part[:4])
        return np.float32(_F0 + part[0])
    nvec = n // W
    _row_sum(a, W, W, nvec, acc, part)
    final = _F0
    for k in range(nvec * W, n):
        final = np.float32(final + a[k])
    for L in range(W):
        final = np.float32(final + part[L])
    return np.float32(_F0 + final)


@kernel
def cumsum_f32(a, out):
    """``torch.cumsum`` of float32 ``a`` into ``out``: double accumulator, each prefix
    rounded to float32."""
    acc = 0.0
    for i in range(a.size):
        acc += np.float64(a[i])
        out[i] = np.float32(acc)


# ------------------------------------------------------------------- search

@kernel(inline="always")
def _div_floor(a, b):
    """``torch.div(a, b, rounding_mode="floor")`` on float32 (``c10::div_floor_floating``)."""
    if b == _F0:
        return np.float32(a / b)
    mod = np.float32(np.fmod(a, b))
    div = np.float32(np.float32(a - mod) / b)
    if mod != _F0 and (b < _F0) != (mod < _F0):
        div = np.float32(div - _F1)
    if div != _F0:
        fl = np.float32(np.floor(div))
        if np.float32(div - fl) > _FHALF:
            fl = np.float32(fl + _F1)
        return fl
    return np.float32(np.copysign(_F0, np.float32(a / b)))


@kernel(inline="always")
def _clamp(v, lo, hi):
    # torch.clamp: NaN propagates
    if v != v:
        return v
    return min(max(v, lo), hi)


@kernel(inline="always")
def _cube(v):
    return np.float32(np.float32(v * v) * v)


@kernel
def quantization_error_f32(hist, min_val, max_val, start_bin, end_bin, dst_nbins, scratch):
    """``HistogramObserver._compute_quantization_error(start_bin, end_bin)``.

    The L2 error of quantizing the histogram's mass (uniform within each bin) with
    ``dst_nbins`` levels spread over bins ``[start_bin, end_bin]``. torch's float32 tensor
    expression, element by element, then :func:`sum_f32` of the per-bin norms.

    Parameters
    ----------
    hist : numpy.ndarray
        float32 ``(bins,)``.
    min_val, max_val : numpy.float32
    start_bin, end_bin : int
    dst_nbins : int
        ``2 ** bits`` of the quantized dtype (256 for 8-bit storage).
    scratch : numpy.ndarray
        float32 ``(bins,)``, overwritten.

    Returns
    -------
    float
        The error (a float32 value); 0.0 when the destination bin width is 0.
    """
    bins = hist.size
    bin_width = (np.float64(max_val) - np.float64(min_val)) / bins
    dst_bin_width = bin_width * (end_bin - start_bin + 1) / dst_nbins
    if dst_bin_width == 0.0:
        return 0.0
    bw = np.float32(bin_width)
    dbw = np.float32(dst_bin_width)
    half = np.float32(dst_bin_width / 2)
    neg_half = np.float32(-dst_bin_width / 2)
    top = np.float32(dst_nbins - 1)
    # the middle destination bins' norm, a 0-d tensor expression in torch
    mid_norm = np.float32(np.float32(_cube(half) - _cube(neg_half)) / _F3)
    half3 = _cube(half)
    neg_half3 = _cube(neg_half)
    for i in range(bins):
        sb = np.float32(np.float32(i - start_bin) * bw)
        se = np.float32(sb + bw)
        db = _clamp(_div_floor(sb, dbw), _F0, top)
        dcenter = np.float32(np.float32(db + _FHALF) * dbw)
        de = _clamp(_div_floor(se, dbw), _F0, top)
        density = np.float32(hist[i] / bw)
        dlt = np.float32(sb - dcenter)
        norm = np.float32(_F0 + np.float32(density * np.float32(
            np.float32(half3 - _cube(dlt)) / _F3)))
        count = np.float32(np.float32(de - db) - _F1)
        norm = np.float32(norm + np.float32(count * np.float32(density * mid_norm)))
        ecenter = np.float32(np.float32(de * dbw) + half)
        dlt = np.float32(se - ecenter)
        norm = np.float32(norm + np.float32(density * np.float32(
            np.float32(_cube(dlt) - neg_half3) / _F3)))
        scratch[i] = norm
    return np.float64(sum_f32(scratch))


@kernel
def non_linear_param_search_f32(hist, min_val, max_val, dst_nbins):
    """``HistogramObserver._non_linear_param_search``: the bins that bound the range.

    Moves the start bin up or the end bin down (whichever passes more bins) by quantile
    steps of 1e-5 of the total mass, and stops when the quantization error grows
    (caffe2's ``NonlinearQuantizationParamsSearch``); torch's comparisons exactly: the
    cumulative sums are float32, the quantile thresholds Python floats rounded to float32.

    Parameters
    ----------
    hist : numpy.ndarray
        float32 ``(bins,)``.
    min_val, max_val : numpy.float32
    dst_nbins : int

    Returns
    -------
    (int, int)
        ``(start_bin, end_bin)``; the range is ``min_val + bin_width * start_bin`` to
        ``min_val + bin_width * (end_bin + 1)`` with ``bin_width = f32(max - min) / bins``.
    """
    bins = hist.size
    total = np.float64(sum_f32(hist))
    csum = np.empty(bins, np.float32)
    cumsum_f32(hist, csum)
    scratch = np.empty(bins, np.float32)
    stepsize = 1e-5
    alpha = 0.0
    beta = 1.0
    start_bin = 0
    end_bin = bins - 1
    norm_min = np.inf
    while alpha < beta:
        next_alpha = alpha + stepsize
        next_beta = beta - stepsize
        lo_t = np.float32(next_alpha * total)
        hi_t = np.float32(next_beta * total)
        lft = start_bin
        rgt = end_bin
        while lft < end_bin and csum[lft] < lo_t:
            lft += 1
        while rgt > start_bin and csum[rgt] > hi_t:
            rgt -= 1
        next_start = start_bin
        next_end = end_bin
        if (lft - start_bin) > (end_bin - rgt):
            next_start = lft
            alpha = next_alpha
        else:
            next_end = rgt
            beta = next_beta
        if next_start == start_bin and next_end == end_bin:
            continue
        norm = quantization_error_f32(hist, min_val, max_val, next_start, next_end,
                                      dst_nbins, scratch)
        if norm > norm_min:
            break
        norm_min = norm
        start_bin = next_start
        end_bin = next_end
    return start_bin, end_bin
