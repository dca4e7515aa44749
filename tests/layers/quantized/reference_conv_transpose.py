"""Slow, obviously-correct NumPy references for quantized transposed convolution.

The accumulator follows the definition directly: every input pixel ``i`` times kernel
tap ``k`` lands on output position ``i * stride - padding + k * dilation``. It is
computed as a *scatter* (numq's kernel gathers), in int64 (numq accumulates in int32),
on an uncropped canvas that is cropped by ``padding`` at the end.
"""
import itertools

import numpy as np

__all__ = ["conv_transpose_acc_ref", "requantize_ref", "qconv_transpose_ref"]


def conv_transpose_acc_ref(xq, x_zp, wq, w_zp, stride, padding, output_padding, dilation,
                           groups):
    """int64 accumulators ``(N, OC, *out)`` of a transposed convolution.

    ``xq`` (N, IC, *spatial) uint8 codes; ``wq`` (IC, OC/groups, *k) int8 codes;
    ``w_zp`` an int or one zero point per output channel (OC,).
    """
    N, IC = xq.shape[:2]
    spatial = xq.shape[2:]
    ks = wq.shape[2:]
    OCg = wq.shape[1]
    OC, ICg = OCg * groups, IC // groups
    w_zp = np.broadcast_to(np.asarray(w_zp, np.int64), (OC,))
    x = xq.astype(np.int64) - int(x_zp)
    # canvas of the uncropped output (padding 0), long enough for output_padding
    full = [(i - 1) * s + d * (k - 1) + 1 + op
            for i, s, d, k, op in zip(spatial, stride, dilation, ks, output_padding)]
    canvas = np.zeros([N, OC] + full, np.int64)
    for g in range(groups):
        xg = x[:, g * ICg:(g + 1) * ICg]
        for j in range(OCg):
            oc = g * OCg + j
            wg = wq[g * ICg:(g + 1) * ICg, j].astype(np.int64) - w_zp[oc]  # (ICg, *k)
            for tap in itertools.product(*(range(k) for k in ks)):
                contrib = np.tensordot(xg, wg[(slice(None),) + tap], axes=([1], [0]))
                where = tuple(slice(t * d, t * d + (i - 1) * s + 1, s)
                              for t, d, i, s in zip(tap, dilation, spatial, stride))
                canvas[(slice(None), oc) + where] += contrib
    out = [f - 2 * p for f, p in zip(full, padding)]
    crop = tuple(slice(p, p + o) for p, o in zip(padding, out))
    return canvas[(slice(None), slice(None)) + crop]


def requantize_ref(acc, x_scale, w_scales, per_channel, bias, out_scale, out_zp):
    """NUMERICS.md "Static quantized Linear / Conv" on ``acc`` (N, OC, *out) -> uint8."""
    f32 = np.float32
    OC = acc.shape[1]
    ws = np.broadcast_to(np.asarray(w_scales, np.float64), (OC,)).astype(f32)
    atw = (f32(x_scale) * ws).astype(f32)
    mult = (atw / f32(out_scale)).astype(f32)
    if bias is None:
        b = np.zeros(OC, f32)
    elif per_channel:
        b = (np.asarray(bias, f32) / atw).astype(f32)
    else:  # one reciprocal, taken in double, then rounded to float32
        b = (np.asarray(bias, f32) * f32(1.0 / np.float64(atw[0]))).astype(f32)
    shape = (1, OC) + (1,) * (acc.ndim - 2)
    y = (acc.astype(f32) + b.reshape(shape)).astype(f32)
    y = np.rint((y * mult.reshape(shape)).astype(f32)).astype(np.int64) + int(out_zp)
    return np.clip(y, 0, 255).astype(np.uint8)


def qconv_transpose_ref(xq, x_scale, x_zp, wq, w_scales, w_zp, per_channel, bias, out_scale,
                        out_zp, stride, padding, output_padding, dilation, groups):
    """uint8 codes ``(N, OC, *out)``; ``w_scales`` / ``w_zp``: per output channel or scalar."""
    acc = conv_transpose_acc_ref(xq, x_zp, wq, w_zp, stride, padding, output_padding, dilation,
                                 groups)
    return requantize_ref(acc, x_scale, w_scales, per_channel, bias, out_scale, out_zp)
