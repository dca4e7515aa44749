"""Slow, obviously-correct NumPy reference of torch 2.13's ``HistogramObserver``.

Every tensor operation of torch's Python source (``forward``, ``_combine_histograms``,
``_upscale_histogram``, ``_non_linear_param_search``, ``_compute_quantization_error``,
``_get_norm``) is transcribed statement by statement as a float32 NumPy operation, and
each ATen kernel they reach is transcribed from its C++ rule:

- ``torch.histc``: bin = ``int64(f32(f32(x - L) * bins) / f32(R - L))`` over the first and
  last ``linspace`` edges ``L``, ``R``; ``x == R`` goes to the last bin; values outside
  ``[L, R]`` and NaN are skipped; a degenerate range first takes the data's min/max, then
  widens by max(1, one float32 step) each side (in double); an inf/NaN quotient lands in
  bin 0 (torch's int64 conversion and pointer wrap-around on x86).
- ``torch.linspace`` (float32): element ``i`` is ``fma(step, i, start)`` in the first half and
  ``fma(-step, steps - 1 - i, end)`` in the second (ATen's scalar loop, contracted to FMA by
  the compiler), ``step = f32(end - start) / f32(steps - 1)``.
- ``torch.bucketize(right=True)``: ATen's upper-bound binary search.
- ``torch.bincount(weights=float32)``: a sequential float32 accumulation.
- ``torch.cumsum`` (float32): accumulated in double, each prefix rounded to float32.
- ``torch.sum`` (float32, contiguous): ATen's ``cascade_sum`` with ``lanes``-wide vectors
  (8-float vectors: ATen registers its AVX2 sum kernel for AVX-512 CPUs too).
- comparisons of a float32 tensor with a Python float round the float to float32.

Shares no code with numq.
"""
import math
from fractions import Fraction

import numpy as np

F32 = np.float32


def f32(v):
    with np.errstate(over="ignore"):
        return F32(v)


def fma32(a, b, c):
    """``f32(a * b + c)`` with one rounding (finite inputs), by exact rationals."""
    a, b, c = F32(a), F32(b), F32(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        with np.errstate(all="ignore"):
            return F32(a * b + c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if exact == 0:
        return F32(0.0) if not (np.signbit(c) and (a * b == 0) and
                                np.signbit(a) != np.signbit(b)) else F32(-0.0)
    # round the exact rational to float32 (half to even) via float64 neighbours: a float32
    # is a float64, so bracket by the two float32 neighbours of the nearest double
    d = float(exact)
    lo = f32(d)
    if not np.isfinite(lo):
        return lo
    if Fraction(float(lo)) > exact:
        lo = np.nextafter(lo, F32(-np.inf))
    hi = np.nextafter(lo, F32(np.inf))
    dlo = exact - Fraction(float(lo))
    dhi = Fraction(float(hi)) - exact
    if dlo < dhi or (dlo == dhi and int(lo.view(np.int32)) % 2 == 0):
        return lo
    return hi


# ------------------------------------------------------------------ ATen kernels

def linspace(start, end, steps):
    """``torch.linspace(start, end, steps)`` in float32 (ATen's FMA-contracted loop)."""
    start, end = F32(start), F32(end)
    if steps == 1:
        return np.array([start], F32)
    step = f32(f32(end - start) / F32(steps - 1))
    half = steps // 2
    out = np.empty(steps, F32)
    for i in range(steps):
        if i < half:
            out[i] = fma32(step, F32(i), start)
        else:
            out[i] = fma32(-step, F32(steps - i - 1), end)
    return out


def histc(x, bins, lo, hi):
    """``torch.histc(x, bins, min=lo, max=hi)`` on float32 data; float32 counts."""
    x = np.asarray(x, F32).ravel()
    lo, hi = float(lo), float(hi)
    if lo == hi and x.size > 0:
        lo, hi = float(np.min(x)), float(np.max(x))
        if np.isnan(x).any():
            lo = hi = math.nan
    if lo == hi:
        # ATen's bins_edges_correction (float32 input): the wider of one float32 step
        # and 1 on each side
        lo = min(float(np.nextafter(f32(lo), F32(-np.finfo(F32).max))), lo - 1.0)
        hi = max(float(np.nextafter(f32(hi), F32(np.finfo(F32).max))), hi + 1.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    if not lo < hi:
        raise ValueError("torch.histc: max must be larger than min")
    # only the first and last edges matter to the linear-interpolation bin rule
    step = f32(f32(f32(hi) - f32(lo)) / F32(bins))
    left = fma32(step, F32(0.0), f32(lo))
    right = fma32(-step, F32(0.0), f32(hi))
    out = np.zeros(bins, F32)
    with np.errstate(all="ignore"):
        width = f32(right - left)
        for v in x:
            if not (v >= left and v <= right):
                continue
            t = f32(f32(f32(v - left) * F32(bins)) / width)
            # inf / NaN: torch's int64 conversion gives INT64_MIN, and INT64_MIN * 4 bytes
            # of pointer offset wraps around to bin 0
            pos = int(t) if np.isfinite(t) else 0
            if pos == bins:
                pos = bins - 1
            out[pos] += F32(1.0)
    return out


def bucketize_right(values, boundaries):
    """``torch.bucketize(values, boundaries, right=True)``: ATen's binary search."""
    res = np.empty(values.size, np.int64)
    for i, v in enumerate(values):
        s, e = 0, boundaries.size
        while s < e:
            m = s + ((e - s) >> 1)
            if not boundaries[m] > v:
                s = m + 1
            else:
                e = m
        res[i] = s
    return res


def cumsum(a):
    """``torch.cumsum`` of float32: double accumulator, float32 stores."""
    out = np.empty(a.size, F32)
    acc = 0.0
    for i, v in enumerate(a):
        acc += float(v)
        out[i] = f32(acc)
    return out


def _ceil_log2(x):
    return 1 if x <= 2 else (x - 1).bit_length()


def _multi_row_sum(load, nrows, size, zero):
    num_levels = 4
    level_power = max(4, _ceil_log2(size) // num_levels)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = [[zero for _ in range(nrows)] for _ in range(num_levels)]
    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            for k in range(nrows):
                acc[0][k] = acc[0][k] + load(i, k)
            i += 1
        for j in range(1, num_levels):
            for k in range(nrows):
                acc[j][k] = acc[j][k] + acc[j - 1][k]
                acc[j - 1][k] = zero
            if i & (level_mask << (j * level_power)):
                break
    while i < size:
        for k in range(nrows):
            acc[0][k] = acc[0][k] + load(i, k)
        i += 1
    for j in range(1, num_levels):
        for k in range(nrows):
            acc[0][k] = acc[0][k] + acc[j][k]
    return acc[0]


def _row_sum(load, size, zero):
    ilp = 4
    size_ilp = size // ilp
    partial = _multi_row_sum(lambda i, k: load(i * ilp + k), ilp, size_ilp, zero)
    for i in range(size_ilp * ilp, size):
        partial[0] = partial[0] + load(i)
    for k in range(1, ilp):
        partial[0] = partial[0] + partial[k]
    return partial[0]


def torch_sum(a, lanes=8):
    """``torch.sum`` of a contiguous 1-d float32 array (ATen ``cascade_sum``)."""
    a = np.asarray(a, F32)
    n = a.size
    with np.errstate(all="ignore"):
        if n < lanes:
            return F32(0.0) + _row_sum(lambda i: a[i], n, F32(0.0))
        nvec = n // lanes
        vec = _row_sum(lambda i: a[i * lanes:(i + 1) * lanes], nvec, np.zeros(lanes, F32))
        final = F32(0.0)
        for k in range(nvec * lanes, n):
            final = final + a[k]
        for k in range(lanes):
            final = final + vec[k]
        return F32(0.0) + final


def div_floor(a, b):
    """``torch.div(a, b, rounding_mode="floor")`` for float32 ``a`` (array), ``b`` (f32)."""
    with np.errstate(all="ignore"):
        a = np.asarray(a, F32)
        b = F32(b)
        if b == 0:
            return a / b
        mod = np.fmod(a, b)
        div = (a - mod) / b
        fix = (mod != 0) & ((b < 0) != (mod < 0))
        div = np.where(fix, div - F32(1), div).astype(F32)
        fl = np.floor(div)
        fl = np.where(div - fl > F32(0.5), fl + F32(1), fl).astype(F32)
        zero = np.copysign(F32(0), a / b).astype(F32)
        return np.where(div != 0, fl, zero).astype(F32)


# --------------------------------------------------------------- the observer

def upscale_histogram(hist, orig_min, orig_max, new_min, new_max, upsample_rate=16):
    bins = hist.size
    with np.errstate(all="ignore"):
        h = (np.repeat(hist, upsample_rate) / F32(upsample_rate)).astype(F32)
        bin_size = f32(f32(F32(orig_max) - F32(orig_min)) / F32(bins * upsample_rate))
        mids = (linspace(orig_min, orig_max, bins * upsample_rate + 1)[:-1]
                + f32(F32(0.5) * bin_size)).astype(F32)
    bounds = linspace(new_min, new_max, bins + 1)
    idx = bucketize_right(mids, bounds) - 1
    idx = np.clip(idx, 0, bins - 1)
    out = np.zeros(bins, F32)
    for i in range(idx.size):
        out[idx[i]] = f32(out[idx[i]] + h[i])
    return out


def combine_histograms(orig_hist, orig_min, orig_max, upd_hist, upd_min, upd_max,
                       upsample_rate=16, lanes=8):
    bins = orig_hist.size
    if upd_min == orig_min and upd_max == orig_max:
        return (orig_hist + upd_hist).astype(F32)
    if orig_min == orig_max:
        value = torch_sum(orig_hist, lanes)
        one = histc(np.array([orig_min], F32), bins, upd_min, upd_max)
        return ((one * value) + upd_hist).astype(F32)
    assert upd_min <= orig_min and upd_max >= orig_max
    return (upd_hist + upscale_histogram(orig_hist, orig_min, orig_max, upd_min, upd_max,
                                         upsample_rate)).astype(F32)


class State:
    """The observer's buffers: ``histogram``, ``min_val``, ``max_val`` (float32)."""

    def __init__(self, bins=2048):
        self.bins = bins
        self.histogram = np.zeros(bins, F32)
        self.min_val = F32(np.inf)
        self.max_val = F32(-np.inf)


def forward(state, x, upsample_rate=16, lanes=8):
    """One ``HistogramObserver.forward(x)``; returns True if inf values were dropped."""
    x = np.asarray(x, F32).ravel()
    if x.size == 0:
        return False
    dropped = False
    if np.isnan(x).any():
        x_min = x_max = F32(np.nan)
    else:
        x_min, x_max = F32(x.min()), F32(x.max())
    if x_min == -np.inf or x_max == np.inf:
        dropped = True
        x = x[np.abs(x) != np.inf]
        if x.size == 0:
            return dropped
        if np.isnan(x).any():
            x_min = x_max = F32(np.nan)
        else:
            x_min, x_max = F32(x.min()), F32(x.max())
    if state.min_val == np.inf or state.max_val == -np.inf:
        hist = histc(x, state.bins, x_min, x_max)
        state.min_val, state.max_val, state.histogram = x_min, x_max, hist
        return dropped
    cur_min, cur_max = state.min_val, state.max_val
    new_min = F32(np.nan) if np.isnan(cur_min) or np.isnan(x_min) else min(cur_min, x_min)
    new_max = F32(np.nan) if np.isnan(cur_max) or np.isnan(x_max) else max(cur_max, x_max)
    upd = histc(x, state.bins, new_min, new_max)
    if new_min == cur_min and new_max == cur_max:
        state.histogram = (state.histogram + upd).astype(F32)
    else:
        state.histogram = combine_histograms(state.histogram, cur_min, cur_max, upd,
                                             new_min, new_max, upsample_rate, lanes)
        state.min_val, state.max_val = F32(new_min), F32(new_max)
    return dropped


def get_norm(delta_begin, delta_end, density):
    norm = (delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / F32(3)
    return density * norm


def quantization_error(hist, min_val, max_val, start, end, dst_nbins, lanes=8):
    """``_compute_quantization_error(start, end)`` as a Python float."""
    bins = hist.size
    bin_width = (float(max_val) - float(min_val)) / bins
    dst_bin_width = bin_width * (end - start + 1) / dst_nbins
    if dst_bin_width == 0.0:
        return 0.0
    with np.errstate(all="ignore"):
        bw = f32(bin_width)
        dbw = f32(dst_bin_width)
        half = f32(dst_bin_width / 2)
        src_begin = (np.arange(bins) - start).astype(F32) * bw
        src_end = (src_begin + bw).astype(F32)
        top = f32(dst_nbins - 1)
        d_begin = np.minimum(np.maximum(div_floor(src_begin, dbw), F32(0)), top)
        begin_center = ((d_begin + F32(0.5)) * dbw).astype(F32)
        d_end = np.minimum(np.maximum(div_floor(src_end, dbw), F32(0)), top)
        density = (hist / bw).astype(F32)
        norm = np.zeros(bins, F32)
        norm = norm + get_norm((src_begin - begin_center).astype(F32),
                               np.ones(bins, F32) * half, density)
        norm = norm + (d_end - d_begin - F32(1)) * get_norm(f32(-dst_bin_width / 2), half,
                                                            density)
        end_center = (d_end * dbw + half).astype(F32)
        norm = norm + get_norm(f32(-dst_bin_width / 2), (src_end - end_center).astype(F32),
                               density)
        return float(torch_sum(norm.astype(F32), lanes))


def non_linear_param_search(hist, min_val, max_val, dst_nbins, lanes=8):
    """``_non_linear_param_search``: the new (min, max) as float32."""
    bins = hist.size
    bin_width = f32(f32(F32(max_val) - F32(min_val)) / F32(bins))
    total = float(torch_sum(hist, lanes))
    csum = cumsum(hist)
    stepsize = 1e-5
    alpha, beta = 0.0, 1.0
    start_bin, end_bin = 0, bins - 1
    norm_min = math.inf
    while alpha < beta:
        next_alpha = alpha + stepsize
        next_beta = beta - stepsize
        lo_t = f32(next_alpha * total)
        hi_t = f32(next_beta * total)
        l, r = start_bin, end_bin
        while l < end_bin and csum[l] < lo_t:
            l += 1
        while r > start_bin and csum[r] > hi_t:
            r -= 1
        next_start, next_end = start_bin, end_bin
        if (l - start_bin) > (end_bin - r):
            next_start = l
            alpha = next_alpha
        else:
            next_end = r
            beta = next_beta
        if next_start == start_bin and next_end == end_bin:
            continue
        norm = quantization_error(hist, min_val, max_val, next_start, next_end, dst_nbins, lanes)
        if norm > norm_min:
            break
        norm_min = norm
        start_bin, end_bin = next_start, next_end
    with np.errstate(all="ignore"):
        new_min = f32(F32(min_val) + f32(bin_width * F32(start_bin)))
        new_max = f32(F32(min_val) + f32(bin_width * F32(end_bin + 1)))
    return new_min, new_max
