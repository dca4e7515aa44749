"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``, with backward.

Both forwards mirror ``torch.nn.functional`` (names, arguments, defaults, shapes, mask
conventions) and add three keyword-only numq extensions:

- ``generator``: source of the dropout mask (``numq._random.resolve``: None is numq's
  global generator). numq's masks differ from torch's random stream.
- ``dropout_mask``: a boolean keep-mask of the attention weights' shape, used instead of
  drawing one (reproducible training, finite-difference checks).
- ``return_saved``: also return an opaque object holding what the matching
  ``*_backward(grad_output, saved)`` needs (the role of torch's autograd context).

Everything is NumPy/BLAS (batched ``matmul``); arithmetic is in the dtype of the
weights (MHA) or of ``query`` (SDPA), float32 or float64. Float32 sums run in a
different order from torch's kernels, so results agree to rounding, not bit for bit.

Masks, as torch: a boolean ``attn_mask`` of SDPA marks positions that TAKE PART in
attention, while MHA's boolean ``attn_mask`` / ``key_padding_mask`` mark positions that
are IGNORED; float masks are added to the scores. A query row whose keys are all masked
gives NaN weights on MHA's ``need_weights=True`` path (torch's plain softmax) and zeros
on SDPA and MHA's ``need_weights=False`` path (torch's "safe" softmax there).
"""
import math
import numbers

import numpy as np

from ..._random import resolve
from ..parameter import Parameter

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward",
           "multi_head_attention_forward", "multi_head_attention_backward"]


# ------------------------------------------------------------------ helpers
def _arr(x):
    return x.data if isinstance(x, Parameter) else x


def _float(x, arg, dtype=None):
    """``x`` as a float array (cast to ``dtype`` when given); TypeError otherwise."""
    x = _arr(x)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {x.dtype}")
    if dtype is None:
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return x.astype(dtype, copy=False)


def _check_p(p, arg="dropout_p"):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"{arg} must be a float; got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{arg} must be in [0, 1]; got {p}")
    return p


def _softmax(s, safe):
    """Softmax over the last axis, in place on ``s``.

    ``safe``: rows that are entirely -inf give zeros instead of NaN.
    """
    m = s.max(axis=-1, keepdims=True)
    if safe:
        m[np.isneginf(m)] = 0
    with np.errstate(invalid="ignore"):  # -inf - -inf: NaN rows, as torch's softmax
        s -= m
    np.exp(s, out=s)
    tot = s.sum(axis=-1, keepdims=True)
    if safe:
        tot[tot == 0] = 1
    s /= tot
    return s


def _softmax_backward(p, gp):
    """dL/ds for ``p = softmax(s)`` given dL/dp (NaN rows stay NaN, zero rows zero)."""
    gs = gp * p
    gs -= p * gs.sum(axis=-1, keepdims=True)
    return gs


def _keep_multiplier(shape, p, dtype, generator, dropout_mask):
    """``mask / (1 - p)`` for dropout on attention weights, or None for no dropout."""
    if p == 0.0:
        return None
    if dropout_mask is not None:
        m = np.asarray(dropout_mask)
        if m.dtype != np.bool_:
            raise TypeError(f"dropout_mask must be a bool array; got dtype {m.dtype}")
        if m.shape != tuple(shape):
            raise ValueError(f"dropout_mask must have the attention weights' shape "
                             f"{tuple(shape)}; got {m.shape}")
    else:
        # keep when u >= p (probability 1 - p), numq's dropout convention
        m = resolve(generator).random(shape, dtype=np.float32) >= np.float32(p)
    if p == 1.0:
        return np.zeros(shape, dtype)
    return m * dtype.type(1.0 / (1.0 - p))


def _sum_to(g, shape):
    """Reduce a broadcast gradient ``g`` back to ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _t(x):
    return np.swapaxes(x, -1, -2)


def _mm(a, b):
    """Batched ``a @ b`` on C-contiguous copies: NumPy's stacked matmul only reaches BLAS
    fast for contiguous matrices (a transposed second operand was ~20x slower)."""
    return np.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))


def _linear(x, w):
    """``x @ w.T`` over the last axis as one 2-d GEMM."""
    x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    return np.matmul(x2, w.T).reshape(x.shape[:-1] + (w.shape[0],))


class _Saved:
    """Opaque context passed from a forward (``return_saved=True``) to its backward."""

    __slots__ = ("__dict__",)


# ---------------------------------------------------- scaled dot-product attention
def _sdpa_bias(attn_mask, is_causal, L, S, dtype, target):
    """The additive float bias (or None) for SDPA's mask conventions."""
    if is_causal:
        if attn_mask is not None:
            raise ValueError("attn_mask must be None when is_causal=True (the causal mask "
                             "is built from L and S)")
        return np.where(np.tri(L, S, dtype=bool), dtype.type(0), dtype.type(-np.inf))
    if attn_mask is None:
        return None
    m = np.asarray(_arr(attn_mask))
    if m.dtype == np.bool_:
        b = np.where(m, dtype.type(0), dtype.type(-np.inf))
    elif m.dtype.kind == "f":
        b = m.astype(dtype, copy=False)
    else:
        raise TypeError(f"attn_mask must be a bool or float array; got dtype {m.dtype}")
    try:
        ok = np.broadcast_shapes(b.shape, target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"attn_mask must broadcast to the attention weights' shape "
                         f"{target}; got {b.shape}")
    return b


def _sdpa_core(q, k, v, bias, scale, keep, safe):
    """softmax(q k^T * scale + bias) (dropped) @ v; returns (out, probs, dropped probs)."""
    s = _mm(q * scale, _t(k))
    if bias is not None:
        s += bias
    p = _softmax(s, safe)
    pd = p if keep is None else p * keep
    return _mm(pd, v), p, pd


def _sdpa_core_backward(g, q, k, v, p, pd, keep, scale):
    """Gradients of :func:`_sdpa_core` w.r.t. q, k, v (broadcast shapes)."""
    gpd = _mm(g, _t(v))
    gv = _mm(_t(pd), g)
    gp = gpd if keep is None else gpd * keep
    gs = _softmax_backward(p, gp)
    gq = _mm(gs, k) * scale
    gk = _mm(_t(gs), q) * scale
    return gq, gk, gv


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 generator=None, dropout_mask=None, return_saved=False):
    """``softmax(query @ key^T * scale + mask) @ value`` (``torch.nn.functional`` name).

    Parameters
    ----------
    query : ndarray, shape (..., L, E)
    key : ndarray, shape (..., S, E)
    value : ndarray, shape (..., S, Ev)
        Leading dimensions broadcast. All are cast to ``query``'s float dtype.
    attn_mask : ndarray, optional
        Broadcastable to (..., L, S). Bool: True marks positions that take part;
        float: added to the scores.
    dropout_p : float
        Dropout probability on the attention weights (always applied when > 0, as torch's
        functional form does).
    is_causal : bool
        Mask out keys after each query (upper-left aligned); ``attn_mask`` must be None.
    scale : float, optional
        Default ``1 / sqrt(E)``.
    enable_gqa : bool
        Grouped-query attention: ``key``/``value`` have fewer heads (dim -3) than
        ``query``, each shared by ``Hq / Hkv`` consecutive query heads.
    generator, dropout_mask, return_saved
        numq extensions (see the module docstring).

    Returns
    -------
    ndarray, shape (..., L, Ev); with ``return_saved`` also the context for
    :func:`scaled_dot_product_attention_backward`.
    """
    q = _float(query, "query")
    dtype = q.dtype
    k = _float(key, "key", dtype)
    v = _float(value, "value", dtype)
    for name, x in (("query", q), ("key", k), ("value", v)):
        if x.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., seq, features); "
                             f"got shape {x.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"query and key must have the same last dimension; got "
                         f"{q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"key and value must have the same sequence length (dim -2); got "
                         f"{k.shape[-2]} and {v.shape[-2]}")
    if not isinstance(enable_gqa, (bool, np.bool_)):
        raise TypeError(f"enable_gqa must be a bool; got {type(enable_gqa).__name__}")
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"is_causal must be a bool; got {type(is_causal).__name__}")
    rep = 1
    kx, vx = k, v
    if enable_gqa and q.ndim >= 3:
        hq, hk = q.shape[-3], k.shape[-3]
        if k.ndim < 3 or v.ndim < 3 or hk != v.shape[-3] or hk == 0 or hq % hk:
            raise ValueError(f"enable_gqa: key and value need the same number of heads "
                             f"(dim -3) dividing query's {hq}; got key {k.shape}, "
                             f"value {v.shape}")
        rep = hq // hk
        if rep > 1:
            kx, vx = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    try:
        batch = np.broadcast_shapes(q.shape[:-2], kx.shape[:-2], vx.shape[:-2])
    except ValueError:
        raise ValueError(f"the batch dimensions of query {q.shape}, key {k.shape} and value "
                         f"{v.shape} do not broadcast") from None
    L, S = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    elif isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a float or None; got {type(scale).__name__}")
    scale = dtype.type(scale)
    p = _check_p(dropout_p)
    bias = _sdpa_bias(attn_mask, bool(is_causal), L, S, dtype, batch + (L, S))
    keep = _keep_multiplier(batch + (L, S), p, dtype, generator, dropout_mask)
    out, probs, pd = _sdpa_core(q, kx, vx, bias, scale, keep, safe=True)
    if not return_saved:
        return out
    saved = _Saved()
    saved.__dict__.update(q=q, k=kx, v=vx, probs=probs, pd=pd, keep=keep, scale=scale, rep=rep,
                          shapes=(q.shape, k.shape, v.shape), out_shape=out.shape)
    return out, saved


def scaled_dot_product_attention_backward(grad_output, saved):
    """Gradients of :func:`scaled_dot_product_attention` w.r.t. query, key and value.

    Parameters
    ----------
    grad_output : ndarray, shape of the forward's output
    saved
        The context returned by the forward with ``return_saved=True``.

    Returns
    -------
    (grad_query, grad_key, grad_value), shaped as the forward's inputs.
    """
    if not isinstance(saved, _Saved) or "probs" not in saved.__dict__:
        raise TypeError("saved must be the context returned by scaled_dot_product_attention("
                        "..., return_saved=True)")
    s = saved
    g = _float(grad_output, "grad_output", s.q.dtype)
    if g.shape != s.out_shape:
        raise ValueError(f"grad_output must have the output's shape {s.out_shape}; "
                         f"got {g.shape}")
    gq, gk, gv = _sdpa_core_backward(g, s.q, s.k, s.v, s.probs, s.pd, s.keep, s.scale)
    qs, ks, vs = s.shapes
    if s.rep > 1:  # fold the repeated kv heads back
        gk = gk.reshape(gk.shape[:-3] + (ks[-3], s.rep) + gk.shape[-2:]).sum(axis=-3)
        gv = gv.reshape(gv.shape[:-3] + (vs[-3], s.rep) + gv.shape[-2:]).sum(axis=-3)
    return _sum_to(gq, qs), _sum_to(gk, ks), _sum_to(gv, vs)


# ----------------------------------------------------------- multi-head attention
def _mask_bias(mask, arg, dtype):
    """torch's ``_canonical_mask``: bool True -> -inf, float kept (cast)."""
    if mask is None:
        return None
    m = np.asarray(_arr(mask))
    if m.dtype == np.bool_:
        return np.where(m, dtype.type(-np.inf), dtype.type(0))
    if m.dtype.kind == "f":
        return m.astype(dtype, copy=False)
    raise TypeError(f"{arg} must be a bool or float array; got dtype {m.dtype}")


def _proj_weight(w, arg, shape, dtype):
    if w is None:
        raise ValueError(f"{arg} must be given")
    a = _float(w, arg, dtype)
    if a.shape != shape:
        raise ValueError(f"{arg} must have shape {shape}; got {a.shape}")
    return a


def _mha_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                 out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
                 use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight,
                 average_attn_weights, is_causal, batch_first, generator, dropout_mask, save):
    """Validated MHA forward. Inputs are (L, N, E) or, with ``batch_first``, (N, L, E).

    Returns ``(attn_output, attn_weights, saved or None)``.
    """
    wo = _float(out_proj_weight, "out_proj_weight")
    dtype = wo.dtype
    q_in = _float(query, "query", dtype)
    k_in = _float(key, "key", dtype)
    v_in = _float(value, "value", dtype)
    if q_in.ndim not in (2, 3):
        raise ValueError(f"query must be 2-d (unbatched) or 3-d (batched); got shape "
                         f"{q_in.shape}")
    batched = q_in.ndim == 3
    if k_in.ndim != q_in.ndim or v_in.ndim != q_in.ndim:
        raise ValueError(f"key and value must be {q_in.ndim}-d like query; got shapes "
                         f"{k_in.shape} and {v_in.shape}")
    # work batch-first: (N, L, E)
    if not batched:
        qb, kb, vb = q_in[None], k_in[None], v_in[None]
    elif batch_first:
        qb, kb, vb = q_in, k_in, v_in
    else:
        qb, kb, vb = (x.transpose(1, 0, 2) for x in (q_in, k_in, v_in))
    N, L, E = qb.shape
    S = kb.shape[1]
    H = num_heads
    if isinstance(H, (bool, np.bool_)) or not isinstance(H, numbers.Integral) or H <= 0:
        raise ValueError(f"num_heads must be a positive int; got {num_heads!r}")
    H = int(H)
    if E != embed_dim_to_check:
        raise ValueError(f"query's embedding dimension must be embed_dim_to_check = "
                         f"{embed_dim_to_check}; got {E}")
    if E % H:
        raise ValueError(f"embed_dim {E} must be divisible by num_heads {H}")
    hd = E // H
    if kb.shape[0] != N or vb.shape[0] != N:
        raise ValueError(f"query, key and value must have the same batch size; got shapes "
                         f"{q_in.shape}, {k_in.shape}, {v_in.shape}")
    if vb.shape[1] != S:
        raise ValueError(f"key and value must have the same sequence length; got shapes "
                         f"{k_in.shape} and {v_in.shape}")
    if wo.shape != (E, E):
        raise ValueError(f"out_proj_weight must have shape {(E, E)}; got {wo.shape}")
    bo = None if out_proj_bias is None else _float(out_proj_bias, "out_proj_bias", dtype)
    if bo is not None and bo.shape != (E,):
        raise ValueError(f"out_proj_bias must have shape {(E,)}; got {bo.shape}")

    # ---- projection weights
    packed = not use_separate_proj_weight
    if packed:
        if kb.shape[2] != E or vb.shape[2] != E:
            raise ValueError(f"key and value must have embedding dimension {E} with a packed "
                             f"in_proj_weight; got shapes {k_in.shape} and {v_in.shape}")
        w_in = _proj_weight(in_proj_weight, "in_proj_weight", (3 * E, E), dtype)
        wq, wk, wv = w_in[:E], w_in[E:2 * E], w_in[2 * E:]
    else:
        wq = _proj_weight(q_proj_weight, "q_proj_weight", (E, E), dtype)
        wk = _proj_weight(k_proj_weight, "k_proj_weight", (E, kb.shape[2]), dtype)
        wv = _proj_weight(v_proj_weight, "v_proj_weight", (E, vb.shape[2]), dtype)
    b_in = None
    if in_proj_bias is not None:
        b_in = _float(in_proj_bias, "in_proj_bias", dtype)
        if b_in.shape != (3 * E,):
            raise ValueError(f"in_proj_bias must have shape {(3 * E,)}; got {b_in.shape}")
    if (bias_k is None) != (bias_v is None):
        raise ValueError("bias_k and bias_v must be given together")
    has_bkv = bias_k is not None
    if has_bkv:
        bk = _float(bias_k, "bias_k", dtype)
        bv = _float(bias_v, "bias_v", dtype)
        for name, b in (("bias_k", bk), ("bias_v", bv)):
            if b.size != E:
                raise ValueError(f"{name} must have {E} elements (shape (1, 1, {E})); got "
                                 f"shape {b.shape}")
    add_zero_attn = bool(add_zero_attn)
    p = _check_p(dropout_p)
    if not training:
        p = 0.0

    # ---- masks (validated on the caller's shapes, as torch)
    kpm = _mask_bias(key_padding_mask, "key_padding_mask", dtype)
    am = _mask_bias(attn_mask, "attn_mask", dtype)
    if kpm is not None:
        want = (N, S) if batched else (S,)
        if kpm.shape != want:
            raise ValueError(f"key_padding_mask must have shape {want}; got {kpm.shape}")
        kpm = kpm.reshape(N, 1, 1, S)
    if is_causal and attn_mask is None:
        raise ValueError("is_causal=True needs attn_mask (is_causal is only a hint that "
                         "attn_mask is the causal mask)")
    causal_sdpa = bool(is_causal) and kpm is None and not need_weights
    if am is not None:
        if am.ndim == 2:
            if am.shape != (L, S):
                raise ValueError(f"a 2-d attn_mask must have shape (L, S) = {(L, S)}; got "
                                 f"{am.shape}")
            am = am[None, None]
        elif am.ndim == 3:
            want = (N * H, L, S)
            if am.shape != want:
                raise ValueError(f"a 3-d attn_mask must have shape (N * num_heads, L, S) = "
                                 f"{want}; got {am.shape}")
            am = am.reshape(N, H, L, S)
        else:
            raise ValueError(f"attn_mask must be 2-d or 3-d; got shape {am.shape}")
    extra = int(has_bkv) + int(add_zero_attn)  # key positions appended after S
    bias = None
    if causal_sdpa:
        # torch hands is_causal to SDPA (over all S + extra keys) and drops attn_mask here
        bias = np.where(np.tri(L, S + extra, dtype=bool), dtype.type(0),
                        dtype.type(-np.inf))[None, None]
    elif am is not None or kpm is not None:
        bias = np.zeros((N if (kpm is not None or am.shape[0] > 1) else 1,
                         H if (am is not None and am.shape[1] > 1) else 1, L, S + extra), dtype)
        if am is not None:
            bias[..., :S] += am
        if kpm is not None:
            bias[..., :S] += kpm

    # ---- projections (batch-first)
    qb, kb, vb = (np.ascontiguousarray(x) for x in (qb, kb, vb))
    q = _linear(qb, wq)
    k = _linear(kb, wk)
    v = _linear(vb, wv)
    if b_in is not None:
        q += b_in[:E]
        k += b_in[E:2 * E]
        v += b_in[2 * E:]
    if has_bkv:
        k = np.concatenate([k, np.broadcast_to(bk.reshape(1, 1, E), (N, 1, E))], axis=1)
        v = np.concatenate([v, np.broadcast_to(bv.reshape(1, 1, E), (N, 1, E))], axis=1)
    Sx = k.shape[1]
    qh, kh, vh = (np.ascontiguousarray(x.reshape(N, x.shape[1], H, hd).transpose(0, 2, 1, 3))
                  for x in (q, k, v))
    if add_zero_attn:
        z = np.zeros((N, H, 1, hd), dtype)
        kh = np.concatenate([kh, z], axis=2)
        vh = np.concatenate([vh, z], axis=2)
    Sz = kh.shape[2]

    c = dtype.type(math.sqrt(1.0 / hd))
    keep = _keep_multiplier((N, H, L, Sz), p, dtype, generator, dropout_mask)
    oh, probs, pd = _sdpa_core(qh, kh, vh, bias, c, keep, safe=not need_weights)
    o = oh.transpose(0, 2, 1, 3).reshape(N, L, E)
    out = _linear(o, wo)
    if bo is not None:
        out += bo

    weights = None
    if need_weights:
        # a copy when saving: the caller may write into the weights before backward
        weights = pd.mean(axis=1) if average_attn_weights else (pd.copy() if save else pd)
        if not batched:
            weights = weights[0]
    if not batched:
        out = out[0]
    elif not batch_first:
        out = out.transpose(1, 0, 2)

    saved = None
    if save:
        saved = _Saved()
        saved.__dict__.update(
            qb=qb, kb=kb, vb=vb, wq=wq, wk=wk, wv=wv, wo=wo, packed=packed,
            has_in_bias=b_in is not None, has_out_bias=bo is not None, has_bkv=has_bkv,
            add_zero_attn=add_zero_attn, qh=qh, kh=kh, vh=vh, probs=probs, pd=pd, keep=keep,
            o=o, c=c, H=H, batched=batched, batch_first=batch_first,
            need_weights=bool(need_weights), average=bool(average_attn_weights),
            out_shape=out.shape, weights_shape=None if weights is None else weights.shape,
            in_shapes=(q_in.shape, k_in.shape, v_in.shape))
    return out, weights, saved


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False, *,
                                 generator=None, dropout_mask=None, return_saved=False):
    """Multi-head attention (``torch.nn.functional.multi_head_attention_forward``).

    Parameters
    ----------
    query : ndarray, shape (L, N, E) or unbatched (L, E)
    key : ndarray, shape (S, N, kdim) or (S, kdim)
    value : ndarray, shape (S, N, vdim) or (S, vdim)
    embed_dim_to_check, num_heads : int
    in_proj_weight : ndarray (3E, E) or None; in_proj_bias : ndarray (3E,) or None
    bias_k, bias_v : ndarray (1, 1, E) or None
        Appended to the projected keys / values as one extra position.
    add_zero_attn : bool
        Append an all-zero key / value position (per head) after that.
    dropout_p : float
        Dropout on the attention weights when ``training``.
    out_proj_weight : ndarray (E, E); out_proj_bias : ndarray (E,) or None
        Their dtype (float32 or float64) is the compute dtype; inputs are cast to it.
    training : bool
    key_padding_mask : ndarray (N, S) or (S,), optional
        Bool (True = ignore that key) or float (added).
    need_weights : bool
        Return the attention weights (else None, with torch's safe softmax).
    attn_mask : ndarray (L, S) or (N * num_heads, L, S), optional
        Bool (True = not allowed to attend) or float (added).
    use_separate_proj_weight : bool
        Use ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight``
        (E, vdim) instead of ``in_proj_weight``.
    static_k, static_v
        Not supported (must be None).
    average_attn_weights : bool
        Average the returned weights over heads: (N, L, S), else (N, num_heads, L, S).
    is_causal : bool
        Hint that ``attn_mask`` is causal; requires ``attn_mask``. With
        ``need_weights=False`` and no ``key_padding_mask`` the causal mask is used instead
        of ``attn_mask`` (as torch hands the hint to SDPA).
    generator, dropout_mask, return_saved
        numq extensions (see the module docstring); ``dropout_mask`` has shape
        (N, num_heads, L, S') with S' the key length after ``bias_k`` / zero attention.

    Returns
    -------
    attn_output : ndarray, shape (L, N, E) or (L, E)
    attn_weights : ndarray or None
    saved
        Only with ``return_saved``: the context for :func:`multi_head_attention_backward`.
    """
    if static_k is not None or static_v is not None:
        raise ValueError("static_k / static_v are not supported by numq; pass None")
    out, w, saved = _mha_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training,
                                 key_padding_mask, need_weights, attn_mask,
                                 use_separate_proj_weight, q_proj_weight, k_proj_weight,
                                 v_proj_weight, average_attn_weights, is_causal, False,
                                 generator, dropout_mask, return_saved)
    return (out, w, saved) if return_saved else (out, w)


def multi_head_attention_backward(grad_output, saved, grad_attn_weights=None):
    """Gradients of :func:`multi_head_attention_forward`.

    Parameters
    ----------
    grad_output : ndarray
        Gradient of ``attn_output`` (its shape).
    saved
        The context returned by the forward with ``return_saved=True``.
    grad_attn_weights : ndarray, optional
        Gradient of the returned ``attn_weights`` (their shape), if they feed the loss.

    Returns
    -------
    grad_query, grad_key, grad_value : ndarray
        Shaped as the forward's inputs.
    param_grads : dict
        ``{"in_proj_weight" | "q_proj_weight", "k_proj_weight", "v_proj_weight",
        "in_proj_bias", "bias_k", "bias_v", "out_proj_weight", "out_proj_bias"}`` -> array,
        for the parameters the forward used.
    """
    if not isinstance(saved, _Saved) or "qh" not in saved.__dict__:
        raise TypeError("saved must be the context returned by multi_head_attention_forward("
                        "..., return_saved=True)")
    s = saved
    dtype = s.wo.dtype
    g = _float(grad_output, "grad_output", dtype)
    if g.shape != s.out_shape:
        raise ValueError(f"grad_output must have attn_output's shape {s.out_shape}; "
                         f"got {g.shape}")
    if not s.batched:
        g = g[None]
    elif not s.batch_first:
        g = g.transpose(1, 0, 2)
    N, L, E = g.shape
    H = s.H
    hd = E // H
    grads = {}
    grads["out_proj_weight"] = np.matmul(g.reshape(-1, E).T, s.o.reshape(-1, E))
    if s.has_out_bias:
        grads["out_proj_bias"] = g.sum(axis=(0, 1))
    goh = np.matmul(g.reshape(-1, E), s.wo).reshape(N, L, H, hd).transpose(0, 2, 1, 3)

    # attention core, with the returned weights' gradient added to the dropped probs
    gpd = _mm(goh, _t(s.vh))
    if grad_attn_weights is not None:
        if s.weights_shape is None:
            raise ValueError("grad_attn_weights must be None when need_weights=False")
        gw = _float(grad_attn_weights, "grad_attn_weights", dtype)
        if gw.shape != s.weights_shape:
            raise ValueError(f"grad_attn_weights must have attn_weights' shape "
                             f"{s.weights_shape}; got {gw.shape}")
        if not s.batched:
            gw = gw[None]
        gpd = gpd + (gw[:, None] / H if s.average else gw)
    gvh = _mm(_t(s.pd), goh)
    gp = gpd if s.keep is None else gpd * s.keep
    gs = _softmax_backward(s.probs, gp)
    gqh = _mm(gs, s.kh) * s.c
    gkh = _mm(_t(gs), s.qh) * s.c
    if s.add_zero_attn:
        gkh, gvh = gkh[:, :, :-1], gvh[:, :, :-1]
    Sx = gkh.shape[2]
    gq = gqh.transpose(0, 2, 1, 3).reshape(N, L, E)
    gk = gkh.transpose(0, 2, 1, 3).reshape(N, Sx, E)
    gv = gvh.transpose(0, 2, 1, 3).reshape(N, Sx, E)
    if s.has_bkv:
        grads["bias_k"] = gk[:, -1].sum(axis=0).reshape(1, 1, E)
        grads["bias_v"] = gv[:, -1].sum(axis=0).reshape(1, 1, E)
        gk, gv = gk[:, :-1], gv[:, :-1]

    gws = [np.matmul(gx.reshape(-1, E).T, x.reshape(-1, x.shape[2]))
           for gx, x in ((gq, s.qb), (gk, s.kb), (gv, s.vb))]
    if s.packed:
        grads["in_proj_weight"] = np.concatenate(gws, axis=0)
    else:
        grads["q_proj_weight"], grads["k_proj_weight"], grads["v_proj_weight"] = gws
    if s.has_in_bias:
        grads["in_proj_bias"] = np.concatenate([gx.sum(axis=(0, 1)) for gx in (gq, gk, gv)])
    gin = [np.matmul(gx.reshape(-1, E), w).reshape(gx.shape[:2] + (w.shape[1],))
           for gx, w in ((gq, s.wq), (gk, s.wk), (gv, s.wv))]
    if not s.batched:
        gin = [x[0] for x in gin]
    elif not s.batch_first:
        gin = [x.transpose(1, 0, 2) for x in gin]
    return gin[0], gin[1], gin[2], grads
