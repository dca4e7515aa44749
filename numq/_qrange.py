"""Observer integer ranges: torch's ``calculate_qmin_qmax`` / ``validate_qmin_qmax`` rules.

Pure Python, no kernels. A dtype is identified by its storage range
``(dtype_qmin, dtype_qmax)`` (``numq.quint8.qmin, numq.quint8.qmax`` ...), which is
unique among numq's quantized dtypes; the rules depend on the dtype, not just the range:

=========  ===================  ======================  =================================
dtype      default range        reduce_range            custom ``(quant_min, quant_max)``
=========  ===================  ======================  =================================
quint8     [0, 255]             [0, 127]                any range holding 0
qint8      [-128, 127]          [-64, 63]               holding 0, at most 256 values
qint32     [-2**31, 2**31 - 1]  ignored                 holding 0, at most 2**32 values
quint4x2   [0, 15]              ignored                 any range holding 0
=========  ===================  ======================  =================================

With ``reduce_range`` a custom range becomes ``(quant_min // 2, quant_max // 2)`` (floor
division). A range counts as custom only when *both* bounds are given: torch ignores a
lone ``quant_min`` or ``quant_max``, and so does numq.
"""
from ._validate import int_scalar
from .kernels.qparams import AFFINE, FLOAT_QPARAMS, SYMMETRIC

__all__ = ["quant_range", "symmetric_zero_point", "qscheme_code"]

_QUINT8 = (0, 255)
_QINT8 = (-128, 127)
_QINT32 = (-(2**31), 2**31 - 1)
_QUINT4X2 = (0, 15)
_REDUCED = {_QUINT8: (0, 127), _QINT8: (-64, 63)}
_MAX_LEN = {_QINT8: 256, _QINT32: 2**32}   # torch checks the custom length for these only
_NAMES = {_QUINT8: "quint8", _QINT8: "qint8", _QINT32: "qint32", _QUINT4X2: "quint4x2"}


def _dtype_key(dtype_qmin, dtype_qmax):
    key = (int(dtype_qmin), int(dtype_qmax))
    if key not in _NAMES:
        raise ValueError("dtype must be one of quint8, qint8, qint32, quint4x2 (given by its "
                         f"storage range); got range [{dtype_qmin}, {dtype_qmax}]")
    return key


def quant_range(dtype_qmin, dtype_qmax, reduce_range, quant_min=None, quant_max=None):
    """Return the effective ``(quant_min, quant_max)`` of an observer.

    Parameters
    ----------
    dtype_qmin, dtype_qmax : int
        The dtype's storage range, e.g. ``numq.qint8.qmin, numq.qint8.qmax``.
    reduce_range : bool
        Halve the range (see the module table).
    quant_min, quant_max : int or None
        A custom range; used only when both are given.

    Returns
    -------
    (int, int)

    Raises
    ------
    ValueError
        Custom range without 0 in it, ``quant_min >= quant_max``, too long for the dtype
        (qint8: 256 values, qint32: 2**32), or outside int32.
    TypeError
        Non-integer bounds.
    """
    key = _dtype_key(dtype_qmin, dtype_qmax)
    if quant_min is None or quant_max is None:
        if reduce_range and key in _REDUCED:
            return _REDUCED[key]
        return key
    qmin = int_scalar(quant_min, "quant_min")
    qmax = int_scalar(quant_max, "quant_max")
    if not qmin <= 0 <= qmax:
        raise ValueError(f"quant_min <= 0 <= quant_max is required (the range must include "
                         f"0); got quant_min={qmin}, quant_max={qmax}")
    if qmin >= qmax:
        raise ValueError(f"quant_min must be < quant_max; got quant_min={qmin}, "
                         f"quant_max={qmax}")
    if qmin < _QINT32[0] or qmax > _QINT32[1]:
        raise ValueError(f"quant_min and quant_max must fit in int32; got [{qmin}, {qmax}]")
    limit = _MAX_LEN.get(key)
    if limit is not None and qmax - qmin + 1 > limit:
        raise ValueError(f"quant_max - quant_min + 1 must be <= {limit} for {_NAMES[key]}; "
                         f"got {qmax - qmin + 1}")
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    return qmin, qmax


def symmetric_zero_point(dtype_qmin, dtype_qmax, quant_min, quant_max, custom_range):
    """Zero point of the symmetric qschemes, as torch picks it.

    quint8: 128, or ``(quant_min + quant_max) // 2`` when the observer was given a custom
    range (``custom_range``; ``quant_min, quant_max`` are the effective bounds from
    :func:`quant_range`). Every other dtype (quint4x2 included): 0.
    """
    if _dtype_key(dtype_qmin, dtype_qmax) == _QUINT8:
        return (int(quant_min) + int(quant_max)) // 2 if custom_range else 128
    return 0


def qscheme_code(qscheme):
    """Map a qscheme (object or name) to ``numq.kernels.qparams`` AFFINE / SYMMETRIC /
    FLOAT_QPARAMS, the ``qscheme_code`` of ``calculate_qparams``."""
    name = getattr(qscheme, "name", qscheme)
    if isinstance(name, str):
        name = name.removeprefix("torch.").removeprefix("numq.")
    codes = {"per_tensor_affine": AFFINE, "per_channel_affine": AFFINE,
             "per_tensor_symmetric": SYMMETRIC, "per_channel_symmetric": SYMMETRIC,
             "per_channel_affine_float_qparams": FLOAT_QPARAMS}
    if name not in codes:
        raise ValueError(f"qscheme must be one of {sorted(codes)}; got {qscheme!r}")
    return codes[name]
