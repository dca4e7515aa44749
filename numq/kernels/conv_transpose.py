"""Quantized transposed convolution (uint8 activations x int8 weights -> uint8).

A transposed convolution sends input pixel ``i`` through kernel tap ``k`` to output
position ``o = i * s - p + k * d`` (per spatial dim). Two exact methods, both on the
int8 GEMM engine (:mod:`numq.kernels.gemm`), both writing every output element from
one place (no write races, no atomics):

**Phases** (the usual case). Split the output by phase ``o mod s``: the outputs
``o = phi + s * t`` of one phase receive exactly the taps with
``(phi + p - k * d) mod s == 0``, from input ``i = t + (phi + p - k * d) / s``. So a
phase is an ordinary stride-1 correlation with a sub-kernel. Per phase and group:

1. im2col of the channels-last input into uint8 rows ``(t, (taps, ic))``, out-of-range
   inputs filled with the input zero point (they dequantize to 0, torch's rule);
   parallel over rows, before the GEMM;
2. one GEMM with the sub-kernel packed once as a linear weight ``(OC/g, taps * IC/g)``:
   :func:`~numq.kernels.gemm.qlinear` gives the uint8 output with the static epilogue
   of NUMERICS.md (exact int32 sum, float bias, per-channel requantization),
   :func:`~numq.kernels.gemm.qlinear_int32` the exact accumulators;
3. a strided copy of the phase's rows into the output (``out[..., phi::s, :]``); with
   ``stride == 1`` the single phase is written straight into the output. Phases no tap
   reaches (kernel smaller than the stride) hold the requantized bias alone.

**col2im** (kernel == stride and similar: fewer than 2 taps per phase on average).
One GEMM per group of the input ``(pixels, IC/g)`` with the whole kernel packed as
``(taps * OC/g, IC/g)``, giving int32 ``cols``; then a col2im written as a *gather*
(each output row sums the ``cols`` entries that land on it), fused with the same
static epilogue (gemm's own kernels) one block of rows at a time, in parallel over
blocks.

**direct** (few channels per group, e.g. depthwise). No GEMM: the same gather walk
sums ``(x - x_zp) * (w - w_zp)`` straight into int32, as whole vectors over the
output channels, then the same fused epilogue.

All three compute the same integers (see :func:`_method` for the choice). Phases
avoid the int32 ``(pixels, taps * OC)`` intermediate and give the engine GEMMs whose
long dimension is K, which it runs 2-3x faster; with one tap per phase their K is only
IC/g, and with a handful of channels per group every GEMM is tiny.

Layout: activations are channels-last (``(N, *spatial, C)``, C-contiguous) on both
sides; the layers present them as NCHW views.
"""
import itertools
import math
from typing import NamedTuple

import numpy as np
from numba import prange

from .._threads import parallel_region
from ._jit import kernel
from .im2col_u8 import line_origin
from .gemm import (K_MAX, _requant_params, _requantize_rows, pack_linear_weight, qlinear,
                   qlinear_int32, requantize)

__all__ = ["PackedConvTransposeWeight", "pack_conv_transpose_weight",
           "unpack_conv_transpose_weight", "qconv_transpose", "qconv_transpose_int32",
           "conv_transpose_output_size"]

_PARALLEL_MIN = 1 << 16  # output elements below which the gather kernels stay serial
# a plain copy runs at several GB/s: below 1 MiB a parallel region (thread wake-up, and
# on a busy machine a wait for a descheduled worker) costs more than it saves
_COPY_PARALLEL_MIN = 1 << 20


class PackedConvTransposeWeight(NamedTuple):
    """A transposed-convolution weight packed for :func:`qconv_transpose`.

    Attributes
    ----------
    weight : ndarray of int8, shape (IC, OC/groups, *kernel_size)
        The codes as given (torch's transposed layout).
    scales : ndarray of float64, shape (OC,)
    zero_points : ndarray of int32, shape (OC,)
    per_channel : bool
        Per output channel or one pair for the whole tensor (selects the bias rule).
    groups, in_channels, out_channels : int
    kernel_size : tuple of int
    plans : dict
        ``(stride, padding, dilation) -> tuple of _Phase`` (the per-phase packed
        sub-kernels), ``"col2im" -> packs`` (the whole-kernel packs of the col2im
        method) and ``"direct" -> int32 weights`` (the direct method's). Filled by
        :func:`pack_conv_transpose_weight` when it is given the geometry, else on the
        first call that needs them (then reused).
    """
    weight: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    per_channel: bool
    groups: int
    in_channels: int
    out_channels: int
    kernel_size: tuple
    plans: dict


class _Phase(NamedTuple):
    """One output phase: its offset per dim (3-d), input offsets of its taps, packs."""
    phi: tuple            # (phi_d, phi_h, phi_w)
    offsets: tuple        # three int64 arrays: input offset of each tap, per dim
    packs: tuple          # one PackedLinearWeight per group, or () if no tap reaches it


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def _plan(packed, stride, padding, dilation):
    """The phases of ``packed`` for one geometry (built once, then cached)."""
    key = (tuple(stride), tuple(padding), tuple(dilation))
    plan = packed.plans.get(key)
    if plan is not None:
        return plan
    w, G = packed.weight, packed.groups
    ks, s3, p3, d3 = (_pad3(packed.kernel_size, 1), _pad3(stride, 1), _pad3(padding, 0),
                      _pad3(dilation, 1))
    ICg, OCg = packed.in_channels // G, packed.out_channels // G
    w5 = w.reshape(w.shape[:2] + ks)
    phases = []
    for phi in itertools.product(*(range(s) for s in s3)):
        taps = [[k for k in range(K) if (f + p - k * d) % s == 0]
                for f, K, s, p, d in zip(phi, ks, s3, p3, d3)]
        offs = tuple(np.array([(f + p - k * d) // s for k in t], np.int64)
                     for f, t, s, p, d in zip(phi, taps, s3, p3, d3))
        if not all(taps):
            phases.append(_Phase(phi, offs, ()))
            continue
        sub = w5[:, :, taps[0]][:, :, :, taps[1]][:, :, :, :, taps[2]]
        packs = []
        for g in range(G):
            # K order (tap_d, tap_h, tap_w, ic): the order _im2col_rows writes
            wg = sub[g * ICg:(g + 1) * ICg].transpose(1, 2, 3, 4, 0).reshape(OCg, -1)
            cs = slice(g * OCg, (g + 1) * OCg)
            if packed.per_channel:
                packs.append(pack_linear_weight(wg, packed.scales[cs], packed.zero_points[cs]))
            else:
                packs.append(pack_linear_weight(wg, float(packed.scales[0]),
                                                int(packed.zero_points[0])))
        phases.append(_Phase(phi, offs, tuple(packs)))
    plan = tuple(phases)
    packed.plans[key] = plan
    return plan


def pack_conv_transpose_weight(weight_q, scales, zero_points, groups=1, stride=None,
                               padding=None, dilation=None):
    """Pack int8 transposed-convolution weights once, for :func:`qconv_transpose`.

    Parameters
    ----------
    weight_q : ndarray of int8, shape (IC, OC/groups, *kernel_size)
        Weight codes in torch's ``ConvTranspose`` layout (1 to 3 spatial dims).
    scales : float or ndarray of shape (OC,)
        A scalar packs per-tensor; an array packs per output channel.
    zero_points : int or ndarray of shape (OC,)
        Same kind (scalar / array) as ``scales``.
    groups : int
        Divides IC.
    stride, padding, dilation : tuple of int, optional
        The geometry the weight will run with: its per-phase sub-kernels are packed
        now. Without them they are packed on the first call (and kept).

    Returns
    -------
    PackedConvTransposeWeight
    """
    w = np.array(weight_q, dtype=np.int8, order="C", copy=True)
    IC, OCg = w.shape[:2]
    ks = tuple(int(k) for k in w.shape[2:])
    G = int(groups)
    OC = OCg * G
    per_channel = np.ndim(scales) > 0
    s = np.ascontiguousarray(np.broadcast_to(np.asarray(scales, np.float64), (OC,)))
    z = np.ascontiguousarray(np.broadcast_to(np.asarray(zero_points), (OC,)).astype(np.int32))
    packed = PackedConvTransposeWeight(w, s, z, bool(per_channel), G, IC, OC, ks, {})
    if stride is not None:
        rank = len(ks)
        method = _method(packed, stride)
        if method == "phases":
            _plan(packed, stride, (0,) * rank if padding is None else padding,
                  (1,) * rank if dilation is None else dilation)
        elif method == "col2im":
            _col_packs(packed)
        else:
            _direct_weight(packed)
    return packed


def unpack_conv_transpose_weight(packed):
    """The int8 codes ``(IC, OC/groups, *kernel_size)`` that were packed (a copy)."""
    return packed.weight.copy()


def conv_transpose_output_size(spatial, kernel_size, stride, padding, output_padding,
                               dilation):
    """``(i - 1) * s - 2 * p + d * (k - 1) + op + 1`` per spatial dim, as a tuple."""
    return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, op, d in
                 zip(spatial, kernel_size, stride, padding, output_padding, dilation))



@kernel
def _im2col_rows(x, offd, offh, offw, c0, T, x_zp, lo, hi, cols):
    """Rows ``lo..hi`` of one phase's im2col.

    ``x``: (N, ID, IH, IW, IC) uint8; row ``r`` is phase position ``(n, td, th, tw)`` in
    the grid ``T = (Td, Th, Tw)``; its columns are ``(tap_d, tap_h, tap_w, ic)`` for the
    ``cols.shape[1] / taps`` channels from ``c0``: ``x[n, td + offd[a], th + offh[b],
    tw + offw[c], c0 + ic]``, or ``x_zp`` outside the input.
    """
    N, ID, IH, IW, IC = x.shape
    x2 = x.reshape(-1, IC)
    Td, Th, Tw = T[0], T[1], T[2]
    cg = cols.shape[1] // (offd.size * offh.size * offw.size)
    z = np.uint8(x_zp)
    for r in range(lo, hi):
        tw = r % Tw
        th = (r // Tw) % Th
        td = (r // (Tw * Th)) % Td
        n = r // (Tw * Th * Td)
        row = cols[r]
        j = 0
        for a in range(offd.size):
            i_d = td + offd[a]
            ok_d = 0 <= i_d < ID
            for b in range(offh.size):
                i_h = th + offh[b]
                ok = ok_d and 0 <= i_h < IH
                pix = ((n * ID + i_d) * IH + i_h) * IW
                for c in range(offw.size):
                    i_w = tw + offw[c]
                    # 2-d row slices starting at 0: LLVM vectorises these copies
                    dst = row[j:j + cg]
                    if ok and 0 <= i_w < IW:
                        src = x2[pix + i_w, c0:c0 + cg]
                        for q in range(cg):
                            dst[q] = src[q]
                    else:
                        for q in range(cg):
                            dst[q] = z
                    j += cg


@kernel(parallel=True)
def _im2col_par(x, offd, offh, offw, c0, T, x_zp, nchunks, cols):
    m = cols.shape[0]
    step = (m + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(m, (c + 1) * step)
        if lo < hi:
            _im2col_rows(x, offd, offh, offw, c0, T, x_zp, lo, hi, cols)


def _im2col(x5, ph, c0, T, x_zp, cols):
    offd, offh, offw = ph.offsets
    if cols.size < _COPY_PARALLEL_MIN or cols.shape[0] < 2:
        _im2col_rows(x5, offd, offh, offw, c0, T, x_zp, 0, cols.shape[0], cols)
    else:
        with parallel_region():
            _im2col_par(x5, offd, offh, offw, c0, T, x_zp, min(cols.shape[0], 64), cols)
    return cols


def _phase_grid(phi, out3, s3):
    """Positions of phase ``phi`` per dim: ``ceil((out - phi) / s)`` (0 if none)."""
    return tuple(max(0, -(-(o - f) // s)) for f, o, s in zip(phi, out3, s3))


def _run(x_q, x_zero_point, packed, stride, padding, output_padding, dilation, out,
         gemm, fill):
    """Shared driver: for each phase, im2col + ``gemm(cols, pack, out_cols, g)`` per group
    into a phase buffer (or straight into ``out`` for a single phase), then the copy."""
    rank = len(packed.kernel_size)
    N, spatial, IC = x_q.shape[0], x_q.shape[1:1 + rank], x_q.shape[-1]
    G, OC = packed.groups, packed.out_channels
    ICg, OCg = IC // G, OC // G
    out_sp = conv_transpose_output_size(spatial, packed.kernel_size, stride, padding,
                                        output_padding, dilation)
    i3, o3, s3 = _pad3(spatial, 1), _pad3(out_sp, 1), _pad3(stride, 1)
    out5 = out.reshape((N,) + o3 + (OC,))
    if out5.size == 0:
        return out
    x5 = x_q.reshape((N,) + i3 + (IC,))
    x_zp = int(x_zero_point)
    for ph in _plan(packed, stride, padding, dilation):
        T = _phase_grid(ph.phi, o3, s3)
        M = N * math.prod(T)
        if M == 0:
            continue
        view = out5[:, ph.phi[0]::s3[0], ph.phi[1]::s3[1], ph.phi[2]::s3[2]]
        if not ph.packs:
            view[...] = fill()
            continue
        direct = view.flags.c_contiguous  # a single phase: the output itself
        buf = view.reshape(M, OC) if direct else np.empty((M, OC), out.dtype)
        taps = ph.offsets[0].size * ph.offsets[1].size * ph.offsets[2].size
        identity = (G == 1 and taps == 1 and T == i3
                    and not any(int(o[0]) for o in ph.offsets))
        cols = None if identity else np.empty((M, taps * ICg), np.uint8)
        for g in range(G):
            if identity:
                a = x5.reshape(M, IC)
            else:
                a = _im2col(x5, ph, g * ICg, np.array(T, np.int64), x_zp, cols)
            gemm(a, ph.packs[g], buf[:, g * OCg:(g + 1) * OCg], g)
        if not direct:
            view[...] = buf.reshape(view.shape)
    return out


# ------------------------------------------------------------- col2im method

@kernel
def _col2im_rows(cols, geo, lo, hi, acc):
    """Output rows ``lo..hi`` (one row = (n, od, oh), all ow) into the int32 ``acc``.

    ``cols``: (G, N*ID*IH*IW, KK*OCg) int32; ``acc``: ((hi-lo)*OW, OC) int32, row
    ``lo`` first; ``geo``: int64 (ID, IH, IW, OD, OH, OW, KD, KH, KW, sd, sh, sw,
    pd, ph, pw, dd, dh, dw).
    """
    ID, IH, IW, OD, OH, OW = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    KD, KH, KW = geo[6], geo[7], geo[8]
    sd, sh, sw, pd, ph, pw = geo[9], geo[10], geo[11], geo[12], geo[13], geo[14]
    dd, dh, dw = geo[15], geo[16], geo[17]
    G = cols.shape[0]
    OCg = cols.shape[2] // (KD * KH * KW)
    acc[:, :] = 0
    for r in range(lo, hi):
        n, od, oh = line_origin(r, OD, OH)
        base = (r - lo) * OW
        for kd in range(KD):
            td = od + pd - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= ID:
                continue
            for kh in range(KH):
                th = oh + ph - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= IH:
                    continue
                mrow = ((n * ID + td // sd) * IH + th // sh) * IW
                for kw in range(KW):
                    kidx = ((kd * KH + kh) * KW + kw) * OCg
                    # ow = iw * sw + off: the input pixels of this tap that land in the row
                    off = kw * dw - pw
                    iw0 = (-off + sw - 1) // sw if off < 0 else 0
                    iw1 = min(IW, (OW - 1 - off) // sw + 1) if OW - 1 - off >= 0 else 0
                    for iw in range(iw0, iw1):
                        dst = acc[base + iw * sw + off]
                        m = mrow + iw
                        for g in range(G):
                            src = cols[g, m, kidx:kidx + OCg]
                            d = dst[g * OCg:(g + 1) * OCg]
                            for c in range(OCg):
                                d[c] += src[c]


@kernel(parallel=True)
def _col2im_par(cols, geo, nrows, nchunks, acc):
    OW = geo[5]
    step = (nrows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(nrows, (c + 1) * step)
        if lo < hi:
            _col2im_rows(cols, geo, lo, hi, acc[lo * OW:hi * OW])


@kernel
def _col2im_requant_rows(cols, geo, lo, hi, mult, bias_s, zp_f, lo_f, out):
    """Rows ``lo..hi``: gather into a scratch int32 block, then the static epilogue.

    ``out``: flat uint8 (N*OD*OH*OW*OC,). The epilogue is gemm's own row kernel, so
    the NUMERICS formula lives in one place.
    """
    OW = geo[5]
    OC = mult.size
    acc = np.empty(((hi - lo) * OW, OC), np.int32)
    _col2im_rows(cols, geo, lo, hi, acc)
    _requantize_rows(acc, mult, bias_s, zp_f, lo_f, out[lo * OW * OC:hi * OW * OC], OC)


@kernel(parallel=True)
def _col2im_requant_par(cols, geo, nrows, nchunks, mult, bias_s, zp_f, lo_f, out):
    step = (nrows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(nrows, (c + 1) * step)
        if lo < hi:
            _col2im_requant_rows(cols, geo, lo, hi, mult, bias_s, zp_f, lo_f, out)


def _nchunks(nrows, size):
    """Serial (0) below the threshold, else row chunks for prange (results never
    depend on the count: every row is computed the same way)."""
    if size < _PARALLEL_MIN or nrows < 2:
        return 0
    return min(nrows, 64)


def _col_packs(packed):
    """Whole-kernel packs of the col2im path, one per group (built once, then cached).

    Rows ``(k, oc)`` (taps outer): one input pixel's GEMM row is then, tap by tap, a
    contiguous run of OC/g output channels, which col2im adds with unit stride.
    """
    packs = packed.plans.get("col2im")
    if packs is not None:
        return packs
    w, G = packed.weight, packed.groups
    IC, OCg = w.shape[:2]
    ICg, KK = IC // G, math.prod(packed.kernel_size)
    packs = []
    for g in range(G):
        wg = w[g * ICg:(g + 1) * ICg].reshape(ICg, OCg, KK).transpose(2, 1, 0)
        wg = np.ascontiguousarray(wg).reshape(KK * OCg, ICg)
        cs = slice(g * OCg, (g + 1) * OCg)
        if packed.per_channel:
            packs.append(pack_linear_weight(wg, np.tile(packed.scales[cs], KK),
                                            np.tile(packed.zero_points[cs], KK)))
        else:
            packs.append(pack_linear_weight(wg, float(packed.scales[0]),
                                            int(packed.zero_points[0])))
    packs = tuple(packs)
    packed.plans["col2im"] = packs
    return packs


def _gemm_cols(x_q, x_zero_point, packed, stride, padding, output_padding, dilation):
    """The col2im path's per-group GEMMs; returns ``(cols, geo, nrows)``."""
    rank = len(packed.kernel_size)
    N, spatial, IC = x_q.shape[0], x_q.shape[1:1 + rank], x_q.shape[-1]
    G, OC = packed.groups, packed.out_channels
    ICg, OCg, KK = IC // G, OC // G, math.prod(packed.kernel_size)
    out_sp = conv_transpose_output_size(spatial, packed.kernel_size, stride, padding,
                                        output_padding, dilation)
    i3, o3 = _pad3(spatial, 1), _pad3(out_sp, 1)
    M = N * math.prod(spatial)
    x2 = x_q.reshape(M, IC)
    cols = np.empty((G, M, KK * OCg), np.int32)
    for g, pack in enumerate(_col_packs(packed)):
        xg = x2 if G == 1 else np.ascontiguousarray(x2[:, g * ICg:(g + 1) * ICg])
        qlinear_int32(xg, int(x_zero_point), pack, out=cols[g])
    geo, nrows = _geo(spatial, out_sp, N, packed, stride, padding, dilation)
    return cols, geo, nrows


def _geo(spatial, out_sp, N, packed, stride, padding, dilation):
    """The int64 geometry vector of the gather kernels and their row count."""
    i3, o3 = _pad3(spatial, 1), _pad3(out_sp, 1)
    geo = np.array(i3 + o3 + _pad3(packed.kernel_size, 1) + _pad3(stride, 1)
                   + _pad3(padding, 0) + _pad3(dilation, 1), np.int64)
    return geo, N * o3[0] * o3[1]


def _epilogue(packed, x_scale, bias, out_scale, out_zero_point):
    """``(mult, bias_s, zp_f, lo_f)`` of the static epilogue, from gemm's own kernel."""
    OC = packed.out_channels
    mult = np.empty(OC, np.float32)
    bias_s = np.empty(OC, np.float32)
    b = np.zeros(1, np.float32) if bias is None else bias
    _requant_params(x_scale, packed.scales.astype(np.float32), packed.per_channel, b,
                    bias is not None, out_scale, mult, bias_s)
    return mult, bias_s, np.float32(out_zero_point), np.float32(0.0)


def _col2im_int32(x_q, x_zero_point, packed, stride, padding, output_padding, dilation,
                  out):
    cols, geo, nrows = _gemm_cols(x_q, x_zero_point, packed, stride, padding,
                                  output_padding, dilation)
    acc = out.reshape(-1, packed.out_channels)
    nchunks = _nchunks(nrows, acc.size)
    if nchunks == 0:
        _col2im_rows(cols, geo, 0, nrows, acc)
    else:
        with parallel_region():
            _col2im_par(cols, geo, nrows, nchunks, acc)
    return out


def _col2im_u8(x_q, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point, stride,
               padding, output_padding, dilation, out):
    cols, geo, nrows = _gemm_cols(x_q, x_zero_point, packed, stride, padding,
                                  output_padding, dilation)
    # gemm's own epilogue kernels: the NUMERICS formula is written once, there
    mult, bias_s, zp_f, lo_f = _epilogue(packed, x_scale, bias, out_scale, out_zero_point)
    flat = out.reshape(-1)
    nchunks = _nchunks(nrows, flat.size)
    if nchunks == 0:
        _col2im_requant_rows(cols, geo, 0, nrows, mult, bias_s, zp_f, lo_f, flat)
    else:
        with parallel_region():
            _col2im_requant_par(cols, geo, nrows, nchunks, mult, bias_s, zp_f, lo_f, flat)
    return out


# ------------------------------------------------------------- direct method

def _direct_weight(packed):
    """``(taps, IC/g, OC)`` int32 ``w - w_zp[oc]`` for the direct method (cached).

    ``W[k, i, g * OC/g + j] = w[g * IC/g + i, j, k] - w_zp[g * OC/g + j]``: for a fixed
    tap and in-group input channel, one vector over all output channels.
    """
    w32 = packed.plans.get("direct")
    if w32 is not None:
        return w32
    w, G = packed.weight, packed.groups
    IC, OCg = w.shape[:2]
    ICg, KK = IC // G, math.prod(packed.kernel_size)
    wg = w.reshape(G, ICg, OCg, KK).astype(np.int32) \
        - packed.zero_points.reshape(G, 1, OCg, 1)
    w32 = np.ascontiguousarray(wg.transpose(3, 1, 0, 2)).reshape(KK, ICg, G * OCg)
    packed.plans["direct"] = w32
    return w32


@kernel
def _expand_rows(x2, x_zp, ICg, OCg, lo, hi, xe):
    """``xe[m, i, oc] = x[m, (oc // OCg) * ICg + i] - x_zp`` for pixels ``lo..hi``: each
    output channel's input value, so the direct sums run as whole-vector products."""
    G = xe.shape[2] // OCg
    zp = np.int32(x_zp)
    for m in range(lo, hi):
        xrow = x2[m]
        for i in range(ICg):
            e = xe[m, i]
            if ICg == 1 and OCg == 1:  # depthwise: a widening copy, vectorised
                for c in range(G):
                    e[c] = np.int32(xrow[c]) - zp
            else:
                for g in range(G):
                    v = np.int32(xrow[g * ICg + i]) - zp
                    eg = e[g * OCg:(g + 1) * OCg]
                    for j in range(OCg):
                        eg[j] = v


@kernel(parallel=True)
def _expand_par(x2, x_zp, ICg, OCg, nchunks, xe):
    m = xe.shape[0]
    step = (m + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(m, (c + 1) * step)
        if lo < hi:
            _expand_rows(x2, x_zp, ICg, OCg, lo, hi, xe)


@kernel
def _direct_rows(xe, w32, geo, lo, hi, acc):
    """Output rows ``lo..hi`` (one row = (n, od, oh)) of the int32 accumulators, summed
    directly: ``acc[o, :] += xe[pixel, i, :] * w32[tap, i, :]`` over the (pixel, tap)
    pairs that land on ``o`` (the walk of :func:`_col2im_rows`) and ``i < IC/g``.

    ``acc``: ((hi-lo)*OW, OC) int32, row ``lo`` first.
    """
    ID, IH, IW, OD, OH, OW = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    KD, KH, KW = geo[6], geo[7], geo[8]
    sd, sh, sw, pd, ph, pw = geo[9], geo[10], geo[11], geo[12], geo[13], geo[14]
    dd, dh, dw = geo[15], geo[16], geo[17]
    ICg, OC = xe.shape[1], xe.shape[2]
    acc[:, :] = 0
    for r in range(lo, hi):
        n, od, oh = line_origin(r, OD, OH)
        base = (r - lo) * OW
        for kd in range(KD):
            td = od + pd - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= ID:
                continue
            for kh in range(KH):
                th = oh + ph - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= IH:
                    continue
                mrow = ((n * ID + td // sd) * IH + th // sh) * IW
                for kw in range(KW):
                    kidx = (kd * KH + kh) * KW + kw
                    off = kw * dw - pw
                    iw0 = (-off + sw - 1) // sw if off < 0 else 0
                    iw1 = min(IW, (OW - 1 - off) // sw + 1) if OW - 1 - off >= 0 else 0
                    for iw in range(iw0, iw1):
                        dst = acc[base + iw * sw + off]
                        for i in range(ICg):
                            xv = xe[mrow + iw, i]
                            wv = w32[kidx, i]
                            for c in range(OC):
                                dst[c] += xv[c] * wv[c]


@kernel(parallel=True)
def _direct_par(xe, w32, geo, nrows, nchunks, acc):
    OW = geo[5]
    step = (nrows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(nrows, (c + 1) * step)
        if lo < hi:
            _direct_rows(xe, w32, geo, lo, hi, acc[lo * OW:hi * OW])


@kernel
def _direct_requant_rows(xe, w32, geo, lo, hi, mult, bias_s, zp_f, lo_f, out):
    """Rows ``lo..hi`` into a scratch int32 block, then gemm's static epilogue into the
    flat uint8 ``out``."""
    OW = geo[5]
    OC = mult.size
    acc = np.empty(((hi - lo) * OW, OC), np.int32)
    _direct_rows(xe, w32, geo, lo, hi, acc)
    _requantize_rows(acc, mult, bias_s, zp_f, lo_f, out[lo * OW * OC:hi * OW * OC], OC)


@kernel(parallel=True)
def _direct_requant_par(xe, w32, geo, nrows, nchunks, mult, bias_s, zp_f, lo_f, out):
    step = (nrows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(nrows, (c + 1) * step)
        if lo < hi:
            _direct_requant_rows(xe, w32, geo, lo, hi, mult, bias_s, zp_f, lo_f, out)


def _direct(x_q, x_zero_point, packed, stride, padding, output_padding, dilation, out,
            epilogue=None):
    """The direct method: int32 accumulators into ``out``, or with ``epilogue``
    (``_epilogue``'s tuple) uint8 codes."""
    rank = len(packed.kernel_size)
    N, spatial, IC = x_q.shape[0], x_q.shape[1:1 + rank], x_q.shape[-1]
    G, OC = packed.groups, packed.out_channels
    out_sp = out.shape[1:1 + rank]
    geo, nrows = _geo(spatial, out_sp, N, packed, stride, padding, dilation)
    x2 = x_q.reshape(-1, IC)
    w32 = _direct_weight(packed)
    xe = np.empty((x2.shape[0], IC // G, OC), np.int32)
    if xe.size * 4 < _COPY_PARALLEL_MIN or xe.shape[0] < 2:
        _expand_rows(x2, int(x_zero_point), IC // G, OC // G, 0, xe.shape[0], xe)
    else:
        with parallel_region():
            _expand_par(x2, int(x_zero_point), IC // G, OC // G, min(xe.shape[0], 64), xe)
    nchunks = _nchunks(nrows, out.size)
    if epilogue is None:
        acc = out.reshape(-1, OC)
        if nchunks == 0:
            _direct_rows(xe, w32, geo, 0, nrows, acc)
        else:
            with parallel_region():
                _direct_par(xe, w32, geo, nrows, nchunks, acc)
    else:
        flat = out.reshape(-1)
        if nchunks == 0:
            _direct_requant_rows(xe, w32, geo, 0, nrows, *epilogue, flat)
        else:
            with parallel_region():
                _direct_requant_par(xe, w32, geo, nrows, nchunks, *epilogue, flat)
    return out


def _method(packed, stride):
    """Pick ``"direct"``, ``"phases"`` or ``"col2im"`` (all give the same integers).

    Measured on 28x28 inputs (one thread); GEMM speed depends on K (long is good) and
    on N (the engine is slow below 32 columns), and each GEMM is a Python call:

    - direct for few channels per group (``IC/g * OC/g <= 64``, or ``<= 128`` with
      groups): the GEMMs would be tiny and many (144-channel depthwise 3x3: 40 ms by
      phases, 0.5 ms direct; 64->64 in 8 groups, k3 s2: 5.7 ms vs 0.8 ms);
    - col2im for other grouped convolutions (one GEMM per group instead of one per
      group and phase: 64->64 in 4 groups, k4 s2: 3.9 ms vs 1.6 ms), and without groups
      when phases have < 2 taps on average and OC < 32 (32->16 k2 s2: 0.49 vs 0.15 ms);
    - phases otherwise (64->32 k4 s2: 1.3x, 64->64 k3 s1: 2x faster than col2im),
      unless a phase's K could exceed the engine's ``K_MAX`` (then col2im, K = IC/g;
      beyond that, direct).
    """
    G = packed.groups
    ICg = packed.in_channels // G
    cg = ICg * (packed.out_channels // G)
    if cg <= 64 or (G > 1 and cg <= 128) or ICg > K_MAX:  # direct has no K limit
        return "direct"
    if G > 1:
        return "col2im"
    if math.prod(packed.kernel_size) < 2 * math.prod(stride) and packed.out_channels < 32:
        return "col2im"
    # the GEMM engine takes K <= K_MAX; a phase's K is at most all taps times IC/g
    if math.prod(packed.kernel_size) * ICg > K_MAX:
        return "col2im"
    return "phases"


# ------------------------------------------------------------- public entry points

def qconv_transpose_int32(x_q, x_zero_point, packed, stride, padding, output_padding,
                          dilation):
    """Exact int32 accumulators of a quantized transposed convolution, channels-last.

    Parameters
    ----------
    x_q : ndarray of uint8, shape (N, *spatial, IC), C-contiguous
    x_zero_point : int
    packed : PackedConvTransposeWeight
    stride, padding, output_padding, dilation : tuple of int
        One entry per spatial dim; the output size must be >= 1 in every dim.

    Returns
    -------
    ndarray of int32, shape (N, *out_spatial, OC)
        ``sum (x - x_zp) * (w - w_zp[oc])`` over every (input pixel, channel of the
        group, kernel tap) that lands on the output position; 0 where none does.
    """
    out_sp = conv_transpose_output_size(x_q.shape[1:-1], packed.kernel_size, stride,
                                        padding, output_padding, dilation)
    out = np.empty((x_q.shape[0],) + out_sp + (packed.out_channels,), np.int32)
    if out.size == 0:
        return out
    method = _method(packed, stride)
    if method == "col2im":
        return _col2im_int32(x_q, x_zero_point, packed, stride, padding, output_padding,
                             dilation, out)
    if method == "direct":
        return _direct(x_q, x_zero_point, packed, stride, padding, output_padding, dilation,
                       out)

    def gemm(a, pack, dst, g):
        qlinear_int32(a, x_zero_point, pack, out=dst)

    return _run(x_q, x_zero_point, packed, stride, padding, output_padding, dilation, out,
                gemm, lambda: 0)


def qconv_transpose(x_q, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point,
                    stride, padding, output_padding, dilation, out=None):
    """Quantized transposed convolution, uint8 in and out, channels-last.

    Parameters
    ----------
    x_q : ndarray of uint8, shape (N, *spatial, IC), C-contiguous
        Input codes (quint8, per tensor).
    x_scale : float
    x_zero_point : int
    packed : PackedConvTransposeWeight
    bias : ndarray of float32, shape (OC,), or None
        Float bias, added in the requantization epilogue (never pre-quantized).
    out_scale : float
    out_zero_point : int
    stride, padding, output_padding, dilation : tuple of int
        One entry per spatial dim (validated by the caller).
    out : ndarray of uint8, shape (N, *out_spatial, OC), C-contiguous, optional

    Returns
    -------
    ndarray of uint8, shape (N, *out_spatial, OC)
        NUMERICS.md's static Conv epilogue (the int8 engine's, :func:`numq.kernels.gemm.qlinear`)
        applied to the accumulators of :func:`qconv_transpose_int32`.
    """
    OC, OCg = packed.out_channels, packed.out_channels // packed.groups
    if out is None:
        out_sp = conv_transpose_output_size(x_q.shape[1:-1], packed.kernel_size, stride,
                                            padding, output_padding, dilation)
        out = np.empty((x_q.shape[0],) + out_sp + (OC,), np.uint8)
    b = None if bias is None else np.ascontiguousarray(bias, np.float32)
    xs, xz, os_, oz = float(x_scale), int(x_zero_point), float(out_scale), int(out_zero_point)
    if out.size == 0:
        return out
    method = _method(packed, stride)
    if method == "col2im":
        return _col2im_u8(x_q, xs, xz, packed, b, os_, oz, stride, padding, output_padding,
                          dilation, out)
    if method == "direct":
        return _direct(x_q, xz, packed, stride, padding, output_padding, dilation, out,
                       _epilogue(packed, xs, b, os_, oz))

    def gemm(a, pack, dst, g):
        bg = None if b is None else b[g * OCg:(g + 1) * OCg]
        qlinear(a, xs, xz, pack, bg, os_, oz, out=dst)

    def fill():  # an accumulator of 0: the bias alone, requantized
        return requantize(np.zeros((1, OC), np.int32), xs, packed.scales, packed.per_channel,
                          b, os_, oz)[0]

    return _run(x_q, xz, packed, stride, padding, output_padding, dilation, out, gemm, fill)
