"""Direct channels-last depthwise convolution: exact int32 accumulators.

Public kernel
-------------
depthwise_acc(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
              multiplier, x_zero_point, wq, acc, parallel)
    For a convolution with ``groups == C`` (each input channel ``c`` feeds the
    ``multiplier`` output channels ``c*multiplier ..``), write
    ``acc[m, oc] = sum over window taps t of (x[n, pos(t), oc // multiplier] - x_zp)
    * wq[t, oc]`` for every output position ``m = ((n*OD + od)*OH + oh)*OW + ow``.
    ``wq`` ``(kd*kh*kw, OC)`` int32 holds ``w - w_zero_point[oc]`` (window tap major);
    the input is read as in :func:`numq.kernels.im2col_u8.im2col_u8` (a flat buffer and
    ``(N, D, H, W, C)`` element strides). Padding taps are skipped: a padded value is
    ``x_zp`` and contributes exactly 0.

Why direct: with one input channel per group an im2col + GEMM would run ``C`` GEMMs of
``K = kd*kh*kw`` (9 for 3x3), far too small to feed a GEMM microkernel. Here the
channel loop is innermost and contiguous (channel stride 1 in the channels-last
layout), so LLVM vectorises it across channels; each window tap adds one vector
multiply-add per 16 channels. The products fit in int32 exactly (|x - zp| <= 255,
|w - w_zp| <= 255, at most 2^15 taps before overflow is possible). The caller then
applies the requantization epilogue (:func:`numq.kernels.gemm.requantize`).

``parallel`` runs a ``prange`` over output rows ``(n, od, oh)``; each writes its own
rows of ``acc``, so results do not depend on the thread count.
"""
import numpy as np
from numba import prange

from ._jit import kernel

__all__ = ["depthwise_acc"]


@kernel
def _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
             wq, acc, line):
    sn, sd_, sh_, sw_, sc = xs
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    std, sth, stw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    OC = wq.shape[1]
    oh = line % OH
    t = line // OH
    od = t % OD
    n = t // OD
    zp32 = np.int32(zp)
    for ow in range(OW):
        m = line * OW + ow
        row = acc[m]
        for oc in range(OC):
            row[oc] = 0
        tap = 0
        for a in range(kd):
            i_d = od * std - pd + a * dd
            for b in range(kh):
                i_h = oh * sth - ph + b * dh
                for e in range(kw):
                    i_w = ow * stw - pw + e * dw
                    wt = wq[tap]
                    tap += 1
                    if i_d < 0 or i_d >= D or i_h < 0 or i_h >= H or i_w < 0 or i_w >= W:
                        continue
                    s0 = np.uint64(n * sn + i_d * sd_ + i_h * sh_ + i_w * sw_)
                    if mult == 1 and sc == 1:
                        for oc in range(OC):
                            row[oc] += (np.int32(xf[s0 + np.uint64(oc)]) - zp32) * wt[oc]
                    else:
                        for c in range(OC // mult):
                            xv = np.int32(xf[s0 + np.uint64(c * sc)]) - zp32
                            for j in range(c * mult, (c + 1) * mult):
                                row[j] += xv * wt[j]


@kernel
def _dw_serial(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
               wq, acc):
    for line in range(acc.shape[0] // out_size[2]):
        _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
                 wq, acc, line)


@kernel(parallel=True)
def _dw_parallel(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult,
                 zp, wq, acc):
    for line in prange(acc.shape[0] // out_size[2]):
        _dw_line(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation, mult, zp,
                 wq, acc, line)


def depthwise_acc(xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
                  multiplier, x_zero_point, wq, acc, parallel=False):
    """Fill int32 ``acc`` ``(N*OD*OH*OW, OC)`` with the depthwise accumulators (see the
    module docstring); returns ``acc``. Sizes are 3-tuples of Python ints."""
    args = (xf, xs, in_size, out_size, kernel_size, stride, padding, dilation,
            int(multiplier), int(x_zero_point), wq, acc)
    if parallel and acc.shape[0] // out_size[2] > 1:
        _dw_parallel(*args)
    else:
        _dw_serial(*args)
    return acc
