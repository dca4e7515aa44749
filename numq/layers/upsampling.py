"""Resizing layers: ``Upsample``, ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``.

Constructors, attributes and ``repr`` follow ``torch.nn``. No parameters; computation is
in the input's float dtype (float32 or float64). In training mode ``forward`` keeps the
resize plan and the input shape in ``self._saved`` for ``backward``.
"""
from .functional import _pooling as _P
from .functional import _upsampling as F
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resize ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)`` input
    (``torch.nn.Upsample``); see :func:`numq.layers.functional.interpolate`.

    Parameters
    ----------
    size : int or tuple of int, optional
        Output spatial size.
    scale_factor : float or tuple of float, optional
        Spatial multiplier (stored as float, as torch does); give exactly one of ``size``
        and ``scale_factor``.
    mode : str, default 'nearest'
        ``'nearest'``, ``'nearest-exact'``, ``'linear'``, ``'bilinear'``, ``'trilinear'``
        or ``'area'``.
    align_corners : bool, optional
        Linear modes only.
    recompute_scale_factor : bool, optional
        Compute source positions from the output size instead of ``scale_factor``.
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        x = _P._float_input(input)
        key = F._key(x.shape, self.size, self.scale_factor, self.mode, self.align_corners,
                     self.recompute_scale_factor, False, "interpolate")
        out = F._forward(x, key)
        if self.training:
            self._saved = (key, x.shape, x.dtype)
        return out

    def backward(self, grad_output):
        """Input gradient: each output gradient goes back to the source pixels it was
        read from, with the forward's interpolation weights."""
        key, shape, dtype = self._take_saved()
        g = _P._float_input(grad_output, "grad_output")
        expect = shape[:2] + key[2]
        if g.shape != expect:
            raise ValueError(f"{type(self).__name__}.backward: grad_output must have the "
                             f"forward output's shape {expect}; got {g.shape}")
        return F._backward(g if g.dtype == dtype else g.astype(dtype), key, shape)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        info += ", mode=" + repr(self.mode)
        return info


class UpsamplingNearest2d(Upsample):
    """2-d nearest upsampling (``torch.nn.UpsamplingNearest2d``): ``Upsample`` with
    ``mode='nearest'``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-d bilinear upsampling (``torch.nn.UpsamplingBilinear2d``): ``Upsample`` with
    ``mode='bilinear', align_corners=True``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
