"""numq.quantization.fake_quantize: fake-quant modules against NumPy references.

No torch here (see tests/conformance/quantization for that): the fused module's qparams
rule and moving averages against a line-by-line scalar reference, outputs and masks
against the reference fake quantization, the ``_saved`` / backward rule, toggles through
``model.apply``, state dicts, the learnable module's gradient wiring, errors.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numq
import numq.fake_quantize as F
import numq.layers as L
import numq.quantization as Q
import numq.quantization.fake_quantize as NF
import reference_fake_quantize_modules as R

F32 = np.float32


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def finite_arrays(shape, lo=-1e4, hi=1e4):
    return hnp.arrays(np.float32, shape,
                      elements=st.floats(lo, hi, width=32, allow_nan=False,
                                         allow_infinity=False))


# ------------------------------------------------------------- fbgemm qparams rule

EDGE = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 6.1e-5, 1.0, -1.0, 3e38, -3e38,
        np.inf, -np.inf, np.nan, 0.37, -2.5]
RANGES = [(0, 255), (0, 127), (-128, 127), (-127, 127), (-64, 63), (-8, 7), (0, 15)]


@settings(max_examples=300)
@given(st.one_of(st.sampled_from(EDGE), st.floats(width=32)),
       st.one_of(st.sampled_from(EDGE), st.floats(width=32)),
       st.sampled_from(RANGES), st.booleans())
def test_choose_qparams_fbgemm_matches_reference(a, b, qrange, sym):
    qmin, qmax = qrange
    scale, zp = NF._choose_qparams_fbgemm(np.array([a], F32), np.array([b], F32), qmin, qmax,
                                          sym)
    rs, rz = R.choose_qparams_fbgemm(a, b, qmin, qmax, sym)
    assert scale.dtype == F32 and zp.dtype == np.int32
    np.testing.assert_array_equal(scale, [rs])
    assert zp[0] == rz
    # the scalar twin used by the per-tensor module
    ss, sz = NF._choose_qparams_fbgemm_scalar(F32(a), F32(b), qmin, qmax, sym)
    np.testing.assert_array_equal([F32(ss)], [rs])
    assert sz == rz and type(sz) is int


@settings(max_examples=200)
@given(st.one_of(st.sampled_from(EDGE), st.floats(width=32)),
       st.one_of(st.sampled_from(EDGE), st.floats(width=32)),
       st.sampled_from([0.01, 0.3, 1.0, 1e-7]))
def test_moving_average_matches_reference(running, current, c):
    r = R.moving_average(running, current, c)
    v = NF._moving_average(np.array([running], F32), np.array([current], F32), c)
    np.testing.assert_array_equal(v, [r])
    np.testing.assert_array_equal([F32(NF._moving_average_scalar(F32(running), F32(current),
                                                                 c))], [r])


def test_choose_qparams_fbgemm_known_values():
    s, z = NF._choose_qparams_fbgemm(np.array([-1.0, np.inf, 0.0], F32),
                                     np.array([3.0, -np.inf, 0.0], F32), 0, 255, False)
    np.testing.assert_array_equal(s, F32([4.0 / 255, 0.1, 0.1]))
    np.testing.assert_array_equal(z, [64, 0, 0])
    # symmetric: the midpoint, rounded half to even (127.5 -> 128; -0.5 -> 0)
    _, z = NF._choose_qparams_fbgemm(np.array([-1.0], F32), np.array([1.0], F32), 0, 255, True)
    assert z[0] == 128
    _, z = NF._choose_qparams_fbgemm(np.array([-1.0], F32), np.array([1.0], F32), -128, 127,
                                     True)
    assert z[0] == 0
    # a tiny range is cut to the 6.1e-5 scale
    s, _ = NF._choose_qparams_fbgemm(np.array([0.0], F32), np.array([1e-4], F32), 0, 255, False)
    assert s[0] == F32(6.1e-5)
    s, z = NF._choose_qparams_fbgemm(np.array([np.nan], F32), np.array([1.0], F32), 0, 255,
                                     False)
    assert np.isnan(s[0]) and z[0] == -(2**31)


# ------------------------------------------------------------------- fused module

@settings(max_examples=40)
@given(st.lists(finite_arrays((3, 5)), min_size=1, max_size=4),
       st.sampled_from([("quint8", 0, 255, "per_tensor_affine"),
                        ("quint8", 0, 255, "per_tensor_symmetric"),
                        ("qint8", -128, 127, "per_tensor_symmetric"),
                        ("qint8", -8, 7, "per_tensor_affine")]),
       st.sampled_from([0.01, 0.5, 1.0]))
def test_fused_per_tensor_matches_reference(xs, cfg, c):
    dtype, qmin, qmax, qscheme = cfg
    m = Q.FusedMovingAvgObsFakeQuantize(
        observer=Q.MovingAverageMinMaxObserver, quant_min=qmin, quant_max=qmax,
        dtype=getattr(numq, dtype), qscheme=getattr(numq, qscheme), averaging_constant=c)
    ref = R.fused_per_tensor(xs, qmin, qmax, qscheme.endswith("symmetric"), c)
    for x, (y, mask, rmin, rmax, s, z) in zip(xs, ref):
        out = m(x)
        np.testing.assert_array_equal(out, y)
        g = np.arange(x.size, dtype=F32).reshape(x.shape) - 7
        np.testing.assert_array_equal(m.backward(g), g * mask)
        app = m.activation_post_process
        np.testing.assert_array_equal([app.min_val, app.max_val], [rmin, rmax])
        assert m.scale[0] == s and m.zero_point[0] == z


@settings(max_examples=30)
@given(st.lists(finite_arrays((4, 2, 3)), min_size=1, max_size=3),
       st.sampled_from([0.01, 1.0]))
def test_fused_per_channel_matches_reference(xs, c):
    m = Q.FusedMovingAvgObsFakeQuantize(
        observer=Q.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
        dtype=numq.qint8, qscheme=numq.per_channel_symmetric, averaging_constant=c)
    rmin = [np.inf] * 4
    rmax = [-np.inf] * 4
    for x in xs:
        out = m(x)
        for ch in range(4):
            rmin[ch] = R.moving_average(rmin[ch], x[ch].min(), c)
            rmax[ch] = R.moving_average(rmax[ch], x[ch].max(), c)
            s, z = R.choose_qparams_fbgemm(rmin[ch], rmax[ch], -128, 127, True)
            y, _ = R.fake_quant(x[ch], s, z, -128, 127)
            np.testing.assert_array_equal(out[ch], y)
            assert m.scale[ch] == s and m.zero_point[ch] == z


def test_fused_flags_are_int64_and_disabled_paths():
    m = Q.default_fused_act_fake_quant()
    assert m.fake_quant_enabled.dtype == np.int64 and m.observer_enabled.dtype == np.int64
    x = np.linspace(-1, 2, 12, dtype=F32).reshape(3, 4)
    m.disable_fake_quant()
    y = m(x)
    assert y is not x and np.array_equal(y, x)                  # a copy, as torch's clone
    np.testing.assert_array_equal(m.backward(np.ones_like(x)), np.ones_like(x))
    assert m.activation_post_process.min_val == F32(-1)         # still observing
    m.disable_observer()
    m.enable_fake_quant()
    m(x * 10)
    assert m.activation_post_process.max_val == F32(2)          # not updated
    assert m.scale[0] == F32(3.0 / 255)


def test_fused_empty_input_changes_nothing():
    m = Q.default_fused_act_fake_quant()
    y = m(np.zeros((0, 3), F32))
    assert y.shape == (0, 3)
    assert m.activation_post_process.min_val == np.inf
    assert m.backward(np.zeros((0, 3), F32)).shape == (0, 3)


# ------------------------------------------------------------------ FakeQuantize

@settings(max_examples=40)
@given(st.lists(finite_arrays((6, 7), -50, 50), min_size=1, max_size=3))
def test_fake_quantize_matches_reference(xs):
    m = Q.default_fake_quant()
    for x in xs:
        y = m(x)
        s, z = m.scale[0], int(m.zero_point[0])
        ry, rmask = R.fake_quant(x, s, z, 0, 127)
        np.testing.assert_array_equal(y, ry)
        g = np.full(x.shape, -1.5, F32)
        np.testing.assert_array_equal(m.backward(g), g * rmask)
        scale, zp = m.activation_post_process.calculate_qparams()
        np.testing.assert_array_equal(m.scale, scale)
        np.testing.assert_array_equal(m.zero_point, zp)


def test_per_channel_fake_quantize_uses_the_functional_op():
    m = Q.default_per_channel_weight_fake_quant()
    x = np.random.default_rng(0).normal(size=(5, 3, 2, 2)).astype(F32)
    y = m(x)
    assert m.scale.shape == (5,) and m.zero_point.dtype == np.int32
    ry, rmask = F.fake_quantize_per_channel_affine_cachemask(x, m.scale, m.zero_point, 0,
                                                             -128, 127)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(m.backward(np.ones_like(x)), rmask.astype(F32))


def test_float_qparams_embedding_fake_quant():
    m = Q.default_embedding_fake_quant()
    x = np.random.default_rng(1).normal(size=(10, 4)).astype(F32)
    y = m(x)
    assert m.zero_point.dtype == F32 and m.scale.shape == (10,)
    ry = F.fake_quantize_per_channel_affine(x, m.scale, m.zero_point, 0, 0, 255)
    np.testing.assert_array_equal(y, ry)


def test_disabled_fake_quant_returns_the_input():
    m = Q.default_fake_quant()
    m.disable_fake_quant()
    x = np.ones((2, 2), F32)
    assert m(x) is x
    assert m.backward(x) is x


def test_non_finite_scale_never_crashes():
    m = Q.default_fake_quant()
    x = np.array([1.0, np.nan, -2.0], F32)
    y = m(x)
    assert np.isnan(m.scale[0]) and np.isnan(y).all()
    assert (m.backward(np.ones(3, F32)) == 0).all()
    y, mask = NF._generic_fake_quant(np.array([1.0, np.inf], F32), np.array([np.inf], F32),
                                     np.array([0]), 0, 255, None)
    assert np.isnan(y).all() and mask.tolist() == [True, False]


# ------------------------------------------------------------------ _saved rule

def test_eval_forward_saves_nothing():
    m = Q.default_fake_quant().eval()
    x = np.linspace(-1, 1, 8, dtype=F32)
    m(x)
    assert m._saved is None
    with pytest.raises(RuntimeError, match="without a preceding"):
        m.backward(np.ones_like(x))


def test_backward_consumes_saved_and_swapping_works():
    m = Q.default_weight_fake_quant()
    x1 = np.linspace(-1, 1, 8, dtype=F32)
    x2 = np.linspace(-4, 4, 8, dtype=F32)   # a wider range: x1 is never clamped after it
    m(x1)
    s1 = m._saved
    m(x2)
    s2 = m._saved
    g = np.ones(8, F32)
    m._saved = s1
    d1 = m.backward(g)
    m._saved = s2
    d2 = m.backward(g)
    np.testing.assert_array_equal(d1, s1.astype(F32))
    np.testing.assert_array_equal(d2, s2.astype(F32))
    with pytest.raises(RuntimeError):
        m.backward(g)
    with pytest.raises(ValueError, match="shape"):
        m(x1)
        m.backward(np.ones(3, F32))


# ------------------------------------------------------- toggles with model.apply

def _model():
    inner = L.Sequential(Q.default_fake_quant(), L.ReLU())
    return L.Sequential(Q.default_fused_act_fake_quant(), inner,
                        Q.default_per_channel_weight_fake_quant(), L.Identity())


def _fqs(model):
    return [m for m in model.modules() if isinstance(m, Q.FakeQuantizeBase)]


def test_toggles_with_model_apply():
    model = _model()
    assert len(_fqs(model)) == 3
    model.apply(Q.disable_fake_quant)
    assert all(m.fake_quant_enabled[0] == 0 for m in _fqs(model))
    assert all(m.observer_enabled[0] == 1 for m in _fqs(model))
    model.apply(Q.disable_observer)
    assert all(m.observer_enabled[0] == 0 for m in _fqs(model))
    model.apply(Q.enable_fake_quant)
    model.apply(Q.enable_observer)
    assert all(m.fake_quant_enabled[0] == 1 and m.observer_enabled[0] == 1
               for m in _fqs(model))
    x = np.random.default_rng(2).normal(size=(4, 6)).astype(F32)
    model.apply(Q.disable_fake_quant)
    np.testing.assert_array_equal(model(x), np.maximum(x, 0))   # observers only
    learn = NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver)
    L.Sequential(learn).apply(Q.disable_observer)
    assert learn.static_enabled[0] == 0 and learn.observer_enabled[0] == 1


def test_observer_disabled_freezes_qparams():
    m = Q.default_fake_quant()
    x = np.linspace(-1, 1, 9, dtype=F32)
    m(x)
    scale, zp = m.scale.copy(), m.zero_point.copy()
    m.disable_observer()
    y = m(x * 3)
    np.testing.assert_array_equal(m.scale, scale)
    np.testing.assert_array_equal(y, F.fake_quantize_per_tensor_affine(x * 3, float(scale[0]),
                                                                        int(zp[0]), 0, 127))


# ------------------------------------------------------------------- state dicts

def test_state_dict_keys_dtypes_shapes():
    sd = Q.default_fake_quant().state_dict()
    assert [(k, v.dtype.name, v.shape) for k, v in sd.items()] == [
        ("fake_quant_enabled", "uint8", (1,)), ("observer_enabled", "uint8", (1,)),
        ("scale", "float32", (1,)), ("zero_point", "int32", (1,)),
        ("activation_post_process.eps", "float32", (1,)),
        ("activation_post_process.min_val", "float32", ()),
        ("activation_post_process.max_val", "float32", ())]
    sd = NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver).state_dict()
    assert list(sd)[:7] == ["scale", "zero_point", "fake_quant_enabled", "observer_enabled",
                            "static_enabled", "learning_enabled", "eps"]


def test_per_channel_state_dict_resizes_on_load():
    trained = Q.default_per_channel_weight_fake_quant()
    x = np.random.default_rng(3).normal(size=(7, 4)).astype(F32)
    trained(x)
    fresh = Q.default_per_channel_weight_fake_quant()
    assert fresh.scale.shape == (1,)
    fresh.load_state_dict({k: v.copy() for k, v in trained.state_dict().items()})
    assert fresh.scale.shape == (7,)
    for k, v in trained.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v)
    fresh.disable_observer()
    trained.disable_observer()
    np.testing.assert_array_equal(fresh(x * 2), trained(x * 2))


def test_fixed_qparams_buffers_stay_shared_after_load():
    m = Q.default_fixed_qparams_range_0to1_fake_quant()
    sd = {k: v.copy() for k, v in m.state_dict().items()}
    sd["scale"][...] = 0.5
    sd["activation_post_process.scale"][...] = 0.5
    m.load_state_dict(sd)
    assert m.scale is m.activation_post_process.scale and m.scale[0] == 0.5
    assert m.calculate_qparams()[0] is m.scale


def test_bad_state_dict_raises():
    m = Q.default_fake_quant()
    sd = m.state_dict()
    bad = dict(sd)
    bad["activation_post_process.min_val"] = np.zeros(3, F32)
    with pytest.raises(ValueError, match="size mismatch"):
        m.load_state_dict(bad)
    del bad["activation_post_process.min_val"]
    with pytest.raises(KeyError, match="Missing"):
        m.load_state_dict(bad)


# ------------------------------------------------------------------- learnable

def _learnable(per_channel=False, **kw):
    if per_channel:
        return NF._LearnableFakeQuantize(Q.MovingAveragePerChannelMinMaxObserver,
                                         quant_min=-128, quant_max=127, dtype=numq.qint8,
                                         qscheme=numq.per_channel_affine, channel_len=3,
                                         ch_axis=1, **kw)
    return NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver, **kw)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("grad_scaling", [False, True])
def test_learnable_gradients_wiring(per_channel, grad_scaling):
    m = _learnable(per_channel, use_grad_scaling=grad_scaling)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 3, 5)).astype(F32)
    g = rng.normal(size=x.shape).astype(F32)
    y = m(x)
    s, z = m.scale.data.copy(), m.zero_point.data.copy()
    dx = m.backward(g)
    gf = 1.0 / (x.size * m.quant_max) ** 0.5 if grad_scaling else 1.0
    if per_channel:
        ry = F._fake_quantize_learnable_per_channel_affine(x, s, z, 1, -128, 127, gf)
        rdx, rds, rdz = F._fake_quantize_learnable_per_channel_affine_backward(
            g, x, s, z, 1, -128, 127, gf)
    else:
        ry = F._fake_quantize_learnable_per_tensor_affine(x, s, z, 0, 255, gf)
        rdx, rds, rdz = F._fake_quantize_learnable_per_tensor_affine_backward(
            g, x, s, z, 0, 255, gf)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(dx, rdx)
    np.testing.assert_array_equal(m.scale.grad, rds)
    np.testing.assert_array_equal(m.zero_point.grad, rdz)
    m(x)
    m.backward(g)                       # accumulates
    np.testing.assert_allclose(m.scale.grad, 2 * rds, rtol=1e-6)


def test_learnable_toggles():
    m = _learnable()
    assert m.scale.requires_grad and m.learning_enabled[0] == 0
    m.enable_param_learning()
    assert (m.learning_enabled[0], m.static_enabled[0], m.fake_quant_enabled[0]) == (1, 0, 1)
    m.scale.data[...] = -1.0          # clamped to eps before use, as torch
    m(np.ones(4, F32))
    assert m.scale.data[0] == F32(np.finfo(F32).eps)
    m.enable_static_estimate()
    assert m.scale.requires_grad is False and m.static_enabled[0] == 1
    m.enable_static_observation()
    x = np.ones(4, F32)
    assert m(x) is x
    m.zero_point.data[...] = 300.4
    assert m.calculate_qparams()[1].tolist() == [255]
    assert m.calculate_qparams()[1].dtype == np.int64
    assert m.bitwidth == 8


def test_learnable_without_requires_grad_keeps_grad_none():
    m = _learnable()
    m.toggle_qparam_learning(False)
    m.toggle_observer_update(True)
    x = np.linspace(-1, 1, 10, dtype=F32)
    m(x)
    m.backward(np.ones_like(x))
    assert m.scale.grad is None and m.zero_point.grad is None


def test_learnable_symmetric_zeroes_zero_point():
    m = NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver, quant_min=-128,
                                  quant_max=127, dtype=numq.qint8,
                                  qscheme=numq.per_tensor_symmetric)
    m.enable_param_learning()
    m.zero_point.data[...] = 5.0
    m(np.linspace(-1, 1, 10, dtype=F32))
    assert m.zero_point.data[0] == 0


# ------------------------------------------------------------------------ errors

def test_constructor_errors():
    with pytest.raises(ValueError, match="less than or equal"):
        Q.FakeQuantize(quant_min=3, quant_max=2)
    with pytest.raises(ValueError, match="quant_max out of bound"):
        Q.FakeQuantize(quant_min=0, quant_max=256)
    with pytest.raises(ValueError, match="quant_min out of bound"):
        Q.FakeQuantize(quant_min=-129, quant_max=0, dtype=numq.qint8)
    # the dtype of a with_args factory is honoured
    with pytest.raises(ValueError, match="quant_min out of bound"):
        Q.FakeQuantize(observer=Q.MovingAverageMinMaxObserver.with_args(dtype=numq.quint8),
                       quant_min=-1, quant_max=100)
    with pytest.raises(ValueError, match="FixedQParamsObserver"):
        Q.FixedQParamsFakeQuantize(observer=Q.MinMaxObserver)
    with pytest.raises(ValueError, match="MovingAverageMinMaxObserver"):
        Q.FusedMovingAvgObsFakeQuantize(observer=Q.MinMaxObserver)
    with pytest.raises(ValueError, match="Channel size"):
        NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver, channel_len=0)
    with pytest.raises(ValueError, match="quant_max out of bound"):
        NF._LearnableFakeQuantize(Q.MovingAverageMinMaxObserver, quant_min=0, quant_max=300)
    with pytest.raises(TypeError):
        Q.FakeQuantizeBase()


def test_fused_input_errors():
    m = Q.default_fused_act_fake_quant()
    with pytest.raises(TypeError, match="float32"):
        m(np.zeros(4, np.float64))
    pc = Q.FusedMovingAvgObsFakeQuantize(
        observer=Q.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
        dtype=numq.qint8, qscheme=numq.per_channel_symmetric, ch_axis=1)
    with pytest.raises(ValueError, match="axis == 0"):
        pc(np.zeros((2, 3), F32))
    with pytest.raises(ValueError, match="ch_axis must be <"):
        Q.default_fused_per_channel_wt_fake_quant()(np.float32(1.0))


def test_factories_build_fresh_instances():
    a, b = Q.default_fake_quant(), Q.default_fake_quant()
    assert a is not b and a.scale is not b.scale
    f = Q.FakeQuantize.with_args(observer=Q.MovingAverageMinMaxObserver).with_args(
        quant_min=0, quant_max=63)
    assert f().quant_max == 63


def test_zero_dim_input_keeps_its_shape():
    for m in (Q.default_fused_act_fake_quant(), Q.default_fake_quant()):
        y = m(np.array(0.3, F32))
        assert y.shape == ()
        assert m.backward(np.array(1.0, F32)).shape == ()
