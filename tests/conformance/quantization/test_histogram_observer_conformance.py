"""``HistogramObserver`` against PyTorch 2.13, batch by batch.

After every ``forward`` the buffers (``histogram``, ``min_val``, ``max_val``) must equal
torch's bit for bit (the merge of a wider range included); ``calculate_qparams`` must
give torch's zero point exactly and its scale within 1e-6 relative (numq reproduces the
search's float32 arithmetic, so in practice the scale is identical too).
"""
import warnings
import zlib

import numba
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.ao.quantization import observer as tobs  # noqa: E402

import numq  # noqa: E402
import numq.quantization as nq  # noqa: E402
from numq.kernels.histogram import (quantization_error_f32, sum_f32,  # noqa: E402
                                    upscale_histogram_f32)

F32 = np.float32
DTYPES = {"quint8": (numq.quint8, torch.quint8), "qint8": (numq.qint8, torch.qint8),
          "qint32": (numq.qint32, torch.qint32), "quint4x2": (numq.quint4x2, torch.quint4x2)}
QSCHEMES = {"affine": (numq.per_tensor_affine, torch.per_tensor_affine),
            "symmetric": (numq.per_tensor_symmetric, torch.per_tensor_symmetric)}


@pytest.fixture(autouse=True)
def _torch_setup():
    old_engine = torch.backends.quantized.engine
    old_threads = torch.get_num_threads()
    torch.backends.quantized.engine = "x86"
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old_engine
    torch.set_num_threads(old_threads)


def make_pair(dtype="quint8", qscheme="affine", **kw):
    nd, td = DTYPES[dtype]
    ns, ts = QSCHEMES[qscheme]
    return (nq.HistogramObserver(dtype=nd, qscheme=ns, **kw),
            tobs.HistogramObserver(dtype=td, qscheme=ts, **kw))


def assert_same_state(o, t, where=""):
    th = t.histogram.numpy()
    assert o.histogram.dtype == F32 and o.histogram.shape == th.shape, where
    bad = np.nonzero(o.histogram != th)[0]
    assert bad.size == 0, (f"{where}: histograms differ in {bad.size} bins, first "
                           f"{bad[:5]}: numq {o.histogram[bad[:5]]} torch {th[bad[:5]]}")
    for name in ("min_val", "max_val"):
        a = getattr(o, name)
        b = getattr(t, name).numpy()
        assert a.dtype == F32 and a.shape == b.shape, (where, name)
        assert np.array_equal(a, b, equal_nan=True), (where, name, a, b)


def assert_same_qparams(o, t, where=""):
    s, z = o.calculate_qparams()
    ts, tz = (v.numpy() for v in t.calculate_qparams())
    assert s.dtype == F32 and s.shape == ts.shape, where
    assert z.dtype == tz.dtype and z.shape == tz.shape, (where, z.dtype, tz.dtype)
    assert np.array_equal(z, tz), (where, z, tz, s, ts)
    np.testing.assert_allclose(s, ts, rtol=1e-6, atol=0, err_msg=where)
    return s, z


# ------------------------------------------------------------------ data

BIG = 1 << 17      # above the parallel-binning threshold
SMALL = 3000


def batches(case, rng):
    """A list of float32 arrays: realistic activation streams and awkward ones."""
    def normal(n, scale=1.0, loc=0.0):
        return (rng.standard_normal(n) * scale + loc).astype(F32)

    if case == "normal":
        return [normal(BIG, s) for s in (1.0, 1.3, 0.7, 1.1)] + [normal(SMALL, 2.0)]
    if case == "uniform":
        return [rng.uniform(-a, b, n).astype(F32)
                for a, b, n in ((1, 2, BIG), (0.5, 3, SMALL), (2, 1, BIG))]
    if case == "relu":
        return [np.maximum(normal(n, s), 0) for s, n in ((1.0, BIG), (2.0, SMALL), (0.5, BIG))]
    if case == "heavy_tailed":
        return [rng.standard_t(1.5, n).astype(F32) for n in (BIG, SMALL, BIG)]
    if case == "growing":
        return [normal(SMALL, 2.0 ** k) for k in range(5)]
    if case == "shrinking":
        return [normal(SMALL, 2.0 ** -k) for k in range(5)]
    if case == "shifting":
        return [normal(SMALL, 1.0, 3.0 * k) for k in range(4)] + [normal(SMALL, 1.0, -5.0)]
    if case == "negative":
        return [-np.abs(normal(SMALL, s)) - 1 for s in (1.0, 3.0, 0.5)]
    if case == "constant":
        return [np.full(SMALL, 3.5, F32), np.full(100, 3.5, F32), normal(SMALL)]
    if case == "all_zero":
        return [np.zeros(SMALL, F32), np.zeros(SMALL, F32), np.ones(10, F32),
                normal(SMALL)]
    if case == "single_values":
        return [np.array([v], F32) for v in (0.5, 0.5, -2.0, 7.25, 1.0)]
    if case == "tiny_spread":
        return [(1000 + rng.standard_normal(n) * 1e-3).astype(F32) for n in (SMALL, SMALL)]
    if case == "big_constant":
        # c - 1 and c + 1 round to c in float32: torch widens by one float32 step instead
        return [np.full(10, 1e9, F32), np.full(5, 1e9, F32), np.full(5, 2e9, F32)]
    if case == "overflowing":
        # (x - min) * bins overflows float32: torch's bin 0 (see numq.kernels.histogram)
        return [np.array([0.0, 1e36], F32), np.array([-1e36, 0.0, 5.0], F32)]
    if case == "float32_max":
        return [np.array([3.4e38], F32), np.array([3.4e38, 1.0], F32),
                np.array([-3.4e38], F32)]
    if case == "subnormal":
        return [np.array([1e-40, 2e-40, 0.0, -1e-41], F32), np.array([1e-39], F32)]
    if case == "many_batches":
        # fractional merged counts and a total beyond float32's integer range
        x = normal(1 << 20)
        return [x * F32(1.0 + 0.03 * k) for k in range(17)]
    raise ValueError(case)


CASES = ["normal", "uniform", "relu", "heavy_tailed", "growing", "shrinking", "shifting",
         "negative", "constant", "all_zero", "single_values", "tiny_spread"]
# torch's search is slow on these (up to 2 s): fewer configurations
EXTREME_CASES = ["big_constant", "overflowing", "float32_max", "subnormal"]
CONFIGS = {
    "default": {},
    "reduce_range": dict(reduce_range=True),
    "qint8_symmetric": dict(dtype="qint8", qscheme="symmetric"),
    "quint8_symmetric": dict(qscheme="symmetric"),
    "range_0_127": dict(quant_min=0, quant_max=127),
    "bins256": dict(bins=256),
    "bins7": dict(bins=7),
}


@pytest.mark.parametrize("case,config",
                         [(c, k) for c in CASES for k in CONFIGS]
                         + [(c, k) for c in EXTREME_CASES for k in ("default", "bins7")])
def test_batches_match_torch(case, config):
    rng = np.random.default_rng(zlib.crc32(f"{case}/{config}".encode()))
    o, t = make_pair(**CONFIGS[config])
    for k, x in enumerate(batches(case, rng)):
        assert o(x) is x
        t(torch.from_numpy(x))
        assert_same_state(o, t, f"{case}/{config} batch {k}")
        if k == 1 and case not in EXTREME_CASES:
            assert_same_qparams(o, t, f"{case}/{config} after batch {k}")
    assert_same_qparams(o, t, f"{case}/{config}")


def test_many_batches_match_torch():
    rng = np.random.default_rng(7)
    o, t = make_pair()
    for k, x in enumerate(batches("many_batches", rng)):
        o(x)
        t(torch.from_numpy(x))
        assert_same_state(o, t, f"batch {k}")
    assert o.histogram.sum(dtype=np.float64) > 2**24
    assert np.any(o.histogram != np.floor(o.histogram))     # merged fractional counts
    assert_same_qparams(o, t)


@pytest.mark.parametrize("dtype,qscheme", [("qint32", "affine"), ("quint4x2", "affine"),
                                           ("qint8", "affine")])
def test_other_dtypes(dtype, qscheme):
    rng = np.random.default_rng(3)
    o, t = make_pair(dtype, qscheme)
    assert o.dst_nbins == t.dst_nbins
    assert (o.quant_min, o.quant_max) == (t.quant_min, t.quant_max)
    for x in batches("normal", rng)[:3]:
        o(x)
        t(torch.from_numpy(x))
    assert_same_state(o, t)
    assert_same_qparams(o, t)


@pytest.mark.parametrize("kw", [
    dict(qscheme="symmetric", reduce_range=True),
    dict(qscheme="symmetric", quant_min=0, quant_max=100),
    dict(dtype="qint8", quant_min=-100, quant_max=100, eps=1e-3),
    dict(dtype="qint8", reduce_range=True),
], ids=["quint8_sym_reduced", "quint8_sym_custom", "qint8_custom_eps", "qint8_reduced"])
def test_range_configs(kw):
    rng = np.random.default_rng(4)
    o, t = make_pair(**kw)
    for x in batches("shifting", rng)[:3]:
        o(x)
        t(torch.from_numpy(x))
    assert_same_state(o, t)
    assert_same_qparams(o, t)


def test_parallel_binning_matches_torch():
    # numq bins on 2 threads above the threshold; the counts must not depend on it
    rng = np.random.default_rng(11)
    x = rng.standard_normal(1 << 20).astype(F32)
    old = numq.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numq.set_num_threads(n)
            o, t = make_pair()
            o(x)
            o(x * F32(1.5))
            t(torch.from_numpy(x))
            t(torch.from_numpy(x * F32(1.5)))
            assert_same_state(o, t, f"{n} threads")
    finally:
        numq.set_num_threads(old)


# ----------------------------------------------------------- bad input

def test_inf_values_dropped_with_warning():
    x = np.array([1.0, np.inf, -2.0, -np.inf, 0.5], F32)
    o, t = make_pair()
    with warnings.catch_warnings(record=True) as wn:
        warnings.simplefilter("always")
        assert o(x) is x
    with warnings.catch_warnings(record=True) as wt:
        warnings.simplefilter("always")
        t(torch.from_numpy(x))
    # the same warnings (numq words them itself): one per inf batch, same category
    assert [w.category for w in wn] == [w.category for w in wt]
    assert all("inf detected" in str(w.message) for w in wn + wt)
    assert_same_state(o, t)
    # an array of infinities only changes nothing
    y = np.array([np.inf, -np.inf], F32)
    o(y)
    t(torch.from_numpy(y))
    assert_same_state(o, t)
    assert_same_qparams(o, t)


@pytest.mark.parametrize("first", [True, False])
def test_nan_raises(first):
    o, t = make_pair()
    if not first:
        x = np.array([1.0, 2.0], F32)
        o(x)
        t(torch.from_numpy(x))
    bad = np.array([1.0, np.nan, np.inf], F32)
    with pytest.raises(RuntimeError, match="not finite"):
        t(torch.from_numpy(bad))
    before = {k: v.copy() for k, v in o.state_dict().items()}
    with pytest.raises(ValueError, match="NaN"):
        o(bad)
    after = o.state_dict()
    for k in before:
        assert np.array_equal(before[k], after[k]), k
    if not first:
        # torch leaves its state untouched in this case: both go on alike
        x = np.array([-1.0, 3.0], F32)
        o(x)
        t(torch.from_numpy(x))
        assert_same_state(o, t)
        assert_same_qparams(o, t)


def test_empty_input_and_no_data():
    o, t = make_pair()
    e = np.zeros((0, 3), F32)
    assert o(e) is e
    t(torch.from_numpy(e))
    assert_same_state(o, t)
    with warnings.catch_warnings(record=True) as wn:
        warnings.simplefilter("always")
        s, z = o.calculate_qparams()
    with warnings.catch_warnings(record=True) as wt:
        warnings.simplefilter("always")
        ts, tz = t.calculate_qparams()
    # torch's message carries the indentation of a line continuation; numq's does not
    assert [" ".join(str(w.message).split()) for w in wn] == \
        [" ".join(str(w.message).split()) for w in wt]
    assert s.dtype == F32 and z.dtype == tz.numpy().dtype == np.int64
    assert s.tolist() == ts.tolist() and z.tolist() == tz.tolist()


def test_unsupported_configs():
    for kw, tkw in ((dict(qscheme=numq.per_channel_affine),
                     dict(qscheme=torch.per_channel_affine)),
                    (dict(is_dynamic=True), dict(is_dynamic=True))):
        with pytest.raises(NotImplementedError):     # torch refuses the config ...
            tobs.HistogramObserver(**tkw)
        with pytest.raises(nq.UnsupportedObserverConfig):   # ... numq with a ValueError
            nq.HistogramObserver(**kw)


# ------------------------------------------------------------ state dict

def test_state_dict_round_trip():
    rng = np.random.default_rng(5)
    o, t = make_pair()
    for x in batches("normal", rng)[:3]:
        o(x)
        t(torch.from_numpy(x))
    sd_n = o.state_dict()
    sd_t = t.state_dict()
    assert list(sd_n) == list(sd_t)
    for k in sd_t:
        assert sd_n[k].shape == tuple(sd_t[k].shape), k
        assert np.array_equal(sd_n[k], sd_t[k].numpy()), k
    # torch's state into a fresh numq observer, numq's into a fresh torch observer
    o2, t2 = make_pair()
    o2.load_state_dict({k: v.numpy().copy() for k, v in sd_t.items()})
    t2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd_n.items()})
    assert_same_state(o2, t2)
    assert_same_qparams(o2, t2)
    x = rng.standard_normal(5000).astype(F32) * 4
    o2(x)
    t2(torch.from_numpy(x))
    assert_same_state(o2, t2)
    assert_same_qparams(o2, t2)


def test_state_dict_wrong_histogram_shape():
    o, t = make_pair()
    sd = {k: v.numpy().copy() for k, v in t.state_dict().items()}
    sd["histogram"] = np.zeros(100, F32)
    with pytest.raises(RuntimeError, match="size mismatch"):
        t.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    with pytest.raises(ValueError, match="size mismatch"):
        o.load_state_dict(sd)


def test_state_dict_before_version_3():
    # empty min/max (observer version < 3) mean "nothing observed"
    o = nq.HistogramObserver()
    sd = {"eps": o.eps.copy(), "histogram": np.zeros(2048, F32),
          "min_val": np.zeros(0, F32), "max_val": np.zeros(0, F32)}
    o.load_state_dict(sd)
    assert o.min_val == np.inf and o.max_val == -np.inf


# ---------------------------------------------------------- the pieces

def test_default_histogram_observer():
    o = nq.default_histogram_observer()
    t = tobs.default_histogram_observer()
    assert isinstance(o, nq.HistogramObserver)
    assert (o.quant_min, o.quant_max) == (t.quant_min, t.quant_max) == (0, 127)
    assert o.has_customized_qrange == t.has_customized_qrange
    assert o.bins == t.bins and o.upsample_rate == t.upsample_rate


def test_search_pieces_match_torch():
    rng = np.random.default_rng(9)
    o, t = make_pair()
    for x in batches("heavy_tailed", rng):
        o(x)
        t(torch.from_numpy(x))
    for s, e in ((0, 2047), (10, 2000), (500, 600), (1000, 1001), (3, 3), (0, 0)):
        assert o._compute_quantization_error(s, e) == t._compute_quantization_error(s, e)
    a = o._non_linear_param_search()
    b = t._non_linear_param_search()
    assert a[0] == b[0].item() and a[1] == b[1].item()
    db = rng.standard_normal(50).astype(F32)
    de = rng.standard_normal(50).astype(F32)
    dens = rng.uniform(0, 10, 50).astype(F32)
    assert np.array_equal(o._get_norm(db, de, dens),
                          t._get_norm(*map(torch.from_numpy, (db, de, dens))).numpy())


@pytest.mark.parametrize("seed", range(6))
def test_upscale_matches_torch(seed):
    rng = np.random.default_rng(seed)
    bins = (2048, 256, 100)[seed % 3]
    t = tobs.HistogramObserver(bins=bins)
    hist = (rng.integers(0, 50, bins) * rng.uniform(0.3, 2.0)).astype(F32)
    omin, omax = sorted(rng.standard_normal(2).astype(F32) * F32(rng.uniform(0.01, 100)))
    nmin = F32(omin - abs(rng.standard_normal()) * (seed % 2))
    nmax = F32(omax + abs(rng.standard_normal()) * 3)
    out = np.zeros(bins, F32)
    upscale_histogram_f32(hist, F32(omin), F32(omax), nmin, nmax, 16, out)
    ref = t._upscale_histogram(torch.from_numpy(hist), torch.tensor(omin), torch.tensor(omax),
                               torch.tensor(nmin), torch.tensor(nmax))
    assert np.array_equal(out, ref.numpy())
    o = nq.HistogramObserver(bins=bins)
    upd = rng.integers(0, 5, bins).astype(F32)
    for args in ((omin, omax, nmin, nmax), (F32(0.5), F32(0.5), nmin, nmax)):
        got = o._combine_histograms(hist, *args[:2], upd, *args[2:])
        want = t._combine_histograms(torch.from_numpy(hist), *map(torch.tensor, args[:2]),
                                     torch.from_numpy(upd), *map(torch.tensor, args[2:]))
        assert np.array_equal(got, want.numpy())


@pytest.mark.parametrize("n", [1, 5, 7, 8, 9, 100, 2048, 2049, 5000, 40000])
def test_sum_matches_torch(n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 6, n)).astype(F32)
    assert sum_f32(a) == torch.sum(torch.from_numpy(a)).item()


def test_quantization_error_kernel_scratch_independent():
    rng = np.random.default_rng(1)
    hist = rng.uniform(0, 100, 2048).astype(F32)
    s1 = np.full(2048, np.nan, F32)
    s2 = np.zeros(2048, F32)
    args = (hist, F32(-3), F32(4), 100, 1900, 256)
    assert quantization_error_f32(*args, s1) == quantization_error_f32(*args, s2)
