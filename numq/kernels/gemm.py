"""The int8 GEMM engine: packed weights, microkernel drivers, fused epilogues.

``C[i, j] = sum_k (x[i, k] - x_zp) * (w[j, k] - w_zp[j])`` for uint8 activations ``x``
(M, K) and int8 weight codes ``w`` (N, K), exact in int32, followed by one of three
epilogues (NUMERICS "Static quantized Linear" and "Dynamic quantized Linear"):

- ``qlinear``: requantize to uint8 (float32 bias, per-tensor or per-channel weight
  scales, optional ReLU), bit-exact with PyTorch 2.13's x86 engine;
- ``qlinear_dynamic``: float32 input quantized on the fly (fbgemm's qparams), float32
  output by one ``fma`` per element, optional ReLU;
- ``qlinear_int32``: the int32 accumulators themselves.

Zero points never enter the inner loop: the microkernel computes ``sum x * w`` and the
epilogue subtracts ``x_zp * colsum(w)[j]`` (colsum stored at packing time) and, only when
a weight zero point is non-zero, ``w_zp[j] * (rowsum(x)[i] - K * x_zp)``. The raw sum
``sum x * w`` is bounded by ``255 * 128 * K`` and fits int32 for K <= 65536; the
corrected value is reduced modulo 2**32 exactly as fbgemm's int32 arithmetic does.

Work split: the output is cut into items of ``mc`` rows x ``sg`` strips of 32 columns;
items run in parallel (``prange``), and inside an item each weight strip is reused by
all ``mc / 8`` row tiles while the rows stay in L2.
"""
import functools
from typing import NamedTuple

import numpy as np
from numba import prange

from .. import _isa
from .._threads import get_num_threads, parallel_region
from . import _gemm_micro as _mk
from ._align import aligned_empty, aligned_i32, aligned_u8, aligned_zeros, is_aligned
from ._fma import fma32
from ._jit import kernel
from ._requant import u8_code
from .qparams import dynamic_qparams_core
from .quantize import PARALLEL_MIN, _qpt8, _qpt8_par
from .reduce import _minmax_parallel, _minmax_serial, _minmax_serial_merge

__all__ = ["PackedLinearWeight", "pack_linear_weight", "unpack_linear_weight",
           "qlinear", "qlinear_int32", "qlinear_dynamic", "requantize", "K_MAX"]

NR, MR = _mk.NR, _mk.MR
K_MAX = 65536      # 255 * 128 * K stays below 2**31
# bytes after the packed data: full-width loads of a narrow tail strip, and AMX tile
# loads of up to 15 k groups past the last one (multiplied by zero activations)
_SLACK = 16 * 128
_ISA_CODE = {"generic": 0, "avx2": 1, "avx512_vnni": 2, "avx512_amx": 3}
_AMX = 3
_SERIAL_MACS = 1 << 18   # below this many multiply-adds one thread is faster
_L2_WEIGHT = 1 << 20     # weight bytes that stay in one core's L2 (see _schedule)
_ALIGN_OUT = 1 << 16     # output elements from which new outputs are 64-byte aligned
_PARALLEL_PACK = 1 << 20  # activation bytes above which packing them runs on all threads
_AMX_MIN_K = 64           # below this K the VNNI path is faster (measured, 2 cores)
_STATIC_M = 32            # below this M each thread has a fixed share of strips
_AMX_MIN_M = 10           # AMX from this M (measured: even with VNNI at M = 8, 1.3x at 12)
_MODE_U8, _MODE_F32, _MODE_I32 = _mk.MODE_U8, _mk.MODE_F32, _mk.MODE_I32


class PackedLinearWeight(NamedTuple):
    """int8 weight codes in the microkernel's layout, with what the epilogues need.

    Attributes
    ----------
    data : numpy.ndarray
        int8, 1-D: strips of 32 output columns, each ``ceil(K/4)`` groups of
        (columns x 4 k) bytes, K zero-padded to a multiple of 4, plus 128 bytes of slack.
        Size ``N * ceil(K/4) * 4 + 128``.
    n, k : int
        Output and input features.
    col_sums : numpy.ndarray
        int32 (N,): ``sum_k w[j, k]``.
    zero_points : numpy.ndarray
        int32 (N,): weight zero point of each output column.
    scales : numpy.ndarray
        float64 (N,): weight scale of each output column, as given.
    scales_f32 : numpy.ndarray
        float32 (N,): ``f32(scales)``, the value the kernels use.
    per_channel : bool
        Whether the weight was quantized per output channel (selects the bias rule).
    any_zero_point : bool
        Whether some weight zero point is non-zero (row sums needed).
    """
    data: np.ndarray
    n: int
    k: int
    col_sums: np.ndarray
    zero_points: np.ndarray
    scales: np.ndarray
    scales_f32: np.ndarray
    per_channel: bool
    any_zero_point: bool

    @property
    def nbytes(self):
        """Bytes held by the packed weight and its per-column arrays."""
        return sum(a.nbytes for a in (self.data, self.col_sums, self.zero_points,
                                      self.scales, self.scales_f32))


def _k4(k):
    return -(-k // 4)


def pack_linear_weight(weight, scales, zero_points):
    """Pack int8 weight codes once for :func:`qlinear` / :func:`qlinear_dynamic`.

    Parameters
    ----------
    weight : numpy.ndarray
        int8 (N, K) codes (``W.int_repr()`` in torch terms), 1 <= K <= 65536.
    scales : float or array_like
        Weight scale: a scalar (per-tensor) or N values (per output channel).
    zero_points : int or array_like
        Weight zero point(s) in [-128, 127]: scalar or N values, matching ``scales``.

    Returns
    -------
    PackedLinearWeight
    """
    w = np.ascontiguousarray(weight)
    if w.dtype != np.int8 or w.ndim != 2:
        raise TypeError(f"weight must be an int8 array of shape (N, K); got {w.dtype} "
                        f"with shape {w.shape}")
    n, k = w.shape
    if n < 1 or not 1 <= k <= K_MAX:
        raise ValueError(f"weight shape must have N >= 1 and 1 <= K <= {K_MAX}; got {w.shape}")
    per_channel = np.ndim(scales) > 0
    s = np.broadcast_to(np.asarray(scales, np.float64), (n,)).copy()
    z = np.asarray(zero_points)
    if np.ndim(z) != np.ndim(scales) or (per_channel and z.shape != (n,)) or \
            (per_channel and s.shape != (n,)):
        raise ValueError(f"scales and zero_points must both be scalars or both have shape "
                         f"({n},); got {np.shape(scales)} and {np.shape(zero_points)}")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("weight scales must be finite and > 0")
    if np.any((z < -128) | (z > 127)):
        raise ValueError("weight zero_points must be in [-128, 127] (int8 codes)")
    z = np.broadcast_to(z.astype(np.int32), (n,)).copy()
    k4 = _k4(k)
    wp = w if k == 4 * k4 else np.pad(w, ((0, 0), (0, 4 * k4 - k)))
    data = aligned_zeros(n * k4 * 4 + _SLACK, np.int8)   # whole-cache-line AMX tile rows
    nfull = n // NR
    body = wp[:nfull * NR].reshape(nfull, NR, k4, 4).transpose(0, 2, 1, 3)
    data[:body.size] = body.reshape(-1)
    tail = wp[nfull * NR:]
    if tail.shape[0]:
        data[body.size:n * k4 * 4] = tail.reshape(-1, k4, 4).transpose(1, 0, 2).reshape(-1)
    col_sums = w.sum(axis=1, dtype=np.int64).astype(np.int32)
    return PackedLinearWeight(data, n, k, col_sums, z, s, s.astype(np.float32),
                              bool(per_channel), bool(np.any(z != 0)))


def unpack_linear_weight(packed):
    """Return the int8 (N, K) weight codes of a :class:`PackedLinearWeight` (exact)."""
    n, k, k4 = packed.n, packed.k, _k4(packed.k)
    nfull = n // NR
    out = np.empty((n, 4 * k4), np.int8)
    body = packed.data[:nfull * NR * k4 * 4].reshape(nfull, k4, NR, 4).transpose(0, 2, 1, 3)
    out[:nfull * NR] = body.reshape(nfull * NR, 4 * k4)
    if n > nfull * NR:
        tail = packed.data[nfull * NR * k4 * 4:n * k4 * 4].reshape(k4, n - nfull * NR, 4)
        out[nfull * NR:] = tail.transpose(1, 0, 2).reshape(-1, 4 * k4)
    return np.ascontiguousarray(out[:, :k])


# ---------------------------------------------------------------- microkernel dispatch

@kernel
def _micro_vnni(mr, a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0):
    if mr == 8:
        _mk.vnni8(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 1:
        _mk.vnni1(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 2:
        _mk.vnni2(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 3:
        _mk.vnni3(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 4:
        _mk.vnni4(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 5:
        _mk.vnni5(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 6:
        _mk.vnni6(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    else:
        _mk.vnni7(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)


@kernel
def _micro_avx2(mr, a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0):
    if mr == 8:
        _mk.avx2_8(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 1:
        _mk.avx2_1(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 2:
        _mk.avx2_2(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 3:
        _mk.avx2_3(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 4:
        _mk.avx2_4(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 5:
        _mk.avx2_5(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    elif mr == 6:
        _mk.avx2_6(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)
    else:
        _mk.avx2_7(a_ptr, b_ptr, nb, k4, c_ptr, accumulate, mode, desc, r0, j0)


@kernel
def _micro_generic(a, a_off, data, b_off, nb, k4, mr, ncol, scratch, accumulate):
    """Plain-Numba twin of the intrinsic microkernels (same packed layout, same bits)."""
    if not accumulate:
        for r in range(mr):
            for c in range(NR):
                scratch[r, c] = 0
    for g in range(k4):
        bo = b_off + g * nb
        for r in range(mr):
            ao = a_off + 4 * r + 4 * MR * g      # packed A tile
            a0 = np.int32(a[ao])
            a1 = np.int32(a[ao + 1])
            a2 = np.int32(a[ao + 2])
            a3 = np.int32(a[ao + 3])
            for c in range(ncol):
                p = bo + 4 * c
                scratch[r, c] += (a0 * np.int32(data[p]) + a1 * np.int32(data[p + 1])
                                  + a2 * np.int32(data[p + 2]) + a3 * np.int32(data[p + 3]))


# ---------------------------------------------------------------- epilogue parameters

@kernel
def _requant_params(x_scale, w_scales_f32, per_channel, bias, has_bias, out_scale,
                    mult, bias_s):
    """Per-column multiplier and scaled bias of the static epilogue (NUMERICS)."""
    xs = np.float32(x_scale)
    os_ = np.float32(out_scale)
    for j in range(mult.size):
        atw = xs * w_scales_f32[j]
        mult[j] = atw / os_
        if not has_bias:
            bias_s[j] = np.float32(0.0)
        elif per_channel:
            bias_s[j] = bias[j] / atw
        else:
            bias_s[j] = bias[j] * np.float32(1.0 / np.float64(atw))


@kernel
def _dynamic_params(x_scale, w_scales_f32, bias, has_bias, mult, bias_f):
    xs = np.float32(x_scale)
    for j in range(mult.size):
        mult[j] = xs * w_scales_f32[j]
        bias_f[j] = bias[j] if has_bias else np.float32(0.0)


@kernel
def _pack_a(a, m, k, k4, t0, t1, out):
    """Pack rows of uint8 ``a`` (flat, row length ``k``) into 8-row tiles ``t0 .. t1-1``.

    Tile ``t`` is ``k4`` groups of 32 bytes: 4 consecutive k of rows ``8t .. 8t+7``
    (zeros past row ``m`` or column ``k``), the layout the microkernels read.
    """
    o32 = out.view(np.uint32)
    if k == 4 * k4:
        a32 = a.view(np.uint32)
        uk4 = np.uint64(k4)
        full = min(t1, m // MR)       # tiles whose 8 rows all exist
        for t in range(t0, full):
            # unsigned indices: no negative-index tests in the inner loops; the writes
            # run contiguously through the tile
            src = np.uint64(t * MR) * uk4
            dst = np.uint64(t * MR) * uk4
            for g in range(k4):
                ug = np.uint64(g)
                o = dst + ug * np.uint64(MR)
                for r in range(MR):
                    ur = np.uint64(r)
                    o32[o + ur] = a32[src + ur * uk4 + ug]
        for t in range(max(t0, full), t1):
            for r in range(MR):
                i = t * MR + r
                dst = t * k4 * MR + r
                for g in range(k4):
                    o32[dst + g * MR] = a32[i * k4 + g] if i < m else 0
    else:
        for t in range(t0, t1):
            for r in range(MR):
                i = t * MR + r
                base = t * k4 * 4 * MR + 4 * r
                for g in range(k4):
                    for b in range(4):
                        kk = 4 * g + b
                        out[base + g * 4 * MR + b] = a[i * k + kk] if (i < m and kk < k) else 0


@kernel(parallel=True)
def _pack_a_parallel(a, m, k, k4, ntiles, nchunks, out):
    for c in prange(nchunks):
        _pack_a(a, m, k, k4, c * ntiles // nchunks, (c + 1) * ntiles // nchunks, out)


@kernel
def _row_terms(a, m, k, lda, x_zp, out):
    """``out[i] = sum_k a[i, k] - K * x_zp`` (int64; only the low 32 bits matter)."""
    for i in range(m):
        s = np.int64(0)
        base = i * lda
        for t in range(k):
            s += np.int64(a[base + t])
        out[i] = s - np.int64(k) * np.int64(x_zp)


@kernel
def _col_corrections(col_sums, x_zp, out):
    """``out[j] = x_zp * colsum[j]`` wrapped to int32."""
    for j in range(out.size):
        out[j] = np.int32(np.int64(x_zp) * np.int64(col_sums[j]))


@kernel(inline="always")
def _acc_value(raw, col_corr, w_zp, row_term):
    """Zero-point-corrected accumulator, wrapped to int32 like fbgemm's arithmetic."""
    return np.int32(np.int64(raw) - np.int64(col_corr) - np.int64(w_zp) * row_term)


# ---------------------------------------------------------------- driver

@kernel
def _gemm_items(counter, nitems, isa, a, lda_a, cfg, a_tail, k4, kc, data, n, m, mc, sg,
                nrb, mode, col_corr, w_zps, use_rows, row_terms,
                mult, bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo, desc):
    """Compute items (``mc`` rows x ``sg`` strips each) with their epilogue until none is left.

    Items are claimed one at a time from the shared ``counter`` (an atomic fetch-add),
    so threads that run slower (another process on the core) simply take fewer.

    K runs in blocks of ``kc`` groups of 4: a block of one weight strip stays in L1 while
    the item's row tiles sweep it; partial sums wait in ``tiles`` (one 8 x 32 int32 tile
    per row tile and strip) and each tile's epilogue runs right after its last block.
    """
    ns = (n + NR - 1) // NR
    # partial sums of every row tile and strip of an item (K blocks); AMX products
    # finish at once and reuse two tiles
    ntr = (mc + MR - 1) // MR
    ntiles = 2 if isa == _AMX else sg * ntr
    tiles = aligned_i32(ntiles * MR * NR).reshape((ntiles, MR, NR))
    # addresses as int64: uint64 + int64 arithmetic would go through float64 in Numba
    a_base = np.int64(a.ctypes.data)
    b_base = np.int64(data.ctypes.data)
    desc_ptr = np.int64(desc.ctypes.data)
    if isa == _AMX:
        _mk.amx_begin(cfg.ctypes.data)   # tile configuration: once per worker thread
    while True:
        it = _mk.fetch_add(counter)
        if it >= nitems:
            break
        rb = it % nrb
        s0 = (it // nrb) * sg
        s1 = min(ns, s0 + sg)
        r_lo = rb * mc
        r_end = min(m, r_lo + mc)
        if isa == _AMX:
            _amx_item(s0, s1, r_lo, r_end, a_base, lda_a, a_tail, b_base, k4, n, mode,
                      desc_ptr, tiles, col_corr, w_zps, use_rows, row_terms, mult, bias_v, zp_f,
                      lo_f, relu, out_u8, out_f32, out_i32, ldo)
            continue
        for kb in range(0, k4, kc):
            kn = min(kc, k4 - kb)
            last = kb + kn >= k4
            for s in range(s0, s1):
                j0 = s * NR
                ncol = min(NR, n - j0)
                nb = 4 * ncol
                b_off = j0 * k4 * 4 + kb * nb
                for r0 in range(r_lo, r_end, MR):
                    mr = min(MR, r_end - r0)
                    tile = tiles[(s - s0) * ntr + (r0 - r_lo) // MR]
                    a_off = (r0 // MR) * k4 * 4 * MR + 4 * MR * kb   # packed A tile
                    # the VNNI microkernel finishes full strips of symmetric weights in
                    # registers; everything else finishes in the Numba epilogue below
                    fused = last and ncol == NR and isa == 2 and not use_rows
                    tmode = mode if fused else _mk.MODE_TILE
                    if isa == 2:
                        _micro_vnni(mr, a_base + a_off, b_base + b_off, nb, kn,
                                    tile.ctypes.data, kb > 0, tmode, desc_ptr, r0, j0)
                    elif isa == 1:
                        _micro_avx2(mr, a_base + a_off, b_base + b_off, nb, kn,
                                    tile.ctypes.data, kb > 0, tmode, desc_ptr, r0, j0)
                    else:
                        _micro_generic(a, a_off, data, b_off, nb, kn, mr, ncol, tile,
                                       kb > 0)
                    if last and not fused:
                        _epilogue(tile, r0, mr, j0, ncol, mode, col_corr, w_zps, use_rows,
                                  row_terms, mult, bias_v, zp_f, lo_f, relu, out_u8, out_f32,
                                  out_i32, ldo)
    if isa == _AMX:
        _mk.amx_end()


@kernel
def _pad_rows(a, r0, r1, k, lda, out):
    """Copy rows ``r0 .. r1-1`` of ``a`` (row length ``k``) to ``out`` at row stride ``lda``,
    zero-filling each row's last ``lda - k`` bytes."""
    # element loops over row views (plain range indices: no negative-index checks, so
    # LLVM emits vector copies); slice assignment would first check the two arrays for
    # overlap and copy through a temporary
    if lda == k:   # only re-aligned: one run
        dst = out[r0 * k:r1 * k]
        src = a[r0 * k:r1 * k]
        for j in range(dst.size):
            dst[j] = src[j]
        return
    for i in range(r0, r1):
        dst = out[i * lda:(i + 1) * lda]
        src = a[i * k:(i + 1) * k]
        for j in range(k):
            dst[j] = src[j]
        for j in range(k, lda):
            dst[j] = 0


@kernel(parallel=True)
def _pad_rows_parallel(a, m, k, lda, nchunks, out):
    for c in prange(nchunks):
        _pad_rows(a, c * m // nchunks, (c + 1) * m // nchunks, k, lda, out)


@kernel
def _amx_config(cfg):
    """The 64-byte AMX tile configuration: palette 1, tiles 0-7 of 16 rows x 64 bytes."""
    cfg[0] = 1
    for t in range(8):
        cfg[16 + 2 * t] = 64      # bytes per row (uint16, little endian)
        cfg[48 + t] = 16          # rows


@kernel
def _amx_item(s0, s1, r_lo, r_end, a_base, lda_a, a_tail, b_base, k4, n, mode, desc_ptr,
              tiles, col_corr, w_zps, use_rows, row_terms, mult, bias_v, zp_f, lo_f, relu, out_u8,
              out_f32, out_i32, ldo):
    """One item on AMX: 16-row x 32-column tile products over all of K, then epilogues.

    ``a`` here is row-major with row stride ``lda_a`` (K zero-padded to whole 64-k tile
    steps) and holds the rows up to the last multiple of 16; the rows after them (fewer
    than 16) are read from the zero-padded 16-row copy ``a_tail``. Each product's sums
    land in the first two 8 x 32 tiles of ``tiles``. Full uint8 strips (symmetric
    weights) finish in one 16-row epilogue call (``epi_u8_rows``); other modes in the
    VNNI microkernel's fused epilogue per 8-row part (``k4 = 0``: load, correct, store),
    and narrow last strips or weight zero points in the Numba epilogue.
    """
    kch = (k4 + _mk.AMX_KG - 1) // _mk.AMX_KG
    c_base = np.int64(tiles.ctypes.data)
    orow = np.empty(16, np.int64)
    orow_ptr = np.int64(orow.ctypes.data)
    tail_ptr = np.int64(a_tail.ctypes.data)
    for s in range(s0, s1):
        j0 = s * NR
        ncol = min(NR, n - j0)
        nb = 4 * ncol
        b_ptr = b_base + j0 * k4 * 4
        for r16 in range(r_lo, r_end, 16):
            # 16-row products: two of them beat one 32-row product (1.05-1.3x measured
            # on 2 cores, M = 32..512), and small M wastes no products on zero rows
            a_ptr = a_base + r16 * lda_a if r16 + 16 <= r_end else tail_ptr
            # every product reuses the first two scratch tiles: they stay in L1 (one
            # slot per tile of the item, 64 KiB, overflowed it: 4-6% slower)
            _mk.amx16(a_ptr, lda_a, b_ptr, nb, kch, c_base)
            if ncol == NR and not use_rows and mode == _mk.MODE_U8:
                # one epilogue call for the 16 rows (the rows past M: none)
                for r in range(16):
                    orow[r] = r16 + r if r16 + r < r_end else -1
                _mk.epi_u8_rows(c_base, orow_ptr, 16, j0, desc_ptr)
                continue
            for sub in range(2):
                r0 = r16 + MR * sub
                if r0 >= r_end:
                    break
                mr = min(MR, r_end - r0)
                tile = tiles[sub]
                if ncol == NR and not use_rows:
                    _micro_vnni(mr, 0, 0, 0, 0, tile.ctypes.data, True, mode, desc_ptr, r0, j0)
                else:
                    _epilogue(tile, r0, mr, j0, ncol, mode, col_corr, w_zps, use_rows,
                              row_terms, mult, bias_v, zp_f, lo_f, relu, out_u8, out_f32,
                              out_i32, ldo)


@kernel(inline="always")
def _epilogue(tile, r0, mr, j0, ncol, mode, col_corr, w_zps, use_rows, row_terms, mult,
              bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo):
    """Zero-point corrections and the mode's output rule for one finished tile."""
    for r in range(mr):
        i = r0 + r
        rt = row_terms[i] if use_rows else np.int64(0)
        o = i * ldo + j0
        # slices keep the epilogue loops simple enough for LLVM to vectorise
        sr = tile[r, :ncol]
        cc = col_corr[j0:j0 + ncol]
        if mode == 1:
            _epi_u8(sr, cc, w_zps[j0:j0 + ncol], rt, use_rows, bias_v[j0:j0 + ncol],
                    mult[j0:j0 + ncol], zp_f, lo_f, out_u8[o:o + ncol])
        elif mode == 2:
            _epi_f32(sr, cc, w_zps[j0:j0 + ncol], rt, use_rows, bias_v[j0:j0 + ncol],
                     mult[j0:j0 + ncol], relu, out_f32[o:o + ncol])
        else:
            _epi_i32(sr, cc, w_zps[j0:j0 + ncol], rt, use_rows, out_i32[o:o + ncol])


@kernel(inline="always")
def _epi_u8(sr, cc, wz, rt, use_rows, bias_s, mult, zp_f, lo_f, out):
    top = np.float32(255.0) - zp_f
    bot = lo_f - zp_f
    zp = np.int32(zp_f)
    if use_rows:
        for c in range(out.size):
            acc = _acc_value(sr[c], cc[c], wz[c], rt)
            out[c] = u8_code((np.float32(acc) + bias_s[c]) * mult[c], top, bot, zp)
    else:
        for c in range(out.size):
            acc = np.int32(np.int64(sr[c]) - np.int64(cc[c]))
            out[c] = u8_code((np.float32(acc) + bias_s[c]) * mult[c], top, bot, zp)


@kernel(inline="always")
def _epi_f32(sr, cc, wz, rt, use_rows, bias_f, mult, relu, out):
    zero_f = np.float32(0.0)
    for c in range(out.size):
        if use_rows:
            acc = _acc_value(sr[c], cc[c], wz[c], rt)
        else:
            acc = np.int32(np.int64(sr[c]) - np.int64(cc[c]))
        v = fma32(np.float32(acc), mult[c], bias_f[c])
        if relu:
            v = v if v > zero_f else zero_f
        out[c] = v


@kernel(inline="always")
def _epi_i32(sr, cc, wz, rt, use_rows, out):
    for c in range(out.size):
        if use_rows:
            out[c] = _acc_value(sr[c], cc[c], wz[c], rt)
        else:
            out[c] = np.int32(np.int64(sr[c]) - np.int64(cc[c]))


@kernel(parallel=True)
def _gemm_parallel(nchunks, nitems, isa, a, lda_a, cfg, a_tail, k4, kc, data, n, m, mc, sg,
                   nrb, mode, col_corr, w_zps, use_rows, row_terms,
                   mult, bias_v, zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo, desc):
    # one worker per thread
    counter = np.zeros(1, np.int64)
    # Few rows: the weights are the traffic. A fixed share of strips per thread keeps each
    # thread's strips in its own L2 from one call to the next (1.0-1.2x measured at
    # M <= 16); more rows: the shared counter balances threads slowed by other work.
    static = m < _STATIC_M
    per = (nitems + nchunks - 1) // nchunks
    for c in prange(nchunks):
        cnt = counter
        lim = nitems
        if static:
            cnt = np.full(1, c * per, np.int64)
            lim = min(nitems, (c + 1) * per)
        _gemm_items(cnt, lim, isa, a, lda_a, cfg, a_tail, k4, kc, data, n, m, mc, sg,
                    nrb, mode, col_corr, w_zps, use_rows, row_terms, mult, bias_v, zp_f, lo_f,
                    relu, out_u8, out_f32, out_i32, ldo, desc)


# Blocking, chosen by round-robin timing of the alternatives on the 2-core development
# machine (differences of 5-10%; the machine's own speed varies more than that over time).
_KC = 128        # K block (groups of 4) for K > 4 * _KC_MAX: 512 k x 32 columns = 16 KiB
_KC_MAX = 128    # up to K = 512 a whole strip (16 KiB) stays in L1: no K blocking
_MC = 128        # rows per item (16 row tiles share each weight block)
_SG = 4          # strips per item


def _plan(m, k4, n, threads, amx=False):
    """Return ``(mc, sg, nrb, nsg, kc)``: item rows, strips per item, item grid, K block.

    With ``amx``, items hold whole 16-row tiles and K is not blocked (the tiles
    accumulate over all of K in registers).

    Strip groups are a multiple of ``threads`` so every thread gets the same number of
    whole groups (measured on the 2-core development machine, single-core GOPS: see the
    module docstring).
    """
    ns = -(-n // NR)
    step = 16 if amx else MR
    mc = min(-(-m // step) * step, _MC)
    nrb = -(-m // mc)
    kc = k4 if (amx or k4 <= _KC_MAX) else _KC
    nsg = -(-ns // _SG)
    if threads > 1 and ns >= threads:
        nsg = -(-nsg // threads) * threads
    nsg = min(nsg, ns)
    sg = -(-ns // nsg)
    nsg = -(-ns // sg)
    return mc, sg, nrb, nsg, kc


# dtype objects: comparing an array's dtype with these is several times faster than with
# the scalar types (this runs on every call)
_DT_U8, _DT_I32, _DT_F32 = np.dtype(np.uint8), np.dtype(np.int32), np.dtype(np.float32)
_DUMMY = {np.uint8: np.zeros(1, np.uint8), np.float32: np.zeros(1, np.float32),
          np.int32: np.zeros(1, np.int32)}


def _flat_out(out, m, n, dtype, name):
    """A 1-D unit-stride view starting at ``out[0, 0]`` and the row stride, or a new array."""
    if out is None:
        # large outputs start on a cache line (the next layer's tile loads read them in
        # place); re-aligning a small one there costs less than aligning it here
        buf = aligned_empty((m, n), dtype) if m * n >= _ALIGN_OUT else np.empty((m, n), dtype)
        return buf, buf.reshape(-1), n
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != (m, n):
        raise ValueError(f"{name}: out must be a {np.dtype(dtype).name} array of shape "
                         f"({m}, {n}); got {getattr(out, 'dtype', type(out))} "
                         f"{getattr(out, 'shape', '')}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: out must be writeable")
    if out.flags.c_contiguous:
        return out, out.reshape(-1), n
    isz = out.itemsize
    if out.strides[1] != isz or out.strides[0] % isz or out.strides[0] < n * isz:
        raise ValueError(f"{name}: out must have unit column stride and rows at least "
                         f"{n} elements apart")
    ldo = out.strides[0] // isz
    flat = np.lib.stride_tricks.as_strided(out, shape=((m - 1) * ldo + n,), strides=(isz,))
    return out, flat, ldo


def _as_rows(x, k, name, dtype):
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype != dtype:
        raise TypeError(f"{name}: x must be {np.dtype(dtype).name}; got {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != k:
        raise ValueError(f"{name}: x must have last dimension K={k} (the weight's); "
                         f"got shape {x.shape}")
    if x.ndim == 2 and x.flags.c_contiguous:
        return x, x.shape[:-1]
    return np.ascontiguousarray(x.reshape(-1, k)), x.shape[:-1]


@kernel
def epilogue_arrays(mode, n, col_sums, x_zp, ws32, per_channel, x_scale, out_scale, bias,
                    has_bias):
    """``(mult, bias', col_corr)`` of the output rule ``mode`` for N columns (NUMERICS)."""
    mult = np.empty(n, np.float32)
    bias_v = np.empty(n, np.float32)
    if mode == _mk.MODE_U8:
        _requant_params(x_scale, ws32, per_channel, bias, has_bias, out_scale, mult, bias_v)
    elif mode == _mk.MODE_F32:
        _dynamic_params(x_scale, ws32, bias, has_bias, mult, bias_v)
    col_corr = np.empty(n, np.int32)
    _col_corrections(col_sums, x_zp, col_corr)
    return mult, bias_v, col_corr


@kernel
def epilogue_descriptor(col_corr, bias_v, mult, out_addr, ldo, relu, zp_f, lo_f):
    """The int64 descriptor the microkernels' fused epilogue reads (addresses and scalars).

    The arrays must stay alive while kernels use the descriptor: pass them along too.
    """
    fl = np.empty(2, np.float32)
    fl[0] = zp_f
    fl[1] = lo_f
    bits = fl.view(np.int32)
    desc = np.empty(_mk.DESC_SIZE, np.int64)
    desc[_mk.DESC_COL_CORR] = col_corr.ctypes.data
    desc[_mk.DESC_BIAS] = bias_v.ctypes.data
    desc[_mk.DESC_MULT] = mult.ctypes.data
    desc[_mk.DESC_OUT] = out_addr
    desc[_mk.DESC_LDO] = ldo
    desc[_mk.DESC_RELU] = 1 if relu else 0
    desc[_mk.DESC_ZP_BITS] = bits[0]
    desc[_mk.DESC_LO_BITS] = bits[1]
    return desc


@kernel
def _launch(isa, nchunks, a, k, k4, kc, data, n, m, mc, sg, nrb, nsg, mode, x_zp, col_sums,
            w_zps, any_zp, ws32, per_channel, x_scale, out_scale, bias, has_bias, out_zp,
            relu, out_u8, out_f32, out_i32, ldo):
    """Epilogue parameters, zero-point corrections, then the serial or parallel driver."""
    mult, bias_v, col_corr = epilogue_arrays(mode, n, col_sums, x_zp, ws32, per_channel,
                                             x_scale, out_scale, bias, has_bias)
    rows = np.empty(m if any_zp else 1, np.int64)
    if any_zp:
        _row_terms(a, m, k, k, x_zp, rows)
    cfg = np.zeros(64, np.uint8)
    a_tail = np.zeros(1, np.uint8)
    if isa == _AMX:
        # row-major with K zero-padded to whole 64-k steps: the rows as given when K is a
        # multiple of 64 (and aligned), else a padded copy; the rows after the last multiple
        # of 16 from a small zero-padded copy
        lda_a = (k4 + _mk.AMX_KG - 1) // _mk.AMX_KG * 4 * _mk.AMX_KG
        m_full = m // 16 * 16
        if lda_a == k and is_aligned(a):
            ap = a
        else:
            # tile rows must not straddle cache lines (see _align): a padded, aligned copy
            ap = aligned_u8(m_full * lda_a)
            if nchunks > 1 and m * k >= _PARALLEL_PACK:
                _pad_rows_parallel(a, m_full, k, lda_a, nchunks, ap)
            else:
                _pad_rows(a, 0, m_full, k, lda_a, ap)
        # passed down as an array (not an address) so that it outlives the kernels
        a_tail = aligned_u8(16 * lda_a)
        a_tail[:] = 0
        _pad_rows(a[m_full * k:], 0, m - m_full, k, lda_a, a_tail)
        _amx_config(cfg)
    else:
        lda_a = 4 * MR
        ntiles = (m + MR - 1) // MR
        ap = np.empty(ntiles * k4 * 4 * MR, np.uint8)
        if nchunks > 1 and m * k >= _PARALLEL_PACK:   # a second parallel region pays off
            _pack_a_parallel(a, m, k, k4, ntiles, nchunks, ap)
        else:
            _pack_a(a, m, k, k4, 0, ntiles, ap)
    zp_f = np.float32(out_zp)
    lo_f = zp_f if relu else np.float32(0.0)
    if mode == _mk.MODE_U8:
        out_addr = out_u8.ctypes.data
    elif mode == _mk.MODE_F32:
        out_addr = out_f32.ctypes.data
    else:
        out_addr = out_i32.ctypes.data
    desc = epilogue_descriptor(col_corr, bias_v, mult, out_addr, ldo, relu, zp_f, lo_f)
    if nchunks > 1:
        _gemm_parallel(nchunks, nrb * nsg, isa, ap, lda_a, cfg, a_tail, k4, kc, data, n,
                       m, mc, sg, nrb, mode, col_corr, w_zps, any_zp, rows, mult, bias_v, zp_f,
                       lo_f, relu, out_u8, out_f32, out_i32, ldo, desc)
    else:
        _gemm_items(np.zeros(1, np.int64), nrb * nsg, isa, ap, lda_a, cfg, a_tail, k4,
                    kc, data, n, m, mc, sg, nrb, mode, col_corr, w_zps, any_zp, rows, mult, bias_v,
                    zp_f, lo_f, relu, out_u8, out_f32, out_i32, ldo, desc)


@functools.lru_cache(maxsize=4096)
def _schedule(m, k, n, threads, variant):
    """Kernel variant, parallelism and blocking of one problem (cached: it runs per call)."""
    isa = _ISA_CODE[variant]
    if isa == _AMX and (m < _AMX_MIN_M or k < _AMX_MIN_K):
        # a 16-row tile would be mostly padding; with few 64-k steps per tile the tile
        # stores and epilogue outweigh AMX's faster products
        isa = _ISA_CODE["avx512_vnni"]
    mc, sg, nrb, nsg, kc = _plan(m, (k + 3) >> 2, n, threads, amx=isa == _AMX)
    # Streaming the weight (M = 1 on VNNI, M <= 16 on AMX: little arithmetic per weight
    # byte) when it fits one core's L2: one thread keeps it hot there, a split re-reads
    # it from the other core's cache (threads are not pinned). Measured 1.1-1.3x.
    streaming = m <= (16 if isa == _AMX else 1) and n * k <= _L2_WEIGHT
    par = threads > 1 and nrb * nsg > 1 and m * n * k >= _SERIAL_MACS and not streaming
    nchunks = min(threads, nrb * nsg) if par else 1
    return isa, par, nchunks, mc, sg, nrb, nsg, kc


def _run(mode, a, x_zp, packed, x_scale, out_scale, bias, has_bias, out_zp, relu, out_flat,
         ldo):
    """Shared launch: pad K if needed, plan, one call into the jitted launcher."""
    n, k = packed.n, packed.k
    m = a.shape[0]
    if m == 0:
        return
    k4 = (k + 3) >> 2
    isa, par, nchunks, mc, sg, nrb, nsg, kc = _schedule(m, k, n, get_num_threads(),
                                                         _isa.active())
    args = (isa, nchunks, a.reshape(-1), k, k4, kc, packed.data,
            n, m, mc, sg, nrb, nsg, mode, x_zp, packed.col_sums, packed.zero_points,
            packed.any_zero_point, packed.scales_f32, packed.per_channel, x_scale, out_scale,
            bias, has_bias, out_zp, relu,
            out_flat if mode == _MODE_U8 else _DUMMY[np.uint8],
            out_flat if mode == _MODE_F32 else _DUMMY[np.float32],
            out_flat if mode == _MODE_I32 else _DUMMY[np.int32], ldo)
    if par:
        with parallel_region():
            _launch(*args)
    else:
        _launch(*args)


def _check_packed(packed, name):
    if not isinstance(packed, PackedLinearWeight):
        raise TypeError(f"{name}: packed must be a PackedLinearWeight from "
                        f"pack_linear_weight; got {type(packed).__name__}")


def _check_bias(bias, n, name):
    if bias is None:
        return _DUMMY[np.float32], False
    b = bias
    if type(b) is not np.ndarray or b.dtype != _DT_F32 or not b.flags.c_contiguous:
        b = np.ascontiguousarray(bias, dtype=np.float32)
    if b.shape != (n,):
        raise ValueError(f"{name}: bias must have shape ({n},); got {np.shape(bias)}")
    return b, True


def qlinear_int32(x_q, x_zero_point, packed, out=None):
    """Exact int32 accumulators ``sum_k (x - x_zp) * (w - w_zp[j])``.

    Parameters
    ----------
    x_q : numpy.ndarray
        uint8 codes, shape (..., K).
    x_zero_point : int
        Activation zero point in [0, 255].
    packed : PackedLinearWeight
    out : numpy.ndarray, optional
        int32 (M, N) with unit column stride (2-D ``x_q`` only).

    Returns
    -------
    numpy.ndarray
        int32 (..., N). Values wrap modulo 2**32 as fbgemm's do (only possible when the
        true sum exceeds int32, which needs large zero-point offsets and K near 65536).
    """
    _check_packed(packed, "qlinear_int32")
    a, lead = _as_rows(x_q, packed.k, "qlinear_int32", _DT_U8)
    m = a.shape[0]
    res, flat, ldo = _flat_out(out, m, packed.n, _DT_I32, "qlinear_int32")
    _run(_MODE_I32, a, int(x_zero_point), packed, 1.0, 1.0, _DUMMY[np.float32], False, 0,
         False, flat, ldo)
    return res if out is not None else res.reshape(lead + (packed.n,))


def qlinear(x_q, x_scale, x_zero_point, packed, bias, out_scale, out_zero_point,
            relu=False, out=None):
    """Static quantized linear: uint8 in, uint8 out (torch's ``quantized::linear``).

    Parameters
    ----------
    x_q : numpy.ndarray
        uint8 activation codes, shape (..., K).
    x_scale, x_zero_point : float, int
        Activation qparams (quint8, zero point in [0, 255]).
    packed : PackedLinearWeight
    bias : numpy.ndarray or None
        float32 (N,), added before requantization (never quantized, as on x86).
    out_scale, out_zero_point : float, int
        Output qparams.
    relu : bool
        Clamp the result at ``out_zero_point`` (LinearReLU).
    out : numpy.ndarray, optional
        uint8 (M, N) with unit column stride (rows may be strided) for 2-D ``x_q``.

    Returns
    -------
    numpy.ndarray
        uint8 (..., N): ``clamp(rint(f32(f32(acc) + bias') * mult[j]) + out_zp)``.
    """
    _check_packed(packed, "qlinear")
    a, lead = _as_rows(x_q, packed.k, "qlinear", _DT_U8)
    m, n = a.shape[0], packed.n
    b, has_b = _check_bias(bias, n, "qlinear")
    res, flat, ldo = _flat_out(out, m, n, _DT_U8, "qlinear")
    _run(_MODE_U8, a, int(x_zero_point), packed, float(x_scale), float(out_scale), b, has_b,
         int(out_zero_point), bool(relu), flat, ldo)
    return res if out is not None else res.reshape(lead + (n,))


def requantize(acc, x_scale, w_scales, per_channel, bias, out_scale, out_zero_point,
               relu=False, out=None):
    """Requantize int32 accumulators (M, N) to uint8 with the static epilogue.

    The same rule as :func:`qlinear` for accumulators computed elsewhere (transposed
    convolution, depthwise convolution). ``w_scales`` holds N float scales (the float32
    rounding is done here); ``per_channel`` selects the bias rule.
    """
    acc = np.ascontiguousarray(acc, dtype=np.int32)
    m, n = acc.shape
    ws = np.broadcast_to(np.asarray(w_scales, np.float64), (n,)).astype(np.float32)
    b, has_b = _check_bias(bias, n, "requantize")
    mult = np.empty(n, np.float32)
    bias_s = np.empty(n, np.float32)
    _requant_params(float(x_scale), ws, bool(per_channel), b, has_b, float(out_scale),
                    mult, bias_s)
    res, flat, ldo = _flat_out(out, m, n, _DT_U8, "requantize")
    zp = int(out_zero_point)
    _requantize_rows(acc, mult, bias_s, np.float32(zp), np.float32(zp if relu else 0),
                     flat, ldo)
    return res


@kernel
def _requantize_rows(acc, mult, bias_s, zp_f, lo_f, out, ldo):
    top = np.float32(255.0) - zp_f
    bot = lo_f - zp_f
    zp = np.int32(zp_f)
    m, n = acc.shape
    for i in range(m):
        for j in range(n):
            out[i * ldo + j] = u8_code((np.float32(acc[i, j]) + bias_s[j]) * mult[j], top,
                                       bot, zp)


@kernel
def _dynamic_quantize(x, qmax, nchunks, out):
    """min/max of ``x``, fbgemm's qparams over ``[0, qmax]``, quint8 codes into ``out``.

    One compiled call for the three steps (they cost more in Python dispatch than in
    work for small inputs). Returns ``(scale, zero_point, ok)``; ``ok`` is False for a
    NaN or infinite range (then ``out`` is untouched).
    """
    xi = x.view(np.int32)
    n = x.size
    if n < PARALLEL_MIN:
        mn, mx = _minmax_serial(xi)
    else:
        mins, maxs = _minmax_parallel(xi, nchunks)
        mn, mx = _minmax_serial_merge(mins, maxs)
    lo = np.float64(mn)
    hi = np.float64(mx)
    if not (lo <= hi and np.isfinite(lo) and np.isfinite(hi)):
        return 1.0, np.int64(0), False
    scale, zp = dynamic_qparams_core(lo, hi, 0, qmax)
    if zp < 0 or zp > 255:
        return scale, zp, False
    if n < PARALLEL_MIN:
        _qpt8(x, scale, zp, 0, 255, out)
    else:
        _qpt8_par(x, scale, zp, 0, 255, out)
    return scale, zp, True


def qlinear_dynamic(x, packed, bias, relu=False, reduce_range=True, out=None):
    """Dynamic quantized linear: float32 in, float32 out (torch's ``linear_dynamic``).

    The input is quantized to quint8 per tensor with qparams from its min/max (extended
    to 0) by fbgemm's ``ChooseQuantizationParams`` over ``[0, 127]`` (``reduce_range``)
    or ``[0, 255]``; then ``out = fma(f32(acc), f32(f32(x_scale) * w_scale[j]), bias[j])``,
    and ``max(out, 0)`` with ``relu``.

    Parameters
    ----------
    x : numpy.ndarray
        float32, shape (..., K), at least one row.
    packed : PackedLinearWeight
    bias : numpy.ndarray or None
        float32 (N,).
    relu : bool
    reduce_range : bool
    out : numpy.ndarray, optional
        float32 (M, N) with unit column stride, for 2-D ``x``.

    Returns
    -------
    numpy.ndarray
        float32 (..., N).
    """
    _check_packed(packed, "qlinear_dynamic")
    xr, lead = _as_rows(x, packed.k, "qlinear_dynamic", _DT_F32)
    m, n = xr.shape[0], packed.n
    b, has_b = _check_bias(bias, n, "qlinear_dynamic")
    res, flat, ldo = _flat_out(out, m, n, _DT_F32, "qlinear_dynamic")
    if m == 0:
        return res if out is not None else res.reshape(lead + (n,))
    n_el = xr.size
    a = np.empty(xr.shape, np.uint8)
    nchunks = max(1, min(get_num_threads() * 4, n_el // (PARALLEL_MIN // 4)))
    args = (xr.reshape(-1), 127 if reduce_range else 255, nchunks, a.reshape(-1))
    if n_el >= PARALLEL_MIN:
        with parallel_region():
            scale, zp, ok = _dynamic_quantize(*args)
    else:
        scale, zp, ok = _dynamic_quantize(*args)
    if not ok:
        raise ValueError("qlinear_dynamic: x must be finite (its range gives no valid "
                         "quantization parameters)")
    _run(_MODE_F32, a, int(zp), packed, float(scale), 1.0, b, has_b, 0, bool(relu), flat, ldo)
    return res if out is not None else res.reshape(lead + (n,))
