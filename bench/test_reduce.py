"""Benchmarks: the min/max reductions behind observers and dynamic quantization.

Each case is one group: ``numq`` (the kernel-level call), ``numpy`` (``x.min(), x.max()``
or the per-axis pair) and ``torch`` (``torch.aminmax``; per channel the observer's
permute + flatten + ``aminmax(dim=1)``).
"""
import numpy as np
import pytest

from numq.kernels.reduce import minmax_f32, minmax_per_channel_f32

IMPLS = ["numq", "numpy", "torch"]
PER_TENSOR_SHAPES = [(4096, 4096), (64, 1024)]                    # 16M and 64K elements
PER_CHANNEL_CASES = [((64, 262144), 0), ((262144, 64), 1),         # channel first / last
                     ((32, 64, 56, 56), 1), ((1048576, 3), 1)]     # NCHW activations, RGB

_cache = {}


def _data(shape):
    if shape not in _cache:
        n = int(np.prod(shape))
        _cache[shape] = np.random.default_rng(0).standard_normal(n, dtype=np.float32).reshape(shape)
    return _cache[shape]


def _name(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", PER_TENSOR_SHAPES, ids=_name)
def test_minmax(measure, shape, impl):
    x = _data(shape)
    if impl == "numq":
        fn = lambda: minmax_f32(x)  # noqa: E731
    elif impl == "numpy":
        fn = lambda: (x.min(), x.max())  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        xt = torch.from_numpy(x)
        fn = lambda: torch.aminmax(xt)  # noqa: E731
    measure(f"minmax {_name(shape)}", impl, fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape,axis", PER_CHANNEL_CASES,
                         ids=lambda v: _name(v) if isinstance(v, tuple) else f"axis{v}")
def test_minmax_per_channel(measure, shape, axis, impl):
    x = _data(shape)
    C = shape[axis]
    if impl == "numq":
        x3 = x.reshape(int(np.prod(shape[:axis])), C, -1)
        mn = np.empty(C, np.float32)
        mx = np.empty(C, np.float32)
        fn = lambda: minmax_per_channel_f32(x3, mn, mx)  # noqa: E731
    elif impl == "numpy":
        axes = tuple(a for a in range(x.ndim) if a != axis)
        fn = lambda: (x.min(axis=axes), x.max(axis=axes))  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        xt = torch.from_numpy(x)
        perm = list(range(x.ndim))
        perm[0], perm[axis] = perm[axis], perm[0]
        fn = lambda: torch.aminmax(xt.permute(perm).flatten(1), dim=1)  # noqa: E731
    measure(f"minmax_per_channel {_name(shape)} axis {axis}", impl, fn)
