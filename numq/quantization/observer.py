"""Observers: ``torch.ao.quantization.observer`` on NumPy arrays.

An observer is a :class:`numq.layers.Module` whose ``forward(x)`` records statistics of
``x`` (and returns ``x`` itself, unchanged) and whose ``calculate_qparams()`` turns them
into ``(scale, zero_point)`` arrays. Class names, constructor arguments, defaults, buffer
names and shapes follow PyTorch 2.13, so ``state_dict()`` keys map 1:1 with torch's, and
the qparams are bit-identical to torch's (``numq.kernels.qparams.calculate_qparams``).

Return types of ``calculate_qparams()`` (as torch's tensors, as NumPy arrays):

=================================  =========  ==========================================
qscheme                            scale      zero_point
=================================  =========  ==========================================
per_tensor/per_channel_affine      float32    int32
per_tensor/per_channel_symmetric   float32    int64
per_channel_affine_float_qparams   float32    float32
nothing observed                   ``[1.0]``  ``[0]`` int64 (and a warning)
=================================  =========  ==========================================

Errors: where torch raises ``AssertionError`` numq raises ``ValueError``; where torch
refuses an unsupported argument combination numq raises
:class:`UnsupportedObserverConfig`, a ``ValueError``; a channel axis out of range raises
``numpy.exceptions.AxisError`` (a ``ValueError`` and an ``IndexError``; torch raises
``IndexError``).
"""
import abc
import functools
import warnings

import numpy as np

from .. import dtypes as _dt
from .._qrange import qscheme_code, quant_range, symmetric_zero_point
from .._validate import float_scalar
from ..kernels.qparams import FLOAT_QPARAMS, SYMMETRIC, calculate_qparams as _qparams_kernel
from ..kernels.reduce import minmax_f32, minmax_per_channel_f32
from ..layers.module import Module

__all__ = [
    "ObserverBase", "UniformQuantizationObserverBase", "MinMaxObserver",
    "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver", "PlaceholderObserver", "RecordingObserver",
    "NoopObserver", "FixedQParamsObserver", "ReuseInputObserver",
    "UnsupportedObserverConfig", "get_observer_state_dict", "load_observer_state_dict",
    "default_observer", "default_placeholder_observer", "default_debug_observer",
    "default_weight_observer", "default_per_channel_weight_observer",
    "default_dynamic_quant_observer", "default_float_qparams_observer",
    "default_float_qparams_observer_4bit", "default_fixed_qparams_range_0to1_observer",
    "default_fixed_qparams_range_neg1to1_observer", "default_symmetric_fixed_qparams_observer",
    "default_affine_fixed_qparams_observer", "default_reuse_input_observer",
    "weight_observer_range_neg_127_to_127", "per_channel_weight_observer_range_neg_127_to_127",
]

#: ``torch.finfo(torch.float32).eps`` as a Python float (the observers' default ``eps``).
_EPS32 = float(np.finfo(np.float32).eps)
_F32 = np.dtype(np.float32)
_NO_DATA_MSG = "must run observer before calling calculate_qparams. Returning default values."


class UnsupportedObserverConfig(ValueError):
    """An argument combination torch refuses as unsupported (e.g. symmetric quint8 with
    ``reduce_range``); a ``ValueError``, numq's error for a bad argument value."""


# ------------------------------------------------------------- factories (with_args)

class _PartialWrapper:
    """A factory: calling it builds a new instance from the stored arguments.

    ``callable_args`` maps argument names to zero-argument callables evaluated at each
    construction (so every instance gets a fresh value); an explicit keyword wins.
    """

    def __init__(self, p):
        self.p = p
        self.callable_args = {}

    def __call__(self, *args, **keywords):
        for name, fn in self.callable_args.items():
            if name not in keywords:
                keywords[name] = fn()
        return self.p(*args, **keywords)

    def __repr__(self):
        return repr(self.p) + repr(self.callable_args)

    def with_args(self, **kwargs):
        return _with_args(self, **kwargs)

    def with_callable_args(self, **kwargs):
        result = _PartialWrapper(self.p)
        result.callable_args = {**self.callable_args, **kwargs}
        return result


def _with_args(cls_or_self, **kwargs):
    """Return a factory that builds ``cls_or_self(**kwargs)`` anew at each call.

    Chains: ``Obs.with_args(a=1).with_args(b=2)()`` is ``Obs(a=1, b=2)``; later keywords
    override earlier ones.
    """
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def _with_callable_args(cls_or_self, **kwargs):
    """Return a factory whose keyword ``k`` is ``kwargs[k]()``, evaluated per instance."""
    return _PartialWrapper(functools.partial(cls_or_self)).with_callable_args(**kwargs)


# ------------------------------------------------------------------- helpers

def _observer_dtype(dtype):
    """A numq ``QDType`` (names and NumPy storage dtypes accepted), or a NumPy float dtype
    for the placeholder observers' unquantized ``float32`` / ``float64``."""
    try:
        return _dt.as_qdtype(dtype)
    except TypeError:
        pass
    try:
        d = np.dtype(dtype)
    except (TypeError, ValueError):
        d = None
    if d is not None and d.kind == "f":
        return d
    raise TypeError("dtype must be a numq dtype (numq.quint8, qint8, qint32, quint4x2, "
                    f"float16) or a NumPy float dtype; got {dtype!r}")


def _observer_qscheme(qscheme):
    try:
        return _dt.as_qscheme(qscheme)
    except TypeError:
        # torch asserts qscheme is one of its five schemes
        raise ValueError("qscheme must be one of numq.per_tensor_affine, per_tensor_symmetric, "
                         "per_channel_affine, per_channel_symmetric, "
                         f"per_channel_affine_float_qparams; got {qscheme!r}") from None


def _is_per_tensor(qscheme):
    return qscheme in (_dt.per_tensor_affine, _dt.per_tensor_symmetric)


def _is_per_channel(qscheme):
    return qscheme in (_dt.per_channel_affine, _dt.per_channel_symmetric,
                       _dt.per_channel_affine_float_qparams)


def _as_f32(x):
    """``x`` as a C-contiguous float32 array (torch's ``x.to(float32)``).

    Float input is rounded to float32, integer/bool input converted, as torch's ``.to``
    would; float32 C-contiguous input is used as is (no copy).
    """
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype == _F32 and a.flags.c_contiguous:
        return a
    if a.dtype.kind not in "fiub":
        raise TypeError(f"x must be a real (float or integer) array; got dtype {a.dtype}")
    with np.errstate(over="ignore"):    # float64 beyond float32's range becomes +-inf
        return np.asarray(a, dtype=np.float32, order="C")


def _size(x):
    return x.size if isinstance(x, np.ndarray) else np.size(x)


def _check_min_max_valid(min_val, max_val):
    """torch's ``check_min_max_valid``: False (after warning) if nothing was observed;
    ``ValueError`` if a min exceeds its max (NaN passes, as in torch)."""
    if min_val.size == 0 or max_val.size == 0:
        warnings.warn(_NO_DATA_MSG, UserWarning, stacklevel=3)
        return False
    if min_val.ndim == 0 or max_val.ndim == 0:
        if min_val == np.inf and max_val == -np.inf:
            warnings.warn(_NO_DATA_MSG, UserWarning, stacklevel=3)
            return False
        if min_val > max_val:
            raise ValueError(f"min {min_val} should be less than max {max_val}")
    elif np.any(min_val > max_val):
        raise ValueError(f"min {min_val} should be less than max {max_val}")
    return True


# ------------------------------------------------------------------ the bases

class ObserverBase(Module, metaclass=abc.ABCMeta):
    """Base observer Module (``torch.ao.quantization.ObserverBase``).

    Subclasses define ``forward(x)`` (record statistics, return ``x``) and
    ``calculate_qparams()``.

    Parameters
    ----------
    dtype : QDType or NumPy float dtype
        The dtype the observed values will be quantized to (a ``QDType``), or the float
        dtype of a placeholder.
    is_dynamic : bool
        Whether the observer stands for dynamic quantization (qparams computed at run
        time from each input).
    """

    def __init__(self, dtype, is_dynamic=False):
        super().__init__()
        self.dtype = _observer_dtype(dtype)
        self.is_dynamic = is_dynamic

    @abc.abstractmethod
    def forward(self, x):
        """Record statistics of ``x`` and return ``x`` unchanged."""

    @abc.abstractmethod
    def calculate_qparams(self, **kwargs):
        """Return the quantization parameters computed from the observed statistics."""

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


class UniformQuantizationObserverBase(ObserverBase):
    """Common base of the observers that compute affine/symmetric qparams from a range.

    Parameters
    ----------
    dtype : QDType
        ``numq.quint8`` (default), ``qint8``, ``qint32`` or ``quint4x2`` (names and NumPy
        storage dtypes accepted).
    qscheme : QScheme
        One of the five numq qschemes (default ``numq.per_tensor_affine``).
    reduce_range : bool
        Halve the 8-bit range (quint8 ``[0, 127]``, qint8 ``[-64, 63]``); warns, as torch
        does, that ``quant_min`` / ``quant_max`` are preferred.
    quant_min, quant_max : int or None
        A custom integer range, used only when both are given (it must include 0).
    factory_kwargs : dict or None
        Accepted for torch compatibility; ignored (buffers are float32 NumPy arrays).
    eps : float
        Smallest scale; stored as a float32 buffer ``eps`` of shape ``(1,)``.
    is_dynamic : bool

    Attributes
    ----------
    quant_min, quant_max : int
        The effective range (after ``reduce_range``), as torch's ``calculate_qmin_qmax``.
    has_customized_qrange : bool

    Raises
    ------
    ValueError
        A qscheme or dtype torch does not accept here, or a custom range without 0,
        empty, or too long for the dtype.
    """

    _version = 3

    def __init__(self, dtype=_dt.quint8, qscheme=_dt.per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS32,
                 is_dynamic=False, **kwargs):
        super().__init__(dtype=dtype, is_dynamic=is_dynamic, **kwargs)
        self.qscheme = _observer_qscheme(qscheme)
        if reduce_range:
            # torch warns here too: its observers are moving to explicit ranges
            warnings.warn("reduce_range will be deprecated (as in torch); set the observer's "
                          "range with quant_min and quant_max instead", UserWarning,
                          stacklevel=2)
        self.reduce_range = reduce_range
        self.register_buffer("eps", np.array([float_scalar(eps, "eps")], dtype=np.float32))
        if self.dtype not in (_dt.qint8, _dt.quint8, _dt.quint4x2, _dt.qint32):
            raise ValueError("dtype must be one of numq.qint8, quint8, quint4x2, qint32 for "
                             f"{type(self).__name__}; got {self.dtype!r}")
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        self.quant_min, self.quant_max = quant_range(
            self.dtype.qmin, self.dtype.qmax, bool(reduce_range), quant_min, quant_max)

    def _validate_qmin_qmax(self, quant_min, quant_max):
        """Check a user range as torch does: it must include 0 and be non-empty."""
        if not quant_min <= 0 <= quant_max:
            raise ValueError("Used-specified quantization range must include 0; got "
                             f"quant_min={quant_min}, quant_max={quant_max}")
        if quant_min >= quant_max:
            raise ValueError("qmin must be strictly less than qmax for user-specified "
                             f"quantization range; got quant_min={quant_min}, "
                             f"quant_max={quant_max}")

    def _calculate_qparams(self, min_val, max_val):
        """Quantization parameters for a (min, max) range, per tensor or per channel.

        Parameters
        ----------
        min_val, max_val : numpy.ndarray
            float32, 0-d (per tensor) or shape ``(C,)`` (per channel).

        Returns
        -------
        scale : numpy.ndarray
            float32, shape ``(1,)`` for 0-d input, else ``min_val``'s shape.
        zero_point : numpy.ndarray
            Same shape; int32 (affine), int64 (symmetric) or float32 (float qparams).
            Nothing observed (empty buffers, or ``min = +inf, max = -inf`` per tensor):
            ``([1.0], [0])`` (float32, int64) after a ``UserWarning``.

        Raises
        ------
        ValueError
            If some ``min_val > max_val`` (torch raises ``AssertionError``).
        """
        min_val = np.asarray(min_val, dtype=np.float32)
        max_val = np.asarray(max_val, dtype=np.float32)
        if not _check_min_max_valid(min_val, max_val):
            return np.array([1.0], np.float32), np.array([0], np.int64)
        code = qscheme_code(self.qscheme)
        shape = (1,) if min_val.ndim == 0 else min_val.shape
        mn = np.ascontiguousarray(min_val.reshape(-1))
        mx = np.ascontiguousarray(np.broadcast_to(max_val, min_val.shape).reshape(-1))
        scale = np.empty(mn.size, np.float32)
        zp = np.empty(mn.size, np.float32 if code == FLOAT_QPARAMS else np.int32)
        sym_zp = symmetric_zero_point(self.dtype.qmin, self.dtype.qmax, self.quant_min,
                                      self.quant_max, self.has_customized_qrange)
        _qparams_kernel(mn, mx, int(self.quant_min), int(self.quant_max), code,
                        float(self.eps.reshape(-1)[0]), scale, zp, sym_zp)
        if code == SYMMETRIC:
            zp = zp.astype(np.int64)     # torch builds symmetric zero points as int64
        return scale.reshape(shape), zp.reshape(shape)

    def reset_min_max_vals(self):
        raise TypeError(f"Cannot reset min/max values in {type(self).__name__}: it does "
                        "not define reset_min_max_vals()")


#: torch's old name of :class:`UniformQuantizationObserverBase`.
_ObserverBase = UniformQuantizationObserverBase


# ------------------------------------------------------------- min/max observers

class MinMaxObserver(UniformQuantizationObserverBase):
    """Per-tensor qparams from the running minimum and maximum of the observed arrays.

    ``min_val = min(min_val, min(x))``, ``max_val = max(max_val, max(x))`` (float32 0-d
    buffers, starting at ``+inf`` / ``-inf``; NaN in ``x`` makes both NaN, as torch).
    Arguments as :class:`UniformQuantizationObserverBase`; ``qscheme`` must be per tensor.

    Raises
    ------
    UnsupportedObserverConfig
        A per-channel qscheme, or ``per_tensor_symmetric`` with ``reduce_range`` on quint8.
    """

    def __init__(self, dtype=_dt.quint8, qscheme=_dt.per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS32,
                 is_dynamic=False, **kwargs):
        if not _is_per_tensor(_observer_qscheme(qscheme)):
            raise UnsupportedObserverConfig(
                f"{type(self).__name__}'s qscheme only supports numq.per_tensor_symmetric "
                f"and numq.per_tensor_affine; got {qscheme!r}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.register_buffer("min_val", np.array(np.inf, np.float32))
        self.register_buffer("max_val", np.array(-np.inf, np.float32))
        if (self.qscheme is _dt.per_tensor_symmetric and self.reduce_range
                and self.dtype is _dt.quint8):
            raise UnsupportedObserverConfig(
                "Cannot reduce range for symmetric quantization for quint8")

    def forward(self, x_orig):
        """Update the running min/max with ``x_orig``; return ``x_orig`` itself."""
        if _size(x_orig) == 0:
            return x_orig
        mn, mx = minmax_f32(_as_f32(x_orig))
        # np.minimum / np.maximum propagate NaN as torch.min / torch.max do
        self.min_val[...] = np.minimum(mn, self.min_val)
        self.max_val[...] = np.maximum(mx, self.max_val)
        return x_orig

    def calculate_qparams(self):
        """``(scale, zero_point)``: float32 and int32 (affine) / int64 (symmetric) arrays
        of shape ``(1,)``."""
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self):
        """Forget the observed range (back to ``+inf`` / ``-inf``)."""
        self.min_val[...] = np.inf
        self.max_val[...] = -np.inf


def _moving_average(old, cur, c):
    """``old + c * (cur - old)`` in float32, one rounding per operation (torch's three
    separate tensor ops; ``c`` rounded to float32 as torch's scalar operand)."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf -> NaN, as torch
        return old + np.float32(c) * (cur - old)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Per-tensor qparams from moving averages of each array's min and max.

    The first array sets ``min_val`` / ``max_val``; afterwards
    ``min_val += averaging_constant * (min(x) - min_val)`` (same for max), in float32.

    Parameters
    ----------
    averaging_constant : float
        Default 0.01. ``is_dynamic=True`` requires 1 (each array's own range).
    dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic
        As :class:`MinMaxObserver`.
    """

    def __init__(self, averaging_constant=0.01, dtype=_dt.quint8,
                 qscheme=_dt.per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS32, is_dynamic=False, **kwargs):
        if not _is_per_tensor(_observer_qscheme(qscheme)):
            raise UnsupportedObserverConfig(
                f"MovingAverageMinMaxObserver's qscheme only supports "
                f"numq.per_tensor_symmetric and numq.per_tensor_affine; got {qscheme!r}")
        self.averaging_constant = averaging_constant
        if is_dynamic and averaging_constant != 1:
            raise UnsupportedObserverConfig(
                "MovingAverageMinMaxObserver doesn't support dynamic quantization for "
                f"averaging constant of {averaging_constant}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)

    def forward(self, x_orig):
        """Update the moving-average min/max with ``x_orig``; return ``x_orig`` itself."""
        if _size(x_orig) == 0:
            return x_orig
        mn, mx = minmax_f32(_as_f32(x_orig))
        old_mn, old_mx = self.min_val, self.max_val
        if not (old_mn == np.inf and old_mx == -np.inf):
            mn = _moving_average(old_mn, mn, self.averaging_constant)
            mx = _moving_average(old_mx, mx, self.averaging_constant)
        self.min_val[...] = mn
        self.max_val[...] = mx
        return x_orig


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Per-channel qparams from running per-channel minima and maxima.

    Each array is reduced over every axis but ``ch_axis``; ``min_val`` / ``max_val`` are
    float32 buffers of shape ``(C,)`` (empty until the first array, so a state dict of
    any channel count loads into a fresh observer).

    Parameters
    ----------
    ch_axis : int
        Channel axis of the observed arrays; negative values count from the end.
    dtype, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic
        As :class:`UniformQuantizationObserverBase`.
    qscheme : QScheme
        ``per_channel_affine`` (default), ``per_channel_symmetric`` or
        ``per_channel_affine_float_qparams``.

    Raises
    ------
    UnsupportedObserverConfig
        A per-tensor qscheme, ``is_dynamic=True``, or ``per_channel_symmetric`` with
        ``reduce_range`` on quint8.
    numpy.exceptions.AxisError
        (from ``forward``) ``ch_axis`` outside ``[-x.ndim, x.ndim)``, or a 0-d or 1-d
        array (torch cannot flatten the non-channel axes of those either).
    """

    def __init__(self, ch_axis=0, dtype=_dt.quint8, qscheme=_dt.per_channel_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS32, is_dynamic=False, **kwargs):
        if not _is_per_channel(_observer_qscheme(qscheme)):
            raise UnsupportedObserverConfig(
                f"{type(self).__name__}'s qscheme only supports numq.per_channel_symmetric, "
                "numq.per_channel_affine and numq.per_channel_affine_float_qparams; "
                f"got {qscheme!r}")
        if is_dynamic:
            raise UnsupportedObserverConfig(
                f"{type(self).__name__} doesn't support dynamic quantization")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", np.empty(0, np.float32))
        self.register_buffer("max_val", np.empty(0, np.float32))
        if (self.qscheme is _dt.per_channel_symmetric and self.reduce_range
                and self.dtype is _dt.quint8):
            raise UnsupportedObserverConfig(
                "Cannot reduce range for symmetric quantization for quint8")

    def _channel_minmax(self, x_orig):
        """Per-channel ``(min, max)`` of ``x_orig`` (float32 ``(C,)`` arrays)."""
        x = _as_f32(x_orig)
        ax = self.ch_axis
        if isinstance(ax, (bool, np.bool_)) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"ch_axis must be an int; got {type(ax).__name__} {ax!r}")
        nd = x.ndim
        if not -nd <= ax < nd:
            raise np.exceptions.AxisError(int(ax), nd, "ch_axis")
        if nd < 2:
            # torch flattens the non-channel axes from dim 1, which a 1-d tensor lacks
            raise np.exceptions.AxisError(
                f"ch_axis: {type(self).__name__} needs an array of at least 2 dimensions "
                f"(channels and the values to reduce); got a {nd}-d array")
        a = int(ax) % nd
        shape = x.shape
        C = shape[a]
        outer = int(np.prod(shape[:a], dtype=np.int64))
        inner = int(np.prod(shape[a + 1:], dtype=np.int64))
        mn = np.empty(C, np.float32)
        mx = np.empty(C, np.float32)
        minmax_per_channel_f32(x.reshape(outer, C, inner), mn, mx)
        return mn, mx

    def _set_min_max(self, mn, mx):
        # torch resizes the buffers to the result, then copies into them
        if self.min_val.shape == mn.shape:
            self.min_val[...] = mn
        else:
            self.min_val = np.array(mn, np.float32)
        if self.max_val.shape == mx.shape:
            self.max_val[...] = mx
        else:
            self.max_val = np.array(mx, np.float32)

    def _combine(self, fn, cur, old, what):
        try:
            return fn(cur, old)
        except ValueError:
            raise ValueError(f"{type(self).__name__}: this array has {cur.size} channels "
                             f"along ch_axis={self.ch_axis}, the observer has seen "
                             f"{old.size} ({what}); reset_min_max_vals() first") from None

    def forward(self, x_orig):
        """Update the per-channel running min/max with ``x_orig``; return ``x_orig``."""
        return self._forward(x_orig)

    def _forward(self, x_orig):
        if _size(x_orig) == 0:
            return x_orig
        mn, mx = self._channel_minmax(x_orig)
        if self.min_val.size and self.max_val.size:
            # broadcasting as torch.min(cur, old): a 1-channel history extends to C
            mn = self._combine(np.minimum, mn, self.min_val, "min_val")
            mx = self._combine(np.maximum, mx, self.max_val, "max_val")
        self._set_min_max(mn, mx)
        return x_orig

    def calculate_qparams(self):
        """``(scale, zero_point)`` arrays of shape ``(C,)`` (``([1.0], [0])`` with a
        warning before any data)."""
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # the buffers take the checkpoint's channel count (torch resizes them here)
        for name in ("min_val", "max_val"):
            key = prefix + name
            if key in state_dict:
                val = np.asarray(state_dict[key])
                if val.ndim != 1:
                    error_msgs.append(f"{key}: a per-channel observer's {name} must be 1-d; "
                                      f"got shape {val.shape}")
                    continue
                setattr(self, name, np.empty(val.shape, np.float32))
            elif strict:
                missing_keys.append(key)
        if (prefix + "min_val" in state_dict and prefix + "max_val" in state_dict
                and self.min_val.shape != self.max_val.shape):
            error_msgs.append(f"{prefix}min_val and {prefix}max_val must have the same shape; "
                              f"got {self.min_val.shape} and {self.max_val.shape}")
        super()._load_from_state_dict(state_dict, prefix, False, missing_keys,
                                      unexpected_keys, error_msgs)

    def reset_min_max_vals(self):
        """Forget the observed ranges (empty buffers)."""
        self.min_val = np.empty(0, np.float32)
        self.max_val = np.empty(0, np.float32)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """Per-channel qparams from moving averages of each array's per-channel min and max.

    The first array sets the buffers; afterwards
    ``min_val += averaging_constant * (min_c(x) - min_val)`` (same for max), float32.
    Arguments as :class:`PerChannelMinMaxObserver` plus ``averaging_constant`` (0.01).
    """

    def __init__(self, averaging_constant=0.01, ch_axis=0, dtype=_dt.quint8,
                 qscheme=_dt.per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS32, is_dynamic=False, **kwargs):
        if not _is_per_channel(_observer_qscheme(qscheme)):
            raise UnsupportedObserverConfig(
                "MovingAveragePerChannelMinMaxObserver's qscheme only supports "
                "numq.per_channel_symmetric, numq.per_channel_affine and "
                f"numq.per_channel_affine_float_qparams; got {qscheme!r}")
        if is_dynamic:
            raise UnsupportedObserverConfig(
                "MovingAveragePerChannelMinMaxObserver doesn't support dynamic quantization")
        super().__init__(ch_axis=ch_axis, dtype=dtype, qscheme=qscheme,
                         reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max,
                         eps=eps, is_dynamic=is_dynamic, **kwargs)
        self.averaging_constant = averaging_constant

    def forward(self, x_orig):
        """Update the per-channel moving averages with ``x_orig``; return ``x_orig``."""
        if _size(x_orig) == 0:
            return x_orig
        mn, mx = self._channel_minmax(x_orig)
        if self.min_val.size and self.max_val.size:
            c = self.averaging_constant
            mn = self._combine(lambda a, b: _moving_average(b, a, c), mn, self.min_val,
                               "min_val")
            mx = self._combine(lambda a, b: _moving_average(b, a, c), mx, self.max_val,
                               "max_val")
        self._set_min_max(mn, mx)
        return x_orig


# ---------------------------------------------------------- other observers

class FixedQParamsObserver(ObserverBase):
    """Observer with fixed qparams (for ops with a known output range: sigmoid, tanh...).

    Parameters
    ----------
    scale : float
        Stored as a float32 buffer ``scale`` of shape ``(1,)``.
    zero_point : int
        Stored as an int32 buffer ``zero_point`` of shape ``(1,)``.
    dtype, qscheme, quant_min, quant_max
        Recorded for the modules built from this observer (defaults quint8,
        per_tensor_affine, 0, 255).
    is_dynamic : bool
        Must be False.
    """

    def __init__(self, scale, zero_point, dtype=_dt.quint8, qscheme=_dt.per_tensor_affine,
                 quant_min=0, quant_max=255, is_dynamic=False, **kwargs):
        if is_dynamic:
            raise UnsupportedObserverConfig(
                "FixedQParamsObserver doesn't support dynamic quantization")
        super().__init__(dtype=dtype, is_dynamic=is_dynamic, **kwargs)
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.register_buffer("scale", np.array([scale], dtype=np.float32))
        self.register_buffer("zero_point", np.array([zero_point], dtype=np.int32))
        self.qscheme = _observer_qscheme(qscheme)

    def forward(self, X):
        return X

    def calculate_qparams(self):
        """The ``(scale, zero_point)`` buffers themselves (float32, int32; shape (1,))."""
        return self.scale, self.zero_point


class PlaceholderObserver(ObserverBase):
    """Observer that records nothing; it only carries its configuration (``dtype``,
    ``is_dynamic``, ...) to the quantized module's ``from_float``.

    Used for float16 quantization and dynamic quantization.

    Parameters
    ----------
    dtype : QDType or NumPy float dtype
        Default ``np.float32`` (torch's ``torch.float32``).
    custom_op_name : str
    compute_dtype : optional
        Deprecated (warns), as in torch; like torch it does not change ``is_dynamic``.
    quant_min, quant_max : int or None
    qscheme : QScheme or None
        ``None`` means ``numq.per_tensor_affine``.
    eps : float or None
        ``None`` means float32 eps.
    is_dynamic : bool
    """

    def __init__(self, dtype=np.float32, custom_op_name="", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None, is_dynamic=False):
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = _dt.per_tensor_affine if qscheme is None else _observer_qscheme(qscheme)
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.eps = _EPS32 if eps is None else eps
        self.custom_op = custom_op_name
        if compute_dtype:
            warnings.warn("compute_dtype is deprecated (as in torch); use is_dynamic",
                          UserWarning, stacklevel=2)

    def forward(self, x):
        return x

    def extra_repr(self):
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for PlaceholderObserver")


class RecordingObserver(ObserverBase):
    """Debug observer: keeps a copy of every observed array in ``tensor_val``."""

    def __init__(self, dtype=_dt.quint8):
        super().__init__(dtype=dtype, is_dynamic=False)
        self.tensor_val = []

    def forward(self, x):
        self.tensor_val.append(np.array(x, copy=True))
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for RecordingObserver")

    def get_tensor_value(self):
        """The list of recorded arrays."""
        return self.tensor_val


class NoopObserver(ObserverBase):
    """Observer that records nothing (default dtype ``numq.float16``); carries its dtype
    to ``from_float``."""

    def __init__(self, dtype=_dt.float16, custom_op_name=""):
        super().__init__(dtype=dtype, is_dynamic=False)
        self.custom_op = custom_op_name

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for NoopObserver")


class ReuseInputObserver(ObserverBase):
    """Marks an op (reshape ...) whose output reuses its input's observer (graph mode)."""

    def __init__(self):
        super().__init__(_dt.quint8, is_dynamic=False)

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for ReuseInputObserver")


# -------------------------------------------------------------- state dicts

def _is_activation_post_process(module):
    """An observer or a fake-quant module (torch's ``_is_activation_post_process``)."""
    if isinstance(module, ObserverBase):
        return True
    from . import fake_quantize   # imported here: fake_quantize imports this module
    base = getattr(fake_quantize, "FakeQuantizeBase", None)
    return base is not None and isinstance(module, base)


def get_observer_state_dict(mod):
    """The entries of ``mod.state_dict()`` that belong to observers / fake-quant modules
    (keys containing ``"activation_post_process"``), as an ``OrderedDict``."""
    od = type(mod.state_dict())()
    for k, v in mod.state_dict().items():
        if "activation_post_process" in k:
            od[k] = v
    return od


def load_observer_state_dict(mod, obs_dict):
    """Load observer statistics saved by :func:`get_observer_state_dict` into ``mod``.

    Every observer / fake-quant submodule loads its keys (per-channel buffers take the
    saved channel count).

    Raises
    ------
    KeyError
        An observer key is missing from ``obs_dict``.
    ValueError
        A saved array has the wrong shape for its buffer.

    Notes
    -----
    numq is stricter than torch 2.13 here and keeps the saved ``eps``. torch's eager path
    loads with ``strict=False`` and empty metadata, so it never reports missing keys
    (its "Missing keys for observer" check cannot fire), silently skips wrong shapes,
    and, taking the dict for a version-1 checkpoint, replaces every observer's ``eps``
    by float32 eps (inserting it into ``obs_dict``).
    """
    missing, unexpected, errors = [], [], []
    for name, module in mod.named_modules():
        if _is_activation_post_process(module):
            # torch builds the prefix as name + "." even for the root module
            module._load_from_state_dict(obs_dict, name + ".", False, missing, unexpected,
                                         errors)
    if errors:
        raise ValueError("Error(s) in loading the observer state dict:\n\t"
                         + "\n\t".join(errors))
    for k in missing:
        if "observer" in k or "activation_post_process" in k:
            raise KeyError(f"Missing keys for observer {k} in state_dict")
    for k in unexpected:
        if "observer" in k or "activation_post_process" in k:
            raise KeyError(f"Unexpected keys for observer {k} in state_dict")


# ------------------------------------------------------------------ defaults

#: Static-quantization activation observer, range restricted to [0, 127].
default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
#: Placeholder observer, usually for float16 quantization.
default_placeholder_observer = PlaceholderObserver
#: Debug observer recording every array.
default_debug_observer = RecordingObserver
#: Weight observer: qint8, per-tensor symmetric.
default_weight_observer = MinMaxObserver.with_args(dtype=_dt.qint8,
                                                   qscheme=_dt.per_tensor_symmetric)
#: Symmetric qint8 weight observer with values in [-127, 127] and eps 2**-12.
weight_observer_range_neg_127_to_127 = MinMaxObserver.with_args(
    dtype=_dt.qint8, qscheme=_dt.per_tensor_symmetric, quant_min=-127, quant_max=127,
    eps=2**-12)
#: Per-channel weight observer: qint8, per-channel symmetric (channel axis 0).
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=_dt.qint8, qscheme=_dt.per_channel_symmetric)
#: Per-channel symmetric qint8 weight observer, values in [-127, 127], eps 2**-12.
per_channel_weight_observer_range_neg_127_to_127 = PerChannelMinMaxObserver.with_args(
    dtype=_dt.qint8, qscheme=_dt.per_channel_symmetric, quant_min=-127, quant_max=127,
    eps=2**-12)
#: Dynamic-quantization activation placeholder (quint8, [0, 255], is_dynamic).
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=_dt.quint8, quant_min=0, quant_max=255, is_dynamic=True)
#: Per-row observer with float zero points (embedding weights), quint8.
default_float_qparams_observer = PerChannelMinMaxObserver.with_args(
    dtype=_dt.quint8, qscheme=_dt.per_channel_affine_float_qparams, ch_axis=0)
#: As :data:`default_float_qparams_observer`, 4-bit (quint4x2).
default_float_qparams_observer_4bit = PerChannelMinMaxObserver.with_args(
    dtype=_dt.quint4x2, qscheme=_dt.per_channel_affine_float_qparams, ch_axis=0)
#: Fixed qparams for outputs in [-1, 1] (tanh): scale 2/256, zero point 128.
default_fixed_qparams_range_neg1to1_observer = FixedQParamsObserver.with_args(
    scale=2.0 / 256.0, zero_point=128, dtype=_dt.quint8, quant_min=0, quant_max=255)
#: Fixed qparams for outputs in [0, 1] (sigmoid): scale 1/256, zero point 0.
default_fixed_qparams_range_0to1_observer = FixedQParamsObserver.with_args(
    scale=1.0 / 256.0, zero_point=0, dtype=_dt.quint8, quant_min=0, quant_max=255)
#: Old names of the two fixed-qparams defaults (kept by torch for compatibility).
default_symmetric_fixed_qparams_observer = default_fixed_qparams_range_neg1to1_observer
default_affine_fixed_qparams_observer = default_fixed_qparams_range_0to1_observer
#: Observer for ops (reshape ...) that reuse their input's observer.
default_reuse_input_observer = ReuseInputObserver

from ._histogram import HistogramObserver  # noqa: E402
#: Default histogram observer, usually used for post-training quantization (torch's
#: definition: quint8 restricted to [0, 127]).
default_histogram_observer = HistogramObserver.with_args(quant_min=0, quant_max=127)
__all__ += ["HistogramObserver", "default_histogram_observer"]
