"""numq.dtypes: quantized dtypes, qschemes and the name / NumPy-dtype lookups."""
import copy
import pickle

import numpy as np
import pytest

import numq
from numq.dtypes import QDType, QScheme, as_qdtype, as_qscheme

QDTYPES = {
    # name: (storage, bits, qmin, qmax, is_quantized)
    "quint8": (np.uint8, 8, 0, 255, True),
    "qint8": (np.int8, 8, -128, 127, True),
    "qint32": (np.int32, 32, -(2**31), 2**31 - 1, True),
    "quint4x2": (np.uint8, 4, 0, 15, True),
    "float16": (np.float16, 16, -65504, 65504, False),
}
QSCHEMES = {
    # name: (per_channel, symmetric)
    "per_tensor_affine": (False, False),
    "per_channel_affine": (True, False),
    "per_tensor_symmetric": (False, True),
    "per_channel_symmetric": (True, True),
    "per_channel_affine_float_qparams": (True, False),
}


@pytest.mark.parametrize("name", QDTYPES)
def test_qdtype_attributes(name):
    storage, bits, qmin, qmax, is_q = QDTYPES[name]
    dt = getattr(numq, name)
    assert isinstance(dt, QDType)
    assert dt.name == name and repr(dt) == f"numq.{name}"
    assert dt.storage == np.dtype(storage) and isinstance(dt.storage, np.dtype)
    assert (dt.bits, dt.qmin, dt.qmax, dt.is_quantized) == (bits, qmin, qmax, is_q)
    assert dt.is_signed == (qmin < 0)
    if is_q and name != "quint4x2":  # the range is the storage type's full range
        info = np.iinfo(storage)
        assert (info.min, info.max, info.bits) == (qmin, qmax, bits)
    assert numq.dtypes.__dict__[name] is dt


@pytest.mark.parametrize("name", QSCHEMES)
def test_qscheme_attributes(name):
    per_channel, symmetric = QSCHEMES[name]
    qs = getattr(numq, name)
    assert isinstance(qs, QScheme)
    assert qs.name == name and repr(qs) == f"numq.{name}"
    assert (qs.per_channel, qs.symmetric) == (per_channel, symmetric)


@pytest.mark.parametrize("obj", [numq.quint8, numq.qint32, numq.quint4x2, numq.float16,
                                 numq.per_tensor_affine, numq.per_channel_affine_float_qparams])
def test_singletons_survive_copy_and_pickle(obj):
    assert copy.copy(obj) is obj
    assert copy.deepcopy(obj) is obj
    assert pickle.loads(pickle.dumps(obj)) is obj


@pytest.mark.parametrize("name", QDTYPES)
def test_as_qdtype_by_object_and_name(name):
    dt = getattr(numq, name)
    assert as_qdtype(dt) is dt
    assert as_qdtype(name) is dt
    assert as_qdtype(f"torch.{name}") is dt   # str(torch.quint8)
    assert as_qdtype(f"numq.{name}") is dt


@pytest.mark.parametrize("np_dtype, expected", [
    (np.uint8, "quint8"), (np.int8, "qint8"), (np.int32, "qint32"), (np.float16, "float16"),
    (np.dtype(np.uint8), "quint8"), (np.dtype("int8"), "qint8"), (np.dtype("<i4"), "qint32"),
    ("uint8", "quint8"), ("int8", "qint8"), ("int32", "qint32"),
])
def test_as_qdtype_from_numpy_storage_dtype(np_dtype, expected):
    # NumPy's convention: a storage dtype names the quantized dtype stored in it
    assert as_qdtype(np_dtype) is getattr(numq, expected)


def test_as_qdtype_allowed_restricts_with_value_error():
    assert as_qdtype("qint8", allowed=(numq.quint8, numq.qint8)) is numq.qint8
    with pytest.raises(ValueError, match="dtype"):
        as_qdtype(numq.qint32, allowed=(numq.quint8, numq.qint8))
    with pytest.raises(ValueError, match="my_arg"):
        as_qdtype(numq.qint32, arg="my_arg", allowed=(numq.quint8,))


@pytest.mark.parametrize("bad", ["quint16", "torch.float32", "", np.float32, np.float64,
                                 np.uint16, np.int64, np.bool_, None, 8, 3.5, object(),
                                 numq.per_tensor_affine, [np.uint8]])
def test_as_qdtype_unknown_is_type_error_naming_dtype(bad):
    with pytest.raises(TypeError, match=r"^dtype must be one of"):
        as_qdtype(bad)
    with pytest.raises(TypeError, match=r"^weight_dtype must"):
        as_qdtype(bad, arg="weight_dtype")


@pytest.mark.parametrize("name", QSCHEMES)
def test_as_qscheme_by_object_and_name(name):
    qs = getattr(numq, name)
    assert as_qscheme(qs) is qs
    assert as_qscheme(name) is qs
    assert as_qscheme(f"torch.{name}") is qs


@pytest.mark.parametrize("bad", ["per_tensor", "affine", None, 0, numq.quint8, np.uint8])
def test_as_qscheme_unknown_is_type_error_naming_qscheme(bad):
    with pytest.raises(TypeError, match=r"^qscheme must be"):
        as_qscheme(bad)
    with pytest.raises(TypeError, match=r"^scheme must be"):
        as_qscheme(bad, arg="scheme")


def test_public_names_are_the_dtypes_module_objects():
    for name in list(QDTYPES) + list(QSCHEMES):
        assert getattr(numq, name) is getattr(numq.dtypes, name)
        assert name in numq.__all__ and name in numq.dtypes.__all__
