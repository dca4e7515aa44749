"""Embedding, EmbeddingBag, MultiheadAttention and scaled_dot_product_attention without
torch: slow references, float64 finite-difference gradients, shapes, init, train/eval,
the shared-layer ``_saved`` rule, bad input."""
import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numq
import numq.layers as nl
import numq.layers.functional as F
from numq.kernels import embedding_float as K

import reference_embedding_attention as ref


# ----------------------------------------------------------- finite differences
def _fd_check(loss_and_grads, arrays, rtol=1e-6, atol=1e-8, max_elems=40):
    """``loss_and_grads(backward)`` runs forward (and backward when asked) and returns
    ``(loss, [grad per array] or None)``; gradients are compared with central differences
    (on at most ``max_elems`` evenly spread elements of each array)."""
    _, grads = loss_and_grads(True)
    eps = 1e-6
    for arr, g in zip(arrays, grads):
        flat = arr.reshape(-1)
        assert np.shares_memory(flat, arr)
        picks = np.unique(np.linspace(0, flat.size - 1, min(flat.size, max_elems)).astype(int))
        for j in picks:
            old = flat[j]
            flat[j] = old + eps
            lp, _ = loss_and_grads(False)
            flat[j] = old - eps
            lm, _ = loss_and_grads(False)
            flat[j] = old
            num = (lp - lm) / (2 * eps)
            np.testing.assert_allclose(np.asarray(g).reshape(-1)[j], num, rtol=rtol, atol=atol)


def _probe(shape, seed=3):
    return np.random.default_rng(seed).standard_normal(shape)


# ====================================================================== Embedding
def test_embedding_init_shapes_repr():
    e = nl.Embedding(10, 4, padding_idx=-2, generator=0)
    assert e.weight.shape == (10, 4) and e.weight.dtype == np.float32
    assert e.padding_idx == 8 and np.all(e.weight.data[8] == 0)
    np.testing.assert_array_equal(e.weight.data, nl.Embedding(10, 4, padding_idx=8,
                                                               generator=0).weight.data)
    assert abs(float(nl.Embedding(2000, 50, generator=1).weight.data.std()) - 1) < 0.02
    assert list(e.state_dict()) == ["weight"]
    assert repr(e) == "Embedding(10, 4, padding_idx=8)"
    assert repr(nl.Embedding(5, 3, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True)) == \
        "Embedding(5, 3, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True)"
    assert nl.Embedding(3, 2, dtype=np.float64).weight.dtype == np.float64
    x = np.array([[1, 2, 3], [8, 0, 9]])
    out = e(x)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, e.weight.data[x])
    np.testing.assert_array_equal(F.embedding(x.astype(np.int32), e.weight), out)
    assert e(np.array(5)).shape == (4,)


def test_embedding_backward_matches_scatter_and_fd():
    rng = np.random.default_rng(0)
    e = nl.Embedding(7, 3, padding_idx=2, scale_grad_by_freq=True, generator=0).double()
    x = rng.integers(0, 7, (4, 5))
    x[0, 0] = 2
    g = rng.standard_normal((4, 5, 3))
    e(x)
    assert e.backward(g) is None
    counts = np.bincount(x.ravel(), minlength=7)
    want = np.zeros((7, 3))
    for i, r in enumerate(x.ravel()):
        if r != 2:
            want[r] += g.reshape(-1, 3)[i] / counts[r]
    np.testing.assert_allclose(e.weight.grad, want, rtol=1e-12)
    assert np.all(e.weight.grad[2] == 0)
    np.testing.assert_allclose(F.embedding_backward(g, x, 7, padding_idx=2,
                                                    scale_grad_by_freq=True), want, rtol=1e-12)

    def run(backward):
        e.weight.grad = None
        out = e(x)
        loss = float((out * g).sum())
        if not backward:
            e._saved = None
            return loss, None
        e.backward(g)
        return loss, [e.weight.grad]

    e.scale_grad_by_freq = False
    e.padding_idx = None
    _fd_check(run, [e.weight.data])


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_embedding_max_norm_renormalises_in_place(norm_type):
    w = _probe((6, 4), 1) * 3
    e = nl.Embedding(6, 4, max_norm=1.5, norm_type=norm_type, _weight=w.copy())
    out = e(np.array([0, 2, 2, 5]))
    norms = np.linalg.norm(e.weight.data.astype(np.float64), ord=norm_type, axis=1)
    before = np.linalg.norm(w, ord=norm_type, axis=1)
    for r in range(6):
        if r in (0, 2, 5) and before[r] > 1.5:
            assert norms[r] == pytest.approx(1.5, rel=1e-5)
        else:
            np.testing.assert_array_equal(e.weight.data[r], w[r])  # _weight's dtype is kept
    np.testing.assert_array_equal(out, e.weight.data[[0, 2, 2, 5]])


def test_embedding_from_pretrained_freeze_and_padding_row_kept():
    w = _probe((5, 3))
    e = nl.Embedding.from_pretrained(w, padding_idx=1)
    np.testing.assert_array_equal(e.weight.data, w)  # padding row not zeroed
    assert e.weight.requires_grad is False
    e(np.array([1, 2]))
    e.backward(np.ones((2, 3)))
    assert e.weight.grad is None
    e2 = nl.Embedding.from_pretrained(w.astype(np.float32), freeze=False)
    e2(np.array([1, 2]))
    e2.backward(np.ones((2, 3)))
    assert e2.weight.grad.sum() == 6
    b = nl.EmbeddingBag.from_pretrained(w, mode="sum")
    assert b.weight.requires_grad is False and b.mode == "sum"
    np.testing.assert_allclose(b(np.array([[0, 1]])), (w[0] + w[1])[None])


def test_embedding_train_eval_and_shared_layer():
    e = nl.Embedding(6, 3, generator=0)
    e.eval()
    e(np.array([1, 2]))
    assert e._saved is None
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        e.backward(np.ones((2, 3)))
    e.train()
    x1, x2 = np.array([1, 2, 2]), np.array([[2, 5]])
    g1, g2 = _probe((3, 3)), _probe((1, 2, 3), 4)
    e(x1)
    s1 = e._saved
    e(x2)
    s2 = e._saved
    e._saved = s2
    e.backward(g2)
    e._saved = s1
    e.backward(g1)
    want = np.zeros((6, 3))
    np.add.at(want, x1, g1)
    np.add.at(want, x2.ravel(), g2.reshape(-1, 3))
    np.testing.assert_allclose(e.weight.grad, want, rtol=1e-6)
    # the saved indices are a private copy
    x = np.array([1, 1])
    e.zero_grad()
    e(x)
    x[:] = 4
    e.backward(np.ones((2, 3)))
    assert e.weight.grad[1, 0] == 2 and e.weight.grad[4, 0] == 0


def test_embedding_double_end_to_end():
    e = nl.Embedding(4, 2, generator=0).double()
    out = e(np.array([0, 3]))
    assert out.dtype == np.float64
    e.backward(np.ones((2, 2), np.float32))
    assert e.weight.grad.dtype == np.float64


def test_embedding_bad_input():
    e = nl.Embedding(5, 3, generator=0)
    with pytest.raises(TypeError, match="input must be an integer array"):
        e(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="input must be an integer array"):
        e(np.array([True]))
    with pytest.raises(IndexError, match=r"\[0, 4\]"):
        e(np.array([0, 5]))
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(np.array([-1]), e.weight)
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        nl.Embedding(5, 3, sparse=True)
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        F.embedding(np.array([1]), e.weight, sparse=True)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nl.Embedding(5, 3, padding_idx=5)
    with pytest.raises(TypeError, match="padding_idx must be an int"):
        nl.Embedding(5, 3, padding_idx=1.0)
    with pytest.raises(ValueError, match="weight must be 2-d"):
        F.embedding(np.array([1]), np.zeros(5))
    with pytest.raises(TypeError, match="weight must be a float32 or float64"):
        F.embedding(np.array([1]), np.zeros((5, 2), np.int64))
    with pytest.raises(ValueError, match="num_embeddings must be > 0"):
        nl.Embedding(0, 3)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nl.Embedding(5, 3, max_norm=-1.0)
    with pytest.raises(ValueError, match="_weight must have shape"):
        nl.Embedding(5, 3, _weight=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="embeddings must be 2-d"):
        nl.Embedding.from_pretrained(np.zeros(3))
    e(np.array([1, 2]))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        e.backward(np.ones((3, 3)))
    with pytest.raises(TypeError, match="grad_output must be a float array"):
        F.embedding_backward(np.ones((2, 3), np.int64), np.array([1, 2]), 5)


# =================================================================== EmbeddingBag
def _bags_from(inp, offsets, include_last_offset):
    if inp.ndim == 2:
        return [list(r) for r in inp]
    ends = list(offsets[1:]) + ([] if include_last_offset else [len(inp)])
    return [list(inp[s:e]) for s, e in zip(offsets, ends)]


FORMS = {
    "2d": (np.array([[1, 4, 4, 0], [3, 3, 2, 7], [5, 6, 1, 1]]), None, False),
    "offsets": (np.array([1, 4, 4, 0, 3, 3, 2, 7, 5, 6, 1]), np.array([0, 3, 3, 7]), False),
    "last_offset": (np.array([1, 4, 4, 0, 3, 3, 2, 7, 5, 6]), np.array([0, 2, 2, 9, 10]), True),
}


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("padding_idx", [None, 4])
def test_embedding_bag_matches_reference(mode, form, padding_idx):
    inp, offsets, ilo = FORMS[form]
    w = _probe((8, 5), 2)
    m = nl.EmbeddingBag(8, 5, mode=mode, include_last_offset=ilo, padding_idx=padding_idx,
                        _weight=w)
    out = m(inp, offsets)
    bags = _bags_from(inp, offsets, ilo)
    want, grad_fn = ref.embedding_bag_ref(m.weight.data, bags, mode, padding_idx=padding_idx)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    g = _probe(out.shape, 5)
    assert m.backward(g) is None
    np.testing.assert_allclose(m.weight.grad, grad_fn(g)[0], rtol=1e-5, atol=1e-6)
    gw, gp = F.embedding_bag_backward(g, inp, m.weight, offsets, mode=mode,
                                      include_last_offset=ilo, padding_idx=padding_idx)
    np.testing.assert_allclose(gw, m.weight.grad, rtol=1e-6)
    assert gp is None


@pytest.mark.parametrize("form", ["2d", "offsets"])
def test_embedding_bag_per_sample_weights_reference(form):
    inp, offsets, ilo = FORMS[form]
    w = _probe((8, 5), 2)
    psw = np.random.default_rng(1).random(inp.shape)
    m = nl.EmbeddingBag(8, 5, mode="sum", padding_idx=3, _weight=w)
    out = m(inp, offsets, psw)
    bags = _bags_from(inp, offsets, ilo)
    pbags = _bags_from(psw, offsets, ilo)
    want, grad_fn = ref.embedding_bag_ref(m.weight.data, bags, "sum", pbags, padding_idx=3)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    g = _probe(out.shape, 5)
    gpsw = m.backward(g)
    gw_ref, gp_ref = grad_fn(g)
    np.testing.assert_allclose(m.weight.grad, gw_ref, rtol=1e-5, atol=1e-6)
    flat_ref = np.concatenate([np.asarray(b, float) for b in gp_ref])
    assert gpsw.shape == inp.shape
    np.testing.assert_allclose(gpsw.reshape(-1), flat_ref, rtol=1e-5, atol=1e-6)


@settings(max_examples=40)
@given(data=st.data(), mode=st.sampled_from(["sum", "mean", "max"]),
       pad=st.sampled_from([None, 0, 2]), weighted=st.booleans())
def test_embedding_bag_random_bags_property(data, mode, pad, weighted):
    n = data.draw(st.integers(0, 12))
    inp = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.int64)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    offsets = np.array([0] + cuts, np.int64)
    w = np.random.default_rng(n).standard_normal((5, 3))
    psw = np.linspace(0.5, 1.5, n) if weighted and mode == "sum" else None
    out = F.embedding_bag(inp, w, offsets, mode=mode, per_sample_weights=psw, padding_idx=pad)
    bags = _bags_from(inp, offsets, False)
    pb = None if psw is None else _bags_from(psw, offsets, False)
    want, grad_fn = ref.embedding_bag_ref(w, bags, mode, pb, padding_idx=pad)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(out.shape)
    gw, gp = F.embedding_bag_backward(g, inp, w, offsets, mode=mode, per_sample_weights=psw,
                                      padding_idx=pad)
    gw_ref, gp_ref = grad_fn(g)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-12)
    if psw is not None:
        flat = np.array([x for b in gp_ref for x in b])
        np.testing.assert_allclose(gp, flat, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_fd_gradients(mode):
    inp, offsets, _ = FORMS["offsets"]
    m = nl.EmbeddingBag(8, 3, mode=mode, padding_idx=3, generator=0).double()
    psw = np.random.default_rng(2).random(inp.shape) if mode == "sum" else None
    g = _probe((4, 3))

    def run(backward):
        m.weight.grad = None
        out = m(inp, offsets, psw)
        loss = float((out * g).sum())
        if not backward:
            m._saved = None
            return loss, None
        gp = m.backward(g)
        return loss, [m.weight.grad] + ([gp] if psw is not None else [])

    _fd_check(run, [m.weight.data] + ([psw] if psw is not None else []))


def test_embedding_bag_empty_bags_and_scale_grad_by_freq():
    m = nl.EmbeddingBag(5, 2, mode="max", _weight=_probe((5, 2)))
    out = m(np.array([1, 2]), np.array([0, 0, 2, 2]))
    np.testing.assert_array_equal(out[[0, 2, 3]], 0)
    m.backward(np.ones((4, 2)))
    assert m.weight.grad[[0, 3, 4]].sum() == 0 and m.weight.grad.sum() == 2
    # true frequencies over the whole input (torch 2.13's CPU kernel differs, pytorch#190063)
    s = nl.EmbeddingBag(4, 3, mode="sum", scale_grad_by_freq=True, _weight=np.ones((4, 3)))
    s(np.array([1, 1, 3]), np.array([0]))
    s.backward(np.ones((1, 3)))
    np.testing.assert_array_equal(s.weight.grad[:, 0], [0, 1, 0, 1])
    mm = nl.EmbeddingBag(4, 3, mode="mean", scale_grad_by_freq=True, _weight=np.ones((4, 3)))
    mm(np.array([[1, 1], [1, 2]]))
    mm.backward(np.ones((2, 3)))
    np.testing.assert_allclose(mm.weight.grad[:, 0], [0, 0.5, 0.5, 0])


def test_embedding_bag_max_ties_take_first_row():
    w = np.array([[1.0, 5.0], [1.0, 2.0], [3.0, 5.0]], np.float32)
    m = nl.EmbeddingBag(3, 2, mode="max", _weight=w)
    m(np.array([[1, 0, 2]]))
    m.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(m.weight.grad, [[0, 1], [0, 0], [1, 0]])


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_parallel_path_matches_serial(mode):
    # large enough for the prange drivers (bags in forward, column blocks in backward)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 64)).astype(np.float32)
    inp = rng.integers(0, 300, 4000)
    offsets = np.sort(rng.integers(0, 4000, 200))
    offsets[0] = 0
    out = F.embedding_bag(inp, w, offsets, mode=mode, padding_idx=7)
    g = rng.standard_normal(out.shape).astype(np.float32)
    gw, _ = F.embedding_bag_backward(g, inp, w, offsets, mode=mode, padding_idx=7)
    nthreads = numq.get_num_threads()
    numq.set_num_threads(1)
    try:
        out1 = F.embedding_bag(inp, w, offsets, mode=mode, padding_idx=7)
        gw1, _ = F.embedding_bag_backward(g, inp, w, offsets, mode=mode, padding_idx=7)
    finally:
        numq.set_num_threads(nthreads)
    np.testing.assert_array_equal(out, out1)  # per-bag sums: same order either way
    np.testing.assert_array_equal(gw, gw1)    # column blocks: same order per element
    bags = _bags_from(inp, offsets, False)
    want, grad_fn = ref.embedding_bag_ref(w, bags[:20], mode, padding_idx=7)
    np.testing.assert_allclose(out[:20], want, rtol=1e-5, atol=1e-5)


def test_embedding_bag_kernel_contract_direct():
    w = np.arange(12, dtype=np.float64).reshape(4, 3)
    idx = np.array([0, 3, 1], np.int64)
    offs = np.array([0, 2, 3], np.int64)
    out = np.empty((2, 3))
    sizes = np.empty(2, np.int64)
    K.embedding_bag_forward(w, idx, offs, np.empty(0), K.MODE_MEAN, -1, out,
                            np.empty((0, 0), np.int64), sizes)
    np.testing.assert_allclose(out, [(w[0] + w[3]) / 2, w[1]])
    np.testing.assert_array_equal(sizes, [2, 1])


def test_embedding_bag_shared_layer_and_eval():
    m = nl.EmbeddingBag(6, 3, mode="mean", generator=0)
    a, b = np.array([[1, 2], [2, 2]]), np.array([[5, 1, 1]])
    ga, gb = _probe((2, 3)), _probe((1, 3), 9)
    m(a)
    sa = m._saved
    m(b)
    sb = m._saved
    m._saved = sb
    m.backward(gb)
    m._saved = sa
    m.backward(ga)
    want = np.zeros((6, 3))
    for bag, g in zip(list(a) + list(b), list(ga) + list(gb)):
        for r in bag:
            want[r] += g / len(bag)
    np.testing.assert_allclose(m.weight.grad, want, rtol=1e-5, atol=1e-7)
    m.eval()
    m(a)
    assert m._saved is None
    assert repr(nl.EmbeddingBag(6, 3, max_norm=1.0, scale_grad_by_freq=True, mode="sum",
                                padding_idx=2)) == \
        "EmbeddingBag(6, 3, max_norm=1.0, scale_grad_by_freq=True, mode='sum', padding_idx=2)"


def test_embedding_bag_max_norm_and_double():
    w = _probe((5, 3), 6) * 4
    m = nl.EmbeddingBag(5, 3, mode="sum", max_norm=1.0, _weight=w).double()
    out = m(np.array([[0, 1]]))
    assert out.dtype == np.float64
    assert np.linalg.norm(m.weight.data[[0, 1]], axis=1) == pytest.approx([1, 1], rel=1e-6)
    np.testing.assert_array_equal(m.weight.data[2:], w[2:])
    np.testing.assert_allclose(out[0], m.weight.data[0] + m.weight.data[1])


def test_embedding_bag_bad_input():
    m = nl.EmbeddingBag(6, 3, generator=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        nl.EmbeddingBag(6, 3, mode="median")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.embedding_bag(np.array([[1]]), m.weight, mode="Sum")
    with pytest.raises(ValueError, match="offsets must be None when input is 2-d"):
        m(np.array([[1, 2]]), np.array([0]))
    with pytest.raises(ValueError, match="offsets must be given"):
        m(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"offsets\[0\] must be 0"):
        m(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        m(np.array([1, 2, 3]), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"offsets\[-1\] must be <= len\(input\)"):
        m(np.array([1, 2, 3]), np.array([0, 4]))
    with pytest.raises(TypeError, match="offsets must be an integer array"):
        m(np.array([1, 2, 3]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="offsets must be 1-d"):
        m(np.array([1, 2, 3]), np.array([[0]]))
    with pytest.raises(ValueError, match="input must be 1-d .* or 2-d"):
        m(np.zeros((1, 2, 2), np.int64))
    with pytest.raises(ValueError, match="per_sample_weights is only supported for mode='sum'"):
        m(np.array([[1, 2]]), per_sample_weights=np.ones((1, 2)))
    s = nl.EmbeddingBag(6, 3, mode="sum", generator=0)
    with pytest.raises(ValueError, match="per_sample_weights must have the shape of input"):
        s(np.array([[1, 2]]), per_sample_weights=np.ones(2))
    with pytest.raises(TypeError, match="per_sample_weights must be a float array"):
        s(np.array([[1, 2]]), per_sample_weights=np.ones((1, 2), np.int64))
    with pytest.raises(ValueError, match="scale_grad_by_freq is not supported with mode='max'"):
        nl.EmbeddingBag(6, 3, mode="max", scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        nl.EmbeddingBag(6, 3, sparse=True)
    with pytest.raises(IndexError, match="out of range"):
        s(np.array([[1, 6]]))
    with pytest.raises(TypeError, match="include_last_offset must be a bool"):
        nl.EmbeddingBag(6, 3, include_last_offset=1)
    s(np.array([[1, 2]]))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        s.backward(np.ones((2, 3)))


# ============================================================ MultiheadAttention
E, NH, LQ, SK, NB = 8, 2, 3, 4, 2


def _inputs(batched=True, batch_first=False, kdim=E, vdim=E, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)

    def shp(n, d):
        if not batched:
            return (n, d)
        return (NB, n, d) if batch_first else (n, NB, d)

    return [rng.standard_normal(shp(n, d)).astype(dtype)
            for n, d in ((LQ, E), (SK, kdim), (SK, vdim))]


def _params(m):
    """The MHA parameters in mha_ref's naming."""
    Em = m.embed_dim
    if m._qkv_same_embed_dim:
        w = m.in_proj_weight.data
        wq, wk, wv = w[:Em], w[Em:2 * Em], w[2 * Em:]
    else:
        wq, wk, wv = m.q_proj_weight.data, m.k_proj_weight.data, m.v_proj_weight.data
    b = m.in_proj_bias
    bq = bk = bv = None
    if b is not None:
        bq, bk, bv = b.data[:Em], b.data[Em:2 * Em], b.data[2 * Em:]
    return dict(wq=wq, wk=wk, wv=wv, bq=bq, bk=bk, bv=bv, wo=m.out_proj.weight.data,
                bo=None if m.out_proj.bias is None else m.out_proj.bias.data,
                bias_k=None if m.bias_k is None else m.bias_k.data,
                bias_v=None if m.bias_v is None else m.bias_v.data,
                add_zero_attn=m.add_zero_attn)


def test_mha_parameters_state_dict_and_init():
    m = nl.MultiheadAttention(E, NH, generator=0)
    assert list(m.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                    "out_proj.bias"]
    assert m.in_proj_weight.shape == (3 * E, E) and m.q_proj_weight is None
    assert np.all(m.in_proj_bias.data == 0) and np.all(m.out_proj.bias.data == 0)
    bound = math.sqrt(6 / (3 * E + E))
    assert np.abs(m.in_proj_weight.data).max() <= bound
    assert m.head_dim == E // NH and m.batch_first is False
    np.testing.assert_array_equal(m.in_proj_weight.data,
                                  nl.MultiheadAttention(E, NH, generator=0).in_proj_weight.data)
    s = nl.MultiheadAttention(E, NH, kdim=5, vdim=6, bias=False, add_bias_kv=True)
    assert list(s.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                    "bias_k", "bias_v", "out_proj.weight"]
    assert s.k_proj_weight.shape == (E, 5) and s.v_proj_weight.shape == (E, 6)
    assert s.bias_k.shape == (1, 1, E) and s.in_proj_weight is None
    assert s.out_proj.bias is None
    assert type(m.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    assert isinstance(m.out_proj, nl.Linear)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.out_proj.weight.data, m.out_proj.weight.data)
    assert repr(m).startswith("MultiheadAttention(\n  (out_proj): ")
    assert m.double().in_proj_weight.dtype == np.float64


@pytest.mark.parametrize("batched,batch_first,need_weights,average", [
    (True, False, True, True), (True, True, True, False), (False, False, True, True),
    (False, False, True, False), (True, True, False, True)])
def test_mha_shapes_and_reference(batched, batch_first, need_weights, average):
    m = nl.MultiheadAttention(E, NH, batch_first=batch_first, generator=1)
    m.in_proj_bias.data[:] = _probe(3 * E, 4)
    m.out_proj.bias.data[:] = _probe(E, 5)
    q, k, v = _inputs(batched, batch_first, dtype=np.float32)
    out, w = m(q, k, v, need_weights=need_weights, average_attn_weights=average)
    assert out.shape == q.shape and out.dtype == np.float32
    if not need_weights:
        assert w is None
    else:
        want = ((NB,) if batched else ()) + ((NH,) if not average else ()) + (LQ, SK)
        assert w.shape == want
    p = _params(m)
    for n in range(NB if batched else 1):
        if not batched:
            qn, kn, vn, on = q, k, v, out
        elif batch_first:
            qn, kn, vn, on = q[n], k[n], v[n], out[n]
        else:
            qn, kn, vn, on = q[:, n], k[:, n], v[:, n], out[:, n]
        ro, rw = ref.mha_ref(qn, kn, vn, p, NH)
        np.testing.assert_allclose(on, ro, rtol=1e-5, atol=1e-5)
        if need_weights:
            wn = w[n] if batched else w
            np.testing.assert_allclose(wn, rw.mean(0) if average else rw, rtol=1e-5, atol=1e-6)
    gq, gk, gv = m.backward(np.ones_like(out))
    assert gq.shape == q.shape and gk.shape == k.shape and gv.shape == v.shape


def _mha_fd(m, q, k, v, grad_weights=False, **kw):
    go = None
    gw = None

    def run(backward):
        nonlocal go, gw
        for p in m.parameters():
            p.grad = None
        out, w = m(q, k, v, **kw)
        if go is None:
            go = _probe(out.shape, 11)
            gw = _probe(w.shape, 12) if grad_weights else None
        loss = float((out * go).sum()) + (float((w * gw).sum()) if grad_weights else 0.0)
        if not backward:
            m._saved = None
            return loss, None
        gin = m.backward((go, gw) if grad_weights else go)
        return loss, list(gin) + [p.grad for p in m.parameters()]

    _fd_check(run, [q, k, v] + [p.data for p in m.parameters()])


def test_mha_fd_packed_with_masks_and_weight_grads():
    m = nl.MultiheadAttention(E, NH, generator=2).double()
    m.in_proj_bias.data[:] = _probe(3 * E, 4)
    q, k, v = _inputs()
    am = np.zeros((LQ, SK), bool)
    am[0, 1] = am[2, 3] = True
    kpm = np.array([[False, False, True, False], [False, False, False, False]])
    _mha_fd(m, q, k, v, grad_weights=True, attn_mask=am, key_padding_mask=kpm)
    _mha_fd(m, q, k, v, grad_weights=True, average_attn_weights=False,
            attn_mask=_probe((NB * NH, LQ, SK), 6))


def test_mha_fd_separate_proj_bias_kv_zero_attn():
    m = nl.MultiheadAttention(E, NH, kdim=5, vdim=3, add_bias_kv=True, add_zero_attn=True,
                              batch_first=True, generator=3).double()
    q, k, v = _inputs(batch_first=True, kdim=5, vdim=3)
    _mha_fd(m, q, k, v, key_padding_mask=_probe((NB, SK), 8))
    u = nl.MultiheadAttention(E, NH, bias=False, generator=4).double()
    uq, uk, uv = _inputs(batched=False, seed=1)
    _mha_fd(u, uq, uk, uv, need_weights=False, attn_mask=~np.tri(LQ, SK, dtype=bool),
            is_causal=True)


def test_mha_dropout_training_only_and_reproducible():
    q, k, v = _inputs(dtype=np.float32)
    m = nl.MultiheadAttention(E, NH, dropout=0.5, generator=5)
    ref_m = copy.deepcopy(m)
    m.eval()
    o_eval, w_eval = m(q, k, v, average_attn_weights=False)
    ref_m.dropout = 0.0
    o0, _ = ref_m(q, k, v)
    np.testing.assert_allclose(o_eval, o0, rtol=1e-6)
    m.train()
    numq.manual_seed(0)
    a = nl.MultiheadAttention(E, NH, dropout=0.5, generator=5)
    b = copy.deepcopy(a)
    oa, wa = a(q, k, v, average_attn_weights=False)
    ob, wb = b(q, k, v, average_attn_weights=False)
    np.testing.assert_array_equal(oa, ob)  # same generator state -> same masks
    kept = wa != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(wa[kept], 2 * w_eval[kept], rtol=1e-5)
    # the global generator drives dropout when none was given
    g1 = nl.MultiheadAttention(E, NH, dropout=0.5)
    numq.manual_seed(3)
    o1, _ = g1(q, k, v)
    numq.manual_seed(3)
    o2, _ = g1(q, k, v)
    np.testing.assert_array_equal(o1, o2)


def test_mha_functional_dropout_mask_fd():
    rng = np.random.default_rng(0)
    q, k, v = _inputs()
    w_in, b_in = rng.standard_normal((3 * E, E)), rng.standard_normal(3 * E)
    w_out, b_out = rng.standard_normal((E, E)), rng.standard_normal(E)
    mask = rng.random((NB, NH, LQ, SK)) >= 0.3
    go = _probe((LQ, NB, E))

    def run(backward):
        out, w, saved = F.multi_head_attention_forward(
            q, k, v, E, NH, w_in, b_in, None, None, False, 0.3, w_out, b_out,
            dropout_mask=mask, return_saved=True)
        loss = float((out * go).sum())
        if not backward:
            return loss, None
        gq, gk, gv, grads = F.multi_head_attention_backward(go, saved)
        assert sorted(grads) == ["in_proj_bias", "in_proj_weight", "out_proj_bias",
                                 "out_proj_weight"]
        return loss, [gq, gk, gv, grads["in_proj_weight"], grads["out_proj_bias"]]

    _fd_check(run, [q, k, v, w_in, b_out])


def test_mha_fully_masked_rows_nan_with_weights_zero_without():
    m = nl.MultiheadAttention(E, NH, generator=0)
    q, k, v = _inputs(dtype=np.float32)
    am = np.zeros((LQ, SK), bool)
    am[1] = True
    o, w = m(q, k, v, attn_mask=am)
    assert np.all(np.isnan(o[1])) and np.all(np.isnan(w[:, 1]))
    assert not np.any(np.isnan(o[[0, 2]]))
    o2, _ = m(q, k, v, attn_mask=am, need_weights=False)
    np.testing.assert_allclose(o2[1], np.broadcast_to(m.out_proj.bias.data, o2[1].shape))
    np.testing.assert_allclose(o2[[0, 2]], o[[0, 2]], rtol=1e-5, atol=1e-6)
    g = m.backward(np.ones_like(o2))
    assert all(np.all(np.isfinite(x)) for x in g)


def test_mha_causal_hint():
    m = nl.MultiheadAttention(E, NH, generator=0)
    q, k, v = _inputs(dtype=np.float32)
    causal = ~np.tri(LQ, SK, dtype=bool)
    with pytest.raises(ValueError, match="is_causal=True needs attn_mask"):
        m(q, k, v, is_causal=True)
    o1, _ = m(q, k, v, attn_mask=causal, is_causal=True, need_weights=False)
    o2, _ = m(q, k, v, attn_mask=causal)
    np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)


def test_mha_shared_layer_and_eval():
    m = nl.MultiheadAttention(E, NH, generator=6).double()
    x1, _, _ = _inputs(seed=1)
    x2, _, _ = _inputs(seed=2)
    g1, g2 = _probe(x1.shape, 1), _probe(x2.shape, 2)
    m(x1, x1, x1)
    s1 = m._saved
    m(x2, x2, x2)
    s2 = m._saved
    m._saved = s2
    r2 = m.backward(g2)
    m._saved = s1
    r1 = m.backward(g1)
    grads = {n: p.grad.copy() for n, p in m.named_parameters()}
    for n, p in m.named_parameters():
        p.grad = None
    m(x1, x1, x1)
    np.testing.assert_allclose(m.backward(g1)[0], r1[0])
    m(x2, x2, x2)
    np.testing.assert_allclose(m.backward(g2)[2], r2[2])
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, grads[n], rtol=1e-12)
    m.eval()
    m(x1, x1, x1)
    assert m._saved is None
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        m.backward(g1)


def test_mha_bad_input():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nl.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="greater than 0"):
        nl.MultiheadAttention(0, 1)
    with pytest.raises(ValueError, match="dropout must be in"):
        nl.MultiheadAttention(4, 2, dropout=1.5)
    m = nl.MultiheadAttention(E, NH, generator=0)
    q, k, v = _inputs(dtype=np.float32)
    with pytest.raises(ValueError, match="embedding dimension must be embed_dim_to_check"):
        m(q[..., :4], k, v)
    with pytest.raises(ValueError, match="query must be 2-d .* or 3-d"):
        m(q[None], k, v)
    with pytest.raises(ValueError, match="key and value must be 3-d"):
        m(q, k[0], v)
    with pytest.raises(ValueError, match="same batch size"):
        m(q, k[:, :1], v[:, :1])
    with pytest.raises(ValueError, match="same sequence length"):
        m(q, k, v[:2])
    with pytest.raises(ValueError, match="key and value must have embedding dimension"):
        m(q, k[..., :4], v)
    with pytest.raises(ValueError, match=r"2-d attn_mask must have shape \(L, S\)"):
        m(q, k, v, attn_mask=np.zeros((SK, LQ), bool))
    with pytest.raises(ValueError, match=r"3-d attn_mask must have shape \(N \* num_heads"):
        m(q, k, v, attn_mask=np.zeros((NB, LQ, SK), bool))
    with pytest.raises(ValueError, match="attn_mask must be 2-d or 3-d"):
        m(q, k, v, attn_mask=np.zeros((1, 1, LQ, SK), bool))
    with pytest.raises(TypeError, match="attn_mask must be a bool or float array"):
        m(q, k, v, attn_mask=np.zeros((LQ, SK), np.int64))
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        m(q, k, v, key_padding_mask=np.zeros((SK, NB), bool))
    with pytest.raises(TypeError, match="query must be a float array"):
        m(q.astype(np.int64), k, v)
    with pytest.raises(TypeError, match="need_weights must be a bool"):
        m(q, k, v, need_weights=None)
    with pytest.raises(ValueError, match="static_k / static_v are not supported"):
        F.multi_head_attention_forward(q, k, v, E, NH, m.in_proj_weight, None, None, None,
                                       False, 0.0, m.out_proj.weight, None,
                                       static_k=np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="in_proj_weight must have shape"):
        F.multi_head_attention_forward(q, k, v, E, NH, np.zeros((E, E)), None, None, None,
                                       False, 0.0, m.out_proj.weight, None)
    o, w = m(q, k, v, need_weights=False)
    with pytest.raises(ValueError, match="grad_attn_weights must be None"):
        m.backward((np.ones_like(o), np.ones((NB, LQ, SK))))
    m(q, k, v)
    with pytest.raises(ValueError, match="grad_output must have attn_output's shape"):
        m.backward(np.ones((1, 2, 3)))
    with pytest.raises(TypeError, match="saved must be the context"):
        F.multi_head_attention_backward(np.ones(3), None)


# ================================================ scaled_dot_product_attention
@pytest.mark.parametrize("case", ["plain", "causal", "bool_mask", "float_mask", "gqa",
                                  "broadcast"])
def test_sdpa_reference_and_fd(case):
    rng = np.random.default_rng(0)
    qs, ks, vs = (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)
    kw = {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool_mask":
        m = rng.random((3, 5)) < 0.6
        m[1] = False  # a fully masked row gives zeros
        m[0, 0] = True
        kw["attn_mask"] = m
    elif case == "float_mask":
        kw["attn_mask"] = rng.standard_normal((2, 1, 3, 5))
        kw["scale"] = 0.7
    elif case == "gqa":
        qs = (2, 4, 3, 4)
        kw["enable_gqa"] = True
    elif case == "broadcast":
        ks, vs = (1, 2, 5, 4), (2, 1, 5, 3)
    q, k, v = (rng.standard_normal(s) for s in (qs, ks, vs))
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    assert out.shape == qs[:-1] + (3,)
    # reference, one (batch, head) at a time
    for b in range(qs[0]):
        for h in range(qs[1]):
            hk = h // (qs[1] // ks[1]) if case == "gqa" else h
            kk = k[b % ks[0], hk % ks[1]]
            vv = v[b % vs[0], hk % vs[1]]
            bias = None
            if case == "causal":
                bias = np.where(np.tri(3, 5, dtype=bool), 0.0, -np.inf)
            elif case == "bool_mask":
                bias = np.where(kw["attn_mask"], 0.0, -np.inf)
            elif case == "float_mask":
                bias = kw["attn_mask"][b, 0]
            want = ref.sdpa_ref(q[b, h], kk, vv, bias, kw.get("scale"))
            np.testing.assert_allclose(out[b, h], want, rtol=1e-12, atol=1e-12)
    go = _probe(out.shape)

    def run(backward):
        o, saved = F.scaled_dot_product_attention(q, k, v, return_saved=True, **kw)
        loss = float((o * go).sum())
        if not backward:
            return loss, None
        return loss, list(F.scaled_dot_product_attention_backward(go, saved))

    _fd_check(run, [q, k, v])


def test_sdpa_dropout_mask_and_2d():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    mask = rng.random((3, 5)) >= 0.25
    go = _probe((3, 2))

    def run(backward):
        o, saved = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25, dropout_mask=mask,
                                                  return_saved=True)
        loss = float((o * go).sum())
        return loss, (list(F.scaled_dot_product_attention_backward(go, saved))
                      if backward else None)

    _fd_check(run, [q, k, v])
    p = ref.softmax_ref(q @ k.T / 2.0, safe=True)
    np.testing.assert_allclose(run(False)[0], float(((p * mask / 0.75 @ v) * go).sum()))
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=4)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=4)
    np.testing.assert_array_equal(a, b)
    assert F.scaled_dot_product_attention(q.astype(np.float32), k, v).dtype == np.float32


def test_sdpa_bad_input():
    q, k, v = np.ones((2, 3, 4)), np.ones((2, 5, 4)), np.ones((2, 5, 2))
    with pytest.raises(ValueError, match="attn_mask must be None when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)
    with pytest.raises(ValueError, match="attn_mask must broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((5, 3), bool))
    with pytest.raises(TypeError, match="attn_mask must be a bool or float"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), np.int8))
    with pytest.raises(ValueError, match="same last dimension"):
        F.scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="same sequence length"):
        F.scaled_dot_product_attention(q, k, v[:, :4])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        F.scaled_dot_product_attention(q[0, 0], k, v)
    with pytest.raises(ValueError, match="enable_gqa"):
        F.scaled_dot_product_attention(np.ones((3, 3, 4)), np.ones((2, 5, 4)),
                                       np.ones((2, 5, 2)), enable_gqa=True)
    with pytest.raises(ValueError, match="do not broadcast"):
        F.scaled_dot_product_attention(np.ones((3, 3, 4)), k, v)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=-0.1)
    with pytest.raises(TypeError, match="key must be a float array"):
        F.scaled_dot_product_attention(q, k.astype(int), v)
    with pytest.raises(ValueError, match="dropout_mask must have"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=0.1, dropout_mask=np.ones((3, 5), bool))
    _, saved = F.scaled_dot_product_attention(q, k, v, return_saved=True)
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        F.scaled_dot_product_attention_backward(np.ones((2, 3, 4)), saved)
