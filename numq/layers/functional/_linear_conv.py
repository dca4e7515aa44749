"""Float ``linear``, ``conv{1,2,3}d``, ``conv_transpose{1,2,3}d`` and their backward.

Forward functions mirror ``torch.nn.functional`` (names, arguments, defaults, output
shapes, unbatched inputs). Each has a ``*_backward(grad_output, input, weight, ...,
output_mask=(True, True, True))`` twin returning ``(grad_input, grad_weight,
grad_bias)``, with ``None`` where ``output_mask`` says the gradient is not wanted (as
``torch.ops.aten.convolution_backward``).

How a convolution is computed
-----------------------------
Every rank is run as a 3-d convolution (unit depth/height for 1-d and 2-d), so the
Numba kernels in :mod:`numq.kernels.im2col` have one specialisation per dtype. With
``cols`` the im2col of the input, shaped ``(N, groups, C/groups*K, L)`` (``K`` kernel
taps, ``L`` output positions) and the weight viewed as ``W3`` ``(groups, OC/groups,
C/groups*K)``:

- output         = ``W3 @ cols``                          (batched GEMM, lands in NCHW order)
- weight grad    = ``(sum_n cols[n] @ grad_out[n].T).T``   (GEMM per sample, summed)
- input grad     = ``col2im(W3.T @ grad_out)``             (GEMM, then fold)

A transposed convolution is the adjoint of a convolution: its forward is the input-grad
path above, its input grad the forward path, its weight grad the weight-grad path with
the roles of input and grad_output swapped. The batch is processed in chunks whose
``cols`` fit :data:`_CHUNK_BYTES`, so temporaries stay bounded (and cache-warm between
the im2col and the GEMM that reads it). 1x1 convolutions with stride 1 and no padding
skip im2col altogether. im2col / col2im run serially between the (multi-threaded) BLAS
calls: Numba's and OpenBLAS's thread pools slow each other down when they alternate
(figures in :mod:`numq.kernels.im2col`), and the GEMMs carry most of the work. A
single sample's ``cols`` is not split further: a very large image with a large kernel
still needs ``C*K*L`` elements of scratch.

Arithmetic is in the weight's dtype (float32 or float64); the input and bias are cast
to it. GEMMs are NumPy's ``matmul`` (BLAS), so float32 sums run in another order than
torch's and agree to rounding, not bit for bit.
"""
import collections
import math
import numbers

import numpy as np

from ...kernels.im2col import col2im, im2col
from ..parameter import Parameter

__all__ = [
    "linear", "linear_backward",
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
]

# Largest im2col buffer per batch chunk (at least one sample is always taken). Measured
# on Conv2d(64, 64, 3) 8x64x56x56 (7 MB of cols per sample), fwd / bwd ms on 2 threads:
# 1 sample per chunk 17.9 / 31.6, 2: 15.2 / 32.4, 4: 17.1 / 31.7, all 8 (58 MB): 32.0 /
# 55.1. Chunks that stay near the cache size win, and memory stays flat in the batch.
_CHUNK_BYTES = 16 << 20

_ALL = (True, True, True)

# Geometry of one convolution run as 3-d. ``C`` is the channel count of the "image"
# side (the input of a convolution, the output of a transposed one), ``in3`` its
# spatial size, ``out3`` the spatial size of the "cols" side; ``pad3`` the leading
# padding (the trailing one is implied by ``out3``).
_Geo = collections.namedtuple("_Geo", "groups C in3 out3 k3 s3 p3 d3")


# ----------------------------------------------------------------- validation

def _arr(x):
    return x.data if isinstance(x, Parameter) else x


def _weight_array(weight, rank, name, what="weight"):
    """``weight`` as a C-contiguous float32/float64 array of ``rank`` dimensions."""
    w = _arr(weight)
    if not isinstance(w, np.ndarray):
        w = np.asarray(w)
    if w.dtype.kind != "f":
        raise TypeError(f"{name}: {what} must be a float array; got dtype {w.dtype}")
    if w.ndim != rank:
        raise ValueError(f"{name}: {what} must be {rank}-d; got shape {w.shape}")
    dt = w.dtype if w.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return np.ascontiguousarray(w, dtype=dt)


def _float_array(x, dtype, name, arg):
    """``x`` cast to ``dtype``, C-contiguous; non-float arrays raise TypeError."""
    x = _arr(x)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: {arg} must be a float array; got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=dtype)


def _bias_array(bias, n, dtype, name):
    if bias is None:
        return None
    b = _float_array(bias, dtype, name, "bias")
    if b.shape != (n,):
        raise ValueError(f"{name}: bias must have shape ({n},); got {b.shape}")
    return b


def _ntuple(v, n, name, arg, lo):
    """An int or a length-``n`` sequence of ints, each >= ``lo``, as an n-tuple."""
    if isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_)):
        t = (int(v),) * n
    else:
        try:
            t = tuple(v)
        except TypeError:
            raise TypeError(f"{name}: {arg} must be an int or a tuple of {n} ints; "
                            f"got {type(v).__name__}") from None
        if len(t) == 1:
            t = t * n
        if len(t) != n or not all(isinstance(e, (numbers.Integral, np.integer))
                                  and not isinstance(e, (bool, np.bool_)) for e in t):
            raise TypeError(f"{name}: {arg} must be an int or a tuple of {n} ints; got {v!r}")
        t = tuple(int(e) for e in t)
    if any(e < lo for e in t):
        raise ValueError(f"{name}: {arg} must be >= {lo} in every dimension; got {t}")
    return t


def _groups(groups, name):
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (numbers.Integral,
                                                                      np.integer)):
        raise TypeError(f"{name}: groups must be an int; got {type(groups).__name__}")
    if groups < 1:
        raise ValueError(f"{name}: groups must be a positive integer; got {groups}")
    return int(groups)


def _batched(x, rank, name):
    """(x as (N, C, *spatial), was it batched); a clear error for a wrong rank."""
    if x.ndim == rank + 2:
        return x, True
    if x.ndim == rank + 1:
        return x[None], False
    raise ValueError(f"{name}: expected a {rank + 1}-d (unbatched) or {rank + 2}-d (batched) "
                     f"input; got shape {x.shape}")


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def _mask(output_mask, name):
    try:
        m = tuple(bool(v) for v in output_mask)
    except TypeError:
        raise TypeError(f"{name}: output_mask must be a sequence of 3 bools") from None
    if len(m) != 3:
        raise ValueError(f"{name}: output_mask must have 3 entries; got {len(m)}")
    return m


def _conv_setup(rank, name, input, weight, stride, padding, dilation, groups):
    """Validate a convolution's arguments; returns ``(x, w, geo, batched, out_shape)``."""
    w = _weight_array(weight, rank + 2, name)
    x, batched = _batched(_float_array(input, w.dtype, name, "input"), rank, name)
    groups = _groups(groups, name)
    stride = _ntuple(stride, rank, name, "stride", 1)
    dilation = _ntuple(dilation, rank, name, "dilation", 1)
    OC, Cg = w.shape[:2]
    ksize = w.shape[2:]
    if OC % groups:
        raise ValueError(f"{name}: weight.shape[0] (out_channels, {OC}) must be divisible by "
                         f"groups ({groups})")
    if x.shape[1] != Cg * groups:
        raise ValueError(f"{name}: expected input with {Cg * groups} channels (weight.shape[1]"
                         f" {Cg} * groups {groups}) in dim {1 if batched else 0}; got input "
                         f"of shape {x.shape if batched else x.shape[1:]}")
    if any(k < 1 for k in ksize):
        raise ValueError(f"{name}: kernel size must be >= 1; got weight shape {w.shape}")
    spatial = x.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0,) * rank
            out = tuple((i - d * (k - 1) - 1) // s + 1
                        for i, k, s, d in zip(spatial, ksize, stride, dilation))
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions; got stride {stride}")
            # total padding d*(k-1); the odd unit goes on the trailing side (as torch)
            pad = tuple(d * (k - 1) // 2 for k, d in zip(ksize, dilation))
            out = tuple(spatial)
        else:
            raise ValueError(f"{name}: padding must be an int, a tuple of ints, 'same' or "
                             f"'valid'; got {padding!r}")
    else:
        pad = _ntuple(padding, rank, name, "padding", 0)
        out = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                    for i, k, s, p, d in zip(spatial, ksize, stride, pad, dilation))
    if any(o < 1 for o in out):
        eff = tuple(d * (k - 1) + 1 for k, d in zip(ksize, dilation))
        raise ValueError(f"{name}: input spatial size {tuple(spatial)} (padding {pad}) is "
                         f"smaller than the dilated kernel size {eff}")
    geo = _Geo(groups, x.shape[1], _pad3(spatial, 1), _pad3(out, 1), _pad3(ksize, 1),
               _pad3(stride, 1), _pad3(pad, 0), _pad3(dilation, 1))
    return x, w, geo, batched, (x.shape[0], OC) + out


def _conv_t_setup(rank, name, input, weight, stride, padding, output_padding, groups,
                  dilation):
    """Validate a transposed convolution's arguments (see :func:`_conv_setup`)."""
    w = _weight_array(weight, rank + 2, name)
    x, batched = _batched(_float_array(input, w.dtype, name, "input"), rank, name)
    groups = _groups(groups, name)
    stride = _ntuple(stride, rank, name, "stride", 1)
    dilation = _ntuple(dilation, rank, name, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"{name}: padding must be an int or a tuple of ints (no 'same' / "
                         f"'valid' for transposed convolutions); got {padding!r}")
    pad = _ntuple(padding, rank, name, "padding", 0)
    opad = _ntuple(output_padding, rank, name, "output_padding", 0)
    Cin, OCg = w.shape[:2]
    ksize = w.shape[2:]
    if Cin % groups:
        raise ValueError(f"{name}: weight.shape[0] (in_channels, {Cin}) must be divisible by "
                         f"groups ({groups})")
    if x.shape[1] != Cin:
        raise ValueError(f"{name}: expected input with {Cin} channels (weight.shape[0]) in "
                         f"dim {1 if batched else 0}; got input of shape "
                         f"{x.shape if batched else x.shape[1:]}")
    if any(k < 1 for k in ksize):
        raise ValueError(f"{name}: kernel size must be >= 1; got weight shape {w.shape}")
    if any(op >= s and op >= d for op, s, d in zip(opad, stride, dilation)):
        raise ValueError(f"{name}: output_padding must be smaller than either stride or "
                         f"dilation; got output_padding {opad}, stride {stride}, dilation "
                         f"{dilation}")
    spatial = x.shape[2:]
    out = tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1
                for i, k, s, p, op, d in zip(spatial, ksize, stride, pad, opad, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: output spatial size {out} would be < 1 (input "
                         f"{tuple(spatial)}, padding {pad})")
    # the convolution this is the adjoint of: image = our output, cols = our input
    geo = _Geo(groups, OCg * groups, _pad3(out, 1), _pad3(spatial, 1), _pad3(ksize, 1),
               _pad3(stride, 1), _pad3(pad, 0), _pad3(dilation, 1))
    return x, w, geo, batched, (x.shape[0], OCg * groups) + out


def _grad_output(grad_output, dtype, shape, batched, name):
    g = _float_array(grad_output, dtype, name, "grad_output")
    want = shape if batched else shape[1:]
    if g.shape != tuple(want):
        raise ValueError(f"{name}: grad_output must have the forward output's shape "
                         f"{tuple(want)}; got {g.shape}")
    return g.reshape(shape)


# ------------------------------------------------------------------- engine

def _prod(t):
    return math.prod(t)


def _pointwise(geo):
    """1x1 kernel, stride 1, no padding: cols are the input itself."""
    return (geo.k3 == (1, 1, 1) and geo.s3 == (1, 1, 1) and geo.p3 == (0, 0, 0)
            and geo.in3 == geo.out3)


def _chunk(geo, N, itemsize):
    per_sample = geo.C * _prod(geo.k3) * _prod(geo.out3) * itemsize
    return max(1, min(N, _CHUNK_BYTES // max(per_sample, 1)))


def _cols_view(buf, nb, geo):
    G = geo.groups
    return buf[:nb].reshape(nb, G, geo.C // G * _prod(geo.k3), _prod(geo.out3))


def _matmul(a, b, out):
    """``np.matmul(a, b, out=out)``; outer products (inner size 1) as a broadcast multiply.

    NumPy's matmul does not hand a contraction of size 1 to BLAS: for a depthwise
    convolution's ``W3.T @ grad`` that loop was 10x slower than the multiply.
    """
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)
    return np.matmul(a, b, out=out)


def _im2col(x5, buf, geo):
    return im2col(x5, buf, geo.out3, geo.k3, geo.s3, geo.p3, geo.d3, parallel=False)


def _conv_fwd(x5, w3, geo):
    """``W3 @ im2col(x5)``: ``(N, G*OCg, L)`` from image ``x5`` ``(N, C, *in3)``."""
    N = x5.shape[0]
    G, OCg = w3.shape[0], w3.shape[1]
    L = _prod(geo.out3)
    y = np.empty((N, G * OCg, L), w3.dtype)
    if _pointwise(geo):
        _matmul(w3, x5.reshape(N, G, geo.C // G, L), out=y.reshape(N, G, OCg, L))
        return y
    nb = _chunk(geo, N, w3.itemsize)
    buf = np.empty((nb, geo.C * _prod(geo.k3), L), w3.dtype)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        _im2col(x5[n0:n1], buf[:n1 - n0], geo)
        _matmul(w3, _cols_view(buf, n1 - n0, geo), out=y[n0:n1].reshape(n1 - n0, G, OCg, L))
    return y


def _conv_bwd(x5, dy3, w3, geo, need_dx, need_dw, image_shape=None):
    """Input grad (``col2im(W3.T @ dy)``) and/or weight grad (``sum dy @ cols.T``).

    ``x5`` (the image) is only read when ``need_dw``; ``image_shape`` gives the
    input-grad shape when ``x5`` is None. Returns ``(dx5 or None, dw3 or None)``.
    """
    N = dy3.shape[0]
    G, OCg, CgK = w3.shape
    L = _prod(geo.out3)
    shape = x5.shape if x5 is not None else image_shape
    dy4 = dy3.reshape(N, G, OCg, L)
    w3t = w3.transpose(0, 2, 1)
    dx = np.empty(shape, w3.dtype) if need_dx else None
    # the weight grad is accumulated transposed, (G, CgK, OCg): ``cols @ dy.T`` runs
    # 1.3-1.7x faster in OpenBLAS than ``dy @ cols.T`` (a small M against a long K)
    dwt = np.zeros((G, CgK, OCg), w3.dtype) if need_dw else None
    if _pointwise(geo):
        if need_dx:
            _matmul(w3t, dy4, out=dx.reshape(N, G, CgK, L))
        if need_dw:
            part = np.empty((N, G, CgK, OCg), w3.dtype)
            _matmul(x5.reshape(N, G, CgK, L), dy4.transpose(0, 1, 3, 2), out=part)
            np.sum(part, axis=0, out=dwt)
    else:
        nb = _chunk(geo, N, w3.itemsize)
        buf = np.empty((nb, geo.C * _prod(geo.k3), L), w3.dtype)
        part = np.empty((nb, G, CgK, OCg), w3.dtype) if need_dw else None
        for n0 in range(0, N, nb):
            n1 = min(N, n0 + nb)
            m = n1 - n0
            cols = _cols_view(buf, m, geo)
            if need_dw:
                _im2col(x5[n0:n1], buf[:m], geo)
                _matmul(cols, dy4[n0:n1].transpose(0, 1, 3, 2), out=part[:m])
                dwt += part[:m].sum(axis=0)
            if need_dx:
                # the same buffer, still in cache, now receives the cols gradient
                _matmul(w3t, dy4[n0:n1], out=cols)
                col2im(buf[:m], dx[n0:n1], geo.out3, geo.k3, geo.s3, geo.p3, geo.d3,
                       parallel=False)
    dw = np.ascontiguousarray(dwt.transpose(0, 2, 1)) if need_dw else None
    return dx, dw


def _as5(x, geo):
    return x.reshape((x.shape[0], x.shape[1]) + geo.in3)


def _bias_grad(dy3):
    # sum over positions first (contiguous, pairwise), then over the batch
    return dy3.sum(axis=2).sum(axis=0)


# ------------------------------------------------------------------- linear

def linear(input, weight, bias=None):
    """``y = input @ weight.T + bias`` (``torch.nn.functional.linear``).

    Parameters
    ----------
    input : ndarray, shape (*, in_features), float
        Cast to ``weight``'s dtype.
    weight : ndarray or Parameter, shape (out_features, in_features)
    bias : ndarray or Parameter, shape (out_features,), optional

    Returns
    -------
    ndarray, shape (*, out_features)
    """
    w = _weight_array(weight, 2, "linear")
    x = _float_array(input, w.dtype, "linear", "input")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input's last dimension must be in_features "
                         f"({w.shape[1]}); got input of shape {x.shape}")
    b = _bias_array(bias, w.shape[0], w.dtype, "linear")
    # one 2-d GEMM over all leading dimensions (a batched matmul would loop over them)
    y = x.reshape(-1, w.shape[1]) @ w.T
    if b is not None:
        y += b
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def linear_backward(grad_output, input, weight, output_mask=_ALL):
    """Gradients of :func:`linear`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : ndarray, shape (*, out_features)
    input, weight : the forward's arguments
    output_mask : 3 bools
        Which of ``(grad_input, grad_weight, grad_bias)`` to compute; the others are None.
    """
    name = "linear_backward"
    need = _mask(output_mask, name)
    w = _weight_array(weight, 2, name)
    x = _float_array(input, w.dtype, name, "input")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"{name}: input's last dimension must be in_features "
                         f"({w.shape[1]}); got input of shape {x.shape}")
    g = _float_array(grad_output, w.dtype, name, "grad_output")
    if g.shape != x.shape[:-1] + (w.shape[0],):
        raise ValueError(f"{name}: grad_output must have shape {x.shape[:-1] + (w.shape[0],)}"
                         f"; got {g.shape}")
    g2 = g.reshape(-1, w.shape[0])
    gi = (g2 @ w).reshape(x.shape) if need[0] else None
    gw = g2.T @ x.reshape(-1, w.shape[1]) if need[1] else None
    gb = g2.sum(axis=0) if need[2] else None
    return gi, gw, gb


# ------------------------------------------------------------- convolutions

def _conv(rank, name, input, weight, bias, stride, padding, dilation, groups):
    x, w, geo, batched, out_shape = _conv_setup(rank, name, input, weight, stride, padding,
                                                dilation, groups)
    b = _bias_array(bias, w.shape[0], w.dtype, name)
    G = geo.groups
    y = _conv_fwd(_as5(x, geo), w.reshape(G, w.shape[0] // G, -1), geo)
    if b is not None:
        y += b[:, None]
    y = y.reshape(out_shape)
    return y if batched else y[0]


def _conv_backward(rank, name, grad_output, input, weight, stride, padding, dilation, groups,
                   output_mask):
    need = _mask(output_mask, name)
    x, w, geo, batched, out_shape = _conv_setup(rank, name, input, weight, stride, padding,
                                                dilation, groups)
    N = x.shape[0]
    dy3 = _grad_output(grad_output, w.dtype, out_shape, batched, name).reshape(
        N, out_shape[1], -1)
    G = geo.groups
    dx, dw = _conv_bwd(_as5(x, geo), dy3, w.reshape(G, w.shape[0] // G, -1), geo, need[0],
                       need[1])
    gi = dx.reshape(x.shape if batched else x.shape[1:]) if need[0] else None
    gw = dw.reshape(w.shape) if need[1] else None
    gb = _bias_grad(dy3) if need[2] else None
    return gi, gw, gb


def _conv_t(rank, name, input, weight, bias, stride, padding, output_padding, groups,
            dilation):
    x, w, geo, batched, out_shape = _conv_t_setup(rank, name, input, weight, stride, padding,
                                                  output_padding, groups, dilation)
    b = _bias_array(bias, out_shape[1], w.dtype, name)
    N, G = x.shape[0], geo.groups
    y, _ = _conv_bwd(None, x.reshape(N, x.shape[1], -1), w.reshape(G, w.shape[0] // G, -1),
                     geo, True, False, image_shape=(N, geo.C) + geo.in3)
    if b is not None:
        y.reshape(N, geo.C, -1)[...] += b[:, None]
    y = y.reshape(out_shape)
    return y if batched else y[0]


def _conv_t_backward(rank, name, grad_output, input, weight, stride, padding, output_padding,
                     groups, dilation, output_mask):
    need = _mask(output_mask, name)
    x, w, geo, batched, out_shape = _conv_t_setup(rank, name, input, weight, stride, padding,
                                                  output_padding, groups, dilation)
    N, G = x.shape[0], geo.groups
    g = _grad_output(grad_output, w.dtype, out_shape, batched, name)
    g5 = g.reshape((N, geo.C) + geo.in3)
    w3 = w.reshape(G, w.shape[0] // G, -1)
    gi = gw = gb = None
    if need[0]:
        # the input grad of the adjoint is the convolution itself
        gi = _conv_fwd(g5, w3, geo).reshape(x.shape if batched else x.shape[1:])
    if need[1]:
        _, dw = _conv_bwd(g5, x.reshape(N, x.shape[1], -1), w3, geo, False, True)
        gw = dw.reshape(w.shape)
    if need[2]:
        gb = _bias_grad(g.reshape(N, geo.C, -1))
    return gi, gw, gb


_CONV_DOC = """{kind} convolution over an input ``(N, C_in, {dims})`` or unbatched
``(C_in, {dims})`` (``torch.nn.functional.{name}``).

Parameters
----------
input : ndarray, float
    Cast to ``weight``'s dtype.
weight : ndarray or Parameter, shape {wshape}
bias : ndarray or Parameter, shape (C_out,), optional
stride, {padarg}dilation : int or tuple of {rank} ints
{padding_doc}groups : int
    Channels are split into ``groups`` independent convolutions.

Returns
-------
ndarray, shape (N, C_out, {odims}) (no N for an unbatched input)
"""

_PAD_DOC = """padding : int, tuple of {rank} ints, 'valid' or 'same'
    Implicit zero padding on both sides; ``'same'`` (stride 1 only) pads
    ``dilation*(kernel_size-1)`` in total, the odd unit after, so the output has the
    input's size.
"""

_PAD_T_DOC = """padding : int or tuple of {rank} ints
    ``dilation*(kernel_size-1) - padding`` zero padding is added to both sides of the
    input (that is, ``padding`` is removed from each side of the full output).
output_padding : int or tuple of {rank} ints
    Extra size added to one side of the output (smaller than stride or dilation).
"""

_BWD_DOC = """Gradients of :func:`{name}`: ``(grad_input, grad_weight, grad_bias)``.

``grad_output`` has the forward output's shape; the other arguments are the forward's.
``output_mask`` (3 bools) says which gradients to compute; the others are ``None``.
"""


def _dims(rank):
    return ", ".join(("D", "H", "W")[3 - rank:])


def _make(rank):
    dims = _dims(rank)
    odims = ", ".join(d + "_out" for d in ("D", "H", "W")[3 - rank:])
    ks = ", ".join("k" + d for d in ("D", "H", "W")[3 - rank:])

    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return _conv(rank, f"conv{rank}d", input, weight, bias, stride, padding, dilation,
                     groups)

    def conv_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1,
                      output_mask=_ALL):
        return _conv_backward(rank, f"conv{rank}d_backward", grad_output, input, weight,
                              stride, padding, dilation, groups, output_mask)

    def conv_t(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
               dilation=1):
        return _conv_t(rank, f"conv_transpose{rank}d", input, weight, bias, stride, padding,
                       output_padding, groups, dilation)

    def conv_t_backward(grad_output, input, weight, stride=1, padding=0, output_padding=0,
                        groups=1, dilation=1, output_mask=_ALL):
        return _conv_t_backward(rank, f"conv_transpose{rank}d_backward", grad_output, input,
                                weight, stride, padding, output_padding, groups, dilation,
                                output_mask)

    for f, name in ((conv, f"conv{rank}d"), (conv_backward, f"conv{rank}d_backward"),
                    (conv_t, f"conv_transpose{rank}d"),
                    (conv_t_backward, f"conv_transpose{rank}d_backward")):
        f.__name__ = f.__qualname__ = name
        f.__module__ = __name__
    conv.__doc__ = _CONV_DOC.format(
        kind=f"{rank}-d", name=f"conv{rank}d", dims=dims, odims=odims, rank=rank,
        wshape=f"(C_out, C_in/groups, {ks})", padarg="",
        padding_doc=_PAD_DOC.format(rank=rank))
    conv_t.__doc__ = _CONV_DOC.format(
        kind=f"{rank}-d transposed", name=f"conv_transpose{rank}d", dims=dims, odims=odims,
        rank=rank, wshape=f"(C_in, C_out/groups, {ks})", padarg="",
        padding_doc=_PAD_T_DOC.format(rank=rank))
    conv_backward.__doc__ = _BWD_DOC.format(name=f"conv{rank}d")
    conv_t_backward.__doc__ = _BWD_DOC.format(name=f"conv_transpose{rank}d")
    return conv, conv_backward, conv_t, conv_t_backward


conv1d, conv1d_backward, conv_transpose1d, conv_transpose1d_backward = _make(1)
conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward = _make(2)
conv3d, conv3d_backward, conv_transpose3d, conv_transpose3d_backward = _make(3)


# ------------------------------------------------- non-zero padding modes (layers)
# torch's Conv layers with padding_mode 'reflect' / 'replicate' / 'circular' pad the
# input explicitly (F.pad) and convolve with padding 0; these two private helpers are
# that pad and its gradient, for the last ``len(pads)`` dimensions.

_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _check_pad_mode(x, pads, mode, name):
    spatial = x.shape[x.ndim - len(pads):]
    for size, (lo, hi) in zip(spatial, pads):
        if mode == "reflect" and max(lo, hi) >= size:
            raise ValueError(f"{name}: padding_mode='reflect' needs padding < input size in "
                             f"each dimension; got padding {(lo, hi)} for size {size}")
        if mode == "circular" and max(lo, hi) > size:
            raise ValueError(f"{name}: padding_mode='circular' needs padding <= input size in "
                             f"each dimension; got padding {(lo, hi)} for size {size}")
        if mode == "replicate" and size == 0 and (lo or hi):
            raise ValueError(f"{name}: padding_mode='replicate' needs a non-empty input")


def _pad_nd(x, pads, mode, name="pad"):
    """Pad the last ``len(pads)`` dims of ``x`` by ``pads[i] = (before, after)``."""
    _check_pad_mode(x, pads, mode, name)
    lead = [(0, 0)] * (x.ndim - len(pads))
    return np.pad(x, lead + [tuple(p) for p in pads], mode=_NP_PAD_MODE[mode])


def _pad_nd_backward(grad, pads, mode):
    """Gradient of :func:`_pad_nd`: fold each padded position onto its source."""
    first = grad.ndim - len(pads)
    for ax, (lo, hi) in enumerate(pads, start=first):
        if lo == 0 and hi == 0:
            continue
        n = grad.shape[ax] - lo - hi
        src = np.pad(np.arange(n), (lo, hi), mode=_NP_PAD_MODE[mode])
        g = np.moveaxis(grad, ax, 0)
        out = g[lo:lo + n].copy()
        # a few pad positions: one add per position, duplicates (replicate) accumulate
        for j in list(range(lo)) + list(range(lo + n, lo + n + hi)):
            out[src[j]] += g[j]
        grad = np.moveaxis(out, 0, ax)
    return np.ascontiguousarray(grad)
