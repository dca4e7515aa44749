"""Slow, obviously-correct NumPy references for the normalization / activation layers.

Everything is float64 with textbook formulas (``np.mean`` / ``np.var`` over the right
axes, ``math.erf`` element by element), written independently of numq's code.
"""
import math

import numpy as np


def _affine(y, weight, bias, axis_shape):
    if weight is not None:
        y = y * np.asarray(weight, np.float64).reshape(axis_shape)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(axis_shape)
    return y


def batch_norm_ref(x, weight=None, bias=None, eps=1e-5, mean=None, var=None):
    """Normalise per channel (axis 1) with the batch stats, or with ``mean`` / ``var``."""
    x = np.asarray(x, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    if mean is None:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(var, shape) + eps)
    return _affine(y, weight, bias, shape)


def batch_stats_ref(x):
    """Per-channel batch mean and *unbiased* variance (what running stats track)."""
    x = np.asarray(x, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes, ddof=1)


def instance_norm_ref(x, weight=None, bias=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    axes = tuple(range(2, x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return _affine(y, weight, bias, (1, -1) + (1,) * (x.ndim - 2))


def group_norm_ref(x, num_groups, weight=None, bias=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    out = np.empty_like(x)
    per = c // num_groups
    for i in range(n):
        for grp in range(num_groups):
            blk = x[i, grp * per:(grp + 1) * per]
            out[i, grp * per:(grp + 1) * per] = (blk - blk.mean()) / np.sqrt(blk.var() + eps)
    return _affine(out, weight, bias, (1, -1) + (1,) * (x.ndim - 2))


def layer_norm_ref(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return _affine(y, weight, bias, tuple(normalized_shape))


def gelu_ref(x):
    """Exact GELU with ``math.erf``, one element at a time."""
    x = np.asarray(x, np.float64)
    flat = [0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.ravel()]
    return np.array(flat).reshape(x.shape)


def softmax_ref(x, dim):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)
