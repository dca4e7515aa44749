"""Slow, obviously-correct NumPy references for pooling and resizing (no torch).

Each works on a batched ``(N, C, *spatial)`` float64 array, one output position at a
time, straight from the definitions (PyTorch's documented formulas and ATen's window
rules). They exist to check numq's kernels without torch.
"""
import itertools
import math

import numpy as np


def out_len(L, k, s, p, d, ceil_mode):
    """``torch.nn.MaxPool*`` / ``AvgPool*`` output length."""
    eff = d * (k - 1) + 1
    if ceil_mode:
        o = math.ceil((L + 2 * p - eff) / s) + 1
        if (o - 1) * s >= L + p:  # last window must start inside input or left padding
            o -= 1
    else:
        o = (L + 2 * p - eff) // s + 1
    return o


def max_pool(x, k, s, p, d, ceil_mode):
    """Max pooling (no NaNs): ``(values, flat per-plane argmax)``; ties -> first."""
    nd = len(k)
    sp = x.shape[2:]
    outs = [out_len(*a, ceil_mode) for a in zip(sp, k, s, p, d)]
    y = np.empty(x.shape[:2] + tuple(outs))
    ind = np.empty(y.shape, dtype=np.int64)
    for o in itertools.product(*[range(n) for n in outs]):
        pos = [[o[i] * s[i] - p[i] + j * d[i] for j in range(k[i])
                if 0 <= o[i] * s[i] - p[i] + j * d[i] < sp[i]] for i in range(nd)]
        best = None
        for q in itertools.product(*pos):  # row-major window order
            v = x[(slice(None), slice(None)) + q]
            flat = int(np.ravel_multi_index(q, sp))
            if best is None:
                best_v, best = v.copy(), np.full(v.shape, flat)
            else:
                take = v > best_v
                best_v = np.where(take, v, best_v)
                best = np.where(take, flat, best)
        y[(slice(None), slice(None)) + o] = best_v
        ind[(slice(None), slice(None)) + o] = best
    return y, ind


def avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    """Average pooling with torch's divisor rules."""
    nd = len(k)
    sp = x.shape[2:]
    outs = [out_len(L, ki, si, pi, 1, ceil_mode) for L, ki, si, pi in zip(sp, k, s, p)]
    y = np.empty(x.shape[:2] + tuple(outs))
    for o in itertools.product(*[range(n) for n in outs]):
        sl, padded, inside = [], 1, 1
        for i in range(nd):
            a = o[i] * s[i] - p[i]
            b = min(a + k[i], sp[i] + p[i])   # the window stops at the right padding
            padded *= b - a
            a2, b2 = max(a, 0), min(b, sp[i])
            inside *= b2 - a2
            sl.append(slice(a2, b2))
        total = x[(slice(None), slice(None)) + tuple(sl)].sum(axis=tuple(range(2, 2 + nd)))
        div = divisor_override or (padded if count_include_pad else inside)
        y[(slice(None), slice(None)) + o] = total / div
    return y


def adaptive_avg_pool(x, out):
    """Adaptive average pooling: window ``[floor(o*L/O), ceil((o+1)*L/O))``."""
    nd = len(out)
    sp = x.shape[2:]
    y = np.empty(x.shape[:2] + tuple(out))
    for o in itertools.product(*[range(n) for n in out]):
        sl = tuple(slice(math.floor(o[i] * sp[i] / out[i]),
                         math.ceil((o[i] + 1) * sp[i] / out[i])) for i in range(nd))
        y[(slice(None), slice(None)) + o] = x[(slice(None), slice(None)) + sl].mean(
            axis=tuple(range(2, 2 + nd)))
    return y


def nearest_index(L, O, scale_factor=None):
    """Nearest source index (PyTorch's legacy 'nearest': floor(o * in/out), float32)."""
    s = np.float32(1.0 / scale_factor) if scale_factor else np.float32(L) / np.float32(O)
    return [min(int(math.floor(np.float32(o) * s)), L - 1) for o in range(O)]


def nearest(x, out, scale_factors=None):
    """Nearest resize (size-based: scale = in / out, unless ``scale_factors`` given)."""
    y = x
    for i, O in enumerate(out):
        L = x.shape[2 + i]
        idx = nearest_index(L, O, None if scale_factors is None else scale_factors[i])
        y = np.take(y, idx, axis=2 + i)
    return y


def linear_weights(L, O, align_corners):
    """Source indices and weights of linear resizing (size-based scale), in float64."""
    rows = []
    for o in range(O):
        if align_corners:
            src = o * (L - 1) / (O - 1) if O > 1 else 0.0
        else:
            src = max((o + 0.5) * L / O - 0.5, 0.0)
        i0 = min(int(math.floor(src)), L - 1)
        i1 = min(i0 + 1, L - 1)
        w1 = min(max(src - i0, 0.0), 1.0)
        rows.append((i0, i1, 1.0 - w1, w1))
    return rows


def bilinear(x, out, align_corners):
    """Bilinear resize of ``(N, C, H, W)`` from the four-corner formula."""
    H, W = x.shape[2:]
    y = np.empty(x.shape[:2] + tuple(out))
    hw = linear_weights(H, out[0], align_corners) if out[0] != H else \
        [(o, o, 1.0, 0.0) for o in range(H)]
    ww = linear_weights(W, out[1], align_corners) if out[1] != W else \
        [(o, o, 1.0, 0.0) for o in range(W)]
    for oh, (h0, h1, a0, a1) in enumerate(hw):
        for ow, (w0, w1, b0, b1) in enumerate(ww):
            y[:, :, oh, ow] = (a0 * b0 * x[:, :, h0, w0] + a0 * b1 * x[:, :, h0, w1]
                               + a1 * b0 * x[:, :, h1, w0] + a1 * b1 * x[:, :, h1, w1])
    return y
