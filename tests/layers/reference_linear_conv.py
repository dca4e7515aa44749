"""Slow, obviously-correct NumPy references for convolutions (loops over kernel taps).

Everything is float64 and batched, with explicit per-side padding so ``'same'`` with an
even kernel is covered: ``pads[i] = (before, after)``.
"""
import itertools

import numpy as np


def conv_ref(x, w, b, stride, pads, dilation, groups):
    """Cross-correlation of ``x`` (N, C, *S) with ``w`` (OC, C/groups, *K)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    rank = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    ksize = w.shape[2:]
    out = [(xp.shape[2 + i] - dilation[i] * (ksize[i] - 1) - 1) // stride[i] + 1
           for i in range(rank)]
    N, OC = x.shape[0], w.shape[0]
    Cg, OCg = w.shape[1], OC // groups
    y = np.zeros([N, OC] + out)
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        for oc in range(g * OCg, (g + 1) * OCg):
            for tap in itertools.product(*[range(k) for k in ksize]):
                sl = tuple(slice(tap[i] * dilation[i],
                                 tap[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                           for i in range(rank))
                patch = xg[(slice(None), slice(None)) + sl]          # (N, Cg, *out)
                y[:, oc] += np.tensordot(w[(oc, slice(None)) + tap], patch, axes=([0], [1]))
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, OC) + (1,) * rank)
    return y


def conv_transpose_ref(x, w, b, stride, padding, output_padding, dilation, groups):
    """Transposed convolution by scattering each input element times its filter."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    rank = x.ndim - 2
    N, Cin = x.shape[:2]
    OCg = w.shape[1]
    Cing = Cin // groups
    ksize = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * stride[i] + dilation[i] * (ksize[i] - 1) + 1
            + output_padding[i] for i in range(rank)]
    y = np.zeros([N, OCg * groups] + full)
    for ci in range(Cin):
        g = ci // Cing
        for pos in itertools.product(*[range(s) for s in x.shape[2:]]):
            v = x[(slice(None), ci) + pos]                               # (N,)
            for tap in itertools.product(*[range(k) for k in ksize]):
                o = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(rank))
                y[(slice(None), slice(g * OCg, (g + 1) * OCg)) + o] += \
                    v[:, None] * w[(ci, slice(None)) + tap][None, :]
    crop = tuple(slice(padding[i], full[i] - padding[i]) for i in range(rank))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape((1, -1) + (1,) * rank)
    return y


def im2col_ref(x, out, k, s, p, d):
    """im2col of a 5-d ``x`` (N, C, D, H, W) by direct indexing; zeros in the padding."""
    N, C, D, H, W = x.shape
    cols = np.zeros((N, C) + tuple(k) + tuple(out), x.dtype)
    for a, bb, e in itertools.product(range(k[0]), range(k[1]), range(k[2])):
        for od, oh, ow in itertools.product(range(out[0]), range(out[1]), range(out[2])):
            i, j, m = od * s[0] - p[0] + a * d[0], oh * s[1] - p[1] + bb * d[1], \
                ow * s[2] - p[2] + e * d[2]
            if 0 <= i < D and 0 <= j < H and 0 <= m < W:
                cols[:, :, a, bb, e, od, oh, ow] = x[:, :, i, j, m]
    return cols.reshape(N, C * int(np.prod(k)), int(np.prod(out)))
