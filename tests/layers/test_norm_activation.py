"""Normalization, activation, dropout and flatten layers (no torch needed).

Gradients are checked against central finite differences in float64; forward results
against the slow references in ``reference_norm_activation.py``.
"""
import copy

import numpy as np
import pytest

import numq
import numq.layers as L
import numq.layers.functional as F
from reference_norm_activation import (batch_norm_ref, batch_stats_ref, gelu_ref,
                                       group_norm_ref, instance_norm_ref, layer_norm_ref,
                                       softmax_ref)

KINKS = (0.0, -3.0, 3.0, 6.0, -2.0, 0.5, -1.0, 1.0)


def away_from_kinks(x, gap=0.05):
    """Move samples off the points where an activation's derivative jumps."""
    for k in KINKS:
        near = np.abs(x - k) < gap
        x[near] += 2 * gap
    return x


def numeric_grad(f, arr, h=1e-6):
    """Central differences of scalar ``f()`` with respect to every entry of ``arr`` (in place)."""
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return g


def check_gradients(layer, x, rtol=1e-5, atol=1e-7):
    """float64 finite-difference check of the input and every parameter gradient."""
    layer.double()
    x = np.array(x, dtype=np.float64)
    r = np.random.default_rng(7).standard_normal(layer(x).shape)
    layer.zero_grad()
    y = layer(x)
    gi = layer.backward(r)
    assert gi.dtype == np.float64 and gi.shape == x.shape

    def loss():
        return float(np.sum(layer(x) * r))

    np.testing.assert_allclose(gi, numeric_grad(loss, x), rtol=rtol, atol=atol)
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float64, name
        np.testing.assert_allclose(p.grad, numeric_grad(loss, p.data), rtol=rtol, atol=atol,
                                   err_msg=name)
    return y


ACTIVATIONS = [
    lambda: L.ReLU(), lambda: L.ReLU6(), lambda: L.LeakyReLU(0.2), lambda: L.ELU(1.3),
    lambda: L.CELU(0.8), lambda: L.GELU(), lambda: L.GELU("tanh"), lambda: L.SiLU(),
    lambda: L.Hardswish(), lambda: L.Hardsigmoid(), lambda: L.Hardtanh(-2.0, 3.0),
    lambda: L.Sigmoid(), lambda: L.Tanh(), lambda: L.Threshold(0.5, -2.0),
    lambda: L.Softmax(1), lambda: L.Softmax(-1), lambda: L.LogSoftmax(0),
    lambda: L.Flatten(1, 2),
]
ACT_IDS = ["relu", "relu6", "leaky", "elu", "celu", "gelu", "gelu_tanh", "silu", "hardswish",
           "hardsigmoid", "hardtanh", "sigmoid", "tanh", "threshold", "softmax1", "softmax-1",
           "logsoftmax0", "flatten"]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=ACT_IDS)
def test_activation_gradients(make):
    x = away_from_kinks(np.random.default_rng(0).uniform(-5, 7, (2, 3, 4)))
    check_gradients(make(), x)


NORMS = [
    (lambda: L.BatchNorm1d(3), (5, 3)),
    (lambda: L.BatchNorm1d(3, affine=False), (2, 3, 4)),
    (lambda: L.BatchNorm1d(3, bias=False, momentum=None), (2, 3, 4)),
    (lambda: L.BatchNorm2d(2), (3, 2, 2, 3)),
    (lambda: L.BatchNorm2d(2, track_running_stats=False), (3, 2, 2, 3)),
    (lambda: L.BatchNorm3d(2), (2, 2, 2, 2, 2)),
    (lambda: L.InstanceNorm1d(3), (2, 3, 5)),
    (lambda: L.InstanceNorm1d(3, affine=True), (3, 5)),  # unbatched
    (lambda: L.InstanceNorm2d(2, affine=True, track_running_stats=True), (2, 2, 3, 3)),
    (lambda: L.InstanceNorm3d(2, affine=True, bias=False), (2, 2, 2, 2, 2)),
    (lambda: L.LayerNorm(5), (3, 5)),
    (lambda: L.LayerNorm([3, 4], bias=False), (2, 3, 4)),
    (lambda: L.LayerNorm(4, elementwise_affine=False), (2, 3, 4)),
    (lambda: L.GroupNorm(2, 4), (2, 4, 3)),
    (lambda: L.GroupNorm(1, 3, affine=False), (2, 3, 2, 2)),
    (lambda: L.GroupNorm(3, 3), (2, 3, 2, 2)),
]
NORM_IDS = ["bn1d_2d", "bn1d_noaffine", "bn1d_nobias_cma", "bn2d", "bn2d_notrack", "bn3d",
            "in1d", "in1d_unbatched", "in2d_track", "in3d_nobias", "ln", "ln2_nobias",
            "ln_noaffine", "gn", "gn1_noaffine", "gn_per_channel"]


def _randomise(layer, seed=3):
    rng = np.random.default_rng(seed)
    for p in layer.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1, 1], p.shape)
    return layer


@pytest.mark.parametrize("make,shape", NORMS, ids=NORM_IDS)
def test_norm_gradients(make, shape):
    x = np.random.default_rng(1).standard_normal(shape) * 2 + 0.5
    check_gradients(_randomise(make()), x, rtol=1e-5, atol=1e-6)


def test_norm_forward_matches_reference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 3, 5)) * 3 + 1
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    bn = L.BatchNorm2d(6).double()
    bn.weight.data[...] = w
    bn.bias.data[...] = b
    np.testing.assert_allclose(bn(x), batch_norm_ref(x, w, b), rtol=1e-10, atol=1e-12)
    inn = L.InstanceNorm2d(6, affine=True).double()
    inn.weight.data[...] = w
    inn.bias.data[...] = b
    np.testing.assert_allclose(inn(x), instance_norm_ref(x, w, b), rtol=1e-10, atol=1e-12)
    gn = L.GroupNorm(3, 6).double()
    gn.weight.data[...] = w
    gn.bias.data[...] = b
    np.testing.assert_allclose(gn(x), group_norm_ref(x, 3, w, b), rtol=1e-10, atol=1e-12)
    ln = L.LayerNorm([3, 5], eps=1e-3).double()
    lw, lb = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    ln.weight.data[...] = lw
    ln.bias.data[...] = lb
    np.testing.assert_allclose(ln(x), layer_norm_ref(x, (3, 5), lw, lb, 1e-3), rtol=1e-10,
                               atol=1e-12)


def test_gelu_exact_matches_erf_reference():
    x = np.linspace(-9, 9, 401)
    np.testing.assert_allclose(F.gelu(x), gelu_ref(x), rtol=1e-12, atol=1e-15)
    x32 = x.astype(np.float32)
    out = F.gelu(x32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, gelu_ref(x32), rtol=1e-6, atol=1e-7)


def test_softmax_matches_reference_and_is_stable():
    x = np.random.default_rng(4).standard_normal((3, 4, 5)) * 10
    for d in (0, 1, 2, -1):
        np.testing.assert_allclose(F.softmax(x, d), softmax_ref(x, d), rtol=1e-12)
        np.testing.assert_allclose(F.log_softmax(x, d), np.log(softmax_ref(x, d)), rtol=1e-10,
                                   atol=1e-12)
    big = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    ls = F.log_softmax(big, 1)
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls, [[0.0, -1000.0, -2000.0]])
    np.testing.assert_allclose(F.softmax(big, 1), [[1.0, 0.0, 0.0]])


def test_softmax_implicit_dim_warns_like_torch():
    x = np.zeros((2, 3), np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = L.Softmax()(x)
    np.testing.assert_allclose(y, np.full((2, 3), 1 / 3))  # dim 1 for 2-d input
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(F.log_softmax(np.zeros((2, 3, 4)), None),
                                   np.full((2, 3, 4), np.log(0.5)))  # dim 0 for 3-d


def test_softmax_dtype_argument():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    y = F.softmax(x, 1, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.sum(1), 1.0)


# ----------------------------------------------------------------- dtype handling
@pytest.mark.parametrize("make", ACTIVATIONS[:14], ids=ACT_IDS[:14])
def test_activation_dtypes(make):
    layer = make()
    for dt, out_dt in ((np.float32, np.float32), (np.float64, np.float64),
                       (np.float16, np.float32)):
        x = np.linspace(-4, 4, 12).astype(dt).reshape(3, 4)
        y = layer(x)
        assert y.dtype == out_dt
        g = layer.backward(np.ones(y.shape, np.float64))  # grads follow the forward dtype
        assert g.dtype == out_dt
    with pytest.raises(TypeError, match="float"):
        layer(np.arange(4))


def test_norm_compute_dtype_follows_parameters():
    bn = L.BatchNorm1d(3)
    x64 = np.random.default_rng(0).standard_normal((4, 3))
    assert bn(x64).dtype == np.float32  # float input of another dtype: cast to float32
    assert bn.backward(np.ones((4, 3))).dtype == np.float32
    bn.double()
    assert bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    y = bn(x64.astype(np.float32))
    assert y.dtype == np.float64
    assert bn.backward(np.ones((4, 3), np.float32)).dtype == np.float64
    assert bn.weight.grad.dtype == np.float64
    assert L.BatchNorm1d(3, dtype=np.float64).weight.dtype == np.float64
    assert L.LayerNorm(3)(x64).dtype == np.float32
    assert L.GroupNorm(1, 3, affine=False)(x64).dtype == np.float64  # no params: input's
    with pytest.raises(TypeError, match="float"):
        bn(np.ones((4, 3), np.int32))
    with pytest.raises(TypeError, match="float"):
        L.LayerNorm(3)(np.ones((4, 3), bool))


# ----------------------------------------------------------- train / eval, running stats
def test_batchnorm_running_stats_momentum():
    rng = np.random.default_rng(5)
    bn = L.BatchNorm2d(3, momentum=0.3).double()
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 5)) * (step + 1) + step
        bn(x)
        m, v = batch_stats_ref(x)  # running var uses the unbiased batch variance
        rm = 0.7 * rm + 0.3 * m
        rv = 0.7 * rv + 0.3 * v
        assert int(bn.num_batches_tracked) == step + 1
    np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
    bn.eval()
    bn._saved = None  # the last training forward's (never consumed)
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(bn(x), batch_norm_ref(x, mean=rm, var=rv), rtol=1e-10)
    assert bn._saved is None and int(bn.num_batches_tracked) == 3


def test_batchnorm_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(6)
    bn = L.BatchNorm1d(2, momentum=None).double()
    means, vars_ = [], []
    for _ in range(4):
        x = rng.standard_normal((6, 2, 3)) * 2 + rng.standard_normal()
        bn(x)
        m, v = batch_stats_ref(x)
        means.append(m)
        vars_.append(v)
    # the first update has factor 1 (replacing the initial 0 / 1), then 1/2, 1/3, 1/4
    np.testing.assert_allclose(bn.running_mean, np.mean(means, 0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean(vars_, 0), rtol=1e-12)


def test_batchnorm_without_running_stats():
    bn = L.BatchNorm1d(3, track_running_stats=False)
    assert bn.running_mean is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    bn.eval()  # eval still normalises with the batch statistics
    np.testing.assert_allclose(bn(x), batch_norm_ref(x), rtol=1e-5, atol=1e-6)
    assert bn._saved is None


def test_instance_norm_running_stats():
    rng = np.random.default_rng(8)
    inn = L.InstanceNorm1d(2, track_running_stats=True, momentum=0.5).double()
    x = rng.standard_normal((3, 2, 6)) * 2 + 1
    inn(x)
    m = x.mean(axis=2).mean(axis=0)
    v = x.var(axis=2, ddof=1).mean(axis=0)  # batch-mean of per-instance unbiased variances
    np.testing.assert_allclose(inn.running_mean, 0.5 * m, rtol=1e-12)
    np.testing.assert_allclose(inn.running_var, 0.5 + 0.5 * v, rtol=1e-12)
    assert int(inn.num_batches_tracked) == 0  # torch never advances it for instance norm
    inn.eval()
    y = inn(x)
    np.testing.assert_allclose(y, batch_norm_ref(x, mean=inn.running_mean, var=inn.running_var),
                               rtol=1e-10)
    untracked = L.InstanceNorm1d(2)
    untracked.eval()  # without running stats, eval uses the instance statistics
    np.testing.assert_allclose(untracked(x.astype(np.float32)), instance_norm_ref(x),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: L.BatchNorm1d(3), lambda: L.LayerNorm(3),
                                  lambda: L.GroupNorm(1, 3), lambda: L.InstanceNorm1d(3),
                                  lambda: L.ReLU(), lambda: L.Softmax(1), lambda: L.Dropout(),
                                  lambda: L.Flatten()])
def test_eval_mode_saves_nothing(make):
    layer = make().eval()
    layer(np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
          if not isinstance(layer, L.LayerNorm) else np.ones((2, 3), np.float32))
    assert layer._saved is None
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(np.ones((4, 3, 5), np.float32))


@pytest.mark.parametrize("make", [lambda: L.BatchNorm1d(3), lambda: L.Tanh(),
                                  lambda: L.Dropout(0.3), lambda: L.Flatten()])
def test_backward_needs_forward_and_runs_once(make):
    layer = make()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        layer.backward(np.ones_like(x))
    layer(x)
    layer.backward(np.ones((4, 3), np.float32))
    with pytest.raises(RuntimeError, match="called twice"):
        layer.backward(np.ones((4, 3), np.float32))


# ------------------------------------------------------------ shared-layer (_saved) rule
@pytest.mark.parametrize("make,shape", [
    (lambda: L.BatchNorm1d(3), (4, 3)), (lambda: L.InstanceNorm1d(3, affine=True), (2, 3, 4)),
    (lambda: L.LayerNorm(4), (2, 3, 4)), (lambda: L.GroupNorm(2, 4), (2, 4, 3)),
    (lambda: L.GELU(), (2, 3, 4)), (lambda: L.Softmax(1), (2, 3, 4)),
    (lambda: L.Dropout(0.4, generator=0), (2, 3, 4)), (lambda: L.Flatten(), (2, 3, 4)),
], ids=["bn", "in", "ln", "gn", "gelu", "softmax", "dropout", "flatten"])
def test_shared_layer_saved_swap(make, shape):
    """Layer called twice in one forward; restoring each call's _saved gives each call's grads."""
    rng = np.random.default_rng(9)
    layer = _randomise(make()).double()
    x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
    ref1, ref2 = copy.deepcopy(layer), None
    y1 = layer(x1)
    s1 = layer._saved
    ref2 = copy.deepcopy(layer)  # its state (generator, running stats) as before call 2
    y2 = layer(x2)
    s2 = layer._saved
    r1, r2 = rng.standard_normal(y1.shape), rng.standard_normal(y2.shape)
    layer._saved = s2
    g2 = layer.backward(r2)
    layer._saved = s1
    g1 = layer.backward(r1)
    np.testing.assert_allclose(ref1(x1), y1)
    np.testing.assert_allclose(g1, ref1.backward(r1), rtol=1e-12)
    np.testing.assert_allclose(ref2(x2), y2)
    np.testing.assert_allclose(g2, ref2.backward(r2), rtol=1e-12)
    for (name, p), p1, p2 in zip(layer.named_parameters(), ref1.parameters(),
                                 ref2.parameters()):
        np.testing.assert_allclose(p.grad, p1.grad + p2.grad, rtol=1e-12, err_msg=name)


def test_sequential_chain_with_repeated_activation():
    act = L.Tanh()
    model = L.Sequential(L.BatchNorm1d(4), act, L.LayerNorm(4), act, L.GELU(), L.Dropout(0.0))
    x = np.random.default_rng(10).standard_normal((5, 4))
    check_gradients(_randomise(model), x)


# ---------------------------------------------------------------------- dropout
def test_dropout_train_eval_and_mask():
    x = np.random.default_rng(0).standard_normal((200, 50)).astype(np.float32) + 5
    d = L.Dropout(0.3, generator=1)
    y = d(x)
    mask = d._saved
    assert mask.dtype == np.bool_
    assert abs(mask.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y, np.where(mask, x / np.float32(0.7), 0), rtol=1e-6)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(d.backward(g), np.where(mask, g / np.float32(0.7), 0), rtol=1e-6)
    y2 = d(x)
    assert not np.array_equal(y, y2)  # an int seed is turned into one generator, not reused
    assert np.array_equal(L.Dropout(0.3, generator=1)(x), y)  # same seed, same first mask
    d.eval()
    assert d(x) is x


def test_dropout_global_generator_and_edge_probabilities():
    x = np.ones((10, 10), np.float32)
    numq.manual_seed(123)
    a = L.Dropout(0.5)(x)
    numq.manual_seed(123)
    assert np.array_equal(L.Dropout(0.5)(x), a)
    np.testing.assert_array_equal(F.dropout(x, 0.0), x)
    d = L.Dropout(1.0)
    np.testing.assert_array_equal(d(x), 0)
    np.testing.assert_array_equal(d.backward(x), 0)
    np.testing.assert_array_equal(F.dropout(x, 0.9, training=False), x)
    out, mask = F.dropout(x, 0.5, generator=3, return_mask=True)
    np.testing.assert_array_equal(F.dropout_backward(x, mask, 0.5), out)


# ---------------------------------------------------------------------- flatten
def test_flatten_shapes_and_backward():
    x = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    for (s, e), shape in {(1, -1): (2, 60), (0, -1): (120,), (0, 1): (6, 4, 5),
                          (2, 3): (2, 3, 20), (-2, -2): (2, 3, 4, 5)}.items():
        f = L.Flatten(s, e)
        y = f(x)
        assert y.shape == shape
        assert f.backward(y).shape == x.shape
    assert L.Flatten()(np.ones((3, 4), np.int64)).dtype == np.int64  # a reshape: any dtype


# ------------------------------------------------------------------ state_dict
def test_state_dict_keys_and_missing_num_batches_tracked():
    bn = L.BatchNorm2d(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    sd = {k: np.array(v) for k, v in bn.state_dict().items()}
    sd["running_mean"] = np.arange(3.0)
    del sd["num_batches_tracked"]  # older checkpoints lack it: torch keeps the count
    bn.num_batches_tracked[...] = 7
    bn.load_state_dict(sd)
    np.testing.assert_array_equal(bn.running_mean, [0, 1, 2])
    assert int(bn.num_batches_tracked) == 7
    assert list(L.BatchNorm1d(3, affine=False).state_dict()) == [
        "running_mean", "running_var", "num_batches_tracked"]
    assert list(L.InstanceNorm2d(3).state_dict()) == []
    assert list(L.LayerNorm(3, bias=False).state_dict()) == ["weight"]
    bn.reset_parameters()
    assert int(bn.num_batches_tracked) == 0 and np.all(bn.running_var == 1)


def test_reprs():
    assert repr(L.BatchNorm1d(3)) == ("BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, "
                                      "bias=True, track_running_stats=True)")
    assert repr(L.LayerNorm([2, 3])) == ("LayerNorm((2, 3), eps=1e-05, elementwise_affine=True,"
                                         " bias=True)")
    assert repr(L.LeakyReLU(0.2, True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(L.Hardswish(True)) == "Hardswish()"
    assert repr(L.Dropout()) == "Dropout(p=0.5, inplace=False)"


# ------------------------------------------------------------ functional extras
def test_functional_inplace_writes_into_input():
    x = np.array([-1.0, 0.5, 7.0], np.float32)
    out = F.relu6(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(x, [0, 0.5, 6])
    h = np.array([-1.0, 2.0], np.float16)
    assert F.relu(h, inplace=True) is h and h[0] == 0
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        F.relu(ro, inplace=True)


def test_functional_batch_norm_updates_buffers_in_place():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 2)).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    F.batch_norm(x, rm, rv, training=True, momentum=1.0)
    m, v = batch_stats_ref(x)
    np.testing.assert_allclose(rm, m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, v, rtol=1e-5)
    y = F.batch_norm(x, rm, rv)  # eval: normalise with the running statistics
    np.testing.assert_allclose(y, batch_norm_ref(x, mean=m, var=v), rtol=1e-4, atol=1e-5)


def test_functional_backward_helpers_match_layers():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 5))
    g = rng.standard_normal((3, 4, 5))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    gi, gw, gb = F.group_norm_backward(g, x, 2, w, b)
    gn = L.GroupNorm(2, 4).double()
    gn.weight.data[...] = w
    gn.bias.data[...] = b
    gn(x)
    np.testing.assert_allclose(gn.backward(g), gi, rtol=1e-12)
    np.testing.assert_allclose(gn.weight.grad, gw, rtol=1e-12)
    np.testing.assert_allclose(gn.bias.grad, gb, rtol=1e-12)
    # eval-mode batch norm backward (running statistics are constants)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    gi, gw, gb = F.batch_norm_backward(g, x, rm, rv, w, None, training=False)
    assert gb is None
    np.testing.assert_allclose(gi, g * (w / np.sqrt(rv + 1e-5))[:, None], rtol=1e-12)
    f = lambda: float(np.sum(F.batch_norm(x, rm, rv, w) * g))  # noqa: E731
    np.testing.assert_allclose(gi, numeric_grad(f, x), rtol=1e-6, atol=1e-8)


def test_zero_dim_and_empty_inputs():
    z = np.array(-1.5)
    assert float(F.relu(z)) == 0.0 and float(F.elu(z)) == pytest.approx(np.expm1(-1.5))
    assert float(F.softmax(z, 0)) == 1.0
    e = np.zeros((0, 3), np.float32)
    assert L.LayerNorm(3)(e).shape == (0, 3)
    assert F.softmax(e, 1).shape == (0, 3)
    assert L.GroupNorm(1, 3)(np.zeros((0, 3, 2), np.float32)).shape == (0, 3, 2)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize("layer,shape", [
    (L.BatchNorm1d(3), (2, 3, 4, 5)), (L.BatchNorm2d(3), (2, 3, 4)),
    (L.BatchNorm3d(3), (2, 3, 4, 5)), (L.InstanceNorm1d(3), (3,)),
    (L.InstanceNorm2d(3), (2, 3, 4, 5, 6)), (L.InstanceNorm3d(3), (3, 4, 5)),
])
def test_bad_rank(layer, shape):
    with pytest.raises(ValueError, match=r"expected .*D input \(got \d+D input\)"):
        layer(np.ones(shape, np.float32))


def test_bad_channel_count():
    with pytest.raises(ValueError, match="running_mean must have shape"):
        L.BatchNorm2d(3)(np.ones((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="weight must have shape"):
        L.BatchNorm1d(3, track_running_stats=False)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="match num_features"):
        L.InstanceNorm1d(3, affine=True)(np.ones((2, 4, 5), np.float32))
    with pytest.warns(UserWarning, match="does not match num_features"):
        L.InstanceNorm1d(3)(np.ones((2, 4, 5), np.float32))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        L.GroupNorm(2, 4)(np.ones((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="weight must have shape"):
        L.GroupNorm(2, 4)(np.ones((2, 6, 3), np.float32))
    with pytest.raises(ValueError, match="normalized_shape"):
        L.LayerNorm([3, 4])(np.ones((2, 4, 3), np.float32))


def test_bad_batch_for_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        L.BatchNorm1d(3)(np.ones((1, 3), np.float32))
    bn = L.BatchNorm1d(3)
    with pytest.raises(ValueError):
        bn(np.ones((1, 3), np.float32))
    assert int(bn.num_batches_tracked) == 0  # a failed forward does not count
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        L.InstanceNorm2d(3)(np.ones((2, 3, 1, 1), np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="divisible"):
        L.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="approximate"):
        L.GELU("fast")
    with pytest.raises(ValueError, match="dropout probability"):
        L.Dropout(1.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        L.Dropout("0.5")
    with pytest.raises(ValueError, match="greater than min_val"):
        L.Hardtanh(1.0, 1.0)
    with pytest.raises(ValueError, match="alpha must be nonzero"):
        L.CELU(0.0)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        L.BatchNorm1d(3, eps=-1.0)
    with pytest.raises(TypeError, match="momentum"):
        L.BatchNorm1d(3, momentum="x")
    with pytest.raises(TypeError, match="num_features"):
        L.BatchNorm1d(3.0)
    with pytest.raises(ValueError, match="device"):
        L.LayerNorm(3, device="cuda")
    with pytest.raises(TypeError, match="dtype"):
        L.LayerNorm(3, dtype=np.int32)
    with pytest.raises(TypeError, match="normalized_shape"):
        L.LayerNorm("3")
    with pytest.raises(TypeError, match="dim"):
        L.Softmax(1.5)
    with pytest.raises(TypeError, match="start_dim"):
        L.Flatten(1.0)
    with pytest.warns(FutureWarning, match="min_value"):
        assert L.Hardtanh(min_value=-2.0).min_val == -2.0


def test_bad_functional_arguments():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="dim must be in"):
        F.softmax(x, 2)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, "erf")
    with pytest.raises(ValueError, match="running_mean and running_var must be given"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(TypeError, match="running_mean must be a float numpy array"):
        F.batch_norm(x, [0.0, 0.0, 0.0], None, training=True)
    with pytest.raises(TypeError, match="num_groups"):
        F.group_norm(x, 1.0)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        F.instance_norm(x)
    with pytest.raises(ValueError, match="grad_output must have the shape"):
        F.relu_backward(np.ones(3), x)
    with pytest.raises(TypeError, match="grad_output must be a float"):
        F.tanh_backward(np.ones((2, 3), np.int64), x)
    with pytest.raises(ValueError, match="start_dim .* cannot come after"):
        L.Flatten(2, 1)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="end_dim must be in"):
        L.Flatten(0, 3)(np.ones((2, 3, 4)))
    layer = L.LayerNorm(3)
    layer(x)
    with pytest.raises(ValueError, match="grad_output must have the shape"):
        layer.backward(np.ones((3, 2), np.float32))

