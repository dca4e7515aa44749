"""Benchmarks: numq's float layers (training), numq vs torch, with NumPy baselines.

Groups (one per layer and shape; members ``numq`` / ``numpy`` / ``torch``):

- ``conv2d fwd ...`` and ``conv2d fwd+bwd ...``: ``Conv2d(64, 64, 3, padding=1)`` on
  8x64x56x56 (issue 3's figure), plus a strided and a 1x1 case. ``fwd+bwd`` is a layer
  forward in training mode, then ``backward`` of a fixed ``grad_output`` computing the
  input, weight and bias gradients (torch: autograd with ``input.requires_grad``; both
  clear their parameter gradients each round, so neither accumulates into old ones).
  ``numpy`` is what a NumPy user would write: ``sliding_window_view`` + ``tensordot``
  for the forward and weight gradient, the full correlation of the padded gradient with
  the flipped kernel for the input gradient (stride 1 only).
- ``linear fwd+bwd ...``: ``Linear`` on a batch of feature vectors.

To add a case: build the numq model and its torch twin with :func:`_twins` (or by hand,
then :func:`_load_torch_weights`), and time ``_numq_step`` / ``_torch_step`` through the
``measure`` fixture (see ``conftest.py``) in one group per shape.
"""
import numpy as np
import pytest

import numq.layers as L

IMPLS = ["numq", "numpy", "torch"]

_cache = {}


def _data(shape, seed=0):
    key = (shape, seed)
    if key not in _cache:
        _cache[key] = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    return _cache[key]


def _name(shape):
    return "x".join(map(str, shape))


# ------------------------------------------------------------------ helpers

def _load_torch_weights(numq_model, torch_model):
    """Copy a numq model's parameters into its torch twin (same state_dict keys)."""
    import torch
    sd = {k: torch.from_numpy(np.array(v)) for k, v in numq_model.state_dict().items()}
    torch_model.load_state_dict(sd)
    return torch_model


def _twins(name, **kw):
    """``(numq layer, torch layer)`` with identical weights; torch is imported lazily."""
    import torch
    nl = getattr(L, name)(**kw, generator=0)
    return nl, _load_torch_weights(nl, getattr(torch.nn, name)(**kw))


def _numq_step(model, x, grad_output):
    """One training-mode forward + backward of a numq model; returns the input grad."""
    model.zero_grad()
    model(x)
    return model.backward(grad_output)


def _torch_step(model, xt, gt):
    """The same for torch: forward, autograd backward (input grad included)."""
    model.zero_grad(set_to_none=True)
    xt.grad = None
    model(xt).backward(gt)
    return xt.grad


# -------------------------------------------------------------- convolution

# (x shape, out_channels, kernel, stride, padding)
CONV_CASES = [
    ((8, 64, 56, 56), 64, 3, 1, 1),     # issue 3's figure: a ResNet stage-1 conv
    ((8, 64, 56, 56), 128, 3, 2, 1),    # strided downsampling conv
    ((8, 64, 56, 56), 64, 1, 1, 0),     # pointwise: no im2col
]


def _conv_id(case):
    shape, oc, k, s, p = case
    return f"{_name(shape)} {shape[1]}->{oc} k{k} s{s} p{p}"


def _numpy_conv2d(x, w, b, stride, padding):
    """Forward as a NumPy user writes it; returns (y, windows) for the backward."""
    from numpy.lib.stride_tricks import sliding_window_view
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))          # (N, OH, OW, OC)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) + b[:, None, None], win


def _numpy_conv2d_step(x, w, b, g, stride, padding):
    from numpy.lib.stride_tricks import sliding_window_view
    y, win = _numpy_conv2d(x, w, b, stride, padding)
    gw = np.tensordot(g, win, axes=([0, 2, 3], [0, 2, 3]))         # (OC, C, k, k)
    gb = g.sum(axis=(0, 2, 3))
    k = w.shape[-1]
    q = k - 1 - padding
    gp = np.pad(g, ((0, 0), (0, 0), (q, q), (q, q)))
    gwin = sliding_window_view(gp, (k, k), axis=(2, 3))
    gx = np.tensordot(gwin, w[:, :, ::-1, ::-1], axes=([1, 4, 5], [0, 2, 3]))
    return np.ascontiguousarray(gx.transpose(0, 3, 1, 2)), gw, gb


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_forward(measure, case, impl):
    shape, oc, k, s, p = case
    x = _data(shape)
    nl = L.Conv2d(shape[1], oc, k, stride=s, padding=p, generator=0).eval()
    if impl == "numq":
        fn = lambda: nl(x)  # noqa: E731
    elif impl == "numpy":
        w, b = nl.weight.data, nl.bias.data
        fn = lambda: _numpy_conv2d(x, w, b, s, p)  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        _, tl = _twins("Conv2d", in_channels=shape[1], out_channels=oc, kernel_size=k,
                       stride=s, padding=p)
        xt = torch.from_numpy(x)

        def fn():
            with torch.no_grad():
                return tl(xt)
    measure(f"conv2d fwd {_conv_id(case)}", impl, fn)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv2d_forward_backward(measure, case, impl):
    shape, oc, k, s, p = case
    x = _data(shape)
    nl = L.Conv2d(shape[1], oc, k, stride=s, padding=p, generator=0)
    out = (shape[2] + 2 * p - k) // s + 1
    g = _data((shape[0], oc, out, out), seed=1)
    if impl == "numq":
        fn = lambda: _numq_step(nl, x, g)  # noqa: E731
    elif impl == "numpy":
        if s != 1:
            pytest.skip("the NumPy baseline's input gradient assumes stride 1")
        w, b = nl.weight.data, nl.bias.data
        fn = lambda: _numpy_conv2d_step(x, w, b, g, s, p)  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        _, tl = _twins("Conv2d", in_channels=shape[1], out_channels=oc, kernel_size=k,
                       stride=s, padding=p)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        gt = torch.from_numpy(g)
        fn = lambda: _torch_step(tl, xt, gt)  # noqa: E731
    measure(f"conv2d fwd+bwd {_conv_id(case)}", impl, fn)


# ------------------------------------------------------------------- linear

LINEAR_CASES = [((256, 1024), 1024), ((64, 50, 512), 256)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda c: f"{_name(c[0])}->{c[1]}")
def test_linear_forward_backward(measure, case, impl):
    shape, out = case
    x = _data(shape)
    g = _data(shape[:-1] + (out,), seed=1)
    nl = L.Linear(shape[-1], out, generator=0)
    if impl == "numq":
        fn = lambda: _numq_step(nl, x, g)  # noqa: E731
    elif impl == "numpy":
        w, b = nl.weight.data, nl.bias.data

        def fn():
            x2, g2 = x.reshape(-1, shape[-1]), g.reshape(-1, out)
            y = x2 @ w.T + b
            return y, g2 @ w, g2.T @ x2, g2.sum(axis=0)
    else:
        torch = pytest.importorskip("torch")
        _, tl = _twins("Linear", in_features=shape[-1], out_features=out)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        gt = torch.from_numpy(g)
        fn = lambda: _torch_step(tl, xt, gt)  # noqa: E731
    measure(f"linear fwd+bwd {_name(shape)}->{out}", impl, fn)


# ------------------------------------------------- training (issue 3, section 5)

@pytest.mark.parametrize("impl", ["numq", "torch"])
def test_train_digits_cnn_8_epochs(measure, impl):
    """Train tests/layers/test_training_digits.py's CNN for 8 epochs (Adam, batches of 32,
    1347 training images of 8x8); each round starts again from the same initial weights.
    Added by the loss/optim owner; self-contained so this file's helpers stay untouched."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import numq
    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    g = np.random.default_rng(0)
    nq = L.Sequential(L.Conv2d(1, 8, 3, padding=1, generator=g), L.ReLU(), L.MaxPool2d(2),
                      L.Conv2d(8, 16, 3, padding=1, generator=g), L.ReLU(), L.Flatten(),
                      L.Linear(256, 10, generator=g))
    init = {k: v.copy() for k, v in nq.state_dict().items()}
    perms = [np.random.default_rng(e).permutation(len(Xtr)) for e in range(8)]
    batches = [p[i:i + 32] for p in perms for i in range(0, len(p), 32)]
    if impl == "numq":
        loss_fn = L.CrossEntropyLoss()

        def fn():
            nq.load_state_dict(init)
            nq.train()
            opt = numq.optim.Adam(nq.parameters(), lr=1e-2)
            for idx in batches:
                loss_fn(nq(Xtr[idx]), ytr[idx])
                opt.zero_grad()
                nq.backward(loss_fn.backward())
                opt.step()
    else:
        torch = pytest.importorskip("torch")
        tm = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, padding=1),
                                 torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 10))
        tinit = {k: torch.from_numpy(v) for k, v in init.items()}
        Xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)
        tbatches = [torch.from_numpy(b) for b in batches]
        loss_t = torch.nn.CrossEntropyLoss()

        def fn():
            tm.load_state_dict(tinit)
            tm.train()
            opt = torch.optim.Adam(tm.parameters(), lr=1e-2)
            for idx in tbatches:
                loss = loss_t(tm(Xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    measure("train digits CNN 8 epochs (1347 8x8 images, batch 32, Adam)", impl, fn)
