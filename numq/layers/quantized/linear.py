"""Quantized ``Linear`` (``torch.ao.nn.quantized.Linear``) and its packed parameters.

The weight lives once, packed for the int8 GEMM (:class:`numq.kernels.gemm.PackedLinearWeight`,
packed at ``set_weight_bias`` / ``from_float`` / ``load_state_dict``, never per call);
``weight()`` unpacks a QTensor on demand.

State dict (plain NumPy arrays; reloads exactly). torch 2.13 keeps
``_packed_params._packed_params`` as a ``(weight QTensor, bias)`` tuple and
``_packed_params.dtype`` as a torch dtype; numq spells them out:

============================== ================================================
key                            value
============================== ================================================
``scale``                      float64 0-d (torch: float32 0-d)
``zero_point``                 int64 0-d
``_packed_params.weight``      int8 ``(out, in)`` codes (float16 for a float16
                               dynamic Linear; its dtype names the packed dtype)
``_packed_params.weight_scale``  float64: 0-d per tensor, ``(out,)`` per channel
``_packed_params.weight_zero_point``  int64, same shape
``_packed_params.weight_axis`` int64 0-d: -1 per tensor, 0 per channel
``_packed_params.bias``        float32 ``(out,)``; absent when there is no bias
============================== ================================================

:func:`convert_torch_linear_state_dict` maps torch's keys to these.
"""
import numbers

import numpy as np

from ... import _validate as V
from ...dtypes import as_qdtype, float16, qint8
from ...functional import _make_per_channel_quantized_tensor, _make_per_tensor_quantized_tensor
from ..linear import Linear as _FloatLinear, NonDynamicallyQuantizableLinear
from ..module import Module
from . import _functional_linear as _F
from ._conv_base import _quantize_weight

__all__ = ["Linear", "LinearPackedParams", "convert_torch_linear_state_dict"]

_PP_KEYS = ("weight", "weight_scale", "weight_zero_point", "weight_axis", "bias")


def _features(v, arg, name, hi=None):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name}: {arg} must be an int; got {type(v).__name__}")
    if v < 1:  # torch accepts 0 and then computes on uninitialised memory
        raise ValueError(f"{name}: {arg} must be >= 1; got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name}: {arg} must be <= {hi} (int32 accumulation stays exact); "
                         f"got {v}")
    return int(v)


class LinearPackedParams(Module):
    """The packed weight and float bias of a quantized Linear (a child module, as torch).

    Parameters
    ----------
    dtype : QDType
        ``numq.qint8`` (int8 weight for the int8 GEMM) or ``numq.float16`` (dynamic
        Linear only: weight rounded to float16, float32 GEMM).
    owner : str
        Name used in error messages.
    """

    _version = 3

    def __init__(self, dtype=qint8, owner="LinearPackedParams", allowed=(qint8, float16)):
        super().__init__()
        self.dtype = as_qdtype(dtype, allowed=allowed)
        self._owner = owner
        self._allowed = tuple(allowed)
        self._packed_params = None
        self._bias = None

    # ---------------------------------------------------------------- weights
    @property
    def in_features(self):
        p = self._packed_params
        return p.k if self.dtype is qint8 else p.shape[1]

    @property
    def out_features(self):
        p = self._packed_params
        return p.n if self.dtype is qint8 else p.shape[0]

    def set_weight_bias(self, weight, bias, shape=None):
        """Validate, then pack ``weight`` once and keep ``bias`` (float32 or None).

        ``shape``, if given, is the ``(out_features, in_features)`` the weight must have.
        """
        name = self._owner
        if self.dtype is qint8:
            _F._check_qweight(weight, name)
        else:
            _F._check_fp16_weight(weight, name, check_only=True)
        if shape is not None and tuple(weight.shape) != tuple(shape):
            raise ValueError(f"{name}: weight must have shape {tuple(shape)}; got "
                             f"{tuple(weight.shape)}")
        if self.dtype is qint8:
            packed = _F._pack(weight, name)
            n = packed.n
        else:
            packed = _F._check_fp16_weight(weight, name)
            n = packed.shape[0]
        b = _F._check_bias(bias, n, name)
        self._packed_params = packed
        self._bias = b

    def _weight_bias(self):
        """``(weight, bias)``: a qint8 QTensor (float32 array for float16), bias or None."""
        if self.dtype is qint8:
            return _F._unpack(self._packed_params), self._bias
        return self._packed_params.copy(), self._bias

    def forward(self, x):
        return x

    # ------------------------------------------------------------- state dict
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.dtype is qint8:
            p = self._packed_params
            destination[prefix + "weight"] = _F._G.unpack_linear_weight(p)
            if p.per_channel:
                destination[prefix + "weight_scale"] = np.array(p.scales, np.float64)
                destination[prefix + "weight_zero_point"] = np.array(p.zero_points, np.int64)
                destination[prefix + "weight_axis"] = np.array(0, np.int64)
            else:
                destination[prefix + "weight_scale"] = np.array(p.scales[0], np.float64)
                destination[prefix + "weight_zero_point"] = np.array(p.zero_points[0],
                                                                     np.int64)
                destination[prefix + "weight_axis"] = np.array(-1, np.int64)
        else:
            destination[prefix + "weight"] = self._packed_params.astype(np.float16)
        if self._bias is not None:
            destination[prefix + "bias"] = self._bias

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for k in _PP_KEYS)

    def _weight_from_state(self, state_dict, prefix, missing_keys):
        """The weight (QTensor or float array) described by ``state_dict``, or None."""
        w = np.asarray(state_dict[prefix + "weight"])
        if w.dtype == np.float16:
            if float16 not in self._allowed:
                raise TypeError(f"{prefix}weight: {self._owner} takes int8 weight codes "
                                "(qint8); got float16 values (a float16 dynamic Linear's)")
            self.dtype = float16
            return w.astype(np.float32)
        if w.dtype != np.int8:
            raise TypeError(f"{prefix}weight must hold int8 codes (qint8) or float16 "
                            f"values; got dtype {w.dtype}")
        self.dtype = qint8
        keys = [prefix + k for k in ("weight_scale", "weight_zero_point", "weight_axis")]
        absent = [k for k in keys if k not in state_dict]
        if absent:
            missing_keys.extend(absent)
            return None
        s, z, a = (np.asarray(state_dict[k]) for k in keys)
        axis = int(a.reshape(()))
        if axis == -1:
            return _make_per_tensor_quantized_tensor(w, float(s.reshape(())),
                                                     int(z.reshape(())), qint8)
        return _make_per_channel_quantized_tensor(w, s, z, axis, qint8)

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
        else:
            old = self.dtype
            want = (self.out_features, self.in_features)
            try:
                w = self._weight_from_state(state_dict, prefix, missing_keys)
                if w is not None:
                    if tuple(w.shape) != want:
                        raise ValueError(
                            f"size mismatch for {key}: copying a param with shape "
                            f"{tuple(w.shape)} from checkpoint, the shape in current model "
                            f"is {want}.")
                    self.set_weight_bias(w, state_dict.get(prefix + "bias"))
                else:
                    self.dtype = old
            except (TypeError, ValueError) as e:
                self.dtype = old
                error_msgs.append(str(e))
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def __repr__(self):
        return repr(self._weight_bias())


class Linear(Module):
    """Quantized ``y = x @ W.T + b``, quint8 in and out (``torch.ao.nn.quantized.Linear``).

    Parameters
    ----------
    in_features, out_features : int
    bias_ : bool
        Whether the layer has a (float32) bias; initialised to zeros.
    dtype : QDType
        ``numq.qint8`` (the only weight dtype of static quantized Linear).

    Attributes
    ----------
    scale : float
        Output scale (default 1.0); assigning a non-positive or non-finite value raises.
    zero_point : int
        Output zero point in [0, 255] (default 0).

    Notes
    -----
    ``forward(x)``: ``x`` a quint8 per-tensor QTensor of shape ``(*, in_features)``
    (at least 2-d, as torch); returns a quint8 QTensor ``(*, out_features)`` with
    ``(scale, zero_point)``. Codes equal torch 2.13's (x86 / fbgemm) bit for bit.
    The initial weight is all zeros with scale 1.0 (torch leaves it uninitialised).
    """

    _version = 3
    _FLOAT_MODULE = (_FloatLinear, NonDynamicallyQuantizableLinear)
    _relu = False

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        super().__init__()
        name = type(self).__name__
        self.in_features = _features(in_features, "in_features", name, _F._G.K_MAX)
        self.out_features = _features(out_features, "out_features", name)
        dt = as_qdtype(dtype, allowed=self._dtypes())
        self._packed_params = LinearPackedParams(dt, owner=name, allowed=self._dtypes())
        shape = (self.out_features, self.in_features)
        if dt is qint8:
            w = _make_per_tensor_quantized_tensor(np.zeros(shape, np.int8), 1.0, 0, qint8)
        else:
            w = np.zeros(shape, np.float32)
        self._packed_params.set_weight_bias(
            w, np.zeros(self.out_features, np.float32) if bias_ else None)
        self.scale = 1.0
        self.zero_point = 0

    @classmethod
    def _dtypes(cls):
        return (qint8,)

    # ------------------------------------------------------------ qparams
    @property
    def scale(self):
        return self._scale

    @scale.setter
    def scale(self, v):
        self._scale = V.scale_scalar(v, f"{type(self).__name__}: scale")

    @property
    def zero_point(self):
        return self._zero_point

    @zero_point.setter
    def zero_point(self, v):
        self._zero_point = V.int_scalar(v, f"{type(self).__name__}: zero_point", 0, 255)

    # ------------------------------------------------------------ weights
    def _weight_bias(self):
        return self._packed_params._weight_bias()

    def weight(self):
        """The weight: a qint8 QTensor ``(out_features, in_features)``, unpacked on demand."""
        return self._weight_bias()[0]

    def bias(self):
        """The float32 bias ``(out_features,)`` (the layer's own array), or None."""
        return self._packed_params._bias

    def set_weight_bias(self, w, b):
        """Set the weight (qint8 QTensor) and bias (float array or None); packs once."""
        self._packed_params.set_weight_bias(w, b, shape=(self.out_features, self.in_features))

    # ------------------------------------------------------------ forward
    def forward(self, x):
        """Quantized linear (ReLU-fused for ``LinearReLU``); see the class notes."""
        pp = self._packed_params
        return _F._linear_static(x, pp._packed_params, pp._bias, self._scale,
                                 self._zero_point, self._relu, type(self).__name__)

    # --------------------------------------------------------- state dict
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "scale"] = np.array(self.scale, np.float64)
        destination[prefix + "zero_point"] = np.array(self.zero_point, np.int64)

    def _extra_state_keys(self, prefix):
        return (prefix + "scale", prefix + "zero_point")

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for key, attr, conv in (("scale", "scale", float), ("zero_point", "zero_point", int)):
            if prefix + key not in state_dict:
                missing_keys.append(prefix + key)
                continue
            try:
                setattr(self, attr, conv(np.asarray(state_dict[prefix + key]).reshape(())))
            except (TypeError, ValueError) as e:
                error_msgs.append(str(e))
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # --------------------------------------------------------------- repr
    def _get_name(self):
        return "Quantized" + type(self).__name__

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scale={self.scale}, zero_point={self.zero_point}, "
                f"qscheme={self.weight().qscheme()}")

    def __repr__(self):
        # the packed-params child is hidden, as torch's _hide_packed_params_repr does
        return f"{self._get_name()}({self.extra_repr()})"

    # --------------------------------------------------------- conversion
    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A quantized layer from an observed float (or QAT) Linear.

        ``mod`` is a ``numq.layers.Linear`` (or the fused ``intrinsic.LinearReLU`` for
        ``LinearReLU``) with a ``qconfig`` and an ``activation_post_process`` observer that
        has seen data, or a QAT module with ``weight_fake_quant``. The weight observer
        (``qconfig.weight()``) observes the weight unless ``use_precomputed_fake_quant``.
        """
        name = cls.__name__
        if hasattr(mod, "weight_fake_quant"):
            weight_post_process = mod.weight_fake_quant
            activation_post_process = getattr(mod, "activation_post_process", None)
        else:
            if type(mod) not in cls._FLOAT_MODULE:
                want = ", ".join(t.__name__ for t in cls._FLOAT_MODULE)
                raise TypeError(f"{name}.from_float only works for {want}; got "
                                f"{type(mod).__name__}")
            if getattr(mod, "qconfig", None) is None:
                raise ValueError(f"{name}.from_float: the float module must have a qconfig")
            activation_post_process = getattr(mod, "activation_post_process", None)
            qconfig = mod.qconfig
            if cls._relu:
                mod = mod[0]
            weight_post_process = (getattr(mod, "qconfig", None) or qconfig).weight()
        if activation_post_process is None:
            raise ValueError(f"{name}.from_float: the float module must have an observed "
                             "activation_post_process (run prepare and calibrate first)")
        weight = np.asarray(_F._arr(mod.weight), np.float32)
        if not use_precomputed_fake_quant:
            weight_post_process(weight)
        if weight_post_process.dtype is not qint8:
            raise ValueError(f"{name}.from_float: the weight observer must have dtype qint8; "
                             f"got {weight_post_process.dtype!r}")
        act_scale, act_zp = activation_post_process.calculate_qparams()
        qweight = _quantize_weight(weight, weight_post_process)
        q = cls(mod.in_features, mod.out_features, dtype=qint8)
        q.set_weight_bias(qweight, None if mod.bias is None else _F._arr(mod.bias))
        q.scale = float(np.asarray(act_scale).reshape(-1)[0])
        q.zero_point = int(np.asarray(act_zp).reshape(-1)[0])
        return q

    @classmethod
    def from_reference(cls, ref_qlinear, output_scale, output_zero_point):
        """A quantized layer from a reference quantized Linear (``get_quantized_weight()``,
        ``bias``, ``in_features``, ``out_features``) and the output qparams."""
        if cls._relu:
            ref_qlinear = ref_qlinear[0]
        q = cls(ref_qlinear.in_features, ref_qlinear.out_features)
        b = ref_qlinear.bias
        q.set_weight_bias(ref_qlinear.get_quantized_weight(),
                          None if b is None else _F._arr(b))
        q.scale = float(output_scale)
        q.zero_point = int(output_zero_point)
        return q


# ------------------------------------------------------------- torch interop
def _qtensor_parts(w):
    """Codes, scales, zero points and axis of a qint8 quantized tensor (torch or numq),
    read through the methods both share."""
    codes = np.asarray(w.int_repr())
    if "per_channel" in str(w.qscheme()):
        return (codes, np.asarray(w.q_per_channel_scales(), np.float64),
                np.asarray(w.q_per_channel_zero_points(), np.int64),
                int(w.q_per_channel_axis()))
    return codes, float(w.q_scale()), int(w.q_zero_point()), -1


def convert_torch_linear_state_dict(state_dict):
    """Map a torch quantized-Linear state dict to numq's keys.

    Every ``<p>_packed_params._packed_params`` ``(weight, bias)`` pair (with its
    ``<p>_packed_params.dtype``) becomes numq's ``<p>_packed_params.weight`` /
    ``weight_scale`` / ``weight_zero_point`` / ``weight_axis`` / ``bias`` arrays;
    ``<p>scale`` / ``<p>zero_point`` become float64 / int64 0-d arrays. Other entries
    are returned unchanged. Tensors are read through ``numpy.asarray`` and the quantized
    tensor methods (``int_repr``, ``q_scale`` ...), so torch is never imported.

    Parameters
    ----------
    state_dict : Mapping
        e.g. ``torch_model.state_dict()``.

    Returns
    -------
    dict
    """
    out = {}
    groups = [k[:-len("_packed_params._packed_params")] for k in state_dict
              if k.endswith("_packed_params._packed_params")]
    for k, v in state_dict.items():
        p = next((g for g in groups if k in (g + "scale", g + "zero_point",
                                             g + "_packed_params.dtype",
                                             g + "_packed_params._packed_params")), None)
        if p is None:
            out[k] = v
        elif k == p + "scale":
            out[k] = np.array(float(np.asarray(v)), np.float64)
        elif k == p + "zero_point":
            out[k] = np.array(int(np.asarray(v)), np.int64)
    for p in groups:
        w, b = state_dict[p + "_packed_params._packed_params"]
        dt = str(state_dict.get(p + "_packed_params.dtype", "qint8"))
        pp = p + "_packed_params."
        if dt.endswith("float16"):
            out[pp + "weight"] = np.clip(np.asarray(w, np.float32), -65504.0,
                                         65504.0).astype(np.float16)
        else:
            codes, s, z, axis = _qtensor_parts(w)
            out[pp + "weight"] = codes.astype(np.int8)
            out[pp + "weight_scale"] = np.array(s, np.float64)
            out[pp + "weight_zero_point"] = np.array(z, np.int64)
            out[pp + "weight_axis"] = np.array(axis, np.int64)
        if b is not None:
            out[pp + "bias"] = np.array(np.asarray(b), np.float32)
    return out
