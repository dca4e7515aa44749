"""Normalization, activation, dropout and flatten layers against torch 2.13 autograd.

Same weights in both, same input: forward outputs, input gradients, parameter gradients
and running statistics must agree to rtol=1e-4 in float32. They are not bit-equal
because float sums (means, variances, gradient reductions) run in a different order in
numq (NumPy pairwise sums) and torch (vectorised / Welford); the small ``atol`` covers
entries that cancel to ~0.
"""
import numpy as np
import pytest

import numq.layers as L
import numq.layers.functional as F

torch = pytest.importorskip("torch")
tF = torch.nn.functional

RTOL, ATOL = 1e-4, 1e-5


def close(a, b, rtol=RTOL, atol=ATOL, what=""):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol, err_msg=what)


def copy_weights(nlayer, tlayer, seed=0):
    """Random torch parameters (not the default 1 / 0) loaded into numq via state_dict."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tlayer.parameters():
            p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
    nlayer.load_state_dict({k: v.numpy().copy() for k, v in tlayer.state_dict().items()})


def step(nlayer, tlayer, x, seed=1, dtype=np.float32, rtol64=1e-10):
    """One forward + backward in both; compare output, gradients and state."""
    rtol, atol = (RTOL, ATOL) if dtype == np.float32 else (rtol64, 1e-12)
    xt = torch.tensor(x, requires_grad=True)
    yt = tlayer(xt)
    y = nlayer(x)
    close(y, yt, rtol, atol, "forward")
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    if nlayer.training:
        yt.backward(torch.tensor(g))
        gi = nlayer.backward(g)
        close(gi, xt.grad, rtol, atol, "input grad")
        for name, p in tlayer.named_parameters():
            close(getattr(nlayer, name).grad, p.grad, rtol, atol, name + " grad")
    for k, v in tlayer.state_dict().items():
        close(nlayer.state_dict()[k], v, rtol, atol, k)
    return y


# --------------------------------------------------------------------- activations
ACTIVATIONS = [
    ("ReLU", (), {}), ("ReLU6", (), {}), ("LeakyReLU", (0.2,), {}), ("LeakyReLU", (), {}),
    ("ELU", (), {}), ("ELU", (0.5,), {}), ("CELU", (), {}), ("CELU", (1.7,), {}),
    ("GELU", (), {}), ("GELU", ("tanh",), {}), ("SiLU", (), {}), ("Hardswish", (), {}),
    ("Hardsigmoid", (), {}), ("Hardtanh", (), {}), ("Hardtanh", (-2.0, 3.5), {}),
    ("Sigmoid", (), {}), ("Tanh", (), {}), ("Threshold", (0.3, -1.5), {}),
    ("Softmax", (1,), {}), ("Softmax", (-1,), {}), ("LogSoftmax", (0,), {}),
    ("LogSoftmax", (2,), {}), ("Flatten", (), {}), ("Flatten", (0, 1), {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS,
                         ids=[f"{n}{a}" for n, a, _ in ACTIVATIONS])
def test_activation_forward_backward(name, args, kwargs, dtype):
    x = (np.random.default_rng(0).standard_normal((4, 5, 6)) * 4).astype(dtype)
    # include the kinks: torch's one-sided derivative choices there must match too
    x.reshape(-1)[:10] = [0.0, -3.0, 3.0, 6.0, -1.0, 1.0, -2.0, 3.5, 0.3, -0.0]
    # torch's float64 CELU / Hardsigmoid backwards round a constant (1/alpha, 1/6) through
    # float32; numq's derivatives are exact, hence the looser float64 tolerance for them
    step(getattr(L, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs), x,
         dtype=dtype, rtol64=1e-6 if name in ("CELU", "Hardsigmoid") else 1e-10)


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 88.0, -88.0, 104.0,
                    -104.0, 3.0, -3.0, 6.0, 1e-40], np.float32)
ELEMENTWISE = ["relu", "relu6", "leaky_relu", "elu", "celu", "gelu", "silu", "hardswish",
               "hardsigmoid", "hardtanh", "sigmoid", "tanh"]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_special_values(name):
    """NaN / inf / huge / tiny inputs: same values and gradients as torch (NaNs as NaNs)."""
    x = SPECIAL
    # torch's float32 erf loses digits where 1 + erf(x) cancels (x = -3: 1e-4 relative)
    # and gives gelu(inf) = NaN: compare GELU with torch in float64, on finite inputs
    tdt = torch.float64 if name == "gelu" else torch.float32
    if name == "gelu":
        x = x[np.isfinite(x)]
    xt = torch.tensor(x, dtype=tdt, requires_grad=True)
    yt = getattr(tF, name)(xt)
    y = getattr(F, name)(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, yt.detach().float().numpy(), rtol=1e-6, atol=0,
                               equal_nan=True)
    g = np.linspace(-2, 2, x.size).astype(np.float32)
    yt.backward(torch.tensor(g, dtype=tdt))
    saved = y if name in ("relu", "sigmoid", "tanh") else x  # these take the output
    gi = getattr(F, name + "_backward")(g, saved)
    np.testing.assert_allclose(gi, xt.grad.float().numpy(), rtol=2e-6, atol=0, equal_nan=True)


def test_threshold_and_softmax_special_values():
    x = torch.tensor(SPECIAL)
    np.testing.assert_array_equal(F.threshold(SPECIAL, 0.0, 7.0), tF.threshold(x, 0.0, 7.0))
    row = np.array([[0.0, -np.inf, 3.0], [1e30, 1.0, -1e30]], np.float32)
    close(F.softmax(row, 1), tF.softmax(torch.tensor(row), 1), 1e-6, 0)
    close(F.log_softmax(row, 1), tF.log_softmax(torch.tensor(row), 1), 1e-6, 0)


@pytest.mark.parametrize("name,kw", [("relu", {}), ("relu6", {}), ("leaky_relu", {}),
                                     ("elu", {"alpha": 0.5}), ("celu", {}), ("silu", {}),
                                     ("hardswish", {}), ("hardsigmoid", {}),
                                     ("hardtanh", {"min_val": -0.5}),
                                     ("threshold", {"threshold": 0.1, "value": 2.0})])
def test_functional_inplace_like_torch(name, kw):
    x = np.random.default_rng(2).standard_normal(20).astype(np.float32) * 4
    xt = torch.tensor(x)
    x2 = x.copy()
    out = getattr(F, name)(x2, inplace=True, **kw)
    getattr(tF, name)(xt, inplace=True, **kw)
    assert out is x2
    close(x2, xt, 1e-6, 0)


def test_softmax_dtype_and_implicit_dim():
    x = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(np.float32)
    for fn, tfn in ((F.softmax, tF.softmax), (F.log_softmax, tF.log_softmax)):
        y = fn(x, 1, dtype=np.float64)
        assert y.dtype == np.float64
        close(y, tfn(torch.tensor(x), 1, dtype=torch.float64), 1e-12, 1e-14)
        with pytest.warns(UserWarning):
            a = fn(x)
        with pytest.warns(UserWarning):
            b = tfn(torch.tensor(x))
        close(a, b)


@pytest.mark.parametrize("layer", [
    "ReLU()", "ReLU(True)", "ReLU6(inplace=True)", "LeakyReLU()", "LeakyReLU(0.2, True)",
    "ELU(2.0, True)", "CELU()", "GELU()", "GELU('tanh')", "SiLU(True)", "Hardswish(True)",
    "Hardsigmoid()", "Hardtanh()", "Hardtanh(-2, 3, True)", "Sigmoid()", "Tanh()",
    "Threshold(0.1, 20)", "Threshold(0.1, 20, True)", "Softmax()", "Softmax(1)",
    "LogSoftmax(dim=0)", "Dropout()", "Dropout(0.2, True)", "Flatten()", "Flatten(0, 2)",
    "BatchNorm1d(3)", "BatchNorm2d(4, momentum=None, affine=False)",
    "BatchNorm3d(2, eps=1e-3, track_running_stats=False, bias=False)", "InstanceNorm1d(3)",
    "InstanceNorm2d(3, affine=True, track_running_stats=True)", "LayerNorm(5)",
    "LayerNorm([2, 3], bias=False)", "LayerNorm(4, elementwise_affine=False)",
    "GroupNorm(2, 4)", "GroupNorm(1, 3, affine=False, eps=0.1)",
])
def test_repr_matches_torch(layer):
    assert repr(eval("L." + layer)) == repr(eval("torch.nn." + layer))


# ---------------------------------------------------------------------- batch norm
BN_CASES = [
    ("BatchNorm1d", {}, (6, 3)),
    ("BatchNorm1d", {}, (4, 3, 7)),
    ("BatchNorm1d", {"momentum": None}, (4, 3, 7)),
    ("BatchNorm1d", {"affine": False}, (5, 3)),
    ("BatchNorm1d", {"bias": False, "eps": 1e-3}, (4, 3, 5)),
    ("BatchNorm2d", {}, (3, 4, 5, 6)),
    ("BatchNorm2d", {"track_running_stats": False}, (3, 4, 5, 6)),
    ("BatchNorm2d", {"momentum": 0.5, "affine": False, "track_running_stats": False},
     (2, 4, 3, 3)),
    ("BatchNorm3d", {}, (2, 3, 3, 4, 5)),
    ("BatchNorm3d", {"momentum": None}, (2, 3, 2, 3, 4)),
]


@pytest.mark.parametrize("name,kw,shape", BN_CASES,
                         ids=[f"{n}-{kw}-{len(s)}d" for n, kw, s in BN_CASES])
def test_batchnorm_train_then_eval(name, kw, shape):
    n, t = getattr(L, name)(4 if shape[1] == 4 else 3, **kw), \
        getattr(torch.nn, name)(4 if shape[1] == 4 else 3, **kw)
    copy_weights(n, t)
    rng = np.random.default_rng(4)
    for i in range(3):  # several steps: running statistics and num_batches_tracked
        step(n, t, (rng.standard_normal(shape) * (i + 1) + i).astype(np.float32), seed=i)
    n.eval()
    t.eval()
    step(n, t, rng.standard_normal(shape).astype(np.float32))
    assert list(n.state_dict()) == list(t.state_dict())


def test_batchnorm_float64_end_to_end():
    n, t = L.BatchNorm2d(3).double(), torch.nn.BatchNorm2d(3).double()
    copy_weights(n, t)
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 4))
    for _ in range(2):
        step(n, t, x, dtype=np.float64)


def test_batchnorm_shared_layer_saved_swap():
    """One BatchNorm applied twice (bn(bn(x))): swapping _saved gives torch's gradients."""
    n, t = L.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    copy_weights(n, t)
    x = np.random.default_rng(6).standard_normal((5, 3, 4)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = t(t(xt) * 2.0)
    z = n(x)
    s1 = n._saved
    y = n(z * 2.0)
    s2 = n._saved
    close(y, yt)
    g = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    n._saved = s2
    gz = n.backward(g) * 2.0
    n._saved = s1
    close(n.backward(gz), xt.grad)
    close(n.weight.grad, t.weight.grad)
    close(n.bias.grad, t.bias.grad)
    close(n.running_mean, t.running_mean)
    close(n.running_var, t.running_var)
    assert int(n.num_batches_tracked) == int(t.num_batches_tracked) == 2


# ------------------------------------------------------------------- instance norm
IN_CASES = [
    ("InstanceNorm1d", {}, (4, 3, 7)),
    ("InstanceNorm1d", {"affine": True}, (3, 7)),  # unbatched
    ("InstanceNorm1d", {"track_running_stats": True, "momentum": 0.3}, (4, 3, 7)),
    ("InstanceNorm1d", {"track_running_stats": True, "momentum": None}, (4, 3, 7)),
    ("InstanceNorm2d", {"affine": True, "track_running_stats": True}, (2, 3, 4, 5)),
    ("InstanceNorm2d", {"affine": True, "bias": False}, (3, 4, 5)),  # unbatched
    ("InstanceNorm3d", {"affine": True}, (2, 3, 2, 3, 4)),
]


@pytest.mark.parametrize("name,kw,shape", IN_CASES,
                         ids=[f"{n}-{kw}-{len(s)}d" for n, kw, s in IN_CASES])
def test_instancenorm_train_then_eval(name, kw, shape):
    n, t = getattr(L, name)(3, **kw), getattr(torch.nn, name)(3, **kw)
    copy_weights(n, t)
    rng = np.random.default_rng(8)
    for i in range(2):
        step(n, t, (rng.standard_normal(shape) * 2 + i).astype(np.float32), seed=i)
    n.eval()
    t.eval()
    step(n, t, rng.standard_normal(shape).astype(np.float32))


# ------------------------------------------------------------- layer / group norm
@pytest.mark.parametrize("shape_arg,kw,shape", [
    (6, {}, (4, 6)), (6, {}, (2, 3, 6)), ([5, 6], {"bias": False}, (3, 5, 6)),
    ([5, 6], {"elementwise_affine": False, "eps": 1e-2}, (2, 3, 5, 6)), (64, {}, (16, 64)),
])
def test_layernorm(shape_arg, kw, shape):
    n, t = L.LayerNorm(shape_arg, **kw), torch.nn.LayerNorm(shape_arg, **kw)
    copy_weights(n, t)
    x = (np.random.default_rng(9).standard_normal(shape) * 3 + 1).astype(np.float32)
    step(n, t, x)
    n.eval()
    t.eval()
    step(n, t, x)


@pytest.mark.parametrize("groups,channels,kw,shape", [
    (2, 4, {}, (3, 4, 5)), (1, 4, {}, (2, 4, 3, 3)), (4, 4, {"affine": False}, (2, 4, 6)),
    (3, 6, {"bias": False, "eps": 1e-3}, (2, 6, 2, 2, 3)), (1, 4, {}, (3, 4)),
])
def test_groupnorm(groups, channels, kw, shape):
    n, t = L.GroupNorm(groups, channels, **kw), torch.nn.GroupNorm(groups, channels, **kw)
    copy_weights(n, t)
    x = (np.random.default_rng(10).standard_normal(shape) * 2 - 1).astype(np.float32)
    step(n, t, x)


# ------------------------------------------------------------------- functional
def test_functional_batch_norm_and_instance_norm_running_updates():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    for fn, tfn, train_kw in ((F.batch_norm, tF.batch_norm, "training"),
                              (F.instance_norm, tF.instance_norm, "use_input_stats")):
        rm, rv = rng.standard_normal(3).astype(np.float32), rng.uniform(1, 2, 3).astype(np.float32)
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        for train in (True, False):
            kw = {train_kw: train, "momentum": 0.2, "eps": 1e-3}
            y = fn(x, rm, rv, w, b, **kw)
            yt = tfn(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), **kw)
            close(y, yt)
            close(rm, trm)
            close(rv, trv)


def test_functional_norm_backward_helpers():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    g = rng.standard_normal((3, 4, 5)).astype(np.float32)
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    rm, rv = rng.standard_normal(4).astype(np.float32), rng.uniform(1, 2, 4).astype(np.float32)
    cases = [
        (lambda *a: tF.batch_norm(a[0], torch.tensor(rm), torch.tensor(rv), a[1], a[2],
                                  training=False),
         lambda: F.batch_norm_backward(g, x, rm, rv, w, b, training=False)),
        (lambda *a: tF.batch_norm(a[0], None, None, a[1], a[2], training=True),
         lambda: F.batch_norm_backward(g, x, None, None, w, b, training=True)),
        (lambda *a: tF.instance_norm(a[0], None, None, a[1], a[2]),
         lambda: F.instance_norm_backward(g, x, None, None, w, b)),
        (lambda *a: tF.group_norm(a[0], 2, a[1], a[2]),
         lambda: F.group_norm_backward(g, x, 2, w, b)),
    ]
    for tfn, nfn in cases:
        xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
        tfn(xt, wt, bt).backward(torch.tensor(g))
        gi, gw, gb = nfn()
        close(gi, xt.grad)
        close(gw, wt.grad)
        close(gb, bt.grad)
    lw = rng.standard_normal(5).astype(np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(lw, requires_grad=True)
    tF.layer_norm(xt, (5,), wt, None).backward(torch.tensor(g))
    gi, gw, gb = F.layer_norm_backward(g, x, 5, lw, None)
    close(gi, xt.grad)
    close(gw, wt.grad)
    assert gb is None


# ------------------------------------------------------------------ dropout, flatten
def test_dropout_matches_torch_given_the_same_mask():
    """numq's masks come from NumPy; with numq's mask, torch's formula gives the same values."""
    x = np.random.default_rng(13).standard_normal((30, 40)).astype(np.float32)
    d = L.Dropout(0.25, generator=0)
    y = d(x)
    mask = d._saved
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * torch.tensor(mask, dtype=torch.float32) / (1 - 0.25)  # torch: input * mask/(1-p)
    close(y, yt, 1e-6, 0)
    g = np.ones_like(x)
    yt.backward(torch.tensor(g))
    close(d.backward(g), xt.grad, 1e-6, 0)
    d.eval()
    t = torch.nn.Dropout(0.25).eval()
    close(d(x), t(torch.tensor(x)), 0, 0)
    for p in (0.0, 1.0):
        close(L.Dropout(p)(x), torch.nn.Dropout(p)(torch.tensor(x)), 0, 0)


def test_torch_state_dict_loads_into_numq_twin():
    """Interop: a torch model's state_dict (as NumPy) drives the numq twin to torch's outputs."""
    tmodel = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.GELU(), torch.nn.GroupNorm(3, 3),
                                 torch.nn.Hardswish(), torch.nn.Flatten(),
                                 torch.nn.LayerNorm(48), torch.nn.Dropout(0.5),
                                 torch.nn.LogSoftmax(1))
    nmodel = L.Sequential(L.BatchNorm2d(3), L.GELU(), L.GroupNorm(3, 3), L.Hardswish(),
                          L.Flatten(), L.LayerNorm(48), L.Dropout(0.5), L.LogSoftmax(1))
    rng = np.random.default_rng(14)
    tmodel.train()
    for _ in range(2):  # non-trivial running statistics
        tmodel(torch.tensor(rng.standard_normal((4, 3, 4, 4)).astype(np.float32)))
    copy_weights(nmodel, tmodel)
    tmodel.eval()
    nmodel.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    close(nmodel(x), tmodel(torch.tensor(x)))
