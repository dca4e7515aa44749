"""numq.quantization.observer against torch.ao.quantization.observer (torch 2.13).

Exact equality: every min/max observer class over several batches (running buffers,
``calculate_qparams`` values and dtypes, ``forward`` identity), state dicts in both
directions, factories, the defaults' settings, the errors torch raises, warnings, and
NaN / inf / empty / all-zero / constant data.
"""
import collections
import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.quantization.observer as T  # noqa: E402

import numq  # noqa: E402
import numq.layers as L  # noqa: E402
import numq.quantization as Q  # noqa: E402

F32 = np.float32
DTYPES = ["quint8", "qint8", "qint32", "quint4x2"]
PER_TENSOR = ["per_tensor_affine", "per_tensor_symmetric"]
PER_CHANNEL = ["per_channel_affine", "per_channel_symmetric",
               "per_channel_affine_float_qparams"]
MINMAX = ["MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
          "MovingAveragePerChannelMinMaxObserver"]
ZP_DTYPES = {torch.int32: np.int32, torch.int64: np.int64, torch.float32: np.float32}


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


def _args(kwargs, lib):
    """Translate a spec's dtype / qscheme names into ``lib``'s objects."""
    out = dict(kwargs)
    for k in ("dtype", "qscheme"):
        if isinstance(out.get(k), str):
            out[k] = getattr(torch if lib == "torch" else numq, out[k])
    return out


def pair(cls_name, **kwargs):
    """The same observer built by torch and by numq."""
    return (getattr(T, cls_name)(**_args(kwargs, "torch")),
            getattr(Q, cls_name)(**_args(kwargs, "numq")))


def t2n(t):
    # clone: .numpy() on a buffer would make its storage non-resizable for torch
    return t.detach().clone().numpy()


def assert_buffers(tobs, nobs):
    tsd, nsd = tobs.state_dict(), nobs.state_dict()
    assert list(tsd) == list(nsd)
    for k in tsd:
        a, b = t2n(tsd[k]), nsd[k]
        assert a.shape == b.shape and a.dtype == b.dtype, (k, a.shape, b.shape)
        np.testing.assert_array_equal(a, b, err_msg=k)


def qparams(obs, lib):
    """``calculate_qparams()`` as (scale, zp) NumPy arrays, or the exception type."""
    try:
        s, z = obs.calculate_qparams()
    except (AssertionError, ValueError, RuntimeError) as e:
        return type(e)
    if lib == "torch":
        assert z.dtype in ZP_DTYPES
        return t2n(s), t2n(z)
    return s, z


def assert_qparams(tobs, nobs):
    t, n = qparams(tobs, "torch"), qparams(nobs, "numq")
    if isinstance(t, type) or isinstance(n, type):
        # torch asserts min <= max; numq raises ValueError
        assert (t, n) == (AssertionError, ValueError)
        return
    for a, b in zip(t, n):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b)


def observe_both(tobs, nobs, x):
    xt = torch.from_numpy(np.array(x, copy=True))
    assert tobs(xt) is xt
    assert nobs(x) is x
    assert_buffers(tobs, nobs)
    assert_qparams(tobs, nobs)


# ------------------------------------------------------------------------ data

def data_stream(seed, shape, kind):
    """Four batches of one data family."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(4):
        if kind == "normal":
            x = rng.standard_normal(shape, dtype=F32) * F32(1 + i)
        elif kind == "positive":
            x = rng.uniform(0.5, 3.0, shape).astype(F32)
        elif kind == "negative":
            x = -rng.uniform(0.5, 3.0, shape).astype(F32)
        elif kind == "tiny":
            x = (rng.standard_normal(shape) * 1e-9).astype(F32)
        elif kind == "huge":
            x = (rng.standard_normal(shape) * 1e37).astype(F32)
        elif kind == "zeros":
            x = np.zeros(shape, F32)
        elif kind == "constant":
            x = np.full(shape, F32(0.75 * (i + 1)), F32)
        elif kind == "nan":
            x = rng.standard_normal(shape, dtype=F32)
            if i == 2:
                x.reshape(-1)[rng.integers(x.size)] = np.nan
        elif kind == "inf":
            x = rng.standard_normal(shape, dtype=F32)
            x.reshape(-1)[rng.integers(x.size)] = [np.inf, -np.inf][i % 2]
        elif kind == "float64":
            x = rng.standard_normal(shape) * 1.3
        else:
            raise ValueError(kind)
        out.append(x)
    return out


KINDS = ["normal", "positive", "negative", "tiny", "huge", "zeros", "constant", "nan", "inf",
         "float64"]


def configs(per_channel):
    """Every valid (dtype, qscheme, reduce_range, custom range) combination."""
    for dtype, qscheme, rr in itertools.product(DTYPES, PER_CHANNEL if per_channel
                                                else PER_TENSOR, (False, True)):
        if rr and "symmetric" in qscheme and dtype == "quint8":
            continue
        custom = {"quint8": (0, 15), "qint8": (-127, 127), "qint32": (-1000, 1000),
                  "quint4x2": (0, 7)}[dtype]
        for rng_ in (None, custom):
            kw = dict(dtype=dtype, qscheme=qscheme, reduce_range=rr)
            if rng_:
                kw.update(quant_min=rng_[0], quant_max=rng_[1])
            yield kw


# ---------------------------------------------------------------- min/max classes

@pytest.mark.parametrize("cls_name", MINMAX)
@pytest.mark.parametrize("kind", KINDS)
def test_minmax_observers_match_torch(cls_name, kind):
    per_channel = "PerChannel" in cls_name
    shapes = [(3, 5, 4), (6, 7)]
    for i, kw in enumerate(configs(per_channel)):
        shape = shapes[i % 2]
        extra = {}
        if per_channel:
            extra["ch_axis"] = [0, 1, -1, -2][i % 4] if len(shape) == 3 else [0, -1][i % 2]
        if "MovingAverage" in cls_name:
            extra["averaging_constant"] = [0.01, 0.5, 1.0][i % 3]
        if i % 5 == 0:
            extra["eps"] = 2.0**-12
        tobs, nobs = pair(cls_name, **kw, **extra)
        assert (tobs.quant_min, tobs.quant_max) == (nobs.quant_min, nobs.quant_max)
        assert_qparams(tobs, nobs)             # nothing observed yet
        for x in data_stream(i, shape, kind):
            observe_both(tobs, nobs, x)


@pytest.mark.parametrize("cls_name", MINMAX)
@pytest.mark.parametrize("shape,ch_axis", [((16, 64, 16, 16), 1), ((64, 2048), 0),
                                           ((512, 200), -1), ((2, 3, 4, 4096), -2)])
def test_large_inputs_match_torch(cls_name, shape, ch_axis):
    # >= 64K elements: numq's parallel min/max kernels
    per_channel = "PerChannel" in cls_name
    kw = dict(dtype="qint8", qscheme="per_channel_symmetric" if per_channel
              else "per_tensor_affine")
    if per_channel:
        kw["ch_axis"] = ch_axis
    tobs, nobs = pair(cls_name, **kw)
    for x in data_stream(11, shape, "normal"):
        observe_both(tobs, nobs, x)


def test_channel_count_broadcast_matches_torch():
    tobs, nobs = pair("PerChannelMinMaxObserver")
    observe_both(tobs, nobs, np.full((1, 3), 2.0, F32))
    observe_both(tobs, nobs, np.arange(12, dtype=F32).reshape(4, 3))
    with pytest.raises(RuntimeError):
        tobs(torch.ones(3, 3))
    with pytest.raises(ValueError):
        nobs(np.ones((3, 3), F32))


@pytest.mark.parametrize("cls_name", MINMAX)
def test_empty_and_no_data(cls_name):
    per_channel = "PerChannel" in cls_name
    tobs, nobs = pair(cls_name)
    for shape in [(0,), (0, 4), (4, 0)]:
        x = np.empty(shape, F32)
        xt = torch.from_numpy(x)
        assert tobs(xt) is xt and nobs(x) is x
    assert_buffers(tobs, nobs)
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        ts, tz = tobs.calculate_qparams()
    with warnings.catch_warnings(record=True) as nw:
        warnings.simplefilter("always")
        ns, nz = nobs.calculate_qparams()
    assert [str(w.message) for w in tw] == [str(w.message) for w in nw]
    assert [w.category for w in nw] == [UserWarning]
    np.testing.assert_array_equal(t2n(ts), ns)
    assert t2n(tz).dtype == nz.dtype == np.int64
    if per_channel:
        tobs.reset_min_max_vals()
        nobs.reset_min_max_vals()
        assert_buffers(tobs, nobs)


@pytest.mark.parametrize("cls_name", MINMAX)
def test_reset_min_max_vals(cls_name):
    kw = {"ch_axis": 1} if "PerChannel" in cls_name else {}
    tobs, nobs = pair(cls_name, **kw)
    for x in data_stream(3, (4, 5), "normal")[:2]:
        observe_both(tobs, nobs, x)
    tobs.reset_min_max_vals()
    nobs.reset_min_max_vals()
    assert_buffers(tobs, nobs)
    observe_both(tobs, nobs, data_stream(4, (4, 5), "positive")[0])


# ------------------------------------------------------------------ state dicts

@pytest.mark.parametrize("cls_name", MINMAX)
def test_state_dict_round_trip_with_torch(cls_name):
    per_channel = "PerChannel" in cls_name
    kw = dict(dtype="qint8", qscheme="per_channel_affine" if per_channel
              else "per_tensor_symmetric", eps=2.0**-10)
    if per_channel:
        kw["ch_axis"] = -1
    tobs, nobs = pair(cls_name, **kw)
    xs = data_stream(5, (3, 4, 6), "normal")
    for x in xs[:2]:
        observe_both(tobs, nobs, x)
    # numq -> torch: a fresh torch observer loads numq's state dict
    t2, n2 = pair(cls_name, **{**kw, "eps": 2.0**-23})
    t2.load_state_dict(to_torch_state_dict(nobs.state_dict()))
    # torch -> numq
    n2.load_state_dict({k: t2n(v).copy() for k, v in tobs.state_dict().items()})
    assert_buffers(t2, n2)
    assert_buffers(tobs, n2)
    assert_qparams(t2, n2)
    for x in xs[2:]:
        observe_both(tobs, nobs, x)
        observe_both(t2, n2, x)
    assert_buffers(t2, nobs)


def to_torch_state_dict(sd):
    """numq state dict -> torch's, with the version metadata torch's state_dict() carries.

    Without it torch takes the dict for a version-1 checkpoint and replaces ``eps`` by
    float32 eps (see test_torch_resets_eps_without_metadata)."""
    out = collections.OrderedDict((k, torch.from_numpy(v.copy())) for k, v in sd.items())
    out._metadata = {"": {"version": 3}}
    return out


def test_torch_resets_eps_without_metadata():
    # a torch behaviour numq does not copy: numq loads the eps it is given
    sd = {"eps": np.array([0.25], F32), "min_val": np.array(1.0, F32),
          "max_val": np.array(2.0, F32)}
    tobs, nobs = pair("MinMaxObserver", eps=0.5)
    tobs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    nobs.load_state_dict(sd)
    assert tobs.eps.item() == F32(np.finfo(F32).eps) and nobs.eps[0] == 0.25
    tobs.load_state_dict(to_torch_state_dict(sd))
    assert tobs.eps.item() == 0.25


def test_state_dict_wrong_shape():
    tobs, nobs = pair("MinMaxObserver")
    bad = {"eps": np.array([1e-7], F32), "min_val": np.zeros(2, F32),
           "max_val": np.array(1.0, F32)}
    with pytest.raises(RuntimeError, match="size mismatch for min_val"):
        tobs.load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()})
    with pytest.raises(ValueError, match="size mismatch for min_val"):
        nobs.load_state_dict(bad)
    with pytest.raises(RuntimeError, match="Missing key"):
        tobs.load_state_dict({"eps": torch.ones(1)})
    with pytest.raises(KeyError, match="Missing key"):
        nobs.load_state_dict({"eps": np.ones(1, F32)})


class _TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.activation_post_process = T.MinMaxObserver()
        self.sub = torch.nn.Sequential(torch.nn.ReLU())
        self.sub.activation_post_process = T.PerChannelMinMaxObserver(ch_axis=1)


class _NNet(L.Module):
    def __init__(self):
        super().__init__()
        self.fc = L.Linear(4, 4)
        self.activation_post_process = Q.MinMaxObserver()
        self.sub = L.Sequential(L.ReLU())
        self.sub.activation_post_process = Q.PerChannelMinMaxObserver(ch_axis=1)


def test_get_and_load_observer_state_dict_match_torch():
    tnet, nnet = _TNet(), _NNet()
    x = np.random.default_rng(2).standard_normal((5, 4), dtype=F32)
    for net, xx in ((tnet, torch.from_numpy(x)), (nnet, x)):
        net.activation_post_process(xx)
        net.sub.activation_post_process(xx)
    tsd = T.get_observer_state_dict(tnet)
    nsd = Q.get_observer_state_dict(nnet)
    assert list(tsd) == list(nsd)
    for k in tsd:
        np.testing.assert_array_equal(t2n(tsd[k]), nsd[k])
    # torch's dict into numq's model and back
    n2, t2 = _NNet(), _TNet()
    Q.load_observer_state_dict(n2, {k: t2n(v).copy() for k, v in tsd.items()})
    T.load_observer_state_dict(t2, {k: torch.from_numpy(v.copy()) for k, v in nsd.items()})
    assert_buffers(t2.sub.activation_post_process, n2.sub.activation_post_process)
    # (a missing eps would not do: torch's loader, given no version metadata, inserts the
    # default eps into the dict before loading)
    missing = {k: v for k, v in tsd.items()
               if k != "sub.activation_post_process.min_val"}
    # torch (eager) never reports a missing key here: it loads with strict=False, which
    # records none, so its "Missing keys for observer" check cannot fire. numq does.
    T.load_observer_state_dict(_TNet(), missing)
    with pytest.raises(KeyError, match="Missing keys for observer"):
        Q.load_observer_state_dict(_NNet(), {k: t2n(v) for k, v in missing.items()})


# -------------------------------------------------------------- factories, defaults

def test_with_args_matches_torch():
    tf = T.MinMaxObserver.with_args(dtype=torch.qint8).with_args(quant_min=-10, quant_max=10)
    nf = Q.MinMaxObserver.with_args(dtype=numq.qint8).with_args(quant_min=-10, quant_max=10)
    assert_buffers(tf(), nf())
    t, n = tf(), nf()
    assert (t.quant_min, t.quant_max) == (n.quant_min, n.quant_max)
    tc = T.PerChannelMinMaxObserver.with_callable_args(ch_axis=lambda: 1)
    nc = Q.PerChannelMinMaxObserver.with_callable_args(ch_axis=lambda: 1)
    assert tc().ch_axis == nc().ch_axis == 1
    assert tc(ch_axis=0).ch_axis == nc(ch_axis=0).ch_axis == 0
    assert tf() is not tf() and nf() is not nf()


DEFAULTS = ["default_observer", "default_placeholder_observer", "default_debug_observer",
            "default_weight_observer", "default_per_channel_weight_observer",
            "default_dynamic_quant_observer", "default_float_qparams_observer",
            "default_float_qparams_observer_4bit", "default_fixed_qparams_range_0to1_observer",
            "default_fixed_qparams_range_neg1to1_observer",
            "default_symmetric_fixed_qparams_observer", "default_affine_fixed_qparams_observer",
            "default_reuse_input_observer", "weight_observer_range_neg_127_to_127",
            "per_channel_weight_observer_range_neg_127_to_127"]
ATTRS = ["quant_min", "quant_max", "reduce_range", "has_customized_qrange", "ch_axis",
         "averaging_constant", "is_dynamic", "custom_op"]


def _name(v):
    return str(v).removeprefix("torch.").removeprefix("numq.")


@pytest.mark.parametrize("name", DEFAULTS)
def test_defaults_match_torch(name):
    t, n = getattr(T, name)(), getattr(Q, name)()
    assert type(t).__name__ == type(n).__name__
    assert _name(t.dtype) == _name(n.dtype)
    if hasattr(t, "qscheme"):
        assert _name(t.qscheme) == _name(n.qscheme)
    for a in ATTRS:
        assert hasattr(t, a) == hasattr(n, a), a
        if hasattr(t, a):
            assert getattr(t, a) == getattr(n, a), a
    assert_buffers(t, n)
    if "fixed" in name:
        assert_qparams(t, n)
    if isinstance(getattr(t, "eps", None), float):
        assert t.eps == n.eps


def test_all_names_exist():
    missing = [n for n in T.__all__ if not hasattr(Q, n)]
    # histogram: another module; affine-quantization (torchao) names are out of scope
    assert set(missing) <= {"HistogramObserver", "default_histogram_observer",
                            "AffineQuantizedObserverBase", "Granularity", "MappingType",
                            "PerAxis", "PerBlock", "PerGroup", "PerRow", "PerTensor",
                            "PerToken", "TorchAODType", "ZeroPointDomain", "get_block_size"}


# ------------------------------------------------------------------- errors

ERROR_CASES = [
    ("MinMaxObserver", dict(qscheme="per_channel_affine")),
    ("MinMaxObserver", dict(qscheme="per_tensor_symmetric", reduce_range=True)),
    ("MinMaxObserver", dict(quant_min=1, quant_max=10)),
    ("MinMaxObserver", dict(quant_min=-5, quant_max=-1)),
    ("MinMaxObserver", dict(quant_min=3, quant_max=3)),
    ("MinMaxObserver", dict(quant_min=0, quant_max=0)),
    ("MinMaxObserver", dict(dtype="qint8", quant_min=-200, quant_max=100)),
    ("MinMaxObserver", dict(dtype="float16")),
    ("MinMaxObserver", dict(no_such_arg=1)),
    ("MovingAverageMinMaxObserver", dict(qscheme="per_channel_symmetric")),
    ("MovingAverageMinMaxObserver", dict(is_dynamic=True)),
    ("MovingAverageMinMaxObserver", dict(qscheme="per_tensor_symmetric", reduce_range=True)),
    ("PerChannelMinMaxObserver", dict(qscheme="per_tensor_affine")),
    ("PerChannelMinMaxObserver", dict(is_dynamic=True)),
    ("PerChannelMinMaxObserver", dict(qscheme="per_channel_symmetric", reduce_range=True)),
    ("MovingAveragePerChannelMinMaxObserver", dict(qscheme="per_tensor_affine")),
    ("MovingAveragePerChannelMinMaxObserver", dict(is_dynamic=True)),
    ("FixedQParamsObserver", dict(scale=0.1, zero_point=0, is_dynamic=True)),
]
# torch's exception -> numq's
ERROR_MAP = {AssertionError: ValueError, NotImplementedError: Q.UnsupportedObserverConfig,
             TypeError: TypeError}


@pytest.mark.parametrize("cls_name,kw", ERROR_CASES)
def test_constructor_errors_match_torch(cls_name, kw):
    with pytest.raises(Exception) as te:
        getattr(T, cls_name)(**_args(kw, "torch"))
    expected = ERROR_MAP[type(te.value)]
    with pytest.raises(expected):
        getattr(Q, cls_name)(**_args(kw, "numq"))


@pytest.mark.parametrize("cls_name", ["PerChannelMinMaxObserver",
                                      "MovingAveragePerChannelMinMaxObserver"])
@pytest.mark.parametrize("shape,ch_axis", [((3, 4), 2), ((3, 4), -3), ((5,), 0), ((), 0)])
def test_channel_axis_errors_match_torch(cls_name, shape, ch_axis):
    tobs, nobs = pair(cls_name, ch_axis=ch_axis)
    with pytest.raises(IndexError):
        tobs(torch.ones(shape))
    with pytest.raises(IndexError):                  # np.exceptions.AxisError
        nobs(np.ones(shape, F32))


def test_min_greater_than_max_matches_torch():
    tobs, nobs = pair("PerChannelMinMaxObserver")
    sd = {"eps": np.array([1e-7], F32), "min_val": np.array([0.0, 2.0], F32),
          "max_val": np.array([1.0, 1.0], F32)}
    tobs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    nobs.load_state_dict(sd)
    assert_qparams(tobs, nobs)


def test_reduce_range_warning_matches_torch():
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        T.MinMaxObserver(reduce_range=True)
    with warnings.catch_warnings(record=True) as nw:
        warnings.simplefilter("always")
        Q.MinMaxObserver(reduce_range=True)
    # both warn once, with the same category, about the same thing (numq words it itself)
    assert len(tw) == len(nw) == 1
    assert tw[0].category is nw[0].category is UserWarning
    for w in (tw[0], nw[0]):
        assert "reduce_range" in str(w.message) and "quant_min" in str(w.message)


# --------------------------------------------------------------- other observers

@pytest.mark.parametrize("cls_name,kw", [
    ("PlaceholderObserver", {}), ("PlaceholderObserver", dict(dtype="float16",
                                                              is_dynamic=True)),
    ("PlaceholderObserver", dict(dtype="quint8", quant_min=0, quant_max=255)),
    ("NoopObserver", {}), ("RecordingObserver", {}), ("ReuseInputObserver", {}),
    ("FixedQParamsObserver", dict(scale=0.3, zero_point=7, dtype="qint8",
                                  qscheme="per_tensor_symmetric", quant_min=-128,
                                  quant_max=127))])
def test_other_observers_match_torch(cls_name, kw):
    tobs, nobs = pair(cls_name, **kw)
    x = np.arange(6, dtype=F32).reshape(2, 3)
    xt = torch.from_numpy(x)
    assert tobs(xt) is xt and nobs(x) is x
    assert _name(tobs.dtype) == _name(nobs.dtype)
    for a in ATTRS + ["qscheme"]:
        assert hasattr(tobs, a) == hasattr(nobs, a), a
        if a == "qscheme" and hasattr(tobs, a):
            assert _name(tobs.qscheme) == _name(nobs.qscheme)
        elif hasattr(tobs, a):
            assert getattr(tobs, a) == getattr(nobs, a), a
    assert_buffers(tobs, nobs)
    if cls_name == "FixedQParamsObserver":
        assert_qparams(tobs, nobs)
    else:
        with pytest.raises(Exception, match="should not be called") as te:
            tobs.calculate_qparams()
        with pytest.raises(RuntimeError, match=str(te.value)):
            nobs.calculate_qparams()
    if cls_name == "RecordingObserver":
        assert len(tobs.get_tensor_value()) == len(nobs.get_tensor_value()) == 1
    if cls_name == "PlaceholderObserver":
        assert tobs.extra_repr().replace("torch.", "") == nobs.extra_repr().replace(
            "numq.", "")
