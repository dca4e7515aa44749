"""Min/max and qparams kernels against PyTorch 2.13: observers and dynamic quantization.

Exact equality throughout: scales as float32 (torch's observer buffers are float32; the
dynamic scale is the double ``q_scale()``), zero points as integers (float32 for
``per_channel_affine_float_qparams``).
"""
import math
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver  # noqa: E402

import numq.dtypes as D  # noqa: E402
from numq._qrange import qscheme_code, quant_range, symmetric_zero_point  # noqa: E402
from numq.kernels.qparams import (calculate_qparams, choose_qparams_dynamic,  # noqa: E402
                                  choose_qparams_dynamic_range)
from numq.kernels.reduce import minmax_f32, minmax_per_channel_f32  # noqa: E402

F32 = np.float32
EPS = float(torch.finfo(torch.float32).eps)
NAN, INF = math.nan, math.inf
TORCH_DTYPES = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32,
                "quint4x2": torch.quint4x2}
NUMQ_DTYPES = {"quint8": D.quint8, "qint8": D.qint8, "qint32": D.qint32, "quint4x2": D.quint4x2}
TORCH_QSCHEMES = {name: getattr(torch, name) for name in (
    "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
    "per_channel_symmetric", "per_channel_affine_float_qparams")}


@pytest.fixture(autouse=True)
def _x86_engine_quiet():
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"   # qnnpack would ignore reduce_range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old


def numq_qparams(mins, maxs, dtype, qscheme, reduce_range, quant_min, quant_max, eps=EPS):
    """What numq's observers will do: range rule, then the calculate_qparams kernel."""
    d = NUMQ_DTYPES[dtype]
    qmin, qmax = quant_range(d.qmin, d.qmax, reduce_range, quant_min, quant_max)
    custom = quant_min is not None and quant_max is not None
    sym_zp = symmetric_zero_point(d.qmin, d.qmax, qmin, qmax, custom)
    code = qscheme_code(qscheme)
    mins = np.ascontiguousarray(mins, F32).reshape(-1)
    maxs = np.ascontiguousarray(maxs, F32).reshape(-1)
    scale = np.empty(mins.size, F32)
    zp = np.empty(mins.size, F32 if qscheme == "per_channel_affine_float_qparams" else np.int32)
    calculate_qparams(mins, maxs, qmin, qmax, code, eps, scale, zp, sym_zp)
    return (qmin, qmax), scale, zp


def assert_qparams(torch_s, torch_z, scale, zp):
    ts = torch_s.detach().numpy().astype(F32).reshape(-1)
    tz = torch_z.detach().numpy().reshape(-1)
    assert np.array_equal(ts, scale, equal_nan=True), (ts, scale)
    if zp.dtype == np.float32:
        assert np.array_equal(tz.astype(F32), zp, equal_nan=True), (tz, zp)
    else:
        assert np.array_equal(tz.astype(np.int64), zp.astype(np.int64)), (tz, zp)


def seed_of(*parts):
    return zlib.crc32(repr(parts).encode())   # stable across runs (hash() is salted)


def data(kind, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if kind == "random":
        x = x * 10.0 ** rng.uniform(-3, 3)
    elif kind == "tiny":
        x = x * 1e-7
    elif kind == "zeros":
        x = np.zeros(shape)
    elif kind == "constant":
        x = np.full(shape, 0.37)
    elif kind == "positive":
        x = np.abs(x) + 0.5
    elif kind == "negative":
        x = -np.abs(x) * 3 - 0.25
    elif kind == "huge":
        x = x * 1e37
    return np.ascontiguousarray(x, dtype=F32)


KINDS = ["random", "tiny", "zeros", "constant", "positive", "negative", "huge"]

# (dtype, qscheme, reduce_range, quant_min, quant_max); quint8 + symmetric + reduce_range
# is refused by torch's observers (NotImplementedError), so it is not listed.
PER_TENSOR = [
    (dt, qs, rr, None, None)
    for dt in ("quint8", "qint8", "qint32", "quint4x2")
    for qs in ("per_tensor_affine", "per_tensor_symmetric")
    for rr in (False, True)
    if not (dt == "quint8" and qs == "per_tensor_symmetric" and rr)
] + [
    ("quint8", "per_tensor_affine", False, 0, 15), ("quint8", "per_tensor_affine", True, 0, 255),
    ("quint8", "per_tensor_symmetric", False, -3, 1),
    ("quint8", "per_tensor_symmetric", False, 0, 100),
    ("qint8", "per_tensor_affine", True, -7, 7), ("qint8", "per_tensor_symmetric", False, -8, 7),
    ("qint32", "per_tensor_affine", True, -1000, 1001),
    ("quint8", "per_tensor_affine", False, 0, 1000),
    ("qint32", "per_tensor_symmetric", False, -(2**31), 2**31 - 1),
]


@pytest.mark.parametrize("cfg", PER_TENSOR, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_minmax_observer(cfg, kind):
    dt, qs, rr, lo, hi = cfg
    obs = MinMaxObserver(dtype=TORCH_DTYPES[dt], qscheme=TORCH_QSCHEMES[qs], reduce_range=rr,
                         quant_min=lo, quant_max=hi)
    x = data(kind, (3, 50), seed_of(cfg, kind))
    obs(torch.from_numpy(x))
    ts, tz = obs.calculate_qparams()
    mn, mx = minmax_f32(x)
    assert mn == obs.min_val.item() and mx == obs.max_val.item()
    (qmin, qmax), scale, zp = numq_qparams([mn], [mx], dt, qs, rr, lo, hi)
    assert (qmin, qmax) == (obs.quant_min, obs.quant_max)
    assert_qparams(ts, tz, scale, zp)


SPECIAL_PAIRS = [(INF, -INF), (0.0, 0.0), (-1.0, 2.0), (1.0, 2.0), (-2.0, -1.0), (NAN, 1.0),
                 (1.0, NAN), (NAN, NAN), (-INF, 1.0), (-1.0, INF), (-INF, INF), (-1e-30, 1e-30),
                 (-3e38, 3e38), (-1e10, 3e9), (-5e-5, 1e-6), (2.5, 2.5), (-0.0, 0.0)]


@pytest.mark.parametrize("cfg", PER_TENSOR, ids=str)
@pytest.mark.parametrize("eps", [EPS, 1e-50, 0.5])
def test_minmax_observer_special_ranges(cfg, eps):
    dt, qs, rr, lo, hi = cfg
    obs = MinMaxObserver(dtype=TORCH_DTYPES[dt], qscheme=TORCH_QSCHEMES[qs], reduce_range=rr,
                         quant_min=lo, quant_max=hi, eps=eps)
    for mn, mx in SPECIAL_PAIRS:
        ts, tz = obs._calculate_qparams(torch.tensor(mn), torch.tensor(mx))
        _, scale, zp = numq_qparams([mn], [mx], dt, qs, rr, lo, hi, eps)
        assert_qparams(ts, tz, scale, zp)


@pytest.mark.parametrize("cfg", PER_TENSOR[:8], ids=str)
def test_minmax_observer_random_pairs(cfg):
    dt, qs, rr, lo, hi = cfg
    obs = MinMaxObserver(dtype=TORCH_DTYPES[dt], qscheme=TORCH_QSCHEMES[qs], reduce_range=rr)
    rng = np.random.default_rng(11)
    for _ in range(300):
        a, b = sorted(rng.standard_normal(2) * 10.0 ** rng.uniform(-12, 12))
        a, b = float(F32(a)), float(F32(b))
        ts, tz = obs._calculate_qparams(torch.tensor(a), torch.tensor(b))
        _, scale, zp = numq_qparams([a], [b], dt, qs, rr, lo, hi)
        assert_qparams(ts, tz, scale, zp)


PER_CHANNEL = [
    (dt, qs, rr, None, None)
    for dt in ("quint8", "qint8", "qint32")
    for qs in ("per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams")
    for rr in (False, True)
    if not (dt == "quint8" and qs == "per_channel_symmetric" and rr)
] + [
    ("quint8", "per_channel_affine", True, 0, 255),
    ("qint8", "per_channel_symmetric", False, -8, 7),
    ("quint8", "per_channel_symmetric", False, -3, 1), ("qint8", "per_channel_affine", True, -7, 7),
    ("quint8", "per_channel_affine_float_qparams", False, 0, 15),
    ("qint32", "per_channel_affine", True, -1000, 1001),
]


@pytest.mark.parametrize("cfg", PER_CHANNEL, ids=str)
@pytest.mark.parametrize("kind", ["random", "tiny", "zeros", "positive", "negative", "mixed"])
@pytest.mark.parametrize("shape,ch_axis", [((6, 8, 5), 1), ((12, 70), 0), ((40, 9), 1)])
def test_per_channel_observer(cfg, kind, shape, ch_axis):
    dt, qs, rr, lo, hi = cfg
    obs = PerChannelMinMaxObserver(ch_axis=ch_axis, dtype=TORCH_DTYPES[dt],
                                   qscheme=TORCH_QSCHEMES[qs], reduce_range=rr,
                                   quant_min=lo, quant_max=hi)
    seed = seed_of(cfg, kind, shape)
    if kind == "mixed":   # channels of every kind side by side
        x = np.concatenate([data(k, shape, seed + i) for i, k in enumerate(KINDS)], axis=ch_axis)
    else:
        x = data(kind, shape, seed)
    obs(torch.from_numpy(x))
    ts, tz = obs.calculate_qparams()
    outer = int(np.prod(x.shape[:ch_axis]))
    C = x.shape[ch_axis]
    mn = np.empty(C, F32)
    mx = np.empty(C, F32)
    minmax_per_channel_f32(x.reshape(outer, C, -1), mn, mx)
    assert np.array_equal(mn, obs.min_val.numpy()) and np.array_equal(mx, obs.max_val.numpy())
    _, scale, zp = numq_qparams(mn, mx, dt, qs, rr, lo, hi)
    assert_qparams(ts, tz, scale, zp)


@pytest.mark.parametrize("cfg", PER_CHANNEL, ids=str)
def test_per_channel_special_ranges(cfg):
    dt, qs, rr, lo, hi = cfg
    obs = PerChannelMinMaxObserver(dtype=TORCH_DTYPES[dt], qscheme=TORCH_QSCHEMES[qs],
                                   reduce_range=rr, quant_min=lo, quant_max=hi)
    pairs = [p for p in SPECIAL_PAIRS if p != (INF, -INF)]
    mins = torch.tensor([p[0] for p in pairs])
    maxs = torch.tensor([p[1] for p in pairs])
    ts, tz = obs._calculate_qparams(mins, maxs)
    _, scale, zp = numq_qparams(mins.numpy(), maxs.numpy(), dt, qs, rr, lo, hi)
    assert_qparams(ts, tz, scale, zp)


def test_per_channel_unobserved_channel_is_torch_error():
    # torch only special-cases "no data" per tensor; per channel an (inf, -inf) pair fails
    # its min <= max check. numq's kernel returns (1.0, 0) there; observers must raise.
    obs = PerChannelMinMaxObserver()
    with pytest.raises(AssertionError):
        obs._calculate_qparams(torch.tensor([INF, 0.0]), torch.tensor([-INF, 1.0]))


# ---------------------------------------------------------------- raw reductions

@pytest.mark.parametrize("n", [1, 100, 70_000, 1_000_003])
@pytest.mark.parametrize("special", [None, NAN, INF, -INF])
def test_minmax_matches_aminmax(n, special):
    x = data("random", n, n)
    if special is not None:
        x[n // 3] = special
    tmn, tmx = torch.aminmax(torch.from_numpy(x))
    mn, mx = minmax_f32(x)
    assert np.array_equal([mn, mx], [tmn.item(), tmx.item()], equal_nan=True)
    assert np.array_equal([mn, mx], [torch.min(torch.from_numpy(x)).item(),
                                     torch.max(torch.from_numpy(x)).item()], equal_nan=True)


@pytest.mark.parametrize("shape", [(5, 7, 3), (300, 4, 1), (2, 3, 40000), (100, 40, 30)])
def test_per_channel_matches_aminmax_dim(shape):
    x = data("random", shape, 3)
    x[0, 1, 0] = NAN
    x[-1, 2, -1] = -INF
    y = torch.from_numpy(x).transpose(0, 1).flatten(1)
    tmn, tmx = torch.aminmax(y, dim=1)
    mn = np.empty(shape[1], F32)
    mx = np.empty(shape[1], F32)
    minmax_per_channel_f32(x, mn, mx)
    assert np.array_equal(mn, tmn.numpy(), equal_nan=True)
    assert np.array_equal(mx, tmx.numpy(), equal_nan=True)


def test_empty_input_is_an_error_in_torch_too():
    with pytest.raises(RuntimeError):
        torch.tensor([]).min()
    with pytest.raises(ValueError):
        minmax_f32(np.empty(0, F32))


# -------------------------------------------------------------------- dynamic

def numq_dynamic(x, dtype, reduce_range):
    """The call sequence numq.quantize_per_tensor_dynamic uses for its qparams."""
    mn, mx = minmax_f32(x)
    qmin, qmax = choose_qparams_dynamic_range(dtype, reduce_range)
    return choose_qparams_dynamic(mn, mx, qmin, qmax)


DYN_KINDS = KINDS + ["tiny_pos", "tiny_neg", "tiny_mixed", "single", "ties"]


def dyn_data(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "tiny_pos":
        return (np.abs(rng.standard_normal(64)) * 1e-6 + 1e-7).astype(F32)
    if kind == "tiny_neg":
        return (-np.abs(rng.standard_normal(64)) * 1e-6).astype(F32)
    if kind == "tiny_mixed":
        return (rng.standard_normal(64) * 10.0 ** rng.uniform(-9, -4)).astype(F32)
    if kind == "single":
        return np.array([rng.standard_normal() * 5], F32)
    if kind == "ties":    # zero points at exact .5 before rounding
        lo = -rng.integers(1, 100) - 0.5
        return np.array([lo, lo + 255.0], F32)
    return data(kind, 200, seed)


@pytest.mark.parametrize("dtype", ["quint8", "qint8"])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("kind", DYN_KINDS)
@pytest.mark.parametrize("seed", range(6))
def test_quantize_per_tensor_dynamic_qparams(dtype, reduce_range, kind, seed):
    x = dyn_data(kind, seed * 101 + len(kind))
    q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), TORCH_DTYPES[dtype], reduce_range)
    scale, zp = numq_dynamic(x, dtype, reduce_range)
    assert scale == q.q_scale() and zp == q.q_zero_point(), (x.min(), x.max())


@pytest.mark.parametrize("dtype", ["quint8", "qint8"])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_quantize_per_tensor_dynamic_many_ranges(dtype, reduce_range):
    rng = np.random.default_rng(7)
    for _ in range(400):
        e = rng.uniform(-10, 10)
        offset = rng.standard_normal() * 10.0 ** rng.uniform(-10, e)
        x = (rng.standard_normal(8) * 10.0 ** e + offset).astype(F32)
        q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), TORCH_DTYPES[dtype],
                                              reduce_range)
        assert numq_dynamic(x, dtype, reduce_range) == (q.q_scale(), q.q_zero_point()), x


@pytest.mark.parametrize("dtype", ["quint8", "qint8"])
def test_quantize_per_tensor_dynamic_infinities(dtype):
    # -inf min: scale inf, a valid zero point; +inf max: torch's zero point is INT32_MIN,
    # which its quantize then rejects (numq returns the same pair; validation rejects it)
    x = np.array([-INF, 1.0], F32)
    q = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), TORCH_DTYPES[dtype], False)
    assert numq_dynamic(x, dtype, False) == (q.q_scale(), q.q_zero_point())
    with pytest.raises(RuntimeError, match="zero_point -2147483648"):
        torch.quantize_per_tensor_dynamic(torch.tensor([1.0, INF]), TORCH_DTYPES[dtype], False)
    assert numq_dynamic(np.array([1.0, INF], F32), dtype, False) == (INF, -(2**31))


def test_quantize_per_tensor_dynamic_nan_is_an_error():
    x = np.array([1.0, NAN], F32)
    with pytest.raises(RuntimeError, match="min should be less than or equal to max"):
        torch.quantize_per_tensor_dynamic(torch.from_numpy(x), torch.quint8, False)
    with pytest.raises(ValueError, match="xmin must be <= xmax"):
        numq_dynamic(x, "quint8", False)
