"""Quantized ``Conv1d`` / ``Conv2d`` / ``Conv3d`` (``torch.ao.nn.quantized.Conv*d``).

The weight is prepacked once (:func:`numq.kernels.conv.pack_conv_weight`) at
construction, ``set_weight_bias``, ``from_float`` and ``load_state_dict``; ``forward``
only validates the input and runs the kernel. Shared state, state dict and conversion
live in :class:`numq.layers.quantized._conv_base._ConvNd`.

``padding_mode='reflect'`` (1-d and 2-d, as torch) reflect-pads the input codes before
a convolution without padding; 'zeros' pads with the input zero point (the padded
value dequantizes to 0).
"""
import numpy as np

from ...qtensor import QTensor
from .. import conv as _float
from . import _functional_conv as _F
from ._conv_base import _ConvNd

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


class _Conv(_ConvNd):
    """Forward and packing shared by Conv1d/2d/3d."""

    _relu = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        self._init(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                   0, groups, bias, padding_mode, device, dtype)

    def _prepack(self, w, b):
        name = type(self).__name__
        packed = _F.pack(w, self.groups, self._rank, name)
        # keep the QTensor as given for weight() / state_dict (a private copy)
        return packed, b, w.clone()

    def _unpack(self):
        _, b, w = self._packed_params
        return w.clone(), None if b is None else b.copy()

    def _pads(self):
        """``padding`` as passed to the kernel (0 when the input is reflect-padded)."""
        return (0,) * self._rank if self.padding_mode != "zeros" else self.padding

    def forward(self, input):
        """Convolve a quint8 QTensor ``(N, C, *spatial)``; returns a quint8 QTensor."""
        name = type(self).__name__
        x = _F.check_qinput(input, self._rank, name)
        if self.padding_mode == "reflect":
            x = _reflect_pad(x, self.padding, name)
        packed, b, _ = self._packed_params
        return _F.run(x, packed, b, self.stride, self._pads(), self.dilation, self.scale,
                      self.zero_point, self._relu, name)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A quantized layer from an observed float ``Conv*d`` (or its fused / QAT form).

        ``mod`` must carry a ``qconfig`` and (for static quantization) an
        ``activation_post_process`` observer that has seen data.
        """
        return _ConvNd.from_float(cls, mod, use_precomputed_fake_quant)


def _reflect_pad(x, padding, name):
    """Reflect-pad the spatial dims of QTensor ``x`` (codes copied, qparams kept)."""
    spatial = x.shape[2:]
    for p, n in zip(padding, spatial):
        if p >= n:
            raise ValueError(f"{name}: reflect padding {p} must be smaller than the input "
                             f"size {n} in every dimension (input size {tuple(spatial)})")
    codes = np.pad(x._int, [(0, 0), (0, 0)] + [(p, p) for p in padding], mode="reflect")
    return QTensor._from_parts(codes, x.dtype, scale=x.q_scale(), zero_point=x.q_zero_point())


_DOC = """Quantized {rank}-d convolution (``torch.ao.nn.quantized.Conv{rank}d``).

Input: quint8 QTensor ``{dims}``; output: quint8 QTensor with qparams ``scale`` /
``zero_point``, exact with torch 2.13's x86 engine.

Parameters
----------
in_channels, out_channels : int
kernel_size, stride, padding, dilation : int or tuple of {rank} ints
    (padding strings 'same' / 'valid' are refused, as torch's quantized prepack does)
groups : int
    Divides both channel counts. ``groups == in_channels`` (depthwise) runs a direct
    kernel.
bias : bool
padding_mode : {modes}
device, dtype : accepted for torch's signature (CPU only; the weight is qint8).

Attributes
----------
scale, zero_point : float, int
    Output quantization parameters (default 1.0, 0).
in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode

Methods ``weight()`` / ``bias()`` return the qint8 weight QTensor and float32 bias;
``set_weight_bias(w, b)`` replaces (and repacks) them. ``from_float(mod)`` converts an
observed float layer.
"""


class Conv1d(_Conv):
    __doc__ = _DOC.format(rank=1, dims="(N, C, L)", modes="'zeros' or 'reflect'")
    _rank = 1
    _FLOAT_MODULE = _float.Conv1d


class Conv2d(_Conv):
    __doc__ = _DOC.format(rank=2, dims="(N, C, H, W)", modes="'zeros' or 'reflect'")
    _rank = 2
    _FLOAT_MODULE = _float.Conv2d


class Conv3d(_Conv):
    __doc__ = _DOC.format(rank=3, dims="(N, C, D, H, W)", modes="'zeros'")
    _rank = 3
    _FLOAT_MODULE = _float.Conv3d
