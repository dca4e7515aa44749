"""Resizing: ``interpolate`` / ``upsample`` (``torch.nn.functional`` names and arguments)
and their backward.

Modes: ``'nearest'``, ``'nearest-exact'``, ``'linear'`` (3-d input), ``'bilinear'`` (4-d),
``'trilinear'`` (5-d) and ``'area'`` (adaptive average pooling). Source positions follow
ATen's CPU rules, evaluated in the same float precision:

- output size: ``size``, or ``floor(in * scale_factor)``;
- the scale used for source positions is ``1 / scale_factor`` when a scale factor is
  given and ``recompute_scale_factor`` is not True, else ``in / out`` (ATen's
  ``compute_scales_value``); ``align_corners=True`` uses ``(in - 1) / (out - 1)``;
- nearest: ``min(floor(o * scale), in - 1)`` in float32, except that torch's 2-d
  forward for outputs with ``out_h + out_w <= 128`` copies an axis whose size is
  unchanged and maps ``o -> o // 2`` on an axis whose size doubles, whatever the scale
  factor (ATen's ``nearest_idx``); nearest-exact: ``min(floor((o + 0.5) * scale), in - 1)``;
- linear: ``src = scale * (o + 0.5) - 0.5`` clamped at 0 (``align_corners=False``) or
  ``scale * o``; ``i0 = min(floor(src), in - 1)``, ``i1 = min(i0 + 1, in - 1)``,
  ``w1 = clamp(src - i0, 0, 1)``, ``w0 = 1 - w1``; an axis whose size does not change
  is copied.

The backward functions are the exact adjoints of these forwards. (torch's nearest
backward always takes ``nearest_idx``'s shortcuts, so where its forward does not -- a
``scale_factor`` that keeps or doubles a size without being 1 or 2 -- torch's gradient
is not the gradient of its own forward; numq's is.)

Linear resizing is separable (width, then height, then depth), which evaluates ATen's
nested sum; ATen's channels-last kernel (which it picks for small outputs) sums the four
corner products instead, so results agree to float rounding, not bit for bit.
"""
import functools
import math
import numbers

import numpy as np

from ...kernels import resize_float as _k
from ._pooling import (_adaptive_backward, _adaptive_pool, _as4, _bool, _float_input,
                       _is_int)

__all__ = ["interpolate", "interpolate_backward", "upsample", "upsample_backward",
           "upsample_nearest", "upsample_bilinear"]

_LINEAR_RANK = {"linear": 3, "bilinear": 4, "trilinear": 5}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")
_TORCH_ONLY = ("bicubic", "lanczos")  # valid torch modes numq does not implement


# ------------------------------------------------------------------- argument checks

def _normalise(shape, size, scale_factor, mode, align_corners, recompute_scale_factor,
               antialias, fname):
    """Validate the arguments for an input of ``shape``; return hashable plan keys."""
    if not isinstance(mode, str):
        raise TypeError(f"{fname}: mode must be a str; got {type(mode).__name__}")
    if mode in _TORCH_ONLY:
        raise ValueError(f"{fname}: mode {mode!r} is not supported by numq; "
                         f"mode must be one of {', '.join(_MODES)}")
    if mode not in _MODES:
        raise ValueError(f"{fname}: mode must be one of {', '.join(_MODES)}; got {mode!r}")
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"{fname}: input must be 3-d, 4-d or 5-d (N, C, *spatial); got "
                         f"shape {tuple(shape)}")
    if mode in _LINEAR_RANK and len(shape) != _LINEAR_RANK[mode]:
        raise ValueError(f"{fname}: mode {mode!r} needs a {_LINEAR_RANK[mode]}-d input; "
                         f"got shape {tuple(shape)}")
    if 0 in shape[2:]:
        raise ValueError(f"{fname}: input must have non-zero spatial sizes; got shape "
                         f"{tuple(shape)}")
    if mode in _LINEAR_RANK:
        align = False if align_corners is None else _bool(align_corners, "align_corners",
                                                          fname)
    elif align_corners is not None:
        raise ValueError(f"{fname}: align_corners can only be set with the interpolating "
                         f"modes linear | bilinear | trilinear; got mode {mode!r}")
    else:
        align = False
    if antialias is not False and antialias is not None:
        if _bool(antialias, "antialias", fname):
            raise ValueError(f"{fname}: antialias must be False (antialiased resizing is not "
                             "supported by numq)")
    recompute = recompute_scale_factor
    if recompute is not None:
        recompute = _bool(recompute, "recompute_scale_factor", fname)
    nd = len(shape) - 2
    spatial = tuple(int(s) for s in shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(f"{fname}: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ValueError(f"{fname}: recompute_scale_factor is not meaningful with an "
                             "explicit size")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(sizes) != nd:
            raise ValueError(f"{fname}: size must be an int or a tuple of {nd} ints for a "
                             f"{len(shape)}-d input; got {size!r}")
        if not all(_is_int(s) for s in sizes):
            raise TypeError(f"{fname}: size must be an int or a tuple of ints; got {size!r}")
        out = tuple(int(s) for s in sizes)
        scales = None
    elif scale_factor is not None:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (scale_factor,) * nd
        if len(sf) != nd:
            raise ValueError(f"{fname}: scale_factor must be a number or a tuple of {nd} "
                             f"numbers for a {len(shape)}-d input; got {scale_factor!r}")
        if not all(isinstance(s, numbers.Real) and not isinstance(s, (bool, np.bool_))
                   for s in sf):
            raise TypeError(f"{fname}: scale_factor must be a number or a tuple of numbers; "
                            f"got {scale_factor!r}")
        sf = tuple(float(s) for s in sf)
        if not all(math.isfinite(s) and s > 0 for s in sf):
            raise ValueError(f"{fname}: scale_factor must be finite and > 0; got "
                             f"{scale_factor!r}")
        out = tuple(math.floor(L * s) for L, s in zip(spatial, sf))
        # 'area' always works from the output size (as torch recomputes it)
        scales = None if (recompute or mode == "area") else sf
    else:
        raise ValueError(f"{fname}: either size or scale_factor should be defined")
    if min(out) < 1:
        raise ValueError(f"{fname}: output sizes must be > 0; input spatial size {spatial} "
                         f"gives output size {out}")
    return mode, spatial, out, scales, align


# ----------------------------------------------------------------- source positions

def _nearest_table(L, O, scale, exact, shortcut):
    if shortcut:
        # ATen's nearest_idx: sizes equal -> copy, output twice the input -> o // 2,
        # whatever the scale factor says
        if O == L:
            return np.arange(O, dtype=np.int64)
        if O == 2 * L:
            return np.arange(O, dtype=np.int64) >> 1
    # ATen's compute_scales_value<float>: 1/scale_factor if given, else in/out, in float32
    s = np.float32(1.0 / scale) if scale is not None else np.float32(L) / np.float32(O)
    o = np.arange(O)
    if exact:
        # floorf((o + 0.5) * s): a double product rounded to float before the floor
        src = np.floor(((o + 0.5) * np.float64(s)).astype(np.float32))
    else:
        src = np.floor(o.astype(np.float32) * s)  # float32 product
    return np.ascontiguousarray(np.minimum(src.astype(np.int64), L - 1))


def _linear_table(L, O, scale, align, dtype):
    """``(i0, i1, w0, w1)`` of one resized axis, in ATen's opmath precision (= dtype)."""
    t = np.dtype(dtype).type
    o = np.arange(O).astype(t)
    if align:
        sc = t(L - 1) / t(O - 1) if O > 1 else t(0)
        src = sc * o
    else:
        sc = t(1.0 / scale) if scale is not None else t(L) / t(O)
        # scale * (o + 0.5) - 0.5 with one rounding: torch's build contracts it into an
        # FMA (measured); the float64 product of two float32s is exact, so this is it.
        src = (np.float64(sc) * (o.astype(np.float64) + 0.5) - 0.5).astype(t)
        src = np.where(src < 0, t(0), src)
    # ATen floors with floorf (float32) even for double
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), L - 1)
    w1 = np.minimum(np.maximum(src - i0.astype(t), t(0)), t(1)).astype(t)
    w0 = (t(1) - w1).astype(t)
    i1 = i0 + (i0 < L - 1)
    return tuple(np.ascontiguousarray(a) for a in (i0, i1, w0, w1))


@functools.lru_cache(maxsize=256)
def _plan(mode, spatial, out, scales, align, dtype):
    """Per-axis tables, padded to 3 axes (``None`` = the axis is unchanged)."""
    nd = len(spatial)
    pad = 3 - nd
    sp3 = (1,) * pad + spatial
    out3 = (1,) * pad + out
    sc3 = (None,) * 3 if scales is None else (None,) * pad + scales
    if mode == "area":
        return None
    if mode in ("nearest", "nearest-exact"):
        # torch 2.13's CPU forward takes nearest_idx's shortcuts only in its 2-d
        # channels-last kernel, which it runs for NCHW input when out_h + out_w <= 128
        # (measured); the 1-d, 3-d and larger 2-d forwards floor o * scale throughout.
        shortcut = mode == "nearest" and nd == 2 and out[0] + out[1] <= 128
        return tuple(_nearest_table(L, O, s, mode == "nearest-exact", shortcut)
                     for L, O, s in zip(sp3, out3, sc3))
    return tuple(None if L == O else _linear_table(L, O, s, align, dtype)
                 for L, O, s in zip(sp3, out3, sc3))


# -------------------------------------------------------------------------- compute

def _forward(x, key):
    mode, spatial, out, _, _ = key
    nd = len(spatial)
    if mode == "area":
        return _adaptive_pool(nd, "interpolate", x, out)
    tables = _plan(*key, x.dtype.str)
    y = np.empty(x.shape[:2] + out, dtype=x.dtype)
    x4 = _as4(x, nd)
    P, D, H, W = x4.shape
    if mode in ("nearest", "nearest-exact"):
        _k.nearest_f(x4, *tables, _as4(y, nd))
        return y
    td, th, tw = tables
    OD, OH, OW = _as4(y, nd).shape[1:]
    cur = x4
    if tw is not None:
        nxt = np.empty((P, D, H, OW), dtype=x.dtype)
        _k.lerp_last_f(cur.reshape(P * D * H, W), *tw, nxt.reshape(P * D * H, OW))
        cur = nxt
    if th is not None:
        nxt = np.empty((P, D, OH, OW), dtype=x.dtype)
        _k.lerp_mid_f(cur.reshape(P * D, H, OW), *th, nxt.reshape(P * D, OH, OW))
        cur = nxt
    if td is not None:
        nxt = _as4(y, nd)
        _k.lerp_mid_f(cur.reshape(P, D, OH * OW), *td, nxt.reshape(P, OD, OH * OW))
        return y
    if cur is x4:
        return x.copy()  # no axis changes size: torch copies
    return cur.reshape(y.shape)


def _backward(g, key, input_shape):
    mode, spatial, out, _, _ = key
    nd = len(spatial)
    if mode == "area":
        return _adaptive_backward(nd, "interpolate_backward", g, input_shape)
    tables = _plan(*key, g.dtype.str)
    gin = np.empty(input_shape, dtype=g.dtype)
    g4 = _as4(g, nd)
    P, OD, OH, OW = g4.shape
    D, H, W = _as4(gin, nd).shape[1:]
    if mode in ("nearest", "nearest-exact"):
        _k.nearest_backward_f(g4, *tables, _as4(gin, nd))
        return gin
    td, th, tw = tables
    cur = g4
    if td is not None:
        nxt = np.empty((P, D, OH, OW), dtype=g.dtype)
        _k.lerp_mid_backward_f(cur.reshape(P, OD, OH * OW), *td, nxt.reshape(P, D, OH * OW))
        cur = nxt
    if th is not None:
        nxt = np.empty((P, D, H, OW), dtype=g.dtype)
        _k.lerp_mid_backward_f(cur.reshape(P * D, OH, OW), *th, nxt.reshape(P * D, H, OW))
        cur = nxt
    if tw is not None:
        _k.lerp_last_backward_f(cur.reshape(P * D * H, OW), *tw,
                                gin.reshape(P * D * H, W))
        return gin
    gin[...] = cur.reshape(input_shape)
    return gin


def _key(shape, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias,
         fname):
    return _normalise(tuple(shape), size, scale_factor, mode, align_corners,
                      recompute_scale_factor, antialias, fname)


# -------------------------------------------------------------------------- public

def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize ``input`` (``torch.nn.functional.interpolate``).

    Parameters
    ----------
    input : ndarray
        Float array ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
    size : int or tuple of int, optional
        Output spatial size.
    scale_factor : float or tuple of float, optional
        Multiplier of the spatial size (output ``floor(in * scale_factor)``); exactly one
        of ``size`` and ``scale_factor`` must be given.
    mode : {'nearest', 'nearest-exact', 'linear', 'bilinear', 'trilinear', 'area'}
        ``linear`` / ``bilinear`` / ``trilinear`` need a 3-d / 4-d / 5-d input.
    align_corners : bool, optional
        Linear modes only (default False): align the corner pixels' centres instead of
        their edges.
    recompute_scale_factor : bool, optional
        With ``scale_factor``: if True, source positions use ``in / out`` (the recomputed
        scale) instead of ``1 / scale_factor``.
    antialias : bool, default False
        Must be False (anti-aliasing is not implemented).

    Returns
    -------
    ndarray (the input's float dtype)
    """
    x = _float_input(input)
    key = _key(x.shape, size, scale_factor, mode, align_corners, recompute_scale_factor,
               antialias, "interpolate")
    return _forward(x, key)


def interpolate_backward(grad_output, input_shape, size=None, scale_factor=None,
                         mode="nearest", align_corners=None, recompute_scale_factor=None,
                         antialias=False):
    """Input gradient of :func:`interpolate` called with the same arguments on an input
    of shape ``input_shape``.

    Returns an array of shape ``input_shape`` in ``grad_output``'s float dtype: each
    output gradient is spread over the source pixels it was read from, with the
    forward's weights.
    """
    shape = tuple(int(s) for s in input_shape)
    key = _key(shape, size, scale_factor, mode, align_corners, recompute_scale_factor,
               antialias, "interpolate_backward")
    g = _float_input(grad_output, "grad_output")
    expect = shape[:2] + key[2]
    if g.shape != expect:
        raise ValueError(f"interpolate_backward: grad_output must have the forward "
                         f"output's shape {expect}; got {g.shape}")
    return _backward(g, key, shape)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """``torch.nn.functional.upsample``: :func:`interpolate` (without the deprecation)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_backward(grad_output, input_shape, size=None, scale_factor=None,
                      mode="nearest", align_corners=None):
    """Input gradient of :func:`upsample` (see :func:`interpolate_backward`)."""
    return interpolate_backward(grad_output, input_shape, size, scale_factor, mode,
                                align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """``torch.nn.functional.upsample_nearest``: nearest :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """``torch.nn.functional.upsample_bilinear``: bilinear :func:`interpolate` with
    ``align_corners=True``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
