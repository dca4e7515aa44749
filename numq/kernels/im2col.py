"""im2col / col2im: the data movement around the GEMM of a float convolution.

Public kernels
--------------
im2col(x, cols, out_size, kernel_size, stride, padding, dilation)
    Unfold ``x`` ``(N, C, D, H, W)`` into ``cols`` ``(N, C*kd*kh*kw, OD*OH*OW)``: row
    ``(c, a, b, e)`` of sample ``n`` holds ``x[n, c, od*sd - pd + a*dd, oh*sh - ph + b*dh,
    ow*sw - pw + e*dw]`` for every output position (zero where that lies in the padding).
col2im(cols, x, out_size, kernel_size, stride, padding, dilation)
    The adjoint: ``x`` is overwritten with the sum of every ``cols`` entry onto the input
    position it was read from (the input gradient of a convolution, the output of a
    transposed convolution).

Every size argument is a 3-tuple of ints (depth, height, width); 1-d and 2-d
convolutions pass unit depth (and height), so one compiled kernel per dtype serves all
three ranks. ``out_size`` is given, not derived, so asymmetric padding (``'same'`` with
an even kernel) and a transposed convolution's ``output_padding`` need nothing special:
positions past ``out_size`` are simply never read (im2col) or receive nothing (col2im).
Padding is implicit: no padded copy of ``x`` is made.

Both kernels take C-contiguous float32 or float64 arrays of the same dtype and trust
their caller (``numq.layers.functional`` validates). Below :data:`PARALLEL_MIN` elements
of ``cols`` they run serially, above it a ``prange`` over the ``N*C`` channel planes
(each plane's rows are independent, and in col2im each plane of ``x`` is written by one
thread only, so no atomics are needed and the sum order is fixed: results do not depend
on the thread count).

Alternating with BLAS
---------------------
A convolution alternates these kernels with multi-threaded BLAS GEMMs, and the two
thread pools do not share cores well: OpenBLAS workers keep spinning after a GEMM and
Numba's OpenMP workers after a parallel region, each stealing the core the other pool
needs. Measured on 2 cores (Conv2d(64, 64, 3), one 64x56x56 sample): a parallel im2col
right after a GEMM took 2.5 ms (median) instead of 0.8 ms, and a GEMM right after a
parallel im2col 5.9 ms instead of 1.8 ms, while the serial im2col takes ~0.6-1 ms and
disturbs nothing. So ``numq.layers.functional`` calls them with ``parallel=False``; the
parallel path serves standalone calls on large inputs.
"""
import numpy as np
from numba import prange

from .._threads import parallel_region
from ._jit import kernel
from .quantize import PARALLEL_MIN

__all__ = ["im2col", "col2im"]


@kernel(inline="always")
def _valid_range(off, step, size, out):
    """``[lo, hi)``: the output positions ``o`` with ``0 <= o*step + off < size``."""
    lo = 0 if off >= 0 else (-off + step - 1) // step
    last = size - 1 - off
    hi = last // step + 1 if last >= 0 else 0
    if hi > out:
        hi = out
    if lo > hi:
        lo = hi
    return lo, hi


# The plane kernels index flat views with unsigned integers: Numba adds a
# negative-index wraparound test to every signed index, which stops LLVM from
# vectorising the copy loops (measured: 2x slower). Every index used is >= 0.

@kernel
def _im2col_plane(xf, cf, n, c, C, in_size, out_size, kernel_size, stride, padding,
                  dilation):
    """Rows ``c*K .. (c+1)*K - 1`` of sample ``n`` of the flat cols from plane ``(n, c)``."""
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    K = kd * kh * kw
    L = OD * OH * OW
    x0 = (n * C + c) * D * H * W
    row = (n * C + c) * K
    for a in range(kd):
        for b in range(kh):
            for e in range(kw):
                r0 = row * L
                row += 1
                off_w = e * dw - pw
                lo, hi = _valid_range(off_w, sw, W, OW)
                for od in range(OD):
                    i_d = od * sd - pd + a * dd
                    for oh in range(OH):
                        i_h = oh * sh - ph + b * dh
                        d0 = r0 + (od * OH + oh) * OW
                        if i_d < 0 or i_d >= D or i_h < 0 or i_h >= H:
                            for ow in range(OW):
                                cf[np.uint64(d0 + ow)] = 0.0
                            continue
                        s0 = x0 + (i_d * H + i_h) * W + off_w
                        for ow in range(lo):
                            cf[np.uint64(d0 + ow)] = 0.0
                        if sw == 1:
                            for ow in range(lo, hi):
                                cf[np.uint64(d0 + ow)] = xf[np.uint64(s0 + ow)]
                        else:
                            for ow in range(lo, hi):
                                cf[np.uint64(d0 + ow)] = xf[np.uint64(s0 + ow * sw)]
                        for ow in range(hi, OW):
                            cf[np.uint64(d0 + ow)] = 0.0


@kernel
def _col2im_plane(cf, xf, n, c, C, in_size, out_size, kernel_size, stride, padding,
                  dilation):
    """Plane ``(n, c)`` of the flat ``x`` = sum of its ``K`` rows of the flat cols."""
    D, H, W = in_size
    OD, OH, OW = out_size
    kd, kh, kw = kernel_size
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    K = kd * kh * kw
    L = OD * OH * OW
    P = D * H * W
    x0 = (n * C + c) * P
    for i in range(P):
        xf[np.uint64(x0 + i)] = 0.0
    row = (n * C + c) * K
    for a in range(kd):
        for b in range(kh):
            for e in range(kw):
                r0 = row * L
                row += 1
                off_w = e * dw - pw
                lo, hi = _valid_range(off_w, sw, W, OW)
                for od in range(OD):
                    i_d = od * sd - pd + a * dd
                    if i_d < 0 or i_d >= D:
                        continue
                    for oh in range(OH):
                        i_h = oh * sh - ph + b * dh
                        if i_h < 0 or i_h >= H:
                            continue
                        d0 = x0 + (i_d * H + i_h) * W + off_w
                        s0 = r0 + (od * OH + oh) * OW
                        if sw == 1:
                            for ow in range(lo, hi):
                                xf[np.uint64(d0 + ow)] += cf[np.uint64(s0 + ow)]
                        else:
                            for ow in range(lo, hi):
                                xf[np.uint64(d0 + ow * sw)] += cf[np.uint64(s0 + ow)]


@kernel
def _im2col_serial(xf, cf, N, C, in_size, out_size, kernel_size, stride, padding, dilation):
    for n in range(N):
        for c in range(C):
            _im2col_plane(xf, cf, n, c, C, in_size, out_size, kernel_size, stride, padding,
                          dilation)


@kernel(parallel=True)
def _im2col_parallel(xf, cf, N, C, in_size, out_size, kernel_size, stride, padding,
                     dilation):
    for i in prange(N * C):
        _im2col_plane(xf, cf, i // C, i % C, C, in_size, out_size, kernel_size, stride,
                      padding, dilation)


@kernel
def _col2im_serial(cf, xf, N, C, in_size, out_size, kernel_size, stride, padding, dilation):
    for n in range(N):
        for c in range(C):
            _col2im_plane(cf, xf, n, c, C, in_size, out_size, kernel_size, stride, padding,
                          dilation)


@kernel(parallel=True)
def _col2im_parallel(cf, xf, N, C, in_size, out_size, kernel_size, stride, padding,
                     dilation):
    for i in prange(N * C):
        _col2im_plane(cf, xf, i // C, i % C, C, in_size, out_size, kernel_size, stride,
                      padding, dilation)


def _ints3(t):
    # Python ints -> one Numba specialisation (UniTuple(int64, 3)) whatever the caller had
    return (int(t[0]), int(t[1]), int(t[2]))


def _run(serial, parallel, a, b, shape, work, out_size, kernel_size, stride, padding,
         dilation, use_parallel):
    N, C = int(shape[0]), int(shape[1])
    args = (N, C, _ints3(shape[2:]), _ints3(out_size), _ints3(kernel_size), _ints3(stride),
            _ints3(padding), _ints3(dilation))
    if use_parallel is None:
        use_parallel = work >= PARALLEL_MIN
    if not use_parallel or N * C < 2:
        serial(a, b, *args)
    else:
        with parallel_region():
            parallel(a, b, *args)


def im2col(x, cols, out_size, kernel_size, stride, padding, dilation, parallel=None):
    """Unfold ``x`` into ``cols`` (the im2col of a convolution); returns ``cols``.

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W), float32 or float64, C-contiguous
        The (unpadded) input.
    cols : ndarray, shape (N, C*kd*kh*kw, OD*OH*OW), same dtype, C-contiguous
        Output; fully overwritten. Row ``((c*kd + a)*kh + b)*kw + e``, column
        ``(od*OH + oh)*OW + ow`` holds ``x[n, c, od*sd - pd + a*dd, oh*sh - ph + b*dh,
        ow*sw - pw + e*dw]``, or 0 where that index is outside ``x``.
    out_size, kernel_size, stride, padding, dilation : 3-tuples of int
        ``(OD, OH, OW)``, ``(kd, kh, kw)``, strides >= 1, leading paddings >= 0,
        dilations >= 1.
    parallel : bool or None
        None (default): a ``prange`` over the ``N*C`` planes from :data:`PARALLEL_MIN`
        elements of ``cols`` on; True / False force either path. Callers that alternate
        with multi-threaded BLAS calls should pass False (see the module docstring).
    """
    _run(_im2col_serial, _im2col_parallel, x.reshape(-1), cols.reshape(-1), x.shape, cols.size,
         out_size, kernel_size, stride, padding, dilation, parallel)
    return cols


def col2im(cols, x, out_size, kernel_size, stride, padding, dilation, parallel=None):
    """Fold ``cols`` back onto ``x`` (the adjoint of :func:`im2col`); returns ``x``.

    ``x`` (shape ``(N, C, D, H, W)``) is overwritten: each element becomes the sum, in
    row order, of the ``cols`` entries that :func:`im2col` would have read from it (0 if
    none). Arguments as in :func:`im2col`.
    """
    _run(_col2im_serial, _col2im_parallel, cols.reshape(-1), x.reshape(-1), x.shape, cols.size,
         out_size, kernel_size, stride, padding, dilation, parallel)
    return x
