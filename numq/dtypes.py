"""Quantized dtypes and quantization schemes (``torch.quint8``, ``torch.per_tensor_affine`` ...)."""
import numpy as np

__all__ = [
    "QDType", "QScheme", "quint8", "qint8", "qint32", "quint4x2", "float16",
    "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams", "as_qdtype", "as_qscheme",
]


class QDType:
    """A quantized dtype: storage dtype, bit width and integer range.

    Attributes
    ----------
    name : str
        PyTorch's name, e.g. ``"quint8"``.
    storage : numpy.dtype
        NumPy dtype of the integer representation (``int_repr()``).
    bits : int
        Bits per value (4 for ``quint4x2``, whose storage byte holds two values).
    qmin, qmax : int
        Representable integer range.
    """

    __slots__ = ("name", "storage", "bits", "qmin", "qmax", "is_quantized")

    def __init__(self, name, storage, bits, qmin, qmax, is_quantized=True):
        self.name = name
        self.storage = np.dtype(storage)
        self.bits = bits
        self.qmin = qmin
        self.qmax = qmax
        self.is_quantized = is_quantized

    @property
    def is_signed(self):
        return self.qmin < 0

    def __repr__(self):
        return f"numq.{self.name}"

    def __reduce__(self):
        # Singletons survive copy/deepcopy/pickle as themselves.
        return self.name


class QScheme:
    """A quantization scheme (``numq.per_tensor_affine`` ...)."""

    __slots__ = ("name", "per_channel", "symmetric")

    def __init__(self, name, per_channel, symmetric):
        self.name = name
        self.per_channel = per_channel
        self.symmetric = symmetric

    def __repr__(self):
        return f"numq.{self.name}"

    def __reduce__(self):
        return self.name


quint8 = QDType("quint8", np.uint8, 8, 0, 255)
qint8 = QDType("qint8", np.int8, 8, -128, 127)
qint32 = QDType("qint32", np.int32, 32, -(2**31), 2**31 - 1)
quint4x2 = QDType("quint4x2", np.uint8, 4, 0, 15)
float16 = QDType("float16", np.float16, 16, -65504, 65504, is_quantized=False)

per_tensor_affine = QScheme("per_tensor_affine", False, False)
per_channel_affine = QScheme("per_channel_affine", True, False)
per_tensor_symmetric = QScheme("per_tensor_symmetric", False, True)
per_channel_symmetric = QScheme("per_channel_symmetric", True, True)
per_channel_affine_float_qparams = QScheme("per_channel_affine_float_qparams", True, False)

_QDTYPES = {d.name: d for d in (quint8, qint8, qint32, quint4x2, float16)}
_QSCHEMES = {s.name: s for s in (per_tensor_affine, per_channel_affine, per_tensor_symmetric,
                                 per_channel_symmetric, per_channel_affine_float_qparams)}
# NumPy's convention: a storage dtype names the quantized dtype stored in it.
_FROM_NUMPY = {np.dtype(np.uint8): quint8, np.dtype(np.int8): qint8,
               np.dtype(np.int32): qint32, np.dtype(np.float16): float16}


def as_qdtype(dtype, arg="dtype", allowed=None):
    """Return the :class:`QDType` named by ``dtype`` or raise a clear error.

    Accepts a ``QDType``, its name (``"quint8"``, ``"torch.quint8"``) or a NumPy storage
    dtype, type or dtype name (``np.uint8`` / ``"uint8"`` -> quint8, ``np.int8`` -> qint8,
    ``np.int32`` -> qint32, ``np.float16`` -> float16).
    ``allowed`` restricts the result to a tuple of QDTypes.
    """
    q = None
    if isinstance(dtype, QDType):
        q = dtype
    elif isinstance(dtype, str):
        q = _QDTYPES.get(dtype.removeprefix("torch.").removeprefix("numq."))
    if q is None and not isinstance(dtype, QDType):
        try:  # a NumPy dtype, type or name ("uint8") names the dtype stored in it
            q = _FROM_NUMPY.get(np.dtype(dtype))
        except (TypeError, ValueError):
            q = None
    if q is None:
        raise TypeError(f"{arg} must be one of numq.quint8, qint8, qint32, quint4x2, float16; "
                        f"got {dtype!r}")
    if allowed is not None and q not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{arg} must be one of {names}; got {q!r}")
    return q


def as_qscheme(qscheme, arg="qscheme"):
    """Return the :class:`QScheme` named by ``qscheme`` (object or name)."""
    if isinstance(qscheme, QScheme):
        return qscheme
    if isinstance(qscheme, str):
        s = _QSCHEMES.get(qscheme.removeprefix("torch.").removeprefix("numq."))
        if s is not None:
            return s
    raise TypeError(f"{arg} must be a numq qscheme such as numq.per_tensor_affine; got {qscheme!r}")
