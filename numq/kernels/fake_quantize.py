"""Fake-quantization kernels (QAT), bit-exact with PyTorch 2.13's x86 CPU kernels.

Contract shared by every kernel here: arrays are C-contiguous and native-endian;
``x`` / ``dy`` are float32 or float64 (float16 callers widen to float32 first, which
reproduces torch's ``Half * float -> float`` arithmetic exactly, and narrow the result);
``out`` / ``dx`` / ``mask`` are preallocated; scalars are already validated
(``scale > 0`` and finite, ``quant_min <= zero_point <= quant_max`` for integer zero
points). Per-tensor kernels take flat arrays; per-channel kernels take 3-d arrays
``(outer, C, inner)``, the tensor reshaped around its channel axis. Public wrappers run
serially below :data:`PARALLEL_MIN` elements and through a ``prange`` driver above.

Rounding rules (see ``shared/NUMERICS.md``, "Fake quantize"), ``inv = 1.0f / f32(scale)``:

- per tensor: ``qf = zp + rint(x * inv)`` in the input's float type, clamped with
  ``fmin/fmax`` (NaN -> quant_min, +inf -> quant_max); ``y = f32(f32(q - zp) * scale)``,
  a float32 product even for float64 input, as torch computes it.
- per channel: torch casts the rounded value to int64 before clamping; x86 turns NaN,
  +-inf and anything beyond 2**63 into INT64_MIN, so all of them give quant_min's value
  (unlike per tensor). ``y = (double(q) - zp) * double(scale)`` rounded to the input type.
  Float zero points: ``q = rint(fma(x, inv, zp))``, one float32 rounding (torch's x86
  build contracts ``zp + x * inv`` into an FMA).
- learnable (LSQ) backward: ``xq = rint(fma(x, inv, zp))``; ``xfq - x`` is
  ``fma(f32(q - zp), scale, -x)``; the gradient products are rounded to float32 one by
  one in torch's order. dScale / dZeroPoint are summed in float64 over fixed chunks, so
  the result does not depend on the thread count (torch sums in float32).
"""
import numpy as np
from numba import prange

from .._threads import parallel_region
from ._fma import fma32
from ._jit import kernel

__all__ = [
    "PARALLEL_MIN", "fake_quantize_per_tensor", "fake_quantize_per_channel",
    "fake_quantize_per_tensor_backward", "fake_quantize_per_channel_backward",
    "fake_quantize_learnable_per_tensor_backward",
    "fake_quantize_learnable_per_channel_backward",
]

PARALLEL_MIN = 1 << 16  # below this, thread start-up costs more than it saves
_CHUNK = 1 << 14        # elements per parallel work item
_MAX_PARTIALS = 64      # reduction chunks: a function of n only, never of the thread count
_I64_LO = -9.223372036854775808e18   # -2**63
_I64_HI = 9.223372036854775808e18    # 2**63


def _nchunks(n):
    return (n + _CHUNK - 1) // _CHUNK


def _npartials(n):
    return max(1, min(_MAX_PARTIALS, _nchunks(n)))


# ------------------------------------------------------------------------ helpers

@kernel(inline="always")
def _int64_code(t):
    """float64 value of ``static_cast<int64_t>(t)`` for an integral ``t``, with x86's
    out-of-range result (INT64_MIN, here -inf: only its order matters) for NaN / inf.
    ``+ 0.0`` turns -0.0 into 0.0, as the integer does."""
    return t + 0.0 if (t >= _I64_LO) and (t < _I64_HI) else -np.inf


@kernel(inline="always")
def _pc_code(v, inv, zt, zd, float_zp, wide):
    """Per-channel rounded code of ``v`` as float64 (-inf where torch gets INT64_MIN)."""
    if float_zp:
        if wide:  # float64 input: double arithmetic, then lrintf's float argument
            t = np.float64(np.float32(np.float64(v) * np.float64(inv) + zd))
        else:
            t = np.float64(fma32(np.float32(v), inv, np.float32(zt)))
        return _int64_code(np.rint(t))
    return _int64_code(np.float64(zt + np.rint(v * inv)))


# --------------------------------------------------------------------- per tensor

@kernel
def _pt_fwd(x, out, mask, inv, s, zf, zd, lof, hif, lod, hid):
    has_mask = mask.size > 0
    for i in range(x.size):
        qf = zf + np.rint(x[i] * inv)              # input's float type, as torch
        if has_mask:
            mask[i] = (qf >= lof) & (qf <= hif)
        q = np.float64(qf)
        q = q if q > lod else lod                  # NaN fails the test: NaN -> quant_min
        q = q if q < hid else hid
        out[i] = np.float32(q - zd) * s            # f32(q - zp) * f32(scale), float product


@kernel(parallel=True)
def _pt_fwd_par(x, out, mask, inv, s, zf, zd, lof, hif, lod, hid):
    n = x.size
    has_mask = mask.size > 0
    for k in prange((n + _CHUNK - 1) // _CHUNK):
        lo, hi = k * _CHUNK, min(n, (k + 1) * _CHUNK)
        _pt_fwd(x[lo:hi], out[lo:hi], mask[lo:hi] if has_mask else mask[:0],
                inv, s, zf, zd, lof, hif, lod, hid)


@kernel
def _pt_bwd(dy, x, dx, inv, zf, lof, hif):
    for i in range(x.size):
        qf = zf + np.rint(x[i] * inv)
        inside = (qf >= lof) & (qf <= hif)
        # a product, as torch's dY * mask: NaN / inf gradients stay NaN where masked
        dx[i] = dy[i] * (np.float32(1.0) if inside else np.float32(0.0))


@kernel(parallel=True)
def _pt_bwd_par(dy, x, dx, inv, zf, lof, hif):
    n = x.size
    for k in prange((n + _CHUNK - 1) // _CHUNK):
        lo, hi = k * _CHUNK, min(n, (k + 1) * _CHUNK)
        _pt_bwd(dy[lo:hi], x[lo:hi], dx[lo:hi], inv, zf, lof, hif)


def _pt_scalars(dtype, scale, zero_point, quant_min, quant_max):
    ft = np.dtype(dtype).type
    s = np.float32(scale)
    return (np.float32(1.0) / s, s, ft(zero_point), np.float64(zero_point),
            ft(quant_min), ft(quant_max), np.float64(quant_min), np.float64(quant_max))


def fake_quantize_per_tensor(x, out, mask, scale, zero_point, quant_min, quant_max):
    """Per-tensor fake quantization with an optional mask.

    Parameters
    ----------
    x : ndarray, float32 or float64, flat and contiguous
    out : ndarray, same dtype and size as ``x``
    mask : ndarray of bool, same size as ``x``, or empty for no mask
        True where ``quant_min <= zp + rint(x * inv) <= quant_max``.
    scale : float
        Used as ``f32(scale)``.
    zero_point, quant_min, quant_max : int
        ``quant_min <= zero_point <= quant_max``.
    """
    inv, s, zf, zd, lof, hif, lod, hid = _pt_scalars(x.dtype, scale, zero_point,
                                                     quant_min, quant_max)
    if x.size < PARALLEL_MIN:
        _pt_fwd(x, out, mask, inv, s, zf, zd, lof, hif, lod, hid)
    else:
        with parallel_region():
            _pt_fwd_par(x, out, mask, inv, s, zf, zd, lof, hif, lod, hid)
    return out, mask


def fake_quantize_per_tensor_backward(dy, x, dx, scale, zero_point, quant_min, quant_max):
    """Straight-through gradient ``dx = dy * mask``, the mask recomputed from ``x``.

    ``dy`` and ``dx`` share a float dtype (float32 or float64, not necessarily ``x``'s);
    all three are flat, contiguous and of equal size. Other arguments as
    :func:`fake_quantize_per_tensor`.
    """
    inv, _, zf, _, lof, hif, _, _ = _pt_scalars(x.dtype, scale, zero_point, quant_min,
                                                quant_max)
    if x.size < PARALLEL_MIN:
        _pt_bwd(dy, x, dx, inv, zf, lof, hif)
    else:
        with parallel_region():
            _pt_bwd_par(dy, x, dx, inv, zf, lof, hif)
    return dx


# -------------------------------------------------------------------- per channel
#
# A span [lo, hi) of the flattened (outer, C, inner) tensor is cut into runs: a run is
# one channel's stretch of a row (inner > 1: the channel constants are one-element
# slices, ``per_elem`` False), or, when the channel axis is last (inner == 1), a stretch
# of consecutive channels (constants sliced alongside the data, ``per_elem`` True).
# Either way a run is a loop over slices from 0 (the form LLVM can vectorise).

@kernel
def _pc_fwd_run(x, out, mask, inv, zt, zd, sd, per_elem, float_zp, wide, lod, hid):
    has_mask = mask.size > 0
    for i in range(x.size):
        k = i if per_elem else 0
        q = _pc_code(x[i], inv[k], zt[k], zd[k], float_zp, wide)
        if has_mask:
            mask[i] = (q >= lod) & (q <= hid)
        q = min(max(q, lod), hid)
        out[i] = (q - zd[k]) * sd[k]               # double, rounded on store


@kernel
def _pc_fwd_span(x, out, mask, lo, hi, inner, inv, zt, zd, sd, float_zp, wide, lod, hid):
    C = inv.size
    has_mask = mask.size > 0
    i = lo
    while i < hi:
        r = i // inner
        c0 = r % C
        if inner == 1:
            e = min(hi, i + C - c0)
            c1 = c0 + e - i
        else:
            e = min(hi, (r + 1) * inner)
            c1 = c0 + 1
        _pc_fwd_run(x[i:e], out[i:e], mask[i:e] if has_mask else mask[:0], inv[c0:c1],
                    zt[c0:c1], zd[c0:c1], sd[c0:c1], inner == 1, float_zp, wide, lod, hid)
        i = e


@kernel(parallel=True)
def _pc_fwd_par(x, out, mask, inner, inv, zt, zd, sd, float_zp, wide, lod, hid):
    n = x.size
    for k in prange((n + _CHUNK - 1) // _CHUNK):
        _pc_fwd_span(x, out, mask, k * _CHUNK, min(n, (k + 1) * _CHUNK), inner, inv, zt,
                     zd, sd, float_zp, wide, lod, hid)


@kernel
def _pc_bwd_run(dy, x, dx, inv, zt, zd, per_elem, float_zp, wide, lod, hid):
    for i in range(x.size):
        k = i if per_elem else 0
        q = _pc_code(x[i], inv[k], zt[k], zd[k], float_zp, wide)
        dx[i] = dy[i] * (np.float32(1.0) if (q >= lod) & (q <= hid) else np.float32(0.0))


@kernel
def _pc_bwd_span(dy, x, dx, lo, hi, inner, inv, zt, zd, float_zp, wide, lod, hid):
    C = inv.size
    i = lo
    while i < hi:
        r = i // inner
        c0 = r % C
        if inner == 1:
            e = min(hi, i + C - c0)
            c1 = c0 + e - i
        else:
            e = min(hi, (r + 1) * inner)
            c1 = c0 + 1
        _pc_bwd_run(dy[i:e], x[i:e], dx[i:e], inv[c0:c1], zt[c0:c1], zd[c0:c1], inner == 1,
                    float_zp, wide, lod, hid)
        i = e


@kernel(parallel=True)
def _pc_bwd_par(dy, x, dx, inner, inv, zt, zd, float_zp, wide, lod, hid):
    n = x.size
    for k in prange((n + _CHUNK - 1) // _CHUNK):
        _pc_bwd_span(dy, x, dx, k * _CHUNK, min(n, (k + 1) * _CHUNK), inner, inv, zt, zd,
                     float_zp, wide, lod, hid)


def _pc_params(dtype, scale, zero_point):
    """Per-channel constants: inv (f32), zp in the input's type, zp and scale in double."""
    s = np.ascontiguousarray(scale, dtype=np.float32)
    z = np.asarray(zero_point)
    float_zp = z.dtype.kind == "f"
    if float_zp:
        z = z.astype(np.float32)  # float16 zero points widen exactly; torch computes in float
    return (np.float32(1.0) / s, np.ascontiguousarray(z, dtype=dtype),
            np.ascontiguousarray(z, dtype=np.float64), s.astype(np.float64), float_zp)


def fake_quantize_per_channel(x, out, mask, scale, zero_point, quant_min, quant_max):
    """Per-channel fake quantization with an optional mask.

    Parameters
    ----------
    x : ndarray, float32 or float64, shape (outer, C, inner), C-contiguous
    out : ndarray, same dtype and shape as ``x``
    mask : ndarray of bool, same shape as ``x``, or empty for no mask
    scale : ndarray, shape (C,)
        Used as float32.
    zero_point : ndarray, shape (C,)
        Integer (within ``[quant_min, quant_max]``) or float32 / float16. Float zero
        points round as ``rint(fma(x, inv, zp))`` (float64 input: ``f32(x * inv + zp)``
        in double; torch fuses that double multiply-add, which can differ only when the
        double sum sits within one double ulp of a float32 rounding boundary).
    quant_min, quant_max : int
    """
    inv, zt, zd, sd, float_zp = _pc_params(x.dtype, scale, zero_point)
    inner = np.int64(x.shape[2])
    xf, of = x.reshape(-1), out.reshape(-1)
    mf = mask.reshape(-1)
    args = (inv, zt, zd, sd, float_zp, x.dtype == np.float64,
            np.float64(quant_min), np.float64(quant_max))
    if x.size < PARALLEL_MIN:
        _pc_fwd_span(xf, of, mf, np.int64(0), np.int64(x.size), inner, *args)
    else:
        with parallel_region():
            _pc_fwd_par(xf, of, mf, inner, *args)
    return out, mask


def fake_quantize_per_channel_backward(dy, x, dx, scale, zero_point, quant_min, quant_max):
    """Straight-through gradient ``dx = dy * mask`` for per-channel fake quantization.

    ``dy``, ``x``, ``dx`` have shape (outer, C, inner); ``dy`` and ``dx`` share a float
    dtype. Other arguments as :func:`fake_quantize_per_channel`.
    """
    inv, zt, zd, _, float_zp = _pc_params(x.dtype, scale, zero_point)
    inner = np.int64(x.shape[2])
    args = (inv, zt, zd, float_zp, x.dtype == np.float64,
            np.float64(quant_min), np.float64(quant_max))
    flat = (dy.reshape(-1), x.reshape(-1), dx.reshape(-1))
    if x.size < PARALLEL_MIN:
        _pc_bwd_span(*flat, np.int64(0), np.int64(x.size), inner, *args)
    else:
        with parallel_region():
            _pc_bwd_par(*flat, inner, *args)
    return dx


# ----------------------------------------------------------------- learnable (LSQ)

@kernel(inline="always")
def _lsq_elem(v, g, s, inv, z, zd, small, big, lod, hid, gf):
    """(dx, dscale, dzero_point) of one float32 element.

    ``z`` is the zero point as float32; ``zd`` is NaN for per-channel (torch forms
    ``f32(q) - zp`` in float) or the integer zero point as float64 for per-tensor (torch
    forms ``f32(q - zp)`` in int64).
    """
    q = _int64_code(np.float64(np.rint(fma32(v, inv, z))))
    if (q >= lod) & (q <= hid):
        a = np.float32(q) - z if zd != zd else np.float32(q - zd)
        d = fma32(a, s, -v)                        # xfq - x with one rounding, as torch
        return g * np.float32(1.0), np.float32(np.float32(g * d) * inv) * gf, np.float32(0.0)
    b = small if q < lod else big
    return g * np.float32(0.0), np.float32(g * b) * gf, np.float32(-g * s) * gf


@kernel
def _lsq_pt(dy, x, dx, s, inv, z, zd, small, big, lod, hid, gf):
    ds = np.float64(0.0)  # np.float64, not 0.0: keeps the interpreter (NUMBA_DISABLE_JIT)
    dz = np.float64(0.0)  # from summing in float32 under NumPy 2's promotion rules
    for i in range(x.size):
        r = _lsq_elem(x[i], dy[i], s, inv, z, zd, small, big, lod, hid, gf)
        dx[i] = r[0]
        ds += r[1]
        dz += r[2]
    return ds, dz


@kernel(parallel=True)
def _lsq_pt_par(dy, x, dx, s, inv, z, zd, small, big, lod, hid, gf, partial):
    n = x.size
    m = partial.shape[0]
    for k in prange(m):
        lo, hi = k * n // m, (k + 1) * n // m
        r = _lsq_pt(dy[lo:hi], x[lo:hi], dx[lo:hi], s, inv, z, zd, small, big, lod, hid, gf)
        partial[k, 0] = r[0]
        partial[k, 1] = r[1]


def fake_quantize_learnable_per_tensor_backward(dy, x, dx, scale, zero_point, quant_min,
                                                quant_max, grad_factor):
    """LSQ gradients of per-tensor fake quantization.

    Parameters
    ----------
    dy, x, dx : ndarray, float32, flat, contiguous, equal sizes
        ``dx`` receives ``dy`` where ``rint(fma(x, inv, zp))`` is in range, else 0.
    scale : float
        Used as float32.
    zero_point : int
        The backward's zero point, already ``trunc(clamp(f32(zp) + 0.5))`` as torch.
    quant_min, quant_max : int
    grad_factor : float
        Used as float32.

    Returns
    -------
    dscale, dzero_point : numpy.float32
        Sums over all elements of ``dy * (xfq - x) / scale`` (in range) or
        ``dy * (bound - zp)`` (clamped), and of ``-dy * scale`` (clamped only), each
        element times ``grad_factor``.
    """
    s = np.float32(scale)
    args = (s, np.float32(1.0) / s, np.float32(zero_point), np.float64(zero_point),
            np.float32(quant_min - zero_point), np.float32(quant_max - zero_point),
            np.float64(quant_min), np.float64(quant_max), np.float32(grad_factor))
    n = x.size
    partial = np.zeros((_npartials(n), 2))
    if n < PARALLEL_MIN:
        for k in range(partial.shape[0]):  # same chunks as the parallel driver
            lo, hi = k * n // partial.shape[0], (k + 1) * n // partial.shape[0]
            partial[k] = _lsq_pt(dy[lo:hi], x[lo:hi], dx[lo:hi], *args)
    else:
        with parallel_region():
            _lsq_pt_par(dy, x, dx, *args, partial)
    ds, dz = partial.sum(axis=0)
    return np.float32(ds), np.float32(dz)


@kernel
def _lsq_pc_run(dy, x, dx, s, inv, z, per_elem, lod, hid, gf, ds, dz):
    a_sum = np.float64(0.0)  # see _lsq_pt
    b_sum = np.float64(0.0)
    for i in range(x.size):
        k = i if per_elem else 0
        zk = z[k]
        small = np.float32(lod) - zk               # f32(quant_min) - zp, as torch
        big = np.float32(hid) - zk
        r = _lsq_elem(x[i], dy[i], s[k], inv[k], zk, np.nan, small, big, lod, hid, gf)
        dx[i] = r[0]
        if per_elem:
            ds[i] += r[1]
            dz[i] += r[2]
        else:
            a_sum += r[1]
            b_sum += r[2]
    if not per_elem:
        ds[0] += a_sum
        dz[0] += b_sum


@kernel
def _lsq_pc_span(dy, x, dx, lo, hi, inner, s, inv, z, lod, hid, gf, ds, dz):
    C = s.size
    i = lo
    while i < hi:
        r = i // inner
        c0 = r % C
        if inner == 1:
            e = min(hi, i + C - c0)
            c1 = c0 + e - i
        else:
            e = min(hi, (r + 1) * inner)
            c1 = c0 + 1
        _lsq_pc_run(dy[i:e], x[i:e], dx[i:e], s[c0:c1], inv[c0:c1], z[c0:c1], inner == 1,
                    lod, hid, gf, ds[c0:c1], dz[c0:c1])
        i = e


@kernel(parallel=True)
def _lsq_pc_par(dy, x, dx, inner, s, inv, z, lod, hid, gf, ds_part, dz_part):
    n = x.size
    m = ds_part.shape[0]
    for k in prange(m):
        _lsq_pc_span(dy, x, dx, k * n // m, (k + 1) * n // m, inner, s, inv, z, lod, hid,
                     gf, ds_part[k], dz_part[k])


def fake_quantize_learnable_per_channel_backward(dy, x, dx, dscale, dzero_point, scale,
                                                 zero_point, quant_min, quant_max,
                                                 grad_factor):
    """LSQ gradients of per-channel fake quantization.

    Parameters
    ----------
    dy, x, dx : ndarray, float32, shape (outer, C, inner), C-contiguous
    dscale, dzero_point : ndarray, float32, shape (C,)
        Receive the per-channel sums (see
        :func:`fake_quantize_learnable_per_tensor_backward` for the terms).
    scale : ndarray, shape (C,)
        Used as float32.
    zero_point : ndarray, float32, shape (C,)
        Already ``clamp(rint(zp), quant_min, quant_max)`` (integral floats), as torch.
    quant_min, quant_max : int
    grad_factor : float
        Used as float32.
    """
    s = np.ascontiguousarray(scale, dtype=np.float32)
    z = np.ascontiguousarray(zero_point, dtype=np.float32)
    C, inner, n = s.size, np.int64(x.shape[2]), x.size
    flat = (dy.reshape(-1), x.reshape(-1), dx.reshape(-1))
    args = (s, np.float32(1.0) / s, z, np.float64(quant_min), np.float64(quant_max),
            np.float32(grad_factor))
    m = _npartials(n)
    ds_part, dz_part = np.zeros((m, C)), np.zeros((m, C))
    if n < PARALLEL_MIN:
        for k in range(m):  # same chunks as the parallel driver
            _lsq_pc_span(*flat, np.int64(k * n // m), np.int64((k + 1) * n // m), inner,
                         *args, ds_part[k], dz_part[k])
    else:
        with parallel_region():
            _lsq_pc_par(*flat, inner, *args, ds_part, dz_part)
    dscale[...] = ds_part.sum(axis=0)
    dzero_point[...] = dz_part.sum(axis=0)
    return dscale, dzero_point
