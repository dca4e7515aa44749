"""Channels-last data movement for quantized convolution: uint8 im2col and NCHW -> NHWC.

Public kernels
--------------
im2col_u8(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, groups,
          group_channels, x_zero_point, cols, parallel)
    Unfold a uint8 input, given as a flat buffer ``xf`` and element strides ``xs`` of
    its ``(N, D, H, W, C)`` logical view, into ``cols`` ``(groups, M, K_g)`` with
    ``M = N*OD*OH*OW`` (output positions in channels-last order) and
    ``K_g = kd*kh*kw*C_g``. Row ``m = ((n*OD + od)*OH + oh)*OW + ow`` of group ``g``
    holds, at column ``((a*kh + b)*kw + e)*C_g + c``, the input value at
    ``(n, od*sd - pd + a*dd, oh*sh - ph + b*dh, ow*sw - pw + e*dw, g*C_g + c)``, or
    ``x_zero_point`` where that position lies in the padding (so a padded value
    dequantizes to exactly 0, as in torch). This column order (window tap major,
    channel minor) is the order of :func:`numq.kernels.conv.pack_conv_weight`.
to_channels_last(x, out, parallel)
    Copy a C-contiguous ``(N, C, P)`` uint8 array into a C-contiguous ``(N, P, C)``.

Taking the input as a flat buffer plus strides lets one compiled kernel read NCHW,
channels-last and any other view of a QTensor without a copy: the common case (the
output of a previous numq convolution, a transposed view of a channels-last buffer)
has channel stride 1 and is copied in contiguous runs of ``C_g`` bytes (a whole kernel
row at once when its taps are adjacent, 8-byte words when every offset allows). Short
or strided channel runs (fewer than 8 channels per group, e.g. an RGB first layer, or
NCHW planes) take a planar path instead: one ``cols`` column at a time, walking the
output positions along an input row. Every size is a 3-tuple (depth, height, width);
1-d and 2-d convolutions pass unit depth/height, so one specialisation serves all ranks.

``parallel`` runs a ``prange`` over output rows ``(n, od, oh)``; every row writes its
own part of ``cols``, so the result does not depend on the thread count. Kernels trust
their caller (``numq.kernels.conv.qconv`` computes every size).
"""
import numpy as np
from numba import prange

from ._jit import kernel

__all__ = ["im2col_u8", "to_channels_last", "pixels_to_words"]


@kernel(inline="always")
def line_origin(line, OD, OH):
    """``(n, od, oh)`` of output line ``line = (n*OD + od)*OH + oh``."""
    t = line // OH
    return t // OD, t % OD, line % OH


@kernel
def _im2col_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                 groups, Cg, zpv, cf, M, Kg, line):
    """All ``OW`` rows of output line ``line = (n*OD + od)*OH + oh``, every group
    (``cf`` is the flat ``(groups, M, Kg)`` buffer; columns past ``taps*Cg`` get ``zpv``).

    Element-type generic: the caller may pass uint64 views of both buffers with every
    size and stride divided by 8 (and ``zpv`` the zero point repeated in 8 bytes), so
    runs of channels move 8 bytes at a time. A kernel row whose taps are adjacent in
    the input (dilation 1, one group) and all inside is copied as one run.
    """
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    std, sth, stw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    K = kd * kh * kw * Cg
    n, od, oh = line_origin(line, OD, OH)
    adjacent = sc == 1 and dw * sw_ == Cg
    for g in range(groups):
        gbase = g * M * Kg
        c0 = g * Cg
        for ow in range(OW):
            dst = np.uint64(gbase + (line * OW + ow) * Kg)
            iw0 = ow * stw - pw
            row_in = iw0 >= 0 and iw0 + (kw - 1) * dw < W
            col = 0
            for a in range(kd):
                i_d = od * std - pd + a * dd
                for b in range(kh):
                    i_h = oh * sth - ph + b * dh
                    if i_d < 0 or i_d >= D or i_h < 0 or i_h >= H:
                        d0 = dst + np.uint64(col)
                        for c in range(kw * Cg):
                            cf[d0 + np.uint64(c)] = zpv
                        col += kw * Cg
                        continue
                    base = n * sn + i_d * sd_ + i_h * sh_ + c0 * sc
                    if adjacent and row_in:
                        d0 = dst + np.uint64(col)
                        s0 = np.uint64(base + iw0 * sw_)
                        for c in range(kw * Cg):
                            cf[d0 + np.uint64(c)] = xf[s0 + np.uint64(c)]
                        col += kw * Cg
                        continue
                    for e in range(kw):
                        i_w = iw0 + e * dw
                        d0 = dst + np.uint64(col)
                        col += Cg
                        if i_w < 0 or i_w >= W:
                            for c in range(Cg):
                                cf[d0 + np.uint64(c)] = zpv
                            continue
                        s0 = np.uint64(base + i_w * sw_)
                        if sc == 1:
                            for c in range(Cg):
                                cf[d0 + np.uint64(c)] = xf[s0 + np.uint64(c)]
                        else:
                            for c in range(Cg):
                                cf[d0 + np.uint64(c)] = xf[s0 + np.uint64(c * sc)]
            for c in range(K, Kg):
                cf[dst + np.uint64(c)] = zpv


@kernel
def _im2col_line_planar(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                        groups, Cg, zpv, cf, M, Kg, line):
    """:func:`_im2col_line` for inputs whose channels are not adjacent (NCHW planes):
    one column of ``cols`` at a time, walking the output positions of the line, so the
    input is read along its rows instead of gathering one byte per plane and tap."""
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    std, sth, stw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    K = kd * kh * kw * Cg
    n, od, oh = line_origin(line, OD, OH)
    for g in range(groups):
        row0 = g * M * Kg + line * OW * Kg
        for a in range(kd):
            i_d = od * std - pd + a * dd
            for b in range(kh):
                i_h = oh * sth - ph + b * dh
                inside = 0 <= i_d < D and 0 <= i_h < H
                for e in range(kw):
                    off = e * dw - pw
                    lo = 0 if off >= 0 else (-off + stw - 1) // stw
                    last = W - 1 - off
                    hi = min(OW, last // stw + 1) if last >= 0 else 0
                    if not inside or lo > hi:
                        lo = hi = 0
                    for c in range(Cg):
                        d0 = row0 + ((a * kh + b) * kw + e) * Cg + c
                        for ow in range(lo):
                            cf[np.uint64(d0 + ow * Kg)] = zpv
                        s0 = n * sn + i_d * sd_ + i_h * sh_ + (g * Cg + c) * sc + off * sw_
                        for ow in range(lo, hi):
                            cf[np.uint64(d0 + ow * Kg)] = xf[np.uint64(s0 + ow * stw * sw_)]
                        for ow in range(hi, OW):
                            cf[np.uint64(d0 + ow * Kg)] = zpv
        for ow in range(OW):
            for c in range(K, Kg):
                cf[np.uint64(row0 + ow * Kg + c)] = zpv


@kernel
def _im2col_serial_planar(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                          groups, Cg, zpv, cf, M, Kg):
    for line in range(M // out_size[2]):
        _im2col_line_planar(xf, xs, in_size, out_size, kernel_size, stride, padding,
                            dilation, groups, Cg, zpv, cf, M, Kg, line)


@kernel(parallel=True)
def _im2col_parallel_planar(xf, xs, in_size, out_size, kernel_size, stride, padding,
                            dilation, groups, Cg, zpv, cf, M, Kg):
    for line in prange(M // out_size[2]):
        _im2col_line_planar(xf, xs, in_size, out_size, kernel_size, stride, padding,
                            dilation, groups, Cg, zpv, cf, M, Kg, line)


@kernel
def _im2col_serial(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                   groups, Cg, zpv, cf, M, Kg):
    for line in range(M // out_size[2]):
        _im2col_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                     groups, Cg, zpv, cf, M, Kg, line)


@kernel(parallel=True)
def _im2col_parallel(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                     groups, Cg, zpv, cf, M, Kg):
    for line in prange(M // out_size[2]):
        _im2col_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                     groups, Cg, zpv, cf, M, Kg, line)


def im2col_u8(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, groups,
              group_channels, x_zero_point, cols, parallel=False):
    """Fill ``cols`` ``(groups, M, K_g)`` uint8 (C-contiguous) with the channels-last
    im2col of the input (see the module docstring); returns ``cols``.

    ``xf`` is a 1-d uint8 array from which element ``(n, d, h, w, c)`` of the input is
    ``xf[n*xs[0] + d*xs[1] + h*xs[2] + w*xs[3] + c*xs[4]]`` (strides >= 0, in elements).
    All size arguments are 3-tuples of Python ints; ``padding`` holds the leading pads.
    ``group_channels`` is ``C_g``; a row of ``cols`` may be longer than ``kd*kh*kw*C_g``
    (the GEMM reads K in groups of 4): the extra columns are set to ``x_zero_point``,
    which contributes exactly 0 to every accumulator.
    """
    Cg, Kg, M = int(group_channels), int(cols.shape[2]), int(cols.shape[1])
    cf = cols.reshape(-1)
    zpv = np.uint8(x_zero_point)
    # short or strided channel runs: walk the input rows instead
    planar = (xs[4] != 1 and Cg > 1) or Cg < 8
    # 8 (or 4) bytes at a time when every offset is a whole number of words
    for word, wt, rep in ((8, np.uint64, 0x0101010101010101), (4, np.uint32, 0x01010101)):
        if (xs[4] == 1 and Cg % word == 0 and Kg % word == 0
                and all(v % word == 0 for v in xs[:4])
                and xf.ctypes.data % word == 0 and cf.ctypes.data % word == 0):
            xf = xf[:xf.size // word * word].view(wt)
            cf = cf.view(wt)
            xs = tuple(v // word for v in xs[:4]) + (1,)
            Cg, Kg = Cg // word, Kg // word
            zpv = wt(int(x_zero_point) * rep)
            # one word per pixel (4-byte pixels of a first layer): walk columns, as for
            # planes, a tight strided loop; else whole kernel rows per position
            planar = Cg == 1
            break
    args = (xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, int(groups),
            Cg, zpv, cf, M, Kg)
    par = parallel and M // out_size[2] > 1
    if planar:
        (_im2col_parallel_planar if par else _im2col_serial_planar)(*args)
    else:
        (_im2col_parallel if par else _im2col_serial)(*args)
    return cols


_TILE = 64


@kernel
def _transpose_tile(xf, of, C, P, n, p0, p1):
    """Positions ``p0 .. p1`` of sample ``n``: ``of[(n*P + p)*C + c] = xf[(n*C + c)*P + p]``,
    in 64-channel blocks (flat arrays, unsigned indices: see :func:`_im2col_line`)."""
    base = n * C * P
    for c0 in range(0, C, _TILE):
        c1 = min(C, c0 + _TILE)
        for p in range(p0, p1):
            o = np.uint64(base + p * C)
            for c in range(c0, c1):
                of[o + np.uint64(c)] = xf[np.uint64(base + c * P + p)]


@kernel
def _to_cl_serial(xf, of, N, C, P):
    for n in range(N):
        for p0 in range(0, P, _TILE):
            _transpose_tile(xf, of, C, P, n, p0, min(P, p0 + _TILE))


@kernel(parallel=True)
def _to_cl_parallel(xf, of, N, C, P):
    tiles = (P + _TILE - 1) // _TILE
    for i in prange(N * tiles):
        n = i // tiles
        p0 = (i % tiles) * _TILE
        _transpose_tile(xf, of, C, P, n, p0, min(P, p0 + _TILE))


def to_channels_last(x, out, parallel=False):
    """Copy C-contiguous ``x`` ``(N, C, P)`` uint8 into C-contiguous ``out`` ``(N, P, C)``;
    returns ``out``. Tiles of 64 positions x 64 channels keep both sides in cache.
    """
    N, C, P = x.shape
    (_to_cl_parallel if parallel else _to_cl_serial)(x.reshape(-1), out.reshape(-1), N, C, P)
    return out


@kernel
def _words_rows(xf, xs, in_size, C, zpw, out, r0, r1):
    """Rows ``(n, d, h)`` ``r0 .. r1-1``: ``out[row, w]`` = the pixel's C (2 or 3) bytes
    in its low bytes, ``zpw`` (the zero point in the other bytes) elsewhere."""
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    for r in range(r0, r1):
        n = r // (D * H)
        d = (r // H) % D
        h = r % H
        b0 = np.uint64(n * sn + d * sd_ + h * sh_)
        b1 = b0 + np.uint64(sc)
        b2 = b1 + np.uint64(sc)
        usw = np.uint64(sw_)
        o = np.uint64(r * W)
        # one byte per plane and pixel, unit stride along W in NCHW: a vector loop
        if C == 3:
            for w in range(W):
                u = np.uint64(w) * usw
                out[o + np.uint64(w)] = (np.uint32(xf[b0 + u]) | (np.uint32(xf[b1 + u]) << 8)
                                         | (np.uint32(xf[b2 + u]) << 16) | zpw)
        else:
            for w in range(W):
                u = np.uint64(w) * usw
                out[o + np.uint64(w)] = (np.uint32(xf[b0 + u]) | (np.uint32(xf[b1 + u]) << 8)
                                         | zpw)


@kernel(parallel=True)
def _words_parallel(xf, xs, in_size, C, zpw, out, nrows, nchunks):
    for c in prange(nchunks):
        _words_rows(xf, xs, in_size, C, zpw, out, c * nrows // nchunks,
                    (c + 1) * nrows // nchunks)


def pixels_to_words(xf, xs, in_size, channels, x_zero_point, out, parallel=False):
    """Copy a 2- or 3-channel input into 4-byte pixels: ``out`` uint8 ``(N, P, 4)``
    (C-contiguous, P = D*H*W) gets each pixel's channels, then ``x_zero_point`` in the
    remaining bytes (a padded channel that adds exactly 0 against zero weights).

    ``xf``/``xs``: the input as in :func:`im2col_u8`; ``in_size`` = (D, H, W).
    """
    if channels not in (2, 3):
        raise ValueError(f"channels must be 2 or 3; got {channels}")
    zp = int(x_zero_point)
    zpw = np.uint32(sum(zp << (8 * b) for b in range(channels, 4)))
    nrows = out.shape[0] * in_size[0] * in_size[1]
    o32 = out.reshape(-1).view(np.uint32)
    if parallel and nrows > 1:
        _words_parallel(xf, tuple(xs), tuple(in_size), int(channels), zpw, o32, nrows,
                        min(nrows, 8))
    else:
        _words_rows(xf, tuple(xs), tuple(in_size), int(channels), zpw, o32, 0, nrows)
    return out
