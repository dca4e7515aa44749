"""RNN / LSTM / GRU and their cells against torch 2.13 autograd.

torch's weights are loaded into the numq twin through ``state_dict`` (same keys), then
forward outputs, final states, and the gradients of the input, the initial states and
every parameter are compared. float32 compares with rtol=1e-4 (plus a small atol for
entries near zero): both sides compute in float32 but sum in different orders (torch
adds the biases and the two GEMMs in another order, and reduces over time and batch in
other blocks), so the last bits differ. float64 models compare to ~1e-10.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import numq.layers as nl  # noqa: E402

RTOL, ATOL = 1e-4, 2e-5

# mode -> (numq class, torch class, extra constructor kwargs)
MODES = {
    "rnn_tanh": (nl.RNN, torch.nn.RNN, {}),
    "rnn_relu": (nl.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nl.LSTM, torch.nn.LSTM, {}),
    "gru": (nl.GRU, torch.nn.GRU, {}),
}

# (num_layers, bidirectional, batch_first, pass initial states, batched, bias, proj_size)
CONFIGS = [
    (1, False, False, False, True, True, 0),
    (2, True, True, True, True, True, 0),     # the full combination
    (3, True, False, True, False, False, 0),  # unbatched, no bias
    (2, False, False, True, True, True, 0),
]
LSTM_PROJ = [(2, True, True, True, True, True, 3), (1, False, False, False, False, True, 2)]

I, H, T, N = 5, 6, 4, 3


def _pair(mode, L, bidir, bf, bias, proj=0, dtype=torch.float32, seed=0):
    ncls, tcls, kw = MODES[mode]
    kw = dict(kw, num_layers=L, bidirectional=bidir, batch_first=bf, bias=bias)
    if proj:
        kw["proj_size"] = proj
    torch.manual_seed(seed)
    tm = tcls(I, H, **kw).to(dtype)
    nm = ncls(I, H, **kw)
    if dtype == torch.float64:
        nm.double()
    nm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return nm, tm


def _inputs(mode, L, bidir, bf, hx, batched, proj, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    D = 2 if bidir else 1
    hout = proj or H
    xs = ((N, T, I) if bf else (T, N, I)) if batched else (T, I)
    x = torch.randn(*xs, generator=g, dtype=dtype, requires_grad=True)
    states = None
    if hx:
        hs = (L * D, N, hout) if batched else (L * D, hout)
        h0 = torch.randn(*hs, generator=g, dtype=dtype, requires_grad=True)
        if mode == "lstm":
            cs = (L * D, N, H) if batched else (L * D, H)
            states = (h0, torch.randn(*cs, generator=g, dtype=dtype, requires_grad=True))
        else:
            states = h0
    return x, states


def _np(t):
    return t.detach().numpy()


def _close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(a, _np(b) if isinstance(b, torch.Tensor) else b, rtol=rtol,
                               atol=atol)


def _run_both(mode, L, bidir, bf, hx, batched, bias, proj, dtype=torch.float32):
    nm, tm = _pair(mode, L, bidir, bf, bias, proj, dtype)
    x, states = _inputs(mode, L, bidir, bf, hx, batched, proj, dtype)
    tout, thid = tm(x, states)
    g = torch.Generator().manual_seed(2)
    go = torch.randn(tout.shape, generator=g, dtype=dtype)
    if mode == "lstm":
        th, tc = thid
        gh = torch.randn(th.shape, generator=g, dtype=dtype)
        gc = torch.randn(tc.shape, generator=g, dtype=dtype)
        ((tout * go).sum() + (th * gh).sum() + (tc * gc).sum()).backward()
    else:
        gh = torch.randn(thid.shape, generator=g, dtype=dtype)
        ((tout * go).sum() + (thid * gh).sum()).backward()
    nstates = None
    if states is not None:
        nstates = tuple(_np(s) for s in states) if mode == "lstm" else _np(states)
    nout, nhid = nm(_np(x), nstates)
    if mode == "lstm":
        grads = nm.backward(_np(go), _np(gh), _np(gc))
    else:
        grads = nm.backward(_np(go), _np(gh))
    return nm, tm, x, states, (nout, nhid, tout, thid), grads


def _compare(mode, nm, tm, x, states, outs, grads, rtol=RTOL, atol=ATOL):
    nout, nhid, tout, thid = outs
    _close(nout, tout, rtol, atol)
    if mode == "lstm":
        _close(nhid[0], thid[0], rtol, atol)
        _close(nhid[1], thid[1], rtol, atol)
    else:
        _close(nhid, thid, rtol, atol)
    if states is None:
        gi = grads
    else:
        gi = grads[0]
        tstates = states if mode == "lstm" else (states,)
        assert len(grads) == 1 + len(tstates)
        for gs, ts in zip(grads[1:], tstates):
            _close(gs, ts.grad, rtol, atol)
    _close(gi, x.grad, rtol, atol)
    tparams = dict(tm.named_parameters())
    nparams = dict(nm.named_parameters())
    assert list(tparams) == list(nparams)
    for name, tp in tparams.items():
        _close(nparams[name].grad, tp.grad, rtol, atol)


def _config_id(c):
    return "L{}{}{}{}{}{}{}".format(
        c[0], "-bidir" if c[1] else "", "-bf" if c[2] else "", "-hx" if c[3] else "",
        "" if c[4] else "-unbatched", "" if c[5] else "-nobias", f"-proj{c[6]}" if c[6] else "")


SEQ_CASES = [pytest.param(m, c, id=f"{m}-{_config_id(c)}") for m in MODES for c in CONFIGS] \
    + [pytest.param("lstm", c, id=f"lstm-{_config_id(c)}") for c in LSTM_PROJ]


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
@pytest.mark.parametrize("mode, config", SEQ_CASES)
def test_sequence_forward_backward(mode, config):
    L, bidir, bf, hx, batched, bias, proj = config
    nm, tm, x, states, outs, grads = _run_both(mode, L, bidir, bf, hx, batched, bias, proj)
    assert outs[0].dtype == np.float32
    _compare(mode, nm, tm, x, states, outs, grads)


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
@pytest.mark.parametrize("mode", list(MODES))
def test_sequence_float64(mode):
    proj = 3 if mode == "lstm" else 0
    nm, tm, x, states, outs, grads = _run_both(mode, 2, True, True, True, True, True, proj,
                                               torch.float64)
    assert outs[0].dtype == np.float64
    _compare(mode, nm, tm, x, states, outs, grads, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", list(MODES))
def test_state_dict_keys_shapes_repr(mode):
    proj = 2 if mode == "lstm" else 0
    nm, tm = _pair(mode, 2, True, True, False, proj)
    tsd, nsd = tm.state_dict(), nm.state_dict()
    assert list(nsd) == list(tsd)
    for k in tsd:
        assert nsd[k].shape == tuple(tsd[k].shape)
    assert repr(nm) == repr(tm)
    nm2, tm2 = _pair(mode, 1, False, False, True, 0)
    assert repr(nm2) == repr(tm2)


@pytest.mark.parametrize("mode", list(MODES))
def test_eval_forward_matches_and_saves_nothing(mode):
    nm, tm = _pair(mode, 2, True, False, True)
    nm.eval()
    tm.eval()
    x, states = _inputs(mode, 2, True, False, True, True, 0, torch.float32)
    nstates = tuple(_np(s) for s in states) if mode == "lstm" else _np(states)
    with torch.no_grad():
        tout, _ = tm(x, states)
    nout, _ = nm(_np(x), nstates)
    _close(nout, tout)
    assert nm._saved is None


def test_init_distribution_matches_torch_bounds():
    # torch: every RNN parameter ~ U(-1/sqrt(hidden), 1/sqrt(hidden))
    for ncls, tcls, kw in MODES.values():
        nm = ncls(I, 16, 2, generator=0, **kw)
        tm = tcls(I, 16, 2, **kw)
        for (nn_, p), (tn, tp) in zip(nm.named_parameters(), tm.named_parameters()):
            assert nn_ == tn
            assert np.abs(p.data).max() <= 0.25
            assert np.abs(_np(tp)).max() <= 0.25


# ---------------------------------------------------------------------------- cells
CELLS = {
    "rnn_tanh": (nl.RNNCell, torch.nn.RNNCell, {}),
    "rnn_relu": (nl.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nl.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (nl.GRUCell, torch.nn.GRUCell, {}),
}


def _cell_pair(kind, bias=True, seed=0):
    ncls, tcls, kw = CELLS[kind]
    torch.manual_seed(seed)
    tm = tcls(I, H, bias=bias, **kw)
    nm = ncls(I, H, bias=bias, **kw)
    nm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return nm, tm


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("hx", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_forward_backward(kind, hx, batched):
    nm, tm = _cell_pair(kind, bias=hx)  # vary bias together with hx to cover both
    g = torch.Generator().manual_seed(3)
    lead = (N,) if batched else ()
    x = torch.randn(*lead, I, generator=g, requires_grad=True)
    if hx:
        h = torch.randn(*lead, H, generator=g, requires_grad=True)
        states = (h, torch.randn(*lead, H, generator=g, requires_grad=True)) \
            if kind == "lstm" else h
    else:
        states = None
    tres = tm(x, states)
    if kind == "lstm":
        gh, gc = torch.randn(tres[0].shape, generator=g), torch.randn(tres[1].shape, generator=g)
        ((tres[0] * gh).sum() + (tres[1] * gc).sum()).backward()
        nres = nm(_np(x), None if states is None else (_np(states[0]), _np(states[1])))
        _close(nres[0], tres[0])
        _close(nres[1], tres[1])
        gi, ghx, gcx = nm.backward(_np(gh), _np(gc))
        if hx:
            _close(ghx, states[0].grad)
            _close(gcx, states[1].grad)
    else:
        gh = torch.randn(tres.shape, generator=g)
        (tres * gh).sum().backward()
        nres = nm(_np(x), None if states is None else _np(states))
        _close(nres, tres)
        gi, ghx = nm.backward(_np(gh))
        if hx:
            _close(ghx, states.grad)
    _close(gi, x.grad)
    for name, tp in tm.named_parameters():
        _close(getattr(nm, name).grad, tp.grad)
    assert repr(nm) == repr(tm)


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_unrolled_shared_layer_rule(kind):
    """One cell unrolled over 5 steps: keep ``_saved`` per step, restore it before each
    step's backward; the accumulated gradients equal torch's."""
    nm, tm = _cell_pair(kind)
    g = torch.Generator().manual_seed(4)
    steps = 5
    xs = [torch.randn(N, I, generator=g, requires_grad=True) for _ in range(steps)]
    gys = [torch.randn(N, H, generator=g) for _ in range(steps)]
    h0 = torch.randn(N, H, generator=g, requires_grad=True)
    c0 = torch.randn(N, H, generator=g, requires_grad=True)
    state = (h0, c0) if kind == "lstm" else h0
    loss = 0
    for x, gy in zip(xs, gys):
        state = tm(x, state)
        loss = loss + ((state[0] if kind == "lstm" else state) * gy).sum()
    loss.backward()

    nstate = (_np(h0), _np(c0)) if kind == "lstm" else _np(h0)
    tape = []
    for x in xs:
        nstate = nm(_np(x), nstate)
        tape.append(nm._saved)
    dh = np.zeros((N, H), np.float32)
    dc = np.zeros((N, H), np.float32)
    gxs = []
    for saved, gy in zip(reversed(tape), reversed(gys)):
        nm._saved = saved
        if kind == "lstm":
            gx, dh, dc = nm.backward(dh + _np(gy), dc)
        else:
            gx, dh = nm.backward(dh + _np(gy))
        gxs.append(gx)
    for gx, x in zip(reversed(gxs), xs):
        _close(gx, x.grad)
    _close(dh, h0.grad)
    if kind == "lstm":
        _close(dc, c0.grad)
    for name, tp in tm.named_parameters():
        _close(getattr(nm, name).grad, tp.grad)


@pytest.mark.parametrize("mode", list(MODES))
def test_sequence_module_shared_layer_rule(mode):
    """The same module runs two chunks of one sequence (the second starts from the first's
    final state); swapping ``_saved`` gives torch's gradients for both chunks."""
    nm, tm = _pair(mode, 2, True, True, True)
    g = torch.Generator().manual_seed(5)
    x1 = torch.randn(N, T, I, generator=g, requires_grad=True)
    x2 = torch.randn(N, T + 2, I, generator=g, requires_grad=True)
    o1, s1 = tm(x1)
    o2, s2 = tm(x2, s1)
    g1 = torch.randn(o1.shape, generator=g)
    g2 = torch.randn(o2.shape, generator=g)
    ((o1 * g1).sum() + (o2 * g2).sum()).backward()

    n1, ns1 = nm(_np(x1))
    saved1 = nm._saved
    n2, _ = nm(_np(x2), ns1)
    _close(n2, o2)
    grads2 = nm.backward(_np(g2))
    nm._saved = saved1
    if mode == "lstm":
        gx2, gh, gc = grads2
        gx1 = nm.backward(_np(g1), gh, gc)
    else:
        gx2, gh = grads2
        gx1 = nm.backward(_np(g1), gh)
    _close(gx1, x1.grad)
    _close(gx2, x2.grad)
    for name, tp in tm.named_parameters():
        _close(getattr(nm, name).grad, tp.grad)


def test_lstm_grad_of_h_n_only():
    # grad_output None: only h_n feeds the loss (a classifier on the last state)
    nm, tm = _pair("lstm", 2, True, False, True)
    x, _ = _inputs("lstm", 2, True, False, False, True, 0, torch.float32)
    _, (th, _) = tm(x)
    th[-1].sum().backward()
    _, (nh, _) = nm(_np(x))
    gh = np.zeros_like(nh)
    gh[-1] = 1
    _close(nm.backward(None, gh), x.grad)
    for name, tp in tm.named_parameters():
        _close(getattr(nm, name).grad, tp.grad)


def test_functional_matches_torch_ops():
    # the functional forms take torch's flat weight list in _flat_weights order
    import numq.layers.functional as F

    nm, tm = _pair("gru", 2, True, False, True)
    x, h0 = _inputs("gru", 2, True, False, True, True, 0, torch.float32)
    params = [_np(w) for w in tm._flat_weights]
    out, hn = F.gru(_np(x), _np(h0), params, True, 2, 0.0, False, True, False)
    tout, thn = torch.gru(x, h0, tm._flat_weights, True, 2, 0.0, False, True, False)
    _close(out, tout)
    _close(hn, thn)
    cm, ct = _cell_pair("lstm")
    xc = torch.randn(N, I)
    hc = (torch.randn(N, H), torch.randn(N, H))
    h1, c1 = F.lstm_cell(_np(xc), (_np(hc[0]), _np(hc[1])), *[_np(p) for p in ct.parameters()])
    th1, tc1 = torch.lstm_cell(xc, hc, *ct.parameters())
    _close(h1, th1)
    _close(c1, tc1)
