"""Convolution layers (``torch.nn.Conv{1,2,3}d``, ``torch.nn.ConvTranspose{1,2,3}d``).

Same constructor arguments, defaults, attributes (``weight``, ``bias``, ``kernel_size``
as a tuple, ...), parameter shapes, ``state_dict`` keys and ``repr`` as torch, and
torch's default initialisation (``kaiming_uniform_(a=sqrt(5))`` weight,
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` bias) drawn from ``generator`` (an
``np.random.Generator``, an int seed, or None for :func:`numq.manual_seed`'s generator).

A training-mode ``forward`` keeps ``(input, weight, ...)`` in ``self._saved``; the
im2col matrix is not kept (it is ``prod(kernel_size)`` times the input) but rebuilt by
``backward``. Computation is in the weight's dtype (float32 unless ``dtype`` or
``.double()`` says otherwise); a float input of another dtype is cast to it.
"""
import math

import numpy as np

from .. import _random
from . import init
from .functional import _linear_conv as F
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _param_dtype(dtype, name):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"{name}: dtype must be a float dtype; got {dt}")
    return dt


def _channels(v, arg, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: {arg} must be an int; got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name}: {arg} must be >= 1; got {v}")
    return int(v)


class _ConvNd(Module):
    """Shared state, initialisation and ``repr`` of the convolution layers."""

    _rank = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, dtype, generator):
        super().__init__()
        name = type(self).__name__
        rank = self._rank
        in_channels = _channels(in_channels, "in_channels", name)
        out_channels = _channels(out_channels, "out_channels", name)
        groups = F._groups(groups, name)
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        kernel_size = F._ntuple(kernel_size, rank, name, "kernel_size", 1)
        stride = F._ntuple(stride, rank, name, "stride", 1)
        dilation = F._ntuple(dilation, rank, name, "dilation", 1)
        output_padding = F._ntuple(output_padding, rank, name, "output_padding", 0)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be "
                                 "'same' or 'valid'")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions; got stride {stride}")
        else:
            padding = F._ntuple(padding, rank, name, "padding", 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}; "
                             f"got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        dt = _param_dtype(dtype, name)
        shape = ((in_channels, out_channels // groups) if transposed
                 else (out_channels, in_channels // groups)) + kernel_size
        self.weight = Parameter(np.empty(shape, dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """torch's default initialisation (see the module docstring)."""
        gen = _random.resolve(generator)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=gen)
        if self.bias is not None:
            fan_in, _ = init.fan_in_and_fan_out(self.weight.shape)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound, generator=gen)

    def _pads(self):
        """Per spatial dim ``(before, after)`` padding, for non-zero padding modes."""
        if self.padding == "valid":
            return [(0, 0)] * self._rank
        if self.padding == "same":
            out = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return out
        return [(p, p) for p in self.padding]

    def _mask(self):
        b = self.bias
        return (True, self.weight.requires_grad, b is not None and b.requires_grad)

    def _accumulate(self, gw, gb):
        if gw is not None:
            self.weight.accumulate(gw)
        if gb is not None:
            self.bias.accumulate(gb)

    def _input(self, input):
        return F._float_array(input, self.weight.data.dtype, type(self).__name__, "input")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._rank:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._rank:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._rank:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """Forward/backward of ``Conv{1,2,3}d``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, dtype, generator)

    def _fn(self):
        return getattr(F, f"conv{self._rank}d"), getattr(F, f"conv{self._rank}d_backward")

    def forward(self, input):
        """Convolve ``input`` ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``."""
        fwd, _ = self._fn()
        x = self._input(input)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        padding = self.padding
        if self.padding_mode != "zeros":
            F._batched(x, self._rank, type(self).__name__)  # rank check before padding
            x = F._pad_nd(x, self._pads(), self.padding_mode, type(self).__name__)
            padding = 0
        y = fwd(x, w, b, self.stride, padding, self.dilation, self.groups)
        if self.training:
            self._saved = (x, w, padding)
        return y

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` and ``bias.grad``."""
        x, w, padding = self._take_saved()
        _, bwd = self._fn()
        gi, gw, gb = bwd(grad_output, x, w, self.stride, padding, self.dilation, self.groups,
                         output_mask=self._mask())
        self._accumulate(gw, gb)
        if self.padding_mode != "zeros":
            gi = F._pad_nd_backward(gi, self._pads(), self.padding_mode)
        return gi


class _ConvTranspose(_ConvNd):
    """Forward/backward of ``ConvTranspose{1,2,3}d``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=None, generator=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}; got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of "
                             f"ints; got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, dtype, generator)

    def _fn(self):
        r = self._rank
        return (getattr(F, f"conv_transpose{r}d"), getattr(F, f"conv_transpose{r}d_backward"))

    def _output_padding(self, x, output_size):
        """``output_padding``, or the one that gives ``output_size`` (as torch)."""
        if output_size is None:
            return self.output_padding
        name = type(self).__name__
        rank = self._rank
        x, batched = F._batched(x, rank, name)
        size = [int(s) for s in output_size]
        lead = 2 if batched else 1
        if len(size) == rank + lead:
            size = size[lead:]
        if len(size) != rank:
            raise ValueError(f"{name}: for a {x.ndim - (not batched)}-d input, output_size "
                             f"must have {rank} or {rank + lead} elements; got {len(size)}")
        lo = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
              zip(x.shape[2:], self.stride, self.padding, self.dilation, self.kernel_size)]
        hi = [m + s - 1 for m, s in zip(lo, self.stride)]
        if any(not a <= o <= b for o, a, b in zip(size, lo, hi)):
            raise ValueError(f"{name}: requested an output size of {size}, but valid sizes "
                             f"range from {lo} to {hi} (for an input of {x.shape[2:]})")
        return tuple(o - a for o, a in zip(size, lo))

    def forward(self, input, output_size=None):
        """Transposed convolution of ``input``; ``output_size`` picks ``output_padding``."""
        fwd, _ = self._fn()
        x = self._input(input)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        opad = self._output_padding(x, output_size)
        y = fwd(x, w, b, self.stride, self.padding, opad, self.groups, self.dilation)
        if self.training:
            self._saved = (x, w, opad)
        return y

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` and ``bias.grad``."""
        x, w, opad = self._take_saved()
        _, bwd = self._fn()
        gi, gw, gb = bwd(grad_output, x, w, self.stride, self.padding, opad, self.groups,
                         self.dilation, output_mask=self._mask())
        self._accumulate(gw, gb)
        return gi


_CONV_DOC = """Applies a {rank}-d convolution (``torch.nn.Conv{rank}d``).

Input ``(N, C_in, {dims})`` or ``(C_in, {dims})``; output ``(N, C_out, {odims})``.

Parameters
----------
in_channels, out_channels : int
kernel_size, stride, dilation : int or tuple of {rank} ints
padding : int, tuple of {rank} ints, 'valid' or 'same'
groups : int
    Divides both channel counts; each group of inputs has its own filters.
bias : bool
padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}
dtype : float dtype, optional
    Parameter dtype (float32 by default).
generator : np.random.Generator or int, optional
    Source of the initial weights (default: numq's global generator).

Attributes
----------
weight : Parameter, shape (C_out, C_in/groups, {ks})
bias : Parameter, shape (C_out,), or None
"""

_CONV_T_DOC = """Applies a {rank}-d transposed convolution (``torch.nn.ConvTranspose{rank}d``).

The gradient of ``Conv{rank}d`` with respect to its input, as a layer. Input
``(N, C_in, {dims})`` or ``(C_in, {dims})``; ``forward(input, output_size=None)``:
``output_size`` (spatial, or with the leading dims) chooses ``output_padding``.

Parameters
----------
in_channels, out_channels : int
kernel_size, stride, padding, output_padding, dilation : int or tuple of {rank} ints
groups : int
bias : bool
padding_mode : 'zeros'
    The only mode torch supports here.
dtype : float dtype, optional
generator : np.random.Generator or int, optional

Attributes
----------
weight : Parameter, shape (C_in, C_out/groups, {ks})
bias : Parameter, shape (C_out,), or None
"""


def _doc(template, rank):
    axes = ("D", "H", "W")[3 - rank:]
    return template.format(rank=rank, dims=", ".join(axes),
                           odims=", ".join(a + "_out" for a in axes),
                           ks=", ".join("k" + a for a in axes))


class Conv1d(_Conv):
    __doc__ = _doc(_CONV_DOC, 1)
    _rank = 1


class Conv2d(_Conv):
    __doc__ = _doc(_CONV_DOC, 2)
    _rank = 2


class Conv3d(_Conv):
    __doc__ = _doc(_CONV_DOC, 3)
    _rank = 3


class ConvTranspose1d(_ConvTranspose):
    __doc__ = _doc(_CONV_T_DOC, 1)
    _rank = 1


class ConvTranspose2d(_ConvTranspose):
    __doc__ = _doc(_CONV_T_DOC, 2)
    _rank = 2


class ConvTranspose3d(_ConvTranspose):
    __doc__ = _doc(_CONV_T_DOC, 3)
    _rank = 3
