"""Slow, obviously-correct NumPy references for numq's min/max and qparams kernels.

Each function transcribes the rule it is named after (``shared/NUMERICS.md``, torch's
``_calculate_qparams``, ATen's ``ChooseQuantizationParams``) statement by statement,
with every float32 operation done on ``np.float32`` scalars, and shares no code with
numq.
"""
import numpy as np

F32 = np.float32
INT32_MIN = -(2**31)


def minmax(x):
    """``torch.aminmax(x)``: NaN anywhere makes both results NaN."""
    x = np.asarray(x, F32).ravel()
    if x.size == 0:
        raise ValueError("empty")
    if np.isnan(x).any():
        return F32(np.nan), F32(np.nan)
    return F32(x.min()), F32(x.max())


def minmax_per_channel(x3):
    """Per-channel (axis 1 of an (outer, C, inner) array) min and max, NaN-propagating."""
    x3 = np.asarray(x3, F32)
    C = x3.shape[1]
    mins = np.empty(C, F32)
    maxs = np.empty(C, F32)
    for c in range(C):
        mins[c], maxs[c] = minmax(x3[:, c, :])
    return mins, maxs


# ----------------------------------------------------------------- observer rule

def quant_range(dtype, reduce_range, quant_min=None, quant_max=None):
    """``torch.ao.quantization.utils.calculate_qmin_qmax`` for numq's dtypes (by name)."""
    if quant_min is not None and quant_max is not None:
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    table = {
        ("quint8", False): (0, 255), ("quint8", True): (0, 127),
        ("qint8", False): (-128, 127), ("qint8", True): (-64, 63),
        ("qint32", False): (-(2**31), 2**31 - 1), ("qint32", True): (-(2**31), 2**31 - 1),
        ("quint4x2", False): (0, 15), ("quint4x2", True): (0, 15),
    }
    return table[(dtype, bool(reduce_range))]


def _float_to_int32_x86(v):
    """C++ ``static_cast<int32_t>(float)`` on x86: NaN / out of range -> INT32_MIN."""
    if np.isnan(v) or v >= 2.0**31 or v < -(2.0**31):
        return INT32_MIN
    return int(v)


def _int32_wrap(v):
    return (v + 2**31) % 2**32 - 2**31


def _torch_max(a, b):
    """``torch.max`` / ``torch.maximum`` on float32 scalars (NaN wins)."""
    if np.isnan(a) or np.isnan(b):
        return F32(np.nan)
    return F32(max(a, b))


def _torch_min(a, b):
    if np.isnan(a) or np.isnan(b):
        return F32(np.nan)
    return F32(min(a, b))


def calculate_qparams(min_val, max_val, qmin, qmax, scheme, eps, sym_zero_point=0):
    """``_calculate_qparams`` element by element; ``scheme`` in {"affine", "symmetric",
    "float_qparams"}. Returns ``(scale float32 array, zero_point array)``; the zero point
    is int64 (float32 for float_qparams)."""
    min_val = np.atleast_1d(np.asarray(min_val, F32))
    max_val = np.atleast_1d(np.asarray(max_val, F32))
    n = min_val.size
    scale = np.empty(n, F32)
    zp = np.empty(n, F32 if scheme == "float_qparams" else np.int64)
    eps = F32(eps)
    with np.errstate(all="ignore"):
        for i in range(n):
            mn, mx = min_val[i], max_val[i]
            if mn == np.inf and mx == -np.inf:
                scale[i], zp[i] = 1.0, 0
                continue
            if scheme == "float_qparams":
                s = F32(mx - mn) / F32(float(qmax - qmin))
                s = s if s > eps else F32(1.0)
                scale[i] = s
                zp[i] = F32(F32(-1.0) * mn) / s
                continue
            min_neg = _torch_min(mn, F32(0.0))
            max_pos = _torch_max(mx, F32(0.0))
            if scheme == "symmetric":
                max_pos = _torch_max(F32(-min_neg), max_pos)
                s = F32(max_pos / F32(float(qmax - qmin) / 2))
                scale[i] = _torch_max(s, eps)
                zp[i] = sym_zero_point
                continue
            s = F32(F32(max_pos - min_neg) / F32(float(qmax - qmin)))
            s = _torch_max(s, eps)
            scale[i] = s
            r = np.rint(F32(min_neg / s))
            z = _int32_wrap(qmin - _float_to_int32_x86(r))
            zp[i] = min(max(z, qmin), qmax)
    return scale, zp


# ------------------------------------------------------------- dynamic (ATen rule)

def choose_qparams_dynamic(xmin, xmax, qmin, qmax):
    """ATen ``quant_utils::ChooseQuantizationParams(min, max, qmin, qmax, false, false,
    false)``: ``float`` variables are np.float32, ``double`` ones Python floats."""
    fmin = F32(xmin)
    fmax = F32(xmax)
    if not fmin <= fmax:
        raise ValueError("min > max")
    assert qmin < qmax
    with np.errstate(all="ignore"):
        fmin = fmin if not F32(0.0) < fmin else F32(0.0)   # std::min(min, 0.f)
        fmax = fmax if not fmax < F32(0.0) else F32(0.0)   # std::max(max, 0.f)
        scale = (float(fmax) - float(fmin)) / float(qmax - qmin)
        if F32(scale) == F32(0.0) or np.isinf(F32(1.0) / F32(scale)):
            scale = 0.1
        threshold = F32(6.1e-5)
        if scale < float(threshold):
            org_scale = F32(scale)
            scale = float(threshold)
            if fmin == F32(0.0):
                fmax = threshold * F32(qmax - qmin)
            elif fmax == F32(0.0):
                fmin = -threshold * F32(qmax - qmin)
            else:
                amplifier = threshold / org_scale
                fmin = F32(fmin * amplifier)
                fmax = F32(fmax * amplifier)
        zp_min = qmin - float(fmin) / scale
        zp_max = qmax - float(fmax) / scale
        err_min = abs(qmin) - abs(float(fmin) / scale)
        err_max = abs(qmax) - abs(float(fmax) / scale)
        initial = zp_min if err_min < err_max else zp_max
    if initial < qmin:
        z = qmin
    elif initial > qmax:
        z = qmax
    elif np.isnan(initial):
        z = INT32_MIN
    else:
        z = int(np.rint(initial))
    return scale, z
