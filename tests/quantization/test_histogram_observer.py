"""``HistogramObserver`` and its kernels against the NumPy reference (no torch needed).

``reference_histogram`` transcribes torch 2.13's observer op by op (float32 NumPy); the
kernels and the observer must agree with it exactly. Behaviour tests cover the parts of
the torch contract that need no numbers: return values, warnings, errors, state dicts.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference_histogram as R
import reference_qparams as RQ

import numq
import numq.quantization as nq
from numq.kernels import histogram as K

F32 = np.float32


def finite_f32(lo=-1e4, hi=1e4):
    return st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)


def f32_arrays(min_size=1, max_size=300, elements=None):
    return hnp.arrays(F32, st.integers(min_size, max_size),
                      elements=elements if elements is not None else finite_f32())


def scaled(data):
    """Arrays at a drawn scale: fine structure and wide ranges alike."""
    x = data.draw(f32_arrays(elements=finite_f32(-100, 100)))
    s = data.draw(st.sampled_from([1e-3, 1.0, 37.0, 1e4]))
    with np.errstate(over="ignore"):
        return (x * F32(s)).astype(F32)


# -------------------------------------------------------------- kernels

@given(st.data(), st.integers(1, 300))
def test_histc_matches_reference(data, bins):
    x = scaled(data)
    lo, hi = sorted(data.draw(st.lists(finite_f32(), min_size=2, max_size=2)))
    if data.draw(st.booleans()):
        lo, hi = float(x.min()), float(x.max())
    mn, mx = x.min(), x.max()
    if lo != hi and data.draw(st.booleans()):
        x[data.draw(st.integers(0, x.size - 1))] = np.nan     # skipped, as torch
    left, right = K.histc_range(lo, hi, mn, mx, bins)
    got = K.histc_f32(x, left, right, bins)
    assert got.dtype == F32 and np.array_equal(got, R.histc(x, bins, lo, hi))


def test_histc_parallel_path_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(K.HISTC_PARALLEL_MIN + 12345).astype(F32)
    x[::1000] = np.nan
    x[5::777] = 10.0                      # outside the range
    left, right = K.histc_range(-3.0, 4.0, 0, 0, 2048)
    got = K.histc_f32(x, left, right, 2048)
    assert np.array_equal(got, R.histc(x, 2048, -3.0, 4.0))


@pytest.mark.parametrize("c", [0.0, 3.5, -2.0, 1e9, 3.4e38, 1e-40])
def test_histc_range_degenerate(c):
    x = np.full(4, c, F32)
    left, right = K.histc_range(c, c, c, c, 2048)
    assert left < F32(c) < right
    assert np.array_equal(K.histc_f32(x, left, right, 2048), R.histc(x, 2048, c, c))


def test_histc_range_errors():
    with pytest.raises(ValueError, match="not finite"):
        K.histc_range(np.nan, np.nan, np.nan, np.nan, 10)
    with pytest.raises(ValueError, match="not finite"):
        K.histc_range(0.0, np.inf, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="larger than min"):
        K.histc_range(2.0, 1.0, 0.0, 1.0, 10)


def test_histc_overflowing_quotient_lands_in_bin_0():
    # (x - min) * bins overflows float32: torch's x86 build counts these in bin 0
    x = np.array([0.0, 1e36, 5e35, 1e33], F32)
    left, right = K.histc_range(0.0, 1e36, 0.0, 1e36, 2048)
    got = K.histc_f32(x, left, right, 2048)
    assert got[0] == 3 and got[2] == 1 and got.sum() == 4
    assert np.array_equal(got, R.histc(x, 2048, 0.0, 1e36))


@given(f32_arrays(min_size=0, max_size=3000,
                  elements=st.floats(-1e6, 1e6, width=32, allow_nan=False)))
def test_sum_matches_reference(a):
    assert K.sum_f32(a) == R.torch_sum(a)


def test_cumsum_double_accumulator():
    a = np.full(5, 0.1, F32)
    out = np.empty(5, F32)
    K.cumsum_f32(a, out)
    assert np.array_equal(out, R.cumsum(a))
    assert np.array_equal(out, np.cumsum(a.astype(np.float64)).astype(F32))


@settings(max_examples=25)
@given(st.data(), st.integers(1, 100))
def test_upscale_matches_reference(data, bins):
    hist = data.draw(hnp.arrays(F32, bins, elements=st.floats(0, 1000, width=32)))
    a, b, c, d = sorted(data.draw(st.lists(finite_f32(-1e3, 1e3), min_size=4, max_size=4,
                                           unique=True)))
    omin, omax = (F32(b), F32(c)) if data.draw(st.booleans()) else (F32(a), F32(c))
    nmin, nmax = F32(a), F32(d)
    out = np.zeros(bins, F32)
    K.upscale_histogram_f32(hist, omin, omax, nmin, nmax, 16, out)
    assert np.array_equal(out, R.upscale_histogram(hist, omin, omax, nmin, nmax, 16))


@settings(max_examples=30)
@given(st.data(), st.integers(1, 200))
def test_quantization_error_matches_reference(data, bins):
    hist = data.draw(hnp.arrays(F32, bins, elements=st.floats(0, 1e5, width=32)))
    mn, mx = sorted(data.draw(st.lists(finite_f32(), min_size=2, max_size=2)))
    s = data.draw(st.integers(0, bins - 1))
    e = data.draw(st.integers(s, bins - 1))
    dst = data.draw(st.sampled_from([16, 256, 2**32]))
    got = K.quantization_error_f32(hist, F32(mn), F32(mx), s, e, dst, np.empty(bins, F32))
    want = R.quantization_error(hist, F32(mn), F32(mx), s, e, dst)
    # NaN where density overflows float32 (a tiny range), in torch too
    assert got == want or (np.isnan(got) and np.isnan(want))


@settings(max_examples=15)   # the reference search can loop 50000 times in Python
@given(st.data(), st.integers(1, 256))
def test_search_matches_reference(data, bins):
    kind = data.draw(st.sampled_from(["counts", "spiky", "fractional"]))
    if kind == "counts":
        hist = data.draw(hnp.arrays(F32, bins, elements=st.integers(0, 50).map(float)))
    elif kind == "spiky":
        hist = np.zeros(bins, F32)
        for i in data.draw(st.lists(st.integers(0, bins - 1), min_size=1, max_size=5)):
            hist[i] += F32(data.draw(st.integers(1, 10**6)))
    else:
        hist = data.draw(hnp.arrays(F32, bins, elements=st.floats(0, 100, width=32)))
    mn, mx = sorted(data.draw(st.lists(finite_f32(), min_size=2, max_size=2)))
    s, e = K.non_linear_param_search_f32(hist, F32(mn), F32(mx), 256)
    obs = nq.HistogramObserver(bins=bins)
    obs.histogram[...] = hist
    obs.min_val[...] = mn
    obs.max_val[...] = mx
    new_min, new_max = obs._non_linear_param_search()
    ref_min, ref_max = R.non_linear_param_search(hist, F32(mn), F32(mx), 256)
    assert new_min == ref_min and new_max == ref_max
    assert 0 <= s <= e < bins


# -------------------------------------------------------------- observer

# small bin counts: the reference re-bins a merge with exact-rational FMAs (slow)
CONFIGS = [
    (dict(bins=128), "affine", "quint8", False),
    (dict(bins=96, reduce_range=True), "affine", "quint8", True),
    (dict(bins=128, dtype=numq.qint8, qscheme=numq.per_tensor_symmetric), "symmetric",
     "qint8", False),
    (dict(bins=7), "affine", "quint8", False),
]


def reference_qparams(state, dtype, reduce_range, scheme):
    qmin, qmax = RQ.quant_range(dtype, reduce_range)
    new_min, new_max = R.non_linear_param_search(state.histogram, state.min_val,
                                                 state.max_val, 256)
    sym_zp = {"quint8": 128, "qint8": 0}[dtype]
    return RQ.calculate_qparams(new_min, new_max, qmin, qmax, scheme,
                                np.finfo(F32).eps, sym_zp)


@settings(max_examples=25)
@given(st.data(), st.sampled_from(range(len(CONFIGS))))
def test_observer_matches_reference(data, ci):
    kw, scheme, dtype, rr = CONFIGS[ci]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = nq.HistogramObserver(**kw)
    state = R.State(obs.bins)
    for _ in range(data.draw(st.integers(1, 4))):
        x = scaled(data)
        if data.draw(st.booleans()):
            x = x + F32(data.draw(finite_f32(-50, 50)))
        assert obs(x) is x
        R.forward(state, x)
        assert np.array_equal(obs.histogram, state.histogram)
        assert obs.min_val == state.min_val and obs.max_val == state.max_val
    scale, zp = obs.calculate_qparams()
    rs, rz = reference_qparams(state, dtype, rr, scheme)
    assert np.array_equal(scale, rs) and np.array_equal(zp, rz)
    assert scale.dtype == F32 and zp.dtype == (np.int64 if scheme == "symmetric" else np.int32)


def test_realistic_batches_match_reference():
    rng = np.random.default_rng(3)
    obs = nq.HistogramObserver(bins=256)
    state = R.State(256)
    for k in range(4):
        x = (rng.standard_normal(4000) * (1 + k) + k).astype(F32)
        obs(x)
        R.forward(state, x)
    assert np.array_equal(obs.histogram, state.histogram)
    scale, zp = obs.calculate_qparams()
    rs, rz = reference_qparams(state, "quint8", False, "affine")
    assert np.array_equal(scale, rs) and np.array_equal(zp, rz)


def test_forward_returns_input_unchanged():
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    before = x.copy()
    obs = nq.HistogramObserver()
    assert obs(x) is x
    assert np.array_equal(x, before)


def test_float64_and_int_input_observed_as_float32():
    x64 = np.array([0.1, 0.7, -2.3, 1e-9])
    a, b = nq.HistogramObserver(), nq.HistogramObserver()
    a(x64)
    b(x64.astype(F32))
    assert np.array_equal(a.histogram, b.histogram)
    c, d = nq.HistogramObserver(), nq.HistogramObserver()
    c(np.array([1, 5, -3], np.int32))
    d(np.array([1.0, 5.0, -3.0], F32))
    assert np.array_equal(c.histogram, d.histogram)
    assert c.min_val == -3 and c.max_val == 5


def test_nan_raises_and_leaves_state():
    obs = nq.HistogramObserver()
    with pytest.raises(ValueError, match="NaN"):
        obs(np.array([1.0, np.nan], F32))
    assert obs.min_val == np.inf and obs.max_val == -np.inf and not obs.histogram.any()
    obs(np.array([1.0, 2.0], F32))
    snap = {k: v.copy() for k, v in obs.state_dict().items()}
    with pytest.raises(ValueError, match="NaN"):
        obs(np.array([np.nan, np.inf], F32))
    for k, v in obs.state_dict().items():
        assert np.array_equal(v, snap[k])


def test_inf_dropped_with_warning():
    obs = nq.HistogramObserver()
    with pytest.warns(UserWarning, match="inf detected"):
        obs(np.array([np.inf, 1.0, -np.inf, 3.0], F32))
    assert obs.min_val == 1.0 and obs.max_val == 3.0 and obs.histogram.sum() == 2
    with pytest.warns(UserWarning, match="inf detected"):
        obs(np.array([np.inf], F32))
    assert obs.histogram.sum() == 2


def test_empty_input_and_no_data():
    obs = nq.HistogramObserver()
    e = np.zeros((2, 0), F32)
    assert obs(e) is e
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = obs.calculate_qparams()
    assert s.tolist() == [1.0] and z.tolist() == [0]
    assert s.dtype == F32 and z.dtype == np.int64


def test_constant_and_zero_data():
    obs = nq.HistogramObserver()
    obs(np.zeros(100, F32))
    assert obs.min_val == 0 and obs.max_val == 0 and obs.histogram[1024] == 100
    s, z = obs.calculate_qparams()
    assert s[0] == np.finfo(F32).eps and z[0] == 0
    obs(np.ones(10, F32))            # a point mass moves to the new range whole
    assert obs.histogram[0] == 100 and obs.histogram[-1] == 10


def test_constructor_rules():
    obs = nq.HistogramObserver()
    assert obs.bins == 2048 and obs.upsample_rate == 16 and obs.dst_nbins == 256
    assert obs.histogram.shape == (2048,) and obs.histogram.dtype == F32
    assert obs.min_val.shape == () and obs.min_val == np.inf and obs.max_val == -np.inf
    assert (obs.quant_min, obs.quant_max) == (0, 255)
    assert nq.HistogramObserver(dtype=numq.qint32).dst_nbins == 2**32
    assert nq.HistogramObserver(dtype=numq.quint4x2).dst_nbins == 256
    with pytest.warns(UserWarning, match="reduce_range"):
        assert nq.HistogramObserver(reduce_range=True).quant_max == 127
    for bad in (dict(qscheme=numq.per_channel_affine), dict(is_dynamic=True)):
        with pytest.raises(nq.UnsupportedObserverConfig):
            nq.HistogramObserver(**bad)
    with pytest.raises(TypeError, match="bins"):
        nq.HistogramObserver(bins=2.5)
    with pytest.raises(ValueError, match="bins"):
        nq.HistogramObserver(bins=0)
    assert "min_val=inf" in repr(obs)


def test_factories():
    a = nq.default_histogram_observer()
    b = nq.default_histogram_observer()
    assert isinstance(a, nq.HistogramObserver) and a is not b
    assert (a.quant_min, a.quant_max) == (0, 127)
    c = nq.HistogramObserver.with_args(bins=16, dtype=numq.qint8)()
    assert c.bins == 16 and c.dtype is numq.qint8 and c.histogram.shape == (16,)
    assert "HistogramObserver" in nq.observer.__all__
    assert "default_histogram_observer" in nq.__all__


def test_state_dict_round_trip():
    rng = np.random.default_rng(1)
    a = nq.HistogramObserver()
    for k in range(3):
        a(rng.standard_normal(5000).astype(F32) * (k + 1))
    sd = a.state_dict()
    assert list(sd) == ["eps", "histogram", "min_val", "max_val"]
    assert [v.shape for v in sd.values()] == [(1,), (2048,), (), ()]
    b = nq.HistogramObserver()
    b.load_state_dict({k: v.copy() for k, v in sd.items()})
    for k, v in b.state_dict().items():
        assert np.array_equal(v, sd[k]), k
    assert [v.tolist() for v in a.calculate_qparams()] == \
        [v.tolist() for v in b.calculate_qparams()]
    # a (1,)-shaped min/max (as a torch checkpoint could hold) keeps its shape
    sd2 = dict(sd, min_val=sd["min_val"].reshape(1), max_val=sd["max_val"].reshape(1))
    c = nq.HistogramObserver()
    c.load_state_dict(sd2)
    assert c.min_val.shape == (1,) and c.state_dict()["max_val"].shape == (1,)
    c(np.array([100.0], F32))
    b(np.array([100.0], F32))
    assert c.max_val[0] == b.max_val == 100
    assert np.array_equal(c.histogram, b.histogram)
    assert [v.tolist() for v in c.calculate_qparams()] == \
        [v.tolist() for v in b.calculate_qparams()]


def test_state_dict_bad_shapes():
    obs = nq.HistogramObserver()
    sd = {k: v.copy() for k, v in obs.state_dict().items()}
    with pytest.raises(ValueError, match="size mismatch"):
        obs.load_state_dict(dict(sd, histogram=np.zeros(10, F32)))
    with pytest.raises(ValueError, match="single number"):
        obs.load_state_dict(dict(sd, min_val=np.zeros(3, F32)))
    with pytest.raises(KeyError, match="min_val"):
        obs.load_state_dict({k: v for k, v in sd.items() if k != "min_val"})
    old = dict(sd, min_val=np.zeros(0, F32), max_val=np.zeros(0, F32))
    obs.load_state_dict(old)                    # before observer version 3: "no data"
    assert obs.min_val == np.inf and obs.max_val == -np.inf


def test_get_norm():
    obs = nq.HistogramObserver()
    db = np.array([0.0, -1.0, 0.5], F32)
    de = np.array([1.0, 1.0, 2.0], F32)
    dens = np.array([3.0, 1.5, 2.0], F32)
    assert np.array_equal(obs._get_norm(db, de, dens), R.get_norm(db, de, dens))
