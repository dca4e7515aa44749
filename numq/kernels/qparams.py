"""Quantization parameters from a min/max range (bit-exact with PyTorch 2.13).

Two rules live here:

:func:`calculate_qparams` (a Numba kernel)
    The observers' ``_calculate_qparams``
    (``torch.ao.quantization.observer.UniformQuantizationObserverBase``): float32
    tensor arithmetic, per tensor (1-element arrays) or per channel.
:func:`choose_qparams_dynamic` (plain Python: it is one scalar computation)
    ATen's ``quant_utils::ChooseQuantizationParams``, the fbgemm rule behind
    ``torch.quantize_per_tensor_dynamic`` and the dynamic quantized Linear: double
    precision scale, 0.1 fallback, 6.1e-5 small-scale cut, zero point from the side with
    the smaller error. :func:`choose_qparams_dynamic_range` gives the integer range it
    is called with.

``quantize_per_tensor_dynamic(x, dtype, reduce_range)`` is, in numq::

    mn, mx = minmax_f32(x)                                   # numq.kernels.reduce
    qmin, qmax = choose_qparams_dynamic_range(dtype, reduce_range)
    scale, zero_point = choose_qparams_dynamic(mn, mx, qmin, qmax)
    quantize_per_tensor(x, scale, zero_point, dtype)
"""
import math

import numpy as np

from ._jit import kernel

__all__ = ["AFFINE", "SYMMETRIC", "FLOAT_QPARAMS", "calculate_qparams",
           "choose_qparams_dynamic", "choose_qparams_dynamic_range",
           "SMALL_SCALE_THRESHOLD"]

# qscheme codes for calculate_qparams: per_tensor_/per_channel_ affine and symmetric share
# the rule (the array length decides per tensor vs per channel).
AFFINE = 0          #: per_tensor_affine, per_channel_affine
SYMMETRIC = 1       #: per_tensor_symmetric, per_channel_symmetric
FLOAT_QPARAMS = 2   #: per_channel_affine_float_qparams (float zero points)

_INT32_MIN = -(2**31)
_TWO31 = 2.0**31


@kernel
def _f32_to_int32_x86(r):
    """``static_cast<int32_t>(float)`` as x86 computes it (``cvttss2si``).

    NaN and values outside the int32 range give INT32_MIN, which torch then feeds into
    the zero-point arithmetic (so a NaN range yields a defined, odd zero point). In Numba
    a plain cast of those values is undefined, hence the explicit test.
    """
    if r >= -_TWO31 and r < _TWO31:
        return np.int64(r)
    return np.int64(_INT32_MIN)


@kernel
def _wrap_int32(v):
    """``v`` (int64) reduced modulo 2**32 into the int32 range (two's complement)."""
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


@kernel
def _max_nan(a, b):
    """``torch.max(a, b)`` on float32 scalars: NaN propagates."""
    if a != a or b != b:
        return np.float32(np.nan)
    return a if a >= b else b


@kernel
def calculate_qparams(min_val, max_val, quant_min, quant_max, qscheme_code, eps,
                      scale_out, zero_point_out, symmetric_zero_point):
    """Observer qparams (``_calculate_qparams``) for each (min, max) pair.

    All arithmetic is float32, as torch's tensor ops; results are bit-identical to
    ``MinMaxObserver`` / ``PerChannelMinMaxObserver.calculate_qparams`` in torch 2.13.

    Parameters
    ----------
    min_val, max_val : numpy.ndarray
        float32, shape ``(n,)``: the observed range (``n == 1`` per tensor). The caller
        checks ``min_val <= max_val`` where torch does (it raises otherwise); NaN and
        infinities are computed through exactly as torch does.
    quant_min, quant_max : int
        Effective integer range (after ``reduce_range``): see ``numq._qrange.quant_range``.
    qscheme_code : int
        :data:`AFFINE`, :data:`SYMMETRIC` or :data:`FLOAT_QPARAMS`.
    eps : float
        Python float; used as ``float32(eps)`` (torch keeps it in a float32 buffer).
    scale_out : numpy.ndarray
        float32, shape ``(n,)``.
    zero_point_out : numpy.ndarray
        int32 ``(n,)``; float32 for :data:`FLOAT_QPARAMS`.
    symmetric_zero_point : int
        The zero point of the symmetric schemes: torch picks it from the dtype, not from
        the range (128 for quint8 even when reduce_range gives [0, 127]; the range's
        floor midpoint for a custom quint8 range; 0 otherwise). Compute it with
        ``numq._qrange.symmetric_zero_point``. Ignored by the other schemes.

    Notes
    -----
    - ``min == +inf and max == -inf`` (nothing observed) gives scale 1.0, zero point 0.
      torch does this per tensor only; per channel torch raises (the caller's check).
    - affine: ``scale = max((max(max, 0) - min(min, 0)) / f32(qmax - qmin), f32(eps))``,
      ``zp = clamp(qmin - int32(rint(min(min, 0) / scale)), qmin, qmax)`` where the int32
      conversion and subtraction behave as on x86 (NaN -> INT32_MIN, wraparound): a NaN
      range gives ``zp = qmin`` or ``qmax`` exactly as torch.
    - symmetric: ``scale = max(max(-min(min, 0), max(max, 0)) / f32((qmax - qmin) / 2),
      f32(eps))`` (qint8 divides by 127.5).
    - float qparams: ``scale = (max - min) / f32(qmax - qmin)``, 1.0 unless ``> eps``;
      ``zp = -min / scale`` (float32; min and max are not extended to include 0).
    """
    eps32 = np.float32(eps)
    zero = np.float32(0.0)
    # torch divides a float32 tensor by a Python float: the divisor is rounded to float32
    # (exact for 8-bit ranges; 2**32 - 1 becomes 2**32 for qint32)
    span = np.float32(np.float64(quant_max - quant_min))
    half_span = np.float32(np.float64(quant_max - quant_min) / 2.0)
    for i in range(min_val.size):
        mn = min_val[i]
        mx = max_val[i]
        if mn == np.inf and mx == -np.inf:
            scale_out[i] = np.float32(1.0)
            zero_point_out[i] = 0
            continue
        if qscheme_code == FLOAT_QPARAMS:
            s = np.float32((mx - mn) / span)
            if not s > eps32:           # NaN too: torch.where(scale > eps, scale, 1)
                s = np.float32(1.0)
            scale_out[i] = s
            zero_point_out[i] = np.float32(-mn) / s
            continue
        # torch.min / torch.max with 0 propagate NaN
        min_neg = mn if (mn < zero or mn != mn) else zero
        max_pos = mx if (mx > zero or mx != mx) else zero
        if qscheme_code == SYMMETRIC:
            amax = _max_nan(np.float32(-min_neg), max_pos)
            scale_out[i] = _max_nan(np.float32(amax / half_span), eps32)
            zero_point_out[i] = symmetric_zero_point
            continue
        s = _max_nan(np.float32((max_pos - min_neg) / span), eps32)
        scale_out[i] = s
        r = np.rint(np.float32(min_neg / s))
        zp = _wrap_int32(quant_min - _f32_to_int32_x86(r))
        zero_point_out[i] = min(max(zp, quant_min), quant_max)


# ---------------------------------------------------------------- dynamic (fbgemm)

#: fbgemm / ATen ``SMALL_SCALE_THRESHOLD`` (``6.1e-5f``, the fp16 normal minimum), as
#: the double the C++ comparison promotes it to.
SMALL_SCALE_THRESHOLD = float(np.float32(6.1e-5))
# f32(scale) == 0 or 1.0f / f32(scale) == inf  <=>  f32(scale) <= 2**-128
#   <=>  scale <= 2**-128 + 2**-150 (the midpoint to the next float32 rounds down, to even)
_RECIPROCAL_INF_BOUND = 2.0**-128 + 2.0**-150
_F32_OVERFLOW = 2.0**128 - 2.0**103   # doubles at or above this round to float32 inf


def _f32(v):
    """Round a Python float to the nearest float32, returned as a Python float."""
    if abs(v) >= _F32_OVERFLOW:  # np.float32 would warn; the rounded value is +-inf
        return math.copysign(math.inf, v)
    return float(np.float32(v))


def choose_qparams_dynamic(xmin, xmax, qmin, qmax):
    """Per-tensor qparams of the dynamic path: ATen/fbgemm ``ChooseQuantizationParams``.

    Plain Python (one scalar computation; nothing to compile). Bit-exact with
    ``torch.quantize_per_tensor_dynamic(x, dtype, reduce_range).q_scale()`` and
    ``.q_zero_point()`` when called with ``x``'s min and max and the range from
    :func:`choose_qparams_dynamic_range`.

    Parameters
    ----------
    xmin, xmax : float
        The data's min and max (float32 values; other floats are first rounded to
        float32, as the C++ ``float`` parameters do).
    qmin, qmax : int
        Integer range, already reduced if ``reduce_range`` (``qmin < qmax``).

    Returns
    -------
    scale : float
        Double precision, as torch stores it (``q_scale()``); kernels use ``f32(scale)``.
    zero_point : int
        In ``[qmin, qmax]``, except ``-2**31`` when the range makes the zero point NaN
        (``+inf`` max or a ``(-inf, +inf)`` range), as torch; quantizing with it then
        fails validation as it does in torch.

    Raises
    ------
    ValueError
        If ``not xmin <= xmax`` (including NaN, which ``min()``/``max()`` propagate) or
        ``not qmin < qmax``; torch raises ``RuntimeError`` for both.

    Notes
    -----
    1. ``min = min(xmin, 0)``, ``max = max(xmax, 0)`` (float32).
    2. ``scale = (double(max) - min) / (qmax - qmin)`` in double; if ``f32(scale)`` is 0
       or its float32 reciprocal is inf, ``scale = 0.1``.
    3. If ``scale < 6.1e-5f``: ``scale = 6.1e-5f`` and the range is rescaled in float32:
       ``max = 6.1e-5f * (qmax - qmin)`` when ``min == 0``, ``min = -6.1e-5f * (qmax -
       qmin)`` when ``max == 0``, else both times ``f32(6.1e-5f / f32(old scale))``.
    4. ``zp_min = qmin - min / scale``, ``zp_max = qmax - max / scale`` (double); take
       ``zp_min`` if ``|qmin| - |min / scale| < |qmax| - |max / scale|`` else ``zp_max``
       (ATen's error terms, with a minus); clamp to ``[qmin, qmax]``, else round half to
       even (NaN -> ``-2**31``, the x86 conversion).
    """
    mn = _f32(float(xmin))
    mx = _f32(float(xmax))
    if not mn <= mx:
        raise ValueError(f"choose_qparams_dynamic: xmin must be <= xmax; got xmin={mn!r}, "
                         f"xmax={mx!r} (an input containing NaN has NaN min and max)")
    qmin = int(qmin)
    qmax = int(qmax)
    if not qmin < qmax:
        raise ValueError(f"choose_qparams_dynamic: qmin must be < qmax; got {qmin}, {qmax}")
    scale, zero_point = dynamic_qparams_core(float(mn), float(mx), qmin, qmax)
    return scale, int(zero_point)


@kernel
def _f32_jit(v):
    return np.float64(np.float32(v))


@kernel
def dynamic_qparams_core(mn, mx, qmin, qmax):
    """Steps 1-4 of :func:`choose_qparams_dynamic` for validated float32-valued bounds.

    Compiled so that kernels (the dynamic GEMM) can call it; the Python function is a
    validating wrapper. Returns ``(scale, zero_point)`` (float64, int64).
    """
    mn = min(mn, 0.0)
    mx = max(mx, 0.0)
    span = qmax - qmin
    # double(max) - double(min) is the C++ expression's only rounding before the divide
    scale = (mx - mn) / span
    if scale <= _RECIPROCAL_INF_BOUND:
        scale = 0.1
    if scale < SMALL_SCALE_THRESHOLD:
        org_scale = _f32_jit(scale)
        scale = SMALL_SCALE_THRESHOLD
        # float32 arithmetic: each product/quotient of float32 values is computed exactly
        # enough in double that rounding it once to float32 is the float32 result
        # (`float * int` in C++ converts the int to float first)
        if mn == 0.0:
            mx = _f32_jit(SMALL_SCALE_THRESHOLD * _f32_jit(span))
        elif mx == 0.0:
            mn = _f32_jit(-SMALL_SCALE_THRESHOLD * _f32_jit(span))
        else:
            amplifier = _f32_jit(SMALL_SCALE_THRESHOLD / org_scale)
            mn = _f32_jit(mn * amplifier)
            mx = _f32_jit(mx * amplifier)
    zp_from_min = qmin - mn / scale
    zp_from_max = qmax - mx / scale
    err_min = abs(qmin) - abs(mn / scale)
    err_max = abs(qmax) - abs(mx / scale)
    initial = zp_from_min if err_min < err_max else zp_from_max
    if initial < qmin:
        zero_point = np.int64(qmin)
    elif initial > qmax:
        zero_point = np.int64(qmax)
    elif initial != initial:
        zero_point = np.int64(_INT32_MIN)  # nearbyint(NaN) converted to int32 on x86
    else:
        zero_point = np.int64(np.rint(initial))   # half to even, as nearbyint
    return scale, zero_point


_DYNAMIC_RANGES = {"quint8": (0, 255), "qint8": (-128, 127)}


def choose_qparams_dynamic_range(dtype, reduce_range):
    """Integer range ``(qmin, qmax)`` that ``quantize_per_tensor_dynamic`` passes on.

    Parameters
    ----------
    dtype : str or QDType
        ``"quint8"`` or ``"qint8"`` (the only dtypes torch's dynamic quantization takes;
        ``float16`` there is a cast, not a quantization).
    reduce_range : bool
        Halve the range with C integer division (toward zero): quint8 ``[0, 127]``,
        qint8 ``[-64, 63]``. torch ignores ``reduce_range`` when its engine is
        ``qnnpack``; numq follows the x86/fbgemm engine, which honours it.
    """
    name = getattr(dtype, "name", dtype)
    if name not in _DYNAMIC_RANGES:
        raise ValueError(f"dtype must be quint8 or qint8 for dynamic quantization; got {dtype!r}")
    qmin, qmax = _DYNAMIC_RANGES[name]
    if reduce_range:
        qmin, qmax = int(qmin / 2), int(qmax / 2)   # C's truncating division
    return qmin, qmax
