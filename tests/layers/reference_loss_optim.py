"""Slow, obviously-correct references for the losses and optimizers (float64, loops).

Written from the formulas in torch's documentation, not from numq's code.
"""
import math

import numpy as np


def _batch_items(x):
    """Yield ``(logits over classes, batch index)`` for (C,), (N, C), (N, C, d...)."""
    if x.ndim == 1:
        yield x, ()
        return
    for idx in np.ndindex((x.shape[0],) + x.shape[2:]):
        yield x[(idx[0], slice(None)) + idx[1:]], idx


def log_softmax(z):
    m = max(z)
    s = sum(math.exp(v - m) for v in z)
    return [v - m - math.log(s) for v in z]


def cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    x = np.asarray(x, np.float64)
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    prob = np.asarray(t).dtype.kind == "f"
    losses, denom = [], 0.0
    out_shape = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    for z, idx in _batch_items(x):
        lp = log_softmax(list(z))
        if prob:
            q = np.asarray(t, np.float64)[(idx[0], slice(None)) + idx[1:]] if idx else \
                np.asarray(t, np.float64)
            q = q * (1 - eps) + eps / C
            losses.append(-sum(w[c] * q[c] * lp[c] for c in range(C)))
            denom += 1
            continue
        y = int(np.asarray(t)[idx])
        if y == ignore_index:
            losses.append(0.0)
            continue
        nll = -w[y] * lp[y]
        smooth = -sum(w[c] * lp[c] for c in range(C))
        losses.append((1 - eps) * nll + eps / C * smooth)
        denom += w[y]
    losses = np.array(losses).reshape(out_shape)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / denom if denom else float("nan")


def nll_loss(x, t, weight=None, ignore_index=-100, reduction="mean"):
    x = np.asarray(x, np.float64)
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    losses, denom = [], 0.0
    out_shape = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    for z, idx in _batch_items(x):
        y = int(np.asarray(t)[idx])
        if y == ignore_index:
            losses.append(0.0)
            continue
        losses.append(-w[y] * z[y])
        denom += w[y]
    losses = np.array(losses).reshape(out_shape)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def sgd(params, grads_per_step, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
        nesterov=False, maximize=False):
    """torch.optim.SGD's documented algorithm, element by element, in float64."""
    params = [np.array(p, np.float64) for p in params]
    bufs = [None] * len(params)
    for t, grads in enumerate(grads_per_step):
        for i, (p, g) in enumerate(zip(params, grads)):
            for j in np.ndindex(p.shape):
                gj = -g[j] if maximize else g[j]
                gj = gj + weight_decay * p[j]
                if momentum:
                    if t == 0:
                        if bufs[i] is None:
                            bufs[i] = np.zeros_like(p)
                        bufs[i][j] = gj
                    else:
                        bufs[i][j] = momentum * bufs[i][j] + (1 - dampening) * gj
                    gj = gj + momentum * bufs[i][j] if nesterov else bufs[i][j]
                p[j] = p[j] - lr * gj
    return params


def adam(params, grads_per_step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
         amsgrad=False, maximize=False, decoupled=False):
    """torch.optim.Adam / AdamW's documented algorithm, element by element, in float64."""
    b1, b2 = betas
    params = [np.array(p, np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, (p, g) in enumerate(zip(params, grads)):
            for j in np.ndindex(p.shape):
                gj = -g[j] if maximize else g[j]
                if decoupled:
                    p[j] = p[j] * (1 - lr * weight_decay)
                else:
                    gj = gj + weight_decay * p[j]
                m[i][j] = b1 * m[i][j] + (1 - b1) * gj
                v[i][j] = b2 * v[i][j] + (1 - b2) * gj * gj
                mhat = m[i][j] / (1 - b1 ** t)
                if amsgrad:
                    vmax[i][j] = max(vmax[i][j], v[i][j])
                    vhat = vmax[i][j] / (1 - b2 ** t)
                else:
                    vhat = v[i][j] / (1 - b2 ** t)
                p[j] = p[j] - lr * mhat / (math.sqrt(vhat) + eps)
    return params
