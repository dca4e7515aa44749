"""Slow, obviously-correct NumPy references for numq's quantize / dequantize kernels.

Each function follows PyTorch 2.13's x86 CPU kernels (see ``shared/NUMERICS.md``)
rounding by rounding, and shares no code with ``numq``. ``F32(.)`` rounds to float32
(NumPy's float32 arithmetic is correctly rounded); the one fused multiply-add is done
exactly: float64 holds ``x * inv`` exactly (two 24-bit significands), and where the
float64 sum with the zero point is inexact (detected with the error-free TwoSum) the
value is recomputed with ``fractions.Fraction`` and rounded once, ties to even.

Rules encoded here, each checked against torch 2.13 on this machine:

- per tensor, quint8 / qint8: ``clamp(rint(fma(x, inv, zp)))``; NaN -> qmax.
- per tensor, qint32: ``rint(f32(f32(x * inv) + f32(zp)))``; NaN -> -2**31; saturates.
- per tensor, quint4x2 (torch's sub-byte kernel): ``clamp(f32(rint(f32(x * inv)) + zp))``,
  the tie broken BEFORE adding zp; NaN / +-inf -> qmin (``lrintf`` overflow).
- per channel, int zero points: ``rint(f32(f32(x * inv_c) + f32(zp_c)))`` (two roundings);
  NaN -> 0 for 8-bit (low byte of 0x80000000), -2**31 for qint32; +-inf saturate.
- per channel, float zero points: same two roundings; NaN and +-inf -> qmin.
- dequantize per tensor: ``f32(q - zp) * f32(scale)``.
- dequantize per channel, int zp: ``f32(f64(f32(f32(q) - f32(zp_c))) * f64(scale_c))`` (the
  scale stays double); float zp: ``(f32(q) - zp_c) * f32(scale_c)`` in float32.

Where torch's result comes from integer overflow these references give numq's
(saturating / exact) answer; the conformance tests keep those inputs out.
"""
from fractions import Fraction

import numpy as np

F32 = np.float32
F64 = np.float64
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# ------------------------------------------------------------------------ rounding

def round_to_f32(exact):
    """Round a Fraction to the nearest float32, ties to even (finite results only)."""
    lo = F32(float(exact))
    if Fraction(float(lo)) > exact:
        lo = np.nextafter(lo, F32(-np.inf))
    hi = np.nextafter(lo, F32(np.inf))
    d_lo, d_hi = exact - Fraction(float(lo)), Fraction(float(hi)) - exact
    if d_lo < d_hi or (d_lo == d_hi and int(lo.view(np.int32)) % 2 == 0):
        return lo
    return hi


def fma_f32(a, b, c):
    """Elementwise ``f32(a * b + c)`` with ONE rounding, for float32 arrays/scalars a, b, c."""
    a, b, c = np.broadcast_arrays(np.asarray(a, F32), np.asarray(b, F32), np.asarray(c, F32))
    cc = c.astype(F64)
    with np.errstate(invalid="ignore", over="ignore"):
        p = a.astype(F64) * b.astype(F64)         # exact
        s = p + cc
        bb = s - p                                  # TwoSum: p + cc == s + err exactly
        err = (p - (s - bb)) + (cc - bb)
        out = s.astype(F32)                         # exact s: one rounding, correct
    redo = np.isfinite(s) & (err != 0)
    for i in zip(*np.nonzero(redo)):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        out[i] = round_to_f32(exact)
    return out


def _clamp_int(r, lo, hi):
    """float64 integer-valued array -> int64 clamped to [lo, hi] (no NaN allowed)."""
    return np.clip(r, F64(lo), F64(hi)).astype(np.int64)


# --------------------------------------------------------------------------- quantize

def quantize_per_tensor(x, scale, zp, qmin, qmax, storage, qint32=False, sub_byte=False):
    """Per-tensor quantize of flattened ``x``; returns ``storage`` ints (unpacked for 4-bit).

    8-bit: one rounding (fma); ``qint32=True``: two roundings; ``sub_byte=True``:
    torch's quint4x2 rule (round first, then add zp; non-finite -> qmin).
    """
    x = np.asarray(x, F32).ravel()
    inv = F32(1.0) / F32(scale)
    with np.errstate(invalid="ignore", over="ignore"):
        if qint32:
            r = np.rint(F32(x * inv) + F32(zp)).astype(F64)
            nan = np.isnan(r)
            q = _clamp_int(np.where(nan, 0.0, r), I32_MIN, I32_MAX)
            q[nan] = I32_MIN
        elif sub_byte:
            v = (np.rint(F32(x * inv)) + F32(zp)).astype(F64)   # float32 add, then widen
            bad = ~np.isfinite(v)
            q = _clamp_int(np.where(bad, 0.0, v), qmin, qmax)
            q[bad] = qmin
        else:
            r = np.rint(fma_f32(x, inv, F32(zp))).astype(F64)
            nan = np.isnan(r)
            q = _clamp_int(np.where(nan, 0.0, r), qmin, qmax)
            q[nan] = qmax
    return q.astype(storage)


def quantize_per_channel(x, scales, zps, axis, qmin, qmax, storage):
    """Two-rounding per-channel rule; int zps: NaN -> 0 (8-bit) or -2**31 (qint32), +-inf
    saturate; float zps (float qparams): NaN and +-inf -> qmin."""
    x = np.asarray(x, F32)
    zps = np.asarray(zps)
    float_zp = zps.dtype.kind == "f"
    shape = [1] * x.ndim
    shape[axis] = -1
    inv = (F32(1.0) / np.asarray(scales, F32)).reshape(shape)
    z = zps.astype(F32).reshape(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.rint(F32(F32(x * inv) + z)).astype(F64)
    bad = ~np.isfinite(r) if float_zp else np.isnan(r)
    q = _clamp_int(np.where(bad, 0.0, r), qmin, qmax)
    if float_zp:
        q[bad] = qmin
    else:
        q[bad] = I32_MIN if np.dtype(storage) == np.int32 else 0
    return q.astype(storage)


# ------------------------------------------------------------------------- dequantize

def dequantize_per_tensor(q, scale, zp):
    """``f32(q - zp) * f32(scale)`` (q - zp exact)."""
    q = np.asarray(q).astype(np.int64)
    with np.errstate(over="ignore"):
        return (q - int(zp)).astype(F32) * F32(scale)


def dequantize_per_channel(q, scales, zps, axis):
    """Per-channel dequantize; int zps keep the scale in double, float zps are all float32."""
    q = np.asarray(q)
    shape = [1] * q.ndim
    shape[axis] = -1
    z = np.asarray(zps)
    if z.dtype.kind == "f":
        s = np.asarray(scales).astype(F32).reshape(shape)
        with np.errstate(over="ignore"):
            return (q.astype(F32) - z.astype(F32).reshape(shape)) * s
    s = np.asarray(scales, F64).reshape(shape)
    d = q.astype(F32) - z.astype(F32).reshape(shape)        # float32 subtraction
    with np.errstate(over="ignore"):
        return (d.astype(F64) * s).astype(F32)


# --------------------------------------------------------------------------- quint4x2

def pack_quint4x2(vals):
    """Pack flat 4-bit values two per byte, low nibble first."""
    v = np.asarray(vals, np.uint8).ravel()
    out = np.zeros((v.size + 1) // 2, np.uint8)
    for i, b in enumerate(v):
        out[i // 2] |= (int(b) & 0xF) << (4 * (i % 2))
    return out


def unpack_quint4x2(packed, n):
    """The first ``n`` 4-bit values of ``packed`` (low nibble first)."""
    p = np.asarray(packed, np.uint8).ravel()
    return np.array([(int(p[i // 2]) >> (4 * (i % 2))) & 0xF for i in range(n)], np.uint8)
