"""The int8 GEMM kernels (numq.kernels.gemm) against slow NumPy references.

Every exactness test runs once per kernel variant the CPU supports (VNNI, AVX2,
generic Numba twin) under ``numq._isa.forced``; all must give the same bits.
"""
import tracemalloc

import numpy as np
import pytest

from numq import _isa
from numq.kernels import gemm

import reference_gemm as ref


@pytest.fixture(params=_isa.ISA_VARIANTS)
def variant(request):
    if request.param not in _isa.supported_variants():
        pytest.skip(f"{request.param} not supported on this CPU / process")
    with _isa.forced(request.param):
        yield request.param


# (M, K, N): tails in every dimension (M % 8, K % 4, N % 32), primes, tiny and wide
SHAPES = [(1, 1, 1), (1, 64, 70), (2, 3, 5), (7, 13, 31), (8, 4, 32), (9, 61, 33),
          (17, 64, 64), (33, 130, 97), (40, 128, 70), (70, 67, 65), (130, 257, 300),
          (96, 192, 64), (3, 1031, 41)]


def _weights(rng, n, k, kind):
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    if kind == "per_tensor_sym":
        return w, 0.0037, 0
    if kind == "per_tensor_affine":
        return w, 0.011, int(rng.integers(-128, 128))
    scales = rng.random(n) * 0.02 + 1e-3
    zps = np.zeros(n, np.int64) if kind == "per_channel_sym" else rng.integers(-128, 128, n)
    return w, scales, zps


KINDS = ["per_tensor_sym", "per_tensor_affine", "per_channel_sym", "per_channel_affine"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_int32_and_static_exact(variant, shape, kind):
    m, k, n = shape
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    w, ws, wz = _weights(rng, n, k, kind)
    p = gemm.pack_linear_weight(w, ws, wz)
    wzv = np.broadcast_to(np.asarray(wz), (n,))
    for x_zp in (0, 255, int(rng.integers(1, 255))):
        x = rng.integers(0, 256, (m, k), dtype=np.uint8)
        acc = ref.gemm_i32(x, x_zp, w, wzv)
        np.testing.assert_array_equal(gemm.qlinear_int32(x, x_zp, p), acc)
        bias = (rng.standard_normal(n) * 3).astype(np.float32)
        for b, relu, ozp in ((bias, False, 0), (None, True, 255), (bias, True, 37)):
            got = gemm.qlinear(x, 0.013, x_zp, p, b, 0.21, ozp, relu=relu)
            want = ref.requant(acc, 0.013, ws, kind.startswith("per_channel"), b, 0.21, ozp, relu)
            np.testing.assert_array_equal(got, want)


def _requant_saturating(acc, mult, bias_s, out_zp, relu):
    """The static rule with the saturation spelled out in float: ``rint(y) + zp``
    clamped to [lo, 255] where y is huge or infinite, and NaN giving lo."""
    F = np.float32
    y = (acc.astype(F) + bias_s) * mult
    lo = out_zp if relu else 0
    q = np.rint(y.astype(np.float64)) + out_zp
    q = np.where(np.isnan(q), lo, np.clip(q, lo, 255))
    return q.astype(np.uint8)


@pytest.mark.parametrize("shape", [(40, 96, 64), (17, 64, 70), (3, 128, 32)],
                         ids=lambda s: "x".join(map(str, s)))
def test_requantization_extremes_exact(variant, shape):
    """Outputs far past the uint8 range (|y| beyond int32), infinite and NaN biases and
    exact .5 ties requantize by the float rule in every kernel variant (the fused
    epilogue clamps before one round-to-nearest-even conversion)."""
    m, k, n = shape
    rng = np.random.default_rng(17)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    p = gemm.pack_linear_weight(w, np.full(n, 0.5), np.zeros(n, np.int64))
    x = rng.integers(0, 256, (m, k), dtype=np.uint8)
    acc = ref.gemm_i32(x, 7, w, np.zeros(n, np.int64))
    bias = (rng.standard_normal(n) * 1e3).astype(np.float32)
    bias[:6] = [np.inf, -np.inf, np.nan, 3e38, -3e38, 0.25]
    for out_scale, ozp, relu in ((1.0, 128, False), (1e-30, 3, False), (1e-30, 250, True),
                                 (0.25, 0, True), (4096.0, 255, False)):
        # x_scale * w_scale = 0.5: mult = 0.5 / out_scale, so odd accumulators tie at .5
        got = gemm.qlinear(x, 1.0, 7, p, bias, out_scale, ozp, relu=relu)
        atw = np.float32(1.0) * np.float32(0.5)
        mult = np.full(n, atw / np.float32(out_scale), np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            want = _requant_saturating(acc, mult, bias / atw, ozp, relu)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", ["per_tensor_sym", "per_channel_sym", "per_channel_affine"])
@pytest.mark.parametrize("shape", SHAPES[::2], ids=lambda s: "x".join(map(str, s)))
def test_dynamic_exact(variant, shape, kind):
    m, k, n = shape
    rng = np.random.default_rng(hash((shape, kind, "dyn")) % 2**32)
    w, ws, wz = _weights(rng, n, k, kind)
    p = gemm.pack_linear_weight(w, ws, wz)
    wzv = np.broadcast_to(np.asarray(wz), (n,))
    x = (rng.standard_normal((m, k)) * 2 + 0.5).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    for b, relu, rr in ((bias, False, True), (None, True, True), (bias, True, False)):
        got = gemm.qlinear_dynamic(x, p, b, relu=relu, reduce_range=rr)
        want = ref.dynamic(x, w, ws, wzv, b, relu, rr)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_dynamic_constant_and_zero_input(variant):
    # all-zero input: scale falls back to 0.1 (fbgemm), output is exactly the bias
    rng = np.random.default_rng(5)
    w, ws, wz = _weights(rng, 9, 20, "per_channel_sym")
    p = gemm.pack_linear_weight(w, ws, wz)
    b = rng.standard_normal(9).astype(np.float32)
    np.testing.assert_array_equal(gemm.qlinear_dynamic(np.zeros((3, 20), np.float32), p, b),
                                  np.broadcast_to(b, (3, 9)))
    x = np.full((2, 20), 3.25, np.float32)
    want = ref.dynamic(x, w, ws, wz, b, False)
    np.testing.assert_array_equal(gemm.qlinear_dynamic(x, p, b), want)


def test_k_65536_does_not_overflow(variant):
    # the largest raw sum: 255 * -128 * 65536 = -2_139_095_040 fits int32
    k = 65536
    x = np.full((2, k), 255, np.uint8)
    w = np.full((3, k), -128, np.int8)
    w[1] = 127
    p = gemm.pack_linear_weight(w, 0.01, 0)
    got = gemm.qlinear_int32(x, 0, p)
    np.testing.assert_array_equal(got, [[-255 * 128 * k, 255 * 127 * k, -255 * 128 * k]] * 2)
    # a corrected value beyond int32 wraps exactly as fbgemm's int32 arithmetic
    p = gemm.pack_linear_weight(w, 0.01, 127)
    np.testing.assert_array_equal(gemm.qlinear_int32(x, 0, p),
                                  ref.gemm_i32(x, 0, w, np.full(3, 127)))


def test_batch_dims_out_and_empty(variant):
    rng = np.random.default_rng(7)
    w, ws, wz = _weights(rng, 40, 24, "per_channel_sym")
    p = gemm.pack_linear_weight(w, ws, wz)
    x = rng.integers(0, 256, (2, 3, 24), dtype=np.uint8)
    got = gemm.qlinear(x, 0.1, 3, p, None, 0.5, 9)
    assert got.shape == (2, 3, 40)
    np.testing.assert_array_equal(got.reshape(6, 40), gemm.qlinear(x.reshape(6, 24), 0.1, 3, p,
                                                                    None, 0.5, 9))
    # out= may be a column slice of a wider buffer (rows strided); the rest is untouched
    big = np.full((6, 50), 7, np.uint8)
    res = gemm.qlinear(x.reshape(6, 24), 0.1, 3, p, None, 0.5, 9, out=big[:, 5:45])
    assert res.base is big or res.base is big.base
    np.testing.assert_array_equal(big[:, 5:45], got.reshape(6, 40))
    assert (big[:, :5] == 7).all() and (big[:, 45:] == 7).all()
    assert gemm.qlinear(np.zeros((0, 24), np.uint8), 0.1, 3, p, None, 0.5, 9).shape == (0, 40)
    assert gemm.qlinear_dynamic(np.zeros((0, 24), np.float32), p, None).shape == (0, 40)


def test_requantize_matches_qlinear_epilogue():
    rng = np.random.default_rng(11)
    acc = rng.integers(-2**20, 2**20, (13, 37)).astype(np.int32)
    ws = rng.random(37) * 0.01 + 1e-3
    b = rng.standard_normal(37).astype(np.float32)
    for per_channel, w_scales in ((True, ws), (False, np.full(37, 0.004))):
        got = gemm.requantize(acc, 0.03, w_scales, per_channel, b, 0.7, 100, relu=True)
        np.testing.assert_array_equal(
            got, ref.requant(acc, 0.03, w_scales, per_channel, b, 0.7, 100, True))


def test_pack_round_trip_and_size():
    rng = np.random.default_rng(3)
    for n, k in ((1, 1), (5, 1000), (33, 7), (64, 2048), (1000, 4)):
        w = rng.integers(-128, 128, (n, k), dtype=np.int8)
        p = gemm.pack_linear_weight(w, rng.random(n) + 0.1, rng.integers(-3, 3, n))
        np.testing.assert_array_equal(gemm.unpack_linear_weight(p), w)
        # int8 bytes, K padded to a multiple of 4 (<= 3 bytes per row), 2 KiB of slack
        assert p.data.nbytes <= w.nbytes + 3 * n + 2048
        assert p.nbytes - p.data.nbytes <= 32 * n   # O(N) per-column arrays


def test_no_per_call_allocation_proportional_to_weight():
    rng = np.random.default_rng(4)
    w = rng.integers(-128, 128, (1024, 2048), dtype=np.int8)    # 2 MiB of codes
    p = gemm.pack_linear_weight(w, 0.01, 0)
    x = rng.integers(0, 256, (1, 2048), dtype=np.uint8)
    out = np.empty((1, 1024), np.uint8)
    gemm.qlinear(x, 0.1, 0, p, None, 1.0, 0, out=out)       # compile / load first
    tracemalloc.start()
    gemm.qlinear(x, 0.1, 0, p, None, 1.0, 0, out=out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < w.nbytes // 50, peak


@pytest.mark.parametrize("call, exc, words", [
    (lambda p: gemm.pack_linear_weight(np.zeros((3, 4), np.uint8), 1.0, 0), TypeError, "int8"),
    (lambda p: gemm.pack_linear_weight(np.zeros(4, np.int8), 1.0, 0), TypeError, "(N, K)"),
    (lambda p: gemm.pack_linear_weight(np.zeros((3, 0), np.int8), 1.0, 0), ValueError, "K"),
    (lambda p: gemm.pack_linear_weight(np.zeros((3, 4), np.int8), 0.0, 0), ValueError, "scales"),
    (lambda p: gemm.pack_linear_weight(np.zeros((3, 4), np.int8), [1.0] * 2, [0] * 2),
     ValueError, "shape"),
    (lambda p: gemm.pack_linear_weight(np.zeros((3, 4), np.int8), 1.0, 200), ValueError,
     "zero_points"),
    (lambda p: gemm.qlinear(np.zeros((2, 5), np.uint8), 1.0, 0, p, None, 1.0, 0), ValueError,
     "K=4"),
    (lambda p: gemm.qlinear(np.zeros((2, 4), np.int8), 1.0, 0, p, None, 1.0, 0), TypeError,
     "uint8"),
    (lambda p: gemm.qlinear(np.zeros((2, 4), np.uint8), 1.0, 0, p, np.zeros(2), 1.0, 0),
     ValueError, "bias"),
    (lambda p: gemm.qlinear(np.zeros((2, 4), np.uint8), 1.0, 0, "w", None, 1.0, 0), TypeError,
     "PackedLinearWeight"),
    (lambda p: gemm.qlinear(np.zeros((2, 4), np.uint8), 1.0, 0, p, None, 1.0, 0,
                            out=np.zeros((3, 3), np.uint8)), ValueError, "out"),
    (lambda p: gemm.qlinear(np.zeros((2, 4), np.uint8), 1.0, 0, p, None, 1.0, 0,
                            out=np.zeros((3, 2), np.uint8).T), ValueError, "unit column"),
    (lambda p: gemm.qlinear_dynamic(np.zeros((2, 4), np.float64), p, None), TypeError, "float32"),
    (lambda p: gemm.qlinear_dynamic(np.array([[np.inf, 0, 0, 0]], np.float32), p, None),
     ValueError, "finite"),
])
def test_bad_input(call, exc, words):
    p = gemm.pack_linear_weight(np.ones((3, 4), np.int8), 1.0, 0)
    with pytest.raises(exc, match=None) as info:
        call(p)
    assert words in str(info.value)


@pytest.mark.parametrize("offset", [0, 1, 16, 48])
def test_unaligned_activations_give_the_same_bits(variant, offset):
    """AMX reads 64-byte aligned tiles: an activation buffer starting anywhere is copied
    (re-aligned) first; every start gives the reference's bits."""
    rng = np.random.default_rng(offset)
    m, k, n = 40, 128, 70
    x = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    raw = np.zeros(m * k + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    xs = raw[start:start + m * k].reshape(m, k)
    xs[:] = x
    ws = np.full(n, 0.01)
    p = gemm.pack_linear_weight(w, ws, np.zeros(n, np.int64))
    want = ref.requant(ref.gemm_i32(x, 7, w, np.zeros(n, np.int64)), 0.02, ws, True, None,
                       0.3, 5, False)
    np.testing.assert_array_equal(gemm.qlinear(xs, 0.02, 7, p, None, 0.3, 5), want)


def test_large_outputs_and_packed_weights_are_aligned_and_own_their_storage():
    """Large outputs start on a cache line (the next layer's tile loads read them in
    place) and are root arrays of exactly their size (QTensor storage semantics)."""
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (512, 64), dtype=np.int8)
    p = gemm.pack_linear_weight(w, np.full(512, 0.01), np.zeros(512, np.int64))
    assert p.data.ctypes.data % 64 == 0
    y = gemm.qlinear(rng.integers(0, 256, (256, 64), dtype=np.uint8), 0.02, 7, p, None, 0.3,
                     5)
    assert y.ctypes.data % 64 == 0
    root = y
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert root.nbytes == y.nbytes
