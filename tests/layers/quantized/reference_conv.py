"""Slow, obviously-correct NumPy references for quantized convolution.

Written from NUMERICS.md ("Static quantized Linear / Conv") without any numq code:
the input is padded explicitly with its zero point (in NCHW order, as the definition
reads), accumulators are int64 sums over each window tap, float32 steps of the
epilogue are spelled out one rounding at a time.
"""
import itertools

import numpy as np

__all__ = ["conv_acc_ref", "requantize_ref", "qconv_ref", "out_size_ref"]

F32 = np.float32


def out_size_ref(in_size, kernel_size, stride, padding, dilation):
    return [(i + 2 * p - d * (k - 1) - 1) // s + 1
            for i, k, s, p, d in zip(in_size, kernel_size, stride, padding, dilation)]


def conv_acc_ref(xq, x_zp, wq, w_zp, stride, padding, dilation, groups):
    """int64 accumulators ``(N, OC, *out)`` of a convolution.

    ``xq`` (N, C, *spatial) uint8 codes; ``wq`` (OC, C/groups, *k) int8 codes; ``w_zp`` an
    int or one zero point per output channel.
    """
    N, C = xq.shape[:2]
    OC, Cg = wq.shape[:2]
    ks = wq.shape[2:]
    OCg = OC // groups
    w_zp = np.broadcast_to(np.asarray(w_zp, np.int64), (OC,))
    xp = np.pad(np.asarray(xq, np.int64), [(0, 0), (0, 0)] + [(p, p) for p in padding],
                constant_values=int(x_zp)) - int(x_zp)
    out = out_size_ref(xq.shape[2:], ks, stride, padding, dilation)
    acc = np.zeros([N, OC] + out, np.int64)
    w = np.asarray(wq, np.int64) - w_zp.reshape((OC,) + (1,) * (len(ks) + 1))
    for tap in itertools.product(*(range(k) for k in ks)):
        win = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                    for t, d, o, s in zip(tap, dilation, out, stride))
        xs = xp[(slice(None), slice(None)) + win]          # (N, C, *out)
        for g in range(groups):
            xg = xs[:, g * Cg:(g + 1) * Cg]                  # (N, Cg, *out)
            wg = w[(slice(g * OCg, (g + 1) * OCg), slice(None)) + tap]  # (OCg, Cg)
            acc[:, g * OCg:(g + 1) * OCg] += np.moveaxis(
                np.tensordot(xg, wg, axes=([1], [1])), -1, 1)
    assert np.all(np.abs(acc) < 2**31), "reference: int32 accumulator overflow"
    return acc


def requantize_ref(acc, x_scale, w_scales, per_channel, bias, out_scale, out_zp,
                   relu=False):
    """NUMERICS.md's epilogue on ``acc`` (N, OC, *out) -> uint8 codes.

    ``w_scales`` has one entry per output channel (repeat the scalar for per-tensor
    weights); ``per_channel`` picks the bias rule.
    """
    OC = acc.shape[1]
    shape = (1, OC) + (1,) * (acc.ndim - 2)
    ws = np.asarray(w_scales, np.float64).astype(F32).reshape(OC)
    atw = F32(x_scale) * ws                                  # float32 product
    mult = (atw / F32(out_scale)).reshape(shape)             # float32 quotient
    if bias is None:
        b = np.zeros(OC, F32)
    elif per_channel:
        b = np.asarray(bias, F32) / atw
    else:
        b = np.asarray(bias, F32) * F32(1.0 / float(atw[0]))  # reciprocal in double
    y = (acc.astype(F32) + b.reshape(shape)) * mult           # two float32 roundings
    y = np.rint(y).astype(np.int64) + int(out_zp)
    return np.clip(y, int(out_zp) if relu else 0, 255).astype(np.uint8)


def qconv_ref(xq, x_scale, x_zp, wq, w_scales, w_zps, per_channel, bias, stride, padding,
              dilation, groups, out_scale, out_zp, relu=False):
    """uint8 output codes of a quantized convolution."""
    acc = conv_acc_ref(xq, x_zp, wq, w_zps, stride, padding, dilation, groups)
    OC = wq.shape[0]
    ws = np.broadcast_to(np.asarray(w_scales, np.float64), (OC,))
    return requantize_ref(acc, x_scale, ws, per_channel, bias, out_scale, out_zp, relu)
