"""Quantized transposed convolution layers (``torch.ao.nn.quantized.ConvTranspose{1,2,3}d``).

uint8 (quint8, per tensor) input -> uint8 output with the layer's ``scale`` /
``zero_point``; qint8 weight packed once (``set_weight_bias``, ``from_float``,
``load_state_dict``), float32 bias added in the requantization epilogue. Results are
bit-exact with torch 2.13's ``fbgemm`` engine.

Where numq differs from torch, on purpose:

- Per-channel weights are supported, quantized along axis 1 of the weight (the output
  channels of a group: ``(IC, OC/groups, *k)``, so one scale per ``oc % (OC/groups)``,
  shared across groups). torch refuses every per-channel transposed-conv weight.
- torch's ``x86`` (oneDNN) engine gives wrong results when ``in_channels !=
  out_channels`` (and differs by 1 in rare ties otherwise); numq matches ``fbgemm``,
  except where fbgemm itself is wrong: 2-d 2x2 kernels with >= 8 input and output
  channels (its prepack scrambles the weight); there numq matches the definition and
  torch's ``qnnpack`` engine.
- ``forward`` accepts ``output_size`` like the float layer (torch's quantized layer
  documents it but has no such argument).
- A negative ``padding`` is refused (torch's prepack silently accepts it).
- ``output_padding`` may be >= both stride and dilation, as torch's quantized layer
  allows; the extra positions hold the requantized bias.

The output is a QTensor whose integer array is an NCHW *view* of a channels-last
buffer (what the kernels produce); a following numq convolution reads it without a
copy, and every QTensor method behaves as for a contiguous tensor.
"""
import numpy as np

from ...dtypes import per_tensor_affine, qint8, quint8
from ...functional import _make_per_channel_quantized_tensor, _make_per_tensor_quantized_tensor
from ...kernels.conv_transpose import (conv_transpose_output_size, pack_conv_transpose_weight,
                                       qconv_transpose)
from ...qtensor import QTensor
from .. import conv as _float_conv
from ._conv_base import _ConvNd

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _Packed:
    """What ``set_weight_bias`` keeps: the packed kernel weight, its qparams, the bias."""

    __slots__ = ("kernel", "scales", "zero_points", "bias")

    def __init__(self, kernel, scales, zero_points, bias):
        self.kernel = kernel
        self.scales = scales            # float (per tensor) or (OC/groups,) float64
        self.zero_points = zero_points  # int or (OC/groups,) int64
        self.bias = bias


class _ConvTransposeNd(_ConvNd):
    """Shared constructor, packing and forward of the quantized transposed convolutions."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}; got padding_mode={padding_mode!r}")
        self._init(in_channels, out_channels, kernel_size, stride, padding, dilation, True,
                   output_padding, groups, bias, padding_mode, device, dtype)

    # ------------------------------------------------------------ packing
    def _prepack(self, w, b):
        name = type(self).__name__
        G = self.groups
        codes = np.ascontiguousarray(w._int, dtype=np.int8)
        if w.qscheme() is per_tensor_affine:
            s, z = w.q_scale(), w.q_zero_point()
            kernel = pack_conv_transpose_weight(codes, s, z, G, *self._geometry())
        else:
            if w.q_per_channel_axis() != 1:
                raise ValueError(
                    f"{name}: a per-channel weight must be quantized along axis 1 (output "
                    f"channels, weight shape (in_channels, out_channels/groups, *kernel)); "
                    f"got axis {w.q_per_channel_axis()}. Use a per-tensor weight observer "
                    f"or ch_axis=1")
            s, z = w.q_per_channel_scales(), w.q_per_channel_zero_points()
            # output channel g * OC/groups + j uses the weight's channel j
            kernel = pack_conv_transpose_weight(codes, np.tile(s, G), np.tile(z, G), G,
                                                *self._geometry())
        return _Packed(kernel, s, z, b)

    def _geometry(self):
        # the per-phase sub-kernels depend on these: packed now, not on the first call
        return self.stride, self.padding, self.dilation

    def _unpack(self):
        p = self._packed_params
        codes = p.kernel.weight.copy()
        if np.ndim(p.scales) == 0:
            w = _make_per_tensor_quantized_tensor(codes, p.scales, p.zero_points, qint8)
        else:
            w = _make_per_channel_quantized_tensor(codes, p.scales.copy(),
                                                   p.zero_points.copy(), 1, qint8)
        return w, (None if p.bias is None else p.bias.copy())

    @classmethod
    def _ctor_args(cls, mod):
        return (mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding,
                mod.output_padding, mod.groups, mod.bias is not None, mod.dilation,
                mod.padding_mode)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A quantized layer from a float ``numq.layers.ConvTranspose{1,2,3}d``.

        ``mod`` needs a ``qconfig`` (whose weight observer must give qint8, per tensor or
        per channel with ``ch_axis=1``) and, for static quantization, an observed
        ``activation_post_process`` that sets the output ``scale`` / ``zero_point``.
        """
        return _ConvNd.from_float(cls, mod, use_precomputed_fake_quant)

    def _input_padding(self, kernel_size, dilation, padding):
        """``dilation * (kernel_size - 1) - padding`` per dim (torch's helper)."""
        return [d * (k - 1) - p for k, d, p in zip(kernel_size, dilation, padding)]

    # ------------------------------------------------------------ forward
    def _check_input(self, input):
        name = type(self).__name__
        rank = self._rank
        if not isinstance(input, QTensor):
            raise TypeError(f"{name}: input must be a quantized tensor (QTensor, quint8); "
                            f"got {type(input).__name__}")
        if input.dtype is not quint8:
            raise TypeError(f"{name}: input must have dtype quint8; got {input.dtype!r}")
        if input.qscheme() is not per_tensor_affine:
            raise ValueError(f"{name}: input must be per-tensor quantized; got "
                             f"{input.qscheme()!r}")
        if input.ndim != rank + 2:
            dims = ("N", "C") + ("D", "H", "W")[3 - rank:]
            raise ValueError(f"{name}: input shape must be ({', '.join(dims)}); got a "
                             f"{input.ndim}-d input of shape {tuple(input.shape)}")
        if input.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected input with {self.in_channels} channels in "
                             f"dim 1; got input of shape {tuple(input.shape)}")

    def _output_padding(self, input, output_size):
        """``output_padding``, or the one that gives ``output_size`` (as the float layer)."""
        if output_size is None:
            return self.output_padding
        name = type(self).__name__
        rank = self._rank
        try:
            size = [int(s) for s in output_size]
        except TypeError:
            raise TypeError(f"{name}: output_size must be a sequence of ints; got "
                            f"{type(output_size).__name__}") from None
        if len(size) == rank + 2:
            size = size[2:]
        if len(size) != rank:
            raise ValueError(f"{name}: output_size must have {rank} or {rank + 2} elements; "
                             f"got {len(size)}")
        lo = conv_transpose_output_size(input.shape[2:], self.kernel_size, self.stride,
                                        self.padding, (0,) * rank, self.dilation)
        hi = [m + s - 1 for m, s in zip(lo, self.stride)]
        if any(not a <= o <= b for o, a, b in zip(size, lo, hi)):
            raise ValueError(f"{name}: requested an output size of {size}, but valid sizes "
                             f"range from {list(lo)} to {hi} (for an input of "
                             f"{tuple(input.shape[2:])})")
        return tuple(o - a for o, a in zip(size, lo))

    def forward(self, input, output_size=None):
        """Transposed convolution of quint8 ``input`` ``(N, C_in, *spatial)``.

        ``output_size`` (spatial, or with N and C) picks ``output_padding`` as in
        ``numq.layers.ConvTranspose{1,2,3}d``.
        """
        self._check_input(input)
        name = type(self).__name__
        opad = self._output_padding(input, output_size)
        out_sp = conv_transpose_output_size(input.shape[2:], self.kernel_size, self.stride,
                                            self.padding, opad, self.dilation)
        if any(o < 1 for o in out_sp):
            raise ValueError(f"{name}: output spatial size {out_sp} would be < 1 (input "
                             f"{tuple(input.shape[2:])}, kernel_size {self.kernel_size}, "
                             f"stride {self.stride}, padding {self.padding}, dilation "
                             f"{self.dilation})")
        # channels-last codes: free when the input is itself a numq conv output
        x = np.ascontiguousarray(np.moveaxis(input._int, 1, -1))
        p = self._packed_params
        y = qconv_transpose(x, input.q_scale(), input.q_zero_point(), p.kernel, p.bias,
                            self.scale, self.zero_point, self.stride, self.padding, opad,
                            self.dilation)
        # scale / zero_point were validated by their setters; no copy of the codes
        return QTensor._from_parts(np.moveaxis(y, -1, 1), quint8, scale=self.scale,
                                   zero_point=self.zero_point)


_DOC = """Quantized {rank}-d transposed convolution (torch.ao.nn.quantized.ConvTranspose{rank}d).

Same constructor as ``numq.layers.ConvTranspose{rank}d`` (``padding_mode='zeros'``
only). Input: quint8 per-tensor QTensor ``(N, C_in, {dims})``; output: quint8 with
this layer's ``scale`` / ``zero_point``, ``(N, C_out, {odims})``. Bit-exact with torch's
``fbgemm`` engine; see :mod:`numq.layers.quantized.conv_transpose` for where numq
differs (per-channel weights along axis 1 are supported).

Attributes
----------
scale : float
zero_point : int
    Output quantization parameters.

Methods ``weight()`` (qint8 QTensor ``(C_in, C_out/groups, {ks})``), ``bias()``
(float32 or None), ``set_weight_bias(w, b)``, ``from_float(mod)``.
"""


def _doc(rank):
    axes = ("D", "H", "W")[3 - rank:]
    return _DOC.format(rank=rank, dims=", ".join(axes),
                       odims=", ".join(a + "_out" for a in axes),
                       ks=", ".join("k" + a for a in axes))


class ConvTranspose1d(_ConvTransposeNd):
    __doc__ = _doc(1)
    _rank = 1
    _FLOAT_MODULE = _float_conv.ConvTranspose1d


class ConvTranspose2d(_ConvTransposeNd):
    __doc__ = _doc(2)
    _rank = 2
    _FLOAT_MODULE = _float_conv.ConvTranspose2d


class ConvTranspose3d(_ConvTransposeNd):
    __doc__ = _doc(3)
    _rank = 3
    _FLOAT_MODULE = _float_conv.ConvTranspose3d
