"""Losses (CrossEntropyLoss, NLLLoss, MSELoss) and optimizers (SGD, Adam, AdamW), no torch.

Loss values are compared with the slow float64 references in ``reference_loss_optim``;
gradients with central finite differences in float64; optimizer updates with the
element-by-element algorithms of torch's documentation.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest

import numq
import numq.layers.functional as F
from numq.layers import CrossEntropyLoss, Module, MSELoss, NLLLoss, Parameter
from numq.optim import SGD, Adam, AdamW, Optimizer

import reference_loss_optim as ref

RNG = np.random.default_rng(0)


def _logits(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _targets(shape, C, seed=1, ignore=None):
    t = np.random.default_rng(seed).integers(0, C, shape)
    if ignore is not None and t.size:
        t.reshape(-1)[:: 3] = ignore
    return t


def _probs(shape, seed=2):
    p = np.random.default_rng(seed).random(shape)
    axis = 0 if len(shape) == 1 else 1
    return p / p.sum(axis=axis, keepdims=True)


def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def _check_loss_grad(loss_fn, x, target, grad_output=None):
    """``loss_fn.backward`` against finite differences of ``sum(loss * grad_output)``."""
    loss = loss_fn(x, target)
    go = 1.0 if grad_output is None else grad_output
    g = loss_fn.backward(go)
    assert g.shape == x.shape and g.dtype == x.dtype
    num = _fd(lambda: float(np.sum(loss_fn(x, target) * go)), x)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)
    return loss


CE_SHAPES = [(5,), (6, 4), (3, 4, 5), (2, 3, 2, 3)]
REDUCTIONS = ["mean", "sum", "none"]


# ------------------------------------------------------------------ cross entropy
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"ignore_index": 1},
                                  {"label_smoothing": 0.2},
                                  {"weight": True, "ignore_index": 2, "label_smoothing": 0.3}],
                         ids=["plain", "weight", "ignore", "smooth", "all"])
def test_cross_entropy_class_indices(shape, reduction, opts):
    C = shape[0] if len(shape) == 1 else shape[1]
    x = _logits(shape)
    batch = () if len(shape) == 1 else (shape[0],) + shape[2:]
    ii = opts.get("ignore_index", -100)
    t = _targets(batch, C, ignore=ii if "ignore_index" in opts else None)
    w = np.linspace(0.5, 2.0, C) if opts.get("weight") else None
    kw = dict(weight=w, ignore_index=ii, reduction=reduction,
              label_smoothing=opts.get("label_smoothing", 0.0))
    expect = ref.cross_entropy(x, t, **kw)
    got = F.cross_entropy(x, t, **kw)
    np.testing.assert_allclose(got, expect, rtol=1e-12)  # nan == nan when all are ignored
    if np.isnan(got).any():
        return
    go = RNG.standard_normal(np.shape(got)) if reduction == "none" else 0.7
    _check_loss_grad(CrossEntropyLoss(**kw), x, t, go)
    np.testing.assert_allclose(F.cross_entropy_backward(go, x, t, **kw),
                               _last_grad(CrossEntropyLoss(**kw), x, t, go), rtol=1e-12)


def _last_grad(loss_fn, x, t, go):
    loss_fn(x, t)
    return loss_fn.backward(go)


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [{}, {"weight": True, "label_smoothing": 0.25}],
                         ids=["plain", "weight_smooth"])
def test_cross_entropy_probabilities(shape, reduction, opts):
    C = shape[0] if len(shape) == 1 else shape[1]
    x, t = _logits(shape), _probs(shape)
    w = np.linspace(0.5, 2.0, C) if opts.get("weight") else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=opts.get("label_smoothing", 0.0))
    np.testing.assert_allclose(F.cross_entropy(x, t, **kw), ref.cross_entropy(x, t, **kw),
                               rtol=1e-12)
    go = RNG.standard_normal(np.shape(F.cross_entropy(x, t, **kw))) \
        if reduction == "none" else 1.0
    _check_loss_grad(CrossEntropyLoss(**kw), x, t, go)


def test_cross_entropy_matches_log_softmax_nll():
    x, t = _logits((7, 5)), _targets(7, 5)
    lp = x - np.log(np.exp(x).sum(1, keepdims=True))
    np.testing.assert_allclose(F.cross_entropy(x, t), F.nll_loss(lp, t), rtol=1e-14)


def test_cross_entropy_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-3e38, 3e38, 0.0]], np.float32)
    loss = F.cross_entropy(x, np.array([1, 1]), reduction="none")
    np.testing.assert_allclose(loss, [1e4, 0.0])
    g = CrossEntropyLoss()
    g(x, np.array([0, 1]))
    assert np.isfinite(g.backward()).all()


def test_cross_entropy_ignored_everything_gives_nan_like_torch():
    with np.errstate(all="raise"):  # no floating-point warnings either
        loss = F.cross_entropy(_logits((3, 4)), np.full(3, -100))
        assert np.isnan(loss)
        assert F.cross_entropy(_logits((3, 4)), np.full(3, -100), reduction="sum") == 0
        assert np.isnan(F.cross_entropy(_logits((0, 4)), np.zeros(0, np.int64)))


def test_loss_dtypes():
    x32 = _logits((4, 3), np.float32)
    t = _targets(4, 3)
    loss = F.cross_entropy(x32, t)
    assert isinstance(loss, np.float32)
    assert F.cross_entropy(x32.astype(np.float64), t).dtype == np.float64
    assert F.cross_entropy(x32.astype(np.float16), t).dtype == np.float32
    assert F.cross_entropy(x32, t, reduction="none").dtype == np.float32
    ce = CrossEntropyLoss(weight=np.ones(3))  # a float64 weight does not promote float32
    ce(x32, t)
    assert ce.backward().dtype == np.float32
    assert isinstance(F.mse_loss(x32, x32 * 2), np.float32)
    assert isinstance(F.nll_loss(x32, t), np.float32)
    assert float(loss) == loss.item()


# ------------------------------------------------------------------------- NLL loss
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(shape, reduction, weighted):
    C = shape[0] if len(shape) == 1 else shape[1]
    x = _logits(shape)
    batch = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = _targets(batch, C, ignore=None if shape == (5,) else 0)
    w = np.linspace(2.0, 0.5, C) if weighted else None
    kw = dict(weight=w, ignore_index=0, reduction=reduction)
    np.testing.assert_allclose(F.nll_loss(x, t, **kw), ref.nll_loss(x, t, **kw), rtol=1e-12)
    go = RNG.standard_normal(batch) if reduction == "none" else 1.5
    _check_loss_grad(NLLLoss(**kw), x, t, go)
    np.testing.assert_allclose(F.nll_loss_backward(go, x, t, **kw),
                               _last_grad(NLLLoss(**kw), x, t, go), rtol=1e-12)


# ------------------------------------------------------------------------- MSE loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    x, y = _logits((3, 4, 2)), _logits((3, 4, 2), seed=5)
    expect = {"none": (x - y) ** 2, "sum": ((x - y) ** 2).sum(),
              "mean": ((x - y) ** 2).mean()}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction=reduction), expect, rtol=1e-14)
    go = RNG.standard_normal(x.shape) if reduction == "none" else 2.0
    _check_loss_grad(MSELoss(reduction=reduction), x, y, go)
    np.testing.assert_allclose(F.mse_loss_backward(go, x, y, reduction),
                               _last_grad(MSELoss(reduction=reduction), x, y, go), rtol=1e-14)


def test_mse_loss_weight_and_broadcast():
    x, y, w = _logits((3, 4)), _logits((3, 4), seed=5), _logits((3, 4), seed=6) ** 2
    np.testing.assert_allclose(F.mse_loss(x, y, weight=w), ((x - y) ** 2 * w).sum() / w.sum())
    num = _fd(lambda: float(F.mse_loss(x, y, weight=w)), x)
    np.testing.assert_allclose(F.mse_loss_backward(1.0, x, y, weight=w), num, rtol=1e-6)
    # broadcasting warns (as torch) and the gradient sums back to the input's shape
    xs = _logits((3, 1))
    with pytest.warns(UserWarning, match="different to the input size"):
        loss = F.mse_loss(xs, y)
    np.testing.assert_allclose(loss, ((xs - y) ** 2).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        num = _fd(lambda: float(F.mse_loss(xs, y)), xs)
        g = F.mse_loss_backward(1.0, xs, y)
    assert g.shape == xs.shape
    np.testing.assert_allclose(g, num, rtol=1e-6)


def test_scalar_grad_output_broadcasts_for_reduction_none():
    x, y = _logits((3, 4)), _logits((3, 4), seed=5)
    m = MSELoss(reduction="none")
    m(x, y)
    np.testing.assert_allclose(m.backward(), 2 * (x - y))


def test_legacy_size_average_reduce():
    x, t = _logits((4, 3)), _targets(4, 3)
    with pytest.warns(DeprecationWarning):
        assert CrossEntropyLoss(size_average=False).reduction == "sum"
    with pytest.warns(DeprecationWarning):
        assert NLLLoss(reduce=False).reduction == "none"
    with pytest.warns(DeprecationWarning):
        np.testing.assert_allclose(F.cross_entropy(x, t, size_average=False),
                                   F.cross_entropy(x, t, reduction="sum"))


# --------------------------------------------------------------------- loss modules
def test_loss_module_attributes_state_and_repr():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    ce = CrossEntropyLoss(weight=w, ignore_index=3, label_smoothing=0.1, reduction="sum")
    assert (ce.ignore_index, ce.label_smoothing, ce.reduction) == (3, 0.1, "sum")
    assert list(ce.state_dict()) == ["weight"] and ce.weight is not w  # a buffer, copied
    assert list(CrossEntropyLoss().state_dict()) == [] and CrossEntropyLoss().weight is None
    assert list(NLLLoss(weight=w).state_dict()) == ["weight"]
    assert repr(ce) == "CrossEntropyLoss()" and repr(MSELoss()) == "MSELoss()"


def test_loss_backward_consumes_saved_and_eval_saves_nothing():
    x, t = _logits((4, 3)), _targets(4, 3)
    for loss_fn in (CrossEntropyLoss(), NLLLoss(), MSELoss()):
        tgt = x * 0.5 if isinstance(loss_fn, MSELoss) else t
        with pytest.raises(RuntimeError, match=rf"{type(loss_fn).__name__}.backward\(\) called"):
            loss_fn.backward()
        loss_fn(x, tgt)
        loss_fn.backward()
        with pytest.raises(RuntimeError, match="called twice"):
            loss_fn.backward()
        loss_fn.eval()
        loss_fn(x, tgt)
        assert loss_fn._saved is None


def test_loss_in_a_training_step_with_a_custom_model():
    # the training step, with a hand-written model: logistic regression
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] + 2 * X[:, 1] > 0).astype(np.int64)

    class LogReg(Module):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(np.zeros((2, 2)))
            self.bias = Parameter(np.zeros(2))

        def forward(self, x):
            if self.training:
                self._saved = x
            return x @ self.weight.data.T + self.bias.data

        def backward(self, g):
            x = self._take_saved()
            self.weight.accumulate(g.T @ x)
            self.bias.accumulate(g.sum(0))
            return g @ self.weight.data

    model, loss_fn = LogReg(), CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    first = None
    for _ in range(50):
        out = model(X)
        loss = loss_fn(out, y)
        first = loss if first is None else first
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    assert loss < 0.2 * first
    assert (model(X).argmax(1) == y).mean() > 0.97


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), reduction="avg"),
     ValueError, "^reduction"),
    (lambda: F.cross_entropy(np.zeros((2, 3), np.int64), np.zeros(2, np.int64)),
     TypeError, "^input"),
    (lambda: F.cross_entropy(np.zeros(()), np.zeros((), np.int64)), ValueError, "^input"),
    (lambda: F.cross_entropy(np.zeros((2, 0)), np.zeros(2, np.int64)), ValueError, "^input"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(3, np.int64)), ValueError, "^target"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, "^target"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, -1])), ValueError, "^target"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([True, False])), TypeError, "^target"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "^target"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), weight=np.ones(2)),
     ValueError, "^weight"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), weight=np.ones(3, int)),
     TypeError, "^weight"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), label_smoothing=1.5),
     ValueError, "^label_smoothing"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros(2, np.int64), ignore_index=1.0),
     TypeError, "^ignore_index"),
    (lambda: F.nll_loss(np.zeros((2, 3)), np.zeros((2, 3))), TypeError, "^target"),
    (lambda: F.nll_loss(np.zeros((2, 3)), np.array([5, 0])), ValueError, "^target"),
    (lambda: F.mse_loss(np.zeros((2, 3)), np.zeros((2, 4))), ValueError, "^target"),
    (lambda: F.mse_loss(np.zeros(3, np.int32), np.zeros(3)), TypeError, "^input"),
    (lambda: F.mse_loss(np.zeros(3), np.zeros(3), weight=np.ones(2)), ValueError, "^weight"),
    (lambda: CrossEntropyLoss(reduction="avg"), ValueError, "^reduction"),
    (lambda: CrossEntropyLoss(label_smoothing=-0.1), ValueError, "^label_smoothing"),
    (lambda: NLLLoss(weight=np.array([1, 2])), TypeError, "^weight"),
], ids=lambda v: "" if callable(v) or isinstance(v, type) else v)
def test_loss_bad_input(call, exc, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=match):
            call()


def test_loss_bad_grad_output():
    x, t = _logits((4, 3)), _targets(4, 3)
    ce = CrossEntropyLoss()
    ce(x, t)
    with pytest.raises(ValueError, match="^grad_output"):
        ce.backward(np.ones(4))
    ce = CrossEntropyLoss(reduction="none")
    ce(x, t)
    with pytest.raises(ValueError, match="^grad_output"):
        ce.backward(np.ones(3))


# ====================================================================== optimizers
def _problem(dtype=np.float64, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in init] for _ in range(steps)]
    return init, grads


def _run(opt_cls, init, grads, **kw):
    params = [Parameter(p) for p in init]
    opt = opt_cls(params, **kw)
    for gs in grads:
        opt.zero_grad()
        for p, g in zip(params, gs):
            p.accumulate(g)
        opt.step()
    return params, opt


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9),
             dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
             dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
             dict(lr=0.1, momentum=0.5, maximize=True)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_reference(kw):
    init, grads = _problem()
    params, _ = _run(SGD, init, grads, **kw)
    for p, e in zip(params, ref.sgd(init, grads, **kw)):
        np.testing.assert_allclose(p.data, e, rtol=1e-13, atol=1e-15)


ADAM_CASES = [dict(), dict(lr=0.01, betas=(0.5, 0.9)), dict(lr=0.01, weight_decay=0.1),
              dict(lr=0.01, amsgrad=True), dict(lr=0.01, eps=1e-3, maximize=True),
              dict(lr=0.01, betas=(0.3, 0.99))]  # 1 - beta1 > 0.5: lerp's other branch


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_matches_reference(cls, kw):
    init, grads = _problem()
    params, _ = _run(cls, init, grads, **kw)
    full = dict(kw)
    if cls is AdamW:
        full.setdefault("weight_decay", 1e-2)
    expect = ref.adam(init, grads, decoupled=cls is AdamW, **full)
    for p, e in zip(params, expect):
        np.testing.assert_allclose(p.data, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_optimizer_keeps_float32(opt_cls):
    init, grads = _problem(np.float32)
    params, opt = _run(opt_cls, init, grads, lr=0.1, weight_decay=0.1,
                       **({"momentum": 0.9} if opt_cls is SGD else {}))
    expect = (ref.sgd(init, grads, lr=0.1, weight_decay=0.1, momentum=0.9) if opt_cls is SGD
              else ref.adam(init, grads, lr=0.1, weight_decay=0.1))
    for p, e in zip(params, expect):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, e, rtol=1e-5, atol=1e-6)
    for st in opt.state.values():
        assert all(v.dtype == np.float32 for v in st.values() if isinstance(v, np.ndarray))


def test_step_updates_in_place_and_skips_params_without_grad():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    data = a.data
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert a.data is data and not np.allclose(a.data, 1)
    np.testing.assert_array_equal(b.data, 1)
    assert b not in opt.state and opt.state[a]["step"] == 1.0


def test_param_groups_and_defaults():
    a, b, c = (Parameter(np.zeros(2)) for _ in range(3))
    opt = SGD([{"params": [a, b]}, {"params": c, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert len(opt.param_groups) == 2
    g0, g1 = opt.param_groups
    assert g0["lr"] == 0.1 and g0["momentum"] == 0 and g1["lr"] == 0.5 and g1["params"] == [c]
    assert set(g0) >= {"params", "lr", "momentum", "dampening", "weight_decay", "nesterov",
                       "maximize"}
    for p in (a, b, c):
        p.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, -0.1)
    np.testing.assert_allclose(c.data, -0.5)
    opt.param_groups[0]["lr"] = 1.0  # schedulers change group hyper-parameters in place
    opt.step()
    np.testing.assert_allclose(a.data, -1.1)
    d = Parameter(np.zeros(1))
    opt.add_param_group({"params": [d], "lr": 3.0})
    assert opt.param_groups[2]["momentum"] == 0
    # generators and named parameters
    assert len(SGD((p for p in [a, b])).param_groups[0]["params"]) == 2
    named = SGD([("w", a), ("b", b)]).param_groups[0]
    assert named["param_names"] == ["w", "b"] and named["params"] == [a, b]
    assert "SGD (" in repr(opt) and "Parameter Group 1" in repr(opt)


def test_optimizer_accepts_module_parameters():
    m = Module()
    m.p = Parameter(np.ones(2))  # parameters() is a generator
    opt = Adam(m.parameters())
    assert opt.param_groups[0]["params"] == [m.p]


@pytest.mark.parametrize("call, exc, match", [
    (lambda p: SGD(p[0]), TypeError, "iterable"),
    (lambda p: SGD([]), ValueError, "empty parameter list"),
    (lambda p: SGD(set(p)), TypeError, "ordered"),
    (lambda p: SGD([np.zeros(2)]), TypeError, "Parameter"),
    (lambda p: SGD([{"params": [p[0]]}, {"params": [p[0]]}]), ValueError, "more than one"),
    (lambda p: SGD(p, lr=-1), ValueError, "^lr"),
    (lambda p: SGD(p, lr="0.1"), TypeError, "^lr"),
    (lambda p: SGD(p, momentum=-0.1), ValueError, "^momentum"),
    (lambda p: SGD(p, weight_decay=-1), ValueError, "^weight_decay"),
    (lambda p: SGD(p, nesterov=True), ValueError, "nesterov"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda p: Adam(p, betas=(1.0, 0.9)), ValueError, r"^betas\[0\]"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), ValueError, r"^betas\[1\]"),
    (lambda p: Adam(p, betas=0.9), TypeError, "^betas"),
    (lambda p: Adam(p, eps=-1e-8), ValueError, "^eps"),
    (lambda p: AdamW(p, weight_decay=-1), ValueError, "^weight_decay"),
    (lambda p: SGD(p).add_param_group([p[0]]), TypeError, "param_group"),
    (lambda p: Optimizer(p, {"lr": numq.optim.optimizer.required}),
     ValueError, "lr"),
])
def test_optimizer_bad_arguments(call, exc, match):
    params = [Parameter(np.zeros(2)), Parameter(np.zeros(3))]
    with pytest.raises(exc, match=match):
        call(params)


def test_base_optimizer_step_not_implemented():
    with pytest.raises(TypeError, match="does not define step"):
        Optimizer([Parameter(np.zeros(1))], {}).step()


def test_zero_grad():
    a = Parameter(np.zeros(2))
    opt = SGD([a])
    a.grad = np.ones(2)
    g = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is g and not g.any()
    opt.zero_grad()
    assert a.grad is None
    opt.zero_grad()  # grads already None: nothing to do


def test_closure_is_called_and_its_loss_returned():
    a = Parameter(np.array([3.0]))
    opt = SGD([a], lr=0.25)

    def closure():
        opt.zero_grad()
        a.accumulate(2 * a.data)  # d(a^2)/da
        return float(a.data[0] ** 2)

    assert opt.step(closure) == 9.0
    np.testing.assert_allclose(a.data, [1.5])


@pytest.mark.parametrize("opt_cls, kw", [(SGD, dict(lr=0.1, momentum=0.9)),
                                         (Adam, dict(lr=0.01, amsgrad=True)),
                                         (AdamW, dict(lr=0.01))])
def test_state_dict_round_trip_resumes_identically(opt_cls, kw):
    init, grads = _problem(np.float32, steps=8)
    # reference: 8 uninterrupted steps
    full, _ = _run(opt_cls, init, grads, **kw)
    # 4 steps, save (plain dicts and arrays), restore into a fresh optimizer, 4 more
    params, opt = _run(opt_cls, init, grads[:4], **kw)
    sd = copy.deepcopy(opt.state_dict())
    assert set(sd) == {"state", "param_groups"} and sd["param_groups"][0]["params"] == [0, 1]
    assert all(isinstance(k, int) for k in sd["state"])
    sd = pickle.loads(pickle.dumps(sd))  # plain data: picklable, no Parameter inside
    params2 = [Parameter(p.data) for p in params]
    opt2 = opt_cls(params2, **kw)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["params"] == params2
    for g in grads[4:]:
        for p, gg in zip(params2, g):
            p.grad = gg.copy()
        opt2.step()
    for p, e in zip(params2, full):
        np.testing.assert_array_equal(p.data, e.data)


def test_load_state_dict_casts_and_rejects_mismatches():
    a = Parameter(np.zeros(2, np.float32))
    opt = SGD([a], lr=0.1, momentum=0.9)
    sd = {"state": {0: {"momentum_buffer": np.ones(2, np.float64)}},
          "param_groups": [{"lr": 0.3, "momentum": 0.9, "dampening": 0, "weight_decay": 0,
                            "nesterov": False, "maximize": False, "params": [0]}]}
    opt.load_state_dict(sd)
    assert opt.state[a]["momentum_buffer"].dtype == np.float32
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["params"] == [a]
    sd["state"][0]["momentum_buffer"][...] = 5  # loading copies
    assert opt.state[a]["momentum_buffer"][0] == 1
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    bad = copy.deepcopy(sd)
    bad["param_groups"][0]["params"] = [0, 1]
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(sd)
    bad["state"][0]["momentum_buffer"] = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    with pytest.raises(TypeError, match="state_dict"):
        opt.load_state_dict({"param_groups": []})


def test_adamw_stays_decoupled_after_load():
    a = Parameter(np.zeros(2))
    opt = AdamW([a])
    sd = opt.state_dict()
    sd["param_groups"][0]["decoupled_weight_decay"] = False
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_optimizers_exported():
    assert set(numq.optim.__all__) == {"Optimizer", "SGD", "Adam", "AdamW"}
    assert numq.optim.SGD is SGD
