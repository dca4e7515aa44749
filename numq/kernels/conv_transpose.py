"""Quantized transposed convolution (uint8 activations x int8 weights -> uint8).

A transposed convolution scatters every input pixel, multiplied by the whole kernel,
into the output. numq computes it in three exact steps:

1. GEMM: the channels-last input ``(N*D*H*W, IC/g)`` of each group times that group's
   weight, packed once as a linear weight whose rows are the ``(kd, kh, kw, oc)``
   combinations: ``cols[g, m, (k, oc)] = sum_ic (x - x_zp) * (w[ic, oc, k] - w_zp[oc])``
   in int32 (:func:`numq.kernels.gemm.qlinear_int32`, exact zero-point correction).
2. col2im, written as a *gather*: every output position sums the ``cols`` entries of
   the (input pixel, kernel tap) pairs that land on it. Each output row is written by
   exactly one thread, so the parallel loop has no write races and needs no atomics.
   A position no input reaches keeps 0, i.e. the input's zero point: it dequantizes to
   0, as torch's padding rule.
3. The static requantization epilogue of NUMERICS.md ("Static quantized Linear / Conv",
   float bias), per output channel, with :mod:`numq.kernels.gemm`'s own parameter and
   row kernels (the formula lives there only). Steps 2 and 3 run fused, one block of
   output rows at a time, in parallel over blocks (each block owns its rows).

Layout: activations are channels-last (``(N, *spatial, C)``, C-contiguous) on both
sides; the layers present them as NCHW views.
"""
import math
from typing import NamedTuple

import numpy as np
from numba import prange

from .._threads import get_num_threads, parallel_region
from ._jit import kernel
from .gemm import _requant_params, _requantize_rows, pack_linear_weight, qlinear_int32

__all__ = ["PackedConvTransposeWeight", "pack_conv_transpose_weight",
           "unpack_conv_transpose_weight", "qconv_transpose", "qconv_transpose_int32",
           "conv_transpose_output_size"]

_PARALLEL_MIN = 1 << 16  # output int32 elements below which col2im stays serial


class PackedConvTransposeWeight(NamedTuple):
    """A transposed-convolution weight packed for :func:`qconv_transpose`.

    Attributes
    ----------
    packs : tuple of PackedLinearWeight
        One per group; rows ``(k, oc_in_group)`` (kernel taps outer), columns the
        group's input channels.
    weight : ndarray of int8, shape (IC, OC/groups, *kernel_size)
        The codes as given (torch's transposed layout), for :func:`unpack_conv_transpose_weight`.
    scales : ndarray of float64, shape (OC,)
    zero_points : ndarray of int32, shape (OC,)
    per_channel : bool
        Per output channel (``axis=1`` of ``weight``) or one pair for the whole tensor.
    groups, in_channels, out_channels : int
    kernel_size : tuple of int
    """
    packs: tuple
    weight: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    per_channel: bool
    groups: int
    in_channels: int
    out_channels: int
    kernel_size: tuple


def pack_conv_transpose_weight(weight_q, scales, zero_points, groups=1):
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

    Returns
    -------
    PackedConvTransposeWeight
    """
    w = np.ascontiguousarray(weight_q, dtype=np.int8)
    IC, OCg = w.shape[:2]
    ks = tuple(int(k) for k in w.shape[2:])
    G = int(groups)
    ICg, OC, KK = IC // G, OCg * G, math.prod(ks)
    per_channel = np.ndim(scales) > 0
    s = np.ascontiguousarray(np.broadcast_to(np.asarray(scales, np.float64), (OC,)))
    z = np.ascontiguousarray(np.broadcast_to(np.asarray(zero_points), (OC,)).astype(np.int32))
    packs = []
    for g in range(G):
        # rows (k, oc): the GEMM row of one input pixel is then, tap by tap, a contiguous
        # run of OC/g output channels, which col2im adds with unit stride
        wg = w[g * ICg:(g + 1) * ICg].reshape(ICg, OCg, KK).transpose(2, 1, 0)
        wg = np.ascontiguousarray(wg).reshape(KK * OCg, ICg)
        if per_channel:
            packs.append(pack_linear_weight(wg, np.tile(s[g * OCg:(g + 1) * OCg], KK),
                                            np.tile(z[g * OCg:(g + 1) * OCg], KK)))
        else:
            packs.append(pack_linear_weight(wg, float(s[0]), int(z[0])))
    return PackedConvTransposeWeight(tuple(packs), w.copy(), s, z, bool(per_channel), G, IC,
                                     OC, ks)


def unpack_conv_transpose_weight(packed):
    """The int8 codes ``(IC, OC/groups, *kernel_size)`` that were packed (a copy)."""
    return packed.weight.copy()


def conv_transpose_output_size(spatial, kernel_size, stride, padding, output_padding,
                               dilation):
    """``(i - 1) * s - 2 * p + d * (k - 1) + op + 1`` per spatial dim, as a tuple."""
    return tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, k, s, p, op, d in
                 zip(spatial, kernel_size, stride, padding, output_padding, dilation))


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
        oh = r % OH
        od = (r // OH) % OD
        n = r // (OH * OD)
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
    """Serial (0) below the threshold, else a few row chunks per thread."""
    if size < _PARALLEL_MIN or nrows < 2:
        return 0
    return min(nrows, 4 * get_num_threads())


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def _gemm_cols(x_q, x_zero_point, packed, stride, padding, output_padding, dilation):
    """Step 1 (the per-group GEMMs); returns ``(cols, geo, out_spatial, nrows)``.

    ``cols`` is None when the output is empty.
    """
    rank = len(packed.kernel_size)
    N, spatial, IC = x_q.shape[0], x_q.shape[1:1 + rank], x_q.shape[-1]
    G, OC = packed.groups, packed.out_channels
    ICg, OCg, KK = IC // G, OC // G, math.prod(packed.kernel_size)
    out_sp = conv_transpose_output_size(spatial, packed.kernel_size, stride, padding,
                                        output_padding, dilation)
    i3, o3 = _pad3(spatial, 1), _pad3(out_sp, 1)
    nrows = N * o3[0] * o3[1]
    if nrows * o3[2] == 0:
        return None, None, out_sp, nrows
    M = N * math.prod(spatial)
    x2 = x_q.reshape(M, IC)
    cols = np.empty((G, M, KK * OCg), np.int32)
    for g in range(G):
        xg = x2 if G == 1 else np.ascontiguousarray(x2[:, g * ICg:(g + 1) * ICg])
        qlinear_int32(xg, int(x_zero_point), packed.packs[g], out=cols[g])
    geo = np.array(i3 + o3 + _pad3(packed.kernel_size, 1) + _pad3(stride, 1)
                   + _pad3(padding, 0) + _pad3(dilation, 1), np.int64)
    return cols, geo, out_sp, nrows


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
    cols, geo, out_sp, nrows = _gemm_cols(x_q, x_zero_point, packed, stride, padding,
                                          output_padding, dilation)
    OC = packed.out_channels
    acc = np.empty((x_q.shape[0],) + out_sp + (OC,), np.int32)
    if cols is None:
        return acc
    acc2 = acc.reshape(-1, OC)
    nchunks = _nchunks(nrows, acc.size)
    if nchunks == 0:
        _col2im_rows(cols, geo, 0, nrows, acc2)
    else:
        with parallel_region():
            _col2im_par(cols, geo, nrows, nchunks, acc2)
    return acc


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
        NUMERICS.md's static Conv epilogue (``numq.kernels.gemm``'s) applied to
        :func:`qconv_transpose_int32`; col2im and the epilogue run fused, row block by
        row block.
    """
    cols, geo, out_sp, nrows = _gemm_cols(x_q, x_zero_point, packed, stride, padding,
                                          output_padding, dilation)
    OC = packed.out_channels
    if out is None:
        out = np.empty((x_q.shape[0],) + out_sp + (OC,), np.uint8)
    if cols is None:
        return out
    mult = np.empty(OC, np.float32)
    bias_s = np.empty(OC, np.float32)
    b = np.zeros(1, np.float32) if bias is None else np.ascontiguousarray(bias, np.float32)
    _requant_params(float(x_scale), packed.scales.astype(np.float32), packed.per_channel, b,
                    bias is not None, float(out_scale), mult, bias_s)
    zp_f, lo_f = np.float32(out_zero_point), np.float32(0.0)
    flat = out.reshape(-1)
    nchunks = _nchunks(nrows, flat.size)
    if nchunks == 0:
        _col2im_requant_rows(cols, geo, 0, nrows, mult, bias_s, zp_f, lo_f, flat)
    else:
        with parallel_region():
            _col2im_requant_par(cols, geo, nrows, nchunks, mult, bias_s, zp_f, lo_f, flat)
    return out
