"""numq.quantization.qconfig / qconfig_mapping against torch 2.13's.

Every default QConfig, ``get_default_qconfig`` / ``get_default_qat_qconfig`` for every
backend and version, and the default QConfigMappings build the same modules: compared
through the instances their factories make (class names; dtype, qscheme, reduce_range,
quant_min / quant_max, ch_axis, averaging_constant, eps, ...; nested observers of
fake-quant modules; fixed qparams). Also the constructors' validation and
``qconfig_equals``.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.ao.quantization.qconfig as TQ  # noqa: E402
import torch.ao.quantization.qconfig_mapping as TM  # noqa: E402

import numq  # noqa: E402
import numq.layers as L  # noqa: E402
import numq.quantization.qconfig as NQ  # noqa: E402
import numq.quantization.qconfig_mapping as NM  # noqa: E402

BACKENDS = ["x86", "fbgemm", "qnnpack", "onednn"]
ATTRS = ["dtype", "qscheme", "reduce_range", "quant_min", "quant_max", "ch_axis",
         "averaging_constant", "is_dynamic", "has_customized_qrange", "bins",
         "is_per_channel", "is_symmetric_quant", "use_grad_scaling", "bitwidth"]
BUFFERS = ["eps", "scale", "zero_point", "fake_quant_enabled", "observer_enabled",
           "static_enabled", "learning_enabled"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _name(v):
    """A dtype / qscheme / value in a form both libraries share."""
    if isinstance(v, (torch.dtype, torch.qscheme)):
        return str(v).removeprefix("torch.")
    if isinstance(v, (numq.dtypes.QDType, numq.dtypes.QScheme)):
        return v.name
    if isinstance(v, np.dtype):
        return v.name
    return v


def _buffer(b):
    a = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(
        b.data if isinstance(b, L.Parameter) else b)
    return (a.dtype.name, a.shape, a.tolist())


def signature(obj):
    """What a factory builds, as plain data."""
    if obj is None:
        return None
    sig = {"class": type(obj).__name__}
    for a in ATTRS:
        if hasattr(obj, a):
            sig[a] = _name(getattr(obj, a))
    for b in BUFFERS:
        if hasattr(obj, b) and getattr(obj, b) is not None:
            sig["buf_" + b] = _buffer(getattr(obj, b))
    if hasattr(obj, "activation_post_process"):
        sig["observer"] = signature(obj.activation_post_process)
    return sig


def build(factory):
    return None if factory is None else factory()


def assert_qconfig_same(nqc, tqc):
    if tqc is None:
        assert nqc is None
        return
    assert type(nqc).__name__ == type(tqc).__name__
    for field in ("activation", "weight"):
        ns = signature(build(getattr(nqc, field)))
        ts = signature(build(getattr(tqc, field)))
        assert ns == ts, (field, ns, ts)


QCONFIG_NAMES = [n for n in TQ.__all__
                 if not n.startswith("get_") and n not in ("QConfig", "QConfigDynamic",
                                                            "QConfigAny", "qconfig_equals")]


def test_same_public_names():
    assert sorted(NQ.__all__) == sorted(TQ.__all__)
    assert sorted(NM.__all__) == sorted(TM.__all__)


@pytest.mark.parametrize("name", QCONFIG_NAMES)
def test_default_qconfigs(name):
    assert_qconfig_same(getattr(NQ, name), getattr(TQ, name))


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_default_qconfig(backend):
    assert_qconfig_same(NQ.get_default_qconfig(backend), TQ.get_default_qconfig(backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version", [0, 1])
def test_get_default_qat_qconfig(backend, version):
    assert_qconfig_same(NQ.get_default_qat_qconfig(backend, version),
                        TQ.get_default_qat_qconfig(backend, version))


def test_default_arguments():
    assert_qconfig_same(NQ.get_default_qconfig(), TQ.get_default_qconfig())
    assert_qconfig_same(NQ.get_default_qat_qconfig(), TQ.get_default_qat_qconfig())


def test_onednn_vnni_warning_as_torch():
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        TQ.get_default_qconfig("onednn")
    with warnings.catch_warnings(record=True) as nw:
        warnings.simplefilter("always")
        NQ.get_default_qconfig("onednn")
    assert len(nw) == len(tw)


def test_errors_as_torch():
    for bad in [("tpu", 0), ("x86", 1)]:
        with pytest.raises(AssertionError):
            TQ.get_default_qconfig(*bad)
        with pytest.raises(ValueError):
            NQ.get_default_qconfig(*bad)
    for bad in [("tpu", 1), ("x86", 2)]:
        with pytest.raises(AssertionError):
            TQ.get_default_qat_qconfig(*bad)
        with pytest.raises(ValueError):
            NQ.get_default_qat_qconfig(*bad)
    obs = TQ.MinMaxObserver()
    with pytest.raises(ValueError, match="observer instance"):
        TQ.QConfig(activation=obs, weight=TQ.MinMaxObserver)
    with pytest.raises(ValueError, match="observer instance"):
        NQ.QConfig(activation=NQ.MinMaxObserver(), weight=NQ.MinMaxObserver)
    with pytest.raises(ValueError, match="observer instance"):
        NQ.QConfig(activation=NQ.MinMaxObserver, weight=NQ.MinMaxObserver())


def test_qconfig_dynamic_as_torch():
    with pytest.warns(FutureWarning):
        t = TQ.QConfigDynamic(weight=TQ.default_weight_observer)
    with pytest.warns(FutureWarning):
        n = NQ.QConfigDynamic(weight=NQ.default_weight_observer)
    assert_qconfig_same(n, t)
    with pytest.raises(ValueError):
        NQ.QConfigDynamic(weight=NQ.MinMaxObserver())


# ------------------------------------------------------------------- equality

def test_qconfig_equals_as_torch():
    pairs = [
        ("default_qconfig", "default_qconfig"), ("default_qconfig", "default_qat_qconfig"),
        ("default_qat_qconfig", "default_qat_qconfig"),
        ("default_qat_qconfig_v2", "default_qat_qconfig_v2"),
        ("default_per_channel_qconfig", "default_qconfig"),
    ]
    for a, b in pairs:
        assert NQ.qconfig_equals(getattr(NQ, a), getattr(NQ, b)) == TQ.qconfig_equals(
            getattr(TQ, a), getattr(TQ, b))
    # rebuilt factories compare equal, as torch's
    for backend in BACKENDS:
        for v in (0, 1):
            assert NQ.qconfig_equals(NQ.get_default_qat_qconfig(backend, v),
                                     NQ.get_default_qat_qconfig(backend, v))
            assert TQ.qconfig_equals(TQ.get_default_qat_qconfig(backend, v),
                                     TQ.get_default_qat_qconfig(backend, v))
    assert NQ.qconfig_equals(None, None) and not NQ.qconfig_equals(None, NQ.default_qconfig)
    assert NQ._activation_is_memoryless(NQ.default_dynamic_qat_qconfig) == \
        TQ._activation_is_memoryless(TQ.default_dynamic_qat_qconfig)
    assert NQ._is_reuse_input_qconfig(NQ.default_reuse_input_qconfig) == \
        TQ._is_reuse_input_qconfig(TQ.default_reuse_input_qconfig)


# --------------------------------------------------------------- QConfigMapping

_TYPE_MAP = {
    torch.nn.ConvTranspose1d: L.ConvTranspose1d, torch.nn.ConvTranspose2d: L.ConvTranspose2d,
    torch.nn.ConvTranspose3d: L.ConvTranspose3d, torch.nn.LayerNorm: L.LayerNorm,
    torch.nn.Hardsigmoid: L.Hardsigmoid, torch.nn.Sigmoid: L.Sigmoid,
    torch.nn.Softmax: L.Softmax, torch.nn.Tanh: L.Tanh,
    torch.nn.functional.conv_transpose1d: "conv_transpose1d",
    torch.nn.functional.conv_transpose2d: "conv_transpose2d",
    torch.nn.functional.conv_transpose3d: "conv_transpose3d",
    torch.nn.functional.layer_norm: "layer_norm",
    torch.nn.functional.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid",
    torch.tanh: "tanh",
}


def _numq_key(k):
    if isinstance(k, str):
        return k
    if k is torch.nn.PReLU:
        return getattr(L, "PReLU", None)
    return _TYPE_MAP[k]


def assert_mapping_same(nm, tm):
    assert_qconfig_same(nm.global_qconfig, tm.global_qconfig)
    expected = {}
    for k, q in tm.object_type_qconfigs.items():
        nk = _numq_key(k)
        if nk is None:      # no numq.layers.PReLU yet
            continue
        if nk in expected:  # a function and a method with one numq name: same qconfig
            assert TQ.qconfig_equals(expected[nk], q)
        expected.setdefault(nk, q)
    assert list(nm.object_type_qconfigs) == list(expected)
    for k, q in expected.items():
        assert_qconfig_same(nm.object_type_qconfigs[k], q)
    for style in ("module_name_regex_qconfigs", "module_name_qconfigs",
                  "module_name_object_type_order_qconfigs"):
        assert list(getattr(nm, style)) == list(getattr(tm, style))


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_qconfig_mapping(backend):
    assert_mapping_same(NM.get_default_qconfig_mapping(backend),
                        TM.get_default_qconfig_mapping(backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version", [0, 1])
def test_default_qat_qconfig_mapping(backend, version):
    assert_mapping_same(NM.get_default_qat_qconfig_mapping(backend, version),
                        TM.get_default_qat_qconfig_mapping(backend, version))


def test_symmetric_qnnpack_mappings():
    assert_mapping_same(NM._get_symmetric_qnnpack_qconfig_mapping(),
                        TM._get_symmetric_qnnpack_qconfig_mapping())
    assert_mapping_same(NM._get_symmetric_qnnpack_qat_qconfig_mapping(),
                        TM._get_symmetric_qnnpack_qat_qconfig_mapping())


def test_mapping_shares_qconfig_objects_as_torch():
    """One QConfig object per fixed-qparams observer, shared by its ops (as torch)."""
    n = NM.get_default_qconfig_mapping().object_type_qconfigs
    t = TM.get_default_qconfig_mapping().object_type_qconfigs
    assert (n[L.Sigmoid] is n["sigmoid_"]) == (t[torch.nn.Sigmoid] is t["sigmoid_"])
    assert (n[L.Tanh] is n[L.Sigmoid]) == (t[torch.nn.Tanh] is t[torch.nn.Sigmoid])


def test_qconfig_dict_functions_as_torch():
    nd = NQ.get_default_qconfig_dict()
    td = TQ.get_default_qconfig_dict()
    assert list(nd) == list(td)
    assert_mapping_same(NM.QConfigMapping.from_dict(nd), TM.QConfigMapping.from_dict(td))
    nd = NQ.get_default_qat_qconfig_dict("qnnpack", 0)
    td = TQ.get_default_qat_qconfig_dict("qnnpack", 0)
    assert_mapping_same(NM.QConfigMapping.from_dict(nd), TM.QConfigMapping.from_dict(td))
