"""``HistogramObserver``: qparams that minimise the L2 quantization error of a histogram.

A port of ``torch.ao.quantization.observer.HistogramObserver`` (PyTorch 2.13), re-exported
from :mod:`numq.quantization.observer`. The hot parts run as Numba kernels
(:mod:`numq.kernels.histogram`); every step rounds as torch's float32 tensor ops do, so
the buffers after each ``forward`` equal torch's bit for bit and ``calculate_qparams``
returns torch's scale and zero point.

How torch 2.13 merges batches (``shared/NUMERICS.md`` summarises an older merge; this is
what 2.13 does, and numq with it):

1. The first array sets ``min_val`` / ``max_val`` to its min / max and the histogram to
   ``torch.histc`` over exactly that range (a constant array: the range widened by
   ``max(1, one float32 step)`` on each side, ATen's ``bins_edges_correction``).
2. A later array is binned over the union range ``[min(min_val, min(x)),
   max(max_val, max(x))]``, taken as is. If the range did not grow, the counts are added.
   Otherwise the old histogram is *upscaled*: each old bin is split into
   ``upsample_rate`` (16) parts of mass ``count / 16``, each part goes whole to the new
   bin that holds its midpoint (``torch.bucketize`` against ``linspace`` edges), and the
   result is added to the new counts. An old histogram of a single value
   (``min_val == max_val``) moves as one point mass.

Older torch (what NUMERICS.md describes) first widened the union range so that the new
bin width was a whole multiple of the old one (``_adjust_min_max``), then spread the
upsampled mass by interpolating its cumulative sum; both steps are gone in 2.13, whose
histograms (and hence qparams) differ from the old ones. The qparams search itself
(start/end bins moved by 1e-5 quantiles of the mass while the L2 error falls) is
unchanged.
"""
import math
import numbers
import warnings

import numpy as np

from .. import dtypes as _dt
from ..kernels.histogram import (histc_f32, histc_range, non_linear_param_search_f32,
                                 quantization_error_f32, sum_f32, upscale_histogram_f32)
from ..kernels.reduce import minmax_f32
from .observer import UniformQuantizationObserverBase, UnsupportedObserverConfig
from .observer import _as_f32 as _f32_array

__all__ = ["HistogramObserver"]

_EPS32 = float(np.finfo(np.float32).eps)
_F32 = np.dtype(np.float32)
_INF = np.float32(np.inf)
_NINF = np.float32(-np.inf)
_NO_DATA_MSG = ("must run observer before calling calculate_qparams. Returning default "
                "scale and zero point ")


def _value(buf):
    """The single value of a 0-d or 1-element float32 buffer, as ``np.float32``."""
    return np.float32(buf.reshape(-1)[0])


class HistogramObserver(UniformQuantizationObserverBase):
    """Per-tensor qparams from a running histogram, by L2 error minimisation.

    ``forward(x)`` adds ``x``'s values to a histogram of ``bins`` bins over the running
    ``[min_val, max_val]`` (re-binning the old histogram when the range grows);
    ``calculate_qparams()`` searches the histogram for the sub-range whose quantization
    error is smallest (trimming outliers) and returns the qparams of that range, as
    :class:`~numq.quantization.MinMaxObserver` would for it.

    Parameters
    ----------
    bins : int
        Number of histogram bins (default 2048).
    dtype : QDType
        ``numq.quint8`` (default), ``qint8``, ``qint32`` or ``quint4x2``.
    qscheme : QScheme
        ``numq.per_tensor_affine`` (default) or ``numq.per_tensor_symmetric``.
    reduce_range : bool
        Halve the 8-bit range (quint8 ``[0, 127]``); warns as torch does.
    quant_min, quant_max : int or None
        A custom integer range (used when both are given).
    factory_kwargs : dict or None
        Accepted for torch compatibility; ignored.
    eps : float
        Smallest scale (default float32 eps).
    is_dynamic : bool
        Must be False.

    Attributes
    ----------
    histogram : numpy.ndarray
        float32 ``(bins,)`` buffer.
    min_val, max_val : numpy.ndarray
        float32 0-d buffers, ``+inf`` / ``-inf`` until data is seen.
    bins, upsample_rate : int
        ``upsample_rate`` (16) is how finely an old bin is split when the range grows.
    dst_nbins : int
        ``2 ** bits`` of the dtype's storage (256, or 2**32 for qint32): the number of
        quantization levels the error search assumes (it ignores ``reduce_range`` and a
        custom range, as torch does).

    Raises
    ------
    UnsupportedObserverConfig
        A per-channel qscheme or ``is_dynamic=True`` (torch refuses these as unsupported).
    TypeError, ValueError
        ``bins`` not a positive integer.

    Notes
    -----
    Deviations from torch, all where torch fails:

    - An array holding NaN raises ``ValueError`` and leaves the observer unchanged.
      torch raises ``RuntimeError`` from ``torch.histc`` too, but on the first array it
      has already set ``min_val`` / ``max_val`` to NaN, so it fails on every later array.
    - Counts are exact integers per call; torch's float32 per-thread counters stop at
      2**24 hits of one bin per call.
    - Arrays are observed as float32 (float64 input rounded, as the other observers);
      torch bins a float64 tensor in double precision.
    - ``bins`` must be >= 1 (torch accepts 0 and fails in ``forward``).
    """

    def __init__(self, bins=2048, dtype=_dt.quint8, qscheme=_dt.per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS32, is_dynamic=False, **kwargs):
        qs = qscheme
        try:
            qs = _dt.as_qscheme(qscheme)
        except TypeError:
            pass
        if qs not in (_dt.per_tensor_affine, _dt.per_tensor_symmetric):
            raise UnsupportedObserverConfig(
                "HistogramObserver's qscheme only supports numq.per_tensor_symmetric and "
                f"numq.per_tensor_affine; got {qscheme!r}")
        if is_dynamic:
            raise UnsupportedObserverConfig(
                "HistogramObserver doesn't support dynamic quantization")
        if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, numbers.Integral):
            raise TypeError(f"bins must be an int; got {type(bins).__name__} {bins!r}")
        if bins < 1:
            raise ValueError(f"bins must be >= 1; got {bins}")
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max,
                         factory_kwargs=factory_kwargs, eps=eps, is_dynamic=is_dynamic,
                         **kwargs)
        self.bins = int(bins)
        self.register_buffer("histogram", np.zeros(self.bins, np.float32))
        self.register_buffer("min_val", np.array(np.inf, np.float32))
        self.register_buffer("max_val", np.array(-np.inf, np.float32))
        # torch: 2 ** torch.iinfo(dtype).bits, the storage width (8 for quint4x2 too)
        self.dst_nbins = 2 ** (8 * self.dtype.storage.itemsize)
        self.upsample_rate = 16

    # --------------------------------------------------------------- search
    def _get_norm(self, delta_begin, delta_end, density):
        """``density * (delta_end**3 - delta_begin**3) / 3`` in float32: the L2 norm of
        values spread uniformly (with ``density``) over ``[delta_begin, delta_end]``."""
        db = np.asarray(delta_begin, np.float32)
        de = np.asarray(delta_end, np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            norm = (de * de * de - db * db * db) / np.float32(3)
            return np.asarray(density, np.float32) * norm

    def _compute_quantization_error(self, next_start_bin, next_end_bin):
        """The L2 quantization error (a float) if bins ``[next_start_bin, next_end_bin]``
        bound the quantization range."""
        hist = np.ascontiguousarray(self.histogram, np.float32)
        return float(quantization_error_f32(
            hist, _value(self.min_val), _value(self.max_val), int(next_start_bin),
            int(next_end_bin), self.dst_nbins, np.empty(hist.size, np.float32)))

    def _non_linear_param_search(self):
        """``(new_min, new_max)`` (float32 0-d arrays): the range with the smallest L2
        error, by caffe2's norm-minimisation search over the histogram."""
        if self.histogram.shape[0] != self.bins:
            raise ValueError("bins mismatch")
        hist = np.ascontiguousarray(self.histogram, np.float32)
        mn = _value(self.min_val)
        mx = _value(self.max_val)
        start_bin, end_bin = non_linear_param_search_f32(hist, mn, mx, self.dst_nbins)
        with np.errstate(over="ignore", invalid="ignore"):
            bin_width = np.float32(np.float32(mx - mn) / np.float32(self.bins))
            new_min = np.float32(mn + np.float32(bin_width * np.float32(start_bin)))
            new_max = np.float32(mn + np.float32(bin_width * np.float32(end_bin + 1)))
        return np.array(new_min), np.array(new_max)

    # -------------------------------------------------------------- merging
    def _histc(self, x, lo, hi, data_min, data_max):
        left, right = histc_range(lo, hi, data_min, data_max, self.bins)
        return histc_f32(x, left, right, self.bins)

    def _upscale_histogram(self, histogram, orig_min, orig_max, update_min, update_max):
        """``histogram`` (over ``[orig_min, orig_max]``) re-binned onto the bins of
        ``[update_min, update_max]``: each bin split into ``upsample_rate`` parts, each
        part moved to the bin holding its midpoint."""
        out = np.zeros(self.bins, np.float32)
        upscale_histogram_f32(np.ascontiguousarray(histogram, np.float32),
                              np.float32(orig_min), np.float32(orig_max),
                              np.float32(update_min), np.float32(update_max),
                              self.upsample_rate, out)
        return out

    def _combine_histograms(self, orig_hist, orig_min, orig_max, update_hist, update_min,
                            update_max):
        """The old histogram moved onto the (wider) new range, plus ``update_hist``."""
        orig_min, orig_max = np.float32(orig_min), np.float32(orig_max)
        update_min, update_max = np.float32(update_min), np.float32(update_max)
        if update_min == orig_min and update_max == orig_max:
            return orig_hist + update_hist
        if orig_min == orig_max:
            # a single value: its whole mass goes to the new bin of that value
            mass = sum_f32(np.ascontiguousarray(orig_hist, np.float32))
            point = self._histc(np.array([orig_min], np.float32), update_min, update_max,
                                orig_min, orig_min)
            with np.errstate(over="ignore", invalid="ignore"):
                return point * mass + update_hist
        if update_min > orig_min:
            raise ValueError("update_min must be <= orig_min")
        if update_max < orig_max:
            raise ValueError("update_max must be >= orig_max")
        return update_hist + self._upscale_histogram(orig_hist, orig_min, orig_max,
                                                     update_min, update_max)

    def reset_histogram(self, x, min_val, max_val):
        """Restart from ``x`` alone: the range becomes ``[min_val, max_val]`` (x's min and
        max) and the histogram ``x``'s counts over it."""
        min_val = np.asarray(min_val, np.float32)
        max_val = np.asarray(max_val, np.float32)
        if min_val.size != 1 or max_val.size != 1:
            raise ValueError("histogram min/max values must be scalar.")
        mn, mx = _value(min_val), _value(max_val)
        hist = self._histc(_f32_array(x), mn, mx, mn, mx)
        self.min_val = np.array(mn)
        self.max_val = np.array(mx)
        self.histogram = hist

    # -------------------------------------------------------------- forward
    def forward(self, x_orig):
        """Add ``x_orig``'s values to the histogram; return ``x_orig`` itself.

        Infinite values are dropped with a warning (as torch: "torch.inf detected in
        input tensor, ignoring input"); an array of only infinities changes nothing.

        Raises
        ------
        ValueError
            ``x_orig`` holds a NaN (torch raises ``RuntimeError``); the observer is left
            unchanged.
        """
        size = x_orig.size if isinstance(x_orig, np.ndarray) else np.size(x_orig)
        if size == 0:
            return x_orig
        x = _f32_array(x_orig).reshape(-1)
        x_min, x_max = minmax_f32(x)
        if x_min == _NINF or x_max == _INF:
            warnings.warn("inf detected in the input: HistogramObserver ignores this batch "
                          "(as torch does)", UserWarning, stacklevel=2)
            x = x[np.abs(x) != np.inf]
            if x.size == 0:
                return x_orig
            x_min, x_max = minmax_f32(x)
        if x_min != x_min:
            raise ValueError("HistogramObserver: x contains NaN, which has no place in a "
                             "histogram (torch raises 'torch.histc: range of [nan, nan] is "
                             "not finite')")
        cur_min = _value(self.min_val)
        cur_max = _value(self.max_val)
        if cur_min == _INF or cur_max == _NINF:
            self.reset_histogram(x, x_min, x_max)
            return x_orig
        # np.fmin would drop NaN; torch.min / torch.max propagate it (histc then raises)
        new_min = np.minimum(cur_min, x_min)
        new_max = np.maximum(cur_max, x_max)
        update = self._histc(x, new_min, new_max, x_min, x_max)
        if new_min == cur_min and new_max == cur_max:
            combined = self.histogram + update
        else:
            combined = self._combine_histograms(self.histogram, cur_min, cur_max, update,
                                                new_min, new_max)
            self.min_val[...] = new_min
            self.max_val[...] = new_max
        if combined.shape == self.histogram.shape:
            self.histogram[...] = combined
        else:
            self.histogram = np.asarray(combined, np.float32)
        return x_orig

    # -------------------------------------------------------------- qparams
    def calculate_qparams(self):
        """``(scale, zero_point)`` of the error-minimising range: float32 and int32
        (affine) / int64 (symmetric) arrays of shape ``(1,)``; ``([1.0], [0])`` with a
        warning before any data."""
        if _value(self.min_val) == _INF and _value(self.max_val) == _NINF:
            warnings.warn(_NO_DATA_MSG, UserWarning, stacklevel=2)
            return np.array([1.0], np.float32), np.array([0], np.int64)
        if self.bins != len(self.histogram):
            raise ValueError("The number of bins in histogram should be equal to the number "
                             "of bins supplied while making this observer")
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    # ----------------------------------------------------------- state dict
    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # torch assigns the saved min_val / max_val as they are (no shape check); an
        # empty one (checkpoints before observer version 3) means "nothing observed"
        patched = None
        for name, empty in (("min_val", math.inf), ("max_val", -math.inf)):
            key = prefix + name
            if key not in state_dict:
                continue
            val = np.asarray(state_dict[key])
            if val.shape == (0,):
                val = np.array(empty, np.float32)
                patched = dict(state_dict) if patched is None else patched
                patched[key] = val
            if val.size != 1 or val.dtype.kind not in "fiub":
                error_msgs.append(f"{key}: HistogramObserver's {name} must be a single number; "
                                  f"got shape {val.shape}, dtype {val.dtype}")
                continue
            # the buffer takes the saved shape (0-d or (1,)), then is filled by the base
            setattr(self, name, np.empty(val.shape, np.float32))
        super()._load_from_state_dict(state_dict if patched is None else patched, prefix,
                                      strict, missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"
