"""numq.fake_quantize against PyTorch 2.13 (x86 CPU build), bit for bit.

Forward values, masks and input gradients must be identical. dScale / dZeroPoint of the
learnable ops are sums over many float32 terms: torch adds them in float32 in its own
(vectorised, cascaded) order, numq in float64 over fixed chunks, so the totals agree
only to float32 summation accuracy; those compare with a tolerance scaled by the sum
of |terms| (taken from torch itself), while the individual terms are checked exactly
through one-element sums.
"""
import math

import numpy as np
import pytest

import numq.fake_quantize as F

torch = pytest.importorskip("torch")
A = torch.ops.aten

F16, F32, F64 = np.float16, np.float32, np.float64
BIG = 200_000  # parallel path in numq, several threads' worth in torch
SPECIALS = [np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9, -3e9, 0.0, -0.0, 1e-40]


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def assert_same(actual, expected):
    """Same dtype, shape and bytes (so -0.0 vs 0.0 and NaN payloads count)."""
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert actual.dtype == e.dtype and actual.shape == e.shape, (actual.dtype, e.dtype,
                                                                 actual.shape, e.shape)
    a8 = np.ascontiguousarray(actual).view(np.uint8).reshape(actual.shape + (-1,))
    e8 = np.ascontiguousarray(e).view(np.uint8).reshape(e.shape + (-1,))
    bad = ~(a8 == e8).all(-1)
    assert not bad.any(), f"{bad.sum()} differ: {actual[bad][:5]} vs {e[bad][:5]}"


def values(n, scale, zp, seed=0, dtype=F32):
    """Ties (``x / scale + zp = k + 0.5``), their float32 neighbours, random values,
    specials: ``4 n + 10`` values."""
    rng = np.random.default_rng(seed)
    t = rng.integers(-200, 200, n) + 0.5
    ties = ((t - zp) * scale).astype(F32)
    parts = [ties, np.nextafter(ties, F32(np.inf)), np.nextafter(ties, F32(-np.inf)),
             rng.normal(0, 60 * scale, n).astype(F32), np.array(SPECIALS, F32)]
    with np.errstate(over="ignore"):
        return np.concatenate(parts).astype(dtype)


# odd zero points put ties on both sides; the last uses qint32's range
QPARAMS = [(0.1, 3, -5, 20), (0.0137, 7, 0, 255), (1 / 3, -3, -128, 127),
           (0.05, 1, -(2**31), 2**31 - 1)]


# ----------------------------------------------------------------------- forward

@pytest.mark.parametrize("dtype", [F32, F64, F16])
@pytest.mark.parametrize("qp", QPARAMS)
def test_per_tensor_forward(dtype, qp):
    x = values(300, qp[0], qp[1], dtype=dtype)
    y, m = F.fake_quantize_per_tensor_affine_cachemask(x, *qp)
    ty, tm = A.fake_quantize_per_tensor_affine_cachemask(T(x), *qp)
    assert_same(y, ty)
    assert_same(m, tm)
    assert_same(F.fake_quantize_per_tensor_affine(x, *qp),
                torch.fake_quantize_per_tensor_affine(T(x), *qp))


def test_per_tensor_forward_parallel():
    x = np.resize(values(3000, 0.02, 5), BIG).reshape(400, -1)
    y, m = F.fake_quantize_per_tensor_affine_cachemask(x, 0.02, 5, 0, 255)
    ty, tm = A.fake_quantize_per_tensor_affine_cachemask(T(x), 0.02, 5, 0, 255)
    assert_same(y, ty)
    assert_same(m, tm)


def _channel_qparams(C, float_zp, dtype_zp=F32):
    scale = np.linspace(0.013, 0.3, C).astype(F32)
    if float_zp:
        return scale, np.linspace(-3.25, 4.5, C).astype(dtype_zp)
    return scale, (np.arange(C, dtype=np.int32) % 7) * 2 - 5


@pytest.mark.parametrize("dtype", [F32, F64, F16])
@pytest.mark.parametrize("float_zp", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_forward(dtype, float_zp, axis):
    x = values(200, 0.05, 0.25, dtype=dtype)[:780].reshape(6, 10, 13)
    scale, zp = _channel_qparams(x.shape[axis], float_zp, F16 if dtype == F16 else F32)
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, axis, -20, 30)
    ty, tm = A.fake_quantize_per_channel_affine_cachemask(T(x), T(scale), T(zp), axis, -20, 30)
    assert_same(y, ty)
    assert_same(m, tm)
    assert_same(F.fake_quantize_per_channel_affine(x, scale, zp, axis, -20, 30),
                torch.fake_quantize_per_channel_affine(T(x), T(scale), T(zp), axis, -20, 30))


@pytest.mark.parametrize("float_zp", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_forward_parallel(float_zp, axis):
    x = np.resize(values(3000, 0.05, 0.25), BIG).reshape(-1, 50)
    x = x if axis == 1 else np.ascontiguousarray(x.T)  # axis 1 is last: inner == 1
    scale, zp = _channel_qparams(50, float_zp)
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, axis, -128, 127)
    ty, tm = A.fake_quantize_per_channel_affine_cachemask(T(x), T(scale), T(zp), axis, -128, 127)
    assert_same(y, ty)
    assert_same(m, tm)


def test_per_channel_int32_range():
    x = values(200, 0.05, 0)[:810].reshape(-1, 3)
    scale, zp = np.array([0.05, 1e-3, 7.0], F32), np.array([0, 123456, -99], np.int32)
    lo, hi = -(2**31), 2**31 - 1
    y, m = F.fake_quantize_per_channel_affine_cachemask(x, scale, zp, 1, lo, hi)
    ty, tm = A.fake_quantize_per_channel_affine_cachemask(T(x), T(scale), T(zp), 1, lo, hi)
    assert_same(y, ty)
    assert_same(m, tm)


# ---------------------------------------------------------------------- backward

def _grad(shape, seed, dtype=F32):
    dy = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    dy.reshape(-1)[:6] = [np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0]
    return dy


@pytest.mark.parametrize("dtype", [F32, F64])
def test_per_tensor_backward(dtype):
    x = values(300, 0.1, 3, dtype=dtype)
    x[:6] = 1e6  # masked: NaN / inf gradients stay NaN, -1 becomes -0.0
    dy = _grad(x.shape, 1, dtype)
    xt = T(x).requires_grad_()
    torch.fake_quantize_per_tensor_affine(xt, 0.1, 3, -128, 127).backward(T(dy))
    assert_same(F.fake_quantize_per_tensor_affine_backward(dy, x, 0.1, 3, -128, 127), xt.grad)


@pytest.mark.parametrize("float_zp", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_backward(float_zp, axis):
    x = values(200, 0.05, 0.25)[:780].reshape(6, 10, 13)
    dy = _grad(x.shape, 2)
    scale, zp = _channel_qparams(x.shape[axis], float_zp)
    xt = T(x).requires_grad_()
    torch.fake_quantize_per_channel_affine(xt, T(scale), T(zp), axis, -20, 30).backward(T(dy))
    assert_same(F.fake_quantize_per_channel_affine_backward(dy, x, scale, zp, axis, -20, 30),
                xt.grad)


def test_backward_parallel():
    x = np.resize(values(3000, 0.05, 1), BIG).reshape(-1, 40)
    dy = _grad(x.shape, 3)
    xt = T(x).requires_grad_()
    torch.fake_quantize_per_tensor_affine(xt, 0.05, 1, -128, 127).backward(T(dy))
    assert_same(F.fake_quantize_per_tensor_affine_backward(dy, x, 0.05, 1, -128, 127), xt.grad)
    scale, zp = _channel_qparams(40, True)
    xt = T(x).requires_grad_()
    torch.fake_quantize_per_channel_affine(xt, T(scale), T(zp), 1, -128, 127).backward(T(dy))
    assert_same(F.fake_quantize_per_channel_affine_backward(dy, x, scale, zp, 1, -128, 127),
                xt.grad)


# --------------------------------------------------------------- learnable (LSQ)

LSQ = [(0.1, 3.0, -5, 20, 1.0), (0.0137, 7.5, -128, 127, 0.37), (0.05, -2.5, -128, 127, 1.0),
       (0.05, -2.7, -128, 127, 0.01), (0.2, 300.0, 0, 255, 1.0), (0.2, -0.6, -8, 7, 1.0)]


def _qp(v):
    return torch.tensor([v], dtype=torch.float32)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("s, zp, qmin, qmax, gf", LSQ)
def test_learnable_per_tensor_forward(dtype, s, zp, qmin, qmax, gf):
    x = values(200, s, round(zp), dtype=dtype)
    assert_same(F._fake_quantize_learnable_per_tensor_affine(x, s, zp, qmin, qmax, gf),
                torch._fake_quantize_learnable_per_tensor_affine(T(x), _qp(s), _qp(zp), qmin,
                                                                 qmax, gf))


def _per_element_terms(dy, x, scale, zp, qmin, qmax, gf):
    """torch's individual dScale / dZeroPoint terms: a per-channel backward with one
    channel per element sums exactly one term per channel (2-d input: see numq's docs
    for torch's 1-d quirk)."""
    n = x.size
    t = A._fake_quantize_learnable_per_channel_affine_backward(
        T(dy.reshape(n, 1)), T(x.reshape(n, 1)), T(np.resize(np.asarray(scale, F32), n)),
        T(np.resize(np.asarray(zp, F32), n)), 0, qmin, qmax, gf)
    return t[1].numpy(), t[2].numpy()


def _assert_sum(actual, expected_torch, terms):
    """numq: float64 sum, so within one float32 rounding of the exact total of torch's
    terms. torch: float32 sum, within float32 summation error of that total."""
    terms = np.asarray(terms, F64)
    exact = F32(math.fsum(terms))
    mag = np.abs(terms).sum()
    assert abs(F64(actual) - F64(exact)) <= np.spacing(abs(exact)) + terms.size * 2.0**-50 * mag
    assert abs(F64(expected_torch) - F64(exact)) <= 2e-6 * mag + np.spacing(abs(exact))


@pytest.mark.parametrize("s, zp, qmin, qmax, gf", LSQ)
def test_learnable_per_tensor_backward(s, zp, qmin, qmax, gf):
    x = values(300, s, round(zp))
    dy = _grad(x.shape, 4)
    dy[:3] = [0.5, -1.0, 2.0]  # finite gradients: the sums stay finite
    dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(dy, x, s, zp, qmin,
                                                                       qmax, gf)
    tdx, tds, tdz = A._fake_quantize_learnable_per_tensor_affine_backward(
        T(dy), T(x), _qp(s), _qp(zp), qmin, qmax, gf)
    assert_same(dx, tdx)
    # the per-tensor backward's zero point is trunc(clamp(zp + 0.5)), an integer
    zb = int(min(max(F32(zp) + F32(0.5), F32(qmin)), F32(qmax)))
    ts, tz = _per_element_terms(dy, x, s, zb, qmin, qmax, gf)
    _assert_sum(ds[0], tds.item(), ts)
    _assert_sum(dz[0], tdz.item(), tz)


def test_learnable_per_tensor_backward_terms_exact():
    # one element per call: each returned sum is one float32 term, so equal exactly
    # (compared as values: torch's sum turns a -0.0 term into 0.0, numq's too)
    for s, zp, qmin, qmax, gf in LSQ[:4]:
        x = values(12, s, round(zp))
        dy = _grad(x.shape, 5)
        for i in range(x.size):
            got = F._fake_quantize_learnable_per_tensor_affine_backward(
                dy[i:i + 1], x[i:i + 1], s, zp, qmin, qmax, gf)
            want = A._fake_quantize_learnable_per_tensor_affine_backward(
                T(dy[i:i + 1]), T(x[i:i + 1]), _qp(s), _qp(zp), qmin, qmax, gf)
            assert_same(got[0], want[0])
            np.testing.assert_array_equal([got[1][0], got[2][0]],
                                          [want[1].item(), want[2].item()])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_learnable_per_channel(axis):
    x = values(200, 0.05, 0)[:780].reshape(6, 10, 13)
    dy = np.random.default_rng(6).normal(size=x.shape).astype(F32)
    C = x.shape[axis]
    scale = np.linspace(0.02, 0.2, C).astype(F32)
    zp = np.linspace(-3.5, 2.5, C).astype(F32)
    assert_same(F._fake_quantize_learnable_per_channel_affine(x, scale, zp, axis, -8, 7, 0.5),
                torch._fake_quantize_learnable_per_channel_affine(T(x), T(scale), T(zp), axis,
                                                                  -8, 7, 0.5))
    dx, ds, dz = F._fake_quantize_learnable_per_channel_affine_backward(dy, x, scale, zp, axis,
                                                                       -8, 7, 0.5)
    tdx, tds, tdz = A._fake_quantize_learnable_per_channel_affine_backward(
        T(dy), T(x), T(scale), T(zp), axis, -8, 7, 0.5)
    assert_same(dx, tdx)
    shape = [1, 1, 1]
    shape[axis] = C
    zr = np.clip(np.rint(zp), -8, 7)
    ts, tz = _per_element_terms(dy, x, np.broadcast_to(scale.reshape(shape), x.shape).ravel(),
                                np.broadcast_to(zr.reshape(shape), x.shape).ravel(), -8, 7, 0.5)
    ts, tz = (np.moveaxis(t.reshape(x.shape), axis, 0).reshape(C, -1) for t in (ts, tz))
    for c in range(C):
        _assert_sum(ds[c], tds[c].item(), ts[c])
        _assert_sum(dz[c], tdz[c].item(), tz[c])


def test_learnable_per_channel_terms_exact():
    # (n, 1) input, one channel per element: dScale / dZeroPoint are the terms themselves
    x = values(300, 0.05, 0)[:, None]
    dy = _grad(x.shape, 7)
    n = x.shape[0]
    scale, zp = np.full(n, 0.05, F32), np.linspace(-3.5, 3.5, n).astype(F32)
    got = F._fake_quantize_learnable_per_channel_affine_backward(dy, x, scale, zp, 0, -20, 20, 0.3)
    want = A._fake_quantize_learnable_per_channel_affine_backward(T(dy), T(x), T(scale), T(zp),
                                                                  0, -20, 20, 0.3)
    assert_same(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(g, w.numpy())


def test_learnable_parallel():
    x = np.resize(values(3000, 0.05, 0), BIG).reshape(-1, 50)
    dy = np.random.default_rng(8).normal(size=x.shape).astype(F32)
    dx, ds, dz = F._fake_quantize_learnable_per_tensor_affine_backward(dy, x, 0.05, 1.0,
                                                                       -128, 127)
    t = A._fake_quantize_learnable_per_tensor_affine_backward(T(dy), T(x), _qp(0.05), _qp(1.0),
                                                              -128, 127, 1.0)
    assert_same(dx, t[0])
    ts, tz = _per_element_terms(dy, x, 0.05, 1.0, -128, 127, 1.0)
    _assert_sum(ds[0], t[1].item(), ts)
    _assert_sum(dz[0], t[2].item(), tz)
    scale, zp = np.linspace(0.02, 0.2, 50).astype(F32), np.linspace(-3, 3, 50).astype(F32)
    dx, ds, dz = F._fake_quantize_learnable_per_channel_affine_backward(dy, x, scale, zp, 1,
                                                                       -128, 127)
    t = A._fake_quantize_learnable_per_channel_affine_backward(T(dy), T(x), T(scale), T(zp), 1,
                                                               -128, 127, 1.0)
    assert_same(dx, t[0])
    np.testing.assert_allclose(ds, t[1].numpy(), rtol=2e-5, atol=1e-3)  # float32 sums in torch
    np.testing.assert_allclose(dz, t[2].numpy(), rtol=2e-5, atol=1e-3)


# ------------------------------------------------------------------------ errors

X = np.linspace(-1, 1, 12, dtype=F32).reshape(3, 4)
Z4, S4 = np.zeros(4, np.int32), np.full(4, 0.1, F32)

ERRORS = {
    "zero_point out of range": (
        lambda: F.fake_quantize_per_tensor_affine(X, 0.1, 300, 0, 255),
        lambda: torch.fake_quantize_per_tensor_affine(T(X), 0.1, 300, 0, 255)),
    "float zero_point per tensor": (
        lambda: F.fake_quantize_per_tensor_affine(X, 0.1, 1.5, 0, 255),
        lambda: torch.fake_quantize_per_tensor_affine(T(X), 0.1, 1.5, 0, 255)),
    "quant_min > quant_max": (
        lambda: F.fake_quantize_per_tensor_affine(X, 0.1, 7, 10, 5),
        lambda: torch.fake_quantize_per_tensor_affine(T(X), 0.1, 7, 10, 5)),
    "integer input": (
        lambda: F.fake_quantize_per_tensor_affine(X.astype(np.int32), 0.1, 0, 0, 255),
        lambda: torch.fake_quantize_per_tensor_affine(T(X.astype(np.int32)), 0.1, 0, 0, 255)),
    "channel zero_point out of range": (
        lambda: F.fake_quantize_per_channel_affine(X, S4, Z4 + 300, 1, 0, 255),
        lambda: torch.fake_quantize_per_channel_affine(T(X), T(S4), T(Z4 + 300), 1, 0, 255)),
    "scale length": (
        lambda: F.fake_quantize_per_channel_affine(X, S4[:3], Z4[:3], 1, 0, 255),
        lambda: torch.fake_quantize_per_channel_affine(T(X), T(S4[:3]), T(Z4[:3]), 1, 0, 255)),
    "axis out of range": (
        lambda: F.fake_quantize_per_channel_affine(X, S4, Z4, 2, 0, 255),
        lambda: torch.fake_quantize_per_channel_affine(T(X), T(S4), T(Z4), 2, 0, 255)),
    "learnable backward range without 0": (
        lambda: F._fake_quantize_learnable_per_tensor_affine_backward(X, X, 0.1, 2.0, 1, 255),
        lambda: A._fake_quantize_learnable_per_tensor_affine_backward(
            T(X), T(X), _qp(0.1), _qp(2.0), 1, 255, 1.0)),
    "learnable backward float64": (
        lambda: F._fake_quantize_learnable_per_tensor_affine_backward(X, X.astype(F64), 0.1,
                                                                      0.0, -8, 7),
        lambda: A._fake_quantize_learnable_per_tensor_affine_backward(
            T(X), T(X.astype(F64)), _qp(0.1), _qp(0.0), -8, 7, 1.0)),
    "learnable backward grad shape": (
        lambda: F._fake_quantize_learnable_per_channel_affine_backward(X[:2], X, S4, Z4, 1, -8, 7),
        lambda: A._fake_quantize_learnable_per_channel_affine_backward(
            T(X[:2]), T(X), T(S4), T(Z4.astype(F32)), 1, -8, 7, 1.0)),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_where_torch_raises(case):
    ours, theirs = ERRORS[case]
    with pytest.raises(Exception):
        theirs()
    with pytest.raises((ValueError, TypeError)):
        ours()
