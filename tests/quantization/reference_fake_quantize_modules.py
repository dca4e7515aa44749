"""Slow, line-by-line NumPy references for the fake-quant modules' arithmetic.

Scalars: ``np.float32`` values for C++ ``float``, Python floats for ``double``, so each
C++ expression's rounding is explicit.
"""
import math

import numpy as np

f32 = np.float32


def choose_qparams_fbgemm(mn, mx, qmin, qmax, preserve_sparsity):
    """fbgemm::ChooseQuantizationParams for one (min, max) pair -> (float32 scale, int zp)."""
    mn, mx = f32(mn), f32(mx)
    with np.errstate(all="ignore"):
        if mn < 0 and mx > 0 and preserve_sparsity:
            sqmin = -((qmax - qmin) // 2 + 1)
            sqmax = (qmax - qmin) // 2
            a = abs(mn / f32(sqmin))
            b = abs(mx / f32(sqmax))
            max_scale = float(b if a < b else a)
            mn = f32(max_scale * sqmin)
            mx = f32(max_scale * sqmax)
        mn = f32(0) if f32(0) < mn else mn
        mx = f32(0) if mx < f32(0) else mx
        scale = f32((float(mx) - float(mn)) / (qmax - qmin))
        if scale == 0 or math.isinf(f32(1) / scale):
            scale = f32(0.1)
        small = f32(6.1e-5)
        if scale < small:
            org = scale
            scale = small
            if mn == 0:
                mx = small * f32(qmax - qmin)
            elif mx == 0:
                mn = -small * f32(qmax - qmin)
            else:
                amp = small / org
                mn = mn * amp
                mx = mx * amp
        s = float(scale)
        zfm = qmin - float(mn) / s
        zfx = qmax - float(mx) / s
        em = abs(qmin) + abs(float(mn) / s)
        ex = abs(qmax) + abs(float(mx) / s)
        init = zfm if em < ex else zfx
        if mn < 0 and mx > 0 and preserve_sparsity:
            init = (qmin + qmax) / 2
        if init < qmin:
            zp = qmin
        elif init > qmax:
            zp = qmax
        elif math.isnan(init):
            zp = -(2**31)
        else:
            zp = int(np.rint(init))
    return scale, zp


def moving_average(running, cur, c):
    """The fused op's float32 update: ``cur`` when ``running`` is +-inf."""
    running, cur = f32(running), f32(cur)
    if math.isinf(running):
        return cur
    with np.errstate(all="ignore"):
        return f32(running + f32(c) * f32(cur - running))


def fake_quant(x, scale, zp, qmin, qmax):
    """``(y, mask)``: code ``zp + rint(x * (1 / scale))`` (float32 multiply), for finite x."""
    x = np.asarray(x, np.float32)
    inv = f32(1) / f32(scale)
    code = np.rint((x * inv).astype(np.float32)).astype(np.float64) + zp
    mask = (code >= qmin) & (code <= qmax)
    y = ((np.clip(code, qmin, qmax) - zp) * np.float64(f32(scale))).astype(np.float32)
    return y, mask


def fused_per_tensor(batches, qmin, qmax, symmetric, c):
    """Outputs, masks and (min, max, scale, zp) after each batch of a per-tensor fused
    module with both flags on."""
    rmin, rmax = f32(np.inf), f32(-np.inf)
    results = []
    for x in batches:
        rmin = moving_average(rmin, x.min(), c)
        rmax = moving_average(rmax, x.max(), c)
        s, z = choose_qparams_fbgemm(rmin, rmax, qmin, qmax, symmetric)
        y, m = fake_quant(x, s, z, qmin, qmax)
        results.append((y, m, rmin, rmax, s, z))
    return results
