"""Slow, obviously-correct references for fake quantization (PyTorch 2.13, x86 build).

Element by element, following ATen's CPU kernels operation by operation, with every
rounding written out: ``F32(.)`` rounds to float32, ``np.rint`` is half-to-even, a
fused multiply-add is computed exactly with ``fractions.Fraction`` and rounded once.
Shares no code with ``numq``.

Facts these references encode (each checked against torch 2.13 on this machine):

- per tensor: ``qf = zp + rint(f32(x * inv))`` kept as a float (double for float64
  input); the clamp is ``fmin(fmax(qf, qmin), qmax)`` so NaN -> qmin, +inf -> qmax;
  ``y = f32(f32(q - zp) * scale)`` even for float64 input (then widened).
- per channel: the rounded value is cast to int64 BEFORE clamping, and x86 turns NaN,
  +-inf and anything beyond +-2**63 into INT64_MIN, so all of those give qmin's value;
  ``y = (double(q) - zp) * double(scale)``, rounded to the input dtype.
- per channel with float zero points: ``q = lrint(f32(fma(x, inv, zp)))`` (one rounding:
  the x86 build contracts ``zp + x * inv`` into an FMA).
- learnable backward: ``xq = rint(fma(x, inv, zp))``, ``xfq - x = fma(q - zp, scale, -x)``;
  per tensor the zero point is ``trunc(clamp(zp + 0.5))`` (the forward uses ``rint``).
"""
import math
from fractions import Fraction

import numpy as np

F16 = np.float16
F32 = np.float32
F64 = np.float64
INT64_MIN = -(2**63)


def to_int64(v):
    """``static_cast<int64_t>(v)`` / ``lrint`` on x86: out of range or NaN -> INT64_MIN."""
    v = float(v)
    if not (-(2.0**63) <= v < 2.0**63):
        return INT64_MIN
    return int(v)


def _round_f32(q):
    """The float32 nearest to the Fraction ``q`` (ties to even)."""
    r = F32(float(q))
    if not np.isfinite(r):
        return r
    cands = [r, np.nextafter(r, F32(np.inf)), np.nextafter(r, F32(-np.inf))]

    def key(c):
        return (abs(Fraction(float(c)) - q), int(np.array(c, F32).view(np.uint32)) & 1)

    return min(cands, key=key)


def fma32(a, b, c):
    """float32 ``a * b + c`` with a single rounding."""
    a, b, c = F32(a), F32(b), F32(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return F32(F64(a) * F64(b) + F64(c))
    return _round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def fma64(a, b, c):
    """float64 ``a * b + c`` with a single rounding."""
    a, b, c = F64(a), F64(b), F64(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return a * b + c
    return F64(float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))))


def _channel(idx, axis):
    return idx[axis]


# --------------------------------------------------------------------------- forward

def fq_per_tensor(x, scale, zp, qmin, qmax):
    """``fake_quantize_per_tensor_affine_cachemask``: returns ``(y, mask)``."""
    x = np.asarray(x)
    s = F32(scale)
    inv = F32(1.0) / s
    y = np.empty(x.shape, x.dtype)
    mask = np.empty(x.shape, bool)
    for i in np.ndindex(x.shape):
        v = x[i]
        if x.dtype == F64:
            qf = F64(zp) + np.rint(v * F64(inv))
            lo, hi = F64(qmin), F64(qmax)
        else:  # float16 is promoted to float32 by Half * float
            qf = F32(F32(zp) + np.rint(F32(F32(v) * inv)))
            lo, hi = F32(qmin), F32(qmax)
        mask[i] = bool(lo <= qf <= hi)
        qd = float(qf)  # fmin/fmax promote to double: compare exactly
        if math.isnan(qd) or qd < qmin:
            q = qmin
        elif qd > qmax:
            q = qmax
        else:
            q = int(qd)
        y[i] = F32(F32(q - zp) * s)  # float product even for float64 input
    return y, mask


def fq_per_channel(x, scales, zps, axis, qmin, qmax):
    """``fake_quantize_per_channel_affine_cachemask`` (int or float ``zps``)."""
    x = np.asarray(x)
    zps = np.asarray(zps)
    float_zp = zps.dtype.kind == "f"
    y = np.empty(x.shape, x.dtype)
    mask = np.empty(x.shape, bool)
    for i in np.ndindex(x.shape):
        c = _channel(i, axis)
        v = x[i]
        s = F32(scales[c])
        inv = F32(1.0) / s
        if float_zp:
            z = F32(zps[c])
            if x.dtype == F64:
                t = F32(fma64(v, F64(inv), F64(z)))  # lrintf takes a float
            else:
                t = fma32(F32(v), inv, z)
            q = to_int64(np.rint(t))
            zval = F64(z)
        else:
            z = int(zps[c])
            if x.dtype == F64:
                t = F64(z) + np.rint(v * F64(inv))
            else:
                t = F32(F32(z) + np.rint(F32(F32(v) * inv)))
            q = to_int64(t)
            zval = F64(z)
        mask[i] = qmin <= q <= qmax
        cq = min(max(q, qmin), qmax)
        yd = (F64(cq) - zval) * F64(s)
        y[i] = yd if x.dtype == F64 else F32(yd)  # float16: via float32, as Half(float)
    return y, mask


def fq_backward(dy, mask):
    """``dY * mask`` (a multiplication: NaN/inf gradients stay NaN where masked)."""
    dy = np.asarray(dy)
    out = np.empty(dy.shape, dy.dtype)
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN, as torch
        for i in np.ndindex(dy.shape):
            out[i] = dy[i] * dy.dtype.type(1.0 if mask[i] else 0.0)
    return out


# --------------------------------------------------------------------------- learnable

def lsq_zero_point_forward(zp, qmin, qmax):
    """Forward zero point: ``clamp(rint(f32(zp)), qmin, qmax)`` as an int."""
    return int(min(max(np.rint(F32(zp)), F32(qmin)), F32(qmax)))


def lsq_per_tensor_zero_point_backward(zp, qmin, qmax):
    """Per-tensor backward zero point: ``trunc(clamp(f32(zp) + 0.5f))`` (not rint!)."""
    return int(min(max(F32(F32(zp) + F32(0.5)), F32(qmin)), F32(qmax)))


def _lsq_elem(x, dy, s, inv, z, zsub, qmin, qmax, gf):
    """One element of the LSQ backward; ``z`` float zero point, ``zsub(c)`` = f32(c - zp)."""
    xq = to_int64(np.rint(fma32(x, inv, z)))
    inside = qmin <= xq <= qmax
    dx = F32(dy * F32(1.0 if inside else 0.0))
    if inside:
        d = fma32(zsub(xq), s, -x)  # xfq - x, contracted into one FMA
        ds = F32(F32(F32(dy * d) * inv) * gf)
        dz = F32(0.0)
    else:
        bound = qmin if xq < qmin else qmax
        ds = F32(F32(dy * zsub(bound)) * gf)
        dz = F32(F32(F32(-dy) * s) * gf)
    return dx, ds, dz


def lsq_per_tensor_backward(dy, x, scale, zp, qmin, qmax, grad_factor):
    """Returns ``(dx, ds_elem, dz_elem)``; the op's gradients are the sums of the last two."""
    s = F32(scale)
    inv = F32(1.0) / s
    zb = lsq_per_tensor_zero_point_backward(zp, qmin, qmax)
    gf = F32(grad_factor)
    dx, ds, dz = (np.empty(x.shape, F32) for _ in range(3))
    for i in np.ndindex(x.shape):
        dx[i], ds[i], dz[i] = _lsq_elem(F32(x[i]), F32(dy[i]), s, inv, F32(zb),
                                        lambda c: F32(c - zb), qmin, qmax, gf)
    return dx, ds, dz


def lsq_per_channel_backward(dy, x, scales, zps, axis, qmin, qmax, grad_factor):
    """Per-channel LSQ backward, element-wise: ``(dx, ds_elem, dz_elem)``."""
    gf = F32(grad_factor)
    dx, ds, dz = (np.empty(x.shape, F32) for _ in range(3))
    for i in np.ndindex(x.shape):
        c = _channel(i, axis)
        s = F32(scales[c])
        inv = F32(1.0) / s
        z = F32(min(max(np.rint(F32(zps[c])), F32(qmin)), F32(qmax)))
        dx[i], ds[i], dz[i] = _lsq_elem(F32(x[i]), F32(dy[i]), s, inv, z,
                                        lambda q, z=z: F32(F32(q) - z), qmin, qmax, gf)
    return dx, ds, dz


def exact_sum_f32(v, axis=None):
    """float32 of the exact sum (math.fsum), over all elements or all axes but ``axis``."""
    v = np.asarray(v, F64)
    if axis is None:
        return F32(math.fsum(v.ravel()))
    v = np.moveaxis(v, axis, 0).reshape(v.shape[axis], -1)
    return np.array([math.fsum(row) for row in v], F32)
