"""Interop with PyTorch float models (issue 3, section 4).

A torch model's ``state_dict()`` converted with ``.detach().numpy()`` loads into the numq
twin of the same architecture (the same keys, strict) and gives the same outputs; and the
reverse: a numq model's ``state_dict()`` loads into torch (``torch.from_numpy``). Outputs
agree to rtol 1e-5 (float32; the two libraries sum products in different orders, which
moves the last bits).
"""
import collections

import numpy as np
import pytest

import numq
import numq.layers as L

torch = pytest.importorskip("torch")
nn = torch.nn

RTOL, ATOL = 1e-5, 1e-6


def to_numpy(sd):
    return collections.OrderedDict((k, v.detach().numpy()) for k, v in sd.items())


def to_torch(sd):
    return collections.OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in sd.items())


def _out(y):
    """The first output of a model (RNNs and attention return tuples)."""
    return y[0] if isinstance(y, tuple) else y


def check_both_directions(th_model, nq_model, *inputs):
    """torch -> numq and numq -> torch; same keys, same outputs in eval mode."""
    th_model.eval()
    nq_model.eval()
    th_sd, nq_sd = th_model.state_dict(), nq_model.state_dict()
    assert list(nq_sd) == list(th_sd)
    for k in th_sd:
        assert tuple(nq_sd[k].shape) == tuple(th_sd[k].shape), k

    # torch -> numq
    res = nq_model.load_state_dict(to_numpy(th_sd))
    assert res.missing_keys == [] and res.unexpected_keys == []
    with torch.no_grad():
        expect = _out(th_model(*[torch.from_numpy(x) for x in inputs])).numpy()
    got = _out(nq_model(*inputs))
    assert got.dtype == np.float32 and got.shape == expect.shape
    np.testing.assert_allclose(got, expect, rtol=RTOL, atol=ATOL)

    # numq -> torch: perturb numq's floats first so the check is not vacuous
    rng = np.random.default_rng(1)
    for p in nq_model.parameters():
        p.data += rng.standard_normal(p.shape).astype(p.dtype) * 0.05
    th_model.load_state_dict(to_torch(nq_model.state_dict()))
    with torch.no_grad():
        expect = _out(th_model(*[torch.from_numpy(x) for x in inputs])).numpy()
    np.testing.assert_allclose(_out(nq_model(*inputs)), expect, rtol=RTOL, atol=ATOL)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ the two classics
def digits_cnn_torch():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(256, 10))


def digits_cnn_numq(seed=0):
    g = np.random.default_rng(seed)
    return L.Sequential(L.Conv2d(1, 8, 3, padding=1, generator=g), L.ReLU(), L.MaxPool2d(2),
                        L.Conv2d(8, 16, 3, padding=1, generator=g), L.ReLU(), L.Flatten(),
                        L.Linear(256, 10, generator=g))


def test_digits_cnn():
    torch.manual_seed(0)
    check_both_directions(digits_cnn_torch(), digits_cnn_numq(), _x(16, 1, 8, 8))


def test_mlp():
    torch.manual_seed(0)
    th = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 32),
                       nn.Tanh(), nn.LayerNorm(32), nn.Linear(32, 5, bias=False))
    nq = L.Sequential(L.Linear(20, 64), L.ReLU(), L.Dropout(0.3), L.Linear(64, 32), L.Tanh(),
                      L.LayerNorm(32), L.Linear(32, 5, bias=False))
    check_both_directions(th, nq, _x(8, 20))


# --------------------------------------------------- buffers and nested custom models
class _TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1, groups=2),
                                     nn.Conv2d(8, 8, 1)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(8, 4), "aux": nn.Linear(8, 2)})
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = torch.relu(b(x)) + x
        x = self.pool(x).flatten(1)
        return self.heads["cls"](x)


class _NumqNet(L.Module):
    def __init__(self):
        super().__init__()
        self.stem = L.Sequential(L.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                 L.BatchNorm2d(8), L.ReLU())
        self.blocks = L.ModuleList([L.Conv2d(8, 8, 3, padding=1, groups=2), L.Conv2d(8, 8, 1)])
        self.heads = L.ModuleDict({"cls": L.Linear(8, 4), "aux": L.Linear(8, 2)})
        self.pool = L.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = np.maximum(b(x), 0) + x
        x = self.pool(x).reshape(x.shape[0], -1)
        return self.heads["cls"](x)


def test_nested_model_with_batchnorm_buffers():
    torch.manual_seed(0)
    th = _TorchNet()
    th.train()
    with torch.no_grad():  # non-trivial running statistics and num_batches_tracked
        for i in range(3):
            th(torch.from_numpy(_x(4, 3, 12, 12, seed=10 + i)) * 2 + 1)
    assert int(th.stem[1].num_batches_tracked) == 3
    nq = _NumqNet()
    check_both_directions(th, nq, _x(5, 3, 12, 12))
    np.testing.assert_array_equal(nq.stem[1].num_batches_tracked, 3)
    np.testing.assert_array_equal(nq.stem[1].running_var,
                                  th.stem[1].running_var.numpy())  # loaded back unchanged


def test_embedding_and_recurrent_model():
    class TorchRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(30, 8)
            self.lstm = nn.LSTM(8, 12, num_layers=2, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(24, 6, batch_first=True)
            self.fc = nn.Linear(6, 3)

        def forward(self, tokens):
            y, _ = self.lstm(self.emb(tokens))
            y, h = self.gru(y)
            return self.fc(h[-1])

    class NumqRNN(L.Module):
        def __init__(self):
            super().__init__()
            self.emb = L.Embedding(30, 8)
            self.lstm = L.LSTM(8, 12, num_layers=2, batch_first=True, bidirectional=True)
            self.gru = L.GRU(24, 6, batch_first=True)
            self.fc = L.Linear(6, 3)

        def forward(self, tokens):
            y, _ = self.lstm(self.emb(tokens))
            y, h = self.gru(y)
            return self.fc(h[-1])

    torch.manual_seed(0)
    tokens = np.random.default_rng(0).integers(0, 30, (4, 7))
    th, nq = TorchRNN(), NumqRNN()
    th.eval()
    nq.eval()
    nq.load_state_dict(to_numpy(th.state_dict()))
    with torch.no_grad():
        expect = th(torch.from_numpy(tokens)).numpy()
    np.testing.assert_allclose(nq(tokens), expect, rtol=RTOL, atol=ATOL)
    th.load_state_dict(to_torch(nq.state_dict()))
    assert list(nq.state_dict()) == list(th.state_dict())


def test_multihead_attention():
    torch.manual_seed(0)
    th = nn.MultiheadAttention(16, 4, batch_first=True)
    nq = L.MultiheadAttention(16, 4, batch_first=True)
    q, k = _x(2, 5, 16), _x(2, 7, 16, seed=1)
    check_both_directions(th, nq, q, k, k)


# ------------------------------------------------------- trained numq model -> torch
def test_numq_trained_cnn_predicts_the_same_in_torch():
    """Train a few numq steps (so the weights are numq's own), then run them in torch."""
    nq = digits_cnn_numq(seed=3)
    opt = numq.optim.Adam(nq.parameters(), lr=1e-2)
    loss_fn = L.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    X = rng.random((64, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    for _ in range(5):
        loss = loss_fn(nq(X), y)
        opt.zero_grad()
        nq.backward(loss_fn.backward())
        opt.step()
    th = digits_cnn_torch()
    th.load_state_dict(to_torch(nq.state_dict()))
    th.eval()
    nq.eval()
    with torch.no_grad():
        logits = th(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(nq(X), logits, rtol=RTOL, atol=ATOL)
    assert (nq(X).argmax(1) == logits.argmax(1)).all()
    # and the loss numq reports is torch's loss of the same logits
    np.testing.assert_allclose(loss_fn(nq(X), y),
                               nn.functional.cross_entropy(torch.from_numpy(nq(X)),
                                                           torch.from_numpy(y)).item(),
                               rtol=1e-6)


def test_raw_torch_state_dict_loads_and_mismatches_are_clear():
    torch.manual_seed(0)
    th = digits_cnn_torch()
    nq = digits_cnn_numq()
    nq.load_state_dict(th.state_dict())  # CPU tensors convert through __array__
    np.testing.assert_array_equal(nq[0].weight.data, th[0].weight.detach().numpy())
    wrong = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(256, 10))
    with pytest.raises(ValueError, match=r"size mismatch for 0.weight"):
        nq.load_state_dict(to_numpy(wrong.state_dict()))
    partial = to_numpy(th.state_dict())
    del partial["6.bias"]
    partial["7.weight"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match=r"Missing key\(s\).*'6.bias'.*Unexpected.*'7.weight'"):
        nq.load_state_dict(partial)
