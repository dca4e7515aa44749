"""QConfigMapping: model ops -> QConfig (``torch.ao.quantization.qconfig_mapping``).

Object types are numq layer classes where torch uses ``torch.nn`` classes
(``numq.layers.ConvTranspose2d`` for ``torch.nn.ConvTranspose2d``) and function *names*
where torch uses functions (``"conv_transpose2d"`` for
``torch.nn.functional.conv_transpose2d``, ``"sigmoid"`` for ``torch.sigmoid``); method
names stay strings as in torch (``"reshape"``, ``"sigmoid_"``). A function name that
equals a method name torch also lists (``"sigmoid"``, ``"tanh"``, ``"hardsigmoid"``) is
one key, mapped to the same qconfig as in torch.
"""
import collections

from .. import layers as _layers
from .fake_quantize import FixedQParamsFakeQuantize, default_weight_fake_quant
from .observer import (default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer,
                       default_placeholder_observer, default_weight_observer)
from .qconfig import (QConfig, default_quint8_weight_qconfig, default_reuse_input_qconfig,
                      default_symmetric_qnnpack_qat_qconfig, default_symmetric_qnnpack_qconfig,
                      get_default_qat_qconfig, get_default_qconfig)

__all__ = ["get_default_qconfig_mapping", "get_default_qat_qconfig_mapping", "QConfigMapping"]

_GLOBAL_DICT_KEY = ""
_OBJECT_TYPE_DICT_KEY = "object_type"
_MODULE_NAME_REGEX_DICT_KEY = "module_name_regex"
_MODULE_NAME_DICT_KEY = "module_name"
_MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY = "module_name_object_type_order"

# torch's _FIXED_QPARAMS_OP_TO_OBSERVER in torch's order, with numq's keys
# (torch.nn.functional.hardsigmoid / torch.sigmoid / torch.tanh become the names they
# share with the methods torch lists next)
_FIXED_QPARAMS_OP_TO_OBSERVER = {
    _layers.Hardsigmoid: default_fixed_qparams_range_0to1_observer,
    "hardsigmoid": default_fixed_qparams_range_0to1_observer,
    "hardsigmoid_": default_fixed_qparams_range_0to1_observer,
    _layers.Sigmoid: default_fixed_qparams_range_0to1_observer,
    "sigmoid": default_fixed_qparams_range_0to1_observer,
    "sigmoid_": default_fixed_qparams_range_0to1_observer,
    _layers.Softmax: default_fixed_qparams_range_0to1_observer,
    _layers.Tanh: default_fixed_qparams_range_neg1to1_observer,
    "tanh": default_fixed_qparams_range_neg1to1_observer,
    "tanh_": default_fixed_qparams_range_neg1to1_observer,
}

# torch.nn.PReLU has no numq layer yet; its entry appears once numq.layers.PReLU exists
_PRELU = getattr(_layers, "PReLU", None)


def _get_default_qconfig_mapping(is_qat, backend, version):
    """The default QConfigMapping for PTQ (``is_qat=False``) or QAT, as torch builds it."""
    if is_qat:
        qconfig = get_default_qat_qconfig(backend, version)
    else:
        qconfig = get_default_qconfig(backend, version)
    default_weight = default_weight_fake_quant if is_qat else default_weight_observer

    # per-channel weights are not supported for ConvTranspose on fbgemm / x86
    if backend in ("fbgemm", "x86"):
        qconfig_transpose = QConfig(activation=qconfig.activation, weight=default_weight)
    else:
        qconfig_transpose = qconfig

    # layer_norm only supports float weights
    qconfig_layernorm = QConfig(activation=qconfig.activation,
                                weight=default_placeholder_observer)

    qconfig_mapping = (
        QConfigMapping()
        .set_global(qconfig)
        .set_object_type("reshape", default_reuse_input_qconfig)
        .set_object_type(_layers.ConvTranspose1d, qconfig_transpose)
        .set_object_type(_layers.ConvTranspose2d, qconfig_transpose)
        .set_object_type(_layers.ConvTranspose3d, qconfig_transpose)
        .set_object_type("conv_transpose1d", qconfig_transpose)
        .set_object_type("conv_transpose2d", qconfig_transpose)
        .set_object_type("conv_transpose3d", qconfig_transpose)
        .set_object_type("layer_norm", qconfig_layernorm)
        .set_object_type(_layers.LayerNorm, qconfig_layernorm)
    )
    if _PRELU is not None:
        qconfig_mapping.set_object_type(_PRELU, default_quint8_weight_qconfig)

    # ops with fixed output qparams: one QConfig object per observer, as torch
    by_observer = {}
    for op, observer in _FIXED_QPARAMS_OP_TO_OBSERVER.items():
        key = id(observer)
        if key not in by_observer:
            activation = (FixedQParamsFakeQuantize.with_args(observer=observer) if is_qat
                          else observer)
            by_observer[key] = QConfig(activation=activation, weight=default_weight)
        qconfig_mapping.set_object_type(op, by_observer[key])
    return qconfig_mapping


def get_default_qconfig_mapping(backend="x86", version=0):
    """The default QConfigMapping for post-training quantization.

    Parameters
    ----------
    backend : str
        ``"x86"`` (default), ``"fbgemm"``, ``"qnnpack"`` or ``"onednn"``.
    version : int
        Passed to :func:`~numq.quantization.qconfig.get_default_qconfig`.
    """
    return _get_default_qconfig_mapping(False, backend, version)


def get_default_qat_qconfig_mapping(backend="x86", version=1):
    """The default QConfigMapping for quantization-aware training (see
    :func:`get_default_qconfig_mapping`; ``version`` as ``get_default_qat_qconfig``)."""
    return _get_default_qconfig_mapping(True, backend, version)


def _get_default_qconfig_mapping_with_default_qconfig(is_qat, backend, default_qconfig):
    """The default mapping with ``default_qconfig`` as global and for every object type
    except the fixed-qparams ops."""
    if is_qat:
        qconfig_mapping = get_default_qat_qconfig_mapping(backend)
    else:
        qconfig_mapping = get_default_qconfig_mapping(backend)
    qconfig_mapping.set_global(default_qconfig)
    for pattern in qconfig_mapping.object_type_qconfigs:
        if pattern not in _FIXED_QPARAMS_OP_TO_OBSERVER:
            qconfig_mapping.set_object_type(pattern, default_qconfig)
    return qconfig_mapping


def _get_symmetric_qnnpack_qconfig_mapping():
    """Default mapping with ``default_symmetric_qnnpack_qconfig`` as the default."""
    return _get_default_qconfig_mapping_with_default_qconfig(
        False, "qnnpack", default_symmetric_qnnpack_qconfig)


def _get_symmetric_qnnpack_qat_qconfig_mapping():
    """Default QAT mapping with ``default_symmetric_qnnpack_qat_qconfig`` as the default."""
    return _get_default_qconfig_mapping_with_default_qconfig(
        True, "qnnpack", default_symmetric_qnnpack_qat_qconfig)


_QCONFIG_STYLE_ORDER = [
    "global_qconfig",
    "object_type_qconfigs",
    "module_name_regex_qconfigs",
    "module_name_qconfigs",
    "module_name_object_type_order_qconfigs",
]


class QConfigMapping:
    """Mapping from model ops to :class:`~numq.quantization.qconfig.QConfig` s.

    Set in increasing match priority:

    - ``set_global(qconfig)``: the default;
    - ``set_object_type(type_or_name, qconfig)``: a layer class, function name or method
      name;
    - ``set_module_name_regex(regex, qconfig)``: module names matching a regex (first
      registered wins);
    - ``set_module_name(name, qconfig)``: one module;
    - ``set_module_name_object_type_order(name, type, index, qconfig)``: the ``index``-th
      call of ``type`` inside module ``name``.

    Every setter returns ``self`` (chainable); setting a key again replaces its qconfig
    and keeps its position.

    Examples
    --------
    >>> mapping = (QConfigMapping().set_global(global_qconfig)
    ...            .set_object_type(numq.layers.Linear, qconfig1)
    ...            .set_module_name_regex("foo.*bar.*conv[0-9]+", qconfig1)
    ...            .set_module_name("module1", qconfig2))
    """

    def __init__(self):
        self.global_qconfig = None
        self.object_type_qconfigs = collections.OrderedDict()
        self.module_name_regex_qconfigs = collections.OrderedDict()
        self.module_name_qconfigs = collections.OrderedDict()
        self.module_name_object_type_order_qconfigs = collections.OrderedDict()

    def set_global(self, global_qconfig):
        """Set the global (default) QConfig."""
        self.global_qconfig = global_qconfig
        return self

    def set_object_type(self, object_type, qconfig):
        """Set the QConfig for a layer class, function name or method name."""
        self.object_type_qconfigs[object_type] = qconfig
        return self

    def set_module_name_regex(self, module_name_regex, qconfig):
        """Set the QConfig for modules whose name matches ``module_name_regex``; regexes are
        tried in registration order, so register more specific patterns first."""
        self.module_name_regex_qconfigs[module_name_regex] = qconfig
        return self

    def set_module_name(self, module_name, qconfig):
        """Set the QConfig for the module named ``module_name``."""
        self.module_name_qconfigs[module_name] = qconfig
        return self

    def set_module_name_object_type_order(self, module_name, object_type, index, qconfig):
        """Set the QConfig for the ``index``-th occurrence of ``object_type`` in module
        ``module_name``."""
        self.module_name_object_type_order_qconfigs[(module_name, object_type, index)] = qconfig
        return self

    def __repr__(self):
        output = type(self).__name__ + " ("
        for style_name in _QCONFIG_STYLE_ORDER:
            output += f"\n {style_name}"
            qconfigs = getattr(self, style_name)
            if isinstance(qconfigs, collections.OrderedDict) and len(qconfigs) > 0:
                for key, qconfig in qconfigs.items():
                    output += f"\n  {key}: {qconfig}"
            else:
                output += f"\n  {qconfigs}"
        return output + "\n)"

    def to_dict(self):
        """This mapping as torch's legacy ``qconfig_dict``: keys ``""`` (global),
        ``"object_type"``, ``"module_name_regex"``, ``"module_name"``,
        ``"module_name_object_type_order"``; values are lists of tuples."""
        return {
            _GLOBAL_DICT_KEY: self.global_qconfig,
            _OBJECT_TYPE_DICT_KEY: list(self.object_type_qconfigs.items()),
            _MODULE_NAME_REGEX_DICT_KEY: list(self.module_name_regex_qconfigs.items()),
            _MODULE_NAME_DICT_KEY: list(self.module_name_qconfigs.items()),
            _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY: [
                (*k, v) for k, v in self.module_name_object_type_order_qconfigs.items()],
        }

    @classmethod
    def from_dict(cls, qconfig_dict):
        """Build a QConfigMapping from a ``qconfig_dict`` (every key optional)."""
        conf = cls()
        if _GLOBAL_DICT_KEY in qconfig_dict:
            conf.set_global(qconfig_dict[_GLOBAL_DICT_KEY])
        for object_type, qconfig in qconfig_dict.get(_OBJECT_TYPE_DICT_KEY, []):
            conf.set_object_type(object_type, qconfig)
        for module_name_regex, qconfig in qconfig_dict.get(_MODULE_NAME_REGEX_DICT_KEY, []):
            conf.set_module_name_regex(module_name_regex, qconfig)
        for module_name, qconfig in qconfig_dict.get(_MODULE_NAME_DICT_KEY, []):
            conf.set_module_name(module_name, qconfig)
        for module_name, object_type, index, qconfig in qconfig_dict.get(
                _MODULE_NAME_OBJECT_TYPE_ORDER_DICT_KEY, []):
            conf.set_module_name_object_type_order(module_name, object_type, index, qconfig)
        return conf
