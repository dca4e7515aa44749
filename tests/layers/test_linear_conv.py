"""Linear, Conv{1,2,3}d, ConvTranspose{1,2,3}d: forward against slow references, gradients
against finite differences (float64), kernels, shapes, modes, bad input. No torch."""
import copy

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.layers.functional as F
from numq.kernels import im2col as K
from numq.layers.functional import _linear_conv as LC

from reference_linear_conv import conv_ref, conv_transpose_ref, im2col_ref


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ kernels

_GEOMS = [  # (in3, k3, s3, p3, d3, extra output positions beyond the formula)
    ((1, 1, 9), (1, 1, 3), (1, 1, 1), (0, 0, 1), (1, 1, 1), 0),
    ((1, 7, 6), (1, 3, 2), (1, 2, 3), (0, 1, 2), (1, 2, 1), 0),
    ((4, 5, 6), (2, 3, 2), (2, 1, 2), (1, 0, 1), (1, 1, 2), 0),
    ((1, 4, 5), (1, 2, 2), (1, 1, 1), (0, 3, 4), (1, 1, 1), 0),   # padding > kernel
    ((3, 5, 5), (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), 1),   # output_padding-like
]


def _out3(in3, k, s, p, d, extra):
    return tuple(max(1, (i + 2 * pp - dd * (kk - 1) - 1) // ss + 1 + extra)
                 for i, kk, ss, pp, dd in zip(in3, k, s, p, d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", _GEOMS)
def test_im2col_matches_reference_and_col2im_is_its_adjoint(geom, dtype):
    in3, k, s, p, d, extra = geom
    out = _out3(in3, k, s, p, d, extra)
    rng = _rng(1)
    x = rng.standard_normal((2, 3) + in3).astype(dtype)
    cols = np.full((2, 3 * int(np.prod(k)), int(np.prod(out))), np.nan, dtype)
    K.im2col(x, cols, out, k, s, p, d)
    np.testing.assert_array_equal(cols, im2col_ref(x, out, k, s, p, d))
    g = rng.standard_normal(cols.shape).astype(dtype)
    xb = np.full(x.shape, np.nan, dtype)
    K.col2im(g, xb, out, k, s, p, d)
    # <im2col(x), g> == <x, col2im(g)>, in float64
    lhs = np.vdot(cols.astype(np.float64), g.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), xb.astype(np.float64))
    assert np.isclose(lhs, rhs, rtol=1e-5)


def test_parallel_kernels_equal_serial_bit_for_bit():
    rng = _rng(2)
    x = rng.standard_normal((5, 8, 1, 30, 30)).astype(np.float32)
    args = ((1, 15, 15), (1, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1))
    cols = np.empty((5, 72, 225), np.float32)
    assert cols.size >= K.PARALLEL_MIN                   # the automatic choice is parallel
    K.im2col(x, cols, *args)
    ser = np.empty_like(cols)
    K._im2col_serial(x.reshape(-1), ser.reshape(-1), 5, 8, (1, 30, 30), *args)
    np.testing.assert_array_equal(cols, ser)
    back = np.empty_like(x)
    K.col2im(cols, back, *args, parallel=True)
    back_ser = np.empty_like(x)
    K._col2im_serial(cols.reshape(-1), back_ser.reshape(-1), 5, 8, (1, 30, 30), *args)
    np.testing.assert_array_equal(back, back_ser)


# ------------------------------------------------------------------ forward

_CONV_CASES = [  # rank, x shape, w shape, kwargs
    (1, (2, 4, 11), (6, 4, 3), dict()),
    (1, (2, 4, 11), (6, 2, 4), dict(stride=2, padding=3, dilation=2, groups=2)),
    (1, (3, 9), (5, 3, 4), dict(padding="same")),                      # unbatched, even k
    (2, (2, 3, 9, 8), (4, 3, 3, 3), dict(padding=1)),
    (2, (2, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                         groups=2)),
    (2, (2, 4, 7, 6), (4, 1, 3, 3), dict(padding="same", dilation=2, groups=4)),  # depthwise
    (2, (2, 4, 7, 6), (5, 4, 1, 1), dict()),                                     # pointwise
    (2, (2, 4, 7, 6), (5, 4, 1, 1), dict(stride=2)),
    (2, (2, 3, 7, 6), (4, 3, 2, 3), dict(padding="valid")),
    (3, (2, 2, 5, 6, 4), (4, 1, 2, 3, 2), dict(stride=(1, 2, 2), padding=1, groups=2)),
    (3, (2, 4, 4, 4), (3, 2, 2, 2, 2), dict(padding="same")),         # unbatched 3-d
]


def _pads(rank, ksize, kw):
    p = kw.get("padding", 0)
    d = kw.get("dilation", 1)
    d = (d,) * rank if isinstance(d, int) else d
    if p == "same":
        return [(dd * (k - 1) // 2, dd * (k - 1) - dd * (k - 1) // 2) for k, dd in zip(ksize, d)]
    if p == "valid":
        return [(0, 0)] * rank
    p = (p,) * rank if isinstance(p, int) else p
    return [(pp, pp) for pp in p]


def _tup(v, rank):
    return (v,) * rank if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("case", _CONV_CASES)
def test_conv_forward_matches_reference(case):
    rank, xs, ws, kw = case
    rng = _rng(3)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = getattr(F, f"conv{rank}d")(x, w, b, **kw)
    batched = len(xs) == rank + 2
    xb = x if batched else x[None]
    ref = conv_ref(xb, w, b, _tup(kw.get("stride", 1), rank), _pads(rank, ws[2:], kw),
                   _tup(kw.get("dilation", 1), rank), kw.get("groups", 1))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref if batched else ref[0], rtol=1e-12, atol=1e-12)


_CONVT_CASES = [  # rank, x shape, w shape, kwargs
    (1, (2, 4, 5), (4, 3, 3), dict(stride=2, output_padding=1)),
    (1, (4, 5), (4, 3, 3), dict(padding=1, dilation=2)),               # unbatched
    (2, (2, 4, 5, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                         dilation=(2, 1), groups=2)),
    (2, (2, 3, 4, 5), (3, 2, 1, 1), dict()),                               # pointwise
    (2, (2, 2, 4, 4), (2, 2, 3, 3), dict(dilation=3, output_padding=2)),   # op < dilation
    (3, (2, 2, 3, 4, 3), (2, 2, 2, 3, 2), dict(stride=(2, 1, 2), padding=(0, 1, 1))),
]


@pytest.mark.parametrize("case", _CONVT_CASES)
def test_conv_transpose_forward_matches_reference(case):
    rank, xs, ws, kw = case
    rng = _rng(4)
    groups = kw.get("groups", 1)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[1] * groups)
    y = getattr(F, f"conv_transpose{rank}d")(x, w, b, **kw)
    batched = len(xs) == rank + 2
    ref = conv_transpose_ref(x if batched else x[None], w, b, _tup(kw.get("stride", 1), rank),
                             _tup(kw.get("padding", 0), rank),
                             _tup(kw.get("output_padding", 0), rank),
                             _tup(kw.get("dilation", 1), rank), groups)
    np.testing.assert_allclose(y, ref if batched else ref[0], rtol=1e-12, atol=1e-12)


def test_linear_forward_any_leading_shape():
    rng = _rng(5)
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    for shape in [(3,), (5, 3), (2, 5, 3), (0, 3)]:
        x = rng.standard_normal(shape)
        y = F.linear(x, w, b)
        assert y.shape == shape[:-1] + (4,)
        np.testing.assert_allclose(y, np.einsum("...i,oi->...o", x, w) + b, rtol=1e-12)
    np.testing.assert_allclose(F.linear(x, w), np.einsum("...i,oi->...o", x, w))


def test_batch_chunking_gives_the_same_result(monkeypatch):
    rng = _rng(6)
    x = rng.standard_normal((5, 3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((5, 4, 8, 7))
    y = F.conv2d(x, w, padding=1)
    grads = F.conv2d_backward(g, x, w, padding=1)
    yt = F.conv_transpose2d(g, w, padding=1)
    monkeypatch.setattr(LC, "_CHUNK_BYTES", 1)          # one sample per chunk
    np.testing.assert_allclose(F.conv2d(x, w, padding=1), y, rtol=1e-13)
    for a, b in zip(F.conv2d_backward(g, x, w, padding=1), grads):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(F.conv_transpose2d(g, w, padding=1),
                               yt, rtol=1e-13)


# ------------------------------------------------ gradients (finite differences)

def _fd_check(f, grads, arrays, rng, n_dir=2, eps=1e-6, tol=1e-7):
    """Directional central differences of ``f()`` (a scalar) along random directions.

    ``arrays[i]`` is modified in place and restored; ``grads[i]`` is its analytic gradient.
    """
    for arr, g in zip(arrays, grads):
        for _ in range(n_dir):
            v = rng.standard_normal(arr.shape)
            arr += eps * v
            fp = f()
            arr -= 2 * eps * v
            fm = f()
            arr += eps * v
            num = (fp - fm) / (2 * eps)
            ana = float(np.vdot(g, v))
            assert abs(num - ana) <= tol * max(1.0, abs(ana)), (num, ana)


def _layer_fd(layer, x, rng):
    """Backward of ``sum(layer(x) * g)`` checked against finite differences."""
    layer.double().train()
    layer.zero_grad()
    y = layer(x)
    g = rng.standard_normal(y.shape)
    gi = layer.backward(g)
    assert gi.shape == x.shape and gi.dtype == np.float64
    params = [p for p in layer.parameters()]

    def f():
        with_saved = layer._saved
        out = float(np.vdot(layer(x), g))
        layer._saved = with_saved
        return out

    _fd_check(f, [gi] + [p.grad for p in params], [x] + [p.data for p in params], rng)


_LAYER_CASES = [
    ("Conv1d", (2, 4, 9), dict(in_channels=4, out_channels=6, kernel_size=3, stride=2,
                               padding=2, dilation=2, groups=2)),
    ("Conv1d", (4, 9), dict(in_channels=4, out_channels=3, kernel_size=4, padding="same",
                            padding_mode="reflect")),
    ("Conv2d", (2, 3, 7, 6), dict(in_channels=3, out_channels=4, kernel_size=3, padding=1)),
    ("Conv2d", (2, 4, 7, 6), dict(in_channels=4, out_channels=4, kernel_size=(2, 3),
                                  stride=(2, 1), padding=(1, 2), groups=4, bias=False)),
    ("Conv2d", (2, 2, 5, 6), dict(in_channels=2, out_channels=3, kernel_size=3, padding=2,
                                  padding_mode="replicate")),
    ("Conv2d", (2, 2, 5, 6), dict(in_channels=2, out_channels=3, kernel_size=2,
                                  padding="same", padding_mode="circular")),
    ("Conv2d", (2, 4, 5, 6), dict(in_channels=4, out_channels=2, kernel_size=1)),
    ("Conv3d", (2, 2, 4, 5, 4), dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 2),
                                     stride=(1, 2, 1), padding=1, dilation=(2, 1, 1),
                                     groups=2)),
    ("ConvTranspose1d", (2, 4, 5), dict(in_channels=4, out_channels=6, kernel_size=3,
                                        stride=2, padding=1, output_padding=1, groups=2)),
    ("ConvTranspose2d", (2, 3, 4, 5), dict(in_channels=3, out_channels=2, kernel_size=(3, 2),
                                           stride=(2, 3), padding=(1, 0), dilation=(1, 2),
                                           output_padding=(1, 0))),
    ("ConvTranspose2d", (3, 4, 5), dict(in_channels=3, out_channels=2, kernel_size=1,
                                        bias=False)),
    ("ConvTranspose3d", (2, 2, 3, 3, 4), dict(in_channels=2, out_channels=2,
                                              kernel_size=(2, 2, 3), stride=2, padding=1)),
    ("Linear", (2, 3, 5), dict(in_features=5, out_features=4)),
    ("Linear", (5,), dict(in_features=5, out_features=3, bias=False)),
]


@pytest.mark.parametrize("name,xshape,kw", _LAYER_CASES)
def test_layer_gradients_match_finite_differences(name, xshape, kw):
    rng = _rng(7)
    layer = getattr(L, name)(**kw, generator=1)
    _layer_fd(layer, rng.standard_normal(xshape), rng)


def test_conv_transpose_output_size_gradients():
    rng = _rng(8)
    layer = L.ConvTranspose2d(2, 3, 3, stride=3, padding=1, generator=2).double()
    x = rng.standard_normal((2, 2, 3, 4))
    y = layer(x, output_size=(8, 11))
    assert y.shape == (2, 3, 8, 11)
    assert layer(x, output_size=(2, 3, 7, 10)).shape == (2, 3, 7, 10)
    g = rng.standard_normal(y.shape)
    layer(x, output_size=[8, 11])
    gi = layer.backward(g)

    def f():
        layer.eval()
        out = float(np.vdot(layer(x, output_size=(8, 11)), g))
        layer.train()
        return out

    _fd_check(f, [gi, layer.weight.grad, layer.bias.grad],
              [x, layer.weight.data, layer.bias.data], rng)


@pytest.mark.parametrize("make,xshape", [
    (lambda: L.Conv2d(3, 3, 3, padding=1, generator=3), (2, 3, 5, 5)),
    (lambda: L.ConvTranspose1d(2, 2, 3, stride=2, padding=1, output_padding=1, generator=3),
     (2, 2, 4)),
    (lambda: L.Linear(4, 4, generator=3), (3, 4)),
], ids=["Conv2d", "ConvTranspose1d", "Linear"])
def test_shared_layer_saved_swap(make, xshape):
    """A layer called twice in one forward: restoring each call's _saved gives the
    gradients of the composition (checked by finite differences)."""
    rng = _rng(9)
    layer = make().double()
    x = rng.standard_normal(xshape)
    y1 = layer(x)
    s1 = layer._saved
    y2 = layer(np.tanh(y1))
    s2 = layer._saved
    g = rng.standard_normal(y2.shape)
    layer._saved = s2
    g1 = layer.backward(g) * (1 - np.tanh(y1) ** 2)
    layer._saved = s1
    gx = layer.backward(g1)

    def f():
        layer.eval()
        out = float(np.vdot(layer(np.tanh(layer(x))), g))
        layer.train()
        return out

    _fd_check(f, [gx, layer.weight.grad, layer.bias.grad],
              [x, layer.weight.data, layer.bias.data], rng, tol=1e-6)


def test_sequential_training_step_decreases_loss():
    rng = _rng(10)
    model = L.Sequential(L.Conv2d(1, 4, 3, padding=1, generator=4),
                         L.ConvTranspose2d(4, 2, 2, stride=2, generator=5),
                         L.Conv2d(2, 1, 3, stride=2, padding=1, generator=6))
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    target = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    losses = []
    for _ in range(5):
        y = model(x)
        losses.append(float(((y - target) ** 2).mean()))
        model.zero_grad()
        model.backward(2 * (y - target) / y.size)
        for p in model.parameters():
            p.data -= 0.5 * p.grad
    assert losses[-1] < losses[0]


# --------------------------------------------------------- modes and dtypes

def test_eval_saves_nothing_and_backward_needs_forward():
    conv = L.Conv1d(2, 3, 3, generator=0)
    x = np.ones((1, 2, 5), np.float32)
    with pytest.raises(RuntimeError, match="without a preceding"):
        conv.backward(np.ones((1, 3, 3), np.float32))
    conv.eval()
    conv(x)
    assert conv._saved is None
    with pytest.raises(RuntimeError, match="without a preceding"):
        conv.backward(np.ones((1, 3, 3), np.float32))
    conv.train()
    conv(x)
    conv.backward(np.ones((1, 3, 3), np.float32))
    with pytest.raises(RuntimeError, match="called twice"):
        conv.backward(np.ones((1, 3, 3), np.float32))
    lin = L.Linear(2, 3).eval()
    lin(np.ones((4, 2)))
    assert lin._saved is None


@pytest.mark.parametrize("make,xshape", [
    (lambda **k: L.Linear(3, 2, **k), (4, 3)),
    (lambda **k: L.Conv2d(2, 3, 3, **k), (1, 2, 4, 4)),
    (lambda **k: L.ConvTranspose1d(2, 3, 3, **k), (1, 2, 4)),
])
def test_dtypes(make, xshape):
    layer = make(generator=0)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    y = layer(np.ones(xshape, np.float64))                       # cast to the parameter dtype
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape, np.float64)).dtype == np.float32
    assert layer.weight.grad.dtype == np.float32
    layer.double()
    y = layer(np.ones(xshape, np.float32))
    assert y.dtype == np.float64
    assert layer.backward(np.ones(y.shape)).dtype == np.float64
    assert make(dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="float"):
        layer(np.ones(xshape, np.int64))
    with pytest.raises(TypeError, match="dtype"):
        make(dtype=np.int32)


def test_requires_grad_and_accumulation():
    rng = _rng(11)
    conv = L.Conv2d(2, 2, 3, generator=0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    g = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    conv(x)
    conv.backward(g)
    first = conv.weight.grad.copy()
    conv(x)
    conv.backward(g)
    np.testing.assert_allclose(conv.weight.grad, 2 * first, rtol=1e-6)
    conv.zero_grad()
    conv.weight.requires_grad = False
    conv(x)
    gi = conv.backward(g)
    assert conv.weight.grad is None and conv.bias.grad is not None and gi.shape == x.shape


def test_init_follows_torch_defaults_and_generator():
    a = L.Conv2d(3, 8, 3, generator=42)
    b = L.Conv2d(3, 8, 3, generator=np.random.default_rng(42))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    fan_in = 3 * 9
    # kaiming_uniform_(a=sqrt(5)): gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in), as the bias
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.bias.data).max() <= bound
    assert a.weight.data.std() > bound / 3
    t = L.ConvTranspose2d(4, 6, 3, groups=2, generator=0)
    assert t.weight.shape == (4, 3, 3, 3)
    assert np.abs(t.weight.data).max() <= 1 / np.sqrt(3 * 9)      # fan_in from weight.shape[1]
    lin = L.Linear(10, 4, generator=0)
    assert np.abs(lin.weight.data).max() <= 1 / np.sqrt(10)
    numq.manual_seed(7)
    w1 = L.Linear(5, 5).weight.data.copy()
    numq.manual_seed(7)
    np.testing.assert_array_equal(L.Linear(5, 5).weight.data, w1)


def test_attributes_repr_state_dict_and_deepcopy():
    c = L.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=False)
    assert c.kernel_size == (3, 3) and c.stride == (2, 2) and c.padding == (1, 1)
    assert c.dilation == (1, 1) and c.output_padding == (0, 0) and not c.transposed
    assert repr(c) == ("Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                       "groups=2, bias=False)")
    assert list(c.state_dict()) == ["weight"] and c.weight.shape == (8, 2, 3, 3)
    assert repr(L.Conv1d(2, 2, 3, padding="same", padding_mode="circular")) == \
        "Conv1d(2, 2, kernel_size=(3,), stride=(1,), padding=same, padding_mode=circular)"
    t = L.ConvTranspose3d(2, 4, 2, stride=2, output_padding=1, dilation=2)
    assert repr(t) == ("ConvTranspose3d(2, 4, kernel_size=(2, 2, 2), stride=(2, 2, 2), "
                       "dilation=(2, 2, 2), output_padding=(1, 1, 1))")
    assert t.transposed and list(t.state_dict()) == ["weight", "bias"]
    assert repr(L.Linear(3, 4)) == "Linear(in_features=3, out_features=4, bias=True)"
    d = copy.deepcopy(c)
    assert type(d) is L.Conv2d and np.array_equal(d.weight.data, c.weight.data)
    assert d.weight is not c.weight


# ---------------------------------------------------------------- bad input

def test_bad_rank():
    w = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="3-d .*4-d"):
        F.conv2d(np.ones((3, 5), np.float32), w)
    with pytest.raises(ValueError, match="weight must be 4-d"):
        F.conv2d(np.ones((1, 3, 5, 5), np.float32), w[0])
    with pytest.raises(ValueError, match="2-d .*3-d"):
        L.Conv1d(3, 2, 3)(np.ones((1, 1, 3, 5), np.float32))
    with pytest.raises(ValueError, match="2-d .*3-d"):
        L.Conv1d(3, 2, 3, padding=1, padding_mode="reflect")(np.ones((1, 1, 3, 5)))
    with pytest.raises(ValueError, match="last dimension"):
        F.linear(np.float32(1.0), np.ones((2, 3)))


def test_bad_channel_count():
    with pytest.raises(ValueError, match="expected input with 3 channels"):
        L.Conv2d(3, 2, 3)(np.ones((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="expected input with 4 channels"):
        L.ConvTranspose2d(4, 2, 3)(np.ones((1, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="in_features"):
        L.Linear(3, 2)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv1d(np.ones((1, 4, 5)), np.ones((3, 2, 3)), groups=2)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(stride=(1, 1, 1)), TypeError, "tuple of 2 ints"),
    (dict(stride=1.5), TypeError, "stride"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, "strided"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(groups=0), ValueError, "groups must be a positive"),
    (dict(groups=2.0), TypeError, "groups must be an int"),
    (dict(padding=0, dilation=4), ValueError, "smaller than the dilated kernel"),
])
def test_bad_conv_arguments(kw, exc, match):
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(exc, match=match):
        F.conv2d(x, w, **kw)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(kernel_size=0), ValueError, "kernel_size must be >= 1"),
    (dict(kernel_size=3, groups=3), ValueError, "divisible by groups"),
    (dict(kernel_size=3, padding="full"), ValueError, "padding string"),
    (dict(kernel_size=3, padding="same", stride=2), ValueError, "strided"),
    (dict(kernel_size=3, padding_mode="mirror"), ValueError, "padding_mode"),
    (dict(kernel_size=(3, 3, 3)), TypeError, "tuple of 2 ints"),
])
def test_bad_conv_constructor(kw, exc, match):
    with pytest.raises(exc, match=match):
        L.Conv2d(4, 2, **kw)


def test_bad_constructor_channels():
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        L.Conv1d(0, 2, 3)
    with pytest.raises(TypeError, match="out_channels must be an int"):
        L.Conv1d(2, 2.0, 3)
    with pytest.raises(ValueError, match="Only \"zeros\" padding mode"):
        L.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="in_features must be >= 0"):
        L.Linear(-1, 2)


def test_bad_transpose_arguments():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="no 'same'"):
        F.conv_transpose2d(x, w, padding="same")
    with pytest.raises(ValueError, match="would be < 1"):
        F.conv_transpose2d(np.ones((1, 2, 1, 1)), w, padding=2)
    layer = L.ConvTranspose2d(2, 3, 3, stride=2)
    with pytest.raises(ValueError, match="valid sizes range from"):
        layer(x, output_size=(20, 20))
    with pytest.raises(ValueError, match="output_size must have 2 or 4"):
        layer(x, output_size=(9,))


def test_bad_padding_mode_sizes():
    with pytest.raises(ValueError, match="reflect"):
        L.Conv1d(1, 1, 3, padding=3, padding_mode="reflect")(np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="circular"):
        L.Conv1d(1, 1, 3, padding=4, padding_mode="circular")(np.ones((1, 1, 3)))


def test_bad_dtypes_and_shapes_in_functional():
    x = np.ones((1, 2, 5), np.float32)
    w = np.ones((3, 2, 3), np.float32)
    with pytest.raises(TypeError, match="input must be a float array"):
        F.conv1d(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="weight must be a float array"):
        F.conv1d(x, w.astype(np.int64))
    with pytest.raises(ValueError, match="bias must have shape"):
        F.conv1d(x, w, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="grad_output must have"):
        F.conv1d_backward(np.ones((1, 3, 4), np.float32), x, w)
    with pytest.raises(ValueError, match="grad_output must have"):
        F.linear_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="output_mask must have 3"):
        F.conv1d_backward(np.ones((1, 3, 3)), x, w, output_mask=(True,))
