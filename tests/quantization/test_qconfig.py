"""numq.quantization.qconfig and qconfig_mapping without torch.

The defaults' settings (the values torch 2.13 uses, checked against torch itself in
tests/conformance/quantization/test_qconfig_conformance.py), QConfig validation,
``qconfig_equals``, and QConfigMapping's setters, order, dict round trip and defaults.
"""
import warnings

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.quantization as Q
import numq.quantization.qconfig as QC
import numq.quantization.qconfig_mapping as QM


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def settings_of(obs):
    """(class, dtype, qscheme, reduce_range, quant_min, quant_max, ch_axis, eps)."""
    eps = getattr(obs, "eps", None)
    return (type(obs).__name__, getattr(obs.dtype, "name", None),
            getattr(getattr(obs, "qscheme", None), "name", None),
            getattr(obs, "reduce_range", None), obs.quant_min, obs.quant_max,
            getattr(obs, "ch_axis", None),
            None if eps is None else float(np.asarray(eps).reshape(-1)[0]))


EPS = float(np.finfo(np.float32).eps)
MINMAX_ACT = ("MinMaxObserver", "quint8", "per_tensor_affine", False, 0, 127, None, EPS)
MINMAX_WT = ("MinMaxObserver", "qint8", "per_tensor_symmetric", False, -128, 127, None, EPS)
PERCH_WT = ("PerChannelMinMaxObserver", "qint8", "per_channel_symmetric", False, -128, 127, 0,
            EPS)


@pytest.mark.parametrize("name, act, wt", [
    ("default_qconfig", MINMAX_ACT, MINMAX_WT),
    ("default_per_channel_qconfig", MINMAX_ACT, PERCH_WT),
    ("per_channel_dynamic_qconfig", None, PERCH_WT),
    ("default_dynamic_qconfig", None, MINMAX_WT),
])
def test_default_ptq_settings(name, act, wt):
    qc = getattr(Q, name)
    if act is not None:
        assert settings_of(qc.activation()) == act
    assert settings_of(qc.weight()) == wt


@pytest.mark.parametrize("backend, reduce_range, weight", [
    ("x86", True, PERCH_WT), ("fbgemm", True, PERCH_WT), ("qnnpack", False, MINMAX_WT),
    ("onednn", False, PERCH_WT)])
def test_get_default_qconfig(backend, reduce_range, weight):
    qc = Q.get_default_qconfig(backend)
    act = qc.activation()
    assert type(act).__name__ == "HistogramObserver"
    assert act.reduce_range is reduce_range
    assert (act.quant_min, act.quant_max) == ((0, 127) if reduce_range else (0, 255))
    assert settings_of(qc.weight()) == weight


@pytest.mark.parametrize("backend", ["x86", "fbgemm", "qnnpack", "onednn"])
@pytest.mark.parametrize("version", [0, 1])
def test_get_default_qat_qconfig(backend, version):
    qc = Q.get_default_qat_qconfig(backend, version)
    act, wt = qc.activation(), qc.weight()
    cls = "FusedMovingAvgObsFakeQuantize" if version == 1 else "FakeQuantize"
    assert type(act).__name__ == cls and type(wt).__name__ == cls
    reduced = backend in ("x86", "fbgemm")
    assert act.activation_post_process.reduce_range is reduced
    assert (act.quant_min, act.quant_max) == ((0, 127) if reduced else (0, 255))
    assert act.dtype is numq.quint8 and act.qscheme is numq.per_tensor_affine
    per_channel = backend != "qnnpack"
    assert wt.is_per_channel is per_channel
    assert wt.dtype is numq.qint8 and (wt.quant_min, wt.quant_max) == (-128, 127)
    assert wt.qscheme is (numq.per_channel_symmetric if per_channel
                          else numq.per_tensor_symmetric)


def test_default_qat_settings():
    act = Q.default_qat_qconfig.activation()
    assert (act.quant_min, act.quant_max, act.activation_post_process.averaging_constant) == \
        (0, 127, 0.01)
    wt = Q.default_qat_qconfig.weight()
    assert (wt.quant_min, wt.quant_max, wt.qscheme) == (-128, 127, numq.per_tensor_symmetric)
    v2 = Q.default_qat_qconfig_v2
    assert type(v2.activation()).__name__ == "FusedMovingAvgObsFakeQuantize"
    assert (v2.activation().quant_min, v2.activation().quant_max) == (0, 255)
    assert isinstance(Q.default_weight_only_qconfig.activation(), L.Identity)
    assert isinstance(Q.default_activation_only_qconfig.weight(), L.Identity)
    assert Q.float16_dynamic_qconfig.activation().is_dynamic is True
    assert Q.float16_static_qconfig.weight().dtype is numq.float16
    fq = Q.float_qparams_weight_only_qconfig.weight()
    assert fq.qscheme is numq.per_channel_affine_float_qparams and fq.dtype is numq.quint8
    assert Q.float_qparams_weight_only_qconfig_4bit.weight().dtype is numq.quint4x2
    assert type(Q.default_reuse_input_qconfig.activation()).__name__ == "ReuseInputObserver"
    assert type(Q.default_debug_qconfig.activation()).__name__ == "RecordingObserver"


def test_qconfig_is_a_namedtuple_of_factories():
    qc = Q.QConfig(activation=Q.MinMaxObserver, weight=None)
    assert qc._fields == ("activation", "weight") and qc.weight is None
    act, wt = Q.default_qconfig
    assert act is Q.default_qconfig.activation
    with pytest.raises(ValueError, match="observer instance"):
        Q.QConfig(activation=Q.MinMaxObserver(), weight=Q.MinMaxObserver)
    with pytest.raises(ValueError, match="observer instance"):
        Q.QConfig(activation=Q.MinMaxObserver, weight=Q.default_fake_quant())


def test_qconfig_dynamic_is_deprecated():
    with pytest.warns(FutureWarning):
        qc = Q.QConfigDynamic(weight=Q.default_weight_observer)
    assert qc.activation is L.Identity
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            Q.QConfigDynamic(weight=Q.MinMaxObserver())


def test_backend_and_version_errors():
    with pytest.raises(ValueError, match="not supported"):
        Q.get_default_qconfig("arm")
    with pytest.raises(ValueError, match="Version"):
        Q.get_default_qconfig("x86", 1)
    with pytest.raises(ValueError, match="Version"):
        Q.get_default_qat_qconfig("x86", 2)


def test_qconfig_equals():
    assert Q.qconfig_equals(Q.get_default_qat_qconfig("x86"), Q.get_default_qat_qconfig("x86"))
    assert not Q.qconfig_equals(Q.get_default_qat_qconfig("x86"),
                                Q.get_default_qat_qconfig("qnnpack"))
    assert Q.qconfig_equals(Q.get_default_qconfig("fbgemm"), Q.get_default_qconfig("x86"))
    assert not Q.qconfig_equals(Q.default_qconfig, None)
    assert Q.qconfig_equals(None, None)
    a = Q.QConfig(Q.MinMaxObserver.with_args(dtype=numq.qint8), Q.MinMaxObserver)
    b = Q.QConfig(Q.MinMaxObserver.with_args(dtype=numq.qint8), Q.MinMaxObserver)
    assert Q.qconfig_equals(a, b) and a != b     # partials compare by content here only


def test_private_helpers():
    assert QC._activation_is_memoryless(Q.default_dynamic_qat_qconfig)
    assert not QC._activation_is_memoryless(Q.default_qat_qconfig)
    assert QC._is_reuse_input_qconfig(Q.default_reuse_input_qconfig)
    assert not QC._is_reuse_input_qconfig(Q.default_qconfig)
    conv_t = L.ConvTranspose2d(2, 2, 3)
    with pytest.raises(ValueError, match="Per channel"):
        QC._assert_valid_qconfig(Q.default_per_channel_qconfig, conv_t)
    QC._assert_valid_qconfig(Q.default_qconfig, conv_t)
    QC._assert_valid_qconfig(Q.default_per_channel_qconfig, L.Linear(2, 2))
    assert QC._add_module_to_qconfig_obs_ctr(Q.default_qconfig, conv_t) is Q.default_qconfig


# ---------------------------------------------------------------- QConfigMapping

def test_mapping_setters_chain_and_override_in_place():
    q1, q2 = Q.default_qconfig, Q.default_per_channel_qconfig
    m = (Q.QConfigMapping().set_global(q1).set_object_type(L.Linear, q1)
         .set_object_type("relu", q2).set_module_name_regex("foo.*", q1)
         .set_module_name_regex("bar.*", q2).set_module_name("a.b", q2)
         .set_module_name_object_type_order("a", L.Linear, 0, q1))
    m.set_object_type(L.Linear, q2).set_module_name_regex("foo.*", q2)
    assert list(m.object_type_qconfigs.items()) == [(L.Linear, q2), ("relu", q2)]
    assert list(m.module_name_regex_qconfigs) == ["foo.*", "bar.*"]
    assert m.module_name_qconfigs == {"a.b": q2}
    assert m.module_name_object_type_order_qconfigs == {("a", L.Linear, 0): q1}
    d = m.to_dict()
    assert list(d) == ["", "object_type", "module_name_regex", "module_name",
                       "module_name_object_type_order"]
    assert d["module_name_object_type_order"] == [("a", L.Linear, 0, q1)]
    m2 = Q.QConfigMapping.from_dict(d)
    assert m2.to_dict() == d
    assert "QConfigMapping (" in repr(m2) and "global_qconfig" in repr(m2)
    assert Q.QConfigMapping.from_dict({}).global_qconfig is None


def test_default_mapping_keys():
    m = Q.get_default_qconfig_mapping()
    keys = list(m.object_type_qconfigs)
    expected = ["reshape", L.ConvTranspose1d, L.ConvTranspose2d, L.ConvTranspose3d,
                "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "layer_norm",
                L.LayerNorm]
    if hasattr(L, "PReLU"):
        expected.append(L.PReLU)
    expected += [L.Hardsigmoid, "hardsigmoid", "hardsigmoid_", L.Sigmoid, "sigmoid",
                 "sigmoid_", L.Softmax, L.Tanh, "tanh", "tanh_"]
    assert keys == expected
    assert Q.qconfig_equals(m.global_qconfig, Q.get_default_qconfig("x86"))
    # ConvTranspose uses per-tensor weights on x86 / fbgemm
    wt = m.object_type_qconfigs[L.ConvTranspose2d].weight()
    assert settings_of(wt) == MINMAX_WT
    qn = Q.get_default_qconfig_mapping("qnnpack")
    assert qn.object_type_qconfigs[L.ConvTranspose2d] is qn.global_qconfig


def test_default_mapping_fixed_qparams():
    ptq = Q.get_default_qconfig_mapping().object_type_qconfigs
    obs = ptq[L.Sigmoid].activation()
    assert type(obs).__name__ == "FixedQParamsObserver"
    assert float(obs.scale[0]) == 1 / 256 and int(obs.zero_point[0]) == 0
    obs = ptq["tanh"].activation()
    assert float(obs.scale[0]) == 2 / 256 and int(obs.zero_point[0]) == 128
    assert ptq[L.Sigmoid] is ptq["hardsigmoid_"] is ptq[L.Softmax]
    qat = Q.get_default_qat_qconfig_mapping().object_type_qconfigs
    fq = qat[L.Tanh].activation()
    assert type(fq).__name__ == "FixedQParamsFakeQuantize" and fq.scale[0] == 2 / 256
    assert type(qat[L.Tanh].weight()).__name__ == "FakeQuantize"
    assert type(qat[L.LayerNorm].weight()).__name__ == "PlaceholderObserver"


def test_symmetric_qnnpack_mapping():
    m = QM._get_symmetric_qnnpack_qconfig_mapping()
    assert m.global_qconfig is Q.default_symmetric_qnnpack_qconfig
    assert m.object_type_qconfigs["reshape"] is Q.default_symmetric_qnnpack_qconfig
    assert m.object_type_qconfigs["sigmoid"] is not Q.default_symmetric_qnnpack_qconfig


def test_deprecated_dict_functions():
    with pytest.warns(FutureWarning):
        d = Q.get_default_qconfig_dict()
    assert Q.qconfig_equals(d[""], Q.get_default_qconfig())
    with pytest.warns(FutureWarning):
        d = Q.get_default_qat_qconfig_dict("qnnpack")
    assert Q.qconfig_equals(d[""], Q.get_default_qat_qconfig("qnnpack"))
