"""Bad input to the public quantize / dequantize functions.

One test per class of mistake; each asserts the exception type AND that the message
starts with the name of the offending argument (DESIGN.md: "a message that names the
argument and what was expected"). Kernels never see such input.
"""
import numpy as np
import pytest

import numq

X = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -2.5]], np.float32)
Q8 = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)


def _per_tensor(scale=0.1, zero_point=0, dtype=numq.quint8, input=X):
    return numq.quantize_per_tensor(input, scale, zero_point, dtype)


def _per_channel(scales=(0.1, 0.2), zero_points=(0, 1), axis=0, dtype=numq.quint8, input=X):
    return numq.quantize_per_channel(input, np.asarray(scales), np.asarray(zero_points),
                                     axis, dtype)


CALLS_WITH_SCALE = [
    ("per_tensor", lambda s: _per_tensor(scale=s), "scale"),
    ("make_per_tensor", lambda s: numq._make_per_tensor_quantized_tensor(Q8, s, 0), "scale"),
    ("per_channel", lambda s: _per_channel(scales=(0.1, s)), "scales"),
    ("make_per_channel",
     lambda s: numq._make_per_channel_quantized_tensor(Q8, [s, 0.1], [0, 0], 0), "scales"),
    ("list_form", lambda s: numq.quantize_per_tensor([X, X], [0.1, s], [0, 0], numq.quint8),
     "scale"),
]


@pytest.mark.parametrize("bad", [0.0, -0.0, -1.0, -1e-30, 1e-46])  # 1e-46 is 0 as float32
@pytest.mark.parametrize("name, call, arg", CALLS_WITH_SCALE, ids=[c[0] for c in CALLS_WITH_SCALE])
def test_non_positive_scale(name, call, arg, bad):
    # torch silently accepts scale <= 0 (e.g. scale=0 gives 255 / 0); numq refuses
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        call(bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])  # 1e39 overflows float32
@pytest.mark.parametrize("name, call, arg", CALLS_WITH_SCALE, ids=[c[0] for c in CALLS_WITH_SCALE])
def test_non_finite_scale(name, call, arg, bad):
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        call(bad)


@pytest.mark.parametrize("bad", ["0.1", None, True, 1j, [0.1]])
def test_scale_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match=r"^scale\b"):
        _per_tensor(scale=bad)


@pytest.mark.parametrize("dtype, bad", [
    (numq.quint8, -1), (numq.quint8, 256), (numq.qint8, -129), (numq.qint8, 128),
    (numq.qint32, 2**31), (numq.qint32, -(2**31) - 1), (numq.quint4x2, 16),
    (numq.quint4x2, -1), (numq.quint8, np.int64(300)),
])
def test_zero_point_outside_dtype_range(dtype, bad):
    with pytest.raises(ValueError, match=r"^zero_point\b"):
        _per_tensor(zero_point=bad, dtype=dtype)
    with pytest.raises(ValueError, match=r"^zero_point\b"):
        numq._make_per_tensor_quantized_tensor(np.zeros(3, dtype.storage), 0.1, bad, dtype)
    if dtype is not numq.quint4x2:
        with pytest.raises(ValueError, match=r"^zero_points\b"):
            _per_channel(zero_points=(0, bad), dtype=dtype)


@pytest.mark.parametrize("bad", [1.0, 0.5, "1", None, True])
def test_zero_point_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match=r"^zero_point\b"):
        _per_tensor(zero_point=bad)


@pytest.mark.parametrize("scales, zero_points, arg", [
    ((0.1,), (0, 1), "scales"), ((0.1, 0.2, 0.3), (0, 1), "scales"), ((), (0, 1), "scales"),
    ((0.1, 0.2), (0,), "zero_points"), ((0.1, 0.2), (0, 1, 2), "zero_points"),
    ((0.1, 0.2), (), "zero_points"),
])
def test_per_channel_length_mismatch(scales, zero_points, arg):
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        _per_channel(scales=scales, zero_points=zero_points, axis=0)
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        numq._make_per_channel_quantized_tensor(Q8, np.asarray(scales), np.asarray(zero_points),
                                                0)


def test_per_channel_qparams_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"^scales\b"):
        _per_channel(scales=[[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"^zero_points\b"):
        _per_channel(zero_points=[[0, 1]])


@pytest.mark.parametrize("bad", [2, 3, -3, 100])
def test_axis_out_of_range(bad):
    with pytest.raises(ValueError, match=r"^axis\b"):
        _per_channel(axis=bad)
    with pytest.raises(ValueError, match=r"^axis\b"):
        numq._make_per_channel_quantized_tensor(Q8, [0.1, 0.2], [0, 0], bad)


@pytest.mark.parametrize("bad", [0.0, "0", None])
def test_axis_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match=r"^axis\b"):
        _per_channel(axis=bad)


@pytest.mark.parametrize("bad", [
    np.array([1, 2, 3]), np.array([1, 2], np.uint8), np.array([True, False]),
    np.array([1 + 2j]), [1, 2, 3], np.array(["1.0"]), np.array([1.0], np.longdouble),
])
def test_integer_or_non_float_input_where_float_is_required(bad):
    with pytest.raises(TypeError, match=r"^input\b"):
        numq.quantize_per_tensor(bad, 0.1, 0, numq.quint8)
    with pytest.raises(TypeError, match=r"^input\b"):
        numq.quantize_per_channel(np.atleast_1d(bad), [0.1] * np.size(bad), [0] * np.size(bad),
                                  0, numq.quint8)
    with pytest.raises(TypeError, match=r"^input\b"):
        numq.quantize_per_tensor_dynamic(bad, numq.quint8, False)


def test_quantized_input_where_float_is_required():
    q = _per_tensor()
    with pytest.raises(TypeError, match=r"^input\b"):
        numq.quantize_per_tensor(q, 0.1, 0, numq.quint8)


def test_float_input_where_integers_are_required():
    with pytest.raises(TypeError, match=r"^input\b"):
        numq._make_per_tensor_quantized_tensor(X, 0.1, 0, numq.quint8)
    with pytest.raises(ValueError, match=r"^input\b"):  # values outside quint4x2's [0, 15]
        numq._make_per_tensor_quantized_tensor(np.array([3, 16], np.uint8), 0.1, 0,
                                               numq.quint4x2)


@pytest.mark.parametrize("bad", ["quint16", np.float32, np.int64, None, 8, numq.per_tensor_affine])
def test_unknown_dtype(bad):
    with pytest.raises(TypeError, match=r"^dtype\b"):
        _per_tensor(dtype=bad)
    with pytest.raises(TypeError, match=r"^dtype\b"):
        _per_channel(dtype=bad)
    with pytest.raises(TypeError, match=r"^dtype\b"):
        numq.quantize_per_tensor_dynamic(X, bad, False)


def test_float16_is_not_a_static_quantized_dtype():
    with pytest.raises(ValueError, match=r"^dtype\b"):
        _per_tensor(dtype=numq.float16)
    with pytest.raises(ValueError, match=r"^dtype\b"):
        _per_channel(dtype=numq.float16)


@pytest.mark.parametrize("dtype", [numq.qint8, numq.qint32])
def test_float_zero_points_for_signed_dtypes_per_channel(dtype):
    # torch 2.13 accepts float zero points with qint8 (per_channel_affine_float_qparams)
    # and dies with SIGILL for qint32; numq allows them for quint8 / quint4x2 only.
    with pytest.raises(TypeError, match=r"^zero_points\b"):
        _per_channel(zero_points=np.array([0.0, 1.0], np.float32), dtype=dtype)
    with pytest.raises(TypeError, match=r"^zero_points\b"):
        numq._make_per_channel_quantized_tensor(np.zeros((2, 3), dtype.storage), [0.1, 0.2],
                                                np.array([0.5, 1.0]), 0, dtype)


def test_non_finite_float_zero_points():
    with pytest.raises(ValueError, match=r"^zero_points\b"):
        _per_channel(zero_points=np.array([0.0, np.nan], np.float32))


@pytest.mark.parametrize("dtype, exc", [(numq.qint32, ValueError), (numq.quint4x2, ValueError),
                                        ("qint16", TypeError), (np.float32, TypeError)])
def test_quantize_per_tensor_dynamic_bad_dtype(dtype, exc):
    with pytest.raises(exc, match=r"^dtype\b"):
        numq.quantize_per_tensor_dynamic(X, dtype, False)


@pytest.mark.parametrize("bad", [1, 0, None, "True", np.array([True])])
def test_quantize_per_tensor_dynamic_non_bool_reduce_range(bad):
    # torch: "argument 'reduce_range' must be bool, not int"
    with pytest.raises(TypeError, match=r"^reduce_range\b"):
        numq.quantize_per_tensor_dynamic(X, numq.quint8, bad)


def test_quantize_per_tensor_dynamic_needs_finite_non_empty_input():
    with pytest.raises(ValueError, match=r"^input\b"):
        numq.quantize_per_tensor_dynamic(np.zeros(0, np.float32), numq.quint8, False)
    with pytest.raises(ValueError, match=r"^input\b"):
        numq.quantize_per_tensor_dynamic(np.array([1.0, np.nan], np.float32), numq.qint8, True)


def test_list_form_needs_one_qparam_per_array():
    with pytest.raises(ValueError, match=r"^scale\b"):
        numq.quantize_per_tensor([X, X], [0.1], [0, 0], numq.quint8)
    with pytest.raises(ValueError, match=r"^scale\b"):
        numq.quantize_per_tensor([X, X], 0.1, [0, 0], numq.quint8)
    with pytest.raises(ValueError, match=r"^zero_point\b"):
        numq.quantize_per_tensor([X, X], [0.1, 0.1], [0, 0, 0], numq.quint8)


@pytest.mark.parametrize("bad", [np.array([1, 2]), 3.0, "q", None])
def test_dequantize_of_something_else(bad):
    with pytest.raises(TypeError, match=r"^tensor\b"):
        numq.dequantize(bad)
    with pytest.raises(TypeError, match=r"^tensor\b"):
        numq.dequantize([_per_tensor(), bad])


def test_per_channel_needs_a_dimension():
    with pytest.raises(ValueError, match=r"^input\b"):
        numq.quantize_per_channel(np.float32(1.0), [0.1], [0], 0, numq.quint8)
