"""Implicit-GEMM quantized convolution on AMX: no im2col buffer.

For a convolution with 64k input channels (groups 1, symmetric weights) the K axis of
the GEMM (window tap major, channel minor, as :func:`numq.kernels.conv.pack_conv_weight`
packs it) splits into steps of 64 channels of one tap. The A tile of a step, 16
neighbouring output pixels x those 64 channels, is read straight from a zero-point
padded channels-last copy of the input rows: rows ``stride * C`` bytes apart, starting
at the tap's offset, and each 16-pixel x 32-channel block of the output finishes with
the GEMM engine's fused epilogue (:mod:`numq.kernels.gemm`), giving the same bits as the
im2col path and as torch.

The work runs in bands of about eight output rows of one (n, od) plane. A thread copies
the input rows of its band into its own small padded buffer and computes the band's
tiles from it at once, so the input is read from memory once and the copy stays in
L1/L2 (a whole padded copy of the input, written first and read back, was 1.1-1.2x
slower: it doubled the memory traffic and came back from L3).

Output pixels are taken 16 at a time along each output row (the last group of a row may
be partial: its extra rows read past the row, into padding or the slack after the
buffer, and are never stored), or, with stride 1, as 16 consecutive positions of the
padded width, running across the band's rows (see :func:`_band_items`).
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

__all__ = ["eligible", "qconv_amx"]

_ROWS = 16          # output pixels per A tile
_NO_BIAS = np.zeros(1, np.float32)
_F32 = np.dtype(np.float32)


def eligible(packed, in_channels, dilation_w):
    """Which weights :func:`qconv_amx` computes this convolution with, or None (then the
    im2col path does): the tap-major GEMM weights for 64k input channels, or the
    row-step weights (``gemm_rows``) for 2-3 channel first layers with dense kernel rows.
    """
    if packed.groups != 1 or packed.depthwise:
        return None
    g = packed.gemm[0]
    if (in_channels % 64 == 0 and not g.any_zero_point
            and g.k == math.prod(packed.kernel_size) * in_channels):
        return g
    r = packed.gemm_rows
    if r is not None and dilation_w == 1 and not r.any_zero_point:
        return r
    return None


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


_BAND_ROWS = 8      # target output rows per band (a band's input rows stay in L1/L2)


@kernel
def _band_fill(xf, xs, n, od, oh0, rows_in, D, H, W, C, Cb, pd, ph, pw, sd, sh, dd, kd, Hb,
               Wp, zp, buf):
    """Copy the input rows band ``(n, od, oh0 ..)`` reads into the band buffer ``buf``.

    ``buf`` holds ``kd`` planes of ``Hb`` rows x ``Wp`` padded pixels of ``Cb`` bytes
    (the ``C`` channels, then pad bytes when ``Cb > C``); plane ``a`` row ``rr`` is input
    depth ``od*sd + a*dd - pd``, row ``oh0*sh - ph + rr``. The pad columns and pad bytes
    are set once per buffer; rows outside the input become ``zp``.
    """
    x_ptr = np.int64(xf.ctypes.data)
    b_ptr = np.int64(buf.ctypes.data)
    for a in range(kd):
        d = od * sd + a * dd - pd
        for rr in range(rows_in):
            h = oh0 * sh - ph + rr
            dst = ((a * Hb + rr) * Wp + pw) * Cb
            orow = buf[dst:dst + W * Cb]
            if d < 0 or d >= D or h < 0 or h >= H:
                for i in range(W * Cb):
                    orow[i] = zp
                continue
            src = n * xs[0] + d * xs[1] + h * xs[2]
            if xs[4] == 1 and Cb == C:
                # memcpy: the element loop over pixel slices ran at a tenth of the speed
                if xs[3] == C:
                    _mk.copy_bytes(b_ptr + dst, x_ptr + src, W * C)
                else:
                    for w in range(W):
                        _mk.copy_bytes(b_ptr + dst + w * C, x_ptr + src + w * xs[3], C)
            else:
                # channel-major storage (NCHW) or word pixels: read each channel's
                # row in order
                for c in range(C):
                    s = src + c * xs[4]
                    for w in range(W):
                        orow[w * Cb + c] = xf[s + w * xs[3]]


@kernel
def _band_items(counter, nitems, nbands, nbp, bh, geo, xf, xs, offs, nsteps, data, k4, n,
                sg, cfg, zp, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                out_u8, out_f32, out_i32, ldo):
    """Items of one band (``bh`` output rows of one (n, od) plane) x ``sg`` strips.

    Each item first copies the input rows its band reads into this thread's band
    buffer (padded, channels-last), so the tiles read them from L1/L2 right after: the
    input is read once from memory, never written back as a whole padded copy. Tiles
    run across the band's rows over the padded width when stride is 1 (``geo[13]``),
    else 16 pixels along each output row.
    """
    D, H, W, C = geo[0], geo[1], geo[2], geo[3]
    OD, OH, OW = geo[4], geo[5], geo[6]
    pd, ph, pw = geo[7], geo[8], geo[9]
    sd, sh, sw = geo[10], geo[11], geo[12]
    wrapped = geo[13] != 0
    kd, kh, dd, dh, Hb, Wp, slack = geo[14], geo[15], geo[16], geo[17], geo[18], geo[19], \
        geo[20]
    Cb = geo[21]                         # buffer bytes per pixel
    ns = (n + _mk.NR - 1) // _mk.NR
    plane_b = Hb * Wp * Cb
    buf = aligned_u8(kd * plane_b + slack)
    for i in range(buf.size):
        buf[i] = zp                      # pad columns and slack: set once
    t2d = aligned_i32(_ROWS * _mk.NR).reshape((_ROWS, _mk.NR))
    c_ptr = np.int64(t2d.ctypes.data)
    orow = np.empty(_ROWS, np.int64)      # output row of each tile row (-1: none)
    orow_ptr = np.int64(orow.ctypes.data)
    x_base = np.int64(buf.ctypes.data)
    b_base = np.int64(data.ctypes.data)
    o_ptr = np.int64(offs.ctypes.data)
    desc_ptr = np.int64(desc.ctypes.data)
    lda = sw * Cb
    tpr = (OW + _ROWS - 1) // _ROWS
    _mk.amx_begin(cfg.ctypes.data)
    while True:
        it = _mk.fetch_add(counter)
        if it >= nitems:
            break
        b = it % nbands
        s0 = (it // nbands) * sg
        plane = b // nbp
        oh0 = (b % nbp) * bh
        nr = min(bh, OH - oh0)
        nn = plane // OD
        od = plane % OD
        _band_fill(xf, xs, nn, od, oh0, (nr - 1) * sh + (kh - 1) * dh + 1, D, H, W, C, Cb,
                   pd, ph, pw, sd, sh, dd, kd, Hb, Wp, zp, buf)
        m_band = (plane * OH + oh0) * OW        # first output row of the band
        ntl = (nr * Wp + _ROWS - 1) // _ROWS if wrapped else nr * tpr
        for t in range(ntl):
            if wrapped:
                v0 = t * _ROWS
                base = v0 * Cb
                for r in range(_ROWS):
                    rr = (v0 + r) // Wp
                    ow = v0 + r - rr * Wp
                    orow[r] = m_band + rr * OW + ow if rr < nr and ow < OW else -1
            else:
                rr = t // tpr
                ow0 = (t % tpr) * _ROWS
                base = (rr * sh * Wp + ow0 * sw) * Cb
                for r in range(_ROWS):
                    orow[r] = m_band + rr * OW + ow0 + r if ow0 + r < OW else -1
            for s in range(s0, min(ns, s0 + sg)):
                j0 = s * _mk.NR
                ncol = min(_mk.NR, n - j0)
                _mk.amx_conv16(x_base + base, lda, o_ptr, nsteps, b_base + j0 * k4 * 4,
                               4 * ncol, c_ptr)
                if ncol == _mk.NR:
                    # one epilogue call per tile, each row to its output row (or none)
                    _mk.epi_u8_rows(c_ptr, orow_ptr, _ROWS, j0, desc_ptr)
                    continue
                if not wrapped:
                    _finish_rows(t2d, 0, m_band + rr * OW + ow0, min(_ROWS, OW - ow0), j0,
                                 ncol, _mk.MODE_U8, desc_ptr, col_corr, w_zps, rows, mult,
                                 bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo)
                    continue
                # runs of positions inside an output row
                r = 0
                while r < _ROWS:
                    v = v0 + r
                    rr = v // Wp
                    if rr >= nr:
                        break
                    ow = v - rr * Wp
                    if ow >= OW:
                        r += Wp - ow
                        continue
                    run = min(_ROWS - r, OW - ow)
                    _finish_rows(t2d, r, m_band + rr * OW + ow, run, j0, ncol, _mk.MODE_U8,
                                 desc_ptr, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f,
                                 relu, out_u8, out_f32, out_i32, ldo)
                    r += run
    _mk.amx_end()


@kernel(parallel=True)
def _band_parallel(nchunks, nitems, nbands, nbp, bh, geo, xf, xs, offs, nsteps, data, k4, n,
                   sg, cfg, zp, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                   out_u8, out_f32, out_i32, ldo):
    counter = np.zeros(1, np.int64)
    per = (nitems + nchunks - 1) // nchunks
    # several strip groups: a fixed share per thread keeps each thread on its own
    # groups' weights (1.05x at 256 -> 256 channels); one group: the shared counter
    # (a fixed share was 0.94-0.97x)
    static = nitems > nbands and (nitems // nbands) % nchunks == 0
    for c in prange(nchunks):
        cnt = counter
        lim = nitems
        if static:
            cnt = np.full(1, c * per, np.int64)
            lim = min(nitems, (c + 1) * per)
        _band_items(cnt, lim, nbands, nbp, bh, geo, xf, xs, offs, nsteps, data, k4, n,
                    sg, cfg, zp, desc, col_corr, w_zps, rows, mult, bias_v, zp_f, lo_f, relu,
                    out_u8, out_f32, out_i32, ldo)


@kernel
def _launch(nchunks, xf, xs, dims, pads, kern, strides, dils, x_zp, data, k4, n,
                 col_sums, w_zps, ws32, per_channel, x_scale, out_scale, bias, has_bias,
                 out_zp, relu, out, row_steps):
    N, C, D, H, W, OD, OH, OW = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], \
        dims[6], dims[7]
    pd, ph, pw = pads[0], pads[1], pads[2]
    kd, kh, kw = kern[0], kern[1], kern[2]
    sd, sh, sw = strides[0], strides[1], strides[2]
    dd, dh, dw = dils[0], dils[1], dils[2]
    Wp = W + 2 * pw
    ns = (n + _mk.NR - 1) // _mk.NR
    sg = ns if ns <= 4 else 4
    nsg = (ns + sg - 1) // sg
    # bands of about _BAND_ROWS output rows, as many in all as a multiple of the threads
    nbp = max(1, (OH + _BAND_ROWS // 2) // _BAND_ROWS)
    while nbp < OH and (N * OD * nbp * nsg) % nchunks != 0:
        nbp += 1
    bh = (OH + nbp - 1) // nbp
    nbp = (OH + bh - 1) // bh
    Hb = (bh - 1) * sh + (kh - 1) * dh + 1
    tpr = (OW + _ROWS - 1) // _ROWS
    wrapped = 1 if (sw == 1 and sh == 1 and (bh * Wp + _ROWS - 1) // _ROWS < bh * tpr) else 0
    # Steps of 64 k: one tap's 64 channels, or (row_steps: 2-3 channel inputs as 4-byte
    # pixels) one kernel row, whose kw taps are the first 4*kw of 64 bytes read from the
    # row (the gemm_rows weights are zero for the rest)
    Cb = 4 if row_steps else C
    # partial / wrapped tiles read up to 16 pixels (+ taps, or a 64-byte row) past a
    # plane's last row
    slack = (_ROWS * sw + (kw - 1) * dw + 1) * Cb + 128
    if row_steps:
        nsteps = kd * kh
        offs = np.empty(nsteps, np.int64)
        for kk in range(nsteps):
            offs[kk] = ((kk // kh) * Hb + (kk % kh) * dh) * Wp * Cb
    else:
        cb = C // 64
        nsteps = kd * kh * kw * cb
        offs = np.empty(nsteps, np.int64)
        for kk in range(nsteps):
            tap = kk // cb
            a = tap // (kh * kw)
            b = (tap // kw) % kh
            e = tap % kw
            offs[kk] = ((a * Hb + b * dh) * Wp + e * dw) * C + (kk % cb) * 64
    geo = np.array([D, H, W, C, OD, OH, OW, pd, ph, pw, sd, sh, sw, wrapped, kd, kh, dd, dh,
                    Hb, Wp, slack, Cb], np.int64)
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
    nbands = N * OD * nbp
    f32 = np.zeros(1, np.float32)
    i32 = np.zeros(1, np.int32)
    zp = np.uint8(x_zp)
    if nchunks > 1:
        _band_parallel(nchunks, nbands * nsg, nbands, nbp, bh, geo, xf, xs, offs, nsteps, data,
                       k4, n, sg, cfg, zp, desc, col_corr, w_zps, rows, mult, bias_v, zp_f,
                       lo_f, relu, out, f32, i32, n)
    else:
        _band_items(np.zeros(1, np.int64), nbands * nsg, nbands, nbp, bh, geo, xf, xs, offs,
                    nsteps, data, k4, n, sg, cfg, zp, desc, col_corr, w_zps, rows, mult,
                    bias_v, zp_f, lo_f, relu, out, f32, i32, n)


@functools.lru_cache(maxsize=1024)
def geometry(xs, dims, pads, kern, strides, dils):
    """The int64 geometry arrays :func:`qconv_amx` takes, cached per call shape.

    ``xs``: the input's ``(n, d, h, w, c)`` element strides (as
    :func:`numq.kernels.conv._flat_input` gives); ``dims`` = (N, C, D, H, W, OD, OH, OW);
    the rest are 3-tuples (depth, height, width). The arrays are shared: read only.
    """
    return tuple(np.asarray(v, np.int64) for v in (xs, dims, pads, kern, strides, dils))


def qconv_amx(xf, geo, x_zero_point, packed, g, bias, x_scale, out_scale, out_zero_point,
              relu, out2d, threads):
    """Run the implicit-GEMM convolution into ``out2d`` (``(M, OC)`` uint8, C-contiguous).

    ``xf``: the input as a flat buffer; ``geo``: :func:`geometry` of the call; ``g``: the
    packed GEMM weights :func:`eligible` chose; the rest are the layer's qparams.
    """
    if not _isa._amx_permitted():   # the OS must grant the tile state before any AMX code
        raise RuntimeError("qconv_amx: this process may not use AMX (see numq._isa)")
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
            int(out_zero_point), bool(relu), out2d.reshape(-1), g is packed.gemm_rows)
