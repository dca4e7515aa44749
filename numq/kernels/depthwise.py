"""Direct channels-last depthwise convolution with the requantization epilogue fused.

Public kernel
-------------
depthwise_requant(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                  multiplier, x_zero_point, wq, mult, bias_s, out_zero_point, relu, out,
                  parallel)
    For a convolution with ``groups == C`` (each input channel ``c`` feeds the
    ``multiplier`` output channels ``c*multiplier ..``), compute for every output
    position ``m = ((n*OD + od)*OH + oh)*OW + ow`` the exact int32 accumulators
    ``acc[oc] = sum over window taps t of (x[n, pos(t), oc // multiplier] - x_zp)
    * wq[t, oc]`` and write ``out[m, oc]`` (uint8, C-contiguous ``(M, OC)``) with the
    static epilogue ``clamp(rint(f32(f32(acc) + bias_s[oc]) * mult[oc]) + zp, lo, 255)``,
    ``lo = zp`` with ``relu`` else 0. ``mult`` / ``bias_s`` are the per-channel epilogue
    parameters that :func:`numq.kernels.gemm._requant_params` computes (NUMERICS.md's
    rule lives there, not here). ``wq`` ``(kd*kh*kw, OC)`` int16 holds
    ``w - w_zero_point[oc]`` (window tap major); the input is read as in
    :func:`numq.kernels.im2col_u8.im2col_u8` (a flat buffer and ``(N, D, H, W, C)``
    element strides). Padding taps are skipped: a padded value is ``x_zp`` and
    contributes exactly 0.

Why direct: with one input channel per group an im2col + GEMM would run ``C`` GEMMs of
``K = kd*kh*kw`` (9 for 3x3), far too small for a GEMM microkernel. Here the channel
loop is innermost and contiguous (channel stride 1 in the channels-last layout), so
LLVM vectorises it across channels. A kernel row of 3 taps (the 3x3 / 3x3x3 case) is
added in one pass over the channels, so the accumulators are loaded and stored once
per row instead of once per tap; the accumulators of one output position live in a
small buffer that stays in L1 and the epilogue runs right after, so no int32 array
is written to memory. The products fit in int32 exactly (|x - zp| <= 255,
|w - w_zp| <= 255, no overflow below 2^15 taps).

3x3 kernels (2-D, multiplier 1, channels adjacent), the MobileNet case, take
:func:`_dw3x3_rows`: from zero-point padded copies of the three input rows, one pass over
the channels adds the nine products in registers as ``sum x * w - x_zp * sum w`` and
requantizes at once, with no accumulator array and no separate border code (the channel
loop is vector IR, 16 channels per step: :mod:`numq.kernels._dw_micro`).

``parallel`` runs a ``prange`` over output rows ``(n, od, oh)`` (for 3x3: contiguous runs
of them, one per thread); each writes its own rows of ``out``, so results do not depend
on the thread count. The torch x86 engine's
3x3 depthwise kernel adds pairs of uint8 x int8 products in saturating int16; numq's
sums are exact (identical results whenever no such pair exceeds 32767 in magnitude).
"""
import numpy as np
from numba import prange

from .._threads import get_num_threads
from ._align import aligned_u8
from ._dw_micro import dw3x3_pixels
from ._gemm_micro import copy_bytes
from ._jit import kernel
from ._requant import u8_code
from .im2col_u8 import line_origin

__all__ = ["depthwise_requant"]


@kernel
def _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
             wf, OC, mt, bs, zp_f, lo_f, of, acc, line, ow0, ow1):
    """Output positions ``line*OW + ow0 .. line*OW + ow1 - 1`` (line = ``(n*OD + od)*OH
    + oh``).

    Flat arrays and unsigned indices: Numba's negative-index test on signed indices
    would stop LLVM from vectorising the channel loops.
    """
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    std, sth, stw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    n, od, oh = line_origin(line, OD, OH)
    zp32 = np.int32(zp)
    uOC = np.uint64(OC)
    top, bot, zpi = np.float32(255.0) - zp_f, lo_f - zp_f, np.int32(zp_f)
    fast = mult == 1 and sc == 1
    step = np.uint64(dw * sw_)
    for ow in range(ow0, ow1):
        for oc in range(OC):
            acc[oc] = 0
        iw0 = ow * stw - pw
        row_ok = iw0 >= 0 and iw0 + (kw - 1) * dw < W  # every tap of a kernel row inside
        for a in range(kd):
            i_d = od * std - pd + a * dd
            if i_d < 0 or i_d >= D:
                continue
            for b in range(kh):
                i_h = oh * sth - ph + b * dh
                if i_h < 0 or i_h >= H:
                    continue
                tap0 = (a * kh + b) * kw
                base = n * sn + i_d * sd_ + i_h * sh_
                if fast and kw == 3 and row_ok:
                    s0 = np.uint64(base + iw0 * sw_)
                    s1 = s0 + step
                    s2 = s1 + step
                    w0 = np.uint64(tap0) * uOC
                    w1 = w0 + uOC
                    w2 = w1 + uOC
                    for oc in range(OC):
                        u = np.uint64(oc)
                        acc[u] += ((np.int32(xf[s0 + u]) - zp32) * np.int32(wf[w0 + u])
                                   + (np.int32(xf[s1 + u]) - zp32) * np.int32(wf[w1 + u])
                                   + (np.int32(xf[s2 + u]) - zp32) * np.int32(wf[w2 + u]))
                    continue
                for e in range(kw):
                    i_w = iw0 + e * dw
                    if i_w < 0 or i_w >= W:
                        continue
                    s0 = np.uint64(base + i_w * sw_)
                    w0 = np.uint64(tap0 + e) * uOC
                    if fast:
                        for oc in range(OC):
                            u = np.uint64(oc)
                            acc[u] += (np.int32(xf[s0 + u]) - zp32) * np.int32(wf[w0 + u])
                    else:
                        for c in range(OC // mult):
                            xv = np.int32(xf[s0 + np.uint64(c * sc)]) - zp32
                            for j in range(c * mult, (c + 1) * mult):
                                u = np.uint64(j)
                                acc[u] += xv * np.int32(wf[w0 + u])
        o0 = np.uint64(line * OW + ow) * uOC
        for oc in range(OC):
            v = (np.float32(acc[oc]) + bs[oc]) * mt[oc]
            of[o0 + np.uint64(oc)] = u8_code(v, top, bot, zpi)


@kernel
def _dw3x3_rows(xf, xs, in_size, out_size, stride, padding, dilation, zp, w32, zsum, OC,
                mt, bs, zp_f, lo_f, of, line0, line1):
    """A 3x3 kernel (2-D, multiplier 1, channels adjacent): output lines ``line0 ..
    line1 - 1``.

    The three input rows of a line are read from zero-point padded copies (a small
    ring of rows, each copied once per run of lines, plus one all-``zp`` row for rows
    outside the input), so every output position, borders included, takes one pass
    over the channels that adds the nine products in registers and requantizes at once:
    ``acc = sum_t x_t * w_t - x_zp * sum_t w_t`` (``zsum``), exact in int32.
    """
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    std, sth, stw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    Wp = W + 2 * pw
    row = Wp * OC
    # rows 0-2: the ring of padded input rows, row 3: all zp (pad columns set once)
    rb = aligned_u8(4 * row + 64)
    for i in range(rb.size):
        rb[i] = zp
    tags = np.full(3, -1, np.int64)
    x_ptr = np.int64(xf.ctypes.data)
    r_ptr = np.int64(rb.ctypes.data)
    top, bot, zpi = np.float32(255.0) - zp_f, lo_f - zp_f, np.int32(zp_f)
    ew = dw * OC
    cstep = stw * OC
    rs = np.empty(3, np.int64)
    for line in range(line0, line1):
        n, od, oh = line_origin(line, OD, OH)
        i_d = od * std - pd
        for kr in range(3):
            ih = oh * sth - ph + kr * dh
            if i_d < 0 or i_d >= D or ih < 0 or ih >= H:
                rs[kr] = 3 * row
                continue
            key = (n * D + i_d) * H + ih
            slot = (ih // dh) % 3            # the line's three rows: three slots
            rs[kr] = slot * row
            if tags[slot] != key:
                tags[slot] = key
                src = n * sn + i_d * sd_ + ih * sh_
                dst = slot * row + pw * OC
                # memcpy (an element loop over pixel slices is several times slower)
                if sw_ == OC:
                    copy_bytes(r_ptr + dst, x_ptr + src, W * OC)
                else:
                    for w in range(W):
                        copy_bytes(r_ptr + dst + w * OC, x_ptr + src + w * sw_, OC)
        dw3x3_pixels(rb, rs[0], rs[1], rs[2], ew, cstep, OW, w32, zsum, bs, mt, of,
                     line * OW * OC, top, bot, zpi)


@kernel
def _dw3x3_serial(xf, xs, in_size, out_size, stride, padding, dilation, zp, w32, zsum, OC,
                  mt, bs, zp_f, lo_f, of):
    _dw3x3_rows(xf, xs, in_size, out_size, stride, padding, dilation, zp, w32, zsum, OC, mt,
                bs, zp_f, lo_f, of, 0, of.size // (OC * out_size[2]))


@kernel(parallel=True)
def _dw3x3_parallel(xf, xs, in_size, out_size, stride, padding, dilation, zp, w32, zsum,
                    OC, mt, bs, zp_f, lo_f, of, nchunks):
    # contiguous runs of lines per worker: consecutive lines share two input rows
    nl = of.size // (OC * out_size[2])
    for k in prange(nchunks):
        _dw3x3_rows(xf, xs, in_size, out_size, stride, padding, dilation, zp, w32, zsum, OC,
                    mt, bs, zp_f, lo_f, of, k * nl // nchunks, (k + 1) * nl // nchunks)


@kernel
def _dw_line_rows(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, zp, wt,
                  OC, mt, bs, zp_f, lo_f, of, acc, line):
    """Stride-1 width, channel-contiguous input rows, multiplier 1: each window tap adds
    one long run ``(ow, c)`` of the input row to the line's accumulators ``acc``
    ``(OW*OC,)``; ``wt`` ``(taps, OW*OC)`` repeats each tap's weights ``OW`` times, so the
    run is contiguous on all three arrays (one long vectorised loop per tap instead of
    one short loop per tap and output position)."""
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    std, sth, _ = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    n, od, oh = line_origin(line, OD, OH)
    zp32 = np.int32(zp)
    L = OW * OC
    uL = np.uint64(L)
    for j in range(L):
        acc[j] = 0
    for a in range(kd):
        i_d = od * std - pd + a * dd
        if i_d < 0 or i_d >= D:
            continue
        for b in range(kh):
            i_h = oh * sth - ph + b * dh
            if i_h < 0 or i_h >= H:
                continue
            base = n * sn + i_d * sd_ + i_h * sh_
            for e in range(kw):
                off = e * dw - pw               # input column of output column 0
                lo = max(0, -off)
                hi = min(OW, W - off)
                if lo >= hi:
                    continue
                j0 = np.uint64(lo * OC)
                s0 = np.uint64(base + (lo + off) * sw_)
                w0 = np.uint64((a * kh + b) * kw + e) * uL + j0
                for j in range((hi - lo) * OC):
                    u = np.uint64(j)
                    acc[j0 + u] += (np.int32(xf[s0 + u]) - zp32) * np.int32(wt[w0 + u])
    top, bot, zpi = np.float32(255.0) - zp_f, lo_f - zp_f, np.int32(zp_f)
    o0 = np.uint64(line * L)
    for ow in range(OW):
        r = np.uint64(ow * OC)
        for oc in range(OC):
            u = np.uint64(oc)
            v = (np.float32(acc[r + u]) + bs[oc]) * mt[oc]
            of[o0 + r + u] = u8_code(v, top, bot, zpi)


@kernel
def _dw_rows_serial(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, zp,
                    wt, OC, mt, bs, zp_f, lo_f, of):
    acc = np.empty(out_size[2] * OC, np.int32)
    for line in range(of.size // (OC * out_size[2])):
        _dw_line_rows(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, zp,
                      wt, OC, mt, bs, zp_f, lo_f, of, acc, line)


@kernel(parallel=True)
def _dw_rows_parallel(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                      zp, wt, OC, mt, bs, zp_f, lo_f, of):
    for line in prange(of.size // (OC * out_size[2])):
        acc = np.empty(out_size[2] * OC, np.int32)
        _dw_line_rows(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, zp,
                      wt, OC, mt, bs, zp_f, lo_f, of, acc, line)


@kernel
def _dw_serial(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
               wf, OC, mt, bs, zp_f, lo_f, of):
    acc = np.empty(OC, np.int32)
    for line in range(of.size // (OC * out_size[2])):
        _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
                 wf, OC, mt, bs, zp_f, lo_f, of, acc, line, 0, out_size[2])


@kernel(parallel=True)
def _dw_parallel(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult,
                 zp, wf, OC, mt, bs, zp_f, lo_f, of):
    for line in prange(of.size // (OC * out_size[2])):
        acc = np.empty(OC, np.int32)
        _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
                 wf, OC, mt, bs, zp_f, lo_f, of, acc, line, 0, out_size[2])


def depthwise_requant(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                      multiplier, x_zero_point, wq, mult, bias_s, out_zero_point, relu, out,
                      parallel=False, wq32=None, wsum=None):
    """Write the requantized depthwise convolution into uint8 ``out`` ``(M, OC)``
    (C-contiguous; see the module docstring); returns ``out``. Sizes are 3-tuples of
    Python ints; ``mult`` / ``bias_s`` are float32 ``(OC,)``. ``wq32`` (flat int32 ``wq``)
    and ``wsum`` (int64 sums of ``wq`` over taps) may come prepacked; else derived here."""
    zp = int(out_zero_point)
    zp_f, lo_f = np.float32(zp), np.float32(zp if relu else 0)
    OC = int(wq.shape[1])
    OW = out_size[2]
    par = parallel and out.shape[0] // OW > 1
    if multiplier == 1 and xs[4] == 1 and tuple(kernel_size) == (1, 3, 3):
        w32 = wq.astype(np.int32).reshape(-1) if wq32 is None else wq32
        wsum = wq.astype(np.int64).sum(axis=0) if wsum is None else wsum
        zsum = (int(x_zero_point) * wsum).astype(np.int32)
        args = (xf, xs, in_size, out_size, stride, padding, dilation, np.uint8(x_zero_point),
                w32, zsum, OC, mult, bias_s, zp_f, lo_f, out.reshape(-1))
        if par:
            _dw3x3_parallel(*args, get_num_threads())
        else:
            _dw3x3_serial(*args)
        return out
    if multiplier == 1 and xs[4] == 1 and xs[3] == OC and stride[2] == 1:
        wt = np.tile(wq, (1, OW)).reshape(-1)  # (taps, OW*OC): see _dw_line_rows
        args = (xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                int(x_zero_point), wt, OC, mult, bias_s, zp_f, lo_f, out.reshape(-1))
        (_dw_rows_parallel if par else _dw_rows_serial)(*args)
        return out
    args = (xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
            int(multiplier), int(x_zero_point), wq.reshape(-1), OC, mult,
            bias_s, zp_f, lo_f, out.reshape(-1))
    (_dw_parallel if par else _dw_serial)(*args)
    return out
