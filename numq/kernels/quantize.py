"""Quantize / dequantize kernels (bit-exact with PyTorch 2.13's x86 engine).

Contract shared by every kernel here: arrays are C-contiguous and native-endian, ``x``
is float32, ``out`` is preallocated with the storage dtype, scalars are already
validated. Per-tensor kernels take flat (1-d) arrays; per-channel kernels take 3-d
arrays ``(outer, C, inner)`` (the tensor reshaped around its channel axis). Public
wrappers run the serial kernel below :data:`PARALLEL_MIN` elements and a ``prange``
driver over contiguous chunks above it.

Inner loops run over slices starting at 0 (``x[lo:hi]``), which LLVM vectorises;
``range(lo, hi)`` over the full array does not vectorise here.
"""
import numpy as np
from numba import prange, types
from numba.extending import overload

from .._threads import get_num_threads, parallel_region
from ._fma import fma32
from ._jit import kernel

__all__ = [
    "PARALLEL_MIN", "quantize_per_tensor_f32", "quantize_per_tensor_qint32_f32",
    "quantize_per_tensor_sub_byte_f32", "quantize_per_channel_f32",
    "quantize_per_channel_float_qparams_f32",
    "dequantize_per_tensor", "dequantize_per_channel", "pack_quint4x2", "unpack_quint4x2",
]

PARALLEL_MIN = 1 << 16  # below this, thread start-up costs more than it saves
_INT32_NAN = -(2**31)   # what x86 float->int32 conversion gives for NaN


def _chunks(n):
    # a few chunks per thread balance the load; each chunk >= 16K elements
    return max(1, min(get_num_threads() * 4, n // (PARALLEL_MIN // 4)))


@kernel
def _nchunks(n):
    """Chunks for a flat parallel driver: >= 16K elements each, at most 64.

    Independent of the thread count (so it can be computed inside cached kernels and
    results never depend on it); prange spreads the chunks over the threads.
    """
    return max(1, min(64, n // 16384))


@kernel
def _inv32(scale):
    return np.float32(1.0) / np.float32(scale)


# --------------------------------------------------------------------- per tensor

@kernel
def _qpt8(x, scale, zp, qmin, qmax, out):
    inv = _inv32(scale)
    z = np.float32(zp)
    fmax = np.float32(qmax)
    fmin = np.float32(qmin - 1)
    qlo = np.int32(qmin)
    for i in range(x.size):
        v = fma32(x[i], inv, z)          # one rounding, as torch's vectorised FMA
        v = v if v < fmax else fmax      # NaN fails the test: NaN -> qmax, as torch
        v = v if v > fmin else fmin      # keeps the int conversion in range
        k = np.int32(np.rint(v))         # clamping before rint is exact: bounds are integers
        out[i] = k if k > qlo else qlo


@kernel(parallel=True)
def _qpt8_par(x, scale, zp, qmin, qmax, out):
    n = x.size
    nchunks = _nchunks(n)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(n, (c + 1) * step)
        _qpt8(x[lo:hi], scale, zp, qmin, qmax, out[lo:hi])


@kernel
def _qpt32(x, scale, zp, out):
    inv = _inv32(scale)
    z = np.float32(zp)
    for i in range(x.size):
        v = np.float64(np.rint(np.float32(np.float32(x[i] * inv) + z)))
        if v != v:
            out[i] = -2147483648
        elif v >= 2147483647.0:
            out[i] = 2147483647
        elif v <= -2147483648.0:
            out[i] = -2147483648
        else:
            out[i] = np.int32(v)


@kernel(parallel=True)
def _qpt32_par(x, scale, zp, out):
    n = x.size
    nchunks = _nchunks(n)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(n, (c + 1) * step)
        _qpt32(x[lo:hi], scale, zp, out[lo:hi])


def quantize_per_tensor_f32(x, scale, zero_point, qmin, qmax, out):
    """Quantize float32 ``x`` into an 8-bit (or unpacked 4-bit) ``out``.

    ``q = clamp(rint(fma(x, 1/f32(scale), zp)), qmin, qmax)``, one rounding; NaN gives
    ``qmax``. ``x`` and ``out`` are flat and contiguous with equal sizes; ``out`` is
    uint8 or int8 and ``[qmin, qmax]`` lies within its range.
    """
    args = (float(scale), int(zero_point), int(qmin), int(qmax), out)
    if x.size < PARALLEL_MIN:
        _qpt8(x, *args)
    else:
        with parallel_region():
            _qpt8_par(x, *args)
    return out


def quantize_per_tensor_qint32_f32(x, scale, zero_point, out):
    """Quantize float32 ``x`` into int32 ``out``: ``rint(f32(f32(x*inv) + zp))``.

    Two roundings, as torch's qint32 path; clamps to the int32 range; NaN gives -2**31.
    """
    args = (float(scale), int(zero_point), out)
    if x.size < PARALLEL_MIN:
        _qpt32(x, *args)
    else:
        with parallel_region():
            _qpt32_par(x, *args)
    return out


@kernel
def _qpt_sub(x, scale, zp, qmin, qmax, out):
    inv = _inv32(scale)
    z = np.float32(zp)
    fmin = np.float64(qmin)
    fmax = np.float64(qmax)
    qlo = np.int32(qmin)
    for i in range(x.size):
        # round FIRST, then add zp (torch's sub-byte path), in float32
        v = np.float64(np.float32(np.rint(np.float32(x[i] * inv)) + z))
        bad = not (abs(v) < np.inf)      # NaN, +-inf: lrintf's "integer indefinite"
        v = v if v < fmax else fmax
        v = v if v > fmin else fmin
        k = np.int32(v)
        out[i] = qlo if bad else k


@kernel(parallel=True)
def _qpt_sub_par(x, scale, zp, qmin, qmax, out):
    n = x.size
    nchunks = _nchunks(n)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(n, (c + 1) * step)
        _qpt_sub(x[lo:hi], scale, zp, qmin, qmax, out[lo:hi])


def quantize_per_tensor_sub_byte_f32(x, scale, zero_point, qmin, qmax, out):
    """Quantize float32 ``x`` with torch's sub-byte (``quint4x2``) per-tensor rule.

    ``q = clamp(f32(rint(f32(x * inv)) + zp), qmin, qmax)``: the tie is broken BEFORE
    adding the zero point (unlike the 8-bit rule), so ``x=0.5, scale=1, zp=1 -> 1``.
    NaN and +-inf (also ``x * inv`` overflowing) give ``qmin``, as torch's ``lrintf``
    does. ``x`` and ``out`` (uint8, one unpacked value per byte) are flat and contiguous.
    Deliberate difference: finite values beyond 2**63 saturate (torch gives ``qmin``).
    """
    args = (float(scale), int(zero_point), int(qmin), int(qmax), out)
    if x.size < PARALLEL_MIN:
        _qpt_sub(x, *args)
    else:
        with parallel_region():
            _qpt_sub_par(x, *args)
    return out


# -------------------------------------------------------------------- per channel
#
# Per-channel kernels see the tensor as (outer, C, inner), flattened. They work on
# tiles: tile t covers up to _TILE elements of one (outer, channel) row, so huge inner
# extents and many small rows both split evenly across threads. When the channel axis
# is last (inner == 1) the "_last" kernels walk (outer, C) rows instead.

_TILE = 1 << 14


@kernel
def _qpc_run(x, inv, z, fmin, fmax, lim, code, out):
    # two roundings: f32(x * inv), then f32(. + zp); NaN and |v| > lim give `code`.
    # The clamp runs in float64: float32(2**31 - 1) would round up to 2**31.
    for i in range(x.size):
        v = np.float64(np.rint(np.float32(np.float32(x[i] * inv) + z)))
        bad = not (abs(v) <= lim)
        v = v if v < fmax else fmax
        v = v if v > fmin else fmin
        k = np.int32(v)
        out[i] = code if bad else k


@kernel
def _qpc_tiles(x, inv, zp, inner, qmin, qmax, lim, code, out, t0, t1):
    C = inv.size
    parts = (inner + _TILE - 1) // _TILE
    fmin = np.float64(qmin)
    fmax = np.float64(qmax)
    nc = np.int32(code)
    for t in range(t0, t1):
        row = t // parts
        c = row % C
        b0 = row * inner + (t % parts) * _TILE
        b1 = min((row + 1) * inner, b0 + _TILE)
        _qpc_run(x[b0:b1], inv[c], np.float32(zp[c]), fmin, fmax, lim, nc, out[b0:b1])


@kernel
def _qpc_last(x, inv, zp, qmin, qmax, lim, code, out, r0, r1):
    C = inv.size
    fmin = np.float64(qmin)
    fmax = np.float64(qmax)
    nc = np.int32(code)
    zf = zp.astype(np.float32)
    for r in range(r0, r1):
        xs = x[r * C:(r + 1) * C]
        os = out[r * C:(r + 1) * C]
        for c in range(C):
            v = np.float64(np.rint(np.float32(np.float32(xs[c] * inv[c]) + zf[c])))
            bad = not (abs(v) <= lim)
            v = v if v < fmax else fmax
            v = v if v > fmin else fmin
            k = np.int32(v)
            os[c] = nc if bad else k


@kernel(parallel=True)
def _qpc_tiles_par(x, inv, zp, inner, qmin, qmax, lim, code, out, ntiles, nchunks):
    step = (ntiles + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _qpc_tiles(x, inv, zp, inner, qmin, qmax, lim, code, out, c * step,
                   min(ntiles, (c + 1) * step))


@kernel(parallel=True)
def _qpc_last_par(x, inv, zp, qmin, qmax, lim, code, out, rows, nchunks):
    step = (rows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _qpc_last(x, inv, zp, qmin, qmax, lim, code, out, c * step, min(rows, (c + 1) * step))


def _per_channel(x3, inv, zp, qmin, qmax, lim, code, out3):
    outer, C, inner = x3.shape
    n = x3.size
    x, out = x3.reshape(-1), out3.reshape(-1)
    args = (np.int64(qmin), np.int64(qmax), np.float64(lim), np.int64(code), out)
    if inner == 1:
        if n < PARALLEL_MIN:
            _qpc_last(x, inv, zp, *args, 0, outer)
        else:
            with parallel_region():
                _qpc_last_par(x, inv, zp, *args, outer, min(_chunks(n), outer))
        return out3
    ntiles = outer * C * ((inner + _TILE - 1) // _TILE)
    if n < PARALLEL_MIN:
        _qpc_tiles(x, inv, zp, np.int64(inner), *args, 0, ntiles)
    else:
        with parallel_region():
            _qpc_tiles_par(x, inv, zp, np.int64(inner), *args, ntiles, min(_chunks(n), ntiles))
    return out3


def _inv_per_channel(scales):
    return np.float32(1.0) / np.ascontiguousarray(scales, dtype=np.float32)


def quantize_per_channel_f32(x3, scales, zero_points, qmin, qmax, out3):
    """Quantize ``x3`` (outer, C, inner) with one (scale, zero point) per channel.

    ``q = clamp(rint(f32(f32(x * inv_c) + zp_c)), qmin, qmax)`` (two roundings), with
    int64 ``zero_points`` of length C; +-inf saturate. NaN gives 0 in 8-bit ``out3`` and
    -2**31 in int32 ``out3``: torch converts NaN to int32 (0x80000000) and keeps the low
    byte.
    """
    nan_code = _INT32_NAN if out3.dtype == np.int32 else 0
    return _per_channel(x3, _inv_per_channel(scales), zero_points, qmin, qmax, np.inf,
                        nan_code, out3)


def quantize_per_channel_float_qparams_f32(x3, scales, zero_points, qmin, qmax, out3):
    """Per-channel quantize with float32 zero points (``per_channel_affine_float_qparams``).

    ``q = clamp(rint(f32(f32(x * inv_c) + zp_c)), qmin, qmax)``; NaN and +-inf give
    ``qmin`` (torch's ``lrintf`` returns INT64_MIN for them). Deliberate difference:
    finite values with ``|x * inv_c + zp_c| >= 2**31`` saturate here, while torch keeps
    the low 32 bits of the rounded value (e.g. ``1e10 -> qmax`` but ``2**31 -> qmin``).
    """
    return _per_channel(x3, _inv_per_channel(scales), zero_points, qmin, qmax,
                        np.finfo(np.float64).max, qmin, out3)


# ---------------------------------------------------------------------- dequantize

@kernel
def _dqpt(q, scale, zp, out):
    s = np.float32(scale)
    for i in range(q.size):
        out[i] = np.float32(np.int64(q[i]) - zp) * s


@kernel(parallel=True)
def _dqpt_par(q, scale, zp, out):
    n = q.size
    nchunks = _nchunks(n)
    step = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo, hi = c * step, min(n, (c + 1) * step)
        _dqpt(q[lo:hi], scale, zp, out[lo:hi])


def dequantize_per_tensor(q, scale, zero_point, out):
    """``out = f32(q - zero_point) * f32(scale)`` over flat contiguous ``q`` / float32 ``out``."""
    args = (float(scale), int(zero_point), out)
    if q.size < PARALLEL_MIN:
        _dqpt(q, *args)
    else:
        with parallel_region():
            _dqpt_par(q, *args)
    return out


def _dq_value(q, s, z):
    """Dequantize one value as torch's per-channel kernel does.

    int zero point (``s`` float64): ``f32(f64(f32(q) - f32(z)) * s)``, the scale kept in
    double; float zero point (``s`` float32): ``(f32(q) - z) * s`` in float32.
    """
    if isinstance(z, (float, np.floating)):
        return (np.float32(q) - np.float32(z)) * np.float32(s)
    return np.float32(np.float64(np.float32(q) - np.float32(z)) * np.float64(s))


@overload(_dq_value, jit_options={"cache": True})
def _dq_value_jit(q, s, z):
    if isinstance(z, types.Float):
        return lambda q, s, z: (np.float32(q) - z) * s
    return lambda q, s, z: np.float32(np.float64(np.float32(q) - np.float32(z)) * s)


@kernel
def _dqpc_run(q, s, z, out):
    for i in range(q.size):
        out[i] = _dq_value(q[i], s, z)


@kernel
def _dqpc_tiles(q, s, zp, inner, out, t0, t1):
    C = s.size
    parts = (inner + _TILE - 1) // _TILE
    for t in range(t0, t1):
        row = t // parts
        c = row % C
        b0 = row * inner + (t % parts) * _TILE
        b1 = min((row + 1) * inner, b0 + _TILE)
        _dqpc_run(q[b0:b1], s[c], zp[c], out[b0:b1])


@kernel
def _dqpc_last(q, s, zp, out, r0, r1):
    C = s.size
    for r in range(r0, r1):
        qs = q[r * C:(r + 1) * C]
        os = out[r * C:(r + 1) * C]
        for c in range(C):
            os[c] = _dq_value(qs[c], s[c], zp[c])


@kernel(parallel=True)
def _dqpc_tiles_par(q, s, zp, inner, out, ntiles, nchunks):
    step = (ntiles + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _dqpc_tiles(q, s, zp, inner, out, c * step, min(ntiles, (c + 1) * step))


@kernel(parallel=True)
def _dqpc_last_par(q, s, zp, out, rows, nchunks):
    step = (rows + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _dqpc_last(q, s, zp, out, c * step, min(rows, (c + 1) * step))


def dequantize_per_channel(q3, scales, zero_points, out3):
    """Dequantize ``q3`` (outer, C, inner) per channel into float32 ``out3``.

    int64 ``zero_points``: ``f32(f64(f32(q) - f32(zp_c)) * scale_c)`` with the scale
    in float64, as torch (its per-channel scales are a double tensor); float32
    ``zero_points`` (float qparams): ``(f32(q) - zp_c) * f32(scale_c)`` in float32.
    Note the per-tensor rule differs: ``f32(q - zp) * f32(scale)``.
    """
    outer, C, inner = q3.shape
    n = q3.size
    q, out = q3.reshape(-1), out3.reshape(-1)
    float_zp = zero_points.dtype.kind == "f"
    s = np.ascontiguousarray(scales, dtype=np.float32 if float_zp else np.float64)
    if inner == 1:
        if n < PARALLEL_MIN:
            _dqpc_last(q, s, zero_points, out, 0, outer)
        else:
            with parallel_region():
                _dqpc_last_par(q, s, zero_points, out, outer, min(_chunks(n), outer))
        return out3
    ntiles = outer * C * ((inner + _TILE - 1) // _TILE)
    if n < PARALLEL_MIN:
        _dqpc_tiles(q, s, zero_points, np.int64(inner), out, 0, ntiles)
    else:
        with parallel_region():
            _dqpc_tiles_par(q, s, zero_points, np.int64(inner), out, ntiles,
                            min(_chunks(n), ntiles))
    return out3


# ------------------------------------------------------------------------ quint4x2

@kernel
def _pack4(vals, out):
    n = vals.size
    for i in range(n // 2):
        out[i] = np.uint8((vals[2 * i] & 15) | ((vals[2 * i + 1] & 15) << 4))
    if n % 2:
        out[n // 2] = np.uint8(vals[n - 1] & 15)


@kernel
def _unpack4(packed, out):
    n = out.size
    for i in range(n // 2):
        b = packed[i]
        out[2 * i] = b & 15
        out[2 * i + 1] = b >> 4
    if n % 2:
        out[n - 1] = packed[n // 2] & 15


def pack_quint4x2(vals, out):
    """Pack flat uint8 values in [0, 15] two per byte (low nibble first) into ``out``.

    ``out`` has ``(vals.size + 1) // 2`` bytes; an odd tail leaves the high nibble 0.
    """
    _pack4(vals, out)
    return out


def unpack_quint4x2(packed, out):
    """Unpack ``out.size`` 4-bit values from ``packed`` (low nibble first) into uint8 ``out``."""
    _unpack4(packed, out)
    return out
