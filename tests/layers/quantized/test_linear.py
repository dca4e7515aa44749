"""Quantized Linear family: exact equality with the NumPy reference (every kernel variant),
state dicts, conversion, bad input.

Expected integer outputs come from ``reference_linear`` (independent of numq); float
outputs of the qint8 dynamic path are compared bit for bit; only the float16 dynamic
path (a float32 GEMM whose summation order is BLAS's) uses a tolerance.
"""
import copy
import math
import tracemalloc

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.layers.intrinsic as nni
import numq.layers.intrinsic.quantized as nniq
import numq.layers.intrinsic.quantized.dynamic as nniqd
import numq.layers.quantized as nnq
import numq.layers.quantized.dynamic as nnqd
import numq.layers.quantized.functional as qF
from numq.quantization import observer as obs
from numq.quantization import qconfig as qc

import reference_linear as R

PRIMES = (2, 3, 5, 7, 11, 13, 17, 31, 37, 61, 67)


def _shapes():
    """~30 seeded (M, K, N) triples in 1..70: the extremes, primes, and random picks."""
    fixed = [(1, 1, 1), (1, 70, 70), (70, 1, 1), (70, 67, 70), (64, 64, 64), (3, 5, 33),
             (2, 4, 32), (13, 31, 61), (17, 37, 2), (7, 11, 67)]
    rng = np.random.default_rng(20261127)
    pool = list(range(1, 71))
    while len(fixed) < 30:
        t = tuple(int(rng.choice(pool if rng.random() < 0.5 else PRIMES)) for _ in range(3))
        if t not in fixed:
            fixed.append(t)
    return fixed


SHAPES = _shapes()


def _qweight(rng, n, k, per_channel, zp=None):
    """A qint8 weight: random codes, a scale (or one per row) and zero point(s)."""
    codes = rng.integers(-128, 128, (n, k)).astype(np.int8)
    if per_channel:
        scales = rng.uniform(0.002, 0.05, n)
        zps = rng.integers(-5, 6, n) if zp is None else np.full(n, zp)
        return numq._make_per_channel_quantized_tensor(codes, scales, zps, 0, numq.qint8)
    return numq._make_per_tensor_quantized_tensor(
        codes, float(rng.uniform(0.002, 0.05)), int(rng.integers(-3, 4) if zp is None else zp),
        numq.qint8)


def _wparts(w):
    """(codes, scales (N,), zero points (N,), per_channel) of a numq weight QTensor."""
    codes = w.int_repr()
    n = codes.shape[0]
    if w.qscheme() is numq.per_channel_affine:
        return codes, w.q_per_channel_scales(), w.q_per_channel_zero_points(), True
    return codes, np.full(n, w.q_scale()), np.full(n, w.q_zero_point()), False


def _out_scale(rng, x_scale, w, k):
    """An output scale that spreads results over the code range instead of saturating."""
    ws = float(np.mean(_wparts(w)[1]))
    return float(x_scale * ws * 74 * 74 * math.sqrt(k) / rng.uniform(20, 60))


def _qinput(rng, shape, x_zp=None):
    x_zp = int(rng.integers(0, 256)) if x_zp is None else x_zp
    xq = rng.integers(0, 256, shape).astype(np.uint8)
    scale = float(rng.uniform(0.005, 0.05))
    return numq._make_per_tensor_quantized_tensor(xq, scale, x_zp, numq.quint8)


def _static_ref(x, w, bias, out_scale, out_zp, relu):
    codes, ws, wz, pc = _wparts(w)
    k = codes.shape[1]
    xq = x.int_repr().reshape(-1, k)
    y = R.qlinear_static_ref(xq, x.q_scale(), x.q_zero_point(), codes, ws, wz, pc, bias,
                             out_scale, out_zp, relu)
    return y.reshape(x.shape[:-1] + (codes.shape[0],))


def _static_layer(cls, w, bias, out_scale, out_zp):
    n, k = w.shape
    m = cls(k, n)
    m.set_weight_bias(w, bias)
    m.scale = out_scale
    m.zero_point = out_zp
    return m


CONFIGS = [  # (per_channel, bias, relu)
    (False, True, False), (True, True, True), (False, False, True), (True, False, False)]


# ------------------------------------------------------------------ static exactness
@pytest.mark.parametrize("per_channel,with_bias,relu", CONFIGS)
def test_static_matches_reference(per_channel, with_bias, relu, isa_variant):
    rng = np.random.default_rng(100 + CONFIGS.index((per_channel, with_bias, relu)))
    cls = nniq.LinearReLU if relu else nnq.Linear
    assert numq._isa.active() == isa_variant
    for M, K, N in SHAPES:
        x = _qinput(rng, (M, K))
        w = _qweight(rng, N, K, per_channel)
        os_ = _out_scale(rng, x.q_scale(), w, K)
        b = (rng.standard_normal(N) * os_ * 30).astype(np.float32) if with_bias else None
        ozp = int(rng.integers(0, 256))
        y = _static_layer(cls, w, b, os_, ozp)(x)
        assert y.dtype is numq.quint8 and y.shape == (M, N)
        assert (y.q_scale(), y.q_zero_point()) == (os_, ozp)
        want = _static_ref(x, w, b, os_, ozp, relu)
        np.testing.assert_array_equal(y.int_repr(), want, err_msg=f"M,K,N={M, K, N}")


@pytest.mark.parametrize("x_zp,out_zp,w_zp", [(0, 0, -128), (255, 255, 127), (0, 255, 127),
                                              (255, 0, -128)])
def test_static_extreme_zero_points(x_zp, out_zp, w_zp, isa_variant):
    rng = np.random.default_rng(x_zp + 3 * out_zp + 7 * w_zp + 1000)
    for M, K, N in [(5, 67, 37), (70, 64, 33), (1, 3, 1)]:
        x = _qinput(rng, (M, K), x_zp)
        w = _qweight(rng, N, K, False, zp=w_zp)
        os_ = _out_scale(rng, x.q_scale(), w, K) * 4
        b = (rng.standard_normal(N) * os_ * 30).astype(np.float32)
        for cls, relu in ((nnq.Linear, False), (nniq.LinearReLU, True)):
            y = _static_layer(cls, w, b, os_, out_zp)(x)
            np.testing.assert_array_equal(y.int_repr(), _static_ref(x, w, b, os_, out_zp, relu))


def test_static_3d_input_and_functional(isa_variant):
    rng = np.random.default_rng(5)
    for per_channel in (False, True):
        x = _qinput(rng, (3, 4, 13))
        w = _qweight(rng, 7, 13, per_channel)
        os_ = _out_scale(rng, x.q_scale(), w, 13)
        b = rng.standard_normal(7).astype(np.float32)
        y = _static_layer(nnq.Linear, w, b, os_, 100)(x)
        assert y.shape == (3, 4, 7)
        want = _static_ref(x, w, b, os_, 100, False)
        np.testing.assert_array_equal(y.int_repr(), want)
        yf = qF.linear(x, w, b, os_, 100)
        np.testing.assert_array_equal(yf.int_repr(), want)
        # functional's default output qparams are the input's
        yd = qF.linear(x, w, b)
        assert (yd.q_scale(), yd.q_zero_point()) == (x.q_scale(), x.q_zero_point())
        np.testing.assert_array_equal(
            yd.int_repr(), _static_ref(x, w, b, x.q_scale(), x.q_zero_point(), False))


def test_static_non_contiguous_input_and_empty_rows():
    rng = np.random.default_rng(6)
    x = _qinput(rng, (9, 20))
    xt = x.transpose(0, 1)[:, :11].transpose(0, 1)     # a strided (11, 20) view
    w = _qweight(rng, 5, 20, True)
    m = _static_layer(nnq.Linear, w, None, 0.5, 10)
    np.testing.assert_array_equal(m(xt).int_repr(), _static_ref(xt, w, None, 0.5, 10, False))
    empty = numq._make_per_tensor_quantized_tensor(np.zeros((0, 20), np.uint8), 0.1, 0)
    assert m(empty).shape == (0, 5)


# ----------------------------------------------------------------- dynamic exactness
def _dyn_ref(x, w, bias, relu):
    codes, ws, wz, _ = _wparts(w)
    k = codes.shape[1]
    y = R.qlinear_dynamic_ref(x.reshape(-1, k), codes, ws, wz, bias, relu)
    return y.reshape(x.shape[:-1] + (codes.shape[0],))


@pytest.mark.parametrize("per_channel,with_bias,relu", CONFIGS)
def test_dynamic_matches_reference(per_channel, with_bias, relu, isa_variant):
    rng = np.random.default_rng(200 + CONFIGS.index((per_channel, with_bias, relu)))
    cls = nniqd.LinearReLU if relu else nnqd.Linear
    for M, K, N in SHAPES:
        x = (rng.standard_normal((M, K)) * rng.uniform(0.1, 4) + rng.uniform(-1, 1)
             ).astype(np.float32)
        w = _qweight(rng, N, K, per_channel)
        b = rng.standard_normal(N).astype(np.float32) if with_bias else None
        m = cls(K, N)
        m.set_weight_bias(w, b)
        y = m(x)
        assert y.dtype == np.float32 and y.shape == (M, N)
        want = _dyn_ref(x, w, b, relu)
        # bit-for-bit, signed zeros included
        np.testing.assert_array_equal(y.view(np.int32), want.view(np.int32),
                                      err_msg=f"M,K,N={M, K, N}")


@pytest.mark.parametrize("kind", ["zeros", "tiny", "positive", "negative", "constant", "3d"])
def test_dynamic_input_ranges(kind, isa_variant):
    """Inputs that hit fbgemm's special cases: scale 0 -> 0.1, scales below 6.1e-5
    raised with the range rescaled, ranges on one side of 0, a constant, 3-d input."""
    rng = np.random.default_rng(11)
    shape = (2, 3, 9) if kind == "3d" else (4, 9)
    x = {"zeros": np.zeros(shape, np.float32),
         "tiny": rng.uniform(-1e-4, 2e-4, shape).astype(np.float32),
         "positive": rng.uniform(0.5, 3, shape).astype(np.float32),
         "negative": rng.uniform(-3, -0.5, shape).astype(np.float32),
         "constant": np.full(shape, 0.37, np.float32),
         "3d": rng.standard_normal(shape).astype(np.float32)}[kind]
    for per_channel in (False, True):
        w = _qweight(rng, 6, 9, per_channel)
        b = rng.standard_normal(6).astype(np.float32)
        for cls, relu in ((nnqd.Linear, False), (nniqd.LinearReLU, True)):
            m = cls(9, 6)
            m.set_weight_bias(w, b)
            np.testing.assert_array_equal(m(x).view(np.int32),
                                          _dyn_ref(x, w, b, relu).view(np.int32))


def test_dynamic_casts_other_float_dtypes_and_empty_rows():
    rng = np.random.default_rng(12)
    w = _qweight(rng, 4, 6, True)
    m = nnqd.Linear(6, 4)
    m.set_weight_bias(w, None)
    x = rng.standard_normal((3, 6))
    y = m(x)                                        # float64 in: computed in float32
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, _dyn_ref(x.astype(np.float32), w, None, False))
    assert m(np.zeros((0, 6), np.float32)).shape == (0, 4)


def test_dynamic_float16():
    rng = np.random.default_rng(13)
    for cls, relu in ((nnqd.Linear, False), (nniqd.LinearReLU, True)):
        w = rng.standard_normal((5, 8)).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        m = cls(8, 5, dtype=numq.float16)
        m.set_weight_bias(w, b)
        # weight() holds the float16-rounded values, as float32 (torch's unpack)
        np.testing.assert_array_equal(m.weight(), w.astype(np.float16).astype(np.float32))
        x = rng.standard_normal((2, 3, 8)).astype(np.float32)
        y = m(x)
        assert y.dtype == np.float32 and y.shape == (2, 3, 5)
        # float32 GEMM vs a float64 reference: rounding of 8-term sums only
        np.testing.assert_allclose(y, R.linear_fp16_ref(x, w, b, relu), rtol=1e-5, atol=1e-5)
    m = nnqd.Linear(2, 1, dtype=numq.float16)
    with pytest.warns(UserWarning, match="clipped"):
        m.set_weight_bias(np.array([[1e5, -7e4]], np.float32), None)
    np.testing.assert_array_equal(m.weight(), [[65504.0, -65504.0]])


# ------------------------------------------------------------------ layer behaviour
def test_defaults_attributes_and_repr():
    m = nnq.Linear(5, 3)
    assert (m.in_features, m.out_features, m.scale, m.zero_point) == (5, 3, 1.0, 0)
    w = m.weight()
    assert w.dtype is numq.qint8 and w.shape == (3, 5) and w.q_scale() == 1.0
    np.testing.assert_array_equal(w.int_repr(), np.zeros((3, 5), np.int8))
    np.testing.assert_array_equal(m.bias(), np.zeros(3, np.float32))
    assert nnq.Linear(5, 3, bias_=False).bias() is None
    assert nniq.LinearReLU(5, 3, bias=False).bias() is None
    assert repr(m) == ("QuantizedLinear(in_features=5, out_features=3, scale=1.0, "
                       "zero_point=0, qscheme=numq.per_tensor_affine)")
    assert repr(nniq.LinearReLU(2, 2)).startswith("QuantizedLinearReLU(in_features=2")
    assert repr(nnqd.Linear(5, 3)) == ("DynamicQuantizedLinear(in_features=5, out_features=3, "
                                       "dtype=numq.qint8, qscheme=numq.per_tensor_affine)")
    assert repr(nniqd.LinearReLU(5, 3, dtype=numq.float16)) == (
        "DynamicQuantizedLinearReLU(in_features=5, out_features=3, dtype=numq.float16)")
    assert list(dict(m.named_children())) == ["_packed_params"]


def test_weight_round_trip_and_single_copy():
    rng = np.random.default_rng(14)
    for per_channel in (False, True):
        w = _qweight(rng, 37, 11, per_channel)
        m = nnq.Linear(11, 37)
        m.set_weight_bias(w, None)
        got = m.weight()
        assert got.qscheme() is w.qscheme()
        np.testing.assert_array_equal(got.int_repr(), w.int_repr())
        if per_channel:
            np.testing.assert_array_equal(got.q_per_channel_scales(), w.q_per_channel_scales())
            np.testing.assert_array_equal(got.q_per_channel_zero_points(),
                                          w.q_per_channel_zero_points())
            assert got.q_per_channel_axis() == 0
        else:
            assert (got.q_scale(), got.q_zero_point()) == (w.q_scale(), w.q_zero_point())
        # the layer keeps no unpacked copy: only the packed form (<= 1.05x + O(N))
        packed = m._packed_params._packed_params
        # O(1): 2 KiB of slack after the codes (AMX tile loads may read past the last k group)
        assert packed.nbytes <= 1.05 * 37 * 11 + 64 * 37 + 2048 + 256
        assert not any(isinstance(v, (np.ndarray, numq.QTensor))
                       for v in vars(m._packed_params).values() if v is not m.bias())


def test_forward_allocates_nothing_proportional_to_the_weight():
    rng = np.random.default_rng(15)
    K = N = 512                                      # 256 KiB of weight codes
    w = _qweight(rng, N, K, True)
    ms = nnq.Linear(K, N)
    ms.set_weight_bias(w, np.zeros(N, np.float32))
    md = nnqd.Linear(K, N)
    md.set_weight_bias(w, np.zeros(N, np.float32))
    mh = nnqd.Linear(K, N, dtype=numq.float16)
    mh.set_weight_bias(rng.standard_normal((N, K)).astype(np.float32), None)
    xq = _qinput(rng, (1, K))
    xf = rng.standard_normal((1, K)).astype(np.float32)
    for m, x in ((ms, xq), (md, xf), (mh, xf)):
        m(x)                                         # compile / warm up first
        tracemalloc.start()
        m(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < K * N // 8, (type(m).__name__, peak)


def test_state_dict_round_trip():
    rng = np.random.default_rng(16)
    cases = [(nnq.Linear, _qweight(rng, 6, 10, False)),
             (nniq.LinearReLU, _qweight(rng, 6, 10, True)),
             (nnqd.Linear, _qweight(rng, 6, 10, True)),
             (nnqd.Linear, rng.standard_normal((6, 10)).astype(np.float32))]
    for i, (cls, w) in enumerate(cases):
        fp16 = not isinstance(w, numq.QTensor)
        m = cls(10, 6, dtype=numq.float16 if fp16 else numq.qint8)
        m.set_weight_bias(w, rng.standard_normal(6).astype(np.float32) if i % 2 else None)
        if not issubclass(cls, nnqd.Linear):
            m.scale, m.zero_point = 0.1234567890123, 77
        sd = {k: np.array(v, copy=True) for k, v in m.state_dict().items()}
        assert all(isinstance(v, np.ndarray) for v in sd.values())
        assert list(sd)[:2] == ["scale", "zero_point"]
        assert sd["_packed_params.weight"].dtype == (np.float16 if fp16 else np.int8)
        assert ("_packed_params.bias" in sd) == bool(i % 2)
        fresh = cls(10, 6)                           # qint8, bias, default qparams
        fresh.load_state_dict(sd)
        assert (fresh.scale, fresh.zero_point) == (m.scale, m.zero_point)
        assert fresh._packed_params.dtype is m._packed_params.dtype
        sd2 = fresh.state_dict()
        assert list(sd2) == list(sd)
        for k in sd:
            assert sd2[k].dtype == sd[k].dtype and sd2[k].shape == sd[k].shape, k
            np.testing.assert_array_equal(sd2[k], sd[k], err_msg=k)
        x = (_qinput(rng, (3, 10)) if cls in (nnq.Linear, nniq.LinearReLU)
             else rng.standard_normal((3, 10)).astype(np.float32))
        ya, yb = m(x), fresh(x)
        if isinstance(ya, numq.QTensor):
            ya, yb = ya.int_repr(), yb.int_repr()
        np.testing.assert_array_equal(ya, yb)


def test_state_dict_errors():
    m = nnq.Linear(4, 3)
    sd = m.state_dict()
    with pytest.raises(KeyError, match="weight_axis"):
        nnq.Linear(4, 3).load_state_dict({k: v for k, v in sd.items()
                                          if k != "_packed_params.weight_axis"})
    with pytest.raises(ValueError, match="size mismatch"):
        nnq.Linear(5, 3).load_state_dict(sd)
    f16 = nnqd.Linear(4, 3, dtype=numq.float16).state_dict()
    with pytest.raises(ValueError, match="float16"):
        nnq.Linear(4, 3).load_state_dict(f16)   # a static layer has no float16 path
    bad = dict(sd, scale=np.array(-1.0))
    with pytest.raises(ValueError, match="scale"):
        nnq.Linear(4, 3).load_state_dict(bad)


def test_deepcopy_is_independent():
    rng = np.random.default_rng(17)
    m = _static_layer(nnq.Linear, _qweight(rng, 3, 4, True), np.ones(3, np.float32), 0.2, 5)
    c = copy.deepcopy(m)
    m.set_weight_bias(_qweight(rng, 3, 4, False), None)
    assert c.bias() is not None and c.weight().qscheme() is numq.per_channel_affine


def test_convert_torch_style_state_dict():
    """The converter reads quantized tensors through int_repr / q_scale / ...; a numq
    QTensor has the same methods, so torch's layout is checked here without torch."""
    rng = np.random.default_rng(18)
    w = _qweight(rng, 3, 4, True)
    b = rng.standard_normal(3).astype(np.float32)
    torch_style = {"fc.scale": np.float32(0.25), "fc.zero_point": np.int64(9),
                   "fc._packed_params.dtype": "torch.qint8",
                   "fc._packed_params._packed_params": (w, b), "other.weight": np.ones(2)}
    sd = nnq.linear.convert_torch_linear_state_dict(torch_style)
    assert sorted(sd) == sorted(["fc.scale", "fc.zero_point", "fc._packed_params.weight",
                                 "fc._packed_params.weight_scale",
                                 "fc._packed_params.weight_zero_point",
                                 "fc._packed_params.weight_axis", "fc._packed_params.bias",
                                 "other.weight"])
    m = nnq.Linear(4, 3)
    m.load_state_dict({k[3:]: v for k, v in sd.items() if k.startswith("fc.")})
    assert (m.scale, m.zero_point) == (0.25, 9)
    np.testing.assert_array_equal(m.weight().int_repr(), w.int_repr())
    np.testing.assert_array_equal(m.weight().q_per_channel_scales(), w.q_per_channel_scales())
    np.testing.assert_array_equal(m.bias(), b)


# ------------------------------------------------------------------------ conversion
def _observed_float_linear(rng, qconfig, fused=False, k=12, n=7):
    lin = L.Linear(k, n, generator=int(rng.integers(1 << 30)))
    mod = nni.LinearReLU(lin, L.ReLU()) if fused else lin
    mod.qconfig = qconfig
    mod.activation_post_process = qconfig.activation()
    mod.activation_post_process(rng.standard_normal((8, n)).astype(np.float32) * 3)
    return mod


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("qconfig", [qc.default_qconfig, qc.default_per_channel_qconfig],
                         ids=["per_tensor", "per_channel"])
def test_from_float_static(qconfig, fused):
    rng = np.random.default_rng(19)
    mod = _observed_float_linear(rng, qconfig, fused)
    cls = nniq.LinearReLU if fused else nnq.Linear
    q = cls.from_float(mod)
    lin = mod[0] if fused else mod
    wobs = qconfig.weight()
    wobs(lin.weight.data)
    s, z = wobs.calculate_qparams()
    if wobs.qscheme in (numq.per_channel_symmetric, numq.per_channel_affine):
        want = numq.quantize_per_channel(lin.weight.data, s.astype(np.float64), z, 0, numq.qint8)
        np.testing.assert_array_equal(q.weight().q_per_channel_scales(), s.astype(np.float64))
    else:
        want = numq.quantize_per_tensor(lin.weight.data, float(s[0]), int(z[0]), numq.qint8)
        assert q.weight().q_scale() == float(s[0])
    np.testing.assert_array_equal(q.weight().int_repr(), want.int_repr())
    np.testing.assert_array_equal(q.bias(), lin.bias.data)
    a_s, a_z = mod.activation_post_process.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(a_s[0]), int(a_z[0]))
    assert type(q) is cls


@pytest.mark.filterwarnings("ignore:reduce_range will be deprecated")
@pytest.mark.parametrize("precomputed", [False, True])
def test_from_float_qat_style_module(precomputed):
    """A module with ``weight_fake_quant`` (the QAT path) takes its weight qparams from
    that fake quant; with ``use_precomputed_fake_quant`` the weight is not re-observed."""
    from numq.quantization import fake_quantize as fq
    rng = np.random.default_rng(26)
    mod = L.Linear(10, 4, generator=5)
    mod.weight_fake_quant = fq.default_per_channel_weight_fake_quant()
    mod.activation_post_process = fq.default_fake_quant()
    mod.activation_post_process(rng.standard_normal((6, 4)).astype(np.float32))
    if precomputed:  # observed on a scaled weight: re-observing would change the qparams
        mod.weight_fake_quant(mod.weight.data * 2)
    s, z = mod.weight_fake_quant.calculate_qparams() if precomputed else (None, None)
    q = nnq.Linear.from_float(mod, use_precomputed_fake_quant=precomputed)
    if not precomputed:
        s, z = mod.weight_fake_quant.calculate_qparams()
    want = numq.quantize_per_channel(mod.weight.data, s.astype(np.float64), z, 0, numq.qint8)
    np.testing.assert_array_equal(q.weight().int_repr(), want.int_repr())
    np.testing.assert_array_equal(q.weight().q_per_channel_scales(), s.astype(np.float64))
    a_s, a_z = mod.activation_post_process.calculate_qparams()
    assert (q.scale, q.zero_point) == (float(a_s[0]), int(a_z[0]))


@pytest.mark.parametrize("qconfig", [qc.default_dynamic_qconfig, qc.per_channel_dynamic_qconfig,
                                     qc.float16_dynamic_qconfig, None])
def test_from_float_dynamic(qconfig):
    rng = np.random.default_rng(20)
    lin = L.Linear(9, 4, generator=3)
    lin.qconfig = qconfig
    q = nnqd.Linear.from_float(lin)
    if qconfig is qc.float16_dynamic_qconfig:
        assert q._packed_params.dtype is numq.float16
        np.testing.assert_array_equal(q.weight(),
                                      lin.weight.data.astype(np.float16).astype(np.float32))
    else:
        assert q.weight().dtype is numq.qint8
        scheme = (numq.per_channel_affine if qconfig is qc.per_channel_dynamic_qconfig
                  else numq.per_tensor_affine)
        assert q.weight().qscheme() is scheme
        x = rng.standard_normal((2, 9)).astype(np.float32)
        # the dequantized weight approximates the float one: outputs close to float Linear
        np.testing.assert_allclose(q(x), lin(x), atol=0.1)
    fused = nni.LinearReLU(L.Linear(9, 4), L.ReLU())
    fused.qconfig = qconfig
    qr = nniqd.LinearReLU.from_float(fused)
    assert type(qr) is nniqd.LinearReLU


def test_from_reference():
    rng = np.random.default_rng(21)
    w = _qweight(rng, 3, 5, True)

    class Ref:                                           # the reference module's interface
        in_features, out_features, bias, weight_dtype = 5, 3, np.ones(3, np.float32), numq.qint8

        def get_quantized_weight(self):
            return w

    q = nnq.Linear.from_reference(Ref(), 0.5, 3)
    assert (q.scale, q.zero_point) == (0.5, 3)
    np.testing.assert_array_equal(q.weight().int_repr(), w.int_repr())
    d = nnqd.Linear.from_reference(Ref())
    np.testing.assert_array_equal(d.bias(), np.ones(3))


def test_fused_float_linear_relu():
    rng = np.random.default_rng(22)
    lin = L.Linear(4, 3, generator=1)
    f = nni.LinearReLU(lin, L.ReLU())
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(f(x), np.maximum(lin(x), 0))
    assert isinstance(f, nni.fused._FusedModule) and isinstance(f, L.Sequential)
    with pytest.raises(TypeError, match="Linear and ReLU6"):
        nni.LinearReLU(lin, L.ReLU6())


# ------------------------------------------------------------------------ bad input
def _bad_input_layers():
    rng = np.random.default_rng(23)
    s = _static_layer(nnq.Linear, _qweight(rng, 3, 4, False), None, 0.1, 0)
    return s, _qinput(rng, (2, 4))


def test_bad_input_not_quantized():
    s, _ = _bad_input_layers()
    with pytest.raises(TypeError, match="Linear: input must be a quint8 QTensor"):
        s(np.ones((2, 4), np.float32))


def test_bad_input_dtype():
    s, _ = _bad_input_layers()
    x = numq.quantize_per_tensor(np.ones((2, 4), np.float32), 0.1, 0, numq.qint8)
    with pytest.raises(TypeError, match="dtype numq.quint8"):
        s(x)
    with pytest.raises(TypeError, match="must be a float16/float32/float64 array"):
        nnqd.Linear(4, 3)(np.ones((2, 4), np.int32))
    with pytest.raises(TypeError, match="dynamic layer quantizes its input itself"):
        nnqd.Linear(4, 3)(_bad_input_layers()[1])


def test_bad_input_per_channel_input():
    s, _ = _bad_input_layers()
    x = numq.quantize_per_channel(np.ones((2, 4), np.float32), [0.1] * 4, [0] * 4, 1,
                                  numq.quint8)
    with pytest.raises(ValueError, match="quantized per tensor"):
        s(x)


def test_bad_input_shape():
    s, x = _bad_input_layers()
    wide = numq.quantize_per_tensor(np.ones((2, 5), np.float32), 0.1, 0, numq.quint8)
    with pytest.raises(ValueError, match="in_features=4"):
        s(wide)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        s(x[0])
    with pytest.raises(ValueError, match="in_features=4"):
        nnqd.Linear(4, 3)(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="in_features=4"):
        qF.linear(wide, s.weight())


def test_bad_output_qparams():
    s, _ = _bad_input_layers()
    for v in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale must be a finite positive"):
            s.scale = v
    with pytest.raises(ValueError, match="zero_point must be <= 255"):
        s.zero_point = 256
    with pytest.raises(ValueError, match="scale must be a finite positive"):
        qF.linear(_bad_input_layers()[1], s.weight(), None, 0.0, 0)


def test_bad_weight():
    rng = np.random.default_rng(24)
    s = nnq.Linear(4, 3)
    with pytest.raises(TypeError, match="weight must be a qint8 QTensor"):
        s.set_weight_bias(np.ones((3, 4), np.float32), None)
    with pytest.raises(TypeError, match="dtype numq.qint8"):
        s.set_weight_bias(numq.quantize_per_tensor(np.ones((3, 4), np.float32), 0.1, 0,
                                                   numq.quint8), None)
    with pytest.raises(ValueError, match=r"weight must have shape \(3, 4\)"):
        s.set_weight_bias(_qweight(rng, 3, 5, False), None)
    with pytest.raises(ValueError, match="axis 0"):
        s.set_weight_bias(numq.quantize_per_channel(np.ones((3, 4), np.float32), [0.1] * 4,
                                                    [0] * 4, 1, numq.qint8), None)
    with pytest.raises(ValueError, match="2-d"):
        qF.linear(_qinput(rng, (2, 4)), _qweight(rng, 12, 1, False).reshape(3, 4, 1))


def test_bad_bias():
    rng = np.random.default_rng(25)
    s = nnq.Linear(4, 3)
    w = _qweight(rng, 3, 4, False)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        s.set_weight_bias(w, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        s.set_weight_bias(w, np.zeros((3, 1), np.float32))
    with pytest.raises(TypeError, match="bias must be a float array"):
        s.set_weight_bias(w, np.zeros(3, np.int64))


def test_bad_dynamic_input_values():
    m = nnqd.Linear(4, 3)
    for v in (np.nan, np.inf):
        x = np.ones((2, 4), np.float32)
        x[1, 2] = v
        with pytest.raises(ValueError, match="must be finite"):
            m(x)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="dtype must be one of numq.qint8"):
        nnq.Linear(4, 3, dtype=numq.float16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        nnqd.Linear(4, 3, dtype=numq.quint8)
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        nnq.Linear(0, 3)
    with pytest.raises(TypeError, match="out_features must be an int"):
        nnq.Linear(4, 3.0)


def test_bad_from_float():
    lin = L.Linear(4, 3)
    with pytest.raises(ValueError, match="qconfig"):
        nnq.Linear.from_float(lin)
    with pytest.raises(TypeError, match="only works for"):
        nnq.Linear.from_float(L.Conv1d(1, 1, 1))
    with pytest.raises(TypeError, match="only works for LinearReLU"):
        nniq.LinearReLU.from_float(lin)
    lin.qconfig = qc.default_qconfig
    with pytest.raises(ValueError, match="activation_post_process"):
        nnq.Linear.from_float(lin)
    with pytest.raises(ValueError, match="qconfig"):
        nnqd.Linear.from_float(L.Linear(4, 3))
    lin2 = L.Linear(4, 3)
    lin2.qconfig = qc.QConfig(activation=obs.PlaceholderObserver,
                              weight=obs.MinMaxObserver.with_args(dtype=numq.quint8))
    with pytest.raises(ValueError, match="qint8 or float16"):
        nnqd.Linear.from_float(lin2)
