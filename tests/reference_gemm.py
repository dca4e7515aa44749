"""Slow NumPy references for the int8 GEMM kernels (``numq.kernels.gemm``).

Written from ``shared/NUMERICS.md`` ("Static quantized Linear", "Dynamic quantized
Linear"), sharing no code with numq. Integer sums are exact int64, then reduced modulo
2**32 as fbgemm's int32 arithmetic does.
"""
import numpy as np

from reference import fma_f32
from reference_qparams import choose_qparams_dynamic

F32 = np.float32


def wrap_i32(v):
    """int64 values reduced to int32 two's complement."""
    return ((np.asarray(v, np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def gemm_i32(xq, x_zp, wq, w_zps):
    """``sum_k (x - x_zp) * (w - w_zp[j])`` exactly, wrapped to int32."""
    x = np.asarray(xq, np.int64) - int(x_zp)
    w = np.asarray(wq, np.int64) - np.asarray(w_zps, np.int64).reshape(-1, 1)
    return wrap_i32(x @ w.T)


def requant(acc, x_scale, w_scales, per_channel, bias, out_scale, out_zp, relu):
    """The static epilogue on int32 accumulators -> uint8."""
    n = acc.shape[1]
    ws = np.broadcast_to(np.asarray(w_scales, np.float64), (n,)).astype(F32)
    atw = F32(x_scale) * ws
    mult = atw / F32(out_scale)
    if bias is None:
        b = np.zeros(n, F32)
    elif per_channel:
        b = np.asarray(bias, F32) / atw
    else:
        b = np.asarray(bias, F32) * F32(1.0 / float(atw[0]))
    y = np.rint((acc.astype(F32) + b) * mult).astype(np.int64) + int(out_zp)
    return np.clip(y, int(out_zp) if relu else 0, 255).astype(np.uint8)


def quantize_u8(x, scale, zp):
    """Per-tensor quint8 codes with the single-rounding rule (exact fma)."""
    inv = F32(1.0) / F32(scale)
    q = np.rint(fma_f32(x, inv, F32(zp)))
    return np.clip(q, 0, 255).astype(np.uint8)


def dynamic(x, wq, w_scales, w_zps, bias, relu, reduce_range=True):
    """float32 output of the dynamic linear: fbgemm qparams, quantize, GEMM, fma."""
    qmax = 127 if reduce_range else 255
    scale, zp = choose_qparams_dynamic(float(np.min(x)), float(np.max(x)), 0, qmax)
    xq = quantize_u8(x, scale, zp)
    acc = gemm_i32(xq, zp, wq, w_zps).astype(F32)
    n = wq.shape[0]
    ws = np.broadcast_to(np.asarray(w_scales, np.float64), (n,)).astype(F32)
    mult = F32(scale) * ws
    b = np.zeros(n, F32) if bias is None else np.asarray(bias, F32)
    y = fma_f32(acc, np.broadcast_to(mult, acc.shape), np.broadcast_to(b, acc.shape))
    return np.maximum(y, F32(0)) if relu else y
