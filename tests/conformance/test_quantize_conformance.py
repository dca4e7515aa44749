"""quantize / dequantize against PyTorch 2.13 (CPU, x86 engine), bit for bit.

Integer representations compare with exact equality (quint4x2 in torch's packed
layout); dequantized float32 arrays compare bitwise.

Where numq deliberately differs from torch (each pinned by a test at the end):

- numq raises ValueError for ``scale <= 0`` or a non-finite scale; torch silently accepts
  them (``scale=0`` quantizes to 255 / 0, ``nan`` to 255, ``inf`` to zp).
- numq accepts float16 / float64 input and rounds it to float32 first (as
  ``Tensor.float()``); torch refuses anything but float32 ("Quantize only works on
  Float Tensor").
- numq accepts a negative per-channel ``axis`` (NumPy's convention); torch's
  quantize_per_channel refuses it ("Channel axis out of range").
- numq refuses float zero points for qint8 / qint32 per channel (TypeError); torch 2.13
  accepts them for qint8 (giving per_channel_affine_float_qparams) and dies with SIGILL
  for qint32. numq supports quint4x2 per channel with integer zero points (torch: not
  implemented).
- Integer overflow inside torch is not copied (numq saturates or computes exactly):
  float-qparams per-channel quantize keeps only the low 32 bits of the rounded value
  (``x/scale + zp >= 2**31`` gives garbage, e.g. ``1e10 -> 255`` but ``2**31 -> 0``);
  the quint4x2 per-tensor path gives 0 for values beyond 2**63; qint32 per-tensor
  dequantize computes ``q - zp`` in wrapping int32 arithmetic.

Rules torch follows that refine shared/NUMERICS.md (checked here): quint4x2 per tensor
rounds BEFORE adding the zero point and maps NaN / +-inf to 0; per-channel NaN gives 0
for 8-bit types; float-qparams per channel maps NaN / +-inf to quant_min; per-channel
dequantize multiplies by the float64 scale: ``f32(f64(f32(q) - f32(zp)) * scale)``.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import numq  # noqa: E402
from numq.kernels import PARALLEL_MIN  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch's deprecation notes

F16, F32, F64 = np.float16, np.float32, np.float64
TORCH = {numq.quint8: torch.quint8, numq.qint8: torch.qint8, numq.qint32: torch.qint32,
         numq.quint4x2: torch.quint4x2}
ALL = list(TORCH)
PER_CHANNEL = [numq.quint8, numq.qint8, numq.qint32]
FLOAT_ZP = [numq.quint8, numq.quint4x2]
ODD_ZP = {numq.quint8: [1, 3, 127, 255], numq.qint8: [-127, -3, 1, 5],
          numq.qint32: [-(2**25) - 1, -7, 1, 1001], numq.quint4x2: [1, 3, 7, 15]}


def bits(a):
    a = np.ascontiguousarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def torch_per_tensor(x, scale, zp, dt):
    return torch.quantize_per_tensor(t(x), scale, zp, TORCH[dt])


def torch_per_channel(x, scales, zps, axis, dt):
    zps = np.asarray(zps)
    tz = t(zps.astype(F32)) if zps.dtype.kind == "f" else t(zps.astype(np.int64))
    axis %= np.ndim(x)          # torch refuses negative axes here; numq accepts them
    return torch.quantize_per_channel(t(x), t(np.asarray(scales, F64)), tz, axis, TORCH[dt])


def assert_same(q, tq):
    """numq QTensor == torch quantized tensor: int_repr and dequantize, bit for bit.

    Per-tensor qint32 values whose ``q - zp`` leaves the int32 range are left out of the
    dequantize comparison: torch wraps there, numq is exact (documented difference)."""
    assert bits(q.int_repr()) == bits(tq.int_repr().numpy())
    d, td = q.dequantize(), tq.dequantize().numpy()
    if q.dtype is numq.qint32 and q.qscheme() is numq.per_tensor_affine:
        diff = q.int_repr().astype(np.int64) - q.q_zero_point()
        ok = (diff >= -(2**31)) & (diff < 2**31)
        d, td = d[ok], td[ok]
    assert bits(d) == bits(td)
    assert q.qscheme().name == str(tq.qscheme()).removeprefix("torch.")
    if q.qscheme() is numq.per_tensor_affine:
        assert q.q_scale() == tq.q_scale() and q.q_zero_point() == tq.q_zero_point()


def grid(n, scale, seed):
    """Exact ties (k + 0.5) * scale, their float32 neighbours and random values."""
    rng = np.random.default_rng(seed)
    k = rng.integers(-300, 300, n)
    x = ((k + 0.5) * scale).astype(F32)
    nb = np.nextafter(x, np.where(k % 2 == 0, F32(np.inf), F32(-np.inf))).astype(F32)
    r = (rng.standard_normal(n) * 150 * scale).astype(F32)
    return np.where(k % 3 == 0, x, np.where(k % 3 == 1, nb, r)).astype(F32)


# --------------------------------------------------------------------------- per tensor

@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("n", [1, 7, 33, 1000, 4099])   # vector bodies and scalar tails
def test_per_tensor_random_and_ties(dt, n):
    rng = np.random.default_rng(n)
    for scale in (0.5, 2.0**-5, 1.0, float(rng.uniform(1e-3, 10)), 0.1):
        x = grid(n, scale, n + int(scale * 1000))
        for zp in ODD_ZP[dt]:
            assert_same(numq.quantize_per_tensor(x, scale, zp, dt),
                        torch_per_tensor(x, scale, zp, dt))


@pytest.mark.parametrize("dt", ALL)
def test_per_tensor_exact_ties_everywhere(dt):
    k = np.arange(-400, 400)
    for scale in (1.0, 0.5, 0.25, 4.0):
        x = ((k + 0.5) * scale).astype(F32)
        for zp in ODD_ZP[dt]:
            assert_same(numq.quantize_per_tensor(x, scale, zp, dt),
                        torch_per_tensor(x, scale, zp, dt))


@pytest.mark.parametrize("dt", ALL)
def test_per_tensor_nan_inf(dt):
    big = [1e30, -1e30, 3e9, -3e9, 2.0**31, -(2.0**31)]
    if dt is numq.quint4x2:   # beyond 2**63 torch gives 0 here, numq saturates (see end)
        big = [1e10, -1e10, 2e18, -2e18, 2.0**31, -(2.0**31)]
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, 1.5, -0.5, 300, -300] + big, F32)
    x = np.tile(x, 5)            # the specials land in vector bodies and tails
    for scale in (1.0, 0.3):
        for zp in ODD_ZP[dt][:2]:
            assert_same(numq.quantize_per_tensor(x, scale, zp, dt),
                        torch_per_tensor(x, scale, zp, dt))


@pytest.mark.parametrize("dt", ALL)
def test_per_tensor_large_input(dt):
    n = 3 * PARALLEL_MIN + 5
    x = grid(n, 0.25, 77)
    x[::1009] = np.nan
    x[5::2003] = np.inf
    x[7::3001] = -np.inf
    q = numq.quantize_per_tensor(x, 0.25, ODD_ZP[dt][1], dt)
    assert_same(q, torch_per_tensor(x, 0.25, ODD_ZP[dt][1], dt))


def test_per_tensor_scale_is_used_as_float32():
    # the scale is stored as a double (q_scale) but every kernel uses float32(scale)
    x = grid(500, 0.1, 3)
    for scale in (0.1, 1 / 3, 0.1000000000000001, 7.000000000000001e-3):
        for dt in ALL:
            assert_same(numq.quantize_per_tensor(x, scale, 1, dt),
                        torch_per_tensor(x, scale, 1, dt))


# -------------------------------------------------------------------------- per channel

@pytest.mark.parametrize("dt", PER_CHANNEL)
@pytest.mark.parametrize("shape, axis", [((4, 100), 0), ((4, 100), 1), ((3, 5, 40), 1),
                                         ((3, 5, 40), -1), ((3, 5, 40), -3), ((40, 6), -1),
                                         ((2, 3, 4, 50), 2)])
def test_per_channel_int_zero_points_every_axis(dt, shape, axis):
    rng = np.random.default_rng(len(shape) * 10 + axis)
    C = shape[axis]
    x = grid(int(np.prod(shape)), 0.5, C).reshape(shape)
    scales = 0.5 * rng.choice([1.0, 0.5, 2.0, 0.25], C)
    scales[0] = float(rng.uniform(1e-3, 3))
    lo, hi = max(dt.qmin, -1000), min(dt.qmax, 1000)
    zps = rng.integers(lo, hi, C) | 1                     # odd zero points
    zps = np.clip(zps, dt.qmin, dt.qmax)
    assert_same(numq.quantize_per_channel(x, scales, zps, axis, dt),
                torch_per_channel(x, scales, zps, axis, dt))


@pytest.mark.parametrize("dt", FLOAT_ZP)
@pytest.mark.parametrize("shape, axis", [((4, 100), 0), ((100, 4), 1), ((3, 6, 40), 1),
                                         ((3, 5, 41), -1)])
def test_per_channel_float_zero_points(dt, shape, axis):
    # quint4x2: torch's int_repr packs the whole tensor, two values per byte
    rng = np.random.default_rng(shape[axis] + axis)
    C = shape[axis]
    x = grid(int(np.prod(shape)), 0.25, C).reshape(shape)
    scales = rng.uniform(0.05, 1.0, C)
    zps = np.concatenate([[1.0, 0.5], rng.uniform(-20, dt.qmax + 20, C - 2)]).astype(F32)
    assert_same(numq.quantize_per_channel(x, scales, zps, axis, dt),
                torch_per_channel(x, scales, zps, axis, dt))


@pytest.mark.parametrize("dt", PER_CHANNEL)
def test_per_channel_ties_with_odd_zero_points(dt):
    k = np.arange(-300, 300)
    x = np.stack([(k + 0.5) * s for s in (0.5, 0.25, 2.0, 1.0)]).astype(F32)
    zps = {numq.quint8: [1, 3, 7, 255], numq.qint8: [-127, 1, 3, 127],
           numq.qint32: [1, -3, 2**25 + 1, 7]}[dt]
    for xx in (x, np.nextafter(x, F32(np.inf)), np.nextafter(x, F32(-np.inf))):
        assert_same(numq.quantize_per_channel(xx, [0.5, 0.25, 2.0, 1.0], zps, 0, dt),
                    torch_per_channel(xx, [0.5, 0.25, 2.0, 1.0], zps, 0, dt))
    for zp_kind in FLOAT_ZP:
        fz = np.array([1.0, 3.0, 7.0, 0.5], F32)
        assert_same(numq.quantize_per_channel(x, [0.5, 0.25, 2.0, 1.0], fz, 0, zp_kind),
                    torch_per_channel(x, [0.5, 0.25, 2.0, 1.0], fz, 0, zp_kind))


@pytest.mark.parametrize("dt", ALL)
def test_per_channel_nan_inf(dt):
    row = [np.nan, np.inf, -np.inf, -0.0, 0.5, 1.5, 300, -300]
    big = [1e30, -1e30, 3e9, -3e9, 2.0**31]
    for zps in ([1, 3], [0, 2]):
        if dt in PER_CHANNEL:
            x = np.array([(row + big) * 3, (row + big)[::-1] * 3], F32)
            assert_same(numq.quantize_per_channel(x, [1.0, 0.5], zps, 0, dt),
                        torch_per_channel(x, [1.0, 0.5], zps, 0, dt))
            assert_same(numq.quantize_per_channel(x.T.copy(), [1.0, 0.5], zps, 1, dt),
                        torch_per_channel(x.T.copy(), [1.0, 0.5], zps, 1, dt))
        if dt in FLOAT_ZP:  # finite values stay below 2**31 (see the documented difference)
            x = np.array([row * 3, row[::-1] * 3], F32)
            fz = np.array(zps, F32) + F32(0.5)
            assert_same(numq.quantize_per_channel(x, [1.0, 0.5], fz, 0, dt),
                        torch_per_channel(x, [1.0, 0.5], fz, 0, dt))
            assert_same(numq.quantize_per_channel(x.T.copy(), [1.0, 0.5], fz, 1, dt),
                        torch_per_channel(x.T.copy(), [1.0, 0.5], fz, 1, dt))


@pytest.mark.parametrize("dt", PER_CHANNEL)
def test_per_channel_large_input(dt):
    n = 3 * PARALLEL_MIN + 16
    x = grid(n, 0.5, 5)
    x[::997] = np.nan
    x[3::1999] = np.inf
    scales = [0.5, 0.25, 1.0, 2.0]
    zps = [1, 3, 5, 7]
    for shape, axis in (((4, n // 4), 0), ((n // 4, 4), 1), ((2, 4, n // 8), 1)):
        xx = x.reshape(shape)
        assert_same(numq.quantize_per_channel(xx, scales, zps, axis, dt),
                    torch_per_channel(xx, scales, zps, axis, dt))
    if dt is numq.quint8:
        fz = np.array([1.5, 3.0, 0.0, 7.25], F32)
        for zdt in FLOAT_ZP:
            xx = x.reshape(n // 4, 4)
            assert_same(numq.quantize_per_channel(xx, scales, fz, 1, zdt),
                        torch_per_channel(xx, scales, fz, 1, zdt))


# --------------------------------------------------------------------------- dequantize

def _ints(dt, shape, seed):
    rng = np.random.default_rng(seed)
    v = rng.integers(dt.qmin, dt.qmax, shape, endpoint=True, dtype=np.int64)
    v.reshape(-1)[:2] = [dt.qmin, dt.qmax][: v.size]
    return v


@pytest.mark.parametrize("dt", [numq.quint8, numq.qint8, numq.qint32])
@pytest.mark.parametrize("n", [5, 37, 1000, PARALLEL_MIN + 3])
def test_dequantize_per_tensor_make(dt, n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        scale = float(rng.uniform(1e-4, 10))
        zp = int(rng.integers(max(dt.qmin, -1000), min(dt.qmax, 1000)))
        v = _ints(dt, n, abs(n + zp))
        if dt is numq.qint32:   # torch's q - zp wraps in int32; keep it in range here
            v = np.clip(v, -(2**31) + 1000, 2**31 - 1001)
        v = v.astype(dt.storage)
        q = numq._make_per_tensor_quantized_tensor(v, scale, zp)
        tq = torch._make_per_tensor_quantized_tensor(t(v), scale, zp)
        assert q.dtype is dt and tq.dtype == TORCH[dt]
        assert_same(q, tq)


@pytest.mark.parametrize("dt", PER_CHANNEL)
@pytest.mark.parametrize("shape, axis", [((10, 100), 1), ((7, 5, 30), 0), ((4, 6, 50), 2),
                                         ((6, PARALLEL_MIN // 5), 0)])
def test_dequantize_per_channel_make(dt, shape, axis):
    rng = np.random.default_rng(shape[0] + axis)
    v = _ints(dt, shape, shape[-1]).astype(dt.storage)
    C = shape[axis]
    scales = rng.uniform(1e-4, 10, C)               # doubles: torch keeps them in double
    zps = rng.integers(max(dt.qmin, -100000), min(dt.qmax, 100000), C, endpoint=True)
    q = numq._make_per_channel_quantized_tensor(v, scales, zps, axis)
    tq = torch._make_per_channel_quantized_tensor(t(v), t(scales), t(zps), axis)
    assert_same(q, tq)
    assert bits(q.q_per_channel_scales()) == bits(tq.q_per_channel_scales().numpy())
    assert bits(q.q_per_channel_zero_points()) == bits(tq.q_per_channel_zero_points().numpy())


@pytest.mark.parametrize("dt", FLOAT_ZP)
def test_dequantize_float_qparams(dt):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((10, 101)) * 5).astype(F32)
    scales = rng.uniform(1e-2, 1, 101)
    fz = rng.uniform(-50, 300, 101).astype(F32)
    q = numq.quantize_per_channel(x, scales, fz, 1, dt)
    tq = torch_per_channel(x, scales, fz, 1, dt)
    assert_same(q, tq)
    assert bits(q.q_per_channel_zero_points()) == bits(tq.q_per_channel_zero_points().numpy())


def test_dequantize_list_form():
    x = grid(100, 0.5, 1)
    qs = numq.quantize_per_tensor([x, x[::-1]], [0.5, 0.25], [1, 3], numq.quint8)
    tqs = torch.quantize_per_tensor([t(x), t(x[::-1])], torch.tensor([0.5, 0.25]),
                                    torch.tensor([1, 3]), torch.quint8)
    for q, tq in zip(qs, tqs):
        assert_same(q, tq)
    for d, td in zip(numq.dequantize(qs), torch.dequantize(tqs)):
        assert bits(d) == bits(td.numpy())


# -------------------------------------------------------------- quantize_per_tensor_dynamic

def _dynamic_inputs():
    rng = np.random.default_rng(4)
    return {
        "normal": (rng.standard_normal(1000) * 3).astype(F32),
        "positive": rng.uniform(0.5, 7, 257).astype(F32),
        "negative": -rng.uniform(0.5, 7, 31).astype(F32),
        "zeros": np.zeros(10, F32),
        "tiny_range": (rng.standard_normal(100) * 1e-6).astype(F32),  # the 6.1e-5 floor
        "one": np.array([2.5], F32),
        "offset": (rng.standard_normal((20, 30)) + 10).astype(F32),
        "large": (rng.standard_normal(3 * PARALLEL_MIN + 1) * 50).astype(F32),
    }


@pytest.mark.parametrize("dt", [numq.quint8, numq.qint8])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.parametrize("name", list(_dynamic_inputs()))
def test_quantize_per_tensor_dynamic(dt, reduce_range, name):
    x = _dynamic_inputs()[name]
    q = numq.quantize_per_tensor_dynamic(x, dt, reduce_range)
    tq = torch.quantize_per_tensor_dynamic(t(x), TORCH[dt], reduce_range)
    assert q.q_scale() == tq.q_scale()
    assert q.q_zero_point() == tq.q_zero_point()
    assert_same(q, tq)


def test_quantize_per_tensor_dynamic_float16():
    x = _dynamic_inputs()["normal"]
    y = numq.quantize_per_tensor_dynamic(x, numq.float16, False)
    ty = torch.quantize_per_tensor_dynamic(t(x), torch.float16, False)
    assert bits(y) == bits(ty.numpy())


# ---------------------------------------------------------- documented, deliberate differences

def test_difference_numq_refuses_bad_scales_torch_accepts_them():
    x = np.array([1.0, -2.0, 3.5, 0.0], F32)
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        torch_per_tensor(x, scale, 0, numq.quint8)          # torch: no error
        with pytest.raises(ValueError, match="^scale"):
            numq.quantize_per_tensor(x, scale, 0, numq.quint8)


@pytest.mark.parametrize("src", [F16, F64])
def test_difference_numq_accepts_float16_float64(src):
    x = grid(300, 0.5, 2).astype(src)
    with pytest.raises(RuntimeError, match="Float"):
        torch.quantize_per_tensor(t(x), 0.5, 1, torch.quint8)
    # numq rounds to float32 first, which is what a torch user writes by hand
    assert_same(numq.quantize_per_tensor(x, 0.5, 1, numq.quint8),
                torch.quantize_per_tensor(t(x).float(), 0.5, 1, torch.quint8))


def test_difference_float_zero_points_for_qint8():
    x = np.array([[0.5, 1.5, -3.0]], F32)
    tq = torch_per_channel(x, [1.0], np.array([1.0], F32), 0, numq.qint8)
    assert tq.qscheme() == torch.per_channel_affine_float_qparams      # torch accepts
    with pytest.raises(TypeError, match="^zero_points"):
        numq.quantize_per_channel(x, [1.0], np.array([1.0], F32), 0, numq.qint8)
    # (qint32 with float zero points kills torch 2.13 with SIGILL: not called here)


def test_difference_negative_axis():
    x = grid(24, 0.5, 8).reshape(2, 3, 4)
    with pytest.raises(RuntimeError, match="axis"):
        torch.quantize_per_channel(t(x), torch.ones(4, dtype=torch.float64),
                                   torch.zeros(4, dtype=torch.int64), -1, torch.quint8)
    q = numq.quantize_per_channel(x, np.ones(4), np.zeros(4, np.int64), -1, numq.quint8)
    assert q.q_per_channel_axis() == 2
    assert_same(q, torch_per_channel(x, np.ones(4), np.zeros(4, np.int64), 2, numq.quint8))


def test_difference_quint4x2_per_channel_int_zero_points():
    x = np.array([[0.5, 1.5, 9.0]], F32)
    with pytest.raises(NotImplementedError):
        torch_per_channel(x, [1.0], [1], 0, numq.quint4x2)
    q = numq.quantize_per_channel(x, [1.0], [1], 0, numq.quint4x2)   # numq: supported
    assert q.qscheme() is numq.per_channel_affine


def test_difference_integer_overflow_is_not_copied():
    # float-qparams per channel: torch keeps the low 32 bits of lrintf's 64-bit result
    x = np.array([[2147483520.0, 2.0**31, 1e10, -2147483904.0, 1e30, -1e30]], F32)
    tq = torch_per_channel(x, [1.0], np.array([0.0], F32), 0, numq.quint8)
    assert tq.int_repr().numpy()[0].tolist() == [255, 0, 255, 255, 0, 0]
    q = numq.quantize_per_channel(x, [1.0], np.array([0.0], F32), 0, numq.quint8)
    assert q.int_repr()[0].tolist() == [255, 255, 255, 0, 255, 0]          # saturates
    # quint4x2 per tensor: lrintf overflows beyond 2**63 -> 0 in torch
    x = np.array([9.3e18, 1e30, 9e18], F32)
    tv = torch_per_tensor(x, 1.0, 0, numq.quint4x2).int_repr().numpy()
    assert tv.tolist() == [0x00, 0x0F]      # values 0, 0 | 15
    q = numq.quantize_per_tensor(x, 1.0, 0, numq.quint4x2)
    assert q.int_repr().tolist() == [0xFF, 0x0F]                           # saturates
    # qint32 per tensor dequantize: torch computes q - zp in wrapping int32
    v = np.array([2**31 - 1, -(2**31)], np.int32)
    td = torch._make_per_tensor_quantized_tensor(t(v), 1.0, -1000).dequantize().numpy()
    assert td[0] < 0                                                        # wrapped
    d = numq._make_per_tensor_quantized_tensor(v, 1.0, -1000).dequantize()
    assert d.tolist() == [float(F32(2**31 + 999)), float(F32(-(2**31) + 1000))]  # exact
