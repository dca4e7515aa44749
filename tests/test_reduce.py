"""numq.kernels.reduce: min/max over a tensor and per channel, against NumPy references."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numq.kernels.quantize import PARALLEL_MIN
from numq.kernels.reduce import minmax_f32, minmax_per_channel_f32

from reference_qparams import minmax, minmax_per_channel

F32 = np.float32


def same(a, b):
    """Exact equality of float32 values/arrays, NaN equal to NaN (zeros of either sign equal)."""
    a = np.asarray(a, F32)
    b = np.asarray(b, F32)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def per_channel(x3):
    C = x3.shape[1]
    mn = np.full(C, 7.0, F32)  # garbage: outputs are overwritten, not merged
    mx = np.full(C, -7.0, F32)
    minmax_per_channel_f32(x3, mn, mx)
    return mn, mx


# ------------------------------------------------------------------ minmax_f32

@pytest.mark.parametrize("n", [1, 2, 31, 1000, PARALLEL_MIN - 1, PARALLEL_MIN,
                               3 * PARALLEL_MIN + 7])
def test_minmax_random_sizes(n):
    x = np.random.default_rng(n).standard_normal(n).astype(F32) * 100
    mn, mx = minmax_f32(x)
    assert type(mn) is np.float32 and type(mx) is np.float32
    assert same((mn, mx), minmax(x))


@pytest.mark.parametrize("n", [5, PARALLEL_MIN + 5])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("nan", [np.nan, -np.nan, np.float32(np.nan).view(np.int32) | 1])
def test_minmax_nan_propagates(n, where, nan):
    x = np.linspace(-5, 5, n).astype(F32)
    i = {"first": 0, "middle": n // 2, "last": n - 1}[where]
    if isinstance(nan, (int, np.integer)):      # a NaN with a payload
        x.view(np.int32)[i] = nan
    else:
        x[i] = nan
    mn, mx = minmax_f32(x)
    assert np.isnan(mn) and np.isnan(mx)


@pytest.mark.parametrize("n", [3, PARALLEL_MIN * 2])
def test_minmax_infinities_are_values(n):
    x = np.zeros(n, F32)
    x[1] = np.inf
    assert minmax_f32(x) == (0.0, np.inf)
    x[2] = -np.inf
    assert minmax_f32(x) == (-np.inf, np.inf)


def test_minmax_constant_and_edge_values():
    for v in [0.0, -0.0, 1.5, -3.0, np.finfo(F32).max, -np.finfo(F32).max,
              np.finfo(F32).tiny, np.finfo(F32).smallest_subnormal,
              -np.finfo(F32).smallest_subnormal]:
        x = np.full(100, v, F32)
        mn, mx = minmax_f32(x)
        assert mn.view(np.int32) == F32(v).view(np.int32) == mx.view(np.int32)


def test_minmax_signed_zeros():
    # torch may return either zero; numq orders -0.0 below +0.0 (never changes a qparam)
    mn, mx = minmax_f32(np.array([0.0, -0.0, 0.0], F32))
    assert mn == 0 and mx == 0 and np.signbit(mn) and not np.signbit(mx)


def test_minmax_subnormals_and_extremes():
    x = np.array([1e-45, -1e-45, 3e38, -3e38, 1e-40], F32)
    assert same(minmax_f32(x), (F32(-3e38), F32(3e38)))
    x = np.array([1e-45, 2e-45], F32)
    assert same(minmax_f32(x), (F32(1e-45), F32(2e-45)))


def test_minmax_nd_input():
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(F32)
    assert same(minmax_f32(x), minmax(x))


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_minmax_empty_raises(shape):
    with pytest.raises(ValueError, match="x must have at least one element"):
        minmax_f32(np.empty(shape, F32))


floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(F32, st.integers(1, 300), elements=floats32))
def test_minmax_hypothesis(x):
    assert same(minmax_f32(x), minmax(x))


@settings(max_examples=20, deadline=None)
@given(st.integers(PARALLEL_MIN, 4 * PARALLEL_MIN), st.integers(0, 2**32 - 1),
       st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_minmax_hypothesis_parallel(n, seed, special):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30)).astype(F32)
    if special is not None:
        x[rng.integers(n)] = special
    assert same(minmax_f32(x), minmax(x))


# ------------------------------------------------------- minmax_per_channel_f32

SHAPES = [
    (1, 1, 1), (3, 4, 5), (2, 3, 64), (5, 2, 63),          # tiny: serial
    (1000, 3, 1), (400, 7, 1), (300, 200, 1),              # channel last, serial/parallel
    (100000, 3, 1), (70000, 1, 1), (1, 70000, 1),          # tiny plane, huge plane
    (50, 2000, 1), (33, 1500, 2), (7, 9, 40), (4000, 5, 7), # k > 1 with a tail, column split
    (7, 64, 100), (1, 3, 70000), (2, 5, 20000), (3, 2, 30000),  # rows: split channels
    (16, 64, 196), (1, 128, 4608), (1, 4096, 64),           # rows: many channels
]


@pytest.mark.parametrize("shape", SHAPES)
def test_per_channel_shapes(shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(F32)
    mn, mx = per_channel(x)
    rmn, rmx = minmax_per_channel(x)
    assert same(mn, rmn) and same(mx, rmx)


@pytest.mark.parametrize("shape", [(4, 6, 3), (3000, 6, 5), (8, 6, 100), (2, 6, 9000),
                                   (20000, 6, 1)])
def test_per_channel_nan_only_in_its_channel(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(F32)
    x[shape[0] - 1, 2, shape[2] // 2] = np.nan
    x[0, 4, 0] = np.inf
    x[shape[0] // 2, 5, shape[2] - 1] = -np.inf
    mn, mx = per_channel(x)
    assert np.isnan(mn[2]) and np.isnan(mx[2])
    assert mx[4] == np.inf and mn[5] == -np.inf
    rmn, rmx = minmax_per_channel(x)
    assert same(mn, rmn) and same(mx, rmx)


def test_per_channel_matches_axis_reduction_of_nd_tensor():
    # a per-channel observer with ch_axis=1 on NCHW data: outer = N, inner = H*W
    x = np.random.default_rng(3).standard_normal((8, 16, 10, 10)).astype(F32)
    mn, mx = per_channel(x.reshape(8, 16, 100))
    assert same(mn, x.min(axis=(0, 2, 3))) and same(mx, x.max(axis=(0, 2, 3)))


def test_per_channel_zero_channels_is_noop():
    minmax_per_channel_f32(np.empty((3, 0, 2), F32), np.empty(0, F32), np.empty(0, F32))


@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 3, 0)])
def test_per_channel_empty_channels_raise(shape):
    with pytest.raises(ValueError, match="x3 of shape"):
        minmax_per_channel_f32(np.empty(shape, F32), np.empty(3, F32), np.empty(3, F32))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(F32, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 70)),
                  elements=floats32))
def test_per_channel_hypothesis(x):
    mn, mx = per_channel(x)
    rmn, rmx = minmax_per_channel(x)
    assert same(mn, rmn) and same(mx, rmx)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 300), st.integers(1, 200), st.integers(0, 2**32 - 1),
       st.booleans())
def test_per_channel_hypothesis_large(outer, C, inner, seed, nan):
    # sizes around and above the parallel threshold, all strategies
    total = outer * C * inner
    if total > 600_000:
        outer = max(1, 600_000 // (C * inner))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((outer, C, inner)) * 10.0 ** rng.integers(-10, 10)).astype(F32)
    if nan:
        x[rng.integers(outer), rng.integers(C), rng.integers(inner)] = np.nan
    mn, mx = per_channel(x)
    rmn, rmx = minmax_per_channel(x)
    assert same(mn, rmn) and same(mx, rmx)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_counts_give_same_result(threads):
    import numba

    from numq._threads import set_num_threads
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("not enough threads")
    old = numba.get_num_threads()
    set_num_threads(threads)
    try:
        x = np.random.default_rng(5).standard_normal((300, 17, 33)).astype(F32)
        mn, mx = per_channel(x)
        assert same(mn, x.min(axis=(0, 2))) and same(mx, x.max(axis=(0, 2)))
        assert same(minmax_f32(x), (x.min(), x.max()))
    finally:
        set_num_threads(old)
