"""Pooling and resizing layers without torch: references, finite differences, modes,
the shared-layer ``_saved`` swap and bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numq
import numq.layers as L
import numq.layers.functional as F
import reference_pooling_upsample as ref


def _rng(seed=0):
    return np.random.default_rng(seed)


def _distinct(shape, seed=0):
    """Float64 values >= 0.05 apart (a shuffled grid): max pooling's argmax is stable
    under finite-difference steps."""
    n = int(np.prod(shape))
    return (_rng(seed).permutation(n) * 0.05 - n * 0.025).reshape(shape)


def _numgrad(f, x, g, eps=1e-6):
    """Central-difference gradient of ``sum(g * f(x))`` with respect to ``x``."""
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = np.sum(g * f(x))
        flat[i] = keep - eps
        down = np.sum(g * f(x))
        flat[i] = keep
        gflat[i] = (up - down) / (2 * eps)
    return grad


def _check_layer_grad(layer, x, rtol=1e-6, atol=1e-8):
    layer.train()
    y = layer(x)
    y = y[0] if isinstance(y, tuple) else y
    g = _rng(1).standard_normal(y.shape)
    gin = layer.backward(g)
    assert gin.shape == x.shape and gin.dtype == np.float64

    def f(v):
        out = layer(v)
        layer._saved = None
        return out[0] if isinstance(out, tuple) else out

    np.testing.assert_allclose(gin, _numgrad(f, x.copy(), g), rtol=rtol, atol=atol)


# ------------------------------------------------------------------- references

MAX_CASES = [  # (nd, kernel, stride, padding, dilation, ceil_mode)
    (1, (3,), (2,), (1,), (1,), False),
    (1, (2,), (3,), (1,), (2,), True),
    (2, (2, 2), (2, 2), (0, 0), (1, 1), False),
    (2, (3, 2), (2, 1), (1, 1), (1, 2), True),
    (3, (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), True),
]


@pytest.mark.parametrize("nd,k,s,p,d,ceil", MAX_CASES)
def test_max_pool_matches_reference(nd, k, s, p, d, ceil):
    x = _distinct((2, 3) + (7, 6, 5)[:nd])
    x.reshape(-1)[::4] = 1.0  # ties: the first maximum wins
    y, ind = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    ry, rind = ref.max_pool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(ind, rind)
    assert ind.dtype == np.int64


AVG_CASES = [  # (nd, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    (1, (3,), (2,), (1,), True, True, None),
    (1, (4,), (3,), (2,), True, False, None),
    (2, (3, 3), (2, 2), (1, 1), True, True, None),
    (2, (3, 2), (2, 3), (1, 0), True, False, None),
    (2, (2, 2), (1, 1), (1, 1), False, True, 3),
    (3, (3, 2, 2), (2, 2, 1), (1, 1, 0), True, False, None),
]


@pytest.mark.parametrize("nd,k,s,p,ceil,cip,div", AVG_CASES)
def test_avg_pool_matches_reference(nd, k, s, p, ceil, cip, div):
    x = _rng().standard_normal((2, 3) + (7, 6, 5)[:nd])
    kw = {} if nd == 1 else {"divisor_override": div}
    y = getattr(F, f"avg_pool{nd}d")(x, k, s, p, ceil, cip, **kw)
    np.testing.assert_allclose(y, ref.avg_pool(x, k, s, p, ceil, cip, div), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("nd,out", [(1, (4,)), (1, (9,)), (2, (3, 5)), (2, (1, 1)),
                                    (3, (2, 4, 3))])
def test_adaptive_avg_pool_matches_reference(nd, out):
    x = _rng().standard_normal((2, 3) + (7, 6, 5)[:nd])
    y = getattr(F, f"adaptive_avg_pool{nd}d")(x, out)
    np.testing.assert_allclose(y, ref.adaptive_avg_pool(x, out), rtol=1e-12, atol=1e-14)


def test_adaptive_output_size_none_and_int():
    x = _rng().standard_normal((2, 3, 7, 6))
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, (None, 4)),
                                  F.adaptive_avg_pool2d(x, (7, 4)))
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(x, 3), F.adaptive_avg_pool2d(x, (3, 3)))
    assert F.adaptive_avg_pool3d(_rng().standard_normal((1, 2, 3, 4, 5)), (None, 2, None)).shape \
        == (1, 2, 3, 2, 5)


@pytest.mark.parametrize("shape,out", [((2, 3, 5), (11,)), ((1, 2, 4, 5), (8, 3)),
                                       ((1, 2, 3, 4, 2), (5, 4, 7))])
def test_nearest_matches_reference(shape, out):
    x = _rng().standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(F.interpolate(x, size=out), ref.nearest(x, out))


def test_nearest_scale_factor_rule():
    # a given scale factor is used as 1/scale (not in/out) for the source index
    x = _rng().standard_normal((1, 1, 5)).astype(np.float32)
    y = F.interpolate(x, scale_factor=1.7)
    np.testing.assert_array_equal(y, ref.nearest(x, (8,), scale_factors=(1.7,)))
    y2 = F.interpolate(x, scale_factor=1.7, recompute_scale_factor=True)
    np.testing.assert_array_equal(y2, ref.nearest(x, (8,)))


@pytest.mark.parametrize("out", [(9, 7), (3, 2), (1, 1), (5, 5)])
@pytest.mark.parametrize("align", [False, True])
def test_bilinear_matches_reference(out, align):
    x = _rng().standard_normal((2, 3, 5, 4))
    y = F.interpolate(x, size=out, mode="bilinear", align_corners=align)
    np.testing.assert_allclose(y, ref.bilinear(x, out, align), rtol=1e-12, atol=1e-12)


def test_bilinear_constant_and_identity():
    x = np.full((1, 2, 3, 4), 2.5, dtype=np.float32)
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=2.6, mode="bilinear"),
                                  np.full((1, 2, 7, 10), 2.5, np.float32))
    z = _rng().standard_normal((1, 2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(F.interpolate(z, size=(3, 4), mode="bilinear"), z)


def test_linear_modes_agree_with_bilinear():
    x = _rng().standard_normal((2, 3, 6))
    y1 = F.interpolate(x, size=10, mode="linear")
    y2 = F.interpolate(x[:, :, None, :], size=(1, 10), mode="bilinear")[:, :, 0]
    np.testing.assert_allclose(y1, y2, rtol=1e-14)
    x3 = _rng().standard_normal((1, 2, 3, 4, 5))
    y3 = F.interpolate(x3, size=(1, 6, 7), mode="trilinear", align_corners=True)
    assert y3.shape == (1, 2, 1, 6, 7)
    a = F.interpolate(x3, scale_factor=(1, 2, 2), mode="trilinear")
    b = np.stack([F.interpolate(x3[:, :, i], scale_factor=2, mode="bilinear")
                  for i in range(3)], axis=2)
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_area_is_adaptive_avg_pool():
    x = _rng().standard_normal((1, 2, 7, 9))
    np.testing.assert_array_equal(F.interpolate(x, size=(3, 4), mode="area"),
                                  F.adaptive_avg_pool2d(x, (3, 4)))
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=0.5, mode="area"),
                                  F.adaptive_avg_pool2d(x, (3, 4)))


# --------------------------------------------------------------- finite differences

GRAD_LAYERS = [
    lambda: L.MaxPool1d(3, 2, 1),
    lambda: L.MaxPool2d((3, 2), (2, 1), (1, 1), dilation=(1, 2), ceil_mode=True),
    lambda: L.MaxPool3d(2, 1, 1),
    lambda: L.MaxPool2d(2, return_indices=True),
    lambda: L.AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda: L.AvgPool2d(3, 2, 1, ceil_mode=True),
    lambda: L.AvgPool2d(2, 1, divisor_override=3),
    lambda: L.AvgPool3d((2, 3, 2), (1, 2, 1), (1, 1, 0), count_include_pad=False),
    lambda: L.AdaptiveAvgPool1d(4),
    lambda: L.AdaptiveAvgPool2d((3, None)),
    lambda: L.AdaptiveAvgPool2d(1),
    lambda: L.AdaptiveAvgPool3d((2, 3, 4)),
    lambda: L.Upsample(scale_factor=2.5),
    lambda: L.Upsample(size=(7, 3)),
    lambda: L.Upsample(size=(3, 4, 2), mode="nearest-exact"),
    lambda: L.Upsample(scale_factor=1.6, mode="linear"),
    lambda: L.Upsample(size=(7, 3), mode="bilinear"),
    lambda: L.Upsample(scale_factor=(1.5, 0.7), mode="bilinear", align_corners=True),
    lambda: L.Upsample(size=(3, 5, 4), mode="trilinear"),
    lambda: L.Upsample(scale_factor=0.6, mode="area"),
]
_SPATIAL = {"1d": (6,), "2d": (5, 4), "3d": (3, 4, 3)}


def _shape_for(layer):
    name = type(layer).__name__
    if isinstance(layer, L.Upsample):
        nd = {"linear": 1, "trilinear": 3}.get(layer.mode)
        if nd is None:
            sz = layer.size if layer.size is not None else layer.scale_factor
            nd = len(sz) if isinstance(sz, tuple) else 2
        return (2, 2) + _SPATIAL[f"{nd}d"]
    return (2, 2) + _SPATIAL[name[-2:]]


@pytest.mark.parametrize("make", GRAD_LAYERS, ids=lambda m: repr(m()))
def test_backward_matches_finite_differences(make):
    layer = make()
    _check_layer_grad(layer, _distinct(_shape_for(layer)))


def test_max_pool_overlapping_windows_sum_gradients():
    x = np.array([[[0.0, 5.0, 1.0, 0.5]]])
    layer = L.MaxPool1d(3, 1, 1)
    y = layer(x)
    np.testing.assert_array_equal(y, [[[5.0, 5.0, 5.0, 1.0]]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), [[[0, 3, 1, 0]]])


def test_nearest_backward_sums_repeats():
    g = F.interpolate_backward(np.ones((1, 1, 4, 6)), (1, 1, 2, 3), scale_factor=2)
    np.testing.assert_array_equal(g, np.full((1, 1, 2, 3), 4.0))
    g = F.interpolate_backward(np.ones((1, 1, 7)), (1, 1, 3), size=7)
    assert g.sum() == 7 and g.dtype == np.float64


# ------------------------------------------------------------------- special values

def test_max_pool_nan_inf_and_empty_windows():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0]]], dtype=np.float32)
    y, i = F.max_pool1d(x, 5, return_indices=True)
    assert np.isnan(y[0, 0, 0]) and i[0, 0, 0] == 3  # NaN propagates; the last NaN wins
    z = np.full((1, 1, 4), -np.inf, dtype=np.float32)
    y, i = F.max_pool1d(z, 2, 1, 1, return_indices=True)
    np.testing.assert_array_equal(y, np.full((1, 1, 5), -np.inf))
    np.testing.assert_array_equal(i, [[[0, 0, 1, 2, 3]]])
    # dilation can leave a window with no input position: -inf, gradient dropped
    e = np.array([[[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)
    y, i = F.max_pool1d(e, 2, 1, 1, 3, return_indices=True)
    np.testing.assert_array_equal(y, np.full((1, 2, 1), -np.inf))
    g = F.max_pool1d_backward(np.ones_like(y), i, e.shape)
    np.testing.assert_array_equal(g, np.zeros_like(e))


def test_avg_pool_signed_zero():
    x = np.full((1, 1, 4), -0.0, dtype=np.float32)
    assert not np.signbit(F.avg_pool1d(x, 2)).any()  # ATen adds the mean to 0.0


# ----------------------------------------------------------------- shapes and modes

def test_unbatched_input_and_dtypes():
    x = _rng().standard_normal((3, 8, 6)).astype(np.float32)
    for f in (lambda v: F.max_pool2d(v, 2, return_indices=True)[1],
              lambda v: F.avg_pool2d(v, 3, 2, 1, ceil_mode=True),
              lambda v: F.adaptive_avg_pool2d(v, (3, 5))):
        np.testing.assert_array_equal(f(x), f(x[None])[0])
    assert F.max_pool2d(x.astype(np.float64), 2).dtype == np.float64
    assert F.avg_pool2d(x.astype(np.float16), 2).dtype == np.float32
    assert F.interpolate(x[None].astype(np.float64), scale_factor=2,
                         mode="bilinear").dtype == np.float64
    # non-contiguous and big-endian input
    xs = np.asfortranarray(x)[None]
    np.testing.assert_array_equal(F.max_pool2d(xs, 2), F.max_pool2d(x[None], 2))
    np.testing.assert_array_equal(F.avg_pool2d(x[None].astype(">f4"), 2),
                                  F.avg_pool2d(x[None], 2))


@pytest.mark.parametrize("L_,k,s,p,d,ceil,expect", [
    (7, 2, 2, 0, 1, False, 3), (7, 2, 2, 0, 1, True, 4), (6, 3, 2, 1, 1, True, 4),
    (5, 2, 2, 1, 1, True, 3), (10, 3, 1, 0, 3, False, 4), (4, 3, 3, 1, 1, True, 2),
])
def test_output_length(L_, k, s, p, d, ceil, expect):
    x = np.zeros((1, 1, L_), np.float32)
    assert F.max_pool1d(x, k, s, p, d, ceil).shape[-1] == expect
    assert ref.out_len(L_, k, s, p, d, ceil) == expect


def test_empty_batch():
    x = np.zeros((0, 3, 6, 6), np.float32)
    assert F.max_pool2d(x, 2).shape == (0, 3, 3, 3)
    assert F.avg_pool2d(x, 2).shape == (0, 3, 3, 3)
    assert F.interpolate(x, scale_factor=2, mode="bilinear").shape == (0, 3, 12, 12)


def test_parallel_path_equals_serial_planes():
    # large inputs take the prange drivers; single planes take the serial ones
    rng = _rng(3)
    x = rng.standard_normal((2, 3, 96, 100)).astype(np.float32)
    ops = [
        (lambda v: F.max_pool2d(v, 3, 2, 1, return_indices=True)[1],
         lambda g, v: F.max_pool2d_backward(g, *F.max_pool2d(v, 3, 2, 1,
                                                            return_indices=True)[1:],
                                            v.shape)),
        (lambda v: F.avg_pool2d(v, 3, 2, 1),
         lambda g, v: F.avg_pool2d_backward(g, v.shape, 3, 2, 1)),
        (lambda v: F.interpolate(v, scale_factor=1.5),
         lambda g, v: F.interpolate_backward(g, v.shape, scale_factor=1.5)),
        (lambda v: F.interpolate(v, scale_factor=1.5, mode="bilinear"),
         lambda g, v: F.interpolate_backward(g, v.shape, scale_factor=1.5,
                                             mode="bilinear")),
    ]
    for fwd, bwd in ops:
        y = fwd(x)
        g = rng.standard_normal(y.shape).astype(np.float32)
        gx = bwd(g, x)
        for n in range(2):
            for c in range(3):
                np.testing.assert_array_equal(y[n, c], fwd(x[n:n + 1, c:c + 1])[0, 0])
                np.testing.assert_array_equal(
                    gx[n, c], bwd(g[n:n + 1, c:c + 1], x[n:n + 1, c:c + 1])[0, 0])


# ------------------------------------------------------------------- layer behaviour

def test_train_eval_and_saved_state():
    x = _rng().standard_normal((1, 2, 6, 6)).astype(np.float32)
    for layer in (L.MaxPool2d(2), L.AvgPool2d(2), L.AdaptiveAvgPool2d(2),
                  L.Upsample(scale_factor=2, mode="bilinear")):
        layer.eval()
        layer(x)
        assert layer._saved is None
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            layer.backward(np.ones((1, 2, 3, 3), np.float32))
        layer.train()
        y = layer(x)
        assert layer._saved is not None
        layer.backward(np.ones_like(y))
        with pytest.raises(RuntimeError, match="called twice"):
            layer.backward(np.ones_like(y))


def test_return_indices_layer():
    x = _rng().standard_normal((1, 2, 6, 6)).astype(np.float32)
    layer = L.MaxPool2d(2, return_indices=True)
    y, ind = layer(x)
    np.testing.assert_array_equal(ind, F.max_pool2d(x, 2, return_indices=True)[1])
    gin = layer.backward(np.ones_like(y))
    assert gin.sum() == y.size and gin.dtype == np.float32
    layer.eval()
    assert isinstance(layer(x), tuple)


@pytest.mark.parametrize("make", [lambda: L.MaxPool2d(3, 1, 1), lambda: L.AvgPool2d(3, 1, 1),
                                  lambda: L.Upsample(size=(5, 6), mode="bilinear")])
def test_shared_layer_saved_swap(make):
    # one layer called on two inputs; swapping _saved gives each call's own gradient
    shared, a, b = make(), make(), make()
    x1, x2 = _distinct((1, 2, 5, 6), 1), _distinct((1, 2, 5, 6), 2)
    y1 = shared(x1)
    s1 = shared._saved
    y2 = shared(x2)
    s2 = shared._saved
    g1, g2 = np.cos(y1), np.sin(y2)
    shared._saved = s2
    gx2 = shared.backward(g2)
    shared._saved = s1
    gx1 = shared.backward(g1)
    np.testing.assert_array_equal(y1, a(x1))
    np.testing.assert_array_equal(gx1, a.backward(g1))
    np.testing.assert_array_equal(y2, b(x2))
    np.testing.assert_array_equal(gx2, b.backward(g2))


def test_sequential_chain_backward():
    model = L.Sequential(L.MaxPool2d(2), L.Upsample(scale_factor=2), L.AvgPool2d(3, 1, 1),
                         L.AdaptiveAvgPool2d((2, 3)))
    x = _distinct((1, 2, 6, 8))
    y = model(x)
    g = _rng(2).standard_normal(y.shape)
    gin = model.backward(g)
    np.testing.assert_allclose(gin, _numgrad(model, x.copy(), g), rtol=1e-6, atol=1e-9)


def test_reprs_follow_torch():
    assert repr(L.MaxPool2d(2)) == ("MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
                                    "ceil_mode=False)")
    assert repr(L.MaxPool1d(3, padding=1)) == ("MaxPool1d(kernel_size=3, stride=3, padding=1, "
                                               "dilation=1, ceil_mode=False)")
    assert repr(L.AvgPool1d(3)) == "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"
    assert repr(L.AvgPool2d(3)) == "AvgPool2d(kernel_size=3, stride=3, padding=0)"
    assert repr(L.AdaptiveAvgPool2d((None, 3))) == "AdaptiveAvgPool2d(output_size=(None, 3))"
    assert repr(L.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(L.Upsample(size=3, mode="bilinear")) == "Upsample(size=3, mode='bilinear')"
    assert repr(L.UpsamplingBilinear2d(scale_factor=2)) == \
        "UpsamplingBilinear2d(scale_factor=2.0, mode='bilinear')"
    assert L.UpsamplingBilinear2d(scale_factor=2).align_corners is True
    assert L.Upsample(scale_factor=(2, 3)).scale_factor == (2.0, 3.0)
    assert L.MaxPool2d(2).state_dict() == {}


def test_public_names():
    for name in ("max_pool1d", "max_pool3d_with_indices", "avg_pool2d_backward",
                 "adaptive_avg_pool3d_backward", "interpolate", "interpolate_backward",
                 "upsample", "upsample_backward", "upsample_nearest", "upsample_bilinear"):
        assert name in F.__all__ and callable(getattr(F, name))
    for name in ("MaxPool3d", "AvgPool1d", "AdaptiveAvgPool3d", "Upsample",
                 "UpsamplingNearest2d"):
        assert name in L.__all__
    x = _rng().standard_normal((1, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(F.upsample_bilinear(x, scale_factor=2),
                                  F.interpolate(x, scale_factor=2, mode="bilinear",
                                                align_corners=True))
    np.testing.assert_array_equal(F.upsample(x, size=5), F.upsample_nearest(x, size=5))


# ------------------------------------------------------------------------ bad input

X4 = np.zeros((1, 2, 6, 6), np.float32)


def test_bad_dtype():
    with pytest.raises(TypeError, match="input must be a float"):
        F.max_pool2d(X4.astype(np.int32), 2)
    with pytest.raises(TypeError, match="input must be a float"):
        L.Upsample(scale_factor=2)(X4.astype(bool))
    with pytest.raises(TypeError, match="grad_output must be a float"):
        F.avg_pool2d_backward(np.zeros((1, 2, 3, 3), np.int64), X4.shape, 2)


def test_bad_rank():
    with pytest.raises(ValueError, match=r"max_pool2d: input must be 3-d .* or 4-d"):
        F.max_pool2d(np.zeros((6, 6), np.float32), 2)
    with pytest.raises(ValueError, match="avg_pool1d: input must be 2-d"):
        L.AvgPool1d(2)(X4)
    with pytest.raises(ValueError, match="adaptive_avg_pool3d: input must be 4-d"):
        F.adaptive_avg_pool3d(np.zeros((2, 3, 4, 5, 6, 7), np.float32), 2)
    with pytest.raises(ValueError, match="interpolate: input must be 3-d, 4-d or 5-d"):
        F.interpolate(np.zeros((2, 3), np.float32), size=2)
    with pytest.raises(ValueError, match="'bilinear' needs a 4-d input"):
        F.interpolate(np.zeros((1, 2, 3), np.float32), size=2, mode="bilinear")
    with pytest.raises(ValueError, match="non-zero spatial sizes"):
        F.max_pool2d(np.zeros((1, 2, 0, 4), np.float32), 2)


def test_bad_kernel_stride_padding_dilation():
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        F.max_pool2d(X4, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.avg_pool2d(X4, 2, (1, 0))
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        F.max_pool1d(X4[0], 2, dilation=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        F.avg_pool1d(X4[0], 3, padding=-1)
    with pytest.raises(ValueError, match="padding must be at most half of kernel_size"):
        F.max_pool2d(X4, 2, padding=2)
    with pytest.raises(ValueError, match="kernel_size must be a single int or a tuple of 2"):
        L.MaxPool2d((2, 2, 2))(X4)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of ints"):
        F.max_pool2d(X4, 2.0)
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        F.avg_pool2d(X4, 2, ceil_mode="yes")
    with pytest.raises(ValueError, match="the output would be empty"):
        F.max_pool2d(X4, 7)


def test_bad_divisor_and_output_size():
    with pytest.raises(ValueError, match="divisor_override must not be zero"):
        F.avg_pool2d(X4, 2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override must be an int"):
        L.AvgPool3d(2, divisor_override=1.5)(np.zeros((1, 1, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="output_size must be >= 0"):
        F.adaptive_avg_pool2d(X4, (-1, 2))
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 2"):
        L.AdaptiveAvgPool2d((1, 2, 3))(X4)
    with pytest.raises(TypeError, match="output_size entries must be ints or None"):
        F.adaptive_avg_pool1d(X4[0], (1.5,))


def test_bad_interpolate_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(X4, size=3, mode="cubic")
    with pytest.raises(ValueError, match="'bicubic' is not supported"):
        F.interpolate(X4, size=3, mode="bicubic")
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(X4, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        L.Upsample()(X4)
    with pytest.raises(ValueError, match="align_corners can only be set"):
        F.interpolate(X4, size=3, align_corners=True)
    with pytest.raises(ValueError, match="size must be an int or a tuple of 2"):
        F.interpolate(X4, size=(3, 3, 3))
    with pytest.raises(TypeError, match="size must be an int or a tuple of ints"):
        F.interpolate(X4, size=3.0)
    with pytest.raises(ValueError, match="scale_factor must be finite and > 0"):
        F.interpolate(X4, scale_factor=-2.0)
    with pytest.raises(ValueError, match="output sizes must be > 0"):
        F.interpolate(X4, scale_factor=0.1)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(X4, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="antialias"):
        F.interpolate(X4, size=3, mode="bilinear", antialias=True)


def test_bad_backward_arguments():
    with pytest.raises(ValueError, match="grad_output must have the forward output's shape"):
        F.avg_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), X4.shape, 2)
    with pytest.raises(ValueError, match="grad_output must have the forward output's shape"):
        F.interpolate_backward(np.zeros((1, 2, 5, 5), np.float32), X4.shape, scale_factor=2)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        F.max_pool2d_backward(np.zeros((1, 2, 3, 3), np.float32),
                              np.zeros((1, 2, 3, 3), np.float32), X4.shape)
    with pytest.raises(ValueError, match="input_shape must be a 4-d or 5-d shape"):
        F.max_pool3d_backward(np.zeros((1, 2, 3, 3), np.float32),
                              np.zeros((1, 2, 3, 3), np.int64), (2, 6, 6))
    layer = L.Upsample(scale_factor=2)
    layer(X4)
    with pytest.raises(ValueError, match="Upsample.backward: grad_output must have"):
        layer.backward(np.zeros((1, 2, 6, 6), np.float32))


def test_import_compiles_nothing():
    # the kernels compile lazily: importing numq leaves every pooling dispatcher empty
    import subprocess
    import sys
    code = ("import numq, numq.layers; from numq.kernels import pool_float, resize_float\n"
            "mods = (pool_float, resize_float)\n"
            "n = sum(len(getattr(m, a).signatures) for m in mods for a in dir(m)\n"
            "        if hasattr(getattr(m, a), 'signatures'))\n"
            "print(n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0"
    assert numq.layers.MaxPool2d is L.MaxPool2d


# ------------------------------------------------------------------ property tests


@st.composite
def _pool_geometry(draw):
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    ceil = draw(st.booleans())
    sp = tuple(draw(st.integers((ki - 1) * di + 1, 7)) for ki, di in zip(k, d))
    return nd, sp, k, s, p, d, ceil


@settings(max_examples=40)
@given(_pool_geometry(), st.booleans(), st.integers(0, 2**16))
def test_pooling_property_matches_reference(geom, cip, seed):
    nd, sp, k, s, p, d, ceil = geom
    x = _distinct((1, 2) + sp, seed)
    y, ind = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    ry, rind = ref.max_pool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(ind, rind)
    ya = getattr(F, f"avg_pool{nd}d")(x, k, s, p, ceil, cip)
    np.testing.assert_allclose(ya, ref.avg_pool(x, k, s, p, ceil, cip), rtol=1e-12,
                               atol=1e-12)
