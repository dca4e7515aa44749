"""Benchmarks: quantize / dequantize, per tensor and per channel.

Each op and shape is one benchmark group holding three implementations:
``numq`` (the public function, validation and output allocation included),
``numpy`` (the float32 NumPy one-liner a user would write) and ``torch`` (skipped when
torch is not installed). Targets (issue 2): quantize_per_tensor >= 1x torch,
dequantize >= 2x torch, quantize_per_channel (64, 262144) axis 0 >= 4x torch.
"""
import numpy as np
import pytest

import numq

# torch 2.13 warns that its quantized dtypes are deprecated
pytestmark = pytest.mark.filterwarnings("ignore:.*quantized tensor creation:UserWarning")

IMPLS = ["numq", "numpy", "torch"]

# realistic qparams: standard-normal data spans most of the integer range, a few clamp
QPARAMS = {"quint8": (0.03, 128), "qint8": (0.03, 0)}
RANGES = {"quint8": (0, 255, np.uint8), "qint8": (-128, 127, np.int8)}

PER_TENSOR_SHAPES = [(4096, 4096), (64, 1024)]   # 16M and 64K elements
PER_CHANNEL_CASES = [((64, 262144), 0), ((262144, 64), 1)]  # 16M, channel first / last

_cache = {}


def _data(shape):
    """Standard-normal float32 data of ``shape`` (made once per shape per session)."""
    key = ("x", shape)
    if key not in _cache:
        n = int(np.prod(shape))
        _cache[key] = np.random.default_rng(0).standard_normal(n, dtype=np.float32).reshape(shape)
    return _cache[key]


def _channel_qparams(C):
    rng = np.random.default_rng(1)
    scales = rng.uniform(0.01, 0.05, C)           # float64, as torch keeps them
    zps = rng.integers(-10, 11, C).astype(np.int64)
    return scales, zps


def _name(shape):
    return "x".join(map(str, shape))


def _case_id(v):
    return _name(v) if isinstance(v, tuple) else f"axis{v}"


def _torch():
    return pytest.importorskip("torch")


def _bcast(v, ndim, axis):
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


# ----------------------------------------------------------------- per tensor

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", PER_TENSOR_SHAPES, ids=_name)
@pytest.mark.parametrize("dt", ["quint8", "qint8"])
def test_quantize_per_tensor(measure, dt, shape, impl):
    x = _data(shape)
    scale, zp = QPARAMS[dt]
    lo, hi, storage = RANGES[dt]
    if impl == "numq":
        qdt = getattr(numq, dt)
        fn = lambda: numq.quantize_per_tensor(x, scale, zp, qdt)  # noqa: E731
    elif impl == "numpy":
        fn = lambda: np.clip(np.rint(x / scale + zp), lo, hi).astype(storage)  # noqa: E731
    else:
        torch = _torch()
        xt, tdt = torch.from_numpy(x), getattr(torch, dt)
        fn = lambda: torch.quantize_per_tensor(xt, scale, zp, tdt)  # noqa: E731
    measure(f"quantize_per_tensor {dt} {_name(shape)}", impl, fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", PER_TENSOR_SHAPES, ids=_name)
def test_dequantize_per_tensor(measure, shape, impl):
    x = _data(shape)
    scale, zp = QPARAMS["quint8"]
    qx = numq.quantize_per_tensor(x, scale, zp, numq.quint8)
    if impl == "numq":
        fn = qx.dequantize
    elif impl == "numpy":
        q = qx.int_repr()
        s32 = np.float32(scale)
        fn = lambda: (q.astype(np.float32) - zp) * s32  # noqa: E731
    else:
        torch = _torch()
        fn = torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, torch.quint8).dequantize
    measure(f"dequantize quint8 {_name(shape)}", impl, fn)


# ---------------------------------------------------------------- per channel

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape,axis", PER_CHANNEL_CASES, ids=_case_id)
def test_quantize_per_channel(measure, shape, axis, impl):
    x = _data(shape)
    scales, zps = _channel_qparams(shape[axis])
    if impl == "numq":
        fn = lambda: numq.quantize_per_channel(x, scales, zps, axis, numq.qint8)  # noqa: E731
    elif impl == "numpy":
        s = _bcast(scales.astype(np.float32), x.ndim, axis)
        z = _bcast(zps.astype(np.float32), x.ndim, axis)
        fn = lambda: np.clip(np.rint(x / s + z), -128, 127).astype(np.int8)  # noqa: E731
    else:
        torch = _torch()
        xt, st, zt = torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps)
        fn = lambda: torch.quantize_per_channel(xt, st, zt, axis, torch.qint8)  # noqa: E731
    measure(f"quantize_per_channel qint8 {_name(shape)} axis {axis}", impl, fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape,axis", PER_CHANNEL_CASES, ids=_case_id)
def test_dequantize_per_channel(measure, shape, axis, impl):
    x = _data(shape)
    scales, zps = _channel_qparams(shape[axis])
    qx = numq.quantize_per_channel(x, scales, zps, axis, numq.qint8)
    if impl == "numq":
        fn = qx.dequantize
    elif impl == "numpy":
        q = qx.int_repr()
        s = _bcast(scales.astype(np.float32), x.ndim, axis)
        z = _bcast(zps.astype(np.float32), x.ndim, axis)
        fn = lambda: (q.astype(np.float32) - z) * s  # noqa: E731
    else:
        torch = _torch()
        xt = torch.from_numpy(x)
        qt = torch.quantize_per_channel(xt, torch.from_numpy(scales), torch.from_numpy(zps),
                                        axis, torch.qint8)
        fn = qt.dequantize
    measure(f"dequantize_per_channel qint8 {_name(shape)} axis {axis}", impl, fn)
