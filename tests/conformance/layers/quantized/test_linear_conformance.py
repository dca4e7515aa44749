"""Quantized Linear family against torch 2.13 (engine x86): same weights, same inputs.

Static and qint8 dynamic outputs are compared bit for bit (every kernel variant this CPU
has); the float16 dynamic path with a tolerance (fbgemm's fp16 GEMM sums in its own
order). Also: ``from_float`` on the same float weights and observer data, torch state
dicts converted with ``convert_torch_linear_state_dict``, ``repr``, and that the inputs
torch refuses are refused.
"""
import math
import warnings

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.layers.intrinsic as nni_n
import numq.layers.intrinsic.quantized as nniq_n
import numq.layers.intrinsic.quantized.dynamic as nniqd_n
import numq.layers.quantized as nnq_n
import numq.layers.quantized.dynamic as nnqd_n
import numq.layers.quantized.functional as qF_n
from numq import _isa
from numq.quantization import qconfig as qc_n

torch = pytest.importorskip("torch")
import torch.ao.nn.intrinsic as nni_t  # noqa: E402
import torch.ao.nn.intrinsic.quantized as nniq_t  # noqa: E402
import torch.ao.nn.intrinsic.quantized.dynamic as nniqd_t  # noqa: E402
import torch.ao.nn.quantized as nnq_t  # noqa: E402
import torch.ao.nn.quantized.dynamic as nnqd_t  # noqa: E402
import torch.ao.nn.quantized.functional as qF_t  # noqa: E402
import torch.ao.quantization as tq  # noqa: E402

# torch 2.13 warns that quantized tensors are deprecated, and about clipped fp16 weights
pytestmark = [pytest.mark.filterwarnings("ignore:.*deprecated.*:UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(autouse=True, scope="module")
def _x86_engine():
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    yield
    torch.backends.quantized.engine = old


@pytest.fixture(params=_isa.ISA_VARIANTS)
def variant(request):
    if request.param not in _isa.supported_variants():
        pytest.skip(f"kernel variant {request.param} is not available here")
    with _isa.forced(request.param):
        yield request.param


SHAPES = [(1, 1, 1), (1, 70, 70), (70, 67, 70), (5, 64, 32), (3, 5, 33), (13, 31, 61),
          (17, 37, 2), (7, 11, 67), (2, 3, 4), (29, 43, 19)]


def _weight_pair(rng, n, k, per_channel, zp=None):
    """The same qint8 weight as a numq QTensor and a torch quantized tensor."""
    codes = rng.integers(-128, 128, (n, k)).astype(np.int8)
    if per_channel:
        s = rng.uniform(0.002, 0.05, n)
        z = rng.integers(-5, 6, n) if zp is None else np.full(n, zp)
        return (numq._make_per_channel_quantized_tensor(codes, s, z, 0, numq.qint8),
                torch._make_per_channel_quantized_tensor(torch.tensor(codes), torch.tensor(s),
                                                         torch.tensor(z), 0))
    s = float(rng.uniform(0.002, 0.05))
    z = int(rng.integers(-3, 4)) if zp is None else zp
    return (numq._make_per_tensor_quantized_tensor(codes, s, z, numq.qint8),
            torch._make_per_tensor_quantized_tensor(torch.tensor(codes), s, z))


def _input_pair(rng, shape, zp=None):
    codes = rng.integers(0, 256, shape).astype(np.uint8)
    s = float(rng.uniform(0.005, 0.05))
    z = int(rng.integers(0, 256)) if zp is None else zp
    return (numq._make_per_tensor_quantized_tensor(codes, s, z, numq.quint8),
            torch._make_per_tensor_quantized_tensor(torch.tensor(codes), s, z))


def _pair_layers(cls_n, cls_t, wn, wt, b, scale=None, zp=None):
    n, k = wn.shape
    mn, mt = cls_n(k, n), cls_t(k, n)
    mn.set_weight_bias(wn, b)
    mt.set_weight_bias(wt, None if b is None else torch.tensor(b))
    if scale is not None:
        mn.scale, mn.zero_point = scale, zp
        mt.scale, mt.zero_point = scale, zp
    return mn, mt


def _assert_q_equal(yn, yt):
    assert tuple(yn.shape) == tuple(yt.shape)
    assert (yn.q_scale(), yn.q_zero_point()) == (yt.q_scale(), yt.q_zero_point())
    np.testing.assert_array_equal(yn.int_repr(), yt.int_repr().numpy())


def _assert_bits_equal(yn, yt):
    yt = yt.detach().numpy()
    assert yn.shape == yt.shape and yn.dtype == yt.dtype
    np.testing.assert_array_equal(yn.view(np.int32), yt.view(np.int32))


# ------------------------------------------------------------------------ static
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
def test_static_bit_exact(per_channel, relu, variant):
    rng = np.random.default_rng(per_channel * 2 + relu)
    cls_n, cls_t = (nniq_n.LinearReLU, nniq_t.LinearReLU) if relu else (nnq_n.Linear, nnq_t.Linear)
    for i, (M, K, N) in enumerate(SHAPES):
        xn, xt = _input_pair(rng, (2, M, K) if i % 3 == 2 else (M, K),
                             zp=(0, 255, None)[i % 3])
        wn, wt = _weight_pair(rng, N, K, per_channel, zp=(None, -128, 127)[i % 3]
                              if not per_channel else None)
        out_scale = float(np.mean(xn.q_scale() * 0.02 * 74 * 74 * math.sqrt(K)
                                  / rng.uniform(20, 60)))
        b = (rng.standard_normal(N) * out_scale * 30).astype(np.float32) if i % 2 else None
        mn, mt = _pair_layers(cls_n, cls_t, wn, wt, b, out_scale, (0, 255, 128)[i % 3])
        _assert_q_equal(mn(xn), mt(xt))


def test_functional_linear():
    rng = np.random.default_rng(7)
    for per_channel in (False, True):
        xn, xt = _input_pair(rng, (3, 2, 21))
        wn, wt = _weight_pair(rng, 9, 21, per_channel)
        b = rng.standard_normal(9).astype(np.float32)
        _assert_q_equal(qF_n.linear(xn, wn, b, 0.3, 7),
                        qF_t.linear(xt, wt, torch.tensor(b), 0.3, 7))
        _assert_q_equal(qF_n.linear(xn, wn), qF_t.linear(xt, wt))


# ----------------------------------------------------------------------- dynamic
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
def test_dynamic_bit_exact(per_channel, relu, variant):
    rng = np.random.default_rng(10 + per_channel * 2 + relu)
    cls_n, cls_t = ((nniqd_n.LinearReLU, nniqd_t.LinearReLU) if relu
                    else (nnqd_n.Linear, nnqd_t.Linear))
    for i, (M, K, N) in enumerate(SHAPES):
        shape = (3, M, K) if i % 4 == 3 else (M, K)
        x = [rng.standard_normal(shape) * rng.uniform(0.1, 5) + rng.uniform(-1, 1),
             np.zeros(shape), rng.uniform(-1e-4, 2e-4, shape), rng.uniform(0.5, 2, shape),
             -rng.uniform(0.5, 2, shape)][i % 5].astype(np.float32)
        wn, wt = _weight_pair(rng, N, K, per_channel)
        b = rng.standard_normal(N).astype(np.float32) if i % 2 else None
        mn, mt = _pair_layers(cls_n, cls_t, wn, wt, b)
        _assert_bits_equal(mn(x), mt(torch.tensor(x)))


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
def test_dynamic_float16(relu):
    rng = np.random.default_rng(20 + relu)
    cls_n, cls_t = ((nniqd_n.LinearReLU, nniqd_t.LinearReLU) if relu
                    else (nnqd_n.Linear, nnqd_t.Linear))
    for M, K, N in SHAPES[:6]:
        w = (rng.standard_normal((N, K)) * 0.3).astype(np.float32)
        w.flat[0] = 7e4                                    # clipped to 65504 by both
        b = rng.standard_normal(N).astype(np.float32)
        mn, mt = cls_n(K, N, dtype=numq.float16), cls_t(K, N, dtype=torch.float16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mn.set_weight_bias(w, b)
            mt.set_weight_bias(torch.tensor(w), torch.tensor(b))
        np.testing.assert_array_equal(mn.weight(), mt.weight().numpy())
        x = rng.standard_normal((M, K)).astype(np.float32)
        yt = mt(torch.tensor(x)).numpy()
        # float32 sums in different orders (BLAS vs fbgemm's fp16 GEMM)
        np.testing.assert_allclose(mn(x), yt, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(yt).max()))


# ------------------------------------------------------------------- from_float
def _float_pair(k, n, seed):
    torch.manual_seed(seed)
    lt = torch.nn.Linear(k, n)
    ln = L.Linear(k, n)
    ln.load_state_dict({key: v.detach().numpy() for key, v in lt.state_dict().items()})
    return ln, lt


_STATIC_QCONFIGS = [("default", qc_n.default_qconfig, tq.default_qconfig),
                    ("per_channel", qc_n.default_per_channel_qconfig,
                     tq.default_per_channel_qconfig),
                    ("x86", qc_n.get_default_qconfig("x86"), tq.get_default_qconfig("x86"))]


@pytest.mark.parametrize("fused", [False, True], ids=["linear", "linear_relu"])
@pytest.mark.parametrize("name,qn,qt", _STATIC_QCONFIGS, ids=[c[0] for c in _STATIC_QCONFIGS])
def test_from_float_static(name, qn, qt, fused):
    rng = np.random.default_rng(30)
    ln, lt = _float_pair(24, 10, 3)
    if fused:
        mn, mt = nni_n.LinearReLU(ln, L.ReLU()), nni_t.LinearReLU(lt, torch.nn.ReLU())
        ln.qconfig, lt.qconfig = qn, qt
    else:
        mn, mt = ln, lt
    mn.qconfig, mt.qconfig = qn, qt
    mn.activation_post_process = qn.activation()
    mt.activation_post_process = qt.activation()
    act = (rng.standard_normal((16, 10)) * 2 + 0.5).astype(np.float32)
    mn.activation_post_process(act)
    mt.activation_post_process(torch.tensor(act))
    cls_n, cls_t = (nniq_n.LinearReLU, nniq_t.LinearReLU) if fused else (nnq_n.Linear, nnq_t.Linear)
    qn_mod, qt_mod = cls_n.from_float(mn), cls_t.from_float(mt)
    assert (qn_mod.scale, qn_mod.zero_point) == (qt_mod.scale, qt_mod.zero_point)
    wn, wt = qn_mod.weight(), qt_mod.weight()
    np.testing.assert_array_equal(wn.int_repr(), wt.int_repr().numpy())
    if wt.qscheme() == torch.per_channel_affine:
        np.testing.assert_array_equal(wn.q_per_channel_scales(), wt.q_per_channel_scales().numpy())
        np.testing.assert_array_equal(wn.q_per_channel_zero_points(),
                                      wt.q_per_channel_zero_points().numpy())
    else:
        assert (wn.q_scale(), wn.q_zero_point()) == (wt.q_scale(), wt.q_zero_point())
    np.testing.assert_array_equal(qn_mod.bias(), qt_mod.bias().detach().numpy())
    xn, xt = _input_pair(rng, (5, 24))
    _assert_q_equal(qn_mod(xn), qt_mod(xt))


_DYNAMIC_QCONFIGS = [("default", qc_n.default_dynamic_qconfig, tq.default_dynamic_qconfig),
                     ("per_channel", qc_n.per_channel_dynamic_qconfig,
                      tq.per_channel_dynamic_qconfig),
                     ("float16", qc_n.float16_dynamic_qconfig, tq.float16_dynamic_qconfig)]


@pytest.mark.parametrize("fused", [False, True], ids=["linear", "linear_relu"])
@pytest.mark.parametrize("name,qn,qt", _DYNAMIC_QCONFIGS, ids=[c[0] for c in _DYNAMIC_QCONFIGS])
def test_from_float_dynamic(name, qn, qt, fused):
    rng = np.random.default_rng(31)
    ln, lt = _float_pair(24, 10, 4)
    if fused:
        mn, mt = nni_n.LinearReLU(ln, L.ReLU()), nni_t.LinearReLU(lt, torch.nn.ReLU())
        ln.qconfig, lt.qconfig = qn, qt
    else:
        mn, mt = ln, lt
    mn.qconfig, mt.qconfig = qn, qt
    cls_n, cls_t = ((nniqd_n.LinearReLU, nniqd_t.LinearReLU) if fused
                    else (nnqd_n.Linear, nnqd_t.Linear))
    qn_mod, qt_mod = cls_n.from_float(mn), cls_t.from_float(mt)
    assert repr(qn_mod) == repr(qt_mod).replace("torch.", "numq.")
    x = rng.standard_normal((2, 3, 24)).astype(np.float32)
    yn, yt = qn_mod(x), qt_mod(torch.tensor(x))
    if name == "float16":
        np.testing.assert_array_equal(qn_mod.weight(), qt_mod.weight().numpy())
        # float32 GEMMs summing in different orders
        np.testing.assert_allclose(yn, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(qn_mod.weight().int_repr(),
                                      qt_mod.weight().int_repr().numpy())
        _assert_bits_equal(yn, yt)


# ------------------------------------------------------------- state dict, repr
@pytest.mark.parametrize("kind", ["static_per_tensor", "static_per_channel_no_bias",
                                  "relu", "dynamic", "dynamic_float16"])
def test_torch_state_dict_converts_and_loads(kind):
    rng = np.random.default_rng(40)
    wn, wt = _weight_pair(rng, 6, 11, kind == "static_per_channel_no_bias")
    b = None if kind == "static_per_channel_no_bias" else rng.standard_normal(6).astype(np.float32)
    cls_n, cls_t = {"static_per_tensor": (nnq_n.Linear, nnq_t.Linear),
                    "static_per_channel_no_bias": (nnq_n.Linear, nnq_t.Linear),
                    "relu": (nniq_n.LinearReLU, nniq_t.LinearReLU),
                    "dynamic": (nnqd_n.Linear, nnqd_t.Linear),
                    "dynamic_float16": (nnqd_n.Linear, nnqd_t.Linear)}[kind]
    if kind == "dynamic_float16":
        w = rng.standard_normal((6, 11)).astype(np.float32)
        mt = cls_t(11, 6, dtype=torch.float16)
        mt.set_weight_bias(torch.tensor(w), torch.tensor(b))
    else:
        mt = cls_t(11, 6)
        mt.set_weight_bias(wt, None if b is None else torch.tensor(b))
        mt.scale, mt.zero_point = 0.37, 11
    sd = nnq_n.linear.convert_torch_linear_state_dict(mt.state_dict())
    mn = cls_n(11, 6)
    mn.load_state_dict(sd)
    # torch saves scale as a float32 0-d tensor, so torch's own reload changes 0.37 to
    # float32(0.37): compare with a torch layer reloaded from the same state dict
    mt2 = cls_t(11, 6)
    mt2.load_state_dict(mt.state_dict())
    assert repr(mn) == repr(mt2).replace("torch.", "numq.")
    assert (mn.scale, mn.zero_point) == (mt2.scale, mt2.zero_point)
    if kind.startswith("dynamic"):
        x = rng.standard_normal((4, 11)).astype(np.float32)
        yn, yt = mn(x), mt2(torch.tensor(x))
        if kind == "dynamic_float16":
            np.testing.assert_allclose(yn, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
        else:
            _assert_bits_equal(yn, yt)
    else:
        xn, xt = _input_pair(rng, (4, 11))
        _assert_q_equal(mn(xn), mt2(xt))
    # numq's keys: torch's two packed-params entries spelled out as plain arrays
    assert set(mt.state_dict()) == {"scale", "zero_point", "_packed_params.dtype",
                                    "_packed_params._packed_params"}
    assert set(mn.state_dict()) - {"_packed_params.bias"} == (
        {"scale", "zero_point", "_packed_params.weight"} if kind == "dynamic_float16" else
        {"scale", "zero_point", "_packed_params.weight", "_packed_params.weight_scale",
         "_packed_params.weight_zero_point", "_packed_params.weight_axis"})


def test_default_repr_matches():
    pairs = [(nnq_n.Linear(5, 3), nnq_t.Linear(5, 3)),
             (nniq_n.LinearReLU(5, 3), nniq_t.LinearReLU(5, 3)),
             (nnqd_n.Linear(5, 3), nnqd_t.Linear(5, 3)),
             (nniqd_n.LinearReLU(5, 3, dtype=numq.float16),
              nniqd_t.LinearReLU(5, 3, dtype=torch.float16))]
    for mn, mt in pairs:
        assert repr(mn) == repr(mt).replace("torch.", "numq.")


# ------------------------------------------------------------------- bad input
def _refused(fn_n, fn_t, exc_n):
    with pytest.raises(Exception):
        fn_t()
    with pytest.raises(exc_n):
        fn_n()


def test_refuses_what_torch_refuses():
    rng = np.random.default_rng(50)
    wn, wt = _weight_pair(rng, 3, 4, False)
    mn, mt = _pair_layers(nnq_n.Linear, nnq_t.Linear, wn, wt, None, 0.1, 0)
    dn, dt = _pair_layers(nnqd_n.Linear, nnqd_t.Linear, wn, wt, None)
    f = rng.standard_normal((2, 4)).astype(np.float32)
    _refused(lambda: mn(f), lambda: mt(torch.tensor(f)), TypeError)           # float input
    _refused(lambda: mn(numq.quantize_per_tensor(f, 0.1, 0, numq.qint8)),
             lambda: mt(torch.quantize_per_tensor(torch.tensor(f), 0.1, 0, torch.qint8)),
             TypeError)                                                         # qint8 input
    wide = rng.standard_normal((2, 5)).astype(np.float32)
    _refused(lambda: mn(numq.quantize_per_tensor(wide, 0.1, 0, numq.quint8)),
             lambda: mt(torch.quantize_per_tensor(torch.tensor(wide), 0.1, 0, torch.quint8)),
             ValueError)                                                        # K mismatch
    _refused(lambda: mn(numq.quantize_per_tensor(f[0], 0.1, 0, numq.quint8)),
             lambda: mt(torch.quantize_per_tensor(torch.tensor(f[0]), 0.1, 0, torch.quint8)),
             ValueError)                                                        # 1-d input
    _refused(lambda: dn(wide), lambda: dt(torch.tensor(wide)), ValueError)     # K mismatch
    _refused(lambda: dn(np.ones((2, 4), np.int32)),
             lambda: dt(torch.ones((2, 4), dtype=torch.int32)), TypeError)     # int input
    nan = f.copy()
    nan[0, 0] = np.nan
    _refused(lambda: dn(nan), lambda: dt(torch.tensor(nan)), ValueError)       # NaN input
    _refused(lambda: mn.set_weight_bias(wn, np.zeros(4, np.float32)),
             lambda: mt.set_weight_bias(wt, torch.zeros(4)), ValueError)       # bias shape
    fw = rng.standard_normal((3, 4)).astype(np.float32)
    _refused(lambda: mn.set_weight_bias(fw, None),
             lambda: mt.set_weight_bias(torch.tensor(fw), None), TypeError)   # float weight
    _refused(lambda: nnq_n.Linear(4, 3, dtype=numq.quint8),
             lambda: nnq_t.Linear(4, 3, dtype=torch.quint8), ValueError)       # layer dtype
