"""``_ConvNd``: what every quantized (transposed) convolution layer shares.

``torch.ao.nn.quantized.modules.conv._ConvNd``: constructor checks, the output
``scale`` / ``zero_point``, the weight and bias kept *prepacked* (packed once by
:meth:`_ConvNd.set_weight_bias`, never per call), ``weight()`` / ``bias()`` that
unpack them, the state dict, ``repr`` and ``from_float`` / ``from_reference``.

State dict: plain NumPy arrays, as the quantized Linear's (torch keeps ``weight`` as a
quantized tensor and ``scale`` as float32; numq spells the weight out and keeps the
scale exactly):

===================== =====================================================
key                   value
===================== =====================================================
``weight``            int8 codes, the weight's shape
``weight_scale``      float64: 0-d per tensor, ``(channels,)`` per channel
``weight_zero_point`` int64, same shape
``weight_axis``       int64 0-d: -1 per tensor, else the channel axis
``bias``              float32 ``(out_channels,)``; absent without bias
``scale``             float64 0-d (output scale)
``zero_point``        int64 0-d (output zero point)
===================== =====================================================

``load_state_dict`` also takes a qint8 QTensor as ``weight`` (torch's layout, the
``weight_*`` keys then unused).

A subclass sets ``_rank`` and ``_FLOAT_MODULE`` (and the fused / QAT module types it
converts from), implements ``_prepack(w, b)`` (return anything; stored as
``self._packed_params``) and ``_unpack()`` (return ``(weight QTensor, bias or None)``
exactly as given), and ``forward``.
"""
import numbers

import numpy as np

from ... import _validate as V
from ...dtypes import (per_channel_affine, per_channel_affine_float_qparams,
                       per_channel_symmetric, per_tensor_affine, per_tensor_symmetric, qint8)
from ...functional import (_make_per_channel_quantized_tensor, _make_per_tensor_quantized_tensor,
                           quantize_per_channel, quantize_per_tensor)
from ...qtensor import QTensor
from ..functional import _linear_conv as _F
from ..module import Module

__all__ = ["_ConvNd", "_quantize_weight", "_fuse_conv_bn_weights"]

_SUPPORTED_PADDING = ("zeros", "reflect")
_STATE_KEYS = ("weight", "weight_scale", "weight_zero_point", "weight_axis", "bias", "scale",
               "zero_point")


def _channels(v, arg, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name}: {arg} must be an int; got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{name}: {arg} must be greater than 0; got {v}")
    return int(v)


def _quantize_weight(float_wt, observer):
    """Quantize a float weight with an observer's qparams (torch's ``_quantize_weight``).

    The observer must already have seen the weight. Codes are clamped to the
    observer's ``[quant_min, quant_max]`` when that is narrower than qint8's range.
    """
    w = np.asarray(float_wt.data if hasattr(float_wt, "grad") else float_wt, dtype=np.float32)
    scale, zp = observer.calculate_qparams()
    qs = observer.qscheme
    if qs in (per_tensor_symmetric, per_tensor_affine):
        q = quantize_per_tensor(w, float(np.asarray(scale).reshape(-1)[0]),
                                int(np.asarray(zp).reshape(-1)[0]), qint8)
    elif qs in (per_channel_symmetric, per_channel_affine):
        q = quantize_per_channel(w, np.asarray(scale, np.float64), np.asarray(zp, np.int64),
                                 observer.ch_axis, qint8)
    elif qs is per_channel_affine_float_qparams:
        q = quantize_per_channel(w, np.asarray(scale, np.float32),
                                 np.asarray(zp, np.float32), observer.ch_axis, observer.dtype)
    else:
        raise ValueError(f"unexpected weight observer qscheme {qs!r}")
    lo, hi = getattr(observer, "quant_min", None), getattr(observer, "quant_max", None)
    if lo is not None and hi is not None and (lo > q.dtype.qmin or hi < q.dtype.qmax):
        ints = np.clip(q._int, lo, hi).astype(q._int.dtype)
        if q._axis is None:
            q = _make_per_tensor_quantized_tensor(ints, q.q_scale(), q.q_zero_point(), q.dtype)
        else:
            q = _make_per_channel_quantized_tensor(ints, q._scales, q._zps, q._axis, q.dtype)
    return q


def _fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """Fold a BatchNorm into the preceding convolution's weight and bias (float32).

    Same formula as torch's ``fuse_conv_bn_weights``:
    ``w * (gamma / sqrt(var + eps))`` per output channel and
    ``(b - mean) / sqrt(var + eps) * gamma + beta``.
    """
    def arr(v):
        return np.asarray(v.data if hasattr(v, "grad") else v, dtype=np.float32)

    w = arr(conv_w)
    rm, rv = arr(bn_rm), arr(bn_rv)
    gamma = np.ones_like(rm) if bn_w is None else arr(bn_w)
    beta = np.zeros_like(rm) if bn_b is None else arr(bn_b)
    b = np.zeros_like(rm) if conv_b is None else arr(conv_b)
    rsqrt = (np.float32(1.0) / np.sqrt(rv + np.float32(bn_eps))).astype(np.float32)
    shape = [1] * w.ndim
    shape[1 if transpose else 0] = -1
    fw = (w * (gamma * rsqrt).reshape(shape)).astype(np.float32)
    fb = ((b - rm) * rsqrt * gamma + beta).astype(np.float32)
    return fw, fb


class _ConvNd(Module):
    """Base of ``numq.layers.quantized.Conv{1,2,3}d`` and ``ConvTranspose{1,2,3}d``."""

    _rank = 0
    _FLOAT_MODULE = None
    _NNIQAT_CONV_BN_MODULE = None

    def _init(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
              transposed, output_padding, groups, bias, padding_mode="zeros", device=None,
              dtype=None):
        super().__init__()
        name = type(self).__name__
        rank = self._rank
        if device not in (None, "cpu"):
            raise ValueError(f"{name}: device must be None or 'cpu'; got {device!r}")
        in_channels = _channels(in_channels, "in_channels", name)
        out_channels = _channels(out_channels, "out_channels", name)
        groups = _F._groups(groups, name)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if isinstance(padding, str):
            # torch's quantized prepack takes int lists only (a string crashes deep inside)
            raise ValueError(f"{name}: padding must be an int or a tuple of {rank} ints; "
                             f"quantized convolution does not support padding={padding!r}")
        if padding_mode not in _SUPPORTED_PADDING:
            raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported by "
                             f"quantized convolution; use one of {list(_SUPPORTED_PADDING)}")
        if padding_mode == "reflect" and (transposed or rank == 3):
            raise ValueError(f"{name} does not support reflection padding")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _F._ntuple(kernel_size, rank, name, "kernel_size", 1)
        self.stride = _F._ntuple(stride, rank, name, "stride", 1)
        self.padding = _F._ntuple(padding, rank, name, "padding", 0)
        self.dilation = _F._ntuple(dilation, rank, name, "dilation", 1)
        self.transposed = bool(transposed)
        self.output_padding = _F._ntuple(output_padding, rank, name, "output_padding", 0)
        self.groups = groups
        self.padding_mode = padding_mode
        shape = ((in_channels, out_channels // groups) if transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        qweight = _make_per_tensor_quantized_tensor(np.zeros(shape, np.int8), 1.0, 0, qint8)
        self.set_weight_bias(qweight, np.zeros(out_channels, np.float32) if bias else None)
        self.scale = 1.0
        self.zero_point = 0

    # ------------------------------------------------------------ weights
    def _weight_shape(self):
        g = self.groups
        lead = ((self.in_channels, self.out_channels // g) if self.transposed
                else (self.out_channels, self.in_channels // g))
        return lead + tuple(self.kernel_size)

    def _check_weight_bias(self, w, b):
        """Validate ``w`` (qint8 QTensor of this layer's weight shape) and ``b``."""
        name = type(self).__name__
        if not isinstance(w, QTensor):
            raise TypeError(f"{name}: weight must be a quantized tensor (QTensor, qint8); "
                            f"got {type(w).__name__}")
        if w.dtype is not qint8:
            raise TypeError(f"{name}: weight must have dtype qint8; got {w.dtype!r}")
        if w.qscheme() not in (per_tensor_affine, per_channel_affine):
            raise ValueError(f"{name}: weight must be per_tensor_affine or per_channel_affine "
                             f"quantized; got {w.qscheme()!r}")
        want = self._weight_shape()
        if tuple(w.shape) != want:
            raise ValueError(f"{name}: weight must have shape {want}; got {tuple(w.shape)}")
        if b is None:
            return None
        if isinstance(b, QTensor):
            raise TypeError(f"{name}: bias must be a float array (it is not quantized); "
                            "got a QTensor")
        b = np.asarray(b.data if hasattr(b, "grad") else b)
        if b.dtype.kind != "f":
            raise TypeError(f"{name}: bias must be a float array; got dtype {b.dtype}")
        if b.shape != (self.out_channels,):
            raise ValueError(f"{name}: bias must have shape ({self.out_channels},); "
                             f"got {b.shape}")
        return np.array(b, dtype=np.float32)

    def set_weight_bias(self, w, b):
        """Set (and prepack, once) the qint8 weight and the float bias (or None)."""
        b = self._check_weight_bias(w, b)
        self._packed_params = self._prepack(w, b)

    def _weight_bias(self):
        return self._unpack()

    def weight(self):
        """The qint8 weight QTensor (unpacked from the packed form)."""
        return self._weight_bias()[0]

    def bias(self):
        """The float32 bias, or None."""
        return self._weight_bias()[1]

    # ---------------------------------------------------- output qparams
    @property
    def scale(self):
        return self._scale

    @scale.setter
    def scale(self, v):
        self._scale = V.scale_scalar(v, "scale")

    @property
    def zero_point(self):
        return self._zero_point

    @zero_point.setter
    def zero_point(self, v):
        self._zero_point = V.int_scalar(v, "zero_point", 0, 255)

    # ----------------------------------------------------------- state
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        w, b = self._weight_bias()
        destination[prefix + "weight"] = w.int_repr()
        if w.qscheme() is per_tensor_affine:
            destination[prefix + "weight_scale"] = np.array(w.q_scale(), np.float64)
            destination[prefix + "weight_zero_point"] = np.array(w.q_zero_point(), np.int64)
            destination[prefix + "weight_axis"] = np.array(-1, np.int64)
        else:
            destination[prefix + "weight_scale"] = np.array(w.q_per_channel_scales(),
                                                            np.float64)
            destination[prefix + "weight_zero_point"] = np.array(
                w.q_per_channel_zero_points(), np.int64)
            destination[prefix + "weight_axis"] = np.array(w.q_per_channel_axis(), np.int64)
        if b is not None:
            destination[prefix + "bias"] = b
        destination[prefix + "scale"] = np.array(self.scale, np.float64)
        destination[prefix + "zero_point"] = np.array(self.zero_point, np.int64)

    def _extra_state_keys(self, prefix):
        return tuple(prefix + k for k in _STATE_KEYS)

    @staticmethod
    def _weight_from_state(state_dict, prefix, missing_keys):
        """The weight QTensor described by ``state_dict`` (None if keys are missing)."""
        w = state_dict[prefix + "weight"]
        if isinstance(w, QTensor):  # torch's layout: the quantized weight itself
            return w
        w = np.asarray(w)
        if w.dtype != np.int8:
            raise TypeError(f"{prefix}weight must hold int8 codes (qint8) or be a qint8 "
                            f"QTensor; got dtype {w.dtype}")
        keys = [prefix + k for k in ("weight_scale", "weight_zero_point", "weight_axis")]
        absent = [k for k in keys if k not in state_dict]
        if absent:
            missing_keys.extend(absent)
            return None
        sc, zp, ax = (np.asarray(state_dict[k]) for k in keys)
        axis = int(ax.reshape(()))
        if axis == -1:
            return _make_per_tensor_quantized_tensor(w, float(sc.reshape(())),
                                                     int(zp.reshape(())), qint8)
        return _make_per_channel_quantized_tensor(w, sc, zp, axis, qint8)

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        absent = [prefix + k for k in ("weight", "scale", "zero_point")
                  if prefix + k not in state_dict]
        if absent:
            missing_keys.extend(absent)
        else:
            try:
                w = self._weight_from_state(state_dict, prefix, missing_keys)
                if w is not None:
                    self.set_weight_bias(w, state_dict.get(prefix + "bias"))
                    self.scale = float(np.asarray(state_dict[prefix + "scale"]).reshape(()))
                    self.zero_point = int(np.asarray(
                        state_dict[prefix + "zero_point"]).reshape(()))
            except (TypeError, ValueError) as e:
                error_msgs.append(f"{prefix}weight: {e}")
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------ repr
    def _get_name(self):
        return "Quantized" + type(self).__name__

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, scale={self.scale}, zero_point={self.zero_point}")
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias() is None:
            s += ", bias=False"
        return s

    def __repr__(self):
        return self._get_name() + super().__repr__()[len(type(self).__name__):]

    # ------------------------------------------------------ conversion
    @classmethod
    def _ctor_args(cls, mod):
        """Constructor arguments of ``cls`` taken from float module ``mod``."""
        return (mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                mod.dilation, mod.groups, mod.bias is not None, mod.padding_mode)

    @classmethod
    def get_qconv(cls, mod, activation_post_process, weight_post_process=None):
        """A quantized layer from float conv ``mod`` (observers already run on activations)."""
        if weight_post_process is None:
            weight_post_process = mod.qconfig.weight()
        weight_post_process(np.asarray(mod.weight.data, np.float32))
        if weight_post_process.dtype is not qint8:
            raise ValueError(f"{cls.__name__}: the weight observer must have dtype qint8; "
                             f"got {weight_post_process.dtype!r}")
        qweight = _quantize_weight(mod.weight, weight_post_process)
        qconv = cls(*cls._ctor_args(mod))
        qconv.set_weight_bias(qweight, None if mod.bias is None else mod.bias.data)
        if activation_post_process is None or getattr(
                activation_post_process, "dtype", None) in (np.float32, np.dtype(np.float32)):
            return qconv  # dynamic quantization: no output qparams
        s, z = activation_post_process.calculate_qparams()
        qconv.scale = float(np.asarray(s).reshape(-1)[0])
        qconv.zero_point = int(np.asarray(z).reshape(-1)[0])
        return qconv

    @staticmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Shared body of the subclasses' ``from_float`` classmethods (as torch)."""
        if hasattr(mod, "weight_fake_quant"):
            if cls._NNIQAT_CONV_BN_MODULE is not None and \
                    isinstance(mod, cls._NNIQAT_CONV_BN_MODULE):
                bn = mod.bn
                w, b = _fuse_conv_bn_weights(mod.weight, mod.bias, bn.running_mean,
                                             bn.running_var, bn.eps, bn.weight, bn.bias)
                mod.weight.data[...] = w
                if mod.bias is None:
                    from ..parameter import Parameter
                    mod.bias = Parameter(b)
                else:
                    mod.bias.data[...] = b
            if not hasattr(mod, "activation_post_process"):
                raise ValueError(f"{cls.__name__}.from_float: the QAT module must have an "
                                 "observer attached (activation_post_process)")
            weight_post_process = mod.weight_fake_quant
            activation_post_process = mod.activation_post_process
        else:
            if cls._FLOAT_MODULE is None or type(mod) is not cls._FLOAT_MODULE:
                want = getattr(cls._FLOAT_MODULE, "__name__", None)
                raise TypeError(f"{cls.__name__}.from_float only works for {want}; got "
                                f"{type(mod).__name__}")
            if getattr(mod, "qconfig", None) is None:
                raise ValueError(f"{cls.__name__}.from_float: the float module must have a "
                                 "qconfig")
            activation_post_process = getattr(mod, "activation_post_process", None)
            qconfig = mod.qconfig
            # a fused float module (ConvReLU*d ...) holds the convolution first;
            # imported here: numq.layers.intrinsic imports the quantized layers
            from ..intrinsic.fused import _FusedModule
            if isinstance(mod, _FusedModule):
                mod = mod[0]
            weight_post_process = (getattr(mod, "qconfig", None) or qconfig).weight()
        return cls.get_qconv(mod, activation_post_process, weight_post_process)

    @classmethod
    def from_reference(cls, ref_qconv, output_scale, output_zero_point):
        """A quantized layer from a reference quantized conv module and output qparams."""
        qconv = cls(*cls._ctor_args(ref_qconv))
        qconv.set_weight_bias(ref_qconv.get_quantized_weight(),
                              None if ref_qconv.bias is None else ref_qconv.bias.data)
        qconv.scale = float(output_scale)
        qconv.zero_point = int(output_zero_point)
        return qconv
