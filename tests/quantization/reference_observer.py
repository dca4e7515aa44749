"""Slow, obviously-correct NumPy references for numq's min/max observers.

:class:`RefObserver` transcribes torch 2.13's ``MinMaxObserver``,
``MovingAverageMinMaxObserver``, ``PerChannelMinMaxObserver`` and
``MovingAveragePerChannelMinMaxObserver`` statement by statement: min/max by a NaN-aware
scan of each channel (``np.moveaxis`` + ``reshape``), moving averages on ``np.float32``
scalars one operation at a time, qparams from ``reference_qparams.calculate_qparams``
(itself independent of numq). Shares no code with numq.
"""
import numpy as np

import reference_qparams as RQ

F32 = np.float32
EPS = float(np.finfo(np.float32).eps)

SCHEMES = {"per_tensor_affine": "affine", "per_channel_affine": "affine",
           "per_tensor_symmetric": "symmetric", "per_channel_symmetric": "symmetric",
           "per_channel_affine_float_qparams": "float_qparams"}


def symmetric_zero_point(dtype, qmin, qmax, custom):
    """torch: 128 for quint8 (the floor midpoint of a custom range), else 0."""
    if dtype == "quint8":
        return (qmin + qmax) // 2 if custom else 128
    return 0


def channel_minmax(x, ch_axis):
    """Per-channel (min, max) of ``x`` along ``ch_axis`` (NaN in a channel -> NaN, NaN)."""
    y = np.moveaxis(np.asarray(x, F32), ch_axis, 0)
    y = y.reshape(y.shape[0], -1)
    mins = np.empty(y.shape[0], F32)
    maxs = np.empty(y.shape[0], F32)
    for c in range(y.shape[0]):
        mins[c], maxs[c] = RQ.minmax(y[c])
    return mins, maxs


def _torch_min(a, b):
    return F32(np.nan) if (np.isnan(a) or np.isnan(b)) else F32(min(a, b))


def _torch_max(a, b):
    return F32(np.nan) if (np.isnan(a) or np.isnan(b)) else F32(max(a, b))


def _average(old, cur, c):
    """``old + c * (cur - old)`` with float32 rounding after each operation."""
    with np.errstate(all="ignore"):
        d = F32(F32(cur) - F32(old))
        p = F32(F32(c) * d)
        return F32(F32(old) + p)


class RefObserver:
    """Reference min/max observer.

    Parameters
    ----------
    dtype : str
        ``"quint8"``, ``"qint8"``, ``"qint32"`` or ``"quint4x2"``.
    qscheme : str
        A qscheme name (``"per_tensor_affine"`` ...).
    reduce_range : bool
    quant_min, quant_max : int or None
    eps : float
    ch_axis : int or None
        ``None``: per tensor; else per channel along this axis.
    averaging_constant : float or None
        ``None``: running min/max; else moving averages.
    """

    def __init__(self, dtype="quint8", qscheme="per_tensor_affine", reduce_range=False,
                 quant_min=None, quant_max=None, eps=EPS, ch_axis=None,
                 averaging_constant=None):
        self.dtype = dtype
        self.scheme = SCHEMES[qscheme]
        self.custom = quant_min is not None and quant_max is not None
        self.qmin, self.qmax = RQ.quant_range(dtype, reduce_range, quant_min, quant_max)
        self.eps = eps
        self.ch_axis = ch_axis
        self.c = averaging_constant
        if ch_axis is None:
            self.min_val = np.array(np.inf, F32)
            self.max_val = np.array(-np.inf, F32)
        else:
            self.min_val = np.empty(0, F32)
            self.max_val = np.empty(0, F32)

    def observe(self, x):
        x = np.asarray(x)
        if x.size == 0:
            return
        if self.ch_axis is None:
            mn, mx = RQ.minmax(x.astype(F32))
            mn, mx = np.array([mn], F32), np.array([mx], F32)
            fresh = self.min_val == np.inf and self.max_val == -np.inf
            old_mn, old_mx = self.min_val.reshape(1), self.max_val.reshape(1)
        else:
            mn, mx = channel_minmax(x.astype(F32), self.ch_axis)
            fresh = self.min_val.size == 0
            old_mn, old_mx = self.min_val, self.max_val
        if self.c is None:
            if not fresh or self.ch_axis is None:   # per tensor: min(cur, +inf) == cur
                mn = np.array([_torch_min(a, b) for a, b in zip(mn, old_mn)], F32)
                mx = np.array([_torch_max(a, b) for a, b in zip(mx, old_mx)], F32)
        elif not fresh:
            mn = np.array([_average(o, a, self.c) for a, o in zip(mn, old_mn)], F32)
            mx = np.array([_average(o, a, self.c) for a, o in zip(mx, old_mx)], F32)
        if self.ch_axis is None:
            self.min_val = np.array(mn[0], F32)
            self.max_val = np.array(mx[0], F32)
        else:
            self.min_val, self.max_val = mn, mx

    def qparams(self):
        """``(scale float32 (n,), zero_point (n,))``; ``None`` when torch would warn and
        return its defaults (nothing observed)."""
        if self.min_val.size == 0:
            return None
        if self.ch_axis is None and self.min_val == np.inf and self.max_val == -np.inf:
            return None
        sym = symmetric_zero_point(self.dtype, self.qmin, self.qmax, self.custom)
        return RQ.calculate_qparams(self.min_val, self.max_val, self.qmin, self.qmax,
                                    self.scheme, self.eps, sym)

    def zero_point_dtype(self):
        """torch's zero-point dtype for this scheme."""
        return {"affine": np.int32, "symmetric": np.int64,
                "float_qparams": np.float32}[self.scheme]
