"""Implicit-GEMM quantized convolution on AMX: no im2col buffer.

For a convolution with 64k input channels (groups 1, symmetric weights) the K axis of
the GEMM (window tap major, channel minor, as :func:`numq.kernels.conv.pack_conv_weight`
packs it) splits into steps of 64 channels of one tap. The A tile of a step, 16
neighbouring output pixels x those 64 channels, is read straight from a zero-point
padded channels-last copy of the input: rows ``stride * C`` bytes apart, starting at the
tap's offset. So the only data movement is that padded copy (the size of the input,
not ``taps`` times it), and each 16-pixel x 32-channel block of the output finishes
with the GEMM engine's fused epilogue (:mod:`numq.kernels.gemm`), giving the same bits
as the im2col path and as torch.

Output pixels are taken 16 at a time along each output row (the last group of a row may
be partial: its extra rows read past the row, into padding or the slack after the
buffer, and are never stored), or, with stride 1, as 16 consecutive positions of the
padded width, running across output rows (see :func:`_conv_items`).
"""
import functools
import math

import numpy as np
from numba import prange

from .. import _isa
from . import _gemm_micro as _mk
from . import gemm as _G
from ._align import aligned_i32, aligned_u8
from ._jit import kernel
from .im2col_u8 import line_origin

__all__ = ["eligible", "qconv_amx"]

_ROWS = 16          # output pixels per A tile
_NO_BIAS = np.zeros(1, np.float32)
_F32 = np.dtype(np.float32)


def eligible(packed, in_channels):
    """Whether :func:`qconv_amx` computes this convolution (else the im2col path)."""
    return (packed.groups == 1 and not packed.depthwise and in_channels % 64 == 0
            and not packed.gemm[0].any_zero_point
            and packed.gemm[0].k == math.prod(packed.kernel_size) * in_channels)


@kernel
def _pad_copy_rows(xf, xs, n_rows, D, H, W, C, pd, ph, pw, Dp, Hp, Wp, r0, r1, out):
    """Copy input rows ``(n, d, h)`` ``r0 .. r1-1`` into the padded channels-last buffer."""
    for r in range(r0, r1):
        n = r // (D * H)
        d = (r // H) % D
        h = r % H
        src = n * xs[0] + d * xs[1] + h * xs[2]
        dst = (((n * Dp + d + pd) * Hp + h + ph) * Wp + pw) * C
        if xs[4] == 1:
            # element loops over views (no overlap check and temporary per slice
            # assignment, no negative-index checks: LLVM emits vector copies)
            orow = out[dst:dst + W * C]
            for w in range(W):
                s = src + w * xs[3]
                pix = xf[s:s + C]
                opix = orow[w * C:(w + 1) * C]
                for c in range(C):
                    opix[c] = pix[c]
        else:
            for w in range(W):
                s = src + w * xs[3]
                o = dst + w * C
                for c in range(C):
                    out[o + c] = xf[s + c * xs[4]]


@kernel
def _fill_halo(xp, N, D, H, W, C, pd, ph, pw, zp):
    """Set the padding of the padded buffer (and the slack after it) to ``zp``; the
    interior is written by the copy (a whole-buffer fill would write it twice)."""
    Dp, Hp, Wp = D + 2 * pd, H + 2 * ph, W + 2 * pw
    row = Wp * C
    for r in range(N * Dp * Hp):
        d = (r // Hp) % Dp
        h = r % Hp
        o = r * row
        if d < pd or d >= pd + D or h < ph or h >= ph + H:
            xp[o:o + row] = zp
        else:
            xp[o:o + pw * C] = zp
            xp[o + (pw + W) * C:o + row] = zp
    xp[N * Dp * Hp * row:] = zp


@kernel(parallel=True)
def _pad_copy_parallel(xf, xs, n_rows, D, H, W, C, pd, ph, pw, Dp, Hp, Wp, nchunks, out):
    for c in prange(nchunks):
        _pad_copy_rows(xf, xs, n_rows, D, H, W, C, pd, ph, pw, Dp, Hp, Wp,
                       c * n_rows // nchunks, (c + 1) * n_rows // nchunks, out)


@kernel
def _tile_origin(t, tpr, OD, OH, OW, sd, sh, sw, Dp, Hp, Wp, C):
    """(input byte offset, first output row, valid rows) of 16-pixel tile ``t``."""
    r = t // tpr
    ow0 = (t % tpr) * _ROWS
    n, od, oh = line_origin(r, OD, OH)
    base = (((n * Dp + od * sd) * Hp + oh * sh) * Wp + ow0 * sw) * C
    return base, r * OW + ow0, min(_ROWS, OW - ow0)


@kernel(inline="always")
def _finish_rows(t2d, row0, m0, cnt, j0, ncol, mode, desc_ptr, col_corr, w_zps, rows, mult,
                 bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo):
    """Epilogue of scratch rows ``row0 .. row0+cnt-1``: output rows ``m0 ..``."""
    c = 0
    while c < cnt:
        mr = min(_mk.MR, cnt - c)
        tile = t2d[row0 + c:row0 + c + mr]
        if ncol == _mk.NR:
            _G._micro_vnni(mr, 0, 0, 0, 0, tile.ctypes.data, True, mode, desc_ptr, m0 + c, j0)
        else:
            _G._epilogue(tile, m0 + c, mr, j0, ncol, mode, col_corr, w_zps, False, rows, mult,
                         bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo)
        c += mr


@kernel
def _conv_items(counter, nitems, npg, pg, ntiles, tpr, geo, xp, offs, nsteps, data, k4, n,
                sg, cfg, mode, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                out_u8, out_f32, out_i32, ldo):
    """Items of ``pg`` tile pairs x ``sg`` strips, claimed from ``counter`` until none left.

    Two tilings of the output (``geo[10]``): 16 pixels along one output row (the last
    tile of a row partial), or, for stride 1 when it wastes less, 16 consecutive
    positions of the padded width ``Wp`` (``tpr`` tiles per (n, od) plane): one step in
    the input at every position, so tiles run across output rows; the ``Wp - OW``
    positions past each row's end are computed and dropped.
    """
    OD, OH, OW, sd, sh, sw, Dp, Hp, Wp, C = (geo[0], geo[1], geo[2], geo[3], geo[4], geo[5],
                                            geo[6], geo[7], geo[8], geo[9])
    wrapped = geo[10] != 0
    ns = (n + _mk.NR - 1) // _mk.NR
    t2d = aligned_i32(2 * _ROWS * _mk.NR).reshape((2 * _ROWS, _mk.NR))
    c_ptr = np.int64(t2d.ctypes.data)
    x_base = np.int64(xp.ctypes.data)
    b_base = np.int64(data.ctypes.data)
    o_ptr = np.int64(offs.ctypes.data)
    desc_ptr = np.int64(desc.ctypes.data)
    lda = sw * C
    plane_v = OH * Wp                      # wrapped positions per (n, od) plane
    _mk.amx_begin(cfg.ctypes.data)
    while True:
        it = _mk.fetch_add(counter)
        if it >= nitems:
            break
        p0 = (it % npg) * pg
        s0 = (it // npg) * sg
        for p in range(p0, min(p0 + pg, (ntiles + 1) // 2)):
            for s in range(s0, min(ns, s0 + sg)):
                j0 = s * _mk.NR
                ncol = min(_mk.NR, n - j0)
                for h in range(2):
                    t = 2 * p + h
                    if t >= ntiles:
                        break
                    if wrapped:
                        plane = t // tpr
                        v0 = (t % tpr) * _ROWS
                        nn = plane // OD
                        od = plane % OD
                        base = ((nn * Dp + od * sd) * Hp * Wp + v0) * C
                    else:
                        base, m0, valid = _tile_origin(t, tpr, OD, OH, OW, sd, sh, sw, Dp, Hp,
                                                       Wp, C)
                    # 16-pixel products (10% faster than 32-pixel ones, as in the GEMM)
                    _mk.amx_conv16(x_base + base, lda, o_ptr, nsteps, b_base + j0 * k4 * 4,
                                   4 * ncol, c_ptr + h * _ROWS * _mk.NR * 4)
                    if not wrapped:
                        _finish_rows(t2d, h * _ROWS, m0, valid, j0, ncol, mode, desc_ptr,
                                     col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                                     out_u8, out_f32, out_i32, ldo)
                        continue
                    # runs of positions inside an output row
                    r = 0
                    while r < _ROWS:
                        v = v0 + r
                        if v >= plane_v:
                            break
                        oh = v // Wp
                        ow = v - oh * Wp
                        if ow >= OW:
                            r += Wp - ow
                            continue
                        run = min(_ROWS - r, OW - ow)
                        _finish_rows(t2d, h * _ROWS + r, (plane * OH + oh) * OW + ow, run, j0,
                                     ncol, mode, desc_ptr, col_corr, w_zps, rows, mult,
                                     bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo)
                        r += run
    _mk.amx_end()


@kernel(parallel=True)
def _conv_parallel(nchunks, nitems, npg, pg, ntiles, tpr, geo, xp, offs, nsteps, data, k4, n,
                   sg, cfg, mode, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                   out_u8, out_f32, out_i32, ldo):
    counter = np.zeros(1, np.int64)
    for c in prange(nchunks):
        _conv_items(counter, nitems, npg, pg, ntiles, tpr, geo, xp, offs, nsteps, data, k4, n,
                    sg, cfg, mode, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                    out_u8, out_f32, out_i32, ldo)


@kernel
def _launch(nchunks, xf, xs, dims, pads, kern, strides, dils, x_zp, data, k4, n, col_sums,
            w_zps, ws32, per_channel, x_scale, out_scale, bias, has_bias, out_zp, relu, out):
    N, C, D, H, W, OD, OH, OW = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], \
        dims[6], dims[7]
    pd, ph, pw = pads[0], pads[1], pads[2]
    kd, kh, kw = kern[0], kern[1], kern[2]
    sd, sh, sw = strides[0], strides[1], strides[2]
    Dp, Hp, Wp = D + 2 * pd, H + 2 * ph, W + 2 * pw
    # zero-point padded channels-last input, plus slack for the reads of partial tiles
    size = N * Dp * Hp * Wp * C
    # tile rows on whole cache lines; slack for the rows of partial / wrapped tiles
    xp = aligned_u8(size + (_ROWS * sw + (kw - 1) * dils[2] + 1) * C + 64)
    _fill_halo(xp, N, D, H, W, C, pd, ph, pw, np.uint8(x_zp))
    n_rows = N * D * H
    if nchunks > 1:
        _pad_copy_parallel(xf, xs, n_rows, D, H, W, C, pd, ph, pw, Dp, Hp, Wp, nchunks, xp)
    else:
        _pad_copy_rows(xf, xs, n_rows, D, H, W, C, pd, ph, pw, Dp, Hp, Wp, 0, n_rows, xp)
    cb = C // 64
    nsteps = kd * kh * kw * cb
    offs = np.empty(nsteps, np.int64)
    for kk in range(nsteps):
        tap = kk // cb
        a = tap // (kh * kw)
        b = (tap // kw) % kh
        e = tap % kw
        offs[kk] = (((a * dils[0]) * Hp + b * dils[1]) * Wp + e * dils[2]) * C + (kk % cb) * 64
    mode = _mk.MODE_U8
    mult, bias_v, col_corr = _G.epilogue_arrays(mode, n, col_sums, x_zp, ws32, per_channel,
                                                x_scale, out_scale, bias, has_bias)
    rows = np.zeros(1, np.int64)
    zp_f = np.float32(out_zp)
    lo_f = zp_f if relu else np.float32(0.0)
    desc = _G.epilogue_descriptor(col_corr, bias_v, mult, out.ctypes.data, n, relu, zp_f,
                                  lo_f)
    cfg = np.zeros(64, np.uint8)
    _G._amx_config(cfg)
    # wrapped tiles (stride 1) when they waste fewer positions than row tiles
    tpr = (OW + _ROWS - 1) // _ROWS
    ntiles = N * OD * OH * tpr
    wrap = 0
    if sw == 1 and sh == 1:
        tpp = (OH * Wp + _ROWS - 1) // _ROWS
        if N * OD * tpp < ntiles:
            wrap, tpr, ntiles = 1, tpp, N * OD * tpp
    geo = np.array([OD, OH, OW, sd, sh, sw, Dp, Hp, Wp, C, wrap], np.int64)
    npairs = (ntiles + 1) // 2
    ns = (n + _mk.NR - 1) // _mk.NR
    sg = ns if ns <= 4 else 4
    nsg = (ns + sg - 1) // sg
    pg = 4                                 # 128 output pixels per item
    npg = (npairs + pg - 1) // pg
    f32 = np.zeros(1, np.float32)
    i32 = np.zeros(1, np.int32)
    if nchunks > 1:
        _conv_parallel(nchunks, npg * nsg, npg, pg, ntiles, tpr, geo, xp, offs, nsteps, data,
                       k4, n, sg, cfg, mode, desc, col_corr, w_zps, rows, mult, bias_v, zp_f,
                       lo_f, relu, out, f32, i32, n)
    else:
        _conv_items(np.zeros(1, np.int64), npg * nsg, npg, pg, ntiles, tpr, geo, xp, offs,
                    nsteps, data, k4, n, sg, cfg, mode, desc, col_corr, w_zps, rows, mult,
                    bias_v, zp_f, lo_f, relu, out, f32, i32, n)


@functools.lru_cache(maxsize=1024)
def geometry(xs, dims, pads, kern, strides, dils):
    """The int64 geometry arrays :func:`qconv_amx` takes, cached per call shape.

    ``xs``: the input's ``(n, d, h, w, c)`` element strides (as
    :func:`numq.kernels.conv._flat_input` gives); ``dims`` = (N, C, D, H, W, OD, OH, OW);
    the rest are 3-tuples (depth, height, width). The arrays are shared: read only.
    """
    return tuple(np.asarray(v, np.int64) for v in (xs, dims, pads, kern, strides, dils))


def qconv_amx(xf, geo, x_zero_point, packed, bias, x_scale, out_scale, out_zero_point, relu,
              out2d, threads):
    """Run the implicit-GEMM convolution into ``out2d`` (``(M, OC)`` uint8, C-contiguous).

    ``xf``: the input as a flat buffer; ``geo``: :func:`geometry` of the call; the rest
    are the layer's qparams.
    """
    if not _isa._amx_permitted():   # the OS must grant the tile state before any AMX code
        raise RuntimeError("qconv_amx: this process may not use AMX (see numq._isa)")
    g = packed.gemm[0]
    if bias is None:
        b = _NO_BIAS
    elif type(bias) is np.ndarray and bias.dtype == _F32 and bias.flags.c_contiguous:
        b = bias
    else:
        b = np.ascontiguousarray(bias, np.float32)
    xs, dims, pads, kern, strides, dils = geo
    macs = int(dims[0] * dims[5] * dims[6] * dims[7]) * g.n * g.k
    nchunks = threads if threads > 1 and macs >= (1 << 20) else 1
    _launch(nchunks, xf, xs, dims, pads, kern, strides, dils, int(x_zero_point),
            g.data, (g.k + 3) // 4, g.n, g.col_sums, g.zero_points, g.scales_f32,
            g.per_channel, float(x_scale), float(out_scale), b, bias is not None,
            int(out_zero_point), bool(relu), out2d.reshape(-1))
