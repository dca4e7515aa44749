"""Losses and optimizers against PyTorch 2.13.

Losses: forward value and input gradient against torch autograd in float32, rtol 1e-4
(numq sums in another order than torch's kernels, so float32 sums differ in the last
bits). Optimizers: several steps on float32 parameters, rtol 1e-6 (numq reproduces the
single-tensor CPU update term by term, including where torch fuses a multiply-add).
"""
import copy
import zlib

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.layers.functional as F

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-4, 1e-6


def _t(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


def _compare_loss(nq_loss, th_loss, x, target, grad_output):
    """numq module vs torch module: loss value and d(loss . grad_output)/d input."""
    got = nq_loss(x, target)
    gx = nq_loss.backward(grad_output)
    xt = _t(x, True)
    lt = th_loss(xt, _t(target))
    lt.backward(_t(np.asarray(grad_output, np.float32)) if lt.ndim else None)
    if lt.ndim == 0:  # torch's scalar backward uses 1.0; scale for grad_output
        xt.grad *= float(grad_output)
    assert np.shape(got) == tuple(lt.shape)
    assert np.asarray(got).dtype == np.float32 and gx.dtype == np.float32
    np.testing.assert_allclose(got, lt.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=RTOL, atol=ATOL)


SHAPES = [(7,), (16, 10), (4, 5, 3), (2, 4, 3, 5)]


def _batch(shape):
    return () if len(shape) == 1 else (shape[0],) + shape[2:]


def _grad_output(rng, loss_shape, reduction):
    if reduction == "none":
        return rng.standard_normal(loss_shape).astype(np.float32)
    return 1.0 if rng.random() < 0.5 else 0.37


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, ignore_index, label_smoothing",
                         [(False, -100, 0.0), (True, -100, 0.0), (False, 1, 0.0),
                          (False, -100, 0.15), (True, 2, 0.3)])
def test_cross_entropy_class_indices(shape, reduction, weighted, ignore_index, label_smoothing):
    rng = np.random.default_rng(zlib.crc32(repr((shape, reduction, weighted)).encode()))
    C = shape[0] if len(shape) == 1 else shape[1]
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    t = rng.integers(0, C, _batch(shape))
    if ignore_index >= 0 and t.ndim:
        t.reshape(-1)[::4] = ignore_index
    w = rng.uniform(0.2, 2.0, C).astype(np.float32) if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    th = torch.nn.CrossEntropyLoss(weight=None if w is None else _t(w), **kw)
    _compare_loss(L.CrossEntropyLoss(weight=w, **kw), th, x, t,
                  _grad_output(rng, _batch(shape), reduction))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted, label_smoothing", [(False, 0.0), (True, 0.0), (True, 0.2)])
def test_cross_entropy_probabilities(shape, reduction, weighted, label_smoothing):
    rng = np.random.default_rng(len(shape) * 7 + len(reduction))
    C = shape[0] if len(shape) == 1 else shape[1]
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    p = rng.random(shape).astype(np.float32)
    p /= p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    w = rng.uniform(0.2, 2.0, C).astype(np.float32) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    th = torch.nn.CrossEntropyLoss(weight=None if w is None else _t(w), **kw)
    _compare_loss(L.CrossEntropyLoss(weight=w, **kw), th, x, p,
                  _grad_output(rng, _batch(shape), reduction))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(shape, reduction, weighted):
    rng = np.random.default_rng(len(shape) * 11 + weighted)
    C = shape[0] if len(shape) == 1 else shape[1]
    x = torch.log_softmax(_t(rng.standard_normal(shape).astype(np.float32)),
                          0 if len(shape) == 1 else 1).numpy()
    t = rng.integers(0, C, _batch(shape))
    if t.ndim:
        t.reshape(-1)[::3] = 0  # ignore_index=0 below
    w = rng.uniform(0.2, 2.0, C).astype(np.float32) if weighted else None
    kw = dict(ignore_index=0 if t.ndim else -100, reduction=reduction)
    th = torch.nn.NLLLoss(weight=None if w is None else _t(w), **kw)
    _compare_loss(L.NLLLoss(weight=w, **kw), th, x, t,
                  _grad_output(rng, _batch(shape), reduction))


@pytest.mark.parametrize("shape", [(5,), (8, 3), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(shape, reduction):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.standard_normal(shape).astype(np.float32)
    _compare_loss(L.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), x, y,
                  _grad_output(rng, shape, reduction))


def test_mse_loss_weight_functional():
    rng = np.random.default_rng(3)
    x, y, w = (rng.standard_normal((4, 6)).astype(np.float32) for _ in range(3))
    w = w * w
    xt = _t(x, True)
    lt = torch.nn.functional.mse_loss(xt, _t(y), weight=_t(w))
    lt.backward()
    np.testing.assert_allclose(F.mse_loss(x, y, weight=w), lt.item(), rtol=RTOL)
    np.testing.assert_allclose(F.mse_loss_backward(1.0, x, y, weight=w), xt.grad.numpy(),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_all_targets_ignored(label_smoothing):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = np.full(3, -100)
    ce = L.CrossEntropyLoss(label_smoothing=label_smoothing)
    xt = _t(x, True)
    lt = torch.nn.functional.cross_entropy(xt, _t(t), label_smoothing=label_smoothing)
    lt.backward()
    assert np.isnan(ce(x, t)) and torch.isnan(lt)
    np.testing.assert_array_equal(ce.backward(), xt.grad.numpy())  # zeros


# ====================================================================== optimizers
def _params(rng, dtype=np.float32):
    return [rng.standard_normal(s).astype(dtype) for s in [(6, 5), (5,), (3, 2, 2)]]


def _run_both(nq_cls, th_cls, kw, steps=12, groups=None, seed=0):
    rng = np.random.default_rng(seed)
    init = _params(rng)
    P = [L.Parameter(a) for a in init]
    T = [_t(a, True) for a in init]
    if groups is None:
        nq, th = nq_cls(P, **kw), th_cls(T, **kw)
    else:  # groups: list of (indices, overrides)
        nq = nq_cls([dict(params=[P[i] for i in idx], **o) for idx, o in groups], **kw)
        th = th_cls([dict(params=[T[i] for i in idx], **o) for idx, o in groups], **kw)
    for step in range(steps):
        for i, (p, t) in enumerate(zip(P, T)):
            if step % 5 == 4 and i == 1:  # a parameter without grad this step is skipped
                p.grad, t.grad = None, None
                continue
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, t.grad = g, _t(g.copy())
        nq.step()
        th.step()
        for p, t in zip(P, T):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=1e-7,
                                       err_msg=f"step {step}")
    return nq, th, P, T, rng


SGD_KW = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.5),
          dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
          dict(lr=0.05, momentum=0.5, weight_decay=1e-3, maximize=True)]


@pytest.mark.parametrize("kw", SGD_KW, ids=str)
def test_sgd(kw):
    _run_both(numq.optim.SGD, torch.optim.SGD, kw)


ADAM_KW = [dict(), dict(lr=0.01, betas=(0.8, 0.99)), dict(lr=0.01, weight_decay=0.1),
           dict(lr=0.01, amsgrad=True), dict(lr=0.02, eps=1e-4, maximize=True),
           dict(lr=0.01, betas=(0.2, 0.9), amsgrad=True, weight_decay=0.05)]


@pytest.mark.parametrize("kw", ADAM_KW, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam(name, kw):
    _run_both(getattr(numq.optim, name), getattr(torch.optim, name), kw)


def test_param_groups_with_overrides():
    groups = [([0, 2], {}), ([1], {"lr": 0.3, "momentum": 0.0, "weight_decay": 0.1})]
    _run_both(numq.optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9), groups=groups)
    groups = [([0], {"betas": (0.5, 0.9)}), ([1, 2], {"lr": 0.05, "amsgrad": True})]
    _run_both(numq.optim.Adam, torch.optim.Adam, dict(lr=0.01), groups=groups)


@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.05, momentum=0.9)),
                                      ("Adam", dict(lr=0.01, amsgrad=True)),
                                      ("AdamW", dict(lr=0.01))])
def test_state_dict_layout_and_torch_state_loads(name, kw):
    nq, th, P, T, rng = _run_both(getattr(numq.optim, name), getattr(torch.optim, name), kw,
                                  steps=3)
    sd_nq, sd_th = nq.state_dict(), th.state_dict()
    assert sd_nq["param_groups"][0]["params"] == sd_th["param_groups"][0]["params"]
    assert set(sd_th["param_groups"][0]) <= set(sd_nq["param_groups"][0])
    for k, v in sd_th["state"].items():
        assert set(v) == set(sd_nq["state"][k])
        for name_, val in v.items():
            np.testing.assert_allclose(np.asarray(sd_nq["state"][k][name_]),
                                       val.numpy() if hasattr(val, "numpy") else val,
                                       rtol=1e-6, atol=1e-7)
    # torch's state dict, its tensors converted to NumPy, resumes a fresh numq optimizer
    conv = {"state": {k: {n: (v.detach().numpy() if v.ndim else v.item())
                          for n, v in st.items()} for k, st in sd_th["state"].items()},
            "param_groups": copy.deepcopy(sd_th["param_groups"])}
    P2 = [L.Parameter(t.detach().numpy()) for t in T]
    nq2 = getattr(numq.optim, name)(P2, **kw)
    nq2.load_state_dict(conv)
    for _ in range(3):
        for p, t in zip(P2, T):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, t.grad = g, _t(g.copy())
        nq2.step()
        th.step()
    for p, t in zip(P2, T):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_training_step_matches_torch():
    """A whole step (model forward, loss, backward, Adam) on a hand-written linear model."""
    rng = np.random.default_rng(5)
    Wn = rng.standard_normal((4, 6)).astype(np.float32) * 0.3
    X = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    W = L.Parameter(Wn)
    Wt = _t(Wn, True)
    opt, opt_t = numq.optim.Adam([W], lr=0.05), torch.optim.Adam([Wt], lr=0.05)
    ce, ce_t = L.CrossEntropyLoss(label_smoothing=0.1), torch.nn.CrossEntropyLoss(
        label_smoothing=0.1)
    for _ in range(10):
        loss = ce(X @ W.data.T, y)
        opt.zero_grad()
        W.accumulate(ce.backward().T @ X)
        opt.step()
        lt = ce_t(_t(X) @ Wt.T, _t(y))
        opt_t.zero_grad()
        lt.backward()
        opt_t.step()
        np.testing.assert_allclose(loss, lt.item(), rtol=1e-5)
    np.testing.assert_allclose(W.data, Wt.detach().numpy(), rtol=1e-4, atol=1e-6)
