"""Pooling and resizing against torch 2.13: forward values (max pooling and nearest
resizing bit for bit), argmax indices, and input gradients against autograd.

Tolerances: average / adaptive / linear forwards use rtol=1e-5 and gradients rtol=1e-4
(float32): numq sums in ATen's order where it can, but torch's mean and its FMA-contracted
interpolation round differently, so float sums may differ in the last bits.
"""
import itertools

import numpy as np
import pytest

import numq.layers as L
import numq.layers.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(shape, seed=0, dtype=np.float32, ties=True):
    x = _rng(seed).standard_normal(shape).astype(dtype)
    if ties:
        x.reshape(-1)[::5] = 0.5  # repeated values: argmax ties
    return x


def _torch_fwd_bwd(fn, x, g_seed=1):
    """torch forward and input gradient of ``sum(g * fn(x))``."""
    xt = torch.from_numpy(x.copy()).requires_grad_()
    out = fn(xt)
    y = out[0] if isinstance(out, tuple) else out
    g = _rng(g_seed).standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(torch.from_numpy(g))
    rest = tuple(o.numpy() for o in out[1:]) if isinstance(out, tuple) else ()
    return (y.detach().numpy(),) + rest, g, xt.grad.numpy()


def _check_layer(layer, tlayer, x, exact, rtol_f=1e-5, rtol_b=1e-4, atol=1e-6):
    outs, g, tgrad = _torch_fwd_bwd(tlayer, x)
    layer.train()
    y = layer(x)
    y = y if isinstance(y, tuple) else (y,)
    for a, b in zip(y, outs):
        assert a.shape == b.shape and a.dtype == b.dtype
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol_f, atol=atol)
    np.testing.assert_allclose(layer.backward(g), tgrad, rtol=rtol_b, atol=atol)


# --------------------------------------------------------------------- max pooling

def _max_cases():
    out = []
    for nd in (1, 2, 3):
        for k, s, p, d, ceil in itertools.product((2, 3), (None, 1, 2), (0, 1), (1, 2),
                                                  (False, True)):
            out.append((nd, k, s, p, d, ceil))
    out += [(2, (3, 2), (2, 1), (1, 0), (2, 1), True), (3, (1, 2, 3), (1, 2, 2), (0, 1, 1),
                                                         (1, 1, 2), False)]
    return out


@pytest.mark.parametrize("nd,k,s,p,d,ceil", _max_cases())
def test_max_pool(nd, k, s, p, d, ceil):
    x = _x((2, 3) + (9, 8, 7)[:nd])
    layer = getattr(L, f"MaxPool{nd}d")(k, s, p, d, return_indices=True, ceil_mode=ceil)
    tlayer = getattr(torch.nn, f"MaxPool{nd}d")(k, s, p, d, return_indices=True,
                                                ceil_mode=ceil)
    # values and indices bit for bit; gradients are routed copies, so exact too
    _check_layer(layer, tlayer, x, exact=True, rtol_b=0, atol=0)


def test_max_pool_special_values_and_unbatched():
    x = _x((3, 10, 9))
    x[0, 1, 1] = np.nan
    x[1, :4, :4] = -np.inf
    x[2, 5:, 5:] = np.inf
    for f, tf in ((lambda v: F.max_pool2d(v, 3, 2, 1, return_indices=True),
                   lambda v: TF.max_pool2d(v, 3, 2, 1, return_indices=True)),
                  (lambda v: F.max_pool1d(v, 4, 1, 2, 2, True, True),
                   lambda v: TF.max_pool1d(v, 4, 1, 2, 2, True, True))):
        for a, b in zip(f(x), tf(torch.from_numpy(x))):
            np.testing.assert_array_equal(a, b.numpy())
    # a dilated window with no input position: -inf and torch's index
    e = _x((1, 2, 2))
    for a, b in zip(F.max_pool1d(e, 2, 1, 1, 3, return_indices=True),
                    TF.max_pool1d(torch.from_numpy(e), 2, 1, 1, 3, return_indices=True)):
        np.testing.assert_array_equal(a, b.numpy())


def test_float64_layers():
    x = _x((2, 2, 7, 6), dtype=np.float64)
    _check_layer(L.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1), x, exact=True)
    for layer, tlayer in ((L.AvgPool2d(3, 2, 1, ceil_mode=True),
                           torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True)),
                          (L.AdaptiveAvgPool2d((4, 5)), torch.nn.AdaptiveAvgPool2d((4, 5))),
                          (L.Upsample(scale_factor=1.7, mode="bilinear"),
                           torch.nn.Upsample(scale_factor=1.7, mode="bilinear"))):
        _check_layer(layer, tlayer, x, exact=False, rtol_f=1e-12, rtol_b=1e-12, atol=1e-12)


# ----------------------------------------------------------------- average pooling

def _avg_cases():
    out = []
    for nd in (1, 2, 3):
        for k, s, p, ceil, cip in itertools.product((2, 3), (None, 2), (0, 1), (False, True),
                                                    (False, True)):
            if p <= k // 2:
                out.append((nd, k, s, p, ceil, cip, None))
        if nd > 1:
            out += [(nd, 3, 2, 1, True, True, 2), (nd, 2, 1, 1, False, False, -3)]
    out += [(2, (3, 2), (2, 3), (1, 1), True, False, None),
            (3, (2, 3, 1), (1, 2, 1), (1, 1, 0), True, True, None)]
    return out


@pytest.mark.parametrize("nd,k,s,p,ceil,cip,div", _avg_cases())
def test_avg_pool(nd, k, s, p, ceil, cip, div):
    x = _x((2, 3) + (9, 8, 7)[:nd])
    kw = {} if nd == 1 else {"divisor_override": div}
    layer = getattr(L, f"AvgPool{nd}d")(k, s, p, ceil, cip, **kw)
    tlayer = getattr(torch.nn, f"AvgPool{nd}d")(k, s, p, ceil, cip, **kw)
    _check_layer(layer, tlayer, x, exact=False)


@pytest.mark.parametrize("nd,out", [(1, 4), (1, 13), (1, (None,)), (2, (3, 5)), (2, 1),
                                    (2, (None, 2)), (2, (11, 4)), (3, (2, 3, 4)),
                                    (3, (None, 1, 5)), (3, 1)])
def test_adaptive_avg_pool(nd, out):
    x = _x((2, 3) + (9, 8, 7)[:nd])
    tout = out if nd > 1 or out != (None,) else 9  # torch's 1-d form takes no None
    _check_layer(getattr(L, f"AdaptiveAvgPool{nd}d")(out),
                 getattr(torch.nn, f"AdaptiveAvgPool{nd}d")(tout), x, exact=False)


def test_pool_reprs_and_unbatched():
    pairs = [(L.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (L.MaxPool1d((2,), 1), torch.nn.MaxPool1d((2,), 1)),
             (L.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1)),
             (L.AvgPool3d((1, 2, 3)), torch.nn.AvgPool3d((1, 2, 3))),
             (L.AdaptiveAvgPool3d((None, 2, 3)), torch.nn.AdaptiveAvgPool3d((None, 2, 3))),
             (L.Upsample(scale_factor=(2, 3), mode="bilinear"),
              torch.nn.Upsample(scale_factor=(2, 3), mode="bilinear")),
             (L.Upsample(size=(4, 5)), torch.nn.Upsample(size=(4, 5))),
             (L.UpsamplingNearest2d(scale_factor=3), torch.nn.UpsamplingNearest2d(scale_factor=3)),
             (L.UpsamplingBilinear2d(size=7), torch.nn.UpsamplingBilinear2d(size=7))]
    for a, b in pairs:
        assert repr(a) == repr(b)
    x = _x((3, 9, 8))
    _check_layer(L.MaxPool2d(2), torch.nn.MaxPool2d(2), x, exact=True)
    _check_layer(L.AvgPool2d(3, 2, 1), torch.nn.AvgPool2d(3, 2, 1), x, exact=False)
    _check_layer(L.AdaptiveAvgPool2d((4, 3)), torch.nn.AdaptiveAvgPool2d((4, 3)), x,
                 exact=False)


# -------------------------------------------------------------------------- resizing

def _adjoint_from_torch_forward(x_shape, g, fn):
    """J^T g of a torch gather (nearest resize), from its forward: resizing the flat
    positions 0, 1, 2, ... tells which input each output element reads."""
    n = int(np.prod(x_shape))
    src = fn(torch.arange(n, dtype=torch.float64).reshape(x_shape)).numpy()
    return np.bincount(src.astype(np.int64).ravel(), weights=g.ravel(),
                       minlength=n).reshape(x_shape)


NEAREST_CASES = [  # (input shape, kwargs)
    ((2, 3, 5), dict(size=11)), ((2, 3, 7), dict(scale_factor=0.6)),
    ((2, 3, 5), dict(scale_factor=2.0)), ((2, 3, 4), dict(scale_factor=1.7)),
    ((2, 3, 5, 4), dict(size=(8, 3))), ((2, 3, 5, 4), dict(scale_factor=(2, 3))),
    ((2, 3, 6, 5), dict(scale_factor=0.7)), ((1, 2, 4, 6), dict(scale_factor=2.3)),
    ((1, 2, 3, 3), dict(scale_factor=1.3)),       # 2-d shortcuts: size kept / doubled
    ((1, 2, 63, 65), dict(scale_factor=1.01)),    # 2-d shortcut at out_h + out_w == 128
    ((1, 2, 64, 65), dict(scale_factor=1.01)),    # ... and none at 129
    ((1, 2, 40, 30), dict(scale_factor=2.01)),
    ((2, 3, 3, 4, 2), dict(size=(5, 4, 7))), ((1, 2, 3, 4, 5), dict(scale_factor=1.5)),
    ((2, 3, 5, 4), dict(scale_factor=1.7, recompute_scale_factor=True)),
]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("shape,kw", NEAREST_CASES)
def test_nearest(shape, kw, mode):
    x = _x(shape, ties=False)
    y = F.interpolate(x, mode=mode, **kw)
    yt = TF.interpolate(torch.from_numpy(x), mode=mode, **kw).numpy()
    np.testing.assert_array_equal(y, yt)  # gathers: bit for bit
    # the gradient is the exact adjoint of torch's forward
    g = _rng(1).standard_normal(y.shape)
    gin = F.interpolate_backward(g, shape, mode=mode, **kw)
    want = _adjoint_from_torch_forward(
        shape, g, lambda b: TF.interpolate(b, mode=mode, **kw))
    np.testing.assert_allclose(gin, want, rtol=1e-12, atol=1e-12)


def test_nearest_backward_deviation_from_torch():
    # torch's nearest backward always takes the size-kept / size-doubled shortcuts, its
    # 1-d forward never does: for scale_factor=1.3 on 3 samples the forward reads
    # [0, 0, 1] but torch's gradient goes to [0, 1, 2]. numq's gradient follows the forward.
    x = np.arange(3.0).reshape(1, 1, 3)
    xt = torch.from_numpy(x).requires_grad_()
    yt = TF.interpolate(xt, scale_factor=1.3)
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=1.3), yt.detach().numpy())
    g = np.array([[[1.0, 2.0, 4.0]]])
    yt.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(xt.grad.numpy(), [[[1, 2, 4]]])          # torch
    np.testing.assert_array_equal(F.interpolate_backward(g, x.shape, scale_factor=1.3),
                                  [[[3, 4, 0]]])                             # numq


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 5, 4), dict(size=(9, 7))), ((2, 3, 5, 4), dict(size=(3, 2))),
    ((2, 3, 5, 4), dict(size=(1, 1))), ((2, 3, 5, 4), dict(size=(5, 9))),
    ((2, 3, 6, 5), dict(scale_factor=2.0)), ((2, 3, 6, 5), dict(scale_factor=(0.5, 1.7))),
    ((2, 3, 6, 5), dict(scale_factor=2.3, recompute_scale_factor=True)),
    ((1, 2, 40, 50), dict(scale_factor=1.5)),   # torch's generic (non channels-last) path
    ((2, 3, 7), dict(size=12)), ((2, 3, 7), dict(scale_factor=0.7)),
    ((1, 2, 3, 4, 5), dict(size=(5, 2, 8))), ((1, 2, 3, 4, 5), dict(scale_factor=1.6)),
])
def test_linear_modes(shape, kw, align):
    mode = {3: "linear", 4: "bilinear", 5: "trilinear"}[len(shape)]
    x = _x(shape, ties=False)
    layer = L.Upsample(mode=mode, align_corners=align, **kw)
    tlayer = torch.nn.Upsample(mode=mode, align_corners=align, **kw)
    _check_layer(layer, tlayer, x, exact=False)


@pytest.mark.parametrize("shape,kw", [((2, 3, 9, 7), dict(size=(4, 3))),
                                      ((2, 3, 9, 7), dict(scale_factor=0.5)),
                                      ((2, 3, 9), dict(size=4)),
                                      ((1, 2, 5, 6, 7), dict(size=(2, 3, 4)))])
def test_area(shape, kw):
    x = _x(shape)
    _check_layer(L.Upsample(mode="area", **kw), torch.nn.Upsample(mode="area", **kw), x,
                 exact=False)


@pytest.mark.parametrize("shape,kw", [((2, 3, 5, 4), dict(scale_factor=2)),
                                      ((2, 3, 5, 4), dict(size=(7, 3))),
                                      ((2, 3, 3, 4, 2), dict(scale_factor=(1, 2, 3)))])
def test_nearest_layer_and_float64(shape, kw):
    for dtype in (np.float32, np.float64):
        x = _x(shape, dtype=dtype, ties=False)
        _check_layer(L.Upsample(**kw), torch.nn.Upsample(**kw), x, exact=True)
    x = _x((1, 2, 5, 6))
    _check_layer(L.UpsamplingBilinear2d(scale_factor=2),
                 torch.nn.UpsamplingBilinear2d(scale_factor=2), x, exact=False)


# ------------------------------------------------------------------- shared layers

@pytest.mark.parametrize("make,tmake", [
    (lambda: L.MaxPool2d(3, 1, 1), lambda: torch.nn.MaxPool2d(3, 1, 1)),
    (lambda: L.AvgPool2d(3, 1, 1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False)),
    (lambda: L.Upsample(size=(6, 7), mode="bilinear"),
     lambda: torch.nn.Upsample(size=(6, 7), mode="bilinear")),
])
def test_shared_layer_twice_in_one_forward(make, tmake):
    # y = f(f(x)) with ONE layer: keep each call's _saved, restore it before its backward
    layer, tlayer = make(), tmake()
    x = _x((2, 3, 6, 7), ties=False)
    (y_t,), g, gx_t = _torch_fwd_bwd(lambda v: tlayer(tlayer(v)), x)
    h = layer(x)
    saved1 = layer._saved
    y = layer(h)
    saved2 = layer._saved
    np.testing.assert_allclose(y, y_t, rtol=1e-5, atol=1e-6)
    layer._saved = saved2
    gh = layer.backward(g)
    layer._saved = saved1
    np.testing.assert_allclose(layer.backward(gh), gx_t, rtol=1e-4, atol=1e-6)


def test_cnn_block_state_dict_interop():
    # a parameter-free pooling / resizing chain matches torch's Sequential end to end
    model = L.Sequential(L.MaxPool2d(2), L.Upsample(scale_factor=2, mode="bilinear"),
                         L.AvgPool2d(3, 1, 1), L.AdaptiveAvgPool2d((3, 4)))
    tmodel = torch.nn.Sequential(torch.nn.MaxPool2d(2),
                                 torch.nn.Upsample(scale_factor=2, mode="bilinear"),
                                 torch.nn.AvgPool2d(3, 1, 1), torch.nn.AdaptiveAvgPool2d((3, 4)))
    assert model.state_dict() == {} and not tmodel.state_dict()
    _check_layer(model, tmodel, _x((2, 3, 10, 12), ties=False), exact=False)
