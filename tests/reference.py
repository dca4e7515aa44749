"""Slow, obviously-correct NumPy references for numq's kernels.

Each function follows ``shared/NUMERICS.md`` literally, element by element where the
rounding sequence matters, and shares no code with ``numq``.
"""
import numpy as np

F32 = np.float32
F64 = np.float64

# --------------------------------------------------------------------------- quantize

def quantize_per_tensor(x, scale, zp, qmin, qmax, storage, qint32=False):
    """``clamp(rint(fma(x, inv, zp)))`` (8-bit) or ``rint(f32(f32(x*inv)+zp))`` (qint32)."""
    x = np.asarray(x, F32).ravel()
    inv = F32(1.0) / F32(scale)
    out = np.empty(x.size, storage)
    for i, v in enumerate(x):
        if qint32:
            r = F64(np.rint(F32(F32(v * inv) + F32(zp))))
            out[i] = -(2**31) if np.isnan(r) else int(min(max(r, -(2.0**31)), 2.0**31 - 1))
        else:
            r = F64(np.rint(F32(F64(v) * F64(inv) + F64(zp))))
            out[i] = qmax if (np.isnan(r) or r > qmax) else int(max(r, qmin))
    return out


def quantize_per_channel(x, scales, zps, axis, qmin, qmax, storage):
    """Two-rounding per-channel rule; NaN gives 0 (8-bit) or -2**31 (qint32) as torch."""
    x = np.asarray(x, F32)
    out = np.empty(x.shape, storage)
    xs = np.moveaxis(x, axis, 0)
    os_ = np.moveaxis(out, axis, 0)
    for c in range(xs.shape[0]):
        inv = F32(1.0) / F32(scales[c])
        for idx in np.ndindex(xs.shape[1:]):
            v = xs[(c,) + idx]
            r = F64(np.rint(F32(F32(v * inv) + F32(zps[c]))))
            if np.isnan(r):
                q = -(2**31) if storage == np.int32 else 0
            else:
                q = int(min(max(r, qmin), qmax))
            os_[(c,) + idx] = q
    return out


def dequantize_per_tensor(q, scale, zp):
    """``f32(q - zp) * f32(scale)``."""
    q = np.asarray(q).astype(np.int64)
    return (q - int(zp)).astype(F32) * F32(scale)


def dequantize_per_channel(q, scales, zps, axis):
    q = np.asarray(q).astype(np.int64)
    shape = [1] * q.ndim
    shape[axis] = -1
    s = np.asarray(scales, F32).reshape(shape)
    z = np.asarray(zps)
    if z.dtype.kind == "f":
        return (q.astype(F32) - z.astype(F32).reshape(shape)) * s
    return (q - z.astype(np.int64).reshape(shape)).astype(F32) * s


def pack_quint4x2(vals):
    """Pack flat 4-bit values two per byte, low nibble first."""
    v = np.asarray(vals, np.uint8).ravel()
    out = np.zeros((v.size + 1) // 2, np.uint8)
    for i, b in enumerate(v):
        out[i // 2] |= (int(b) & 0xF) << (4 * (i % 2))
    return out
