"""quantize_per_tensor / quantize_per_channel / dequantize against tests/reference.py.

Integer results and dequantized float32 values compare with exact (bitwise) equality.
Every input is converted to contiguous float32 before a kernel sees it, so layouts and
input dtypes add no Numba compilations; the kernels compiled here are one per
(storage dtype, zero-point kind, serial / parallel, inner == 1 or not).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numq
import reference as R
from numq.kernels import PARALLEL_MIN

F16, F32, F64 = np.float16, np.float32, np.float64
ALL = [numq.quint8, numq.qint8, numq.qint32, numq.quint4x2]
PER_CHANNEL = [numq.quint8, numq.qint8, numq.qint32]
FLOAT_ZP = [numq.quint8, numq.quint4x2]
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 3e9, -3e9, 1e-45],
                    F32)
PROP = settings(max_examples=50, deadline=None)


# --------------------------------------------------------------------------- helpers

def bits(a):
    """Exact identity of an array: dtype, shape and bytes (NaN == NaN, -0.0 != 0.0)."""
    a = np.ascontiguousarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def same_f32(a, b):
    """Bitwise equal float32 arrays, any NaN equal to any NaN."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    nan = np.isnan(a)
    return a.shape == b.shape and np.array_equal(nan, np.isnan(b)) and \
        bits(a[~nan]) == bits(b[~nan])


def values(q):
    """A QTensor's integer values, shaped like it (quint4x2 unpacked from int_repr)."""
    r = q.int_repr()
    if q.dtype is numq.quint4x2:
        assert r.dtype == np.uint8 and r.shape == ((q.numel() + 1) // 2,)
        return R.unpack_quint4x2(r, q.numel()).reshape(q.shape)
    assert r.dtype == q.dtype.storage and r.shape == q.shape
    return r


def ref_per_tensor(x, scale, zp, dt):
    x = np.asarray(x, F32)
    q = R.quantize_per_tensor(x, scale, zp, dt.qmin, dt.qmax, dt.storage,
                              qint32=dt is numq.qint32, sub_byte=dt is numq.quint4x2)
    return q.reshape(x.shape)


def check_per_tensor(x, scale, zp, dt):
    """Quantize with numq, compare ints, qparams and dequantized values with the reference."""
    q = numq.quantize_per_tensor(x, scale, zp, dt)
    expect = ref_per_tensor(np.asarray(x).astype(F32), scale, zp, dt)
    assert q.dtype is dt and q.shape == np.shape(x)
    assert q.qscheme() is numq.per_tensor_affine
    assert q.q_scale() == float(scale) and q.q_zero_point() == zp
    assert bits(values(q)) == bits(expect)
    if dt is numq.quint4x2:
        assert bits(q.int_repr()) == bits(R.pack_quint4x2(expect))
    assert bits(q.dequantize()) == bits(R.dequantize_per_tensor(expect, scale, zp))
    return q


def check_per_channel(x, scales, zps, axis, dt):
    q = numq.quantize_per_channel(x, scales, zps, axis, dt)
    x32 = np.asarray(x).astype(F32)
    ax = axis % x32.ndim
    expect = R.quantize_per_channel(x32, scales, zps, ax, dt.qmin, dt.qmax, dt.storage)
    float_zp = np.asarray(zps).dtype.kind == "f"
    assert q.dtype is dt and q.shape == x32.shape
    assert q.qscheme() is (numq.per_channel_affine_float_qparams if float_zp
                           else numq.per_channel_affine)
    assert q.q_per_channel_axis() == ax
    # scales: float64, but float32 for float qparams (torch stores those in float32)
    assert bits(q.q_per_channel_scales()) == bits(np.asarray(scales, F32 if float_zp else F64))
    zp_out = q.q_per_channel_zero_points()
    assert bits(zp_out) == bits(np.asarray(zps, F32 if float_zp else np.int64))
    assert bits(values(q)) == bits(expect)
    assert bits(q.dequantize()) == bits(R.dequantize_per_channel(expect, scales, zps, ax))
    return q


def zp_strategy(dt):
    if dt is numq.qint32:
        return st.one_of(st.integers(-1000, 1000), st.integers(dt.qmin, dt.qmax))
    return st.integers(dt.qmin, dt.qmax)


SCALES = st.one_of(st.sampled_from([1.0, 0.5, 0.25, 2.0, 1 / 3, 0.1, 0.37, 2.0**-10]),
                   st.floats(1e-3, 1e3), st.floats(1e-30, 1e30))


@st.composite
def float_arrays(draw, scale, shape=None, min_side=0):
    """float32 arrays around the quantization grid of ``scale``: exact ties ``(k + 0.5) *
    scale`` and their float32 neighbours, random values, and special values."""
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=6))
    k = draw(hnp.arrays(np.int64, shape, elements=st.integers(-300, 300)))
    kind = draw(st.sampled_from(["ties", "near", "mixed", "raw"]))
    with np.errstate(over="ignore"):
        x = ((k + 0.5) * scale).astype(F32)
    if kind == "near":
        x = np.nextafter(x, draw(st.sampled_from([F32(np.inf), F32(-np.inf)])))
    elif kind == "mixed":
        extra = draw(hnp.arrays(F32, shape, elements=st.floats(-300, 300, width=32)))
        x = np.where(k % 3 == 0, extra * F32(min(scale, 1e30)), x).astype(F32)
        flat = x.reshape(-1)
        flat[::7] = np.resize(SPECIALS, flat[::7].size)
    elif kind == "raw":
        x = draw(hnp.arrays(F32, shape, elements=st.floats(width=32)))
    return x


# ------------------------------------------------------------------ per tensor basics

@PROP
@given(st.data())
def test_quantize_per_tensor_property(data):
    dt = data.draw(st.sampled_from(ALL), label="dtype")
    scale = data.draw(SCALES, label="scale")
    zp = data.draw(zp_strategy(dt), label="zero_point")
    x = data.draw(float_arrays(scale), label="x")
    check_per_tensor(x, scale, zp, dt)


@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0**-7, 3.0])
def test_exact_ties_with_odd_zero_points(dt, scale):
    k = np.arange(-300, 300)
    x = ((k + 0.5) * scale).astype(F32)
    assert np.array_equal(x.astype(F64), (k + 0.5) * scale)  # really exact ties
    zps = [1, 3, 7, 15] if dt is numq.quint4x2 else [1, 3, 127, -5, 2**25 + 1]
    for zp in zps:
        if dt.qmin <= zp <= dt.qmax:
            for xx in (x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))):
                check_per_tensor(xx, scale, zp, dt)


@pytest.mark.parametrize("dt, expected", [
    # NUMERICS.md: 8-bit ties resolve after adding zp (fma); qint32 two roundings; the
    # sub-byte kernel (quint4x2) rounds BEFORE adding zp: rint(0.5) + 1 = 1.
    (numq.quint8, [2, 2, 4, 0, 4]), (numq.qint8, [2, 2, 4, 0, 4]),
    (numq.qint32, [2, 2, 4, 0, 4]), (numq.quint4x2, [1, 3, 3, 1, 5]),
])
def test_tie_examples(dt, expected):
    x = np.array([0.5, 1.5, 2.5, -0.5, 3.5], F32)
    assert values(numq.quantize_per_tensor(x, 1.0, 1, dt)).tolist() == expected
    if dt is not numq.quint4x2:  # per channel: two roundings, ties after adding zp
        q = numq.quantize_per_channel(x[None], [1.0], [1], 0, dt)
        assert values(q)[0].tolist() == [2, 2, 4, 0, 4]


@pytest.mark.parametrize("dt, expected", [
    # x:            nan  inf  -inf  1e30  -1e30  300  -300   3.0
    (numq.quint8, [255, 255, 0, 255, 0, 255, 0, 4]),
    (numq.qint8, [127, 127, -128, 127, -128, 127, -128, 4]),
    (numq.qint32, [-(2**31), 2**31 - 1, -(2**31), 2**31 - 1, -(2**31), 301, -299, 4]),
    (numq.quint4x2, [0, 0, 0, 15, 0, 15, 0, 4]),
])
def test_per_tensor_nan_inf(dt, expected):
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 300, -300, 3.0], F32)
    q = check_per_tensor(x, 1.0, 1, dt)
    assert values(q).tolist() == expected


@pytest.mark.parametrize("dt, zps, expected", [
    # x:                     nan      inf         -inf      1e30       3.0
    (numq.quint8, [1], [0, 255, 0, 255, 4]),      # NaN -> 0: low byte of int32(NaN)
    (numq.qint8, [1], [0, 127, -128, 127, 4]),
    (numq.qint32, [1], [-(2**31), 2**31 - 1, -(2**31), 2**31 - 1, 4]),
    (numq.quint8, np.array([1.0], F32), [0, 0, 0, 255, 4]),  # float qparams: non-finite -> qmin
    (numq.quint4x2, np.array([1.0], F32), [0, 0, 0, 15, 4]),
])
def test_per_channel_nan_inf(dt, zps, expected):
    x = np.array([[np.nan, np.inf, -np.inf, 1e30, 3.0]], F32)
    q = check_per_channel(x, [1.0], zps, 0, dt)
    assert values(q)[0].tolist() == expected


def test_qint32_saturates_at_the_int32_bounds():
    # float32(2**31 - 1) rounds up to 2**31: the clamp must not wrap to -2**31
    x = np.array([2147483520.0, 2.0**31, 2.0**32, -2.0**31, -2147483904.0, 1e20], F32)
    expect = [2147483520, 2**31 - 1, 2**31 - 1, -(2**31), -(2**31), 2**31 - 1]
    assert values(check_per_tensor(x, 1.0, 0, numq.qint32)).tolist() == expect
    for axis, xx in ((0, x[None, :]), (1, x[:, None])):
        q = check_per_channel(xx, [1.0], [0], axis, numq.qint32)
        assert values(q).ravel().tolist() == expect


def test_large_qint32_zero_point_is_rounded_to_float32_first():
    # torch adds float32(zp): 2**25 + 1 becomes 2**25, so x = 1.5 gives 2**25, not 2**25 + 4
    zp = 2**25 + 1
    q = check_per_tensor(np.array([1.5, 2.5], F32), 1.0, zp, numq.qint32)
    assert values(q).tolist() == [2**25, 2**25 + 4]


# -------------------------------------------------------------- shapes, dtypes, layouts

@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (2, 0, 4)])
def test_empty_arrays(dt, shape):
    x = np.zeros(shape, F32)
    q = check_per_tensor(x, 0.5, 3, dt)
    assert q.int_repr().size == 0 and q.dequantize().shape == shape
    if dt is not numq.quint4x2:
        for axis in range(len(shape)):
            C = shape[axis]
            check_per_channel(x, np.ones(C), np.zeros(C, np.int64), axis, dt)
    assert numq.dequantize([]) == []


def test_zero_dim_input_per_tensor():
    q = check_per_tensor(np.float32(2.5), 1.0, 1, numq.quint8)
    assert q.shape == () and values(q).tolist() == 4


@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("src", [F16, F64])
def test_float16_float64_inputs_are_rounded_to_float32_first(dt, src):
    scale, zp = 0.25, 3 if dt is not numq.qint8 else -3
    k = np.arange(-70, 70)
    x = ((k + 0.5) * scale).astype(src)
    if src is F64:  # tiny offsets that float32 rounding removes: ties again after rounding
        x = x + np.where(k % 2 == 0, 1e-12, -1e-12)
        x = np.concatenate([x, [1e300, -1e300, np.nan, np.inf]])
    else:
        x = np.concatenate([x, np.array([np.nan, np.inf, -np.inf, 65504], F16)]).astype(F16)
    with np.errstate(over="ignore"):
        x32 = x.astype(F32)
    q = numq.quantize_per_tensor(x, scale, zp, dt)
    assert bits(q.int_repr()) == bits(numq.quantize_per_tensor(x32, scale, zp, dt).int_repr())
    assert bits(values(q)) == bits(ref_per_tensor(x32, scale, zp, dt))
    if dt is not numq.quint4x2:
        x2 = x.reshape(2, -1)
        q = numq.quantize_per_channel(x2, [scale, 2 * scale], [zp, zp + 1], 0, dt)
        expect = R.quantize_per_channel(x32.reshape(2, -1), [scale, 2 * scale], [zp, zp + 1],
                                        0, dt.qmin, dt.qmax, dt.storage)
        assert bits(values(q)) == bits(expect)


def _layouts():
    rng = np.random.default_rng(11)
    base = ((rng.integers(-200, 200, (6, 10)) + 0.5) * 0.5).astype(F32)
    base[1, ::3] = np.nan
    return {
        "strided": base[:, ::3],
        "reversed": base[::-1],
        "reversed_cols": base[:, ::-2],
        "transposed": base.T,
        "big_endian": base.astype(">f4"),
        "big_endian_transposed": base.astype(">f4").T[::-1],
        "fortran": np.asfortranarray(base),
        "unaligned": np.frombuffer(b"\0" + base.tobytes(), F32, count=base.size,
                                   offset=1).reshape(base.shape),
    }


@pytest.mark.parametrize("layout", list(_layouts()))
@pytest.mark.parametrize("dt", ALL)
def test_non_contiguous_and_byte_swapped_inputs(layout, dt):
    x = _layouts()[layout]
    native = np.ascontiguousarray(x, dtype=F32)
    zp = 5
    q = check_per_tensor(x, 0.5, zp, dt)
    assert bits(q.int_repr()) == bits(numq.quantize_per_tensor(native, 0.5, zp, dt).int_repr())
    pc_dt = numq.quint8 if dt is numq.quint4x2 else dt
    for axis in (0, 1, -1):
        C = x.shape[axis]
        scales = np.linspace(0.25, 2.0, C)
        check_per_channel(x, scales, np.arange(C) % 7, axis, pc_dt)
    check_per_channel(x, np.full(x.shape[1], 0.5), np.linspace(-2, 9, x.shape[1]).astype(F32),
                      1, numq.quint8 if dt is not numq.quint4x2 else dt)


def test_input_is_not_modified_and_python_lists_work():
    x = np.array([[0.5, -1.5], [np.nan, 2.5]], F32)
    keep = x.copy()
    numq.quantize_per_tensor(x, 1.0, 1, numq.quint8)
    numq.quantize_per_channel(x, [1.0, 2.0], [1, 2], 1, numq.qint8)
    assert bits(x) == bits(keep)
    q = numq.quantize_per_tensor([[0.5, -1.5], [3.0, 2.5]], 1.0, 1, numq.quint8)
    assert values(q).tolist() == [[2, 0], [4, 4]]


# -------------------------------------------------------------------- serial / parallel

def _big(n, seed, scale):
    rng = np.random.default_rng(seed)
    x = ((rng.integers(-300, 300, n) + 0.5) * scale).astype(F32)  # exact ties
    x[1::2] = (rng.standard_normal(n // 2) * 100 * scale).astype(F32)
    x[::997] = np.resize(SPECIALS, x[::997].size)
    return x


@pytest.mark.parametrize("n", [PARALLEL_MIN - 1, PARALLEL_MIN, 3 * PARALLEL_MIN + 7])
@pytest.mark.parametrize("dt", ALL)
def test_per_tensor_serial_and_parallel_paths(n, dt):
    x = _big(n, n, 0.5)
    zp = {numq.quint8: 3, numq.qint8: -5, numq.qint32: 7, numq.quint4x2: 5}[dt]
    check_per_tensor(x, 0.5, zp, dt)


@pytest.mark.parametrize("n", [PARALLEL_MIN - 1, 3 * PARALLEL_MIN + 7])
@pytest.mark.parametrize("dt", PER_CHANNEL)
def test_per_channel_serial_and_parallel_paths(n, dt):
    # shapes: channel axis first, middle, last (inner == 1), one huge channel
    C = 7
    rows = n // C
    x = _big(rows * C, n + 1, 0.25)
    scales = 0.25 * 2.0 ** np.arange(-3, 4)
    zps = np.array([1, 3, -1, 0, 5, 7, 2]) % (dt.qmax + 1)
    for shape, axis in (((C, rows), 0), ((2, C, rows // 2), 1), ((rows, C), -1), ((rows, C), 1)):
        xx = x[: int(np.prod(shape))].reshape(shape)
        check_per_channel(xx, scales, zps, axis, dt)
    if dt is numq.quint8:
        check_per_channel(x.reshape(rows, C), scales, zps.astype(F32) + F32(0.25), 1, dt)
        check_per_channel(x.reshape(C, rows), scales, zps.astype(F32), 0, numq.quint4x2)
    one = x.reshape(1, -1)  # a single channel bigger than a tile
    check_per_channel(one, [0.25], [1], 0, dt)


def test_thread_count_does_not_change_results():
    import numba
    x = _big(2 * PARALLEL_MIN + 3, 5, 0.5)
    old = numq.get_num_threads()
    results = []
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numq.set_num_threads(n)
            results.append((numq.quantize_per_tensor(x, 0.5, 3, numq.quint8).int_repr(),
                            numq.quantize_per_channel(x.reshape(-1, 1), [0.5], [3], 1,
                                                      numq.qint8).int_repr()))
    finally:
        numq.set_num_threads(old)
    for r in results[1:]:
        assert bits(r[0]) == bits(results[0][0]) and bits(r[1]) == bits(results[0][1])


# ------------------------------------------------------------------------ per channel

@PROP
@given(st.data())
def test_quantize_per_channel_property(data):
    dt = data.draw(st.sampled_from(PER_CHANNEL + FLOAT_ZP), label="dtype")
    float_zp = dt is numq.quint4x2 or (dt is numq.quint8 and data.draw(st.booleans()))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    C = shape[axis]
    scale = data.draw(SCALES, label="scale")
    x = data.draw(float_arrays(scale, shape), label="x")
    scales = scale * np.asarray(data.draw(st.lists(st.sampled_from([1.0, 0.5, 2.0, 0.3, 1.7]),
                                                   min_size=C, max_size=C)))
    if float_zp:
        zps = data.draw(hnp.arrays(F32, C, elements=st.floats(-20, 300, width=32)), label="zps")
    else:
        zps = data.draw(hnp.arrays(np.int64, C, elements=zp_strategy(dt)), label="zps")
    check_per_channel(x, scales, zps, axis, dt)


@pytest.mark.parametrize("dt", PER_CHANNEL)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_per_channel_every_axis(dt, axis):
    rng = np.random.default_rng(axis + 10)
    x = ((rng.integers(-100, 100, (3, 4, 5)) + 0.5) * 0.5).astype(F32)
    C = x.shape[axis]
    scales = np.array([0.5, 0.25, 1.0, 2.0, 0.125])[:C]
    zps = np.array([1, 3, 5, 7, 9])[:C] * (-1 if dt is numq.qint8 else 1)
    q = check_per_channel(x, scales, zps, axis, dt)
    # each channel equals a per-tensor quantization with that channel's qparams, up to
    # the per-channel rule's two roundings (equal here: zp is added to exact halves)
    for c in range(C):
        sl = np.take(x, c, axis=axis)
        pt = ref_per_tensor(sl, scales[c], int(zps[c]), dt)
        got = np.take(values(q), c, axis=axis)
        if dt is not numq.qint32:
            assert bits(got) == bits(pt)


@pytest.mark.parametrize("dt", FLOAT_ZP)
@pytest.mark.parametrize("axis", [0, -1])
def test_per_channel_float_zero_points(dt, axis):
    x = np.array([[0.5, 1.5, -0.75, 2.25, 400.0, -400.0],
                  [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], F32)
    if axis == -1:
        x = np.ascontiguousarray(x.T)
    zps = np.array([0.5, 2.75], F32)
    q = check_per_channel(x, [0.5, 0.1], zps, axis, dt)
    assert q.q_per_channel_zero_points().dtype == F32


@pytest.mark.parametrize("dt", PER_CHANNEL)
def test_per_channel_ties_with_odd_zero_points(dt):
    k = np.arange(-200, 200)
    x = np.stack([(k + 0.5) * 0.5, (k + 0.5) * 0.25, (k + 0.5) * 2.0]).astype(F32)
    zps = [1, 3, -7] if dt is not numq.quint8 else [1, 3, 7]
    for xx in (x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))):
        check_per_channel(xx, [0.5, 0.25, 2.0], zps, 0, dt)
        check_per_channel(np.ascontiguousarray(xx.T), [0.5, 0.25, 2.0], zps, 1, dt)


# ------------------------------------------------------------------------- dequantize

def _random_ints(dt, shape, seed):
    rng = np.random.default_rng(seed)
    v = rng.integers(dt.qmin, dt.qmax, shape, endpoint=True, dtype=np.int64)
    v.reshape(-1)[:2] = [dt.qmin, dt.qmax][: v.size]
    return v.astype(dt.storage)


@pytest.mark.parametrize("dt", ALL)
def test_dequantize_per_tensor(dt):
    rng = np.random.default_rng(1)
    for n in (5, 1000, PARALLEL_MIN + 5):
        v = _random_ints(dt, n, n)
        for scale in (0.1, float(rng.uniform(1e-4, 10)), 3.0e-5):
            for zp in (dt.qmin, dt.qmax, (dt.qmin + dt.qmax) // 2, 1):
                q = numq._make_per_tensor_quantized_tensor(v, scale, zp, dt)
                assert bits(q.dequantize()) == bits(R.dequantize_per_tensor(v, scale, zp))
                assert bits(numq.dequantize(q)) == bits(q.dequantize())


@pytest.mark.parametrize("dt", PER_CHANNEL + [numq.quint4x2])
@pytest.mark.parametrize("shape, axis", [((4, 250), 0), ((3, 50, 7), 1), ((300, 6), 1),
                                         ((6, PARALLEL_MIN // 5), 0), ((PARALLEL_MIN // 5, 6), -1)])
def test_dequantize_per_channel(dt, shape, axis):
    rng = np.random.default_rng(len(shape) + shape[0])
    v = _random_ints(dt, shape, shape[-1])
    C = shape[axis]
    scales = rng.uniform(1e-4, 10, C)  # doubles: torch keeps them in double here
    zps = rng.integers(max(dt.qmin, -10**6), min(dt.qmax, 10**6), C, endpoint=True)
    q = numq._make_per_channel_quantized_tensor(v, scales, zps, axis, dt)
    assert bits(q.dequantize()) == bits(R.dequantize_per_channel(v, scales, zps, axis % v.ndim))
    if dt in FLOAT_ZP:
        fz = rng.uniform(-20, 300, C).astype(F32)
        q = numq._make_per_channel_quantized_tensor(v, scales, fz, axis, dt)
        assert q.qscheme() is numq.per_channel_affine_float_qparams
        assert bits(q.dequantize()) == bits(R.dequantize_per_channel(v, scales, fz,
                                                                     axis % v.ndim))


def test_dequantize_scale_in_double_per_channel_but_float_per_tensor():
    # A documented subtlety (torch 2.13): per-channel dequantize multiplies by the double
    # scale, per-tensor by float32(scale). Pick a case where the two differ.
    v = np.arange(-128, 128, dtype=np.int8)
    s = 0.1000000000000001
    pt = numq._make_per_tensor_quantized_tensor(v, s, 0).dequantize()
    pc = numq._make_per_channel_quantized_tensor(v[None], [s], [0], 0).dequantize()[0]
    assert bits(pt) == bits(v.astype(F32) * F32(s))
    assert bits(pc) == bits((v.astype(F64) * s).astype(F32))
    assert bits(pt) != bits(pc)  # the case really tells the two rules apart


def test_dequantize_lists_and_float_arrays():
    x = np.array([0.5, -1.0, 2.0], F32)
    qs = [numq.quantize_per_tensor(x, 0.5, 1, numq.quint8),
          numq.quantize_per_channel(x[None], [0.25], [0], 0, numq.qint8),
          numq.quantize_per_tensor(x, 0.5, 1, numq.quint4x2)]
    out = numq.dequantize(qs)
    assert isinstance(out, list) and len(out) == 3
    for q, d in zip(qs, out):
        assert bits(d) == bits(q.dequantize()) and d.dtype == F32
    assert numq.dequantize(tuple(qs))[1].shape == (1, 3)
    assert numq.dequantize(x) is x  # float arrays pass through, as torch.dequantize


# ------------------------------------------------------------------ _make_* round trips

@pytest.mark.parametrize("dt", ALL)
def test_make_per_tensor_round_trip(dt):
    v = _random_ints(dt, (3, 5), 3)
    q = numq._make_per_tensor_quantized_tensor(v, 0.3, (dt.qmin + dt.qmax) // 2 + 1, dt)
    assert q.dtype is dt and q.shape == v.shape
    assert bits(values(q)) == bits(v)
    assert q.q_scale() == 0.3 and q.q_zero_point() == (dt.qmin + dt.qmax) // 2 + 1
    v[0, 0] = dt.qmin if v[0, 0] != dt.qmin else dt.qmax
    assert values(q)[0, 0] != v[0, 0]  # the QTensor holds a copy
    if dt is not numq.quint4x2:  # dtype defaults from the storage dtype, as torch
        assert numq._make_per_tensor_quantized_tensor(v, 0.3, 0).dtype is dt
    # quantize -> int_repr -> _make -> same tensor
    x = ((np.arange(-20, 20) + 0.5) * 0.5).astype(F32)
    q1 = numq.quantize_per_tensor(x, 0.5, 3, dt)
    q2 = numq._make_per_tensor_quantized_tensor(values(q1), q1.q_scale(), q1.q_zero_point(), dt)
    assert q1.equal(q2)
    assert bits(q1.dequantize()) == bits(q2.dequantize())


@pytest.mark.parametrize("dt", PER_CHANNEL)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_make_per_channel_round_trip(dt, axis):
    v = _random_ints(dt, (4, 3, 2), 4)
    C = v.shape[axis]
    scales, zps = np.linspace(0.1, 1.0, C), np.arange(C) + 1
    q = numq._make_per_channel_quantized_tensor(v, scales, zps, axis, dt)
    assert q.dtype is dt and q.q_per_channel_axis() == axis % 3
    assert bits(values(q)) == bits(v)
    assert bits(q.q_per_channel_scales()) == bits(scales)
    assert bits(q.q_per_channel_zero_points()) == bits(zps.astype(np.int64))
    assert numq._make_per_channel_quantized_tensor(v, scales, zps, axis).dtype is dt
    x = np.linspace(-30, 30, 24, dtype=F32).reshape(4, 3, 2)
    q1 = numq.quantize_per_channel(x, scales, zps, axis, dt)
    q2 = numq._make_per_channel_quantized_tensor(values(q1), q1.q_per_channel_scales(),
                                                 q1.q_per_channel_zero_points(), axis, dt)
    assert q1.equal(q2) and bits(q1.dequantize()) == bits(q2.dequantize())


def test_make_per_channel_float_zero_points_round_trip():
    v = _random_ints(numq.quint4x2, (3, 4), 9)
    fz = np.array([0.5, 1.25, 7.0], F32)
    q = numq._make_per_channel_quantized_tensor(v, [0.1, 0.2, 0.3], fz, 0, numq.quint4x2)
    assert q.qscheme() is numq.per_channel_affine_float_qparams
    assert bits(values(q)) == bits(v)
    assert bits(q.int_repr()) == bits(R.pack_quint4x2(v))


# ---------------------------------------------------------------------------- list form

def test_quantize_per_tensor_list_form():
    xs = [np.array([0.5, 1.5, -2.0], F32), np.array([[3.0], [np.nan]], F64)]
    qs = numq.quantize_per_tensor(xs, [0.5, 0.25], [1, 3], numq.quint8)
    assert isinstance(qs, list) and len(qs) == 2
    for x, q, s, z in zip(xs, qs, [0.5, 0.25], [1, 3]):
        assert q.q_scale() == s and q.q_zero_point() == z
        assert bits(values(q)) == bits(ref_per_tensor(x, s, z, numq.quint8))
    # torch's form: scales / zero points as tensors (arrays), tuples of arrays
    qs2 = numq.quantize_per_tensor(tuple(xs), np.array([0.5, 0.25]), np.array([1, 3]),
                                   numq.quint8)
    assert all(a.equal(b) for a, b in zip(qs, qs2))
    assert numq.dequantize(qs)[1].shape == (2, 1)


# ----------------------------------------------------------------------- quint4x2 pack

@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1001])
def test_quint4x2_pack_unpack(n):
    vals = np.random.default_rng(n).integers(0, 16, n).astype(np.uint8)
    packed = numq.kernels.pack_quint4x2(vals, np.empty((n + 1) // 2, np.uint8))
    assert bits(packed) == bits(R.pack_quint4x2(vals))
    out = numq.kernels.unpack_quint4x2(packed, np.empty(n, np.uint8))
    assert bits(out) == bits(vals)


# --------------------------------------------------------------------- the fma32 twin

def _fma_inputs():
    rng = np.random.default_rng(2024)
    n = 4000
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 7, n)).astype(F32)
    b = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(F32)
    c = rng.integers(-300, 300, n).astype(F32)
    # tie-adjacent: x = (k + 0.5) * scale and its neighbours, b = 1 / f32(scale), odd zp
    scale = rng.uniform(1e-3, 10, n).astype(F32)
    k = rng.integers(-300, 300, n)
    t = ((k + 0.5) * scale).astype(F32)
    t = np.where(k % 3 == 0, t, np.nextafter(t, np.where(k % 3 == 1, np.inf, -np.inf)).astype(F32))
    inv = F32(1.0) / scale
    zp = (2 * rng.integers(-60, 60, n) + 1).astype(F32)
    # cancellation: c = -f32(a * b), the result is the product's rounding error
    cancel = -(a * b).astype(F32)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, 1e-45, 3e38, 1.0], F32)
    sa = np.repeat(specials, specials.size)
    sb = np.tile(specials, specials.size)
    A = np.concatenate([a, t, a, sa, np.ones_like(sa)])
    B = np.concatenate([b, inv, b, sb, sa])
    C = np.concatenate([c, zp, cancel, np.zeros_like(sa), sb])
    with np.errstate(all="ignore"):
        exact = A.astype(F64) * B.astype(F64) + C.astype(F64)
    ok = ~(np.isfinite(A) & np.isfinite(B) & np.isfinite(C)) | (np.abs(exact) < 3.3e38)
    return A[ok], B[ok], C[ok]  # finite inputs overflowing float32: see the xfail below


def _jit_fma():
    import numba
    from numq.kernels._fma import fma32

    @numba.njit
    def many(a, b, c, out):
        for i in range(a.size):
            out[i] = fma32(a[i], b[i], c[i])
        return out
    return many


def test_fma32_python_twin_equals_jitted():
    from numq.kernels._fma import fma32
    A, B, C = _fma_inputs()
    jit = _jit_fma()(A, B, C, np.empty(A.size, F32))
    with np.errstate(all="ignore"):
        py = np.array([fma32(a, b, c) for a, b, c in zip(A, B, C)], F32)
    assert same_f32(py, jit)
    assert same_f32(jit, R.fma_f32(A, B, C))  # and both equal the exact reference


def test_fma32_python_twin_overflow():
    from numq.kernels._fma import fma32
    big = np.finfo(F32).max
    A = np.array([3e38, -3e38, 3.4e38, big, big], F32)
    B = np.array([2.0, 2.0, 1.0, 1.0, 1.0], F32)
    # last two: just below and at the overflow threshold (max + half an ulp)
    C = np.array([0.0, 0.0, 3.4e38, 2.0**103 * 0.999, 2.0**103], F32)
    jit = _jit_fma()(A, B, C, np.empty(A.size, F32))
    assert np.isinf(jit[:3]).all() and jit[3] == big and np.isinf(jit[4])
    with np.errstate(all="ignore"):
        py = np.array([fma32(a, b, c) for a, b, c in zip(A, B, C)], F32)
    assert bits(py) == bits(jit)


def test_fma32_python_twin_signed_zero():
    from numq.kernels._fma import fma32
    A = np.array([1.0, -0.0, 2.0], F32)
    B = np.array([-0.0, 1.0, -3.0], F32)
    C = np.array([-0.0, -0.0, 6.0], F32)
    jit = _jit_fma()(A, B, C, np.empty(3, F32))
    assert bits(jit) == bits(np.array([-0.0, -0.0, 0.0], F32))
    py = np.array([fma32(a, b, c) for a, b, c in zip(A, B, C)], F32)
    assert bits(py) == bits(jit)
