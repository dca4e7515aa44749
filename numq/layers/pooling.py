"""Pooling layers: ``MaxPool{1,2,3}d``, ``AvgPool{1,2,3}d``, ``AdaptiveAvgPool{1,2,3}d``.

Constructors, attributes and ``repr`` follow ``torch.nn``; the layers have no parameters,
compute in the input's float dtype (float32 or float64; float16 is computed in float32)
and accept batched ``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` input. In training
mode ``forward`` keeps what ``backward`` needs in ``self._saved`` (max pooling: the
argmax indices; averages: the input shape).
"""
import collections.abc
import itertools

import numpy as np

from .functional import _pooling as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"]


def _single(x):
    # torch's _single: an iterable becomes a tuple, a scalar a 1-tuple
    if isinstance(x, collections.abc.Iterable):
        return tuple(x)
    return tuple(itertools.repeat(x, 1))


def _grad_like(grad_output, dtype):
    g = F._float_input(grad_output, "grad_output")
    return g if g.dtype == dtype else g.astype(dtype)


class _MaxPoolNd(Module):
    _nd = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        nd = self._nd
        fname = f"max_pool{nd}d"
        want = F._bool(self.return_indices, "return_indices", fname)
        out, ind = F._max_pool(nd, fname, input, self.kernel_size, self.stride,
                               self.padding, self.dilation, self.ceil_mode,
                               want or self.training)
        if self.training:
            self._saved = (ind, np.shape(input), out.dtype)
        return (out, ind) if want else out

    def backward(self, grad_output):
        """Input gradient: each output gradient goes to its window's argmax."""
        ind, shape, dtype = self._take_saved()
        return F._max_pool_backward(self._nd, f"{type(self).__name__}.backward",
                                    _grad_like(grad_output, dtype), ind, shape)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling over ``(N, C, L)`` or ``(C, L)`` input (``torch.nn.MaxPool1d``).

    Parameters
    ----------
    kernel_size : int or tuple
    stride : int or tuple, optional
        Default ``kernel_size``.
    padding : int or tuple, default 0
        Implicit ``-inf`` padding, at most half of ``kernel_size``.
    dilation : int or tuple, default 1
    return_indices : bool, default False
        ``forward`` also returns the argmax indices (flat per ``(N, C)`` plane).
    ceil_mode : bool, default False
    """

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-d max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input
    (``torch.nn.MaxPool2d``; arguments as :class:`MaxPool1d`)."""

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """3-d max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input
    (``torch.nn.MaxPool3d``; arguments as :class:`MaxPool1d`)."""

    _nd = 3


class _AvgPoolNd(Module):
    _nd = 0

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, getattr(self, "divisor_override", None))

    def forward(self, input):
        nd = self._nd
        out = F._avg_pool(nd, f"avg_pool{nd}d", input, *self._args())
        if self.training:
            self._saved = (np.shape(input), out.dtype)
        return out

    def backward(self, grad_output):
        """Input gradient: each window position gets its output gradient / divisor."""
        shape, dtype = self._take_saved()
        return F._avg_pool_backward(self._nd, f"{type(self).__name__}.backward",
                                    _grad_like(grad_output, dtype), shape, *self._args())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-d average pooling over ``(N, C, L)`` or ``(C, L)`` input (``torch.nn.AvgPool1d``).

    Parameters
    ----------
    kernel_size : int or tuple
    stride : int or tuple, optional
        Default ``kernel_size``.
    padding : int or tuple, default 0
        Implicit zero padding, at most half of ``kernel_size``.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
        Count padded positions in the divisor.
    """

    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad


class AvgPool2d(_AvgPoolNd):
    """2-d average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input
    (``torch.nn.AvgPool2d``; arguments as :class:`AvgPool1d`, plus ``divisor_override``:
    an int that replaces every window's divisor)."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override


class AvgPool3d(AvgPool2d):
    """3-d average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input
    (``torch.nn.AvgPool3d``; arguments as :class:`AvgPool2d`)."""

    _nd = 3


class _AdaptiveAvgPoolNd(Module):
    _nd = 0

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        nd = self._nd
        out = F._adaptive_pool(nd, f"adaptive_avg_pool{nd}d", input, self.output_size)
        if self.training:
            self._saved = (np.shape(input), out.dtype)
        return out

    def backward(self, grad_output):
        """Input gradient: each window position gets its output gradient / window size."""
        shape, dtype = self._take_saved()
        return F._adaptive_backward(self._nd, f"{type(self).__name__}.backward",
                                    _grad_like(grad_output, dtype), shape)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-d adaptive average pooling to ``output_size`` (``torch.nn.AdaptiveAvgPool1d``).

    Output position ``o`` of ``O`` averages input positions
    ``[floor(o * L / O), ceil((o + 1) * L / O))``.

    Parameters
    ----------
    output_size : int or tuple
        ``None`` entries keep the input size.
    """

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-d adaptive average pooling (``torch.nn.AdaptiveAvgPool2d``); ``output_size`` is
    an int or an ``(H, W)`` tuple whose entries may be ``None``."""

    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-d adaptive average pooling (``torch.nn.AdaptiveAvgPool3d``); ``output_size`` is
    an int or a ``(D, H, W)`` tuple whose entries may be ``None``."""

    _nd = 3
