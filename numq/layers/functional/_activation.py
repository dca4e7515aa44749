"""Activation, softmax and dropout functional forms (``torch.nn.functional``) and their backward.

Dtypes: float32 and float64 inputs are computed and returned in their own dtype (so a
``model.double()`` stays float64 end to end); float16 (and other float) inputs are
computed in float32 / float64 because NumPy's float16 arithmetic is slow and imprecise.
Integer, bool and complex inputs raise ``TypeError``.

``inplace=True`` writes the result into ``input`` (a writeable float ndarray) and
returns it, as torch does. The layers in :mod:`numq.layers` accept ``inplace`` for
compatibility but never modify their input (their ``backward`` may need it).

Each ``f_backward(grad_output, ...)`` returns the gradient of ``f`` with respect to its
input, given the incoming gradient and what the formula needs: the forward input for
most ops, the forward *output* for ``sigmoid``, ``tanh``, ``softmax`` and
``log_softmax`` (cheaper, as torch does), the keep-mask for ``dropout``.
"""
import functools
import math
import numbers
import warnings

import numpy as np

from ..._random import resolve
from ..._validate import axis_index

__all__ = [
    "relu", "relu6", "leaky_relu", "elu", "celu", "gelu", "silu", "hardswish", "hardsigmoid",
    "hardtanh", "sigmoid", "tanh", "threshold", "softmax", "log_softmax", "dropout",
    "relu_backward", "relu6_backward", "leaky_relu_backward", "elu_backward", "celu_backward",
    "gelu_backward", "silu_backward", "hardswish_backward", "hardsigmoid_backward",
    "hardtanh_backward", "sigmoid_backward", "tanh_backward", "threshold_backward",
    "softmax_backward", "log_softmax_backward", "dropout_backward",
]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_GELU_APPROX = ("none", "tanh")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


# --------------------------------------------------------------------------- helpers
def _as_float(x, arg="input"):
    """``x`` as a float32/float64 ndarray (no copy when it already is one).

    float64 stays float64; every other float dtype (float16, longdouble, non-native byte
    order) becomes float32, or float64 for wider types. Non-float input: ``TypeError``.
    """
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    dt = a.dtype
    if dt == _F32 or dt == _F64:
        return a
    if dt.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {dt}")
    return a.astype(_F64 if dt.itemsize > 8 or dt.newbyteorder("=") == _F64 else _F32)


def _as_dtype(x, dtype, arg):
    """``x`` as a float array of ``dtype`` (for gradients: cast to the forward's dtype)."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {a.dtype}")
    return a if a.dtype == dtype else a.astype(dtype)


def _grad_like(grad_output, ref, ref_name="input"):
    """``grad_output`` checked to match ``ref``'s shape and cast to ``ref``'s dtype."""
    g = _as_dtype(grad_output, ref.dtype, "grad_output")
    if g.shape != ref.shape:
        raise ValueError(f"grad_output must have the shape of {ref_name} {ref.shape}; "
                         f"got {g.shape}")
    return g


def _real(v, arg, finite=True):
    """``v`` as a Python float (a real number; finite unless ``finite=False``; never NaN)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{arg} must be a real number; got {type(v).__name__}")
    f = float(v)
    if math.isnan(f) or (finite and math.isinf(f)):
        raise ValueError(f"{arg} must be {'finite' if finite else 'a number (not NaN)'}; "
                         f"got {f!r}")
    return f


def _finish(input, out, inplace):
    """Return ``out``, or copy it into ``input`` and return ``input`` when ``inplace``."""
    if not inplace:
        return out
    if not isinstance(input, np.ndarray) or input.dtype.kind != "f":
        raise TypeError("inplace=True needs input to be a float numpy array; got "
                        f"{type(input).__name__}")
    if not input.flags.writeable:
        raise ValueError("inplace=True needs a writeable input array")
    input[...] = out
    return input


_INT_OF = {4: np.int32, 8: np.int64}


def _select(cond, a, b=None):
    """``np.where(cond, a, b)`` (``b=None``: 0) for float32/float64 ``a`` and ``b``.

    Bit-exact (infs, NaNs and signed zeros are moved untouched) but branch-free: NumPy's
    ``where`` branches per element and is ~8x slower on the unpredictable masks of
    activations and dropout. ``cond`` is a bool array of the result's shape; ``a`` / ``b``
    broadcast to it and share one dtype.
    """
    it = _INT_OF[a.dtype.itemsize]
    m = np.negative(cond.view(np.int8), out=np.empty(cond.shape, it))  # -1 (all ones) or 0
    ai = a.view(it)
    if b is None:
        np.bitwise_and(m, ai, out=m)
    else:
        bi = np.asarray(b, a.dtype).view(it)
        np.bitwise_and(m, np.bitwise_xor(ai, bi), out=m)
        np.bitwise_xor(m, bi, out=m)  # b ^ ((a ^ b) & m): a where m, else b
    return m.view(a.dtype)


def _quiet(fn):
    """Run ``fn`` without NumPy's overflow / invalid warnings.

    inf * 0 -> NaN and exp overflow -> inf are the intended results at non-finite inputs
    (torch returns the same values without warning).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def _sigmoid(x):
    # exp(-|x|) never overflows, so neither branch warns or loses precision
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return _select(x >= 0, r, e * r)


def _check_approximate(approximate):
    if not isinstance(approximate, str) or approximate not in _GELU_APPROX:
        raise ValueError(f"approximate must be 'none' or 'tanh'; got {approximate!r}")
    return approximate


def _check_p(p):
    p = _real(p, "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p (dropout probability) has to be between 0 and 1, but got {p}")
    return p


def _check_hardtanh(min_val, max_val):
    lo = _real(min_val, "min_val", finite=False)
    hi = _real(max_val, "max_val", finite=False)
    if not hi > lo:
        raise ValueError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
    return lo, hi


def _check_celu_alpha(alpha):
    a = _real(alpha, "alpha")
    if a == 0.0:
        raise ValueError("alpha must be nonzero for celu (it divides the input)")
    return a


# --------------------------------------------------------------------- elementwise
def relu(input, inplace=False):
    """``max(x, 0)`` (``torch.nn.functional.relu``)."""
    x = _as_float(input)
    return _finish(input, np.maximum(x, 0), inplace)


def relu_backward(grad_output, output):
    """Gradient of :func:`relu` from its *output* (zero where the output is 0, as torch)."""
    y = _as_float(output, "output")
    g = _grad_like(grad_output, y, "output")
    return _select(~(y <= 0), g)  # torch: y <= 0 ? 0 : grad (a NaN passes the gradient)


def relu6(input, inplace=False):
    """``min(max(x, 0), 6)`` (``torch.nn.functional.relu6``)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def relu6_backward(grad_output, input):
    """Gradient of :func:`relu6` (zero outside the open interval (0, 6), as torch)."""
    return hardtanh_backward(grad_output, input, 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``clip(x, min_val, max_val)`` (``torch.nn.functional.hardtanh``)."""
    lo, hi = _check_hardtanh(min_val, max_val)
    x = _as_float(input)
    return _finish(input, np.clip(x, lo, hi), inplace)


def hardtanh_backward(grad_output, input, min_val=-1.0, max_val=1.0):
    """Gradient of :func:`hardtanh`: ``grad`` strictly inside (min_val, max_val), else 0."""
    lo, hi = _check_hardtanh(min_val, max_val)
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    # torch: (x <= lo || x >= hi) ? 0 : grad, so a NaN input passes the gradient
    return _select(~((x <= lo) | (x >= hi)), g)


@_quiet
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x if x > 0 else negative_slope * x`` (``torch.nn.functional.leaky_relu``)."""
    s = _real(negative_slope, "negative_slope")
    x = _as_float(input)
    return _finish(input, _select(x > 0, x, x * s), inplace)


@_quiet
def leaky_relu_backward(grad_output, input, negative_slope=0.01):
    """Gradient of :func:`leaky_relu` (slope ``negative_slope`` at and below 0, as torch)."""
    s = _real(negative_slope, "negative_slope")
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    return _select(x > 0, g, g * s)


@_quiet
def elu(input, alpha=1.0, inplace=False):
    """``x if x > 0 else alpha * (exp(x) - 1)`` (``torch.nn.functional.elu``)."""
    a = _real(alpha, "alpha")
    x = _as_float(input)
    # expm1 of min(x, 0): the branch not taken never overflows
    return _finish(input, _select(x > 0, x, a * np.expm1(np.minimum(x, 0))), inplace)


@_quiet
def elu_backward(grad_output, input, alpha=1.0):
    """Gradient of :func:`elu`: ``grad * alpha * exp(x)`` for ``x <= 0``, else ``grad``."""
    a = _real(alpha, "alpha")
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    return _select(x <= 0, g * (a * np.exp(np.minimum(x, 0))), g)


@_quiet
def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``torch.nn.functional.celu``)."""
    a = _check_celu_alpha(alpha)
    x = _as_float(input)
    neg = a * np.expm1(np.minimum(x, 0) / a)  # alpha < 0 can overflow for real, as in torch
    return _finish(input, _select(x > 0, x, neg), inplace)


@_quiet
def celu_backward(grad_output, input, alpha=1.0):
    """Gradient of :func:`celu`: ``grad * exp(x / alpha)`` for ``x <= 0``, else ``grad``."""
    a = _check_celu_alpha(alpha)
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    d = np.exp(np.minimum(x, 0) / a)
    return _select(x <= 0, g * d, g)


@_quiet
def gelu(input, approximate="none"):
    """GELU, exact (``'none'``: ``x * Phi(x)``) or ``'tanh'``-approximated (as torch)."""
    approx = _check_approximate(approximate)
    x = _as_float(input)
    if approx == "tanh":
        inner = _SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x * x * x))
        return 0.5 * x * (1.0 + np.tanh(inner))
    from ...kernels.norm_float import gelu_erf_fwd  # numba kernel: NumPy has no erf
    xc = np.ascontiguousarray(x)
    out = np.empty(xc.shape, xc.dtype)
    gelu_erf_fwd(xc.reshape(-1), out.reshape(-1))
    return out


@_quiet
def gelu_backward(grad_output, input, approximate="none"):
    """Gradient of :func:`gelu` with respect to its input."""
    approx = _check_approximate(approximate)
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    if approx == "tanh":
        x2 = x * x
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x2 * x)))
        d_inner = _SQRT_2_OVER_PI * (1.0 + (3.0 * _GELU_KAPPA) * x2)
        return g * (0.5 * (1.0 + t) + (0.5 * x) * (1.0 - t * t) * d_inner)
    from ...kernels.norm_float import gelu_erf_bwd
    xc = np.ascontiguousarray(x)
    gc = np.ascontiguousarray(g)
    out = np.empty(xc.shape, xc.dtype)
    gelu_erf_bwd(xc.reshape(-1), gc.reshape(-1), out.reshape(-1))
    return out


@_quiet
def silu(input, inplace=False):
    """``x * sigmoid(x)`` (``torch.nn.functional.silu``)."""
    x = _as_float(input)
    return _finish(input, x * _sigmoid(x), inplace)


@_quiet
def silu_backward(grad_output, input):
    """Gradient of :func:`silu`: ``grad * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    s = _sigmoid(x)
    return g * (s * (1.0 + x * (1.0 - s)))


@_quiet
def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6`` (``torch.nn.functional.hardswish``)."""
    x = _as_float(input)
    return _finish(input, x * np.clip(x + 3.0, 0.0, 6.0) / 6.0, inplace)


@_quiet
def hardswish_backward(grad_output, input):
    """Gradient of :func:`hardswish`: 0 up to -3, ``x/3 + 1/2`` on (-3, 3), 1 from 3 (torch)."""
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    mid = g * (x / 3.0 + 0.5)
    return _select(~(x <= -3.0), _select(x < 3.0, mid, g))


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6`` (``torch.nn.functional.hardsigmoid``)."""
    x = _as_float(input)
    return _finish(input, np.clip(x + 3.0, 0.0, 6.0) / 6.0, inplace)


@_quiet
def hardsigmoid_backward(grad_output, input):
    """Gradient of :func:`hardsigmoid`: ``grad / 6`` strictly inside (-3, 3), else 0."""
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    return _select((x > -3.0) & (x < 3.0), g / 6.0)


def sigmoid(input):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow."""
    return _sigmoid(_as_float(input))


@_quiet
def sigmoid_backward(grad_output, output):
    """Gradient of :func:`sigmoid` from its *output* ``y``: ``grad * y * (1 - y)``."""
    y = _as_float(output, "output")
    g = _grad_like(grad_output, y, "output")
    return g * (y * (1.0 - y))


def tanh(input):
    """Hyperbolic tangent."""
    return np.tanh(_as_float(input))


@_quiet
def tanh_backward(grad_output, output):
    """Gradient of :func:`tanh` from its *output* ``y``: ``grad * (1 - y**2)``."""
    y = _as_float(output, "output")
    g = _grad_like(grad_output, y, "output")
    # (1 - y)(1 + y): 1 - y is exact near |y| = 1, where 1 - y*y would cancel
    return g * ((1.0 - y) * (1.0 + y))


def threshold(input, threshold, value, inplace=False):
    """``x if x > threshold else value`` (NaN stays NaN, as torch)."""
    th = _real(threshold, "threshold", finite=False)
    v = _real(value, "value", finite=False)
    x = _as_float(input)
    return _finish(input, _select(x <= th, np.asarray(v, x.dtype), x), inplace)


def threshold_backward(grad_output, input, threshold):
    """Gradient of :func:`threshold`: ``grad`` where ``x > threshold``, else 0."""
    th = _real(threshold, "threshold", finite=False)
    x = _as_float(input)
    g = _grad_like(grad_output, x)
    return _select(~(x <= th), g)


# ------------------------------------------------------------------------ softmax
def _softmax_dim(dim, ndim, name, stacklevel):
    """Resolve ``dim`` (``None``: torch's deprecated implicit choice, with its warning)."""
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.",
                      UserWarning, stacklevel=stacklevel)
        return 0 if ndim in (0, 1, 3) else 1
    return axis_index(dim, max(ndim, 1), "dim")


def _softmax_input(input, dtype):
    if dtype is None:
        return _as_float(input)
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a float dtype; got {dt}")
    return _as_float(np.asarray(input).astype(dt, copy=False))


@_quiet
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / sum(exp(x), dim)``, shifted by the max along ``dim`` for stability.

    ``dtype`` (optional) casts the input first, as torch's argument does.
    """
    x = _softmax_input(input, dtype)
    d = _softmax_dim(dim, x.ndim, "softmax", _stacklevel)
    if x.size == 0:
        return x.copy()
    xv = x.reshape(1) if x.ndim == 0 else x
    e = np.exp(xv - np.max(xv, axis=d, keepdims=True))
    e /= np.sum(e, axis=d, keepdims=True)
    return e.reshape(x.shape)


@_quiet
def softmax_backward(grad_output, output, dim):
    """Gradient of :func:`softmax` from its *output* ``y``: ``y * (g - sum(g * y, dim))``."""
    y = _as_float(output, "output")
    g = _grad_like(grad_output, y, "output")
    d = axis_index(dim, max(y.ndim, 1), "dim")
    yv, gv = (y.reshape(1), g.reshape(1)) if y.ndim == 0 else (y, g)
    return (yv * (gv - np.sum(gv * yv, axis=d, keepdims=True))).reshape(y.shape)


@_quiet
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x, dim)``, computed stably (shift by the max; no ``log(softmax)``).

    ``dtype`` (optional) casts the input first, as torch's argument does.
    """
    x = _softmax_input(input, dtype)
    d = _softmax_dim(dim, x.ndim, "log_softmax", _stacklevel)
    if x.size == 0:
        return x.copy()
    xv = x.reshape(1) if x.ndim == 0 else x
    z = xv - np.max(xv, axis=d, keepdims=True)
    z -= np.log(np.sum(np.exp(z), axis=d, keepdims=True))
    return z.reshape(x.shape)


@_quiet
def log_softmax_backward(grad_output, output, dim):
    """Gradient of :func:`log_softmax` from its *output* ``y``: ``g - exp(y) * sum(g, dim)``."""
    y = _as_float(output, "output")
    g = _grad_like(grad_output, y, "output")
    d = axis_index(dim, max(y.ndim, 1), "dim")
    yv, gv = (y.reshape(1), g.reshape(1)) if y.ndim == 0 else (y, g)
    return (gv - np.exp(yv) * np.sum(gv, axis=d, keepdims=True)).reshape(y.shape)


# ------------------------------------------------------------------------ dropout
def dropout(input, p=0.5, training=True, inplace=False, *, generator=None, return_mask=False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    input : ndarray
        Float input.
    p : float
        Drop probability in [0, 1].
    training : bool
        When False the input is returned unchanged (no mask is drawn).
    inplace : bool
        Write the result into ``input``.
    generator : numpy.random.Generator or int or None
        Source of the mask (``numq._random.resolve``: None is numq's global generator,
        an int seeds a fresh one). numq's masks differ from torch's random stream.
    return_mask : bool
        numq extension: also return the boolean keep-mask (None when not training), for
        :func:`dropout_backward`.

    Returns
    -------
    out : ndarray, or ``(out, mask)`` when ``return_mask``.
    """
    p = _check_p(p)
    x = _as_float(input)
    if not training:
        return (x, None) if return_mask else x
    # uniform u in [0, 1): keep when u >= p, i.e. with probability 1 - p
    mask = resolve(generator).random(x.shape, dtype=np.float32) >= np.float32(p)
    if p == 1.0:
        out = np.zeros_like(x)
    else:
        out = _select(mask, x * (1.0 / (1.0 - p)))
    out = _finish(input, out, inplace)
    return (out, mask) if return_mask else out


def dropout_backward(grad_output, mask, p):
    """Gradient of :func:`dropout` given its keep-``mask``: ``grad * mask / (1 - p)``."""
    p = _check_p(p)
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array; got dtype {m.dtype}")
    g = _as_float(grad_output, "grad_output")
    if g.shape != m.shape:
        raise ValueError(f"grad_output must have the shape of mask {m.shape}; got {g.shape}")
    if p == 1.0:
        return np.zeros_like(g)
    return _select(m, g * (1.0 / (1.0 - p)))
