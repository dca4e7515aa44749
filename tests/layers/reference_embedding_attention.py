"""Slow, obviously-correct NumPy references for embeddings and attention (loops, no tricks)."""
import math

import numpy as np


def embedding_bag_ref(weight, bags, mode, psw=None, padding_idx=None):
    """``bags``: list of lists of row indices (``psw`` the same nesting). Returns (out, grad_fn).

    ``grad_fn(g)`` returns ``(grad_weight, grad_psw as nested lists)``.
    """
    n, d = weight.shape
    out = np.zeros((len(bags), d), np.float64)
    argmax = np.full((len(bags), d), -1)
    sizes = []
    for b, bag in enumerate(bags):
        rows = [(i, r) for i, r in enumerate(bag) if r != padding_idx]
        sizes.append(len(rows))
        if not rows:
            continue
        if mode == "max":
            for j in range(d):
                best = None
                for _, r in rows:
                    if best is None or weight[r, j] > weight[best, j]:
                        best = r
                argmax[b, j] = best
                out[b, j] = weight[best, j]
        else:
            for i, r in rows:
                s = 1.0 if psw is None else psw[b][i]
                out[b] += s * weight[r].astype(np.float64)
            if mode == "mean":
                out[b] /= len(rows)

    def grad_fn(g, freq=None):
        gw = np.zeros((n, d), np.float64)
        gp = [[0.0] * len(bag) for bag in bags]
        for b, bag in enumerate(bags):
            if mode == "max":
                for j in range(d):
                    if argmax[b, j] >= 0:
                        gw[argmax[b, j], j] += g[b, j]
                continue
            for i, r in enumerate(bag):
                if r == padding_idx:
                    continue
                s = 1.0 if psw is None else psw[b][i]
                if mode == "mean":
                    s /= sizes[b]
                if freq is not None:
                    s /= freq[r]
                gw[r] += s * g[b]
                if psw is not None:
                    gp[b][i] = float(np.dot(g[b], weight[r]))
        return gw, gp

    return out, grad_fn


def softmax_ref(s, safe):
    out = np.empty_like(s, dtype=np.float64)
    for idx in np.ndindex(s.shape[:-1]):
        row = s[idx].astype(np.float64)
        if safe and np.all(np.isneginf(row)):
            out[idx] = 0.0
            continue
        e = np.exp(row - row.max())
        out[idx] = e / e.sum()
    return out


def sdpa_ref(q, k, v, bias=None, scale=None):
    """One (L, E) x (S, E) x (S, Ev) attention with an optional (L, S) additive bias."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q.astype(np.float64) @ k.T.astype(np.float64)) * scale
    if bias is not None:
        s = s + bias
    return softmax_ref(s, safe=True) @ v.astype(np.float64)


def mha_ref(query, key, value, params, num_heads, attn_bias=None, need_weights=True):
    """Unbatched multi-head attention, head by head: query (L, E), key (S, kdim), value (S, vdim).

    ``params``: dict with wq, wk, wv, bq, bk, bv (biases may be None), wo, bo, and optional
    bias_k / bias_v (E,) and add_zero_attn. ``attn_bias``: (H, L, S) additive float bias.
    Returns (out (L, E), per-head weights (H, L, S')).
    """
    f = np.float64
    E = params["wq"].shape[0]
    hd = E // num_heads

    def lin(x, w, b):
        y = x.astype(f) @ w.T.astype(f)
        return y if b is None else y + b

    q, k, v = (lin(query, params["wq"], params["bq"]), lin(key, params["wk"], params["bk"]),
               lin(value, params["wv"], params["bv"]))
    if params.get("bias_k") is not None:
        k = np.vstack([k, params["bias_k"].reshape(1, E)])
        v = np.vstack([v, params["bias_v"].reshape(1, E)])
    heads, weights = [], []
    for h in range(num_heads):
        sl = slice(h * hd, (h + 1) * hd)
        kh, vh = k[:, sl], v[:, sl]
        if params.get("add_zero_attn"):
            kh = np.vstack([kh, np.zeros((1, hd))])
            vh = np.vstack([vh, np.zeros((1, hd))])
        s = q[:, sl] @ kh.T / math.sqrt(hd)
        if attn_bias is not None:
            b = np.zeros_like(s)
            b[:, :attn_bias.shape[-1]] = attn_bias[h]
            s = s + b
        p = softmax_ref(s, safe=not need_weights)
        weights.append(p)
        heads.append(p @ vh)
    o = np.hstack(heads)
    return lin(o, params["wo"], params["bo"]), np.stack(weights)
