"""Quantized convolution (uint8 activations x int8 weights -> uint8), 1-d to 3-d.

Kernel-level API
----------------
pack_conv_weight(weight_q, scales, zero_points, groups) -> PackedConvWeight
    Prepack int8 codes ``(OC, C/groups, *kernel)`` once: per group a GEMM weight
    (:func:`numq.kernels.gemm.pack_linear_weight`) whose K order is window tap major,
    channel minor (the order of :func:`numq.kernels.im2col_u8.im2col_u8`), or, for a
    depthwise convolution (one input channel per group), ``w - w_zp`` as int16
    ``(taps, OC)`` for :func:`numq.kernels.depthwise.depthwise_requant`.
unpack_conv_weight(packed) -> int8 codes, exactly as given to ``pack_conv_weight``.
qconv(x_q, x_scale, x_zero_point, packed, bias, stride, padding, dilation, out_scale,
      out_zero_point, relu=False) -> uint8 (N, OC, *out_spatial)

How it runs
-----------
Everything is channels-last inside. The output is written into an
``(N, *out_spatial, OC)`` buffer and returned as its ``np.moveaxis`` view, logically
NCHW like torch (whose x86 engine also returns a channels-last tensor): the next
convolution reads that view with channel stride 1, so layers chain without a layout
conversion. An input with another layout is read in place (small ``C``) or first
copied to channels-last by a tiled transpose (:func:`to_channels_last`).

- depthwise (``groups == C``): direct kernel with the static requantization epilogue
  fused (:func:`numq.kernels.depthwise.depthwise_requant`);
- 1x1, stride 1, no padding, one group, channels-last input: the input *is* the GEMM's
  ``(M, C)`` matrix, no im2col;
- otherwise: im2col into uint8 ``(groups, M, K_g)`` with padding filled with the input
  zero point, then per group :func:`numq.kernels.gemm.qlinear` writing its column slice
  of the ``(M, OC)`` output buffer. Large batches run in chunks of samples so the
  im2col buffer stays cache-sized (it is re-read by the GEMM right away).

Numerics are NUMERICS.md "Static quantized Linear / Conv": exact int32 accumulators
``sum (x - x_zp)(w - w_zp[oc])`` over the group's channels and the window, float32
bias, torch's epilogue. Results do not depend on the thread count or the chunking.
"""
import functools
import math
import threading

import numpy as np

from .. import _isa
from .._threads import get_num_threads, parallel_region
from . import conv_amx as _conv_amx
from . import gemm as _G
from ._align import aligned_empty
from .depthwise import depthwise_requant
from .im2col_u8 import im2col_u8, pixels_to_words, to_channels_last
from .quantize import PARALLEL_MIN

__all__ = ["PackedConvWeight", "pack_conv_weight", "unpack_conv_weight", "qconv",
           "conv_output_size"]

# Largest im2col buffer per batch chunk (at least one sample per chunk): about the L2
# size, so the GEMM re-reads it from cache (8x64x56x56, 3x3, one thread: 1 MB chunks
# 11.4 ms, 4 MB 13.6 ms, 16 MB 17.0 ms).
_CHUNK_BYTES = 2 << 20
# im2col buffers up to this size are kept per thread and reused: a fresh multi-MB buffer
# costs a page fault per 4 KiB on first touch (measured: 0.58 ms instead of 0.15 ms for
# the 1.8 MB im2col of a 3x3, 64-channel, 56x56 convolution).
_SCRATCH_MAX = 32 << 20
_scratch_local = threading.local()
# An input with channel stride != 1 and at least this many channels is first copied to
# channels-last: im2col then copies contiguous channel runs instead of gathering.
_CL_MIN_CHANNELS = 8


class PackedConvWeight:
    """A prepacked convolution weight (see :func:`pack_conv_weight`).

    Attributes
    ----------
    weight_q : int8 ndarray (OC, C/groups, *kernel), the codes as given (C-contiguous copy)
    scales : float64 (OC,); zero_points : int32 (OC,); per_channel : bool
    groups, in_channels, out_channels : int
    kernel_size : tuple of int (the rank's own length)
    depthwise : bool; multiplier : int (OC / groups when depthwise)
    gemm : tuple of per-group ``PackedLinearWeight`` (None when depthwise)
    gemm_c4 : two ``PackedLinearWeight`` with the 2 or 3 input channels padded to 4 (zero
        weights), for inputs copied to 4-channel pixels: K = taps * 4, and K padded on to
        a multiple of 64 for AMX (None unless groups 1, C 2 or 3)
    gemm_rows : ``PackedLinearWeight`` for the AMX implicit GEMM of the same first layers:
        one 64-k step per kernel row, its kw taps x 4 bytes first and zero weights after
        (None unless groups 1, C 2 or 3, 4 * kw <= 64)
    dw : int16 (taps, OC) ``w - w_zp`` (None unless depthwise)
    dw32, dw_sum : ``dw`` as int32 and its int64 sum over taps (the 3x3 depthwise kernel)
    """

    __slots__ = ("weight_q", "scales", "zero_points", "per_channel", "groups",
                 "in_channels", "out_channels", "kernel_size", "depthwise", "multiplier",
                 "gemm", "gemm_c4", "gemm_rows", "dw", "dw32", "dw_sum")

    def __repr__(self):
        return (f"PackedConvWeight(out_channels={self.out_channels}, in_channels="
                f"{self.in_channels}, kernel_size={self.kernel_size}, groups={self.groups}, "
                f"per_channel={self.per_channel}, depthwise={self.depthwise})")


def pack_conv_weight(weight_q, scales, zero_points, groups=1):
    """Prepack quantized convolution weights.

    Parameters
    ----------
    weight_q : int8 ndarray, shape (OC, C/groups, *kernel) with 1 to 3 kernel dims
    scales : float or float array (OC,)
        A scalar means per-tensor quantized weights (this changes the bias rule).
    zero_points : int or int array (OC,)
    groups : int
        Divides ``OC``; ``C = groups * weight_q.shape[1]``.

    Returns
    -------
    PackedConvWeight
    """
    w = np.ascontiguousarray(weight_q, dtype=np.int8)
    OC, Cg = w.shape[0], w.shape[1]
    kernel = tuple(int(k) for k in w.shape[2:])
    taps = int(np.prod(kernel))
    per_channel = np.ndim(scales) > 0
    s = np.broadcast_to(np.asarray(scales, np.float64), (OC,)).copy()
    z = np.broadcast_to(np.asarray(zero_points, np.int64), (OC,)).astype(np.int32)
    p = PackedConvWeight()
    p.weight_q, p.scales, p.zero_points, p.per_channel = w, s, z, bool(per_channel)
    p.groups, p.in_channels, p.out_channels = int(groups), int(Cg * groups), int(OC)
    p.kernel_size = kernel
    p.depthwise = Cg == 1  # one input channel per group: direct kernel
    p.multiplier = OC // groups
    p.gemm = p.gemm_c4 = p.gemm_rows = p.dw = p.dw32 = p.dw_sum = None
    if p.depthwise:
        # int16 halves the weight traffic; |w - w_zp| <= 255 fits
        p.dw = np.ascontiguousarray(
            (w.reshape(OC, taps).astype(np.int16) - z[:, None].astype(np.int16)).T)
        p.dw32 = p.dw.astype(np.int32).reshape(-1)
        p.dw_sum = p.dw.astype(np.int64).sum(axis=0)
        return p
    # (OC, Cg, *k) -> (OC, *k, Cg): window tap major, channel minor, like im2col_u8;
    # K padded with zero weights to a multiple of 4 (the GEMM reads 4-byte groups: an
    # im2col row of that length needs no copy, and its padding columns hold x_zp)
    K = taps * Cg
    wk = np.zeros((OC, -(-K // 4) * 4), np.int8)
    wk[:, :K] = np.moveaxis(w, 1, -1).reshape(OC, K)
    OCg = OC // groups
    packs = []
    for i in range(groups):
        sl = slice(i * OCg, (i + 1) * OCg)
        if per_channel:
            packs.append(_G.pack_linear_weight(wk[sl], s[sl], z[sl]))
        else:
            packs.append(_G.pack_linear_weight(wk[sl], float(s[0]), int(z[0])))
    p.gemm = tuple(packs)
    if groups == 1 and Cg in (2, 3):
        # first layers (RGB): with each pixel's channels padded to 4 bytes (the input's
        # pad byte holds x_zp, so it adds exactly 0), a kernel row is a run of whole
        # 4-byte words in both the input and the im2col rows
        w4 = np.zeros((OC,) + kernel + (4,), np.int8)
        w4[..., :Cg] = np.moveaxis(w, 1, -1)
        w4 = w4.reshape(OC, taps * 4)
        # K padded with zero weights to 64 as well: AMX tiles read such im2col rows as
        # they are (the im2col fills the extra columns with x_zp)
        w64 = np.zeros((OC, -(-taps * 4 // 64) * 64), np.int8)
        w64[:, :taps * 4] = w4
        p.gemm_c4 = tuple(_G.pack_linear_weight(wk_, s, z) if per_channel
                          else _G.pack_linear_weight(wk_, float(s[0]), int(z[0]))
                          for wk_ in (w4, w64))
        kd, kh, kw = _pad3(kernel, 1)
        if 4 * kw <= 64:
            # AMX implicit GEMM over 4-byte pixels: a step reads 64 bytes of one input
            # row from a kernel row's first tap; its kw taps are the first 4 * kw bytes
            wr = np.zeros((OC, kd, kh, 64), np.int8)
            wr[..., :4 * kw] = w4.reshape(OC, kd, kh, 4 * kw)
            wr = wr.reshape(OC, kd * kh * 64)
            p.gemm_rows = (_G.pack_linear_weight(wr, s, z) if per_channel
                           else _G.pack_linear_weight(wr, float(s[0]), int(z[0])))
    return p


def unpack_conv_weight(packed):
    """The int8 codes ``(OC, C/groups, *kernel)`` given to :func:`pack_conv_weight` (a copy)."""
    return packed.weight_q.copy()


def conv_output_size(in_size, kernel_size, stride, padding, dilation):
    """Output length per spatial dim: ``(I + 2p - d*(k-1) - 1) // s + 1``."""
    return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in
                 zip(in_size, kernel_size, stride, padding, dilation))


@functools.lru_cache(maxsize=1024)
def _geometry(in_sp, kernel, stride, padding, dilation):
    """``(out_sp, k3, s3, p3, d3, in3, out3)`` of a call (cached: it runs per call):
    the output size and every size padded to three dims (depth, height, width)."""
    out_sp = conv_output_size(in_sp, kernel, stride, padding, dilation)
    return (out_sp, _pad3(kernel, 1), _pad3(stride, 1), _pad3(padding, 0),
            _pad3(dilation, 1), _pad3(in_sp, 1), _pad3(out_sp, 1))


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(map(int, t))


def _scratch(shape, slot):
    """A uint8 array of ``shape`` on this thread's reusable buffer number ``slot``
    (contents undefined; valid until the next call with the same slot in this thread)."""
    n = int(np.prod(shape))
    if n > _SCRATCH_MAX:
        return aligned_empty(shape, np.uint8)
    bufs = getattr(_scratch_local, "bufs", None)
    if bufs is None:
        bufs = _scratch_local.bufs = [None, None]
    if bufs[slot] is None or bufs[slot].size < n:
        bufs[slot] = aligned_empty(max(n, 1 << 20), np.uint8)
    return bufs[slot][:n].reshape(shape)


def _flat_input(x):
    """``(flat uint8 buffer, (sn, sd, sh, sw, sc) element strides)`` of an input view:
    element ``(n, d, h, w, c)`` is ``flat[n*sn + d*sd + h*sh + w*sw + c*sc]``."""
    r = x.ndim - 2
    st = x.strides
    if any(v < 0 for v in st):
        x = np.ascontiguousarray(x)
        st = x.strides
    sp = (0,) * (3 - r) + st[2:]
    xs = (st[0], sp[0], sp[1], sp[2], st[1])
    # contiguous NCHW or channels-last storage: a plain reshape (as_strided costs ~4 us)
    if x.flags.c_contiguous:
        return x.reshape(-1), xs
    xt = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
    if xt.flags.c_contiguous:
        return xt.reshape(-1), xs
    span = 1 + sum((n - 1) * v for n, v in zip(x.shape, st)) if x.size else 1
    flat = np.lib.stride_tricks.as_strided(x, shape=(span,), strides=(1,))
    return flat, xs


def _channels_last_copy(x, parallel):
    N, C = x.shape[:2]
    sp = x.shape[2:]
    P = int(np.prod(sp))
    out = _scratch((N,) + tuple(sp) + (C,), 0)  # only read inside qconv
    # a view that is not C-contiguous NCHW is first gathered by NumPy (rare)
    to_channels_last(np.ascontiguousarray(x).reshape(N, C, P), out.reshape(N, P, C), parallel)
    return np.moveaxis(out, -1, 1)


def _conv1x1(x, M, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point, relu,
             out2d):
    """A 1x1, stride-1, unpadded convolution of a channels-last input: one GEMM."""
    xm = x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))
    if not xm.flags.c_contiguous:
        xm = np.ascontiguousarray(xm)
    _G.qlinear(xm.reshape(M, x.shape[1]), x_scale, x_zero_point, packed.gemm[0], bias,
               out_scale, out_zero_point, relu=relu, out=out2d)


def qconv(x_q, x_scale, x_zero_point, packed, bias, stride, padding, dilation, out_scale,
          out_zero_point, relu=False):
    """Quantized convolution; returns the uint8 output ``(N, OC, *out_spatial)``.

    Parameters
    ----------
    x_q : uint8 ndarray (N, C, *spatial), 1 to 3 spatial dims, any non-negative strides
    x_scale : float; x_zero_point : int
    packed : PackedConvWeight
    bias : float32 ndarray (OC,) or None
    stride, dilation : tuples of ints >= 1; padding : tuple of ints >= 0 (one per dim)
    out_scale : float; out_zero_point : int in [0, 255]
    relu : bool
        Clamp at ``out_zero_point`` from below (fused ReLU).

    Returns
    -------
    ndarray
        uint8, logically ``(N, OC, *out_spatial)``; in memory channels-last (a
        ``np.moveaxis`` view of a C-contiguous ``(N, *out_spatial, OC)`` buffer).
        Every output size must be >= 1 (the caller checks).
    """
    N, C = x_q.shape[:2]
    in_sp = x_q.shape[2:]
    out_sp, k3, s3, p3, d3, in3, out3 = _geometry(in_sp, packed.kernel_size, tuple(stride),
                                                  tuple(padding), tuple(dilation))
    OC = packed.out_channels
    M = N * math.prod(out_sp)
    buf = aligned_empty((N,) + out_sp + (OC,), np.uint8)   # the next layer reads it in place
    out2d = buf.reshape(M, OC)
    result = buf.transpose((0, buf.ndim - 1) + tuple(range(1, buf.ndim - 1)))   # NC(D)HW view
    if M == 0 or OC == 0:
        return result
    big = M * max(C, OC) >= PARALLEL_MIN
    x = x_q
    one_by_one = (k3 == (1, 1, 1) and s3 == (1, 1, 1) and p3 == (0, 0, 0)
                  and packed.groups == 1 and packed.gemm[0].k == C)
    if one_by_one and x.strides[1] == 1:
        # channels-last 1x1: the input already is the GEMM's (M, C) matrix
        _conv1x1(x, M, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point, relu,
                 out2d)
        return result
    g_amx = (_conv_amx.eligible(packed, C, d3[2]) if _isa.active() == "avx512_amx"
             else None)
    if g_amx is not None:
        # implicit GEMM: tiles read bands of padded channels-last input rows (copied
        # from any layout, NCHW included), no im2col buffer; also the NCHW 1x1 case, and
        # 2-3 channel first layers as 4-byte pixels
        xf, xs = _flat_input(x)
        with parallel_region():
            _conv_amx.qconv_amx(xf, _conv_amx.geometry(xs, (N, C) + in3 + out3, p3, k3, s3, d3),
                                x_zero_point, packed, g_amx, bias, x_scale, out_scale,
                                out_zero_point, relu, out2d, get_num_threads())
        return result
    if x.strides[1] != 1 and C >= _CL_MIN_CHANNELS and x.size:
        with parallel_region():
            x = _channels_last_copy(x, big)
    if packed.depthwise:
        # the epilogue parameters come from the GEMM engine (one home for the formula)
        mult = np.empty(OC, np.float32)
        bias_s = np.empty(OC, np.float32)
        has_b = bias is not None
        _G._requant_params(float(x_scale), packed.scales.astype(np.float32),
                           packed.per_channel,
                           np.ascontiguousarray(bias, np.float32) if has_b else mult, has_b,
                           float(out_scale), mult, bias_s)
        xf, xs = _flat_input(x)
        with parallel_region():
            depthwise_requant(xf, xs, in3, out3, k3, s3, p3, d3, packed.multiplier,
                              x_zero_point, packed.dw, mult, bias_s, out_zero_point, relu,
                              out2d, big, packed.dw32, packed.dw_sum)
        return result
    G = packed.groups
    OCg = OC // G
    biases = [None if bias is None else np.ascontiguousarray(bias[i * OCg:(i + 1) * OCg])
              for i in range(G)]
    if one_by_one:
        _conv1x1(x, M, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point, relu,
                 out2d)
        return result
    gemms, Cg = packed.gemm, C // G
    if packed.gemm_c4 is not None:
        # 2 or 3 channels: pixels of 4 bytes (pad byte x_zp), im2col in whole words
        x4 = _scratch((N,) + tuple(in_sp) + (4,), 0)
        xf, xs = _flat_input(x)
        with parallel_region():
            pixels_to_words(xf, xs, in3, C, x_zero_point, x4.reshape(N, -1, 4), big)
        x = x4.transpose((0, x4.ndim - 1) + tuple(range(1, x4.ndim - 1)))
        # AMX: rows padded to 64 bytes, read in place (1.2x faster than VNNI on 36)
        gemms, Cg = (packed.gemm_c4[_isa.active() == "avx512_amx"],), 4
    Kg = gemms[0].k  # taps * C/G rounded up to a multiple of 4
    per_sample = M // N
    chunk = max(1, min(N, _CHUNK_BYTES // max(1, G * per_sample * Kg)))
    cols = _scratch((G, chunk * per_sample, Kg), 1)
    xf, xs = _flat_input(x)
    for n0 in range(0, N, chunk):
        n1 = min(N, n0 + chunk)
        m0, m1 = n0 * per_sample, n1 * per_sample
        cview = cols[:, :m1 - m0]
        if n1 - n0 < chunk and G > 1:  # a row slice of (G, M, Kg) is not contiguous
            cview = np.empty((G, m1 - m0, Kg), np.uint8)
        # the chunk's samples start n0 * sn elements into the flat input
        sub = xf[n0 * xs[0]:]
        with parallel_region():
            im2col_u8(sub, xs, in3, out3, k3, s3, p3, d3, G, Cg, x_zero_point, cview,
                      big and cview.size >= PARALLEL_MIN)
        for i in range(G):
            _G.qlinear(cview[i], x_scale, x_zero_point, gemms[i], biases[i], out_scale,
                       out_zero_point, relu=relu, out=out2d[m0:m1, i * OCg:(i + 1) * OCg])
    return result
