"""Benchmarks: observer ``forward`` on 1M-element inputs, numq vs torch (issue 4).

Each case is one group with members ``numq`` (``numq.quantization`` observer) and ``torch``
(``torch.ao.quantization`` observer, same arguments); both run on 2 threads. The
observers are built once and then called repeatedly, as during calibration: the timed
call is the running-statistics update of one batch.

Cases (1,048,576 float32 elements each):

- ``MinMaxObserver`` on an activation-like ``16x64x32x32`` array;
- ``PerChannelMinMaxObserver`` with 64 channels on axis 1 of that activation, and on
  axis 0 of a weight-like ``64x16384`` array.
"""
import numpy as np
import pytest

import numq.quantization as nq

IMPLS = ["numq", "torch"]
ACT = (16, 64, 32, 32)
WEIGHT = (64, 16384)

_cache = {}


def _data(shape):
    if shape not in _cache:
        n = int(np.prod(shape))
        rng = np.random.default_rng(0)
        _cache[shape] = rng.standard_normal(n, dtype=np.float32).reshape(shape)
    return _cache[shape]


def _name(shape):
    return "x".join(map(str, shape))


def _observer_fn(impl, cls_name, x, **kwargs):
    """A zero-argument call of a fresh ``cls_name(**kwargs)`` observer on ``x``."""
    if impl == "numq":
        obs = getattr(nq, cls_name)(**kwargs)
        return lambda: obs(x)
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import observer as tobs
    obs = getattr(tobs, cls_name)(**kwargs)
    xt = torch.from_numpy(x)
    return lambda: obs(xt)


@pytest.mark.parametrize("impl", IMPLS)
def test_minmax_observer(measure, impl):
    fn = _observer_fn(impl, "MinMaxObserver", _data(ACT))
    measure(f"MinMaxObserver {_name(ACT)}", impl, fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape,axis", [(ACT, 1), (WEIGHT, 0)],
                         ids=lambda v: _name(v) if isinstance(v, tuple) else f"axis{v}")
def test_per_channel_minmax_observer(measure, shape, axis, impl):
    fn = _observer_fn(impl, "PerChannelMinMaxObserver", _data(shape), ch_axis=axis)
    measure(f"PerChannelMinMaxObserver {_name(shape)} axis {axis}", impl, fn)


# ------------------------------------------------------------ HistogramObserver
# One timed call feeds a fresh observer 4 activation batches whose range grows twice, so
# the histogram merge (re-binning the old histogram onto the wider range) is timed along
# with the binning of 4 x 1M values: batch scales 1, 1.5, 2.25 (each widens the range),
# then 1.2 (inside it: counts are added).
HIST_SCALES = (1.0, 1.5, 2.25, 1.2)


def _histogram_fn(impl, xs):
    if impl == "numq":
        cls = nq.HistogramObserver
    else:
        pytest.importorskip("torch")
        import torch
        from torch.ao.quantization.observer import HistogramObserver as cls
        xs = [torch.from_numpy(x) for x in xs]

    def run():
        obs = cls()
        for x in xs:
            obs(x)
        return obs

    return run


@pytest.mark.parametrize("impl", IMPLS)
def test_histogram_observer(measure, impl):
    x = _data(ACT)
    xs = [x * np.float32(s) for s in HIST_SCALES]
    measure(f"HistogramObserver {_name(ACT)} x4 batches", impl, _histogram_fn(impl, xs))
