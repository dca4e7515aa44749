"""The issue's real training test: a small CNN trained with numq on scikit-learn's digits.

Conv2d-ReLU-MaxPool2d-Conv2d-ReLU-Flatten-Linear, CrossEntropyLoss, Adam or SGD with
momentum, 8 epochs of mini-batches of 32 on a fixed stratified 75/25 split of the 1797
8x8 images, fixed seeds; the learning rate drops 5x for the last 3 epochs (through
``param_groups``, as a scheduler would) so the final accuracy does not depend on where
the last noisy step landed. Over model seeds 0-5 the final test accuracy was 96-98%;
the bar is the issue's 95%.
"""
import numpy as np
import pytest

import numq
import numq.layers as L

pytest.importorskip("sklearn")


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def digits_cnn(seed=0):
    g = np.random.default_rng(seed)
    return L.Sequential(
        L.Conv2d(1, 8, 3, padding=1, generator=g), L.ReLU(), L.MaxPool2d(2),   # 8 x 4 x 4
        L.Conv2d(8, 16, 3, padding=1, generator=g), L.ReLU(), L.Flatten(),     # 256
        L.Linear(16 * 4 * 4, 10, generator=g))


def train(model, opt, Xtr, ytr, epochs=8, batch_size=32, seed=0, decay_at=5):
    loss_fn = L.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        if epoch == decay_at:
            for group in opt.param_groups:
                group["lr"] *= 0.2
        model.train()
        total = 0.0
        perm = rng.permutation(len(Xtr))
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            out = model(Xtr[idx])
            loss = loss_fn(out, ytr[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            total += float(loss) * len(idx)
        losses.append(total / len(Xtr))
    return losses


def accuracy(model, X, y):
    model.eval()
    return float((model(X).argmax(axis=1) == y).mean())


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_digits_cnn_reaches_95_percent(optimizer):
    Xtr, Xte, ytr, yte = digits_split()
    model = digits_cnn(seed=0)
    if optimizer == "adam":
        opt = numq.optim.Adam(model.parameters(), lr=1e-2)
    else:
        opt = numq.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = train(model, opt, Xtr, ytr)
    assert losses[-1] < 0.25 * losses[0], losses
    acc = accuracy(model, Xte, yte)
    assert acc >= 0.95, f"test accuracy {acc:.3f} (losses {np.round(losses, 3)})"
    # inference keeps no per-call state
    assert all(m._saved is None for m in model.modules())
    assert all(p.dtype == np.float32 for p in model.parameters())
