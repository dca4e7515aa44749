"""QConfig: which observers / fake-quant modules to build for a layer
(``torch.ao.quantization.qconfig``).

A :class:`QConfig` holds two *factories* (classes or ``with_args`` partials), one for the
activation and one for the weight; preparing a model calls each once per layer. The
default qconfigs and ``get_default_qconfig`` / ``get_default_qat_qconfig`` reproduce
PyTorch 2.13's settings exactly (observer classes, dtypes, qschemes, ``reduce_range``,
quant ranges, ``eps``); ``torch.nn.Identity`` is :class:`numq.layers.Identity`.

Where torch raises ``AssertionError`` (unknown backend or version) numq raises
``ValueError``.
"""
import collections
import copy
import warnings

import numpy as np

from .. import _isa
from .. import dtypes as _dt
from ..layers import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, Identity, Module
from .fake_quantize import (FakeQuantize, FakeQuantizeBase, FusedMovingAvgObsFakeQuantize,
                            default_dynamic_fake_quant, default_embedding_fake_quant,
                            default_embedding_fake_quant_4bit, default_fake_quant,
                            default_fused_act_fake_quant,
                            default_fused_per_channel_wt_fake_quant,
                            default_fused_wt_fake_quant, default_per_channel_weight_fake_quant,
                            default_weight_fake_quant,
                            fused_per_channel_wt_fake_quant_range_neg_127_to_127,
                            fused_wt_fake_quant_range_neg_127_to_127)
from .observer import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                       MovingAveragePerChannelMinMaxObserver, NoopObserver,
                       PerChannelMinMaxObserver, PlaceholderObserver, ReuseInputObserver,
                       _PartialWrapper, default_debug_observer, default_dynamic_quant_observer,
                       default_float_qparams_observer, default_float_qparams_observer_4bit,
                       default_observer, default_per_channel_weight_observer,
                       default_placeholder_observer, default_reuse_input_observer,
                       default_weight_observer,
                       per_channel_weight_observer_range_neg_127_to_127,
                       weight_observer_range_neg_127_to_127)

__all__ = [
    "QConfig", "QConfigDynamic",
    "default_qconfig", "default_debug_qconfig", "default_per_channel_qconfig",
    "default_dynamic_qconfig", "float16_dynamic_qconfig", "float16_static_qconfig",
    "per_channel_dynamic_qconfig", "float_qparams_weight_only_qconfig",
    "float_qparams_weight_only_qconfig_4bit", "default_quint8_weight_qconfig",
    "default_qat_qconfig", "default_dynamic_qat_qconfig", "default_weight_only_qconfig",
    "default_activation_only_qconfig", "default_qat_qconfig_v2",
    "default_reuse_input_qconfig", "default_symmetric_qnnpack_qconfig",
    "default_per_channel_symmetric_qnnpack_qconfig", "default_symmetric_qnnpack_qat_qconfig",
    "default_per_channel_symmetric_qnnpack_qat_qconfig", "default_embedding_qat_qconfig",
    "default_embedding_qat_qconfig_4bit", "get_default_qconfig", "get_default_qat_qconfig",
    "get_default_qconfig_dict", "get_default_qat_qconfig_dict", "QConfigAny",
    "qconfig_equals",
]

_BACKENDS = ["fbgemm", "x86", "qnnpack", "onednn"]
_INSTANCE_MSG = ("received observer instance, please pass observer class instead. Use "
                 "MyObserver.with_args(x=1) to override arguments to constructor if needed")


class QConfig(collections.namedtuple("QConfig", ["activation", "weight"])):
    """How to quantize a layer: ``QConfig(activation, weight)``.

    Both fields are observer / fake-quant *factories*: classes (``MinMaxObserver``) or
    ``Cls.with_args(...)`` partials, called once per layer by ``prepare``; ``weight`` may
    be ``None`` for layers without weights.

    Raises
    ------
    ValueError
        If an argument is a module instance instead of a factory.

    Examples
    --------
    >>> my_qconfig = QConfig(activation=MinMaxObserver.with_args(dtype=numq.qint8),
    ...                      weight=default_observer.with_args(dtype=numq.qint8))
    """

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError("QConfig " + _INSTANCE_MSG)
        return super().__new__(cls, activation, weight)


class QConfigDynamic(collections.namedtuple("QConfigDynamic", ["activation", "weight"])):
    """Deprecated (as in torch): a QConfig for dynamic quantization; use :class:`QConfig`.

    Both fields default to :class:`numq.layers.Identity`. Constructing one emits a
    ``FutureWarning``.
    """

    __slots__ = ()

    def __new__(cls, activation=Identity, weight=Identity):
        warnings.warn("QConfigDynamic is deprecated (as in torch); use QConfig",
                      FutureWarning, stacklevel=2)
        if isinstance(weight, Module):
            raise ValueError("QConfigDynamic " + _INSTANCE_MSG)
        return super().__new__(cls, activation, weight)


#: ``QConfig`` or ``None`` (torch's ``QConfigAny`` type alias).
QConfigAny = QConfig | None

default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
"""Default qconfig: MinMax activations in [0, 127], per-tensor symmetric qint8 weights."""

default_debug_qconfig = QConfig(weight=default_weight_observer,
                                activation=default_debug_observer)
"""Default qconfig for debugging (records the activations)."""

default_per_channel_qconfig = QConfig(activation=default_observer,
                                      weight=default_per_channel_weight_observer)
"""Default qconfig with per-channel weights."""

default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)
"""Default dynamic qconfig."""

float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=_dt.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=_dt.float16))
"""Dynamic qconfig with float16 weights."""

float16_static_qconfig = QConfig(activation=PlaceholderObserver.with_args(dtype=_dt.float16),
                                 weight=PlaceholderObserver.with_args(dtype=_dt.float16))
"""float16 activations and weights."""

per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
"""Dynamic qconfig with per-channel weights."""

float_qparams_weight_only_qconfig = QConfig(activation=default_placeholder_observer,
                                            weight=default_float_qparams_observer)
"""Weight-only qconfig with float zero points (embeddings)."""

float_qparams_weight_only_qconfig_4bit = QConfig(activation=default_placeholder_observer,
                                                 weight=default_float_qparams_observer_4bit)
"""As ``float_qparams_weight_only_qconfig``, 4-bit weights."""

default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)
"""Default qconfig for QAT."""

default_dynamic_qat_qconfig = QConfig(activation=default_dynamic_fake_quant,
                                      weight=default_weight_fake_quant)
"""Default qconfig for dynamic QAT."""

default_weight_only_qconfig = QConfig(activation=Identity, weight=default_weight_fake_quant)
"""Fake-quantize weights only."""

default_activation_only_qconfig = QConfig(activation=default_fake_quant, weight=Identity)
"""Fake-quantize activations only."""

default_qat_qconfig_v2 = QConfig(activation=default_fused_act_fake_quant,
                                 weight=default_fused_wt_fake_quant)
"""Fused version of ``default_qat_qconfig``."""

default_reuse_input_qconfig = QConfig(activation=default_reuse_input_observer,
                                      weight=NoopObserver)
"""For ops that reuse their input's observer (reshape, ...)."""


def _vnni_supported():
    """torch's ``torch.cpu._is_vnni_supported()``: AVX512-VNNI only."""
    try:
        return "avx512vnni" in _isa.cpu_features()
    except Exception:  # no llvmlite feature query: assume absent, as an old CPU
        return False


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise ValueError(f"backend: {backend} not supported. backend must be one of "
                         f"{_BACKENDS}")


def get_default_qconfig(backend="x86", version=0):
    """The default post-training qconfig for ``backend``.

    Parameters
    ----------
    backend : str
        ``"x86"`` (default), ``"fbgemm"``, ``"qnnpack"`` or ``"onednn"``.
    version : int
        Only 0.

    Returns
    -------
    QConfig
        x86 / fbgemm: ``HistogramObserver(reduce_range=True)`` activations and per-channel
        symmetric qint8 weights; qnnpack: ``reduce_range=False`` and per-tensor weights;
        onednn: ``reduce_range=False`` and per-channel weights (warns on CPUs without
        AVX512-VNNI, as torch).
    """
    _check_backend(backend)
    if version != 0:
        raise ValueError(f"Version number: {version} in get_default_qconfig is not supported. "
                         "Version number must be 0")
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_weight_observer)
    if backend == "onednn":
        if not _vnni_supported():
            warnings.warn("the onednn default qconfig uses reduce_range=False, which can "
                          "lose accuracy on CPUs without VNNI instructions", UserWarning,
                          stacklevel=2)
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_per_channel_weight_observer)
    # fbgemm and x86
    return QConfig(activation=HistogramObserver.with_args(reduce_range=True),
                   weight=default_per_channel_weight_observer)


default_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=_dt.qint8, reduce_range=False, eps=2**-12),
    weight=weight_observer_range_neg_127_to_127)
"""Symmetric qint8 activations and weights in [-127, 127] (xnnpack)."""

default_per_channel_symmetric_qnnpack_qconfig = QConfig(
    activation=HistogramObserver.with_args(dtype=_dt.qint8, reduce_range=False, eps=2**-12),
    weight=per_channel_weight_observer_range_neg_127_to_127)
"""As ``default_symmetric_qnnpack_qconfig`` with per-channel weights."""

default_embedding_qat_qconfig = QConfig(activation=NoopObserver.with_args(dtype=np.float32),
                                        weight=default_embedding_fake_quant)

default_embedding_qat_qconfig_4bit = QConfig(
    activation=NoopObserver.with_args(dtype=np.float32),
    weight=default_embedding_fake_quant_4bit)

default_quint8_weight_qconfig = QConfig(activation=HistogramObserver, weight=MinMaxObserver)


def get_default_qat_qconfig(backend="x86", version=1):
    """The default QAT qconfig for ``backend``.

    Parameters
    ----------
    backend : str
        ``"x86"`` (default), ``"fbgemm"``, ``"qnnpack"`` or ``"onednn"``.
    version : int
        1 (default): fused ``FusedMovingAvgObsFakeQuantize`` modules; 0: ``FakeQuantize``
        with ``MovingAverageMinMaxObserver``.

    Returns
    -------
    QConfig
        Activations quint8 [0, 255] with ``reduce_range=True`` for x86 / fbgemm,
        ``False`` for qnnpack, unset (False) for onednn; weights per-channel symmetric
        qint8 except qnnpack's per tensor.
    """
    _check_backend(backend)
    per_tensor_wt = backend == "qnnpack"
    if version == 0:
        act_kwargs = dict(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
        if backend in ("fbgemm", "x86"):
            act_kwargs["reduce_range"] = True
        elif backend == "qnnpack":
            act_kwargs["reduce_range"] = False
        return QConfig(activation=FakeQuantize.with_args(**act_kwargs),
                       weight=default_weight_fake_quant if per_tensor_wt
                       else default_per_channel_weight_fake_quant)
    if version == 1:
        act_kwargs = dict(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
        if backend in ("fbgemm", "x86"):
            act_kwargs["reduce_range"] = True
        elif backend == "qnnpack":
            act_kwargs["reduce_range"] = False
        return QConfig(activation=FusedMovingAvgObsFakeQuantize.with_args(**act_kwargs),
                       weight=default_fused_wt_fake_quant if per_tensor_wt
                       else default_fused_per_channel_wt_fake_quant)
    raise ValueError(f"Version number: {version} in get_default_qat_qconfig is not supported. "
                     "Version number must be 0 or 1")


default_symmetric_qnnpack_qat_qconfig = QConfig(
    activation=FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dt.qint8,
        reduce_range=False, eps=2**-12),
    weight=fused_wt_fake_quant_range_neg_127_to_127)

default_per_channel_symmetric_qnnpack_qat_qconfig = QConfig(
    activation=FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=_dt.qint8,
        reduce_range=False, eps=2**-12),
    weight=fused_per_channel_wt_fake_quant_range_neg_127_to_127)

_default_fp32_placeholder_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=np.float32),
    weight=PlaceholderObserver.with_args(dtype=np.float32))

_default_quint8_placeholder_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=_dt.quint8),
    weight=None)   # the ops using it have no weights


def get_default_qconfig_dict(backend="x86", version=0):
    """Deprecated: ``get_default_qconfig_mapping(backend, version).to_dict()``."""
    warnings.warn("get_default_qconfig_dict is deprecated (as in torch); use "
                  "get_default_qconfig_mapping", FutureWarning, stacklevel=2)
    from .qconfig_mapping import get_default_qconfig_mapping
    return get_default_qconfig_mapping(backend, version).to_dict()


def get_default_qat_qconfig_dict(backend="x86", version=1):
    """Deprecated: ``get_default_qat_qconfig_mapping(backend, version).to_dict()``."""
    warnings.warn("get_default_qat_qconfig_dict is deprecated (as in torch); use "
                  "get_default_qat_qconfig_mapping", FutureWarning, stacklevel=2)
    from .qconfig_mapping import get_default_qat_qconfig_mapping
    return get_default_qat_qconfig_mapping(backend, version).to_dict()


# ------------------------------------------------------------ helpers for prepare()

def _assert_valid_qconfig(qconfig, mod):
    """Raise ``ValueError`` for a per-channel weight observer on a ConvTranspose module
    (torch does not support it; ``None`` and other modules pass)."""
    if qconfig is None:
        return
    if isinstance(mod, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)):
        if qconfig.weight is None:
            return
        example_observer = qconfig.weight()
        if isinstance(example_observer, (PerChannelMinMaxObserver,
                                         MovingAveragePerChannelMinMaxObserver)):
            raise ValueError("Per channel weight observer is not supported yet for "
                             "ConvTranspose{n}d.")


def _add_module_to_qconfig_obs_ctr(qconfig, module):
    """torch moves observers to the module's device; numq has one device: the qconfig
    is returned unchanged."""
    return qconfig


def _obs_or_fq_ctr_equals(obs_or_fq1, obs_or_fq2):
    if isinstance(obs_or_fq1, _PartialWrapper) and isinstance(obs_or_fq2, _PartialWrapper):
        return _partial_wrapper_equals(obs_or_fq1, obs_or_fq2)
    return obs_or_fq1 == obs_or_fq2


def _partial_wrapper_equals(obs_or_fq1, obs_or_fq2):
    """Whether two ``with_args`` factories build the same thing (``partial`` has no
    ``__eq__``): same function, positional and keyword arguments, nested observer
    factories compared recursively."""
    kw1 = copy.copy(obs_or_fq1.p.keywords)
    kw2 = copy.copy(obs_or_fq2.p.keywords)
    keywords_equal = True
    if "observer" in kw1 and "observer" in kw2:
        keywords_equal = _obs_or_fq_ctr_equals(kw1.pop("observer"), kw2.pop("observer"))
    keywords_equal = keywords_equal and kw1 == kw2
    return (obs_or_fq1.p.func == obs_or_fq2.p.func and obs_or_fq1.p.args == obs_or_fq2.p.args
            and keywords_equal)


def qconfig_equals(q1, q2):
    """True if the two qconfigs build the same observers (``None`` equals only ``None``)."""
    if q1 is None or q2 is None:
        return q1 == q2
    try:
        activation_same = _obs_or_fq_ctr_equals(q1.activation, q2.activation)
        weight_same = _obs_or_fq_ctr_equals(q1.weight, q2.weight)
        return activation_same and weight_same
    except AttributeError:
        return q1 == q2


def _activation_is_memoryless(qconfig):
    """Whether the activation observer is a moving average with averaging constant 1."""
    def _is_memoryless(observer):
        return hasattr(observer, "averaging_constant") and observer.averaging_constant == 1

    act = qconfig.activation()
    if isinstance(act, FakeQuantizeBase) and hasattr(act, "activation_post_process"):
        return _is_memoryless(act.activation_post_process)
    return _is_memoryless(act)


def _is_reuse_input_qconfig(qconfig):
    return (qconfig is not None and isinstance(qconfig.activation(), ReuseInputObserver)
            and isinstance(qconfig.weight(), NoopObserver))
