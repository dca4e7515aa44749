"""Fake-quantization modules for QAT (``torch.ao.quantization.fake_quantize``).

A fake-quant module is a :class:`numq.layers.Module` that, in ``forward(x)``, updates its
observer with ``x`` (if the observer is enabled), copies the observer's qparams into its
``scale`` / ``zero_point`` buffers and returns ``x`` fake-quantized with them (if fake
quantization is enabled; else ``x`` itself). ``backward(grad_output)`` is the
straight-through estimator: ``grad_output * mask``, the mask (True where the rounded
value was not clamped) kept from the last training-mode forward in ``self._saved``.
:class:`_LearnableFakeQuantize` also accumulates ``scale.grad`` / ``zero_point.grad``.

Class names, constructor arguments, buffers (``fake_quant_enabled``, ``observer_enabled``,
``scale``, ``zero_point``: same names, dtypes and shapes as torch 2.13, so ``state_dict()``
maps 1:1) and outputs follow PyTorch. The fake-quant arithmetic is numq's bit-exact
:mod:`numq.fake_quantize`; :class:`FusedMovingAvgObsFakeQuantize` reproduces torch's
fused op, whose qparams come from fbgemm's ``ChooseQuantizationParams`` (not from the
observer's ``calculate_qparams``, see :func:`_choose_qparams_fbgemm`).

Where torch raises ``AssertionError`` numq raises ``ValueError``; torch's
``RuntimeError`` for a wrong input dtype is a ``TypeError`` here.
"""
import abc
import math
import struct

import numpy as np

from .. import dtypes as _dt
from .. import fake_quantize as _fq
from ..kernels.reduce import minmax_f32, minmax_per_channel_f32
from ..layers.module import Module
from ..layers.parameter import Parameter
from .observer import (FixedQParamsObserver, HistogramObserver, MovingAverageMinMaxObserver,
                       MovingAveragePerChannelMinMaxObserver, _with_args,
                       default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer)

__all__ = [
    "FakeQuantizeBase", "FakeQuantize", "FixedQParamsFakeQuantize",
    "FusedMovingAvgObsFakeQuantize",
    "disable_fake_quant", "disable_observer", "enable_fake_quant", "enable_observer",
    "default_fake_quant", "default_weight_fake_quant", "default_dynamic_fake_quant",
    "default_fixed_qparams_range_neg1to1_fake_quant",
    "default_fixed_qparams_range_0to1_fake_quant",
    "default_symmetric_fixed_qparams_fake_quant", "default_affine_fixed_qparams_fake_quant",
    "default_per_channel_weight_fake_quant", "default_embedding_fake_quant",
    "default_embedding_fake_quant_4bit", "default_histogram_fake_quant",
    "default_fused_act_fake_quant", "default_fused_wt_fake_quant",
    "default_fused_per_channel_wt_fake_quant", "fused_wt_fake_quant_range_neg_127_to_127",
    "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
]

_F32 = np.dtype(np.float32)
_INT32_MIN = -(2**31)
_INT64_MIN = -(2**63)
_EPS32 = float(np.finfo(np.float32).eps)
_IDENTITY = "identity"       # self._saved marker: backward passes the gradient through


# ------------------------------------------------------------------------- helpers

def _is_per_channel(qscheme):
    return qscheme in (_dt.per_channel_symmetric, _dt.per_channel_affine,
                       _dt.per_channel_affine_float_qparams)


def _is_per_tensor(qscheme):
    return qscheme in (_dt.per_tensor_symmetric, _dt.per_tensor_affine)


def _is_symmetric_quant(qscheme):
    return qscheme in (_dt.per_tensor_symmetric, _dt.per_channel_symmetric)


def _is_float_qparams(qscheme):
    return qscheme is _dt.per_channel_affine_float_qparams


def _dtype_bounds(dtype):
    """``torch.iinfo(dtype)``'s (min, max): the storage type's range (quint4x2: 0..255)."""
    q = _dt.as_qdtype(dtype)
    info = np.iinfo(q.storage) if q.storage.kind in "iu" else None
    if info is None:
        raise ValueError(f"dtype must be an integer quantized dtype to bound quant_min / "
                         f"quant_max; got {q!r}")
    return int(info.min), int(info.max)


def _as_input(X):
    return X if isinstance(X, np.ndarray) else np.asarray(X)


def _flag(buf):
    """Value of a ``[0/1]`` enable buffer as a Python int."""
    return int(buf.reshape(-1)[0])


def _check_grad(grad_output, shape):
    g = _as_input(grad_output)
    if g.shape != shape:
        raise ValueError(f"grad_output must have the forward input's shape {shape}; "
                         f"got {g.shape}")
    return g


# ------------------------------------------------- fake quantization with any qparams

def _generic_fake_quant(x, scale, zero_point, qmin, qmax, axis):
    """NumPy fake quantization for qparams the fast kernels refuse (NaN / inf / non-positive
    scale, NaN float zero point, per-tensor zero point outside the range).

    Such qparams only come from non-finite observed data or a hand-written state dict.
    The formula is torch's kernel expression, so the results follow torch's (all NaN / inf
    outputs where the scale is NaN / inf): ``code = zp + rint(x * (1 / scale))`` in
    float32, a non-finite code counting as int64 min (below the range: mask False, value
    ``quant_min``); ``y = (clamp(code) - zp) * scale``. Float zero points use
    ``code = rint(x * inv + zp)``.
    """
    work = np.float64 if x.dtype == np.float64 else np.float32
    xw = x.astype(work, copy=False)
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = -1
    s = np.asarray(scale, np.float32).reshape(shape)
    z = np.asarray(zero_point).reshape(shape)
    with np.errstate(all="ignore"):
        inv = (np.float32(1.0) / s).astype(work)
        t = xw * inv
        if z.dtype.kind == "f":
            zf = z.astype(np.float32)
            code = np.rint(t + zf.astype(work))
            ok = ~np.isnan(code)
            c = np.where(ok, code, np.float64(qmin))
            y = (np.clip(c, qmin, qmax) - zf) * s
            mask = ok & (code >= qmin) & (code <= qmax)
        else:
            zi = z.astype(np.int64)
            code = np.rint(t) + zi.astype(work)
            ok = np.isfinite(code) & (np.abs(code) < 2.0**63)
            ci = np.where(ok, code, 0).astype(np.int64)
            ci = np.where(ok, ci, _INT64_MIN)
            mask = (ci >= qmin) & (ci <= qmax)
            y = (np.clip(ci, qmin, qmax).astype(np.float64) - zi) * s.astype(np.float64)
        y = np.broadcast_to(y, x.shape).astype(x.dtype)
    return y, np.broadcast_to(mask, x.shape).copy()


def _fake_quant_per_tensor(x, scale, zero_point, qmin, qmax):
    """``(y, mask)`` with one-element ``scale`` / ``zero_point`` arrays (torch's tensor-qparams
    ``_fake_quantize_per_tensor_affine_cachemask_tensor_qparams``)."""
    if scale.size != 1 or zero_point.size != 1:
        raise ValueError("per-tensor fake quantization needs one scale and one zero point; "
                         f"got shapes {scale.shape} and {zero_point.shape}")
    s = float(np.float32(scale.reshape(-1)[0]))
    z = int(zero_point.reshape(-1)[0])
    if math.isfinite(s) and s > 0 and qmin <= z <= qmax:
        return _fq.fake_quantize_per_tensor_affine_cachemask(x, float(s), z, qmin, qmax)
    # torch does not check the zero point here (unlike the per-channel op)
    return _generic_fake_quant(x, scale, np.array([z], np.int64), qmin, qmax, None)


def _fake_quant_per_channel(x, scale, zero_point, axis, qmin, qmax):
    """``(y, mask)`` of ``fake_quantize_per_channel_affine_cachemask``; integer zero points
    outside ``[qmin, qmax]`` raise ``ValueError`` as in torch."""
    if x.ndim == 0:
        raise ValueError("per-channel fake quantization needs an input with at least one "
                         "dimension")
    a = axis + x.ndim if axis < 0 else axis
    if not 0 <= a < x.ndim:
        raise ValueError(f"ch_axis must be in [{-x.ndim}, {x.ndim - 1}] for a {x.ndim}-d "
                         f"input; got {axis}")
    s = np.asarray(scale, np.float32)
    z = np.asarray(zero_point)
    n = x.shape[a]
    if s.shape != (n,) or z.shape != (n,):
        raise ValueError(f"scale and zero_point must have shape ({n},) (input.shape[{axis}]); "
                         f"got {s.shape} and {z.shape}")
    if z.dtype.kind != "f" and n and (z.min() < qmin or z.max() > qmax):
        raise ValueError("zero_point must be between quant_min and quant_max "
                         f"([{qmin}, {qmax}]); got values in [{z.min()}, {z.max()}]")
    finite_zp = z.dtype.kind != "f" or bool(np.all(np.isfinite(z)))
    if finite_zp and bool(np.all(np.isfinite(s) & (s > 0))):
        return _fq.fake_quantize_per_channel_affine_cachemask(x, s, z, a, qmin, qmax)
    return _generic_fake_quant(x, s, z, qmin, qmax, a)


# ------------------------------------------------------- the fused op's qparams rule

_SMALL_SCALE = np.float32(6.1e-5)


def _choose_qparams_fbgemm(min_val, max_val, qmin, qmax, preserve_sparsity):
    """fbgemm's ``ChooseQuantizationParams`` on float32 arrays, elementwise.

    This is what torch's ``fused_moving_avg_obs_fake_quant`` (x86 build, ``USE_FBGEMM``)
    computes from the running min / max, per tensor or per channel. It differs from the
    observers' rule: the scale is rounded to float32 at once, a tiny or zero scale
    becomes 0.1, scales below ``6.1e-5`` are raised to it, the zero point comes from the
    end with the smaller ``|q| + |r / scale|`` and, when ``preserve_sparsity`` (symmetric
    qschemes) and ``min < 0 < max``, is the midpoint ``rint((qmin + qmax) / 2)`` (128 for
    [0, 255], 0 for [-128, 127]) after widening the range symmetrically. There is no
    ``min <= max`` check: nothing observed (``+inf, -inf``) gives scale 0.1, zero point
    ``qmin``-side 0 clamped; a NaN range gives scale NaN and zero point ``-2**31``.

    Returns
    -------
    scale : ndarray of float32
    zero_point : ndarray of int32
    """
    f64 = np.float64
    mn = np.array(min_val, dtype=np.float32).reshape(-1)
    mx = np.array(max_val, dtype=np.float32).reshape(-1)
    span = int(qmax) - int(qmin)
    with np.errstate(all="ignore"):
        if preserve_sparsity:
            sym = (mn < 0) & (mx > 0)
            if sym.any():
                sqmin = -(span // 2 + 1)
                sqmax = span // 2
                a = np.abs(mn / np.float32(sqmin))           # float / int: float32 division
                b = np.abs(mx / np.float32(sqmax))
                max_scale = np.where(a < b, b, a).astype(f64)   # std::max(a, b)
                mn = np.where(sym, (max_scale * sqmin).astype(np.float32), mn)
                mx = np.where(sym, (max_scale * sqmax).astype(np.float32), mx)
        zero = np.float32(0.0)
        mn = np.where(zero < mn, zero, mn)       # std::min(min, 0.f): NaN stays NaN
        mx = np.where(mx < zero, zero, mx)       # std::max(max, 0.f)
        scale = ((mx.astype(f64) - mn.astype(f64)) / span).astype(np.float32)
        tiny = (scale == 0) | np.isinf(np.float32(1.0) / scale)
        scale = np.where(tiny, np.float32(0.1), scale)
        small = scale < _SMALL_SCALE
        if small.any():
            amp = _SMALL_SCALE / scale
            at_min0 = mn == 0
            at_max0 = ~at_min0 & (mx == 0)
            other = ~at_min0 & ~at_max0
            span32 = np.float32(span)
            mx = np.where(small & at_min0, _SMALL_SCALE * span32, mx)
            mn = np.where(small & at_max0, -_SMALL_SCALE * span32, mn)
            mn = np.where(small & other, mn * amp, mn)
            mx = np.where(small & other, mx * amp, mx)
            scale = np.where(small, _SMALL_SCALE, scale)
        s64 = scale.astype(f64)
        rmin = mn.astype(f64) / s64
        rmax = mx.astype(f64) / s64
        err_min = abs(qmin) + np.abs(rmin)
        err_max = abs(qmax) + np.abs(rmax)
        initial = np.where(err_min < err_max, qmin - rmin, qmax - rmax)
        if preserve_sparsity:
            initial = np.where((mn < 0) & (mx > 0), (qmin + qmax) / 2, initial)
        r = np.rint(initial)
        r = np.where(np.isnan(r), _INT32_MIN, r)          # nearbyint(NaN) -> int32 on x86
        zp = np.where(initial < qmin, qmin, np.where(initial > qmax, qmax, r))
    return scale, zp.astype(np.int32)


_SMALL_SCALE_PY = float(_SMALL_SCALE)
_PACK_F32 = struct.Struct("f")


def _r32(v):
    """Round a Python float to float32 (kept as a Python float). One rounding of the exact
    double result is float32 arithmetic for +, -, *, / of float32 values."""
    try:
        return _PACK_F32.unpack(_PACK_F32.pack(v))[0]
    except OverflowError:      # older Pythons refuse to pack values beyond float32's range
        return math.copysign(math.inf, v)


def _choose_qparams_fbgemm_scalar(mn, mx, qmin, qmax, preserve_sparsity):
    """:func:`_choose_qparams_fbgemm` for one (min, max) pair, in Python floats (the per-tensor
    fused module calls it at every step; a dozen NumPy calls would cost more than the op).

    Returns ``(scale, zero_point)`` as a Python float holding a float32 value and an int.
    """
    mn = _r32(float(mn))
    mx = _r32(float(mx))
    span = qmax - qmin
    if preserve_sparsity and mn < 0 and mx > 0:
        sqmin = -(span // 2 + 1)
        sqmax = span // 2
        a = abs(_r32(mn / sqmin))
        b = abs(_r32(mx / sqmax))
        max_scale = b if a < b else a
        mn = _r32(max_scale * sqmin)
        mx = _r32(max_scale * sqmax)
    mn = 0.0 if 0.0 < mn else mn
    mx = 0.0 if mx < 0.0 else mx
    scale = _r32((mx - mn) / span)
    if scale == 0.0 or math.isinf(_r32(1.0 / scale)):
        scale = _r32(0.1)
    if scale < _SMALL_SCALE_PY:
        org = scale
        scale = _SMALL_SCALE_PY
        if mn == 0.0:
            mx = _r32(scale * _r32(span))
        elif mx == 0.0:
            mn = _r32(-scale * _r32(span))
        else:
            amp = _r32(scale / org)
            mn = _r32(mn * amp)
            mx = _r32(mx * amp)
    rmin = mn / scale
    rmax = mx / scale
    if abs(qmin) + abs(rmin) < abs(qmax) + abs(rmax):
        initial = qmin - rmin
    else:
        initial = qmax - rmax
    if preserve_sparsity and mn < 0 and mx > 0:
        initial = (qmin + qmax) / 2
    if initial < qmin:
        return scale, qmin
    if initial > qmax:
        return scale, qmax
    if initial != initial:
        return scale, _INT32_MIN          # nearbyint(NaN) -> int32 on x86
    return scale, round(initial)          # half to even, as nearbyint


def _moving_average_scalar(running, current, c):
    """:func:`_moving_average` for one value, in Python floats (float32 arithmetic)."""
    running = float(running)
    current = float(current)
    if math.isinf(running):
        return current
    return _r32(running + _r32(_r32(c) * _r32(current - running)))


def _moving_average(running, current, c):
    """torch's fused update in float32: ``r + c * (cur - r)``, or ``cur`` where ``r`` is +-inf."""
    with np.errstate(all="ignore"):
        upd = running + np.float32(c) * (current - running)
    return np.where(np.isinf(running), current, upd).astype(np.float32)


# ------------------------------------------------------------------------- modules

class FakeQuantizeBase(Module, metaclass=abc.ABCMeta):
    """Base fake-quantize module (``torch.ao.quantization.FakeQuantizeBase``).

    Holds the two enable flags as ``uint8`` buffers of shape ``(1,)``:
    ``fake_quant_enabled`` and ``observer_enabled``. Subclasses define ``forward`` and
    ``calculate_qparams``; ``backward(grad_output)`` applies the straight-through mask
    saved by the last training-mode ``forward``.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("fake_quant_enabled", np.array([1], dtype=np.uint8))
        self.register_buffer("observer_enabled", np.array([1], dtype=np.uint8))

    @abc.abstractmethod
    def forward(self, x):
        """Observe (if enabled) and fake-quantize (if enabled) ``x``."""

    @abc.abstractmethod
    def calculate_qparams(self, **kwargs):
        """The current ``(scale, zero_point)``."""

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self):
        self.enable_fake_quant(False)

    def enable_observer(self, enabled=True):
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self):
        self.enable_observer(False)

    with_args = classmethod(_with_args)

    def _save(self, value):
        if self.training:
            self._saved = value

    def backward(self, grad_output):
        """Straight-through gradient: ``grad_output * mask`` (``grad_output`` itself when
        fake quantization was disabled in the forward).

        Parameters
        ----------
        grad_output : ndarray
            Same shape as the forward's input.

        Returns
        -------
        ndarray
            In ``grad_output``'s dtype; a product, so NaN / inf gradients stay NaN where
            masked, as torch.
        """
        saved = self._take_saved()
        if isinstance(saved, str):
            return _as_input(grad_output)
        g = _check_grad(grad_output, saved.shape)
        return g * saved


class FakeQuantize(FakeQuantizeBase):
    """Simulate quantize + dequantize in training (``torch.ao.quantization.FakeQuantize``).

    ``y = (clamp(rint(x / scale) + zero_point, quant_min, quant_max) - zero_point) * scale``

    Parameters
    ----------
    observer : class or factory
        Builds ``activation_post_process`` (default :class:`MovingAverageMinMaxObserver`).
    quant_min, quant_max : int or None
        Passed to the observer when both are given; checked against the dtype's storage
        range (``torch.iinfo``: quint8 / quint4x2 0..255, qint8 -128..127).
    is_dynamic : bool
        Passed to the observer.
    **observer_kwargs
        Passed to the observer (``dtype``, ``qscheme``, ``reduce_range``, ``ch_axis``,
        ``averaging_constant``, ``eps`` ...).

    Attributes
    ----------
    activation_post_process : observer Module
    scale : ndarray of float32, shape (1,) or (C,)
    zero_point : ndarray of int32 (float32 for ``per_channel_affine_float_qparams``)
    quant_min, quant_max, dtype, qscheme, ch_axis, is_dynamic, is_per_channel

    Raises
    ------
    ValueError
        ``quant_min > quant_max``, bounds outside the dtype's range, or a qscheme that is
        neither per tensor nor per channel.
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=None, quant_max=None,
                 is_dynamic=False, **observer_kwargs):
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise ValueError("quant_min must be less than or equal to quant_max; got "
                                 f"quant_min={quant_min}, quant_max={quant_max}")
            dtype = observer_kwargs.get("dtype", _dt.quint8)
            if hasattr(observer, "p"):
                # a with_args factory keeps the dtype in its partial's keywords
                dtype = getattr(getattr(observer, "p", {}), "keywords", {}).get("dtype", dtype)
            lo, hi = _dtype_bounds(dtype)
            if lo > quant_min:
                raise ValueError(f"quant_min out of bound: {quant_min} < {lo} for {dtype!r}")
            if quant_max > hi:
                raise ValueError(f"quant_max out of bound: {quant_max} > {hi} for {dtype!r}")
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        app = self.activation_post_process
        self.quant_min = app.quant_min
        self.quant_max = app.quant_max
        self.is_dynamic = app.is_dynamic
        zp_dtype = np.float32 if _is_float_qparams(app.qscheme) else np.int32
        self.register_buffer("scale", np.array([1.0], dtype=np.float32))
        self.register_buffer("zero_point", np.array([0], dtype=zp_dtype))
        self.dtype = app.dtype
        self.qscheme = app.qscheme
        self.ch_axis = app.ch_axis if hasattr(app, "ch_axis") else -1
        if not (_is_per_channel(self.qscheme) or _is_per_tensor(self.qscheme)):
            raise ValueError("Only per channel and per tensor quantization are supported in "
                             f"fake quantize; got qscheme {self.qscheme!r}")
        self.is_per_channel = _is_per_channel(self.qscheme)

    def calculate_qparams(self):
        """The observer's ``calculate_qparams()``."""
        return self.activation_post_process.calculate_qparams()

    def _update_qparams(self, scale, zero_point):
        """Copy new qparams into the buffers (resized if the shape changed, as torch)."""
        scale = np.asarray(scale)
        zero_point = np.asarray(zero_point)
        if self.scale.shape != scale.shape:
            self.scale = np.empty(scale.shape, np.float32)
            self.zero_point = np.empty(zero_point.shape, self.zero_point.dtype)
        with np.errstate(all="ignore"):
            np.copyto(self.scale, scale, casting="unsafe")
            np.copyto(self.zero_point, zero_point, casting="unsafe")

    def _fake_quant(self, x):
        app = self.activation_post_process
        if self.is_per_channel:
            return _fake_quant_per_channel(x, self.scale, self.zero_point, self.ch_axis,
                                           app.quant_min, app.quant_max)
        return _fake_quant_per_tensor(x, self.scale, self.zero_point, app.quant_min,
                                      app.quant_max)

    def forward(self, X):
        """Observe ``X`` (if ``observer_enabled``), update ``scale`` / ``zero_point`` and
        return ``X`` fake-quantized (if ``fake_quant_enabled``; else ``X`` itself).

        In training mode the straight-through mask is kept in ``self._saved``.
        """
        x = _as_input(X)
        if _flag(self.observer_enabled) == 1:
            self.activation_post_process(x)
            self._update_qparams(*self.calculate_qparams())
        if _flag(self.fake_quant_enabled) == 1:
            y, mask = self._fake_quant(x)
            self._save(mask)
            return y
        self._save(_IDENTITY)
        return x

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, quant_min={app.quant_min}, "
                f"quant_max={app.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
                f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}")

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # scale / zero_point take the saved shape (per-channel qparams saved after
        # training load into a fresh module whose buffers still have shape (1,))
        for name in ("scale", "zero_point"):
            key = prefix + name
            if key in state_dict:
                val = np.asarray(state_dict[key])
                cur = getattr(self, name)
                if val.shape != cur.shape:
                    setattr(self, name, np.empty(val.shape, cur.dtype))
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class FixedQParamsFakeQuantize(FakeQuantize):
    """Fake quantization with fixed qparams (``torch.ao.quantization.FixedQParamsFakeQuantize``).

    Parameters
    ----------
    observer : factory of :class:`FixedQParamsObserver`
        Its ``scale`` / ``zero_point`` buffers become this module's (the same arrays).

    Raises
    ------
    ValueError
        If the observer is not exactly a ``FixedQParamsObserver`` or not per tensor.
    """

    def __init__(self, observer):
        super().__init__(observer=observer)
        app = self.activation_post_process
        if type(app) is not FixedQParamsObserver:
            raise ValueError(f"{type(self).__name__}'s observer must be a "
                             f"{FixedQParamsObserver.__name__}; got {type(app).__name__}")
        self._observer_ctr = observer
        self.scale = app.scale
        self.zero_point = app.zero_point
        if not _is_per_tensor(self.qscheme):
            raise ValueError("Only per tensor quantization is supported by "
                             f"FixedQParamsFakeQuantize; got qscheme {self.qscheme!r}")

    def calculate_qparams(self):
        return self.scale, self.zero_point

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, scale={self.scale}, "
                f"zero_point={self.zero_point}, dtype={self.dtype}, "
                f"quant_min={app.quant_min}, quant_max={app.quant_max}, "
                f"qscheme={self.qscheme}")


class FusedMovingAvgObsFakeQuantize(FakeQuantize):
    """Observer + qparams + fake quantization in one step
    (``torch.ao.quantization.FusedMovingAvgObsFakeQuantize``).

    Reproduces ``torch.fused_moving_avg_obs_fake_quant``: the running min / max live in
    the observer's ``min_val`` / ``max_val`` buffers and follow
    ``r + c * (batch - r)`` in float32 (a running value of +-inf is replaced by the
    batch's); qparams use fbgemm's rule (:func:`_choose_qparams_fbgemm`), which differs
    from the observer's ``calculate_qparams()`` (e.g. zero point 128, not 127, for a
    symmetric quint8 observer with range [0, 255]). The enable flags are int64 buffers.

    Input must be float32 (torch raises for other dtypes). Per-channel observation works
    only with ``ch_axis == 0`` and inputs of at least 2 dimensions (torch's limits).
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                 **observer_kwargs):
        super().__init__(observer, quant_min, quant_max, **observer_kwargs)
        if not isinstance(self.activation_post_process,
                          (MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver)):
            raise ValueError("Fused observer+fake_quant module only works with "
                             "MovingAverageMinMaxObserver")
        self.register_buffer("fake_quant_enabled", np.array([1], dtype=np.int64))
        self.register_buffer("observer_enabled", np.array([1], dtype=np.int64))
        self.is_symmetric_quant = _is_symmetric_quant(self.activation_post_process.qscheme)

    def calculate_qparams(self):
        """The observer's ``calculate_qparams()`` (not the fused op's own qparams)."""
        return self.activation_post_process.calculate_qparams()

    def extra_repr(self):
        app = self.activation_post_process
        return (f"fake_quant_enabled={self.fake_quant_enabled}, "
                f"observer_enabled={self.observer_enabled}, scale={self.scale}, "
                f"zero_point={self.zero_point}, dtype={self.dtype}, "
                f"quant_min={app.quant_min}, quant_max={app.quant_max}, "
                f"qscheme={self.qscheme}, reduce_range={app.reduce_range}")

    def forward(self, X):
        """torch's ``fused_moving_avg_obs_fake_quant`` on ``X`` (float32).

        Empty input is returned as a copy with no state change. Otherwise: observe (if
        ``observer_enabled``), then (if ``fake_quant_enabled``) compute ``scale`` /
        ``zero_point`` from the running range and fake-quantize; with fake quantization
        disabled the output is a copy of ``X`` and the gradient passes unmasked.
        """
        x = _as_input(X)
        if x.size == 0:
            self._save(_IDENTITY)
            return x.copy()
        if x.dtype != _F32:
            raise TypeError(f"FusedMovingAvgObsFakeQuantize expects a float32 input (as torch's "
                            f"fused op); got dtype {x.dtype}")
        x = np.asarray(x, order="C")   # (ascontiguousarray would make 0-d input 1-d)
        app = self.activation_post_process
        ch_axis = int(self.ch_axis)
        if not ch_axis < x.ndim:
            raise ValueError(f"ch_axis must be < the input's number of dimensions ({x.ndim}) "
                             f"in fused_moving_avg_obs_fake_quant; got {ch_axis}")
        observe = _flag(self.observer_enabled) != 0
        qmin, qmax = int(app.quant_min), int(app.quant_max)
        if self.is_per_channel:
            if x.ndim < 2:
                raise ValueError("per-channel fused_moving_avg_obs_fake_quant needs an input "
                                 f"with at least 2 dimensions; got {x.ndim}")
            C = x.shape[ch_axis]
            if app.min_val.size == 0:
                # torch resizes the empty per-channel buffers at the first call
                app.min_val = np.full(C, np.inf, np.float32)
                app.max_val = np.full(C, -np.inf, np.float32)
                self.scale = np.ones(C, np.float32)
                self.zero_point = np.zeros(C, self.zero_point.dtype)
            if observe:
                if ch_axis != 0:
                    raise ValueError("Per-channel FakeQuant in fused_moving_avg_obs_fake_quant "
                                     f"is only supported on axis == 0; got ch_axis={ch_axis}")
                if app.min_val.shape != (C,):
                    raise ValueError(f"the running min/max hold {app.min_val.size} channels; "
                                     f"the input has {C} along axis 0")
                cur_min = np.empty(C, np.float32)
                cur_max = np.empty(C, np.float32)
                minmax_per_channel_f32(x.reshape(1, C, -1), cur_min, cur_max)
                app.min_val[...] = _moving_average(app.min_val, cur_min, app.averaging_constant)
                app.max_val[...] = _moving_average(app.max_val, cur_max, app.averaging_constant)
        elif observe:
            cur_min, cur_max = minmax_f32(x)
            c = app.averaging_constant
            app.min_val[...] = _moving_average_scalar(app.min_val, cur_min, c)
            app.max_val[...] = _moving_average_scalar(app.max_val, cur_max, c)
        if _flag(self.fake_quant_enabled) == 0:
            self._save(_IDENTITY)
            return x.copy()
        if self.is_per_channel:
            scale, zp = _choose_qparams_fbgemm(app.min_val, app.max_val, qmin, qmax,
                                               self.is_symmetric_quant)
            if self.scale.shape != scale.shape:
                raise ValueError(f"scale holds {self.scale.size} channels; the running "
                                 f"min/max hold {scale.size}")
            self.scale[...] = scale
            self.zero_point[...] = zp
            y, mask = _fake_quant_per_channel(x, self.scale, self.zero_point, ch_axis,
                                              qmin, qmax)
        else:
            scale, zp = _choose_qparams_fbgemm_scalar(app.min_val, app.max_val, qmin, qmax,
                                                      self.is_symmetric_quant)
            self.scale.reshape(-1)[0] = scale
            self.zero_point.reshape(-1)[0] = zp
            y, mask = _fake_quant_per_tensor(x, self.scale[:1], self.zero_point[:1],
                                             qmin, qmax)
        self._save(mask)
        return y


class _LearnableFakeQuantize(FakeQuantizeBase):
    """Fake quantization with learnable scale and zero point (LSQ); torch's
    ``torch.ao.quantization._learnable_fake_quantize._LearnableFakeQuantize``.

    ``scale`` and ``zero_point`` are :class:`~numq.layers.Parameter` s (float32, shape
    ``(1,)`` or ``(channel_len,)``). While ``static_enabled`` the observer's qparams are
    copied into them at every forward; ``backward`` accumulates ``scale.grad`` /
    ``zero_point.grad`` (when their ``requires_grad``, which is True by default as for
    torch's Parameters) with numq's exact learnable backward functions.

    Parameters
    ----------
    observer : class or factory
    quant_min, quant_max : int
        ``quant_min < quant_max``; also passed to the observer.
    scale, zero_point : float
        Initial values.
    channel_len : int
        -1 for per-tensor parameters, else the number of channels.
    use_grad_scaling : bool
        Multiply the qparam gradients by ``1 / sqrt(numel * quant_max)``.
    **observer_kwargs
    """

    def __init__(self, observer, quant_min=0, quant_max=255, scale=1.0, zero_point=0.0,
                 channel_len=-1, use_grad_scaling=False, **observer_kwargs):
        super().__init__()
        if quant_min >= quant_max:
            raise ValueError("quant_min must be strictly less than quant_max; got "
                             f"quant_min={quant_min}, quant_max={quant_max}")
        self.quant_min = quant_min
        self.quant_max = quant_max
        observer_kwargs["quant_min"] = quant_min
        observer_kwargs["quant_max"] = quant_max
        self.use_grad_scaling = use_grad_scaling
        if channel_len == -1:
            self.scale = Parameter(np.array([scale], np.float32))
            self.zero_point = Parameter(np.array([zero_point], np.float32))
        else:
            if not (isinstance(channel_len, int) and channel_len > 0):
                raise ValueError(f"Channel size must be a positive integer; got {channel_len!r}")
            self.scale = Parameter(np.full(channel_len, scale, np.float32))
            self.zero_point = Parameter(np.full(channel_len, zero_point, np.float32))
        self.activation_post_process = observer(**observer_kwargs)
        app = self.activation_post_process
        lo, hi = _dtype_bounds(app.dtype)
        if lo > quant_min:
            raise ValueError(f"quant_min out of bound: {quant_min} < {lo} for {app.dtype!r}")
        if quant_max > hi:
            raise ValueError(f"quant_max out of bound: {quant_max} > {hi} for {app.dtype!r}")
        self.dtype = app.dtype
        self.qscheme = app.qscheme
        self.ch_axis = app.ch_axis if hasattr(app, "ch_axis") else -1
        self.register_buffer("fake_quant_enabled", np.array([1], dtype=np.uint8))
        self.register_buffer("static_enabled", np.array([1], dtype=np.uint8))
        self.register_buffer("learning_enabled", np.array([0], dtype=np.uint8))
        self.bitwidth = int(math.log2(float(quant_max - quant_min + 1)))
        self.register_buffer("eps", np.array([_EPS32], dtype=np.float32))

    # ----------------------------------------------------------------- toggles
    def enable_param_learning(self):
        """Learn scale / zero point (observer off, fake quant on)."""
        self.toggle_qparam_learning(enabled=True).toggle_fake_quant(
            enabled=True).toggle_observer_update(enabled=False)
        return self

    def enable_static_estimate(self):
        """Take scale / zero point from the observer (learning off, fake quant on)."""
        self.toggle_qparam_learning(enabled=False).toggle_fake_quant(
            enabled=True).toggle_observer_update(enabled=True)

    def enable_static_observation(self):
        """Only observe: qparams follow the observer, the output is the input."""
        self.toggle_qparam_learning(enabled=False).toggle_fake_quant(
            enabled=False).toggle_observer_update(enabled=True)

    def toggle_observer_update(self, enabled=True):
        self.static_enabled[0] = int(enabled)
        return self

    def enable_observer(self, enabled=True):
        self.toggle_observer_update(enabled)

    def toggle_qparam_learning(self, enabled=True):
        self.learning_enabled[0] = int(enabled)
        self.scale.requires_grad = bool(enabled)
        self.zero_point.requires_grad = bool(enabled)
        return self

    def toggle_fake_quant(self, enabled=True):
        self.fake_quant_enabled[0] = int(enabled)
        return self

    def observe_quant_params(self):
        print(f"_LearnableFakeQuantize Scale: {self.scale.data}")
        print(f"_LearnableFakeQuantize Zero Point: {self.zero_point.data}")

    def _clamp_scale(self):
        with np.errstate(invalid="ignore"):
            np.maximum(self.scale.data, np.float32(self.eps.reshape(-1)[0]),
                       out=self.scale.data)

    def calculate_qparams(self):
        """``(scale, zero_point)``: the scale (clamped to ``eps`` in place, as torch) and
        ``clamp(rint(zero_point), quant_min, quant_max)`` as int64."""
        self._clamp_scale()
        scale = self.scale.data.copy()
        with np.errstate(invalid="ignore"):
            zp = np.clip(np.rint(self.zero_point.data), self.quant_min, self.quant_max)
        return scale, zp.astype(np.int64)

    def _per_channel_op(self):
        return self.qscheme in (_dt.per_channel_symmetric, _dt.per_channel_affine)

    def forward(self, X):
        """Observe and copy the observer's qparams (if ``static_enabled``; else clamp the
        scale to ``eps``), then fake-quantize with the learnable op (if enabled)."""
        x = _as_input(X)
        if _flag(self.static_enabled) == 1:
            app = self.activation_post_process
            app(x)
            _scale, _zp = app.calculate_qparams()
            with np.errstate(all="ignore"):
                np.copyto(self.scale.data, np.asarray(_scale), casting="unsafe")
                np.copyto(self.zero_point.data, np.asarray(_zp), casting="unsafe")
        else:
            self._clamp_scale()
        if _flag(self.fake_quant_enabled) != 1:
            self._save(_IDENTITY)
            return x
        if _is_symmetric_quant(self.qscheme):
            self.zero_point.data[...] = 0
        if self.use_grad_scaling:
            grad_factor = 1.0 / (x.size * self.quant_max) ** 0.5
        else:
            grad_factor = 1.0
        scale = self.scale.data.copy()
        zp = self.zero_point.data.copy()
        if self._per_channel_op():
            y = _fq._fake_quantize_learnable_per_channel_affine(
                x, scale, zp, self.ch_axis, self.quant_min, self.quant_max, grad_factor)
        else:
            y = _fq._fake_quantize_learnable_per_tensor_affine(
                x, scale, zp, self.quant_min, self.quant_max, grad_factor)
        self._save((x, scale, zp, grad_factor))
        return y

    def backward(self, grad_output):
        """Input gradient; accumulates ``scale.grad`` and ``zero_point.grad``.

        Uses :func:`numq.fake_quantize._fake_quantize_learnable_per_tensor_affine_backward`
        (or the per-channel one) with the qparams of the matching forward.
        """
        saved = self._take_saved()
        if isinstance(saved, str):
            return _as_input(grad_output)
        x, scale, zp, gf = saved
        g = _check_grad(grad_output, x.shape)
        if self._per_channel_op():
            dx, ds, dz = _fq._fake_quantize_learnable_per_channel_affine_backward(
                g, x, scale, zp, self.ch_axis, self.quant_min, self.quant_max, gf)
        else:
            dx, ds, dz = _fq._fake_quantize_learnable_per_tensor_affine_backward(
                g, x, scale, zp, self.quant_min, self.quant_max, gf)
        self.scale.accumulate(ds.reshape(self.scale.shape))
        self.zero_point.accumulate(dz.reshape(self.zero_point.shape))
        return dx


# ------------------------------------------------------------------------ defaults

default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=_dt.quint8,
    qscheme=_dt.per_tensor_affine, reduce_range=True)
"""Default fake_quant for activations (quint8, effective range [0, 127])."""

default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dt.qint8,
    qscheme=_dt.per_tensor_symmetric, reduce_range=False)
"""Default fake_quant for weights (qint8, per tensor symmetric)."""

default_dynamic_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, is_dynamic=True,
    dtype=_dt.quint8, averaging_constant=1)
"""Default dynamic fake_quant for activations."""

default_fixed_qparams_range_neg1to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_neg1to1_observer)
default_fixed_qparams_range_0to1_fake_quant = FixedQParamsFakeQuantize.with_args(
    observer=default_fixed_qparams_range_0to1_observer)
# kept for backwards compatibility, as in torch
default_symmetric_fixed_qparams_fake_quant = default_fixed_qparams_range_neg1to1_fake_quant
default_affine_fixed_qparams_fake_quant = default_fixed_qparams_range_0to1_fake_quant

default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=_dt.qint8, qscheme=_dt.per_channel_symmetric, reduce_range=False, ch_axis=0)
"""Default fake_quant for per-channel weights."""

default_embedding_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    qscheme=_dt.per_channel_affine_float_qparams, dtype=_dt.quint8, quant_min=0,
    quant_max=255, ch_axis=0, averaging_constant=1)
"""Default fake_quant for embeddings (memoryless: averaging constant 1)."""

default_embedding_fake_quant_4bit = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    qscheme=_dt.per_channel_affine_float_qparams, ch_axis=0, dtype=_dt.quint4x2,
    averaging_constant=1)

default_histogram_fake_quant = FakeQuantize.with_args(
    observer=HistogramObserver, quant_min=0, quant_max=255, dtype=_dt.quint8,
    qscheme=_dt.per_tensor_affine, reduce_range=True)
"""Fake_quant for activations using a histogram observer."""

default_fused_act_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=_dt.quint8)
"""Fused version of ``default_fake_quant`` (full range [0, 255])."""

default_fused_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dt.qint8,
    qscheme=_dt.per_tensor_symmetric)
"""Fused version of ``default_weight_fake_quant``."""

default_fused_per_channel_wt_fake_quant = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
    dtype=_dt.qint8, qscheme=_dt.per_channel_symmetric)
"""Fused version of ``default_per_channel_weight_fake_quant``."""

fused_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127, dtype=_dt.qint8,
    qscheme=_dt.per_tensor_symmetric, eps=2**-12)
"""Fused per-tensor weight fake_quant restricted to [-127, 127]."""

fused_per_channel_wt_fake_quant_range_neg_127_to_127 = FusedMovingAvgObsFakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
    dtype=_dt.qint8, qscheme=_dt.per_channel_symmetric, eps=2**-12)
"""Fused per-channel weight fake_quant restricted to [-127, 127]."""


# ---------------------------------------------------------- model.apply() helpers

def disable_fake_quant(mod):
    """Disable fake quantization of ``mod`` if it is a fake-quant module
    (``model.apply(disable_fake_quant)``)."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_fake_quant()


def enable_fake_quant(mod):
    """Enable fake quantization of ``mod`` if it is a fake-quant module
    (``model.apply(enable_fake_quant)``)."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_fake_quant()


def disable_observer(mod):
    """Disable observation in ``mod`` if it is a fake-quant module
    (``model.apply(disable_observer)``)."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_observer()


def enable_observer(mod):
    """Enable observation in ``mod`` if it is a fake-quant module
    (``model.apply(enable_observer)``)."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_observer()
