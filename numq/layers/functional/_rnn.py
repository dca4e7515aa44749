"""Recurrent functional forms: RNN / LSTM / GRU cells and multi-layer sequences.

The forward functions mirror PyTorch's recurrent ops (``torch.rnn_tanh_cell``,
``torch.lstm_cell``, ``torch.gru_cell``, ``torch.rnn_tanh``, ``torch.lstm``,
``torch.gru`` ...): same argument order, gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``
with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``) and return conventions. With
``return_saved=True`` they also return an opaque ``saved`` object that the matching
``*_backward`` function consumes (backpropagation through time).

How the time loop runs: the input-to-hidden product of a whole sequence is ONE GEMM up
front (``(T*N, I) @ W_ih^T``), then each step does one ``(N, H_out) @ W_hh^T`` GEMM and
vectorised gate math in the parameters' dtype (float32 by default). Backward mirrors it:
one GEMM per step for the recurrent gradient, then one GEMM each for ``grad_input``,
``grad W_ih`` and ``grad W_hh`` over the whole sequence. The gate math stays in NumPy
on purpose: NumPy's SIMD ``exp`` / ``tanh`` loops ran 4-7x faster than a fused Numba
step kernel (scalar libm calls) at hidden sizes >= 128 when measured on the dev machine;
Numba only won below ~32 hidden units, where the whole step costs tens of microseconds
anyway. So nothing here compiles.

Only this module validates; the layers in :mod:`numq.layers.rnn` pass arrays through.
"""
import numbers

import numpy as np

from ..._random import resolve
from ..parameter import Parameter

__all__ = ["rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell",
           "rnn_tanh_cell_backward", "rnn_relu_cell_backward", "lstm_cell_backward",
           "gru_cell_backward",
           "rnn_tanh", "rnn_relu", "lstm", "gru",
           "rnn_tanh_backward", "rnn_relu_backward", "lstm_backward", "gru_backward"]

_NGATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


# ----------------------------------------------------------------- validation helpers
def _compute_dtype(w, arg):
    """The dtype computations run in: the weights' (float32 or float64)."""
    w = w.data if isinstance(w, Parameter) else w
    dt = getattr(w, "dtype", None)
    if dt is None:
        dt = np.asarray(w).dtype
    if dt.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {dt}")
    return _F64 if dt == _F64 else _F32


def _array(x, dt, arg, ndims=None):
    """``x`` as a C-contiguous array of dtype ``dt``; float input only."""
    if isinstance(x, Parameter):
        x = x.data
    if not isinstance(x, np.ndarray):
        if hasattr(x, "dequantize") and hasattr(x, "q_scale"):
            raise TypeError(f"{arg} must be a float array, got a quantized tensor")
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{arg} must be a float array; got dtype {x.dtype}")
    if ndims is not None and x.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{arg} must be {want}; got a {x.ndim}-D array of shape {x.shape}")
    if x.dtype == dt and x.flags.c_contiguous:
        return x
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(x, dtype=dt)


def _flag(v, arg):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{arg} must be a bool; got {type(v).__name__}")
    return bool(v)


def _pos_int(v, arg):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{arg} must be an int; got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{arg} must be >= 1; got {v}")
    return int(v)


def _probability(p):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout must be a number; got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout must be in [0, 1] (the probability of zeroing an "
                         f"element); got {p}")
    return p


def _shape_is(a, shape, arg):
    if a.shape != tuple(shape):
        raise ValueError(f"{arg} must have shape {tuple(shape)}; got {a.shape}")


# ------------------------------------------------------------------ gate arithmetic
def _sigmoid_(a):
    """In-place logistic ``1 / (1 + exp(-a))``; exp overflow gives the exact limit 0."""
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    np.reciprocal(a, out=a)


class _LayerCache:
    """What one direction of one layer keeps for backward.

    ``h`` has T+1 rows: the state entering step t is ``h[t + rev]``, the one leaving it
    ``h[t + 1 - rev]`` (forward: ``h[0]`` is h0; reverse: ``h[T]`` is h0), so the outputs
    and the previous states are both contiguous slices. ``c`` (LSTM) likewise.
    """

    __slots__ = ("mode", "rev", "x", "w", "h", "c", "act", "tc", "m", "ghn")


def _layer_forward(mode, x, h0, c0, w, rev):
    """Run one direction of one layer over ``x`` (T, N, I), time-major and contiguous.

    ``w = (w_ih, w_hh, b_ih, b_hh, w_hr)`` with None for absent entries. Returns
    ``(out (T, N, H_out) view, h_T, c_T, cache)``.
    """
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    T, N, I = x.shape
    ng = _NGATES[mode]
    hid = w_hh.shape[0] // ng
    hout = w_hh.shape[1]
    dt = x.dtype
    r = 1 if rev else 0
    # the input-to-hidden product of the whole sequence: one GEMM; biases folded in
    # (GRU keeps b_hn apart: it sits inside r * (W_hn h + b_hn))
    act = np.matmul(x.reshape(T * N, I), w_ih.T).reshape(T, N, ng * hid)
    if b_ih is not None:
        act += b_ih
    b_hn = None
    if b_hh is not None:
        if mode == "GRU":
            act[..., :2 * hid] += b_hh[:2 * hid]
            b_hn = b_hh[2 * hid:]
        else:
            act += b_hh
    whh_t = w_hh.T
    h = np.empty((T + 1, N, hout), dt)
    h[T * r] = h0
    tmp = np.empty((N, ng * hid), dt)
    steps = range(T - 1, -1, -1) if rev else range(T)
    cache = _LayerCache()
    cache.mode, cache.rev, cache.x, cache.w, cache.h = mode, rev, x, w, h
    cache.c = cache.tc = cache.m = cache.ghn = None
    if mode in ("RNN_TANH", "RNN_RELU"):
        tanh = mode == "RNN_TANH"
        for t in steps:
            a = act[t]
            np.matmul(h[t + r], whh_t, out=tmp)
            a += tmp
            if tanh:
                np.tanh(a, out=h[t + 1 - r])
            else:
                np.maximum(a, 0, out=h[t + 1 - r])
        # backward needs only h (tanh' = 1 - h^2, relu' = h > 0): drop the activations
        c_last = None
    elif mode == "LSTM":
        H = hid
        c = np.empty((T + 1, N, H), dt)
        c[T * r] = c0
        tc = np.empty((T, N, H), dt)
        m = None
        if w_hr is not None:
            m = np.empty((T, N, H), dt)
            whr_t = w_hr.T
        for t in steps:
            g = act[t]
            np.matmul(h[t + r], whh_t, out=tmp)
            g += tmp
            _sigmoid_(g[:, :2 * H])
            np.tanh(g[:, 2 * H:3 * H], out=g[:, 2 * H:3 * H])
            _sigmoid_(g[:, 3 * H:])
            cn = c[t + 1 - r]
            np.multiply(g[:, H:2 * H], c[t + r], out=cn)  # f * c_prev
            cn += g[:, :H] * g[:, 2 * H:3 * H]             # + i * g
            tct = tc[t]
            np.tanh(cn, out=tct)
            if m is None:
                np.multiply(g[:, 3 * H:], tct, out=h[t + 1 - r])
            else:
                np.multiply(g[:, 3 * H:], tct, out=m[t])
                np.matmul(m[t], whr_t, out=h[t + 1 - r])
        cache.c, cache.tc, cache.m, cache.act = c, tc, m, act
        c_last = c[T * (1 - r)]
    else:  # GRU
        H = hid
        ghn = np.empty((T, N, H), dt)
        for t in steps:
            g = act[t]
            hp = h[t + r]
            np.matmul(hp, whh_t, out=tmp)
            if b_hn is not None:
                np.add(tmp[:, 2 * H:], b_hn, out=ghn[t])
            else:
                ghn[t] = tmp[:, 2 * H:]
            rz = g[:, :2 * H]
            rz += tmp[:, :2 * H]
            _sigmoid_(rz)
            n = g[:, 2 * H:]
            n += g[:, :H] * ghn[t]
            np.tanh(n, out=n)
            hq = h[t + 1 - r]
            np.subtract(hp, n, out=hq)   # h' = (1 - z) n + z h = n + z (h - n)
            hq *= g[:, H:2 * H]
            hq += n
        cache.act, cache.ghn = act, ghn
        c_last = None
    out = h[1 - r:T + 1 - r]
    return out, h[T * (1 - r)], c_last, cache


def _layer_backward(cache, d_out, d_hT, d_cT):
    """Backpropagate one direction of one layer through time.

    ``d_out`` (T, N, H_out) or None, ``d_hT`` / ``d_cT`` (N, ...) or None. Returns
    ``(dx (T, N, I), dh0, dc0 or None, (g_wih, g_whh, g_bih, g_bhh, g_whr))``.
    """
    mode, x, h = cache.mode, cache.x, cache.h
    w_ih, w_hh, b_ih, b_hh, w_hr = cache.w
    r = 1 if cache.rev else 0
    T, N, I = x.shape
    ng = _NGATES[mode]
    G = w_hh.shape[0]
    H = G // ng
    hout = h.shape[2]
    dt = h.dtype
    dh = np.zeros((N, hout), dt) if d_hT is None else np.array(d_hT, dtype=dt, copy=True)
    steps = range(T) if r else range(T - 1, -1, -1)  # the forward order, reversed
    dc = None
    g_whr = None
    if mode in ("RNN_TANH", "RNN_RELU"):
        da_all = np.empty((T, N, G), dt)
        tanh = mode == "RNN_TANH"
        for t in steps:
            if d_out is not None:
                dh += d_out[t]
            hq = h[t + 1 - r]
            da = da_all[t]
            if tanh:
                np.multiply(hq, hq, out=da)
                np.subtract(1, da, out=da)
                da *= dh
            else:
                np.multiply(dh, hq > 0, out=da)
            np.matmul(da, w_hh, out=dh)
        dgi = dgh = da_all
    elif mode == "LSTM":
        act, c, tc, m = cache.act, cache.c, cache.tc, cache.m
        dc = np.zeros((N, H), dt) if d_cT is None else np.array(d_cT, dtype=dt, copy=True)
        da_all = np.empty((T, N, G), dt)
        tmp = np.empty((N, H), dt)
        if m is not None:
            dh_all = np.empty((T, N, hout), dt)
            dm = np.empty((N, H), dt)
        for t in steps:
            if d_out is not None:
                dh += d_out[t]
            if m is not None:
                dh_all[t] = dh
                np.matmul(dh, w_hr, out=dm)
            else:
                dm = dh
            g = act[t]
            i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
            tct = tc[t]
            da = da_all[t]
            # c gradient: the carried one plus the path through h = o * tanh(c)
            np.multiply(tct, tct, out=tmp)
            np.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dm
            dc += tmp
            dao = da[:, 3 * H:]
            np.multiply(dm, tct, out=dao)
            dao *= o
            dao *= 1 - o
            dai = da[:, :H]
            np.multiply(dc, gg, out=dai)
            dai *= i
            dai *= 1 - i
            daf = da[:, H:2 * H]
            np.multiply(dc, c[t + r], out=daf)
            daf *= f
            daf *= 1 - f
            dag = da[:, 2 * H:3 * H]
            np.multiply(dc, i, out=dag)
            dag *= 1 - gg * gg
            dc *= f
            np.matmul(da, w_hh, out=dh)
        dgi = dgh = da_all
        if m is not None:
            g_whr = np.matmul(dh_all.reshape(T * N, hout).T, m.reshape(T * N, H))
    else:  # GRU
        act, ghn = cache.act, cache.ghn
        dgi = np.empty((T, N, G), dt)
        dgh = np.empty((T, N, G), dt)
        tmp = np.empty((N, hout), dt)
        for t in steps:
            if d_out is not None:
                dh += d_out[t]
            g = act[t]
            rr, z, n = g[:, :H], g[:, H:2 * H], g[:, 2 * H:]
            hp = h[t + r]
            gi, gh = dgi[t], dgh[t]
            dan = gi[:, 2 * H:]
            np.multiply(dh, 1 - z, out=dan)
            dan *= 1 - n * n
            daz = gi[:, H:2 * H]
            np.subtract(hp, n, out=daz)
            daz *= dh
            daz *= z
            daz *= 1 - z
            dar = gi[:, :H]
            np.multiply(dan, ghn[t], out=dar)
            dar *= rr
            dar *= 1 - rr
            gh[:, :2 * H] = gi[:, :2 * H]
            np.multiply(dan, rr, out=gh[:, 2 * H:])
            dh *= z
            np.matmul(gh, w_hh, out=tmp)
            dh += tmp
    # parameter and input gradients: one GEMM each over the whole sequence
    dgi2 = dgi.reshape(T * N, G)
    dgh2 = dgh.reshape(T * N, G)
    dx = np.matmul(dgi2, w_ih).reshape(T, N, I)
    g_wih = np.matmul(dgi2.T, x.reshape(T * N, I))
    g_whh = np.matmul(dgh2.T, h[r:T + r].reshape(T * N, hout))
    g_bih = dgi2.sum(axis=0) if b_ih is not None else None
    g_bhh = dgh2.sum(axis=0) if b_hh is not None else None
    return dx, dh, dc, (g_wih, g_whh, g_bih, g_bhh, g_whr)


# ---------------------------------------------------------------------------- cells
class _CellSaved:
    __slots__ = ("mode", "cache", "batched", "dtype", "hid")


def _cell_forward(mode, input, hx, w_ih, w_hh, b_ih, b_hh, return_saved):
    name = {"RNN_TANH": "rnn_tanh_cell", "RNN_RELU": "rnn_relu_cell", "LSTM": "lstm_cell",
            "GRU": "gru_cell"}[mode]
    dt = _compute_dtype(w_ih, "w_ih")
    w_ih = _array(w_ih, dt, "w_ih", (2,))
    w_hh = _array(w_hh, dt, "w_hh", (2,))
    ng = _NGATES[mode]
    G = w_ih.shape[0]
    if G % ng or G == 0:
        raise ValueError(f"{name}: w_ih must have {ng} * hidden_size rows; got shape "
                         f"{w_ih.shape}")
    H = G // ng
    _shape_is(w_hh, (G, H), "w_hh")
    b_ih = None if b_ih is None else _array(b_ih, dt, "b_ih", (1,))
    b_hh = None if b_hh is None else _array(b_hh, dt, "b_hh", (1,))
    for b, arg in ((b_ih, "b_ih"), (b_hh, "b_hh")):
        if b is not None:
            _shape_is(b, (G,), arg)
    x = _array(input, dt, "input", (1, 2))
    batched = x.ndim == 2
    if x.shape[-1] != w_ih.shape[1]:
        raise ValueError(f"{name}: input.size(-1) must equal input_size "
                         f"({w_ih.shape[1]}); got {x.shape[-1]}")
    if not batched:
        x = x[None]
    N = x.shape[0]
    hd = (2,) if batched else (1,)
    want = (N, H) if batched else (H,)
    if hx is None:
        h0 = np.zeros((N, H), dt)
        c0 = np.zeros((N, H), dt) if mode == "LSTM" else None
    else:
        if mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("lstm_cell: hx must be a tuple (h_0, c_0) or None")
            states = ((hx[0], "hx[0]"), (hx[1], "hx[1]"))
        else:
            states = ((hx, "hx"),)
        arrs = []
        for s, arg in states:
            s = _array(s, dt, arg, hd)
            if s.shape != want:
                raise ValueError(f"{name}: {arg} must have shape {want} (batch, hidden_size)"
                                 f"; got {s.shape}")
            arrs.append(s.reshape(N, H))
        h0 = arrs[0]
        c0 = arrs[1] if mode == "LSTM" else None
    with np.errstate(over="ignore"):
        out, hT, cT, cache = _layer_forward(mode, x[None], h0, c0,
                                            (w_ih, w_hh, b_ih, b_hh, None), False)
    h1 = hT.copy() if batched else hT[0].copy()
    if mode == "LSTM":
        res = (h1, cT.copy() if batched else cT[0].copy())
    else:
        res = h1
    if not return_saved:
        return res
    saved = _CellSaved()
    saved.mode, saved.cache, saved.batched, saved.dtype, saved.hid = mode, cache, batched, dt, H
    return res, saved


def _cell_backward(mode, grad_h, grad_c, saved):
    if not isinstance(saved, _CellSaved):
        raise TypeError("saved must be the object a cell forward returned with "
                        "return_saved=True")
    if saved.mode != mode:
        raise ValueError(f"saved comes from a {saved.mode} cell, not {mode}")
    cache, dt = saved.cache, saved.dtype
    N = cache.x.shape[1]
    want = (N, saved.hid) if saved.batched else (saved.hid,)
    grads = []
    for g, arg in ((grad_h, "grad_h"), (grad_c, "grad_c")):
        if g is not None:
            g = _array(g, dt, arg)
            _shape_is(g, want, arg)
            g = g.reshape(N, saved.hid)
        grads.append(g)
    with np.errstate(over="ignore"):
        dx, dh0, dc0, gp = _layer_backward(cache, None, grads[0], grads[1])
    dx = dx[0]
    if not saved.batched:
        dx, dh0 = dx[0], dh0[0]
        dc0 = None if dc0 is None else dc0[0]
    return dx, ((dh0, dc0) if mode == "LSTM" else dh0), gp[:4]


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """One Elman RNN step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Parameters
    ----------
    input : ndarray, (N, input_size) or unbatched (input_size,)
    hx : ndarray or None
        (N, hidden_size) or unbatched (hidden_size,); None means zeros.
    w_ih, w_hh : ndarray
        (hidden_size, input_size) and (hidden_size, hidden_size).
    b_ih, b_hh : ndarray or None
        (hidden_size,) each.
    return_saved : bool
        Also return the object :func:`rnn_tanh_cell_backward` needs.

    Returns
    -------
    ndarray or (ndarray, saved)
        ``h'`` shaped like ``hx``, computed in the weights' dtype.
    """
    return _cell_forward("RNN_TANH", input, hx, w_ih, w_hh, b_ih, b_hh, return_saved)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """One Elman RNN step with ReLU: ``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Arguments and returns as :func:`rnn_tanh_cell`.
    """
    return _cell_forward("RNN_RELU", input, hx, w_ih, w_hh, b_ih, b_hh, return_saved)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """One LSTM step (gates ``i, f, g, o`` stacked in the weights' rows, as torch).

    Parameters
    ----------
    input : ndarray, (N, input_size) or unbatched (input_size,)
    hx : tuple (h, c) of ndarrays, or None (zeros)
        Each (N, hidden_size) or unbatched (hidden_size,).
    w_ih, w_hh : ndarray
        (4*hidden_size, input_size) and (4*hidden_size, hidden_size).
    b_ih, b_hh : ndarray or None
        (4*hidden_size,) each.
    return_saved : bool
        Also return the object :func:`lstm_cell_backward` needs.

    Returns
    -------
    (h', c') or ((h', c'), saved)
    """
    return _cell_forward("LSTM", input, hx, w_ih, w_hh, b_ih, b_hh, return_saved)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """One GRU step (gates ``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``).

    Arguments as :func:`rnn_tanh_cell` with 3*hidden_size weight rows.
    """
    return _cell_forward("GRU", input, hx, w_ih, w_hh, b_ih, b_hh, return_saved)


def rnn_tanh_cell_backward(grad_h, saved):
    """Gradients of :func:`rnn_tanh_cell` given ``dL/dh'``.

    Returns
    -------
    grad_input, grad_hx : ndarray
        Shaped like the forward's ``input`` and ``hx``.
    grad_params : tuple
        ``(grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``; None for an absent bias.
    """
    return _cell_backward("RNN_TANH", grad_h, None, saved)


def rnn_relu_cell_backward(grad_h, saved):
    """Gradients of :func:`rnn_relu_cell`; as :func:`rnn_tanh_cell_backward`."""
    return _cell_backward("RNN_RELU", grad_h, None, saved)


def lstm_cell_backward(grad_h, grad_c, saved):
    """Gradients of :func:`lstm_cell` given ``dL/dh'`` and ``dL/dc'`` (either may be None).

    Returns
    -------
    (grad_input, (grad_hx, grad_cx), grad_params)
        ``grad_params = (grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    return _cell_backward("LSTM", grad_h, grad_c, saved)


def gru_cell_backward(grad_h, saved):
    """Gradients of :func:`gru_cell`; as :func:`rnn_tanh_cell_backward`."""
    return _cell_backward("GRU", grad_h, None, saved)


# ------------------------------------------------------------------------ sequences
class _SeqSaved:
    __slots__ = ("mode", "layers", "batch_first", "batched", "dtype", "num_layers", "D",
                 "hid", "hout", "out_shape", "hn_shape", "nparams", "per")


def _seq_forward(mode, input, hx, params, has_biases, num_layers, dropout, train,
                 bidirectional, batch_first, generator, return_saved):
    name = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm",
            "GRU": "gru"}[mode]
    has_biases = _flag(has_biases, "has_biases")
    L = _pos_int(num_layers, "num_layers")
    p = _probability(dropout)
    train = _flag(train, "train")
    D = 2 if _flag(bidirectional, "bidirectional") else 1
    batch_first = _flag(batch_first, "batch_first")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of weight arrays; got {type(params).__name__}")
    per = 2 + 2 * has_biases
    if len(params) == L * D * per:
        proj = False
    elif mode == "LSTM" and len(params) == L * D * (per + 1):
        proj = True
        per += 1
    else:
        raise ValueError(f"{name}: params must hold {per} arrays per layer and direction "
                         f"({L * D * per} for num_layers={L}, bidirectional={D == 2}"
                         + (", or one more each with projections" if mode == "LSTM" else "")
                         + f"); got {len(params)}")
    dt = _compute_dtype(params[0], "params[0]")
    ng = _NGATES[mode]
    weights = []
    hid = hout = None
    for k in range(L * D):
        base = k * per
        ws = [_array(params[base + j], dt, f"params[{base + j}]") for j in range(per)]
        w_ih, w_hh = ws[0], ws[1]
        b_ih, b_hh = (ws[2], ws[3]) if has_biases else (None, None)
        w_hr = ws[-1] if proj else None
        if k == 0:
            if w_ih.ndim != 2 or w_hh.ndim != 2 or w_ih.shape[0] % ng or w_ih.shape[0] == 0:
                raise ValueError(f"{name}: params[0] (weight_ih_l0) must be 2-D with "
                                 f"{ng} * hidden_size rows; got shape {w_ih.shape}")
            hid = w_ih.shape[0] // ng
            hout = w_hr.shape[0] if proj else hid
            if proj and not 0 < hout < hid:
                raise ValueError(f"{name}: the projection weight must have shape (proj_size, "
                                 f"hidden_size) with proj_size < hidden_size; got {w_hr.shape}")
        in_k = (weights[0][0].shape[1] if k else w_ih.shape[1]) if k < D else D * hout
        sfx = f"l{k // D}" + ("_reverse" if k % D else "")
        _shape_is(w_ih, (ng * hid, in_k), f"params[{base}] (weight_ih_{sfx})")
        _shape_is(w_hh, (ng * hid, hout), f"params[{base + 1}] (weight_hh_{sfx})")
        if has_biases:
            _shape_is(b_ih, (ng * hid,), f"params[{base + 2}] (bias_ih_{sfx})")
            _shape_is(b_hh, (ng * hid,), f"params[{base + 3}] (bias_hh_{sfx})")
        if proj:
            _shape_is(w_hr, (hout, hid), f"params[{base + per - 1}] (weight_hr_{sfx})")
        weights.append((w_ih, w_hh, b_ih, b_hh, w_hr))
    in_size = weights[0][0].shape[1]

    x = _array(input, dt, "input", (2, 3))
    batched = x.ndim == 3
    if x.shape[-1] != in_size:
        raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                         f"{in_size}, got {x.shape[-1]}")
    if batched:
        if batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
    else:
        x = x[:, None, :]
    T, N = x.shape[0], x.shape[1]
    if T == 0:
        raise ValueError(f"{name}: the sequence length of input must be > 0")

    sdim = 3 if batched else 2
    want_h = (L * D, N, hout) if batched else (L * D, hout)
    want_c = (L * D, N, hid) if batched else (L * D, hid)
    if mode == "LSTM":
        if hx is None:
            h0, c0 = np.zeros((L * D, N, hout), dt), np.zeros((L * D, N, hid), dt)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0) or None")
            h0 = _array(hx[0], dt, "hx[0]")
            c0 = _array(hx[1], dt, "hx[1]")
            for s, wnt, arg in ((h0, want_h, "h_0"), (c0, want_c, "c_0")):
                if s.ndim != sdim:
                    raise ValueError(f"{name}: for {'batched 3-D' if batched else 'unbatched 2-D'}"
                                     f" input, {arg} must be {sdim}-D; got {s.ndim}-D")
                if s.shape != wnt:
                    raise ValueError(f"{name}: expected {arg} of shape {wnt}, got {s.shape}")
            if not batched:
                h0, c0 = h0[:, None, :], c0[:, None, :]
    else:
        c0 = None
        if hx is None:
            h0 = np.zeros((L * D, N, hout), dt)
        else:
            h0 = _array(hx, dt, "hx")
            if h0.ndim != sdim:
                raise ValueError(f"{name}: for {'batched 3-D' if batched else 'unbatched 2-D'}"
                                 f" input, hx must be {sdim}-D; got {h0.ndim}-D")
            if h0.shape != want_h:
                raise ValueError(f"{name}: expected hx of shape {want_h}, got {h0.shape}")
            if not batched:
                h0 = h0[:, None, :]

    keep = return_saved
    drop = train and p > 0 and L > 1
    gen = resolve(generator) if drop else None
    hn = np.empty((L * D, N, hout), dt)
    cn = np.empty((L * D, N, hid), dt) if mode == "LSTM" else None
    layers = []
    y = x
    with np.errstate(over="ignore"):
        for layer in range(L):
            caches, outs = [], []
            for d in range(D):
                k = layer * D + d
                out, hT, cT, cache = _layer_forward(mode, y, h0[k], None if c0 is None else c0[k],
                                                    weights[k], d == 1)
                hn[k] = hT
                if cn is not None:
                    cn[k] = cT
                outs.append(out)
                caches.append(cache)
            y = outs[0] if D == 1 else np.concatenate(outs, axis=2)
            mask = None
            if drop and layer < L - 1:
                # inverted dropout on this layer's output (the next layer's input), as torch
                if p == 1.0:
                    mask = np.zeros(y.shape, dt)
                else:
                    mask = (gen.random(y.shape) >= p).astype(dt)
                    mask *= dt.type(1.0 / (1.0 - p))
                y = y * mask
            layers.append((caches if keep else None, mask))
    if D == 1 and keep:
        y = y.copy()  # y is a view of the cached states: the caller may write into it
    if batched:
        output = np.ascontiguousarray(y.transpose(1, 0, 2)) if batch_first else y
    else:
        output = y[:, 0, :]
        hn = hn[:, 0, :]
        cn = None if cn is None else cn[:, 0, :]
    res = (output, hn, cn) if mode == "LSTM" else (output, hn)
    if not return_saved:
        return res
    s = _SeqSaved()
    s.mode, s.layers, s.batch_first, s.batched, s.dtype = mode, layers, batch_first, batched, dt
    s.num_layers, s.D, s.hid, s.hout, s.per = L, D, hid, hout, per
    s.out_shape, s.hn_shape, s.nparams = output.shape, hn.shape, len(params)
    return res, s


def _seq_backward(mode, grad_output, grad_hn, grad_cn, saved):
    if not isinstance(saved, _SeqSaved):
        raise TypeError("saved must be the object a sequence forward returned with "
                        "return_saved=True")
    if saved.mode != mode:
        raise ValueError(f"saved comes from a {saved.mode} forward, not {mode}")
    dt, L, D, hout, hid = saved.dtype, saved.num_layers, saved.D, saved.hout, saved.hid
    batched = saved.batched
    dy = None
    if grad_output is not None:
        dy = _array(grad_output, dt, "grad_output")
        _shape_is(dy, saved.out_shape, "grad_output")
        if not batched:
            dy = dy[:, None, :]
        elif saved.batch_first:
            dy = dy.transpose(1, 0, 2)
    N = saved.layers[0][0][0].x.shape[1]
    dhn = dcn = None
    if grad_hn is not None:
        dhn = _array(grad_hn, dt, "grad_hn")
        _shape_is(dhn, saved.hn_shape, "grad_hn")
        dhn = dhn.reshape(L * D, N, hout)
    if grad_cn is not None:
        dcn = _array(grad_cn, dt, "grad_cn")
        _shape_is(dcn, saved.hn_shape[:-1] + (hid,), "grad_cn")
        dcn = dcn.reshape(L * D, N, hid)
    dh0 = np.empty((L * D, N, hout), dt)
    dc0 = np.empty((L * D, N, hid), dt) if mode == "LSTM" else None
    gparams = [None] * saved.nparams
    per = saved.per
    with np.errstate(over="ignore"):
        for layer in range(L - 1, -1, -1):
            caches, mask = saved.layers[layer]
            if mask is not None and dy is not None:
                dy = dy * mask
            dx = None
            for d in range(D):
                k = layer * D + d
                d_out = None if dy is None else (dy if D == 1 else dy[:, :, d * hout:(d + 1) * hout])
                gx, gh, gc, gp = _layer_backward(caches[d], d_out,
                                                 None if dhn is None else dhn[k],
                                                 None if dcn is None else dcn[k])
                dh0[k] = gh
                if dc0 is not None:
                    dc0[k] = gc
                dx = gx if dx is None else dx + gx
                g_wih, g_whh, g_bih, g_bhh, g_whr = gp
                base = k * per
                gparams[base], gparams[base + 1] = g_wih, g_whh
                if g_bih is not None:
                    gparams[base + 2], gparams[base + 3] = g_bih, g_bhh
                if g_whr is not None:
                    gparams[base + per - 1] = g_whr
            dy = dx
    if batched:
        grad_input = np.ascontiguousarray(dy.transpose(1, 0, 2)) if saved.batch_first else dy
    else:
        grad_input = dy[:, 0, :]
        dh0 = dh0[:, 0, :]
        dc0 = None if dc0 is None else dc0[:, 0, :]
    return grad_input, ((dh0, dc0) if mode == "LSTM" else dh0), gparams


_SEQ_DOC = """

    Parameters
    ----------
    input : ndarray
        (L, N, input_size), (N, L, input_size) with ``batch_first``, or unbatched
        (L, input_size).
    hx : {hx}
    params : list of ndarray
        Per layer and direction (forward first): ``w_ih, w_hh[, b_ih, b_hh]{proj}``, in
        the order of the module's ``_flat_weights_names``.{projnote}
    has_biases, num_layers, dropout, train, bidirectional, batch_first
        As torch's: ``dropout`` applies to every layer's output but the last when
        ``train`` is true.
    generator : numpy Generator, int or None
        Source of dropout masks (None: numq's global generator).
    return_saved : bool
        Also return the object the matching ``*_backward`` needs.

    Returns
    -------
    {ret}
        ``output`` is (L, N, D*H_out) (batch-first or unbatched like ``input``), ``h_n``
        (D*num_layers, N, H_out), computed in the weights' dtype. With ``return_saved``,
        ``(that tuple, saved)``.
    """


def rnn_tanh(input, hx, params, has_biases=True, num_layers=1, dropout=0.0, train=False,
             bidirectional=False, batch_first=False, *, generator=None, return_saved=False):
    return _seq_forward("RNN_TANH", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first, generator, return_saved)


def rnn_relu(input, hx, params, has_biases=True, num_layers=1, dropout=0.0, train=False,
             bidirectional=False, batch_first=False, *, generator=None, return_saved=False):
    return _seq_forward("RNN_RELU", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first, generator, return_saved)


def lstm(input, hx, params, has_biases=True, num_layers=1, dropout=0.0, train=False,
         bidirectional=False, batch_first=False, *, generator=None, return_saved=False):
    return _seq_forward("LSTM", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first, generator, return_saved)


def gru(input, hx, params, has_biases=True, num_layers=1, dropout=0.0, train=False,
        bidirectional=False, batch_first=False, *, generator=None, return_saved=False):
    return _seq_forward("GRU", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first, generator, return_saved)


_HX = "ndarray or None\n        (D*num_layers, N, H_out) (2-D when unbatched); None means zeros."
rnn_tanh.__doc__ = "Multi-layer Elman RNN with tanh over a sequence (``torch.rnn_tanh``)." \
    + _SEQ_DOC.format(hx=_HX, proj="", projnote="", ret="(output, h_n)")
rnn_relu.__doc__ = "Multi-layer Elman RNN with ReLU over a sequence (``torch.rnn_relu``)." \
    + _SEQ_DOC.format(hx=_HX, proj="", projnote="", ret="(output, h_n)")
gru.__doc__ = "Multi-layer GRU over a sequence (``torch.gru``)." \
    + _SEQ_DOC.format(hx=_HX, proj="", projnote="", ret="(output, h_n)")
lstm.__doc__ = "Multi-layer LSTM over a sequence (``torch.lstm``)." + _SEQ_DOC.format(
    hx="tuple (h_0, c_0) or None\n        h_0 (D*num_layers, N, H_out), c_0 "
       "(D*num_layers, N, hidden_size)\n        (2-D when unbatched); None means zeros.",
    proj="[, w_hr]",
    projnote="\n        A projection weight ``w_hr`` (proj_size, hidden_size) makes "
             "``H_out = proj_size``.",
    ret="(output, h_n, c_n)")


_BWD_DOC = """Backpropagation through time for :func:`{fwd}`.

    Parameters
    ----------
    grad_output : ndarray or None
        dL/d output, shaped like the forward's ``output`` (None: zero).
    grad_hn{cn} : ndarray or None
        dL/d h_n{cnd} (None: zero).
    saved
        The object :func:`{fwd}` returned with ``return_saved=True``.

    Returns
    -------
    grad_input : ndarray
        Shaped like the forward's ``input``.
    grad_hx : {ghx}
    grad_params : list
        One gradient per entry of ``params``, in the same order.
    """


def rnn_tanh_backward(grad_output, grad_hn, saved):
    return _seq_backward("RNN_TANH", grad_output, grad_hn, None, saved)


def rnn_relu_backward(grad_output, grad_hn, saved):
    return _seq_backward("RNN_RELU", grad_output, grad_hn, None, saved)


def gru_backward(grad_output, grad_hn, saved):
    return _seq_backward("GRU", grad_output, grad_hn, None, saved)


def lstm_backward(grad_output, grad_hn, grad_cn, saved):
    return _seq_backward("LSTM", grad_output, grad_hn, grad_cn, saved)


for _f, _fwd in ((rnn_tanh_backward, "rnn_tanh"), (rnn_relu_backward, "rnn_relu"),
                 (gru_backward, "gru")):
    _f.__doc__ = _BWD_DOC.format(fwd=_fwd, cn="", cnd="", ghx="ndarray\n        dL/d hx.")
lstm_backward.__doc__ = _BWD_DOC.format(
    fwd="lstm", cn=", grad_cn", cnd=" and dL/d c_n",
    ghx="tuple (grad_h0, grad_c0)\n        dL/d h_0 and dL/d c_0.")
del _f, _fwd
