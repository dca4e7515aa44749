"""Linear / Conv / ConvTranspose against torch 2.13: same weights, same inputs; forward
outputs and input / weight / bias gradients compared with torch autograd.

float32 throughout. numq's GEMMs (NumPy's BLAS) and torch's (oneDNN / MKL) sum in
different orders, so results agree to rounding, not bit for bit: rtol=1e-4, plus an
absolute tolerance relative to the array's largest entry for entries that cancel to ~0.
"""
import numpy as np
import pytest

import numq.layers as L
import numq.layers.functional as F

torch = pytest.importorskip("torch")

# torch warns that it copies the input for 'same' with an even kernel; not our concern
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _close(actual, expected, rtol=1e-4):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    atol = 1e-5 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _twin(name, kw, seed):
    """A torch layer with its numq twin loaded from torch's state_dict."""
    torch.manual_seed(seed)
    tl = getattr(torch.nn, name)(**kw)
    nl = getattr(L, name)(**kw)
    nl.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    return tl, nl


def _run_both(tl, nl, x, fwd_kw=None, seed=0):
    fwd_kw = fwd_kw or {}
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(xt, **fwd_kw)
    y = nl(x, **fwd_kw)
    _close(y, yt)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    gi = nl.backward(g)
    _close(gi, xt.grad)
    for name, p in nl.named_parameters():
        _close(p.grad, dict(tl.named_parameters())[name].grad)


_CASES = [
    ("Linear", dict(in_features=7, out_features=5), (3, 4, 7)),
    ("Linear", dict(in_features=7, out_features=5, bias=False), (7,)),
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3), (2, 4, 15)),
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=4, stride=3, padding=2,
                    dilation=2, groups=2, bias=False), (2, 4, 17)),
    ("Conv1d", dict(in_channels=3, out_channels=2, kernel_size=4, padding="same",
                    padding_mode="circular"), (3, 10)),
    ("Conv2d", dict(in_channels=3, out_channels=8, kernel_size=3, padding=1), (2, 3, 12, 11)),
    ("Conv2d", dict(in_channels=6, out_channels=4, kernel_size=(3, 2), stride=(2, 1),
                    padding=(1, 2), dilation=(1, 2), groups=2), (2, 6, 11, 9)),
    ("Conv2d", dict(in_channels=4, out_channels=4, kernel_size=3, padding="same", groups=4),
     (2, 4, 9, 9)),
    ("Conv2d", dict(in_channels=4, out_channels=5, kernel_size=2, padding="same",
                    dilation=3), (2, 4, 9, 8)),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=3, padding="valid"),
     (3, 8, 8)),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=3, padding=2,
                    padding_mode="reflect"), (2, 3, 7, 8)),
    ("Conv2d", dict(in_channels=3, out_channels=4, kernel_size=3, padding=(1, 2),
                    padding_mode="replicate"), (2, 3, 7, 8)),
    ("Conv2d", dict(in_channels=8, out_channels=16, kernel_size=1), (2, 8, 7, 7)),
    ("Conv2d", dict(in_channels=8, out_channels=4, kernel_size=1, stride=2), (2, 8, 7, 7)),
    # several batch chunks' worth of im2col
    ("Conv2d", dict(in_channels=16, out_channels=16, kernel_size=3, stride=1, padding=1),
     (4, 16, 24, 24)),
    # one output position: GEMMs with an inner size of 1 (the broadcast-multiply path)
    ("Conv2d", dict(in_channels=3, out_channels=5, kernel_size=4), (2, 3, 4, 4)),
    ("Conv3d", dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 3), stride=(1, 2, 1),
                    padding=1, groups=2), (2, 2, 5, 7, 6)),
    ("Conv3d", dict(in_channels=2, out_channels=3, kernel_size=3, padding="same",
                    padding_mode="replicate"), (2, 5, 4, 5)),
    ("ConvTranspose1d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2,
                             padding=1, output_padding=1, groups=2), (2, 4, 7)),
    ("ConvTranspose1d", dict(in_channels=3, out_channels=2, kernel_size=5, dilation=2,
                             bias=False), (3, 6)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=(3, 2),
                             stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                             dilation=(2, 1), groups=2), (2, 4, 5, 4)),
    ("ConvTranspose2d", dict(in_channels=8, out_channels=4, kernel_size=2, stride=2),
     (3, 8, 6, 6)),
    ("ConvTranspose2d", dict(in_channels=6, out_channels=3, kernel_size=1), (2, 6, 5, 5)),
    ("ConvTranspose2d", dict(in_channels=8, out_channels=4, kernel_size=4), (3, 8, 1, 1)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=4, kernel_size=3, groups=4,
                             stride=2, padding=1, output_padding=1), (2, 4, 5, 5)),
    ("ConvTranspose3d", dict(in_channels=2, out_channels=4, kernel_size=(2, 3, 2),
                             stride=(1, 2, 2), padding=(0, 1, 1)), (2, 2, 3, 4, 3)),
]


@pytest.mark.parametrize("name,kw,xshape", _CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(_CASES)])
def test_layer_matches_torch(name, kw, xshape):
    tl, nl = _twin(name, kw, seed=len(xshape))
    x = np.random.default_rng(1).standard_normal(xshape).astype(np.float32)
    _run_both(tl, nl, x)


def test_conv_transpose_output_size_matches_torch():
    tl, nl = _twin("ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=3,
                                           stride=3, padding=1), seed=3)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for size in [(10, 13), (2, 2, 11, 14), [12, 15]]:
        _run_both(tl, nl, x, dict(output_size=size))


def test_shared_layer_saved_swap_matches_torch():
    """One conv called twice in a forward; restoring each call's ``_saved`` before its
    backward gives torch's gradients of the composition."""
    tl, nl = _twin("Conv2d", dict(in_channels=3, out_channels=3, kernel_size=3, padding=1),
                   seed=5)
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(torch.relu(tl(xt)))
    h = nl(x)
    s1 = nl._saved
    r = np.maximum(h, 0)
    y = nl(r)
    s2 = nl._saved
    _close(y, yt)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    nl._saved = s2
    gr = nl.backward(g)
    nl._saved = s1
    gx = nl.backward(gr * (h > 0))
    _close(gx, xt.grad)
    _close(nl.weight.grad, tl.weight.grad)
    _close(nl.bias.grad, tl.bias.grad)


def test_linear_weight_tied_twice_matches_torch():
    tl, nl = _twin("Linear", dict(in_features=6, out_features=6), seed=6)
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = tl(tl(xt))
    y1 = nl(x)
    s1 = nl._saved
    y = nl(y1)
    _close(y, yt)
    g = np.ones(y.shape, np.float32)
    yt.backward(torch.tensor(g))
    gi = nl.backward(g)
    nl._saved = s1
    _close(nl.backward(gi), xt.grad)
    _close(nl.weight.grad, tl.weight.grad)
    _close(nl.bias.grad, tl.bias.grad)


_FUNCTIONAL = [
    ("conv1d", (2, 4, 13), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    ("conv2d", (2, 3, 9, 10), (4, 3, 3, 3), dict(padding="same", dilation=(1, 2))),
    ("conv3d", (1, 2, 5, 5, 5), (3, 2, 3, 3, 3), dict(stride=2, padding=(1, 0, 1))),
    ("conv_transpose1d", (2, 4, 6), (4, 3, 3), dict(stride=3, padding=1, output_padding=2)),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 1, 3, 3), dict(stride=2, groups=4, dilation=2,
                                                          output_padding=1)),
    ("conv_transpose3d", (1, 2, 3, 3, 3), (2, 2, 2, 2, 2), dict(stride=2)),
]


@pytest.mark.parametrize("fname,xs,ws,kw", _FUNCTIONAL, ids=[c[0] for c in _FUNCTIONAL])
def test_functional_matches_torch(fname, xs, ws, kw):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    nb = ws[1] * kw.get("groups", 1) if "transpose" in fname else ws[0]
    b = rng.standard_normal(nb).astype(np.float32)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = getattr(torch.nn.functional, fname)(xt, wt, bt, **kw)
    y = getattr(F, fname)(x, w, b, **kw)
    _close(y, yt)
    g = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    gi, gw, gb = getattr(F, fname + "_backward")(g, x, w, **kw)
    _close(gi, xt.grad)
    _close(gw, wt.grad)
    _close(gb, bt.grad)


def test_state_dict_interop_and_repr():
    for name, kw in [("Conv2d", dict(in_channels=4, out_channels=8, kernel_size=3, stride=2,
                                     padding=1, groups=2, bias=False)),
                     ("Conv1d", dict(in_channels=2, out_channels=2, kernel_size=3,
                                     padding="same", padding_mode="circular")),
                     ("ConvTranspose3d", dict(in_channels=2, out_channels=4, kernel_size=2,
                                              stride=2, output_padding=1, dilation=2)),
                     ("Linear", dict(in_features=3, out_features=4))]:
        tl, nl = _twin(name, kw, seed=0)
        assert repr(nl) == repr(tl)
        sd_t = tl.state_dict()
        sd_n = nl.state_dict()
        assert list(sd_n) == list(sd_t)
        for k in sd_t:
            assert sd_n[k].shape == tuple(sd_t[k].shape) and sd_n[k].dtype == np.float32
        for attr in ("kernel_size", "stride", "padding", "dilation", "output_padding",
                     "groups", "padding_mode", "transposed", "in_channels", "out_channels",
                     "in_features", "out_features"):
            if hasattr(tl, attr):
                assert getattr(nl, attr) == getattr(tl, attr), attr


def test_default_init_distribution_matches_torch():
    """Same U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch's reset_parameters, weight and bias
    (the values differ: different generators)."""
    for name, kw in [("Conv2d", dict(in_channels=16, out_channels=32, kernel_size=3)),
                     ("ConvTranspose2d", dict(in_channels=16, out_channels=32, kernel_size=3,
                                              groups=4)),
                     ("Linear", dict(in_features=64, out_features=128))]:
        torch.manual_seed(0)
        tl = getattr(torch.nn, name)(**kw)
        nl = getattr(L, name)(**kw, generator=0)
        w = tl.weight.detach().numpy()
        bound = 1 / np.sqrt(np.prod(w.shape[1:]))       # fan_in from weight.shape, as torch
        for p in ("weight", "bias"):
            t = getattr(tl, p).detach().numpy()
            n = getattr(nl, p).data
            assert np.abs(t).max() <= bound and np.abs(n).max() <= bound
        std = bound / np.sqrt(3)                         # of U(-bound, bound)
        assert abs(nl.weight.data.std() - std) < 0.05 * std
        assert abs(w.std() - std) < 0.05 * std
