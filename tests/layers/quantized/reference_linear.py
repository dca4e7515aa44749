"""Slow, obviously-correct NumPy references for the quantized Linear family.

Written from NUMERICS.md ("Static quantized Linear", "Dynamic quantized Linear") and
fbgemm's ``ChooseQuantizationParams``, without any numq code: integer sums in int64,
float32 steps spelled out one rounding at a time.
"""
import math
from fractions import Fraction

import numpy as np

F32 = np.float32


def _f32(v):
    return np.float32(v)


def _fma_f32(a, b, c):
    """``fma(a, b, c)`` on float32 arrays with ONE rounding.

    The product of two float32 values is exact in float64 (48 significant bits); the
    float64 sum rounds once more, and rounding that to float32 can differ from a single
    rounding only when the float64 sum was inexact AND landed exactly halfway between
    two float32 values. Those few elements are redone exactly with fractions.
    """
    a, b, c = np.broadcast_arrays(np.asarray(a, F32), np.asarray(b, F32), np.asarray(c, F32))
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    bb = s - p                                  # 2Sum: err is the exact rounding error
    err = (p - (s - bb)) + (c64 - bb)
    out = s.astype(F32)
    r = out.astype(np.float64)
    other = np.nextafter(out, np.where(s > r, F32(np.inf), F32(-np.inf)).astype(F32))
    tie = (err != 0) & (s == (r + other.astype(np.float64)) / 2)
    for idx in zip(*np.nonzero(tie)):
        exact = Fraction(float(a[idx])) * Fraction(float(b[idx])) + Fraction(float(c[idx]))
        lo, hi = sorted((out[idx], other[idx]))
        d_lo, d_hi = exact - Fraction(float(lo)), Fraction(float(hi)) - exact
        out[idx] = lo if d_lo < d_hi else hi    # not a tie any more: err != 0
    return out


def int_gemm(xq, x_zp, wq, w_zp):
    """``acc[i, j] = sum_k (xq[i, k] - x_zp) * (wq[j, k] - w_zp[j])`` in int64."""
    x = np.asarray(xq, np.int64) - int(x_zp)
    w = np.asarray(wq, np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1)
    acc = x @ w.T
    assert np.all(np.abs(acc) < 2**31), "reference: int32 accumulator overflow"
    return acc


def qlinear_static_ref(xq, x_scale, x_zp, wq, w_scales, w_zps, per_channel, bias,
                       out_scale, out_zp, relu=False):
    """uint8 output codes of the static quantized Linear (NUMERICS' rule).

    ``xq`` (M, K) uint8 codes; ``wq`` (N, K) int8 codes; ``w_scales`` / ``w_zps`` of length
    N (repeat the scalar for per-tensor weights); ``bias`` float32 (N,) or None.
    """
    N = wq.shape[0]
    acc = int_gemm(xq, x_zp, wq, w_zps).astype(F32)           # exact for |acc| < 2^24
    ws = np.asarray(w_scales, np.float64).astype(F32).reshape(N)
    atw = _f32(x_scale) * ws                                  # float32 product
    mult = atw / _f32(out_scale)                              # float32 quotient
    if bias is None:
        b = np.zeros(N, F32)
    else:
        b = np.asarray(bias, F32)
        if per_channel:
            b = b / atw
        else:
            inv = _f32(1.0 / float(atw[0]))                   # reciprocal in double
            b = b * inv
    y = (acc + b) * mult                                      # two float32 roundings
    y = np.rint(y).astype(np.int64) + int(out_zp)
    lo = int(out_zp) if relu else 0
    return np.clip(y, lo, 255).astype(np.uint8)


def choose_qparams_fbgemm(xmin, xmax, qmin, qmax):
    """fbgemm's ``ChooseQuantizationParams`` (no sparsity, no power-of-two scale).

    Returns ``(scale as float, zero_point as int)``; the scale is the value the kernels
    see, i.e. rounded to float32.
    """
    mn = min(float(F32(xmin)), 0.0)
    mx = max(float(F32(xmax)), 0.0)
    scale = (mx - mn) / (qmax - qmin)                         # double
    if float(F32(scale)) == 0.0 or math.isinf(float(F32(1.0) / F32(scale))):
        scale = 0.1
    small = float(F32(6.1e-5))
    if scale < small:
        org = float(F32(scale))
        scale = small
        if mn == 0.0:
            mx = float(F32(small * (qmax - qmin)))
        elif mx == 0.0:
            mn = float(F32(-small * (qmax - qmin)))
        else:
            amp = float(F32(small) / F32(org))
            mn = float(F32(mn) * F32(amp))
            mx = float(F32(mx) * F32(amp))
    zmin = qmin - mn / scale
    zmax = qmax - mx / scale
    emin = abs(qmin) - abs(mn / scale)
    emax = abs(qmax) - abs(mx / scale)
    z0 = zmin if emin < emax else zmax
    if z0 < qmin:
        zp = qmin
    elif z0 > qmax:
        zp = qmax
    else:
        zp = int(np.rint(z0))
    return float(F32(scale)), zp


def quantize_u8_ref(x, scale, zp):
    """Per-tensor quint8 codes with one rounding: ``rint(fma(x, 1/scale, zp))``."""
    inv = F32(1.0) / F32(scale)
    v = _fma_f32(np.asarray(x, F32), inv, F32(zp))
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def qlinear_dynamic_ref(x, wq, w_scales, w_zps, bias, relu=False, reduce_range=True):
    """float32 output of the dynamic int8 Linear (NUMERICS' rule).

    ``x`` (M, K) float32; the whole of ``x`` chooses one (scale, zero point).
    """
    x = np.asarray(x, F32)
    N = wq.shape[0]
    qmax = 127 if reduce_range else 255
    if x.size:
        scale, zp = choose_qparams_fbgemm(x.min(), x.max(), 0, qmax)
    else:
        scale, zp = choose_qparams_fbgemm(0.0, 0.0, 0, qmax)
    xq = quantize_u8_ref(x, scale, zp)
    acc = int_gemm(xq, zp, wq, w_zps).astype(F32)
    ws = np.asarray(w_scales, np.float64).astype(F32).reshape(N)
    m = F32(scale) * ws
    b = np.zeros(N, F32) if bias is None else np.asarray(bias, F32)
    y = _fma_f32(acc, m[None, :], b[None, :])
    if relu:
        y = np.maximum(y, F32(0))
    return y


def fp16_weight_ref(w):
    """Weights as fbgemm's fp16 packing holds them: clipped to +-65504, rounded to fp16."""
    w = np.clip(np.asarray(w, F32), -65504.0, 65504.0)
    return w.astype(np.float16).astype(F32)


def linear_fp16_ref(x, w, bias, relu=False):
    """float64 reference of the fp16-weight dynamic Linear (for tolerance checks)."""
    y = np.asarray(x, np.float64) @ fp16_weight_ref(w).astype(np.float64).T
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    if relu:
        y = np.maximum(y, 0.0)
    return y
