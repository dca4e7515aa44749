"""numq.quantization.fake_quantize against torch.ao.quantization.fake_quantize (torch 2.13).

Every default fake-quant factory and the fused / learnable / fixed-qparams modules run
the same batches in numq and torch (training mode): outputs, input gradients (the
straight-through masks), the ``scale`` / ``zero_point`` buffers and the observers' running
statistics must be identical, and state dicts must have the same keys, dtypes, shapes and
values after every batch. Learnable scale / zero-point gradients are sums (float32 in
torch, float64 in numq): equal within float32 summation error. Also: state-dict round
trips in both directions, the enable / disable toggles through ``model.apply``, the fused
op's qparams rule on edge ranges, NaN / inf data, and the errors torch raises.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.quantization.fake_quantize as TF  # noqa: E402
import torch.ao.quantization.observer as TO  # noqa: E402
from torch.ao.quantization._learnable_fake_quantize import (  # noqa: E402
    _LearnableFakeQuantize as TLearnable)

import numq  # noqa: E402
import numq.layers as L  # noqa: E402
import numq.quantization.fake_quantize as NF  # noqa: E402
import numq.quantization.observer as NO  # noqa: E402

F32 = np.float32


@pytest.fixture(autouse=True)
def _torch_setup():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.backends.quantized.engine = old
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------- helpers

def T(a):
    return torch.from_numpy(np.array(a, copy=True))


def as_np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def assert_same(actual, expected, what="", any_nan=False):
    """Same dtype, shape and bytes (signed zeros count; NaN payloads too unless
    ``any_nan``: torch's ``aminmax`` returns the NaN 0xffffffff, numq's min/max kernel the
    canonical 0x7fc00000, and the fused op carries it into scale and outputs)."""
    e = as_np(expected)
    a = np.asarray(actual)
    assert a.dtype == e.dtype and a.shape == e.shape, (what, a.dtype, e.dtype, a.shape, e.shape)
    if a.size == 0:
        return
    if any_nan and a.dtype.kind == "f":
        assert np.array_equal(np.isnan(a), np.isnan(e)), (what, "NaN positions differ")
        a = np.where(np.isnan(a), 0, a).astype(a.dtype)
        e = np.where(np.isnan(e), 0, e).astype(e.dtype)
    a8 = np.ascontiguousarray(a).view(np.uint8).reshape(a.shape + (-1,))
    e8 = np.ascontiguousarray(e).view(np.uint8).reshape(e.shape + (-1,))
    bad = ~(a8 == e8).all(-1)
    assert not bad.any(), f"{what}: {bad.sum()} differ: {a[bad][:5]} vs {e[bad][:5]}"


def assert_state_same(nmod, tmod, any_nan=False):
    ns, ts = nmod.state_dict(), tmod.state_dict()
    assert list(ns) == list(ts)
    for k in ts:
        assert_same(ns[k], ts[k], k, any_nan)


def batches(shape, n=4, seed=0, drift=True):
    """Realistic activations / weights: normal data whose location and spread move from
    batch to batch (so the moving averages matter), plus exact zeros."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mu = rng.normal(0, 0.5) if drift else 0.0
        sigma = rng.uniform(0.2, 3.0) if drift else 1.0
        x = rng.normal(mu, sigma, shape).astype(F32)
        x.reshape(-1)[:3] = 0.0
        out.append(x)
    return out


def run_pair(nmod, tmod, xs, seed=1, check_state=True, any_nan=False):
    """Forward + backward in both, batch by batch; compare everything."""
    rng = np.random.default_rng(seed)
    for x in xs:
        g = rng.normal(size=x.shape).astype(x.dtype)
        tx = T(x).requires_grad_(True)
        ty = tmod(tx)
        ty.backward(T(g))
        ny = nmod(x)
        ndx = nmod.backward(g)
        assert_same(ny, ty, "forward", any_nan)
        assert_same(ndx, tx.grad, "grad", any_nan)
        if check_state:
            assert_state_same(nmod, tmod, any_nan)


def pair(name, **kw):
    return getattr(NF, name)(**kw), getattr(TF, name)(**kw)


# ------------------------------------------------------------ default factories

PER_TENSOR_DEFAULTS = ["default_fake_quant", "default_weight_fake_quant",
                       "default_dynamic_fake_quant", "default_fused_act_fake_quant",
                       "default_fused_wt_fake_quant", "fused_wt_fake_quant_range_neg_127_to_127"]
PER_CHANNEL_DEFAULTS = ["default_per_channel_weight_fake_quant",
                        "default_fused_per_channel_wt_fake_quant",
                        "fused_per_channel_wt_fake_quant_range_neg_127_to_127",
                        "default_embedding_fake_quant", "default_embedding_fake_quant_4bit"]


@pytest.mark.parametrize("name", PER_TENSOR_DEFAULTS)
@pytest.mark.parametrize("shape", [(16, 40), (2, 3, 9, 9)])
def test_per_tensor_defaults(name, shape):
    n, t = pair(name)
    run_pair(n, t, batches(shape, n=5, seed=len(name)))


@pytest.mark.parametrize("name", PER_CHANNEL_DEFAULTS)
@pytest.mark.parametrize("shape", [(12, 20), (6, 3, 3, 3)])
def test_per_channel_defaults(name, shape):
    n, t = pair(name)
    run_pair(n, t, batches(shape, n=4, seed=len(name), drift=False)
             + batches(shape, n=2, seed=7))


@pytest.mark.parametrize("name, lo, hi", [
    ("default_fixed_qparams_range_0to1_fake_quant", 0.0, 1.0),
    ("default_fixed_qparams_range_neg1to1_fake_quant", -1.0, 1.0),
    ("default_symmetric_fixed_qparams_fake_quant", -1.0, 1.0),
    ("default_affine_fixed_qparams_fake_quant", 0.0, 1.0)])
def test_fixed_qparams_defaults(name, lo, hi):
    n, t = pair(name)
    rng = np.random.default_rng(3)
    xs = [rng.uniform(lo - 0.1, hi + 0.1, (8, 33)).astype(F32) for _ in range(3)]
    # exact grid points and ties of the fixed grid
    s = float(as_np(t.scale)[0])
    xs.append((np.arange(-20, 280) * s / 2 + lo).astype(F32).reshape(4, 75))
    run_pair(n, t, xs)
    assert n.scale is n.activation_post_process.scale   # shared buffers, as torch


def test_histogram_fake_quant():
    """HistogramObserver qparams match torch's to 1e-6 relative (zero point exactly):
    compare buffers with that tolerance and the outputs through those qparams."""
    n, t = pair("default_histogram_fake_quant")
    for x in batches((32, 64), n=3, seed=11):
        ty = t(T(x))
        ny = n(x)
        np.testing.assert_array_equal(n.zero_point, as_np(t.zero_point))
        np.testing.assert_allclose(n.scale, as_np(t.scale), rtol=1e-6)
        # numq's output is exact for numq's scale
        ref = torch.fake_quantize_per_tensor_affine(T(x), float(n.scale[0]),
                                                    int(n.zero_point[0]), n.quant_min,
                                                    n.quant_max)
        assert_same(ny, ref)
        np.testing.assert_allclose(ny, as_np(ty), rtol=0, atol=2 * float(n.scale[0]))


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_default_qat_qconfig_modules(backend, version):
    from torch.ao.quantization.qconfig import get_default_qat_qconfig as tq
    from numq.quantization.qconfig import get_default_qat_qconfig as nq
    nqc, tqc = nq(backend, version), tq(backend, version)
    run_pair(nqc.activation(), tqc.activation(), batches((8, 50), n=4, seed=2))
    run_pair(nqc.weight(), tqc.weight(), batches((6, 4, 3, 3), n=3, seed=5, drift=False))


# ----------------------------------------------------------- custom configurations

CUSTOM = [
    dict(observer="MovingAverageMinMaxObserver", dtype="quint8",
         qscheme="per_tensor_symmetric"),
    dict(observer="MovingAverageMinMaxObserver", dtype="qint8",
         qscheme="per_tensor_affine", quant_min=-128, quant_max=127),
    dict(observer="MovingAverageMinMaxObserver", dtype="qint8", qscheme="per_tensor_affine",
         quant_min=-8, quant_max=7, averaging_constant=0.3),
    dict(observer="MovingAverageMinMaxObserver", dtype="quint8",
         qscheme="per_tensor_affine", quant_min=0, quant_max=15, eps=1e-3),
    dict(observer="MinMaxObserver", dtype="qint8", qscheme="per_tensor_symmetric",
         reduce_range=True),
    dict(observer="MovingAveragePerChannelMinMaxObserver", dtype="qint8",
         qscheme="per_channel_affine", quant_min=-128, quant_max=127, ch_axis=1),
    dict(observer="PerChannelMinMaxObserver", dtype="quint8",
         qscheme="per_channel_affine", ch_axis=2),
]


def _kwargs(kw, mod):
    out = dict(kw)
    out["observer"] = getattr(mod, kw["observer"])
    if "dtype" in kw:
        out["dtype"] = getattr(numq if mod is NO else torch, kw["dtype"])
    if "qscheme" in kw:
        out["qscheme"] = getattr(numq if mod is NO else torch, kw["qscheme"])
    return out


@pytest.mark.parametrize("kw", CUSTOM, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_fake_quantize_custom(kw):
    n = NF.FakeQuantize(**_kwargs(kw, NO))
    t = TF.FakeQuantize(**_kwargs(kw, TO))
    run_pair(n, t, batches((5, 7, 6), n=4, seed=4))


FUSED = [
    dict(observer="MovingAverageMinMaxObserver", dtype="quint8", qscheme="per_tensor_symmetric"),
    dict(observer="MovingAverageMinMaxObserver", dtype="quint8", quant_min=0, quant_max=127),
    dict(observer="MovingAverageMinMaxObserver", dtype="quint8", reduce_range=True),
    dict(observer="MovingAverageMinMaxObserver", dtype="qint8", quant_min=-128, quant_max=127,
         qscheme="per_tensor_symmetric", averaging_constant=0.5),
    dict(observer="MovingAverageMinMaxObserver", dtype="qint8", quant_min=-8, quant_max=7,
         qscheme="per_tensor_affine"),
    dict(observer="MovingAveragePerChannelMinMaxObserver", dtype="qint8", quant_min=-128,
         quant_max=127, qscheme="per_channel_affine", averaging_constant=0.2),
    dict(observer="MovingAveragePerChannelMinMaxObserver", dtype="quint8",
         qscheme="per_channel_symmetric"),
]


@pytest.mark.parametrize("kw", FUSED, ids=lambda kw: "-".join(str(v) for v in kw.values()))
@pytest.mark.parametrize("shape", [(9, 31), (4, 2, 5)])
def test_fused_custom(kw, shape):
    n = NF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, NO))
    t = TF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, TO))
    run_pair(n, t, batches(shape, n=5, seed=9))


@pytest.mark.parametrize("dtype, qmin, qmax, sym", [
    ("quint8", 0, 255, False), ("quint8", 0, 255, True), ("quint8", 0, 127, False),
    ("qint8", -128, 127, True), ("qint8", -127, 127, True), ("qint8", -128, 127, False)])
@pytest.mark.parametrize("data", ["zeros", "const_pos", "const_neg", "tiny", "huge",
                                  "positive", "negative", "wide"])
def test_fused_qparams_edge_ranges(dtype, qmin, qmax, sym, data):
    """fbgemm's rule on degenerate ranges: zero span (scale 0.1), tiny spans (the 6.1e-5
    cut and the min/max rescale), one-sided and huge ranges."""
    x = {"zeros": np.zeros((4, 4)), "const_pos": np.full((4, 4), 0.37),
         "const_neg": np.full((4, 4), -2.5), "tiny": np.linspace(-1e-6, 3e-6, 16),
         "huge": np.linspace(-3e37, 1e38, 16), "positive": np.linspace(1e-3, 7.0, 16),
         "negative": np.linspace(-9.0, -1e-4, 16),
         "wide": np.linspace(-1e-3, 5e4, 16)}[data].astype(F32).reshape(4, 4)
    qs = "per_tensor_symmetric" if sym else "per_tensor_affine"
    kw = dict(observer="MovingAverageMinMaxObserver", dtype=dtype, quant_min=qmin,
              quant_max=qmax, qscheme=qs, averaging_constant=0.5)
    n = NF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, NO))
    t = TF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, TO))
    run_pair(n, t, [x, x * F32(0.5), x + F32(1e-5)])


def test_fused_qparams_many_ranges():
    """The vectorised fbgemm rule against torch's op on thousands of (min, max) pairs,
    through the per-channel fused module (one channel per pair)."""
    rng = np.random.default_rng(12)
    C = 3000
    # +0.0 where a side is absent (the min/max of -0.0 and +0.0 may be either zero)
    lo = np.where(rng.random(C) < 0.8, -np.exp(rng.uniform(-20, 10, C)), 0.0)
    hi = np.where(rng.random(C) < 0.8, np.exp(rng.uniform(-20, 10, C)), 0.0)
    x = np.stack([lo, hi, (lo + hi) / 2], axis=1).astype(F32)
    for qs, dt, qmin, qmax in [("per_channel_affine", "quint8", 0, 255),
                               ("per_channel_symmetric", "qint8", -128, 127),
                               ("per_channel_symmetric", "quint8", 0, 255),
                               ("per_channel_affine", "qint8", -64, 63)]:
        kw = dict(observer="MovingAveragePerChannelMinMaxObserver", dtype=dt, quant_min=qmin,
                  quant_max=qmax, qscheme=qs)
        n = NF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, NO))
        t = TF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, TO))
        run_pair(n, t, [x])


def test_fused_observer_disabled_before_any_data():
    """Running min/max still (+inf, -inf): fbgemm gives scale 0.1, zero point 0."""
    n, t = pair("default_fused_act_fake_quant")
    n.disable_observer()
    t.disable_observer()
    run_pair(n, t, batches((3, 8), n=2))


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["default_fused_act_fake_quant", "default_fused_wt_fake_quant",
                                  "default_fake_quant", "default_weight_fake_quant"])
def test_non_finite_data_per_tensor(name, special):
    n, t = pair(name)
    x = batches((4, 6), n=3)
    x[1] = x[1].copy()
    x[1][2, 3] = special
    run_pair(n, t, x, any_nan=True)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["default_per_channel_weight_fake_quant",
                                  "default_embedding_fake_quant",
                                  "default_embedding_fake_quant_4bit",
                                  "default_fused_per_channel_wt_fake_quant"])
def test_non_finite_data_per_channel(name, special):
    n, t = pair(name)
    xs = batches((4, 6), n=3)
    xs[1] = xs[1].copy()
    xs[1][2, 3] = special
    if name.startswith("default_fused") and np.isnan(special):
        # the NaN channel's zero point is -2**31: torch's per-channel op rejects it
        run_pair(n, t, xs[:1])
        with pytest.raises(RuntimeError, match="zero_point"):
            t(T(xs[1]))
        with pytest.raises(ValueError, match="zero_point"):
            n(xs[1])
        assert_state_same(n, t, any_nan=True)
        return
    run_pair(n, t, xs, any_nan=True)


def test_empty_input():
    for name in ["default_fused_act_fake_quant", "default_fake_quant"]:
        n, t = pair(name)
        run_pair(n, t, batches((3, 8), n=1) + [np.zeros((0, 8), F32)] + batches((3, 8), n=1))


def test_float16_and_float64_inputs():
    n, t = pair("default_fake_quant")
    run_pair(n, t, [b.astype(np.float64) for b in batches((5, 9), n=2)]
             + [b.astype(np.float16) for b in batches((5, 9), n=2, seed=3)])


# ----------------------------------------------------------------- learnable (LSQ)

LEARNABLE = [
    dict(observer="MovingAverageMinMaxObserver", quant_min=0, quant_max=255, dtype="quint8",
         qscheme="per_tensor_affine"),
    dict(observer="MovingAverageMinMaxObserver", quant_min=-128, quant_max=127,
         dtype="qint8", qscheme="per_tensor_symmetric"),
    dict(observer="MovingAveragePerChannelMinMaxObserver", quant_min=-128, quant_max=127,
         dtype="qint8", qscheme="per_channel_symmetric", channel_len=6, ch_axis=0),
    dict(observer="MovingAveragePerChannelMinMaxObserver", quant_min=0, quant_max=15,
         dtype="quint8", qscheme="per_channel_affine", channel_len=6, ch_axis=0),
]


def _sum_tol(g, x, scale, zp, per_channel, qmin, qmax, gf):
    """float32 summation error bound for dScale / dZeroPoint: 8 ulps of the sum of
    |terms| (per channel), the terms from numq's per-element backward (each element its
    own channel; checked exact against torch in tests/conformance/test_fake_quantize_*)."""
    import numq.fake_quantize as F
    if per_channel:
        C = x.shape[0]
        per = x.size // C
        s = np.repeat(scale, per)
        z = np.repeat(np.clip(np.rint(zp), qmin, qmax), per)
    else:
        s = np.repeat(scale, x.size)
        z = np.repeat(np.trunc(np.clip(zp + F32(0.5), qmin, qmax)), x.size)
    _, ts, tz = F._fake_quantize_learnable_per_channel_affine_backward(
        g.reshape(-1, 1), x.reshape(-1, 1), s, z, 0, qmin, qmax, gf)
    shape = (x.shape[0], -1) if per_channel else (1, -1)
    bound = lambda t: 8 * np.finfo(F32).eps * np.abs(t).reshape(shape).sum(1) + 1e-30
    return bound(ts), bound(tz)


@pytest.mark.parametrize("kw", LEARNABLE, ids=lambda kw: f"{kw['qscheme']}-{kw['quant_max']}")
@pytest.mark.parametrize("grad_scaling", [False, True])
def test_learnable(kw, grad_scaling):
    n = NF._LearnableFakeQuantize(**_kwargs(kw, NO), use_grad_scaling=grad_scaling)
    t = TLearnable(**_kwargs(kw, TO), use_grad_scaling=grad_scaling)
    xs = batches((6, 5, 4), n=6, seed=13)
    rng = np.random.default_rng(14)
    for i, x in enumerate(xs):
        if i == 2:
            n.enable_param_learning()
            t.enable_param_learning()
        if i == 4:   # an optimizer step on the learnable qparams, the same in both
            for p, q in ((n.scale, t.scale), (n.zero_point, t.zero_point)):
                new = (p.data - F32(0.01) * np.sign(p.grad)).astype(F32)
                p.data[...] = new
                with torch.no_grad():
                    q.copy_(T(new))
        g = rng.normal(size=x.shape).astype(F32)
        n.zero_grad()          # compare one step's sums (accumulation is tested in tests/)
        t.zero_grad()
        tx = T(x).requires_grad_(True)
        ty = t(tx)
        ty.backward(T(g))
        ny = n(x)
        saved_s, saved_z = n._saved[1], n._saved[2]
        ndx = n.backward(g)
        assert_same(ny, ty, f"forward {i}")
        assert_same(ndx, tx.grad, f"grad {i}")
        assert_same(n.scale.data, t.scale.detach(), "scale")
        assert_same(n.zero_point.data, t.zero_point.detach(), "zero_point")
        gf = 1.0 / (x.size * kw["quant_max"]) ** 0.5 if grad_scaling else 1.0
        tol_s, tol_z = _sum_tol(g, x, saved_s, saved_z, "channel" in kw["qscheme"],
                                kw["quant_min"], kw["quant_max"], gf)
        assert np.all(np.abs(n.scale.grad - as_np(t.scale.grad)) <= tol_s)
        assert np.all(np.abs(n.zero_point.grad - as_np(t.zero_point.grad)) <= tol_z)
        ns, ts = n.state_dict(), t.state_dict()
        assert list(ns) == list(ts)
        for k in ts:
            assert_same(ns[k], ts[k], k)
    sc, zp = n.calculate_qparams()
    tsc, tzp = t.calculate_qparams()
    assert_same(sc, tsc)
    assert_same(zp, tzp)


def test_learnable_toggles_and_static_observation():
    kw = LEARNABLE[0]
    n = NF._LearnableFakeQuantize(**_kwargs(kw, NO))
    t = TLearnable(**_kwargs(kw, TO))
    for mod in (n, t):
        mod.enable_static_observation()
    run_pair(n, t, batches((4, 9), n=2), check_state=False)
    assert_same(n.scale.data, t.scale.detach())
    for mod in (n, t):
        mod.toggle_qparam_learning(False)
        mod.disable_observer()
        mod.enable_fake_quant()
    assert n.scale.requires_grad is False
    x = batches((4, 9), n=1, seed=8)[0]
    assert_same(n(x), t(T(x)))
    assert_same(n.static_enabled, t.static_enabled)
    assert_same(n.fake_quant_enabled, t.fake_quant_enabled)


# ------------------------------------------------------------- state dict round trip

@pytest.mark.parametrize("name", ["default_fake_quant", "default_per_channel_weight_fake_quant",
                                  "default_fused_act_fake_quant",
                                  "default_fused_per_channel_wt_fake_quant",
                                  "default_embedding_fake_quant",
                                  "default_fixed_qparams_range_0to1_fake_quant"])
def test_state_dict_round_trip(name):
    shape = (6, 10)
    n, t = pair(name)
    run_pair(n, t, batches(shape, n=3, seed=21))
    # torch -> fresh numq, numq -> fresh torch
    n2, t2 = pair(name)
    n2.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    t2.load_state_dict({k: T(v) for k, v in n.state_dict().items()})
    assert_state_same(n2, t)
    assert_state_same(n, t2)
    run_pair(n2, t2, batches(shape, n=2, seed=22))


def test_state_dict_learnable_round_trip():
    kw = LEARNABLE[2]
    n = NF._LearnableFakeQuantize(**_kwargs(kw, NO))
    t = TLearnable(**_kwargs(kw, TO))
    run_pair(n, t, batches((6, 8), n=2, seed=5), check_state=False)
    n2 = NF._LearnableFakeQuantize(**_kwargs(kw, NO))
    n2.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    ns, ts = n2.state_dict(), t.state_dict()
    for k in ts:
        assert_same(ns[k], ts[k], k)


# ------------------------------------------------------ toggles through model.apply

def test_toggles_with_model_apply():
    tseq = torch.nn.Sequential(TF.default_fake_quant(), TF.default_fused_act_fake_quant(),
                               TF.default_weight_fake_quant())
    nseq = L.Sequential(NF.default_fake_quant(), NF.default_fused_act_fake_quant(),
                        NF.default_weight_fake_quant())
    xs = batches((5, 12), n=8, seed=30)
    run_pair(nseq, tseq, xs[:2])
    steps = [("disable_observer", xs[2:4]), ("disable_fake_quant", xs[4:5]),
             ("enable_observer", xs[5:6]), ("enable_fake_quant", xs[6:8])]
    for fn, chunk in steps:
        nseq.apply(getattr(NF, fn))
        tseq.apply(getattr(TF, fn))
        run_pair(nseq, tseq, chunk)


def test_toggle_methods():
    n, t = pair("default_fake_quant")
    for mod in (n, t):
        mod.enable_fake_quant(False)
        mod.enable_observer(False)
    assert_state_same(n, t)
    for mod in (n, t):
        mod.enable_fake_quant()
        mod.enable_observer(True)
    assert_state_same(n, t)


# ---------------------------------------------------------------- module attributes

@pytest.mark.parametrize("name", PER_TENSOR_DEFAULTS + PER_CHANNEL_DEFAULTS
                         + ["default_fixed_qparams_range_0to1_fake_quant",
                            "default_histogram_fake_quant"])
def test_attributes(name):
    n, t = pair(name)
    for a in ("quant_min", "quant_max", "ch_axis", "is_dynamic", "is_per_channel"):
        assert getattr(n, a) == getattr(t, a), a
    assert n.dtype.name == str(t.dtype).removeprefix("torch.")
    assert n.qscheme.name == str(t.qscheme).removeprefix("torch.")
    assert type(n).__name__ == type(t).__name__
    assert type(n.activation_post_process).__name__ == type(t.activation_post_process).__name__
    if hasattr(t, "is_symmetric_quant"):
        assert n.is_symmetric_quant == t.is_symmetric_quant


# ------------------------------------------------------------------------- errors

def test_errors_as_torch():
    with pytest.raises(AssertionError):
        TF.FakeQuantize(quant_min=10, quant_max=5)
    with pytest.raises(ValueError, match="quant_min must be less than or equal"):
        NF.FakeQuantize(quant_min=10, quant_max=5)
    with pytest.raises(AssertionError):
        TF.FakeQuantize(quant_min=0, quant_max=300)
    with pytest.raises(ValueError, match="quant_max out of bound"):
        NF.FakeQuantize(quant_min=0, quant_max=300)
    with pytest.raises(AssertionError):
        TF.FakeQuantize(quant_min=-1, quant_max=200)
    with pytest.raises(ValueError, match="quant_min out of bound"):
        NF.FakeQuantize(quant_min=-1, quant_max=200)
    with pytest.raises(AssertionError):
        TF.FixedQParamsFakeQuantize(observer=TO.MovingAverageMinMaxObserver)
    with pytest.raises(ValueError, match="FixedQParamsObserver"):
        NF.FixedQParamsFakeQuantize(observer=NO.MovingAverageMinMaxObserver)
    with pytest.raises(AssertionError):
        TF.FusedMovingAvgObsFakeQuantize(observer=TO.MinMaxObserver)
    with pytest.raises(ValueError, match="MovingAverageMinMaxObserver"):
        NF.FusedMovingAvgObsFakeQuantize(observer=NO.MinMaxObserver)
    with pytest.raises(AssertionError):
        TLearnable(TO.MovingAverageMinMaxObserver, quant_min=5, quant_max=5)
    with pytest.raises(ValueError, match="strictly less"):
        NF._LearnableFakeQuantize(NO.MovingAverageMinMaxObserver, quant_min=5, quant_max=5)


def test_fused_runtime_errors_as_torch():
    t = TF.default_fused_act_fake_quant()
    n = NF.default_fused_act_fake_quant()
    with pytest.raises(RuntimeError):
        t(torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        n(np.zeros((3, 4)))
    kw = dict(observer="MovingAveragePerChannelMinMaxObserver", dtype="qint8", quant_min=-128,
              quant_max=127, qscheme="per_channel_symmetric", ch_axis=1)
    t = TF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, TO))
    n = NF.FusedMovingAvgObsFakeQuantize(**_kwargs(kw, NO))
    with pytest.raises(RuntimeError, match="axis == 0"):
        t(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="axis == 0"):
        n(np.zeros((5, 3), F32))
    # torch resized the per-channel buffers before raising (scale / zero_point left
    # uninitialised); numq too (scale 1, zero point 0)
    for k in ("activation_post_process.min_val", "activation_post_process.max_val"):
        assert_same(n.state_dict()[k], t.state_dict()[k], k)
    assert n.scale.shape == tuple(t.scale.shape) and n.zero_point.shape == (3,)
    t = TF.default_fused_per_channel_wt_fake_quant()
    n = NF.default_fused_per_channel_wt_fake_quant()
    with pytest.raises(IndexError):
        t(torch.zeros(5))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        n(np.zeros(5, F32))


def test_zero_dim_input():
    for name in ["default_fused_act_fake_quant", "default_fake_quant",
                 "default_weight_fake_quant"]:
        n, t = pair(name)
        run_pair(n, t, [np.array(v, F32) for v in (0.3, -1.7, 2.5)])


def test_same_public_names():
    assert sorted(NF.__all__) == sorted(TF.__all__)
