"""numq.quantization.observer against the NumPy references (no torch).

Min/max observers: buffers and qparams over several batches equal
``reference_observer.RefObserver`` exactly (hypothesis over dtypes, qschemes, ranges,
channel axes, shapes and special values). Plus: forward identity, argument errors,
warnings, edge data, state dicts, factories, defaults and the trivial observers.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numq
import numq.layers as L
import numq.quantization as Q
import numq.quantization.observer as O
from reference_observer import EPS, RefObserver, channel_minmax

F32 = np.float32
DTYPES = {"quint8": numq.quint8, "qint8": numq.qint8, "qint32": numq.qint32,
          "quint4x2": numq.quint4x2}
PER_TENSOR = ["per_tensor_affine", "per_tensor_symmetric"]
PER_CHANNEL = ["per_channel_affine", "per_channel_symmetric",
               "per_channel_affine_float_qparams"]
MINMAX_CLASSES = {  # name -> (per channel, moving average)
    "MinMaxObserver": (False, False), "MovingAverageMinMaxObserver": (False, True),
    "PerChannelMinMaxObserver": (True, False),
    "MovingAveragePerChannelMinMaxObserver": (True, True)}


def assert_same(a, b):
    """Bitwise-equal float32 arrays (NaN == NaN; -0.0 == 0.0 as torch may give either)."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_array_equal(a, b)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ strategies

@st.composite
def configs(draw, per_channel):
    """Valid constructor arguments: (numq kwargs, reference kwargs)."""
    dtype = draw(st.sampled_from(list(DTYPES)))
    qscheme = draw(st.sampled_from(PER_CHANNEL if per_channel else PER_TENSOR))
    symmetric = "symmetric" in qscheme
    reduce_range = draw(st.booleans()) and not (symmetric and dtype == "quint8")
    quant_min = quant_max = None
    if draw(st.booleans()):
        lo, hi = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-1000, 1000),
                  "quint4x2": (0, 15)}[dtype]
        quant_min = draw(st.integers(lo, 0))
        quant_max = draw(st.integers(max(quant_min + 1, 0), hi))
        quant_max = max(quant_max, quant_min + 1)
        if quant_max > hi:
            quant_min, quant_max = None, None
    eps = draw(st.sampled_from([EPS, 2.0**-12, 1e-3]))
    kw = dict(dtype=DTYPES[dtype], qscheme=getattr(numq, qscheme), reduce_range=reduce_range,
              quant_min=quant_min, quant_max=quant_max, eps=eps)
    ref = dict(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range, quant_min=quant_min,
               quant_max=quant_max, eps=eps)
    return kw, ref


_values = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 3e38, -3e38]),
)
_special = st.sampled_from([np.nan, np.inf, -np.inf])


def batches(shape, special):
    elems = st.one_of(_values, _special) if special else _values
    one = hnp.arrays(F32, shape, elements=elems)
    return st.lists(one, min_size=1, max_size=4)


def build(cls_name, kw, ch_axis=None, c=None):
    cls = getattr(Q, cls_name)
    extra = {}
    if ch_axis is not None:
        extra["ch_axis"] = ch_axis
    if c is not None:
        extra["averaging_constant"] = c
    return quiet(cls, **kw, **extra)


def check_against_reference(cls_name, kw, ref_kw, xs, ch_axis, c):
    per_channel, moving = MINMAX_CLASSES[cls_name]
    obs = build(cls_name, kw, ch_axis if per_channel else None, c if moving else None)
    ref = RefObserver(**ref_kw, ch_axis=ch_axis if per_channel else None,
                      averaging_constant=c if moving else None)
    for x in xs:
        assert obs(x) is x
        ref.observe(x)
        assert_same(obs.min_val, ref.min_val)
        assert_same(obs.max_val, ref.max_val)
        if np.any(ref.min_val > ref.max_val):
            # moving averages of huge values can round into min > max: torch asserts
            with pytest.raises(ValueError, match="should be less than max"):
                obs.calculate_qparams()
            continue
        expected = ref.qparams()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            scale, zp = obs.calculate_qparams()
        assert scale.dtype == F32 and zp.dtype == ref.zero_point_dtype()
        assert_same(scale, expected[0])
        assert_same(zp, expected[1].astype(zp.dtype))


# ------------------------------------------------------- against the reference

@settings(max_examples=60)
@given(data=st.data(), cls_name=st.sampled_from(["MinMaxObserver",
                                                   "MovingAverageMinMaxObserver"]),
       shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=6), special=st.booleans())
def test_per_tensor_matches_reference(data, cls_name, shape, special):
    kw, ref_kw = data.draw(configs(per_channel=False))
    xs = data.draw(batches(shape, special))
    c = data.draw(st.sampled_from([0.01, 0.5, 1.0, 0.3]))
    check_against_reference(cls_name, kw, ref_kw, xs, None, c)


@settings(max_examples=60)
@given(data=st.data(), cls_name=st.sampled_from(["PerChannelMinMaxObserver",
                                                   "MovingAveragePerChannelMinMaxObserver"]),
       shape=hnp.array_shapes(min_dims=2, max_dims=4, max_side=6), special=st.booleans())
def test_per_channel_matches_reference(data, cls_name, shape, special):
    kw, ref_kw = data.draw(configs(per_channel=True))
    ch_axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    xs = data.draw(batches(shape, special))
    c = data.draw(st.sampled_from([0.01, 0.5, 1.0]))
    check_against_reference(cls_name, kw, ref_kw, xs, ch_axis, c)


@pytest.mark.parametrize("cls_name", list(MINMAX_CLASSES))
@pytest.mark.parametrize("shape,ch_axis", [((8, 64, 32, 32), 1), ((64, 4096), 0),
                                           ((1024, 96), -1), ((4, 6, 5000), -3)])
def test_large_inputs_take_the_parallel_path(cls_name, shape, ch_axis):
    # >= 64K elements: the parallel kernels of numq.kernels.reduce
    rng = np.random.default_rng(7)
    kw = dict(dtype=numq.qint8, qscheme=numq.per_channel_symmetric
              if MINMAX_CLASSES[cls_name][0] else numq.per_tensor_affine)
    xs = [rng.standard_normal(shape, dtype=F32) * s for s in (1.0, 3.0, 0.5)]
    xs[1][(0,) * len(shape)] = 40.0
    check_against_reference(cls_name, kw, dict(dtype="qint8", qscheme=kw["qscheme"].name), xs,
                            ch_axis, 0.01)


# ---------------------------------------------------------- input conversions

@pytest.mark.parametrize("cls_name", list(MINMAX_CLASSES))
def test_forward_returns_input_object_of_any_kind(cls_name):
    per_channel = MINMAX_CLASSES[cls_name][0]
    obs = build(cls_name, {}, 0 if per_channel else None)
    x64 = np.linspace(-1, 1, 12).reshape(3, 4)           # float64: rounded to float32
    nc = np.arange(18, dtype=F32).reshape(3, 6)[:, ::2]   # non-contiguous
    ints = np.arange(-3, 9).reshape(3, 4)                 # integers: converted
    lst = [[1.0, 2.0], [3.0, -4.0], [0.0, 5.0]]
    for x in (x64, nc, ints, lst):
        assert obs(x) is x
    ref = RefObserver(ch_axis=0 if per_channel else None,
                      averaging_constant=0.01 if MINMAX_CLASSES[cls_name][1] else None)
    for x in (x64, nc, ints, lst):
        ref.observe(np.asarray(x).astype(F32))
    assert_same(obs.min_val, ref.min_val)
    assert_same(obs.max_val, ref.max_val)


def test_float64_beyond_float32_range_becomes_inf():
    obs = Q.MinMaxObserver()
    obs(np.array([1e300, -1.0]))
    assert obs.max_val == np.inf and obs.min_val == -1.0


def test_non_numeric_input_raises():
    with pytest.raises(TypeError, match="x must be a real"):
        Q.MinMaxObserver()(np.array(["a", "b"]))


# ------------------------------------------------------------------ channel axes

@pytest.mark.parametrize("ch_axis", [-4, -3, -2, -1, 0, 1, 2, 3])
def test_per_channel_any_axis(ch_axis):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5), dtype=F32)
    obs = Q.PerChannelMinMaxObserver(ch_axis=ch_axis)
    obs(x)
    mn, mx = channel_minmax(x, ch_axis)
    assert obs.min_val.shape == (x.shape[ch_axis],)
    assert_same(obs.min_val, mn)
    assert_same(obs.max_val, mx)


@pytest.mark.parametrize("cls_name", ["PerChannelMinMaxObserver",
                                      "MovingAveragePerChannelMinMaxObserver"])
@pytest.mark.parametrize("shape,ch_axis", [((3, 4), 2), ((3, 4), -3), ((5,), 0), ((5,), -1),
                                           ((), 0)])
def test_per_channel_axis_out_of_range(cls_name, shape, ch_axis):
    obs = getattr(Q, cls_name)(ch_axis=ch_axis)
    x = np.ones(shape, F32)
    with pytest.raises(np.exceptions.AxisError, match="ch_axis"):
        obs(x)
    with pytest.raises(IndexError):      # what torch raises
        obs(x)
    with pytest.raises(ValueError):      # numq's convention
        obs(x)
    assert obs.min_val.size == 0          # nothing recorded


def test_per_channel_axis_must_be_int():
    with pytest.raises(TypeError, match="ch_axis"):
        Q.PerChannelMinMaxObserver(ch_axis=1.0)(np.ones((2, 2), F32))


def test_per_channel_channel_count_change():
    obs = Q.PerChannelMinMaxObserver()
    obs(np.ones((3, 2), F32))
    with pytest.raises(ValueError, match="has 4 channels along ch_axis=0, the observer has seen 3"):
        obs(np.ones((4, 2), F32))
    # torch broadcasts a 1-channel history against any channel count
    one = Q.PerChannelMinMaxObserver()
    one(np.full((1, 2), 5.0, F32))
    one(np.arange(8, dtype=F32).reshape(4, 2))
    assert_same(one.min_val, [0, 2, 4, 5])
    assert_same(one.max_val, [5, 5, 5, 7])
    mov = Q.MovingAveragePerChannelMinMaxObserver(averaging_constant=0.5)
    mov(np.ones((3, 2), F32))
    with pytest.raises(ValueError, match="reset_min_max_vals"):
        mov(np.ones((2, 2), F32))


# ---------------------------------------------------------------- edge data

@pytest.mark.parametrize("cls_name", list(MINMAX_CLASSES))
def test_empty_input_is_ignored(cls_name):
    per_channel = MINMAX_CLASSES[cls_name][0]
    obs = build(cls_name, {}, 1 if per_channel else None)
    for x in (np.empty((0, 3), F32), np.empty((3, 0), F32), []):
        assert obs(x) is x
    assert obs.min_val.size == (0 if per_channel else 1)
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = obs.calculate_qparams()
    assert_same(s, [1.0]) and s.dtype == F32
    assert_same(z, [0]) and z.dtype == np.int64


@pytest.mark.parametrize("cls_name", list(MINMAX_CLASSES))
def test_no_data_warning(cls_name):
    per_channel = MINMAX_CLASSES[cls_name][0]
    obs = build(cls_name, {}, 0 if per_channel else None)
    with pytest.warns(UserWarning, match="must run observer before calling calculate_qparams"):
        s, z = obs.calculate_qparams()
    assert s.tolist() == [1.0] and z.tolist() == [0] and z.dtype == np.int64


@pytest.mark.parametrize("qscheme,dtype,zp", [("per_tensor_affine", "quint8", 0),
                                               ("per_tensor_symmetric", "qint8", 0),
                                               ("per_tensor_symmetric", "quint8", 128)])
def test_all_zero_data_gives_eps_scale(qscheme, dtype, zp):
    obs = Q.MinMaxObserver(dtype=DTYPES[dtype], qscheme=getattr(numq, qscheme))
    obs(np.zeros((4, 4), F32))
    s, z = obs.calculate_qparams()
    assert s[0] == F32(EPS) and z[0] == zp


@pytest.mark.parametrize("value", [3.5, -2.0])
def test_constant_data(value):
    obs = Q.MinMaxObserver()
    obs(np.full(100, value, F32))
    s, z = obs.calculate_qparams()
    ref = RefObserver()
    ref.observe(np.full(100, value, F32))
    rs, rz = ref.qparams()
    assert_same(s, rs) and assert_same(z, rz.astype(np.int32))
    pc = Q.PerChannelMinMaxObserver(qscheme=numq.per_channel_affine_float_qparams)
    pc(np.full((2, 3), value, F32))
    s, z = pc.calculate_qparams()
    assert_same(s, [1.0, 1.0])                      # scale <= eps -> 1.0
    assert_same(z, [-value, -value])


def test_nan_propagates_and_sticks():
    obs = Q.MinMaxObserver()
    obs(np.array([1.0, np.nan], F32))
    assert np.isnan(obs.min_val) and np.isnan(obs.max_val)
    obs(np.array([1.0, 2.0], F32))
    assert np.isnan(obs.min_val)
    s, z = obs.calculate_qparams()                  # no crash; torch's values
    assert np.isnan(s[0]) and z.dtype == np.int32
    pc = Q.PerChannelMinMaxObserver()
    pc(np.array([[1.0, np.nan], [1.0, 2.0]], F32))
    assert np.isnan(pc.min_val[0]) and pc.min_val[1] == 1.0
    s, z = pc.calculate_qparams()
    assert np.isnan(s[0]) and not np.isnan(s[1])


def test_inf_data():
    obs = Q.MovingAverageMinMaxObserver()
    obs(np.array([-np.inf, 1.0], F32))
    obs(np.array([-1.0, 1.0], F32))
    assert np.isnan(obs.min_val)       # -inf + c * (-1 - -inf) = -inf + inf
    obs2 = Q.MinMaxObserver()
    obs2(np.array([np.inf, 0.0], F32))
    s, z = obs2.calculate_qparams()
    assert s[0] == np.inf


def test_min_greater_than_max_raises():
    obs = Q.MinMaxObserver()
    obs.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.array(2.0, F32),
                         "max_val": np.array(1.0, F32)})
    with pytest.raises(ValueError, match="should be less than max"):
        obs.calculate_qparams()
    pc = Q.PerChannelMinMaxObserver()
    pc.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.array([0.0, 2.0], F32),
                        "max_val": np.array([1.0, 1.0], F32)})
    with pytest.raises(ValueError, match="should be less than max"):
        pc.calculate_qparams()


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("cls_name,qscheme", [
    ("MinMaxObserver", "per_channel_affine"),
    ("MovingAverageMinMaxObserver", "per_channel_symmetric"),
    ("PerChannelMinMaxObserver", "per_tensor_affine"),
    ("MovingAveragePerChannelMinMaxObserver", "per_tensor_symmetric")])
def test_wrong_granularity_qscheme(cls_name, qscheme):
    with pytest.raises(Q.UnsupportedObserverConfig, match="qscheme only supports"):
        getattr(Q, cls_name)(qscheme=getattr(numq, qscheme))
    with pytest.raises(ValueError):   # numq's bad-argument convention
        getattr(Q, cls_name)(qscheme=getattr(numq, qscheme))


@pytest.mark.parametrize("cls_name,qscheme", [
    ("MinMaxObserver", "per_tensor_symmetric"),
    ("MovingAverageMinMaxObserver", "per_tensor_symmetric"),
    ("PerChannelMinMaxObserver", "per_channel_symmetric"),
    ("MovingAveragePerChannelMinMaxObserver", "per_channel_symmetric")])
def test_symmetric_reduce_range_quint8(cls_name, qscheme):
    with pytest.raises(ValueError, match="Cannot reduce range for symmetric"):
        quiet(getattr(Q, cls_name), qscheme=getattr(numq, qscheme), reduce_range=True)
    quiet(getattr(Q, cls_name), qscheme=getattr(numq, qscheme), reduce_range=True,
          dtype=numq.qint8)


def test_dynamic_unsupported():
    for cls in (Q.PerChannelMinMaxObserver, Q.MovingAveragePerChannelMinMaxObserver,
                Q.FixedQParamsObserver.with_args(scale=1.0, zero_point=0)):
        with pytest.raises(Q.UnsupportedObserverConfig, match="dynamic"):
            cls(is_dynamic=True)
    with pytest.raises(Q.UnsupportedObserverConfig, match="averaging constant of 0.01"):
        Q.MovingAverageMinMaxObserver(is_dynamic=True)
    assert Q.MovingAverageMinMaxObserver(averaging_constant=1, is_dynamic=True).is_dynamic
    assert Q.MinMaxObserver(is_dynamic=True).is_dynamic


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(qscheme="no_such_scheme"), ValueError, "qscheme must be one of"),
    (dict(qscheme=3), ValueError, "qscheme must be one of"),
    (dict(dtype=numq.float16), ValueError, "dtype must be one of"),
    (dict(dtype=np.float32), ValueError, "dtype must be one of"),
    (dict(dtype="int4"), TypeError, "dtype must be"),
    (dict(quant_min=1, quant_max=10), ValueError, "include"),
    (dict(quant_min=-5, quant_max=-1), ValueError, "include"),
    (dict(quant_min=0, quant_max=0), ValueError, "quant_min must be < quant_max"),
    (dict(dtype=numq.qint8, quant_min=-200, quant_max=100), ValueError, "<= 256"),
    (dict(quant_min=0.0, quant_max=10), TypeError, "quant_min"),
    (dict(no_such_arg=1), TypeError, "no_such_arg"),
    (dict(eps=float("nan")), ValueError, "eps"),
])
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Q.MinMaxObserver(**kwargs)


def test_lone_quant_min_is_ignored():
    obs = Q.MinMaxObserver(quant_min=5)
    assert (obs.quant_min, obs.quant_max, obs.has_customized_qrange) == (0, 255, False)


@pytest.mark.parametrize("dtype,reduce_range,custom,expected", [
    ("quint8", False, None, (0, 255)), ("quint8", True, None, (0, 127)),
    ("qint8", False, None, (-128, 127)), ("qint8", True, None, (-64, 63)),
    ("qint32", True, None, (-(2**31), 2**31 - 1)), ("quint4x2", True, None, (0, 15)),
    ("quint8", True, (0, 15), (0, 7)), ("qint8", True, (-127, 127), (-64, 63)),
    ("quint8", False, (0, 1000), (0, 1000)),
])
def test_quant_range(dtype, reduce_range, custom, expected):
    qmin, qmax = custom or (None, None)
    obs = quiet(Q.MinMaxObserver, dtype=DTYPES[dtype], reduce_range=reduce_range,
                quant_min=qmin, quant_max=qmax)
    assert (obs.quant_min, obs.quant_max) == expected


def test_reduce_range_warns():
    with pytest.warns(UserWarning, match="reduce_range will be deprecated"):
        Q.MinMaxObserver(reduce_range=True)


def test_observer_base_is_abstract():
    with pytest.raises(TypeError):
        Q.ObserverBase(numq.quint8)
    with pytest.raises(TypeError):
        Q.UniformQuantizationObserverBase()


def test_subclass_of_uniform_base():
    class MyObserver(Q.UniformQuantizationObserverBase):
        def forward(self, x):
            return x

        def calculate_qparams(self):
            return self._calculate_qparams(np.array(-1.0, F32), np.array(3.0, F32))

    obs = MyObserver(dtype=numq.qint8, quant_min=-8, quant_max=7)
    s, z = obs.calculate_qparams()
    assert s.shape == (1,) and z.dtype == np.int32
    assert obs.state_dict().keys() == {"eps"}
    with pytest.raises(TypeError, match="Cannot reset"):
        obs.reset_min_max_vals()


# ------------------------------------------------------------- dtype / scheme names

@pytest.mark.parametrize("dtype,expected", [("quint8", numq.quint8), ("torch.qint8", numq.qint8),
                                            (np.int8, numq.qint8), (np.uint8, numq.quint8)])
def test_dtype_spellings(dtype, expected):
    assert Q.MinMaxObserver(dtype=dtype).dtype is expected


def test_qscheme_spellings():
    assert Q.MinMaxObserver(qscheme="per_tensor_symmetric").qscheme is numq.per_tensor_symmetric
    assert Q.PerChannelMinMaxObserver(
        qscheme="torch.per_channel_affine_float_qparams").qscheme \
        is numq.per_channel_affine_float_qparams


# -------------------------------------------------------------- state dicts

@pytest.mark.parametrize("cls_name", list(MINMAX_CLASSES))
def test_state_dict_round_trip(cls_name):
    per_channel = MINMAX_CLASSES[cls_name][0]
    obs = build(cls_name, dict(dtype=numq.qint8, eps=2.0**-12), 1 if per_channel else None)
    x = np.random.default_rng(3).standard_normal((4, 5, 6), dtype=F32)
    obs(x)
    obs(x * 2)
    sd = {k: v.copy() for k, v in obs.state_dict().items()}
    assert list(sd) == ["eps", "min_val", "max_val"]
    assert sd["min_val"].shape == ((5,) if per_channel else ())
    fresh = build(cls_name, dict(dtype=numq.qint8), 1 if per_channel else None)
    fresh.load_state_dict(sd)
    for k in sd:
        assert_same(getattr(fresh, k), sd[k])
    for a, b in zip(fresh.calculate_qparams(), obs.calculate_qparams()):
        assert_same(a, b)
    fresh(x * 3)
    obs(x * 3)
    assert_same(fresh.min_val, obs.min_val)


def test_state_dict_wrong_shapes():
    obs = Q.MinMaxObserver()
    with pytest.raises(ValueError, match="size mismatch for min_val"):
        obs.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.zeros(3, F32),
                             "max_val": np.array(1.0, F32)})
    pc = Q.PerChannelMinMaxObserver()
    with pytest.raises(ValueError, match="must be 1-d"):
        pc.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.zeros((2, 2), F32),
                            "max_val": np.zeros((2, 2), F32)})
    with pytest.raises(ValueError, match="same shape"):
        pc.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.zeros(2, F32),
                            "max_val": np.zeros(3, F32)})
    with pytest.raises(KeyError, match="max_val"):
        pc.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.zeros(2, F32)})
    pc.load_state_dict({"eps": np.array([EPS], F32), "min_val": np.zeros(2, F32)},
                       strict=False)
    assert pc.min_val.shape == (2,)


def test_per_channel_reset():
    pc = Q.PerChannelMinMaxObserver()
    pc(np.ones((3, 2), F32))
    pc.reset_min_max_vals()
    assert pc.min_val.shape == (0,) and pc.state_dict()["max_val"].shape == (0,)
    pc(np.ones((4, 2), F32))
    assert pc.min_val.shape == (4,)
    mm = Q.MinMaxObserver()
    mm(np.ones(3, F32))
    mm.reset_min_max_vals()
    assert mm.min_val == np.inf and mm.max_val == -np.inf and mm.min_val.shape == ()


def test_eps_buffer_is_used():
    obs = Q.MinMaxObserver()
    obs(np.zeros(3, F32))
    obs.eps[0] = 0.25
    assert obs.calculate_qparams()[0][0] == F32(0.25)


class _Net(L.Module):
    def __init__(self):
        super().__init__()
        self.linear = L.Linear(3, 3)
        self.activation_post_process = Q.MinMaxObserver()
        self.sub = L.Sequential(L.ReLU())
        self.sub.activation_post_process = Q.PerChannelMinMaxObserver(ch_axis=1)


def test_get_and_load_observer_state_dict():
    net = _Net()
    x = np.random.default_rng(5).standard_normal((4, 3), dtype=F32)
    net.activation_post_process(x)
    net.sub.activation_post_process(x)
    sd = Q.get_observer_state_dict(net)
    assert set(sd) == {f"{p}activation_post_process.{b}" for p in ("", "sub.")
                       for b in ("eps", "min_val", "max_val")}
    sd = {k: v.copy() for k, v in sd.items()}
    # torch builds the prefix as name + "."; the root's own observer is therefore only
    # found at "." + key: load into a model where the observers are children
    fresh = _Net()
    Q.load_observer_state_dict(fresh, sd)
    assert_same(fresh.sub.activation_post_process.min_val,
                net.sub.activation_post_process.min_val)
    del sd["sub.activation_post_process.max_val"]
    with pytest.raises(KeyError, match="Missing keys for observer"):
        Q.load_observer_state_dict(_Net(), sd)
    sd["sub.activation_post_process.max_val"] = np.zeros(3, F32)
    sd["sub.activation_post_process.min_val"] = np.zeros((3, 1), F32)
    with pytest.raises(ValueError, match="1-d"):
        Q.load_observer_state_dict(_Net(), sd)


# ---------------------------------------------------------------- factories

def test_with_args_builds_new_instances():
    f = Q.MinMaxObserver.with_args(dtype=numq.qint8).with_args(quant_min=-10, quant_max=10)
    a, b = f(), f()
    assert a is not b and a.min_val is not b.min_val
    assert (a.dtype, a.quant_min, a.quant_max) == (numq.qint8, -10, 10)
    c = f(quant_min=-20, quant_max=20)               # call-time keywords win
    assert c.quant_min == -20
    assert "MinMaxObserver" in repr(f)


def test_with_callable_args():
    calls = []

    def next_eps():
        calls.append(1)
        return 2.0 ** -len(calls)

    f = Q.MinMaxObserver.with_callable_args(eps=next_eps).with_args(dtype=numq.qint8)
    a, b = f(), f()
    assert a.eps[0] == 0.5 and b.eps[0] == 0.25 and a.dtype is numq.qint8
    assert f(eps=1.0).eps[0] == 1.0 and len(calls) == 2    # explicit keyword: not called
    g = f.with_callable_args(quant_min=lambda: -4, quant_max=lambda: 3)
    assert (g().quant_min, g().quant_max) == (-4, 3)


def test_factories_pickle_and_deepcopy():
    obs = Q.PerChannelMinMaxObserver(dtype=numq.qint8, qscheme=numq.per_channel_symmetric)
    obs(np.ones((2, 3), F32))
    for clone in (copy.deepcopy(obs), pickle.loads(pickle.dumps(obs))):
        assert clone.qscheme is numq.per_channel_symmetric and clone.dtype is numq.qint8
        assert_same(clone.min_val, obs.min_val)


# ----------------------------------------------------------------- defaults

@pytest.mark.parametrize("name,cls,attrs", [
    ("default_observer", "MinMaxObserver",
     dict(dtype=numq.quint8, qscheme=numq.per_tensor_affine, quant_min=0, quant_max=127)),
    ("default_weight_observer", "MinMaxObserver",
     dict(dtype=numq.qint8, qscheme=numq.per_tensor_symmetric, quant_min=-128,
          quant_max=127)),
    ("weight_observer_range_neg_127_to_127", "MinMaxObserver",
     dict(dtype=numq.qint8, qscheme=numq.per_tensor_symmetric, quant_min=-127,
          quant_max=127)),
    ("default_per_channel_weight_observer", "PerChannelMinMaxObserver",
     dict(dtype=numq.qint8, qscheme=numq.per_channel_symmetric, ch_axis=0)),
    ("per_channel_weight_observer_range_neg_127_to_127", "PerChannelMinMaxObserver",
     dict(dtype=numq.qint8, qscheme=numq.per_channel_symmetric, quant_min=-127,
          quant_max=127)),
    ("default_float_qparams_observer", "PerChannelMinMaxObserver",
     dict(dtype=numq.quint8, qscheme=numq.per_channel_affine_float_qparams, ch_axis=0)),
    ("default_float_qparams_observer_4bit", "PerChannelMinMaxObserver",
     dict(dtype=numq.quint4x2, qscheme=numq.per_channel_affine_float_qparams, quant_max=15)),
    ("default_dynamic_quant_observer", "PlaceholderObserver",
     dict(dtype=numq.quint8, quant_min=0, quant_max=255, is_dynamic=True)),
    ("default_placeholder_observer", "PlaceholderObserver",
     dict(dtype=np.dtype(np.float32), is_dynamic=False)),
    ("default_debug_observer", "RecordingObserver", dict(dtype=numq.quint8)),
    ("default_reuse_input_observer", "ReuseInputObserver", dict(dtype=numq.quint8)),
    ("default_fixed_qparams_range_0to1_observer", "FixedQParamsObserver",
     dict(quant_min=0, quant_max=255)),
    ("default_affine_fixed_qparams_observer", "FixedQParamsObserver", dict(quant_max=255)),
    ("default_fixed_qparams_range_neg1to1_observer", "FixedQParamsObserver",
     dict(dtype=numq.quint8)),
    ("default_symmetric_fixed_qparams_observer", "FixedQParamsObserver", dict()),
])
def test_defaults(name, cls, attrs):
    obs = getattr(Q, name)()
    assert type(obs) is getattr(Q, cls)
    for k, v in attrs.items():
        assert getattr(obs, k) == v, k
    assert getattr(Q, name)() is not obs


def test_default_eps_and_fixed_qparams():
    assert Q.weight_observer_range_neg_127_to_127().eps[0] == 2.0**-12
    assert Q.per_channel_weight_observer_range_neg_127_to_127().eps[0] == 2.0**-12
    assert Q.default_observer().eps[0] == F32(EPS)
    s, z = Q.default_fixed_qparams_range_neg1to1_observer().calculate_qparams()
    assert s.tolist() == [2 / 256] and z.tolist() == [128] and z.dtype == np.int32
    s, z = Q.default_fixed_qparams_range_0to1_observer().calculate_qparams()
    assert s.tolist() == [1 / 256] and z.tolist() == [0] and s.dtype == F32


def test_exports():
    for name in O.__all__:
        assert getattr(Q, name) is getattr(O, name)


# ------------------------------------------------------------ trivial observers

def test_placeholder_noop_reuse_recording():
    x = np.arange(6, dtype=F32).reshape(2, 3)
    for obs in (Q.PlaceholderObserver(), Q.NoopObserver(), Q.ReuseInputObserver(),
                Q.RecordingObserver(), Q.FixedQParamsObserver(0.1, 3)):
        assert obs(x) is x
        assert isinstance(obs, Q.ObserverBase) and isinstance(obs, L.Module)
    for obs in (Q.PlaceholderObserver(), Q.NoopObserver(), Q.ReuseInputObserver(),
                Q.RecordingObserver()):
        with pytest.raises(RuntimeError, match="should not be called"):
            obs.calculate_qparams()
        assert obs.state_dict() == {}
    assert Q.NoopObserver().dtype is numq.float16
    p = Q.PlaceholderObserver(dtype=numq.float16, is_dynamic=True, custom_op_name="op")
    assert (p.dtype, p.is_dynamic, p.custom_op, p.qscheme, p.eps) == \
        (numq.float16, True, "op", numq.per_tensor_affine, EPS)
    assert repr(p) == "PlaceholderObserver(dtype=numq.float16, is_dynamic=True)"
    with pytest.warns(UserWarning, match="is_dynamic"):
        q = Q.PlaceholderObserver(compute_dtype=numq.quint8)
    assert q.is_dynamic is False     # as torch: compute_dtype only warns
    rec = Q.RecordingObserver()
    rec(x)
    x += 1
    assert rec.get_tensor_value()[0][0, 0] == 0.0 and len(rec.tensor_val) == 1


def test_fixed_qparams_observer():
    obs = Q.FixedQParamsObserver(scale=0.1, zero_point=5, dtype=numq.qint8,
                                 qscheme=numq.per_tensor_symmetric, quant_min=-128,
                                 quant_max=127)
    s, z = obs.calculate_qparams()
    assert s is obs.scale and z is obs.zero_point
    assert s.dtype == F32 and s.tolist() == [F32(0.1)] and z.tolist() == [5]
    assert list(obs.state_dict()) == ["scale", "zero_point"]
    assert (obs.dtype, obs.qscheme, obs.quant_min) == (numq.qint8, numq.per_tensor_symmetric,
                                                       -128)


def test_repr():
    obs = Q.MinMaxObserver()
    assert repr(obs) == "MinMaxObserver(min_val=inf, max_val=-inf)"
    pc = Q.PerChannelMinMaxObserver()
    pc(np.array([[1.0], [2.0]], F32))
    assert repr(pc) == "PerChannelMinMaxObserver(min_val=[1. 2.], max_val=[1. 2.])"
