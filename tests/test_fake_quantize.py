"""numq.fake_quantize against the element-wise references in reference_fake_quantize.py.

Forward values, masks and dX are compared bit for bit (the references reproduce every
rounding). dScale / dZeroPoint are sums: numq accumulates the float32 terms in float64
over fixed chunks, the reference with math.fsum (exact), so those compare within one
float32 rounding of the exact sum plus float64 accumulation error (see _close_sum).

Shapes and dtypes are few on purpose: every new dtype / layout is a Numba compile.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numq
import numq.fake_quantize as F
import reference_fake_quantize as R

F16, F32, F64 = np.float16, np.float32, np.float64
BIG = 70_000  # above numq.kernels.fake_quantize.PARALLEL_MIN: the prange path
SPECIALS = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9, -3e9, 0.0, -0.0, 1e-40]


def bits(a):
    a = np.ascontiguousarray(a)
    return a.dtype, a.shape, a.view(np.uint8).tobytes()


def assert_bits(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    same = (np.ascontiguousarray(actual).view(np.uint8).reshape(actual.shape + (-1,))
            == np.ascontiguousarray(expected).view(np.uint8).reshape(expected.shape + (-1,)))
    bad = ~same.all(-1) if actual.ndim else ~same.all()
    assert not bad.any(), f"{bad.sum()} differ: {actual[bad][:5]} vs {expected[bad][:5]}"


def _close_sum(actual, terms, axis=None):
    """``actual`` within a few float32 ulps of the exact sum of ``terms``.

    numq sums float32 terms in float64 (error <= n * 2**-53 * sum|t|) and rounds once to
    float32 (half an ulp of the result); the bound below covers both with margin.
    """
    exact = R.exact_sum_f32(terms, axis)
    t = np.abs(np.asarray(terms, F64))
    mag = t.sum() if axis is None else np.moveaxis(t, axis, 0).reshape(t.shape[axis], -1).sum(1)
    tol = np.spacing(np.abs(exact).astype(F32)) + t.size * 2.0**-50 * mag
    np.testing.assert_array_less(np.abs(np.asarray(actual, F64) - exact), tol + 1e-45)


def values(n, scale, zp, seed=0, dtype=F32):
    """``4 n + 10`` float values: ties ``x / scale + zp = k + 0.5``, their float32
    neighbours, random values and specials: the inputs where rounding order shows."""
    rng = np.random.default_rng(seed)
    t = rng.integers(-200, 200, n) + 0.5
    ties = ((t - zp) * scale).astype(F32)
    parts = [ties, np.nextafter(ties, F32(np.inf)), np.nextafter(ties, F32(-np.inf)),
             rng.normal(0, 60 * scale, n).astype(F32), np.array(SPECIALS, F32)]
    with np.errstate(over="ignore"):  # float16: 1e30 and 3e9 become inf, on purpose
        return np.concatenate(parts).astype(dtype)


QPARAMS = [(0.1, 3, -5, 20), (0.0137, 7, 0, 255), (1 / 3, -3, -128, 127)]


# ------------------------------------------------------------------ forward values

@pytest.mark.parametrize("dtype", [F32, F64, F16])
def test_per_tensor_matches_reference(dtype):
    for scale, zp, qmin, qmax in QPARAMS:
        x = values(40, scale, zp, dtype=dtype)
        y, mask = F.fake_quantize_per_tensor_affine_cachemask(x, scale, zp, qmin, qmax)
        ry, rmask = R.fq_per_tensor(x, scale, zp, qmin, qmax)
        assert_bits(y, ry)
        assert_bits(mask, rmask)
        assert_bits(F.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax), ry)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_per_tensor_nan_inf(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], dtype)
    y, mask = F.fake_quantize_per_tensor_affine_cachemask(x, 0.5, 3, -4, 10)
    lo, hi = F32(F32(-4 - 3) * F32(0.5)), F32(F32(10 - 3) * F32(0.5))
    assert_bits(y, np.array([lo, hi, lo, hi, lo], F32).astype(dtype))  # NaN -> quant_min
    assert not mask.any()


def test_per_tensor_ties_round_before_adding_zero_point():
    # x / scale = k + 0.5 exactly: rint first (half to even), then + zp (odd)
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5], F32)
    y = F.fake_quantize_per_tensor_affine(x, 1.0, 1, -128, 127)
    assert_bits(y, np.array([0.0, 2.0, 2.0, 0.0, -2.0], F32))


def test_per_tensor_float64_output_is_a_float32_product():
    x = np.array([0.1, 0.7, -3.3], F64)
    y = F.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)
    assert y.dtype == F64
    assert_bits(y, (np.array([1, 7, -33], F32) * F32(0.1)).astype(F64))


@pytest.mark.parametrize("dtype", [F32, F64, F16])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_int_zero_point_matches_reference(dtype, axis):
    x = values(30, 0.05, 1, dtype=dtype)[:120].reshape(4, 5, 6)
    C = x.shape[axis]
    scale = np.linspace(0.02, 0.3, C).astype(F32)
    zp = np.linspace(-4, 8, C).round().astype(np.int32)
    y, mask = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, axis, -8, 9)
    ry, rmask = R.fq_per_channel(x, scale, zp, axis % 3, -8, 9)
    assert_bits(y, ry)
    assert_bits(mask, rmask)
    assert_bits(F.fake_quantize_per_channel_affine(x, scale, zp, axis, -8, 9), ry)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_float_zero_point_matches_reference(dtype, axis):
    # float zero points near half-integers: one FMA rounding vs two would differ here
    x = values(30, 0.05, 0.25, dtype=dtype)[:120].reshape(4, 5, 6)
    C = x.shape[axis]
    scale = np.linspace(0.02, 0.3, C).astype(F32)
    zp = (np.arange(C) * 1.75 - 3.25).astype(F32)
    y, mask = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, axis, -20, 20)
    ry, rmask = R.fq_per_channel(x, scale, zp, axis % 3, -20, 20)
    assert_bits(y, ry)
    assert_bits(mask, rmask)


def test_per_channel_float_zero_point_fma_ties():
    s, z = F32(0.1), F32(3.25)
    t = np.arange(-40, 40) + 0.5
    x0 = ((t - 3.25) * 0.1).astype(F32)
    x = np.concatenate([x0, np.nextafter(x0, F32(1)), np.nextafter(x0, F32(-1))])[:, None]
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, [s], [z], 1, -100, 100)
    ry, rm = R.fq_per_channel(x, [s], np.array([z]), 1, -100, 100)
    assert_bits(y, ry)
    assert_bits(m, rm)


@pytest.mark.parametrize("zp", [np.array([2, -1], np.int32), np.array([2.5, -1.0], F32)])
def test_per_channel_nan_inf_give_quant_min(zp):
    # torch casts to int64 before clamping; x86 gives INT64_MIN for all of these
    x = np.array([[np.nan, np.inf, -np.inf, 1e30, -1e30]] * 2, F32)
    y, mask = F.fake_quantize_per_channel_affine_cachemask(x, [0.5, 0.25], zp, 0, -4, 10)
    expect = (F64(-4) - zp.astype(F64)) * np.array([0.5, 0.25])
    assert_bits(y, np.repeat(expect.astype(F32)[:, None], 5, 1))
    assert not mask.any()


def test_per_channel_float16_zero_points_and_float64_scales_accepted():
    x = values(20, 0.1, 0)[:60].reshape(6, 10)
    y = F.fake_quantize_per_channel_affine(x, np.full(10, 0.1), np.full(10, 1.5, F16), 1, 0, 9)
    assert_bits(y, R.fq_per_channel(x, np.full(10, 0.1, F32), np.full(10, 1.5, F32), 1, 0, 9)[0])


# ------------------------------------------------------------------------ backward

@pytest.mark.parametrize("dtype", [F32, F64])
def test_per_tensor_backward_matches_reference(dtype):
    x = values(30, 0.1, 3, dtype=dtype)
    dy = np.random.default_rng(1).normal(size=x.shape).astype(dtype)
    dy[:5] = [np.nan, np.inf, -np.inf, -1.0, -0.0]
    x[:5] = 1e6  # masked: NaN * 0 stays NaN, -1 * 0 is -0.0
    dx = F.fake_quantize_per_tensor_affine_backward(dy, x, 0.1, 3, -128, 127)
    assert_bits(dx, R.fq_backward(dy, R.fq_per_tensor(x, 0.1, 3, -128, 127)[1]))


def test_per_tensor_backward_float64_grad_of_float32_input():
    x = values(20, 0.1, 3)
    dy = np.linspace(-1, 1, x.size)
    dx = F.fake_quantize_per_tensor_affine_backward(dy, x, 0.1, 3, -128, 127)
    assert_bits(dx, R.fq_backward(dy, R.fq_per_tensor(x, 0.1, 3, -128, 127)[1]))


@pytest.mark.parametrize("zp", [np.array([0, 3, -2], np.int32), np.array([0.5, 3.0, -2.25], F32)])
@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_backward_matches_reference(zp, axis):
    x = values(30, 0.1, 0)[:129].reshape((3, 43) if axis == 0 else (43, 3))
    dy = np.random.default_rng(2).normal(size=x.shape).astype(F32)
    scale = np.array([0.1, 0.05, 0.2], F32)
    dx = F.fake_quantize_per_channel_affine_backward(dy, x, scale, zp, axis, -10, 10)
    assert_bits(dx, R.fq_backward(dy, R.fq_per_channel(x, scale, zp, axis, -10, 10)[1]))


# ----------------------------------------------------------------------- learnable

@pytest.mark.parametrize("zp", [2.5, -2.5, -2.7, 300.0])
def test_learnable_per_tensor_forward(zp):
    x = values(30, 0.1, round(zp))
    y = F._fake_quantize_learnable_per_tensor_affine(x, np.array([0.1], F32),
                                                     np.array([zp], F32), -128, 127, 1.0)
    z = R.lsq_zero_point_forward(zp, -128, 127)
    assert_bits(y, R.fq_per_tensor(x, 0.1, z, -128, 127)[0])


@pytest.mark.parametrize("zp, gf", [(3.0, 1.0), (2.5, 0.37), (-2.5, 1.0), (-2.7, 0.01),
                                    (300.0, 1.0)])
def test_learnable_per_tensor_backward(zp, gf):
    x = values(40, 0.05, round(zp))
    dy = np.random.default_rng(3).normal(size=x.shape).astype(F32)
    dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(dy, x, 0.05, zp,
                                                                       -128, 127, gf)
    rdx, rds, rdz = R.lsq_per_tensor_backward(dy, x, 0.05, zp, -128, 127, gf)
    assert_bits(dx, rdx)
    assert ds.shape == dz.shape == (1,) and ds.dtype == dz.dtype == F32
    _close_sum(ds[0], rds)
    _close_sum(dz[0], rdz)


def test_learnable_per_tensor_backward_terms_exact():
    # one element per call: each sum is a single float32 term, so it must be exact
    x = values(10, 0.05, -3)
    dy = np.random.default_rng(4).normal(size=x.shape).astype(F32)
    dy[:4] = [np.nan, np.inf, -1.0, 0.0]
    rdx, rds, rdz = R.lsq_per_tensor_backward(dy, x, 0.05, -2.6, -128, 127, 0.5)
    for i in range(x.size):
        dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(
            dy[i:i + 1], x[i:i + 1], 0.05, -2.6, -128, 127, 0.5)
        assert_bits(dx, rdx[i:i + 1])
        np.testing.assert_array_equal([ds[0], dz[0]], [rds[i], rdz[i]])  # -0.0 == 0.0: sums


def test_learnable_backward_zero_point_is_truncated_not_rounded():
    # zp = -2.7: forward uses rint -> -3, backward trunc(-2.7 + 0.5) -> -2
    assert R.lsq_zero_point_forward(-2.7, -128, 127) == -3
    assert R.lsq_per_tensor_zero_point_backward(-2.7, -128, 127) == -2
    x = np.array([0.77], F32)  # x / 0.1 = 7.7: code 5.7 -> 6 > 5 with zp -2 (4.7 with -3)
    _, _, dz = F._fake_quantize_learnable_per_tensor_affine_backward(
        np.ones(1, F32), x, 0.1, -2.7, -5, 5, 1.0)
    assert dz[0] == -np.float32(0.1)  # clamped; with zp -3 it would be in range: 0


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_learnable_per_channel(axis):
    x = values(30, 0.05, 0)[:120].reshape(4, 5, 6)
    dy = np.random.default_rng(5).normal(size=x.shape).astype(F32)
    C = x.shape[axis]
    scale = np.linspace(0.03, 0.2, C).astype(F32)
    zp = np.linspace(-3.5, 2.5, C).astype(F32)
    y = F._fake_quantize_learnable_per_channel_affine(x, scale, zp, axis, -8, 7, 0.5)
    zi = np.clip(np.rint(zp), -8, 7).astype(np.int32)
    assert_bits(y, R.fq_per_channel(x, scale, zi, axis % 3, -8, 7)[0])
    dx, ds, dz = F._fake_quantize_learnable_per_channel_affine_backward(dy, x, scale, zp, axis,
                                                                       -8, 7, 0.5)
    rdx, rds, rdz = R.lsq_per_channel_backward(dy, x, scale, zp, axis % 3, -8, 7, 0.5)
    assert_bits(dx, rdx)
    assert ds.shape == dz.shape == (C,)
    _close_sum(ds, rds, axis % 3)
    _close_sum(dz, rdz, axis % 3)


def test_learnable_per_channel_terms_exact():
    # one element per channel: the per-channel sums are the float32 terms themselves
    x = values(20, 0.1, 0)[:, None]
    dy = np.random.default_rng(6).normal(size=x.shape).astype(F32)
    n = x.shape[0]
    scale, zp = np.full(n, 0.1, F32), np.full(n, 1.5, F32)
    dx, ds, dz = F._fake_quantize_learnable_per_channel_affine_backward(dy, x, scale, zp, 0,
                                                                       -20, 20, 1.0)
    rdx, rds, rdz = R.lsq_per_channel_backward(dy, x, scale, zp, 0, -20, 20, 1.0)
    assert_bits(dx, rdx)
    np.testing.assert_array_equal(ds, rds[:, 0])
    np.testing.assert_array_equal(dz, rdz[:, 0])


# ------------------------------------------------------------- layouts and sizes

def _layouts(x):
    yield x[::2]                                   # strided
    yield x[::-1]                                  # negative stride
    yield x.astype(x.dtype.newbyteorder(">"))      # non-native byte order
    yield np.asfortranarray(x.reshape(-1, 4))      # Fortran order


@pytest.mark.parametrize("fn", ["per_tensor", "per_channel", "backward", "learnable"])
def test_layouts_match_contiguous(fn):
    base = values(50, 0.1, 1)[:184]
    dy0 = np.random.default_rng(7).normal(size=base.size).astype(F32)
    for x in _layouts(base):
        c = np.ascontiguousarray(x, dtype=F32)
        dy = dy0[:x.size].reshape(x.shape)
        if fn == "per_tensor":
            got = F.fake_quantize_per_tensor_affine_cachemask(x, 0.1, 1, -10, 10)
            want = F.fake_quantize_per_tensor_affine_cachemask(c, 0.1, 1, -10, 10)
        elif fn == "per_channel":
            C = x.shape[-1]
            got = F.fake_quantize_per_channel_affine_cachemask(x, np.full(C, 0.1), np.ones(C, int),
                                                               -1, -10, 10)
            want = F.fake_quantize_per_channel_affine_cachemask(c, np.full(C, 0.1),
                                                                np.ones(C, int), -1, -10, 10)
        elif fn == "backward":
            got = (F.fake_quantize_per_tensor_affine_backward(dy, x, 0.1, 1, -10, 10),)
            want = (F.fake_quantize_per_tensor_affine_backward(dy, c, 0.1, 1, -10, 10),)
        else:
            got = F._fake_quantize_learnable_per_tensor_affine_backward(dy, x, 0.1, 1.0, -10, 10)
            want = F._fake_quantize_learnable_per_tensor_affine_backward(dy, c, 0.1, 1.0, -10, 10)
        for g, w in zip(got, want):
            assert bits(g) == bits(w)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4)])
def test_empty(shape):
    x = np.empty(shape, F32)
    y, m = F.fake_quantize_per_tensor_affine_cachemask(x, 0.1, 0, 0, 255)
    assert y.shape == m.shape == shape and y.dtype == F32 and m.dtype == bool
    C = shape[-1]
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, np.ones(C), np.zeros(C, int), -1, 0, 9)
    assert y.shape == m.shape == shape
    assert F.fake_quantize_per_channel_affine_backward(x, x, np.ones(C), np.zeros(C, int), -1,
                                                       0, 9).shape == shape
    dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(x, x, 0.1, 0.0, -8, 7)
    assert dx.shape == shape and ds.tolist() == dz.tolist() == [0.0]
    dx, ds, dz = F._fake_quantize_learnable_per_channel_affine_backward(
        x, x, np.ones(C), np.zeros(C), -1, -8, 7)
    assert dx.shape == shape and ds.shape == dz.shape == (C,) and not ds.any() and not dz.any()


def test_zero_dim_and_list_inputs():
    y, m = F.fake_quantize_per_tensor_affine_cachemask(np.float64(0.26), 0.1, 0, -9, 9)
    assert y.shape == m.shape == () and y.dtype == F64
    assert_bits(y, R.fq_per_tensor(np.array(0.26), 0.1, 0, -9, 9)[0])
    assert_bits(F.fake_quantize_per_tensor_affine([0.26, 5.0], 0.1, 0, -9, 9),
                R.fq_per_tensor(np.array([0.26, 5.0]), 0.1, 0, -9, 9)[0])


def _pieces(x, fn, axis=0, cut=40_000):
    """fn on slices below the parallel threshold, concatenated: the serial path's result."""
    return [np.concatenate(parts, axis) for parts in
            zip(*(fn(x[:cut]), fn(x[cut:])))]


def test_parallel_per_tensor_matches_serial():
    x = np.resize(values(500, 0.1, 3), BIG)
    dy = np.resize(np.linspace(-2, 2, 999, dtype=F32), BIG)
    fwd = F.fake_quantize_per_tensor_affine_cachemask(x, 0.1, 3, -100, 100)
    for got, want in zip(fwd, _pieces(x, lambda v: F.fake_quantize_per_tensor_affine_cachemask(
            v, 0.1, 3, -100, 100))):
        assert bits(got) == bits(want)
    bwd = F.fake_quantize_per_tensor_affine_backward(dy, x, 0.1, 3, -100, 100)
    ser = [F.fake_quantize_per_tensor_affine_backward(dy[s], x[s], 0.1, 3, -100, 100)
           for s in (slice(0, 40_000), slice(40_000, None))]
    assert bits(bwd) == bits(np.concatenate(ser))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("float_zp", [False, True])
def test_parallel_per_channel_matches_serial(axis, float_zp):
    x = np.resize(values(500, 0.1, 0), BIG).reshape(-1, 7)   # inner == 1 on axis 1
    x = x if axis == 1 else np.ascontiguousarray(x.T)         # 7 channels on axis 0
    C = 7
    scale = np.linspace(0.05, 0.2, C).astype(F32)
    zp = np.linspace(-3.25, 2.5, C).astype(F32) if float_zp else np.arange(-3, 4, dtype=np.int32)
    got = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, axis, -60, 60)
    other = 1 - axis  # split the non-channel axis below the threshold
    halves = np.array_split(np.arange(x.shape[other]), 2)
    parts = [F.fake_quantize_per_channel_affine_cachemask(np.take(x, h, other), scale, zp, axis,
                                                          -60, 60) for h in halves]
    for k in range(2):
        assert bits(got[k]) == bits(np.concatenate([p[k] for p in parts], other))
    dy = np.ones_like(x)
    dx = F.fake_quantize_per_channel_affine_backward(dy, x, scale, zp, axis, -60, 60)
    assert bits(dx) == bits(got[1].astype(F32))


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_parallel_learnable_matches_serial_and_thread_count(axis):
    x = np.resize(values(500, 0.1, 0), BIG).reshape(-1, 10)
    dy = np.resize(np.linspace(-2, 2, 997, dtype=F32), x.shape)
    if axis == 0:  # 10 channels of 7000 contiguous elements (inner > 1)
        x, dy = np.ascontiguousarray(x.T), np.ascontiguousarray(dy.T)
    scale, zp = np.linspace(0.05, 0.2, 10).astype(F32), np.linspace(-3, 3, 10).astype(F32)

    def run(a, g):
        if axis is None:
            return F._fake_quantize_learnable_per_tensor_affine_backward(g, a, 0.1, 1.5, -60, 60)
        return F._fake_quantize_learnable_per_channel_affine_backward(g, a, scale, zp, axis,
                                                                     -60, 60)

    got = run(x, dy)
    threads = numq.get_num_threads()
    numq.set_num_threads(1)
    try:
        one = run(x, dy)
    finally:
        numq.set_num_threads(threads)
    for g, o in zip(got, one):  # fixed chunks: bitwise independent of the thread count
        assert bits(g) == bits(o)
    other = 1 if axis == 0 else 0  # split a non-channel axis below the parallel threshold
    halves = [run(np.take(x, h, other), np.take(dy, h, other))
              for h in np.array_split(np.arange(x.shape[other]), 2)]
    assert bits(got[0]) == bits(np.concatenate([h[0] for h in halves], other))
    # float32 sums of the halves vs float32 sum of the whole: one rounding apart each
    for k in (1, 2):
        np.testing.assert_allclose(got[k], halves[0][k] + halves[1][k], rtol=1e-6, atol=1e-4)


# ---------------------------------------------------------------- property tests

_floats = st.floats(-1e4, 1e4, width=32) | st.sampled_from([np.nan, np.inf, -np.inf, 0.5, -0.5])


@st.composite
def _qparams(draw):
    qmin = draw(st.integers(-300, 0))
    qmax = draw(st.integers(qmin, 300))
    zp = draw(st.integers(qmin, qmax))
    scale = draw(st.floats(1e-4, 10.0))
    return scale, zp, qmin, qmax


@settings(max_examples=60, deadline=None)
@given(st.lists(_floats, min_size=1, max_size=30), _qparams())
def test_property_per_tensor(xs, qp):
    x = np.array(xs, F32)
    y, m = F.fake_quantize_per_tensor_affine_cachemask(x, *qp)
    ry, rm = R.fq_per_tensor(x, *qp)
    assert bits(y) == bits(ry) and bits(m) == bits(rm)


@settings(max_examples=40, deadline=None)
@given(st.lists(_floats, min_size=6, max_size=24), _qparams(), st.booleans(),
       st.floats(-20, 20, width=32))
def test_property_per_channel(xs, qp, float_zp, zf):
    scale, zp, qmin, qmax = qp
    x = np.array(xs[:len(xs) // 3 * 3], F32).reshape(-1, 3)
    scales = np.array([scale, scale * 2, scale / 3], F32)
    zps = np.array([zf, zf + 0.5, -zf], F32) if float_zp else np.array([zp, qmin, qmax], np.int32)
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, scales, zps, 1, qmin, qmax)
    ry, rm = R.fq_per_channel(x, scales, zps, 1, qmin, qmax)
    assert bits(y) == bits(ry) and bits(m) == bits(rm)


@settings(max_examples=40, deadline=None)
@given(st.lists(_floats, min_size=1, max_size=20), _qparams(), st.floats(-300, 300, width=32),
       st.floats(0.01, 2.0))
def test_property_learnable_per_tensor_backward(xs, qp, zf, gf):
    scale, _, qmin, qmax = qp
    qmin, qmax = min(qmin, 0), max(qmax, 0)
    x = np.array(xs, F32)
    dy = np.linspace(-1.5, 1.5, x.size, dtype=F32)
    dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(dy, x, scale, zf, qmin,
                                                                       qmax, gf)
    rdx, rds, rdz = R.lsq_per_tensor_backward(dy, x, scale, zf, qmin, qmax, gf)
    assert bits(dx) == bits(rdx)
    _close_sum(ds[0], rds)
    _close_sum(dz[0], rdz)


# -------------------------------------------------------------- bad input, by class
# Each message starts with the offending argument's name (DESIGN.md).

X = np.linspace(-1, 1, 12, dtype=F32).reshape(3, 4)


def test_rejects_integer_input():
    with pytest.raises(TypeError, match="^input"):
        F.fake_quantize_per_tensor_affine(np.arange(4), 0.1, 0, 0, 255)


def test_rejects_bool_input():
    with pytest.raises(TypeError, match="^input"):
        F.fake_quantize_per_channel_affine(np.ones((2, 2), bool), [1, 1], [0, 0], 0, 0, 255)


@pytest.mark.parametrize("scale", [np.nan, np.inf, 1e300])
def test_rejects_non_finite_scale(scale):
    with pytest.raises(ValueError, match="^scale"):
        F.fake_quantize_per_tensor_affine(X, scale, 0, 0, 255)


@pytest.mark.parametrize("scale", [0.0, -0.1, 1e-50])
def test_rejects_non_positive_scale(scale):
    with pytest.raises(ValueError, match="^scale"):
        F.fake_quantize_per_tensor_affine(X, scale, 0, 0, 255)


def test_rejects_non_positive_channel_scale():
    with pytest.raises(ValueError, match="^scale"):
        F.fake_quantize_per_channel_affine(X, [0.1, 0.0, 0.1, 0.1], [0] * 4, 1, 0, 255)


def test_rejects_float_zero_point_per_tensor():
    with pytest.raises(TypeError, match="^zero_point"):
        F.fake_quantize_per_tensor_affine(X, 0.1, 1.5, 0, 255)


def test_rejects_zero_point_out_of_range():
    with pytest.raises(ValueError, match="^zero_point"):
        F.fake_quantize_per_tensor_affine(X, 0.1, 300, 0, 255)
    with pytest.raises(ValueError, match="^zero_point"):
        F.fake_quantize_per_channel_affine(X, [0.1] * 4, [0, 0, 300, 0], 1, 0, 255)


def test_rejects_non_finite_float_zero_point():
    with pytest.raises(ValueError, match="^zero_point"):
        F.fake_quantize_per_channel_affine(X, [0.1] * 4, [0.0, np.nan, 0.0, 0.0], 1, 0, 255)
    with pytest.raises(ValueError, match="^zero_point"):
        F._fake_quantize_learnable_per_tensor_affine(X, 0.1, np.inf, 0, 255)


def test_rejects_quant_min_above_quant_max():
    with pytest.raises(ValueError, match="^quant_min"):
        F.fake_quantize_per_tensor_affine(X, 0.1, 5, 10, 5)


def test_rejects_axis_out_of_range():
    with pytest.raises(ValueError, match="^axis"):
        F.fake_quantize_per_channel_affine(X, [0.1] * 4, [0] * 4, 2, 0, 255)
    with pytest.raises(ValueError, match="^input"):
        F.fake_quantize_per_channel_affine(np.float32(1.0), [0.1], [0], 0, 0, 255)


def test_rejects_channel_param_shape():
    with pytest.raises(ValueError, match="^scale"):
        F.fake_quantize_per_channel_affine(X, [0.1] * 3, [0] * 3, 1, 0, 255)
    with pytest.raises(ValueError, match="^zero_point"):
        F.fake_quantize_per_channel_affine(X, [0.1] * 4, [[0] * 4], 1, 0, 255)


def test_rejects_grad_shape_mismatch():
    with pytest.raises(ValueError, match="^grad_out"):
        F.fake_quantize_per_tensor_affine_backward(X.T, X, 0.1, 0, 0, 255)
    with pytest.raises(ValueError, match="^grad"):
        F._fake_quantize_learnable_per_tensor_affine_backward(X.T, X, 0.1, 0.0, -8, 7)


def test_rejects_learnable_backward_non_float32():
    with pytest.raises(TypeError, match="^input"):
        F._fake_quantize_learnable_per_tensor_affine_backward(X, X.astype(F64), 0.1, 0.0, -8, 7)


def test_rejects_learnable_backward_range_without_zero():
    with pytest.raises(ValueError, match="^quant_min"):
        F._fake_quantize_learnable_per_channel_affine_backward(X, X, [0.1] * 4, [0.0] * 4, 1, 1, 7)


def test_rejects_learnable_multi_value_qparams():
    with pytest.raises(ValueError, match="^scale"):
        F._fake_quantize_learnable_per_tensor_affine(X, [0.1, 0.2], 0.0, -8, 7)


def test_public_names():
    public = {n for n in dir(F) if "fake_quantize" in n and callable(getattr(F, n))}
    assert set(F.__all__) == public and len(public) == 10
