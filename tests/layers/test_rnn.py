"""RNN / LSTM / GRU and their cells without torch: float64 finite-difference gradient
checks, shapes, init, train/eval, dropout, the shared-layer ``_saved`` rule, bad input."""
import warnings

import numpy as np
import pytest

import numq
import numq.layers as nl
import numq.layers.functional as F

I, H, T, N = 3, 4, 3, 2
SEQ = {"rnn_tanh": (nl.RNN, {}), "rnn_relu": (nl.RNN, {"nonlinearity": "relu"}),
       "lstm": (nl.LSTM, {}), "gru": (nl.GRU, {})}
CELLS = {"rnn_tanh": (nl.RNNCell, {}), "rnn_relu": (nl.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (nl.LSTMCell, {}), "gru": (nl.GRUCell, {})}


def _seq(mode, **kw):
    cls, extra = SEQ[mode]
    return cls(I, H, **extra, **kw)


# ----------------------------------------------------------- finite differences
def _fd_check(loss_and_grads, arrays, rtol=1e-6, atol=1e-8, max_elems=40):
    """``loss_and_grads(backward)`` runs forward (and backward when asked) and returns
    ``(loss, [grad per array] or None)``; each gradient is compared with central
    differences on up to ``max_elems`` elements per array (a fixed random sample; the
    conformance tests compare every element with torch)."""
    _, grads = loss_and_grads(True)
    eps = 1e-6
    pick = np.random.default_rng(0)
    for arr, g in zip(arrays, grads):
        assert g.shape == arr.shape and g.dtype == np.float64
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if flat.size > max_elems:
            idx = pick.choice(flat.size, max_elems, replace=False)
        num = np.empty(idx.size)
        for k, j in enumerate(idx):
            old = flat[j]
            flat[j] = old + eps
            lp, _ = loss_and_grads(False)
            flat[j] = old - eps
            lm, _ = loss_and_grads(False)
            flat[j] = old
            num[k] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(g.reshape(-1)[idx], num, rtol=rtol, atol=atol)


def _seq_fd(m, mode, x, states, seed=None):
    rng = np.random.default_rng(7)
    probe = {}

    def run(backward):
        for p in m.parameters():
            p.grad = None
        if seed is not None:
            numq.manual_seed(seed)  # the same dropout masks on every evaluation
        out, hid = m(x, states)
        hs = hid if mode == "lstm" else (hid,)
        if not probe:
            probe["o"] = rng.standard_normal(out.shape)
            probe["h"] = [rng.standard_normal(h.shape) for h in hs]
        loss = (out * probe["o"]).sum() + sum((h * g).sum() for h, g in zip(hs, probe["h"]))
        if not backward:
            return loss, None
        grads = m.backward(probe["o"], *probe["h"])
        if states is None:
            grads = (grads,)
        return loss, list(grads) + [p.grad for p in m.parameters()]

    arrays = [x] + (list(states) if isinstance(states, tuple) else
                    [] if states is None else [states])
    _fd_check(run, arrays + [p.data for p in m.parameters()])


SEQ_CONFIGS = [  # (num_layers, bidirectional, batch_first, initial states, batched, bias)
    (2, True, True, True, True, True),
    (1, False, False, False, False, False),
]


@pytest.mark.parametrize("config", SEQ_CONFIGS, ids=["L2-bidir-bf-hx", "L1-unbatched"])
@pytest.mark.parametrize("mode", list(SEQ))
def test_sequence_finite_differences(mode, config):
    L, bidir, bf, hx, batched, bias = config
    m = _seq(mode, num_layers=L, bidirectional=bidir, batch_first=bf, bias=bias,
             generator=0).double()
    rng = np.random.default_rng(1)
    D = 2 if bidir else 1
    lead = ((N, T) if bf else (T, N)) if batched else (T,)
    x = rng.standard_normal(lead + (I,))
    states = None
    if hx:
        sl = (L * D, N) if batched else (L * D,)
        states = rng.standard_normal(sl + (H,))
        if mode == "lstm":
            states = (states, rng.standard_normal(sl + (H,)))
    _seq_fd(m, mode, x, states)


def test_lstm_projection_finite_differences():
    m = nl.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, generator=0).double()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, N, I))
    states = (rng.standard_normal((4, N, 2)), rng.standard_normal((4, N, H)))
    _seq_fd(m, "lstm", x, states)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_dropout_between_layers_finite_differences(mode):
    # the masks are redrawn each forward; reseeding keeps them fixed for the check
    numq.manual_seed(0)
    m = _seq(mode, num_layers=2, dropout=0.4).double()  # masks from the global generator
    x = np.random.default_rng(3).standard_normal((T, N, I))
    _seq_fd(m, mode, x, None, seed=11)


@pytest.mark.parametrize("hx", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_finite_differences(kind, batched, hx):
    cls, extra = CELLS[kind]
    m = cls(I, H, bias=batched, generator=0, **extra).double()
    rng = np.random.default_rng(4)
    lead = (N,) if batched else ()
    x = rng.standard_normal(lead + (I,))
    states = None
    if hx:
        states = rng.standard_normal(lead + (H,))
        if kind == "lstm":
            states = (states, rng.standard_normal(lead + (H,)))
    gh = rng.standard_normal(lead + (H,))
    gc = rng.standard_normal(lead + (H,))

    def run(backward):
        for p in m.parameters():
            p.grad = None
        res = m(x, states)
        loss = (res[0] * gh).sum() + (res[1] * gc).sum() if kind == "lstm" else (res * gh).sum()
        if not backward:
            return loss, None
        if kind == "lstm":
            gi, ghx, gcx = m.backward(gh, gc)
            sg = [ghx, gcx]
        else:
            gi, ghx = m.backward(gh)
            sg = [ghx]
        return loss, [gi] + (sg if hx else []) + [p.grad for p in m.parameters()]

    arrays = [x] + ([] if states is None else list(states) if kind == "lstm" else [states])
    _fd_check(run, arrays + [p.data for p in m.parameters()])


# ------------------------------------------------- the shared-layer rule, torch-free
@pytest.mark.parametrize("mode", list(SEQ))
def test_unrolled_cell_equals_sequence_module(mode):
    """A cell unrolled over T steps with ``_saved`` swapped per step gives the same
    outputs and gradients as the one-layer sequence module with the same weights."""
    seq = _seq(mode, generator=0)
    cls, extra = CELLS[mode]
    cell = cls(I, H, **extra)
    cell.load_state_dict({k[:-3]: v for k, v in seq.state_dict().items()})  # drop "_l0"
    rng = np.random.default_rng(5)
    steps = 6
    x = rng.standard_normal((steps, N, I)).astype(np.float32)
    go = rng.standard_normal((steps, N, H)).astype(np.float32)
    h0 = rng.standard_normal((1, N, H)).astype(np.float32)
    c0 = rng.standard_normal((1, N, H)).astype(np.float32)
    states = (h0, c0) if mode == "lstm" else h0
    out, _ = seq(x, states)
    grads = seq.backward(go)

    state = (h0[0], c0[0]) if mode == "lstm" else h0[0]
    tape, outs = [], []
    for t in range(steps):
        state = cell(x[t], state)
        tape.append(cell._saved)
        outs.append(state[0] if mode == "lstm" else state)
    np.testing.assert_allclose(np.stack(outs), out, rtol=1e-5, atol=1e-6)
    dh = np.zeros((N, H), np.float32)
    dc = np.zeros((N, H), np.float32)
    gx = np.empty_like(x)
    for t in reversed(range(steps)):
        cell._saved = tape[t]
        if mode == "lstm":
            gx[t], dh, dc = cell.backward(dh + go[t], dc)
        else:
            gx[t], dh = cell.backward(dh + go[t])
    np.testing.assert_allclose(gx, grads[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dh, grads[1][0], rtol=1e-5, atol=1e-6)
    if mode == "lstm":
        np.testing.assert_allclose(dc, grads[2][0], rtol=1e-5, atol=1e-6)
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(seq, name + "_l0").grad, rtol=1e-5,
                                   atol=1e-6)


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("mode", list(SEQ))
def test_shapes(mode):
    for L, bidir, bf, proj in [(1, False, False, 0), (2, True, True, 0), (3, True, False, 2)]:
        if proj and mode != "lstm":
            continue
        kw = {"proj_size": proj} if proj else {}
        m = _seq(mode, num_layers=L, bidirectional=bidir, batch_first=bf, **kw)
        D = 2 if bidir else 1
        hout = proj or H
        for batched in (True, False):
            shape = ((N, T, I) if bf else (T, N, I)) if batched else (T, I)
            x = np.zeros(shape, np.float32)
            out, hid = m(x)
            nb = (N,) if batched else ()
            assert out.shape == shape[:-1] + (D * hout,)
            hs = hid if mode == "lstm" else (hid,)
            assert hs[0].shape == (L * D,) + nb + (hout,)
            if mode == "lstm":
                assert hs[1].shape == (L * D,) + nb + (H,)
            assert m.backward(np.ones_like(out)).shape == shape


def test_parameter_names_and_shapes():
    m = nl.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2)
    sd = m.state_dict()
    assert list(sd)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_hr_l0"]
    assert sd["weight_ih_l1_reverse"].shape == (4 * H, 2 * 2)
    assert sd["weight_hh_l1_reverse"].shape == (4 * H, 2)
    assert sd["weight_hr_l1_reverse"].shape == (2, H)
    assert len(sd) == 20
    g = nl.GRU(I, H, bias=False)
    assert list(g.state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert g.all_weights[0][0] is g.weight_ih_l0
    c = nl.GRUCell(I, H, bias=False)
    assert c.bias_ih is None and list(c.state_dict()) == ["weight_ih", "weight_hh"]
    assert nl.LSTMCell(I, H).weight_ih.shape == (4 * H, I)


def test_init_bounds_and_generator():
    a = nl.LSTM(I, 16, 2, generator=3)
    b = nl.LSTM(I, 16, 2, generator=np.random.default_rng(3))
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert pa.dtype == np.float32
        assert np.abs(pa.data).max() <= 0.25
        np.testing.assert_array_equal(pa.data, pb.data)
    numq.manual_seed(4)
    c1 = nl.GRUCell(I, 9).weight_hh.data.copy()
    numq.manual_seed(4)
    assert np.array_equal(c1, nl.GRUCell(I, 9).weight_hh.data)
    assert np.abs(c1).max() <= 1 / 3 and np.abs(c1).max() > 0.2


def test_repr():
    assert repr(nl.LSTM(3, 4, 2, batch_first=True, proj_size=2)) == \
        "LSTM(3, 4, proj_size=2, num_layers=2, batch_first=True)"
    assert repr(nl.RNNCell(3, 4, bias=False, nonlinearity="relu")) == \
        "RNNCell(3, 4, bias=False, nonlinearity=relu)"
    assert repr(nl.GRU(3, 4, dropout=0.5, num_layers=2, bidirectional=True)) == \
        "GRU(3, 4, num_layers=2, dropout=0.5, bidirectional=True)"


# ------------------------------------------------------------------- train / eval
def test_eval_saves_nothing_and_backward_needs_forward():
    m = nl.GRU(I, H, 2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        m.backward(np.zeros((T, N, H), np.float32))
    m.eval()
    o1, _ = m(x)
    o2, _ = m(x)
    assert m._saved is None
    np.testing.assert_array_equal(o1, o2)  # no dropout in eval mode
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        m.backward(np.zeros_like(o1))
    m.train()
    out, _ = m(x)
    m.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="called twice"):
        m.backward(np.ones_like(out))
    cell = nl.LSTMCell(I, H).eval()
    cell(x[0])
    assert cell._saved is None


def test_dropout_applies_only_in_training():
    m = nl.LSTM(I, H, 2, dropout=0.5)  # masks from the global generator
    x = np.random.default_rng(1).standard_normal((T, N, I)).astype(np.float32)
    numq.manual_seed(0)
    a, _ = m(x)
    numq.manual_seed(1)
    b, _ = m(x)
    assert not np.allclose(a, b)
    numq.manual_seed(0)
    c, _ = m(x)
    np.testing.assert_array_equal(a, c)
    m.eval()
    e, _ = m(x)
    m2 = nl.LSTM(I, H, 2)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_allclose(e, m2(x)[0], rtol=1e-6)


def test_dropout_masks_from_the_module_generator():
    x = np.random.default_rng(1).standard_normal((T, N, I)).astype(np.float32)
    a, b = nl.GRU(I, H, 2, dropout=0.5, generator=5), nl.GRU(I, H, 2, dropout=0.5, generator=5)
    a1, _ = a(x)
    a2, _ = a(x)
    assert not np.allclose(a1, a2)  # the stored generator advances between calls
    np.testing.assert_array_equal(b(x)[0], a1)
    np.testing.assert_array_equal(b(x)[0], a2)


def test_dropout_one_cuts_the_input_off():
    m = nl.RNN(I, H, 3, dropout=1.0)
    x = np.random.default_rng(2).standard_normal((T, N, I)).astype(np.float32)
    out, _ = m(x)
    gi = m.backward(np.ones_like(out))
    np.testing.assert_array_equal(gi, 0)
    np.testing.assert_array_equal(m.weight_ih_l0.grad, 0)
    assert np.abs(m.weight_hh_l2.grad).max() > 0


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nl.GRU(I, H, dropout=0.2)


def test_grad_output_none_and_requires_grad():
    m = nl.LSTM(I, H, 2)
    m.weight_hh_l1.requires_grad = False
    x = np.random.default_rng(3).standard_normal((T, N, I)).astype(np.float32)
    _, (hn, cn) = m(x)
    gi = m.backward(None, np.ones_like(hn))
    assert gi.shape == x.shape
    assert m.weight_hh_l1.grad is None
    assert m.weight_ih_l0.grad is not None
    m(x)
    gi = m.backward(None, None, np.ones_like(cn))
    assert np.abs(gi).max() > 0


def test_gradients_accumulate():
    m = nl.RNN(I, H)
    x = np.random.default_rng(4).standard_normal((T, N, I)).astype(np.float32)
    out, _ = m(x)
    m.backward(np.ones_like(out))
    g1 = m.weight_ih_l0.grad.copy()
    m(x)
    m.backward(np.ones_like(out))
    np.testing.assert_allclose(m.weight_ih_l0.grad, 2 * g1, rtol=1e-6)


def test_dtypes():
    x64 = np.random.default_rng(5).standard_normal((T, N, I))
    m = nl.GRU(I, H)
    out, h = m(x64)  # float64 input is cast to the float32 parameters
    assert out.dtype == np.float32 and h.dtype == np.float32
    assert m.backward(np.ones_like(out)).dtype == np.float32
    m.double()
    out, h = m(x64.astype(np.float32))
    assert out.dtype == np.float64
    assert m.backward(np.ones_like(out)).dtype == np.float64
    assert m.weight_ih_l0.grad.dtype == np.float64
    assert nl.LSTMCell(I, H, dtype=np.float64)(x64[0])[0].dtype == np.float64
    with pytest.raises(TypeError, match="input must be a float array"):
        m(np.ones((T, N, I), np.int64))
    with pytest.raises(TypeError, match="dtype must be a float dtype"):
        nl.RNN(I, H, dtype=np.int32)


def test_output_is_not_a_view_of_saved_state():
    m = nl.GRU(I, H)
    x = np.random.default_rng(6).standard_normal((T, N, I)).astype(np.float32)
    out, _ = m(x)
    go = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    m2 = nl.GRU(I, H)
    m2.load_state_dict(m.state_dict())
    out2, _ = m2(x)
    out2[...] = 123.0  # a caller writing into the output must not corrupt backward
    np.testing.assert_array_equal(m.backward(go), m2.backward(go))


# ------------------------------------------------------------------------ bad input
def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        nl.RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        nl.RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout"):
        nl.LSTM(I, H, 2, dropout=1.5)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        nl.LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match="proj_size should be a positive"):
        nl.LSTM(I, H, proj_size=-1)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nl.RNNBase("GRU", I, H, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nl.GRU(I, 0)
    with pytest.raises(TypeError, match="input_size should be of type int"):
        nl.GRU(3.0, H)
    with pytest.raises(ValueError, match="num_layers"):
        nl.LSTM(I, H, num_layers=0)
    with pytest.raises(TypeError, match="bias should be of type bool"):
        nl.LSTM(I, H, bias=1)
    with pytest.raises(TypeError, match="batch_first should be of type bool"):
        nl.GRU(I, H, batch_first="yes")
    with pytest.raises(TypeError, match="hidden_size"):
        nl.LSTMCell(I, None)


def test_bad_input_rank_and_size():
    m = nl.LSTM(I, H, 2)
    with pytest.raises(ValueError, match="input must be 2-D or 3-D"):
        m(np.zeros((1, T, N, I), np.float32))
    with pytest.raises(ValueError, match="input_size. Expected 3, got 5"):
        m(np.zeros((T, N, 5), np.float32))
    with pytest.raises(ValueError, match="sequence length"):
        m(np.zeros((0, N, I), np.float32))
    c = nl.GRUCell(I, H)
    with pytest.raises(ValueError, match="input must be 1-D or 2-D"):
        c(np.zeros((T, N, I), np.float32))
    with pytest.raises(ValueError, match="input_size"):
        c(np.zeros((N, I + 1), np.float32))


def test_bad_hidden_state():
    m = nl.GRU(I, H, 2, bidirectional=True)
    x = np.zeros((T, N, I), np.float32)
    with pytest.raises(ValueError, match=r"expected hx of shape \(4, 2, 4\), got \(2, 2, 4\)"):
        m(x, np.zeros((2, N, H), np.float32))
    with pytest.raises(ValueError, match="hx must be 3-D"):
        m(x, np.zeros((4, H), np.float32))
    with pytest.raises(ValueError, match="hx must be 2-D"):
        m(x[:, 0], np.zeros((4, N, H), np.float32))
    lstm = nl.LSTM(I, H)
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        lstm(x, np.zeros((1, N, H), np.float32))
    with pytest.raises(ValueError, match="c_0 of shape"):
        lstm(x, (np.zeros((1, N, H), np.float32), np.zeros((1, N, H + 1), np.float32)))
    with pytest.raises(TypeError, match=r"hx\[0\] must be a float"):
        lstm(x, (np.zeros((1, N, H), np.int32), np.zeros((1, N, H), np.float32)))
    cell = nl.LSTMCell(I, H)
    with pytest.raises(ValueError, match=r"hx\[1\] must have shape \(2, 4\)"):
        cell(x[0], (np.zeros((N, H), np.float32), np.zeros((N + 1, H), np.float32)))
    with pytest.raises(ValueError, match="hx must be 2-D"):
        nl.RNNCell(I, H)(x[0], np.zeros(H, np.float32))


def test_bad_gradients():
    m = nl.LSTM(I, H)
    x = np.zeros((T, N, I), np.float32)
    out, _ = m(x)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        m.backward(np.zeros((T, N, H + 1), np.float32))
    m(x)
    with pytest.raises(ValueError, match="grad_hn must have shape"):
        m.backward(out, np.zeros((2, N, H), np.float32))
    c = nl.RNNCell(I, H)
    c(x[0])
    with pytest.raises(ValueError, match="grad_h must have shape"):
        c.backward(np.zeros((N, H + 1), np.float32))


def test_functional_bad_arguments():
    w = [np.zeros((4 * H, I), np.float32), np.zeros((4 * H, H), np.float32)]
    x = np.zeros((T, N, I), np.float32)
    with pytest.raises(ValueError, match="params must hold 2 arrays"):
        F.lstm(x, None, w, False, 2)
    with pytest.raises(ValueError, match="weight_hh_l0"):
        F.lstm(x, None, [w[0], w[1][:, :2]], False, 1)
    with pytest.raises(TypeError, match="num_layers must be an int"):
        F.lstm(x, None, w, False, 1.0)
    with pytest.raises(ValueError, match="dropout must be in"):
        F.lstm(x, None, w, False, 1, 2.0)
    with pytest.raises(TypeError, match="params must be a list"):
        F.gru(x, None, w[0])
    (_, _, _), saved = F.lstm(x, None, w, False, return_saved=True)
    with pytest.raises(ValueError, match="saved comes from a LSTM"):
        F.gru_backward(None, None, saved)
    with pytest.raises(TypeError, match="saved must be"):
        F.lstm_cell_backward(None, None, saved)
    with pytest.raises(ValueError, match="w_ih must have 3"):
        F.gru_cell(x[0], None, w[0][:5], w[1])


def test_functional_cell_and_sequence_agree():
    rng = np.random.default_rng(8)
    w = [rng.standard_normal(s).astype(np.float32) for s in ((3 * H, I), (3 * H, H), (3 * H,),
                                                              (3 * H,))]
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    out, hn = F.gru(x, None, w)
    h = np.zeros((N, H), np.float32)
    for t in range(T):
        h = F.gru_cell(x[t], h, *w)
        np.testing.assert_allclose(h, out[t], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, hn[0], rtol=1e-6, atol=1e-7)


def test_no_overflow_warnings_for_saturated_gates():
    m = nl.LSTM(I, H)
    for p in m.parameters():
        p.data[...] = 100.0
    x = np.full((T, N, I), -50.0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = m(x)
        m.backward(np.ones_like(out))
    assert np.all(np.isfinite(out))
