"""QTensor methods against torch 2.13's quantized Tensor (issue 2, section 4).

Integer values, qparams and indices compare with exact equality. Where torch is
broken for a case (per-channel views that keep a stale channel axis, most methods
on quint4x2) the test compares numq with what torch *should* return: the same op
on torch's integer values / dequantized values, or torch's quantization of the
transformed float input (quantization is elementwise, so ``op(quantize(x))`` must
equal ``quantize(op(x))`` with the channel qparams moved along).
"""
import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

import numq  # noqa: E402

# torch 2.13 warns on every quantized tensor it creates (the API is deprecated)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These inputs are tiny: torch's thread pool only costs time here (spin-waits on a
    busy 2-core machine). Restored afterwards for other modules."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

DT = {"quint8": (torch.quint8, numq.quint8), "qint8": (torch.qint8, numq.qint8),
      "qint32": (torch.qint32, numq.qint32), "quint4x2": (torch.quint4x2, numq.quint4x2)}
ZP = {"quint8": 3, "qint8": -4, "qint32": 7, "quint4x2": 5}
ZP_RANGE = {"quint8": (0, 12), "qint8": (-6, 6), "qint32": (-50, 50), "quint4x2": (0, 15)}
SCALE = 0.0173          # not a float32: q_scale() must return the double exactly
DTYPES = ["quint8", "qint8", "qint32"]
# (scheme, axis) for a 3-d input: per tensor and per channel on axis 0, 1 and the last.
SCHEMES = [("pt", None), ("pc", 0), ("pc", 1), ("pc", -1)]
SCHEME_IDS = ["per_tensor", "axis0", "axis1", "axis_last"]


# ----------------------------------------------------------------------------- helpers
def floats(shape, seed=0, mult=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * mult).astype(np.float32)


def to_torch(x):
    """torch copy of any NumPy float array (torch refuses negative strides / big endian)."""
    return torch.from_numpy(np.array(x, dtype=np.float32, order="C"))


def channel_qparams(C, dt, seed=1):
    rng = np.random.default_rng(seed + C)
    lo, hi = ZP_RANGE[dt]
    return rng.uniform(0.01, 0.2, C), rng.integers(lo, hi, C, endpoint=True)


def build(x, dt, scheme="pt", axis=None):
    """The same float array quantized by numq (from ``x`` as is) and by torch."""
    tdt, ndt = DT[dt]
    if scheme == "pt":
        return (numq.quantize_per_tensor(x, SCALE, ZP[dt], ndt),
                torch.quantize_per_tensor(to_torch(x), SCALE, ZP[dt], tdt))
    s, z = channel_qparams(x.shape[axis], dt)
    return (numq.quantize_per_channel(x, s, z, axis, ndt),
            # torch refuses a negative axis ("Channel axis out of range"); numq takes it
            torch.quantize_per_channel(to_torch(x), torch.from_numpy(s), torch.from_numpy(z),
                                       axis % x.ndim, tdt))


def tname(obj):
    return str(obj).removeprefix("torch.")


def assert_same(n, t):
    """numq QTensor ``n`` equals torch quantized tensor ``t``: metadata, qparams, values."""
    assert isinstance(n, numq.QTensor)
    assert tuple(n.shape) == tuple(t.shape)
    assert n.dtype.name == tname(t.dtype)
    assert n.qscheme().name == tname(t.qscheme())
    if t.qscheme() == torch.per_tensor_affine:
        assert n.q_scale() == t.q_scale()
        assert n.q_zero_point() == t.q_zero_point()
        assert type(n.q_scale()) is float and type(n.q_zero_point()) is int
    else:
        np.testing.assert_array_equal(n.q_per_channel_scales(), t.q_per_channel_scales().numpy())
        np.testing.assert_array_equal(n.q_per_channel_zero_points(),
                                      t.q_per_channel_zero_points().numpy())
        assert n.q_per_channel_axis() == t.q_per_channel_axis()
    ni, ti = n.int_repr(), t.int_repr().numpy()
    assert ni.dtype == ti.dtype and ni.shape == ti.shape
    np.testing.assert_array_equal(ni, ti)
    nd, td = n.dequantize(), t.dequantize().numpy()
    assert nd.dtype == np.float32 and nd.shape == td.shape
    np.testing.assert_array_equal(nd, td)


def assert_values(n, t_int, t_deq):
    """Values only: for cases where torch's own qparams are wrong (see module doc)."""
    assert tuple(n.shape) == tuple(t_int.shape)
    np.testing.assert_array_equal(n.int_repr(), t_int.numpy())
    np.testing.assert_array_equal(n.dequantize(), t_deq.numpy())


def layouts(shape, seed=0):
    """One float array in several memory layouts: (name, array)."""
    base = floats(shape, seed)
    rev = np.ascontiguousarray(base[::-1, :, ::-1])[::-1, :, ::-1]    # negative strides
    tr = np.ascontiguousarray(base.transpose(2, 0, 1)).transpose(1, 2, 0)  # transposed
    big = base.astype(">f4")                                          # big endian
    f64 = base.astype(np.float64)
    for a in (rev, tr, big):
        np.testing.assert_array_equal(a, base)
    return [("contiguous", base), ("negative_strides", rev), ("transposed", tr),
            ("big_endian", big), ("float64", f64)]


# ------------------------------------------------------------------ construction, layouts
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_layouts_quantize_identically(dt, scheme, axis):
    for name, x in layouts((3, 4, 5)):
        assert x.shape == (3, 4, 5), name
        n, t = build(x, dt, scheme, axis)
        assert_same(n, t)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
@pytest.mark.parametrize("shape", [(0, 4, 5), (3, 0, 5), (3, 4, 0)])
def test_empty(dt, scheme, axis, shape):
    x = np.zeros(shape, np.float32)
    n, t = build(x, dt, scheme, axis)
    assert_same(n, t)
    assert n.numel() == t.numel() == 0
    assert_same(n.clone(), t.clone())
    assert_same(n.reshape(shape + (1,)), t.reshape(shape + (1,)))
    if scheme == "pt":
        assert_same(n.reshape(shape[0], -1) if shape[0] else n.reshape(0, 20),
                     t.reshape(shape[0], -1) if shape[0] else t.reshape(0, 20))
        assert_same(n.flatten(), t.flatten())
        assert_same(n.transpose(0, 2), t.transpose(0, 2))
        assert_same(n[1:], t[1:])
        assert_same(n.view(-1), t.view(-1))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_metadata(dt, scheme, axis):
    n, t = build(floats((3, 4, 5)), dt, scheme, axis)
    assert n.shape == tuple(t.shape) and n.size() == tuple(t.size())
    for d in (0, 1, 2, -1, -3):
        assert n.size(d) == t.size(d)
    assert n.dim() == n.ndim == t.dim() == t.ndim
    assert n.numel() == t.numel()
    assert len(n) == len(t)
    assert n.is_quantized and t.is_quantized
    assert n.dtype.name == tname(t.dtype)
    assert n.qscheme().name == tname(t.qscheme())
    assert n.is_contiguous() == t.is_contiguous()
    if scheme == "pt":
        assert n.q_scale() == t.q_scale() == SCALE
        assert n.q_zero_point() == t.q_zero_point()
    else:
        assert n.q_per_channel_axis() == t.q_per_channel_axis() == axis % 3
        np.testing.assert_array_equal(n.q_per_channel_scales(), t.q_per_channel_scales().numpy())
        np.testing.assert_array_equal(n.q_per_channel_zero_points(),
                                      t.q_per_channel_zero_points().numpy())
        assert n.q_per_channel_zero_points().dtype == t.q_per_channel_zero_points().numpy().dtype
        assert n.q_per_channel_scales().dtype == t.q_per_channel_scales().numpy().dtype


def test_zero_dim():
    n, t = build(floats((3, 4)), "quint8")
    n0, t0 = n[1, 2], t[1, 2]
    assert_same(n0, t0)
    assert n0.shape == () and n0.dim() == 0 and n0.numel() == 1
    assert_same(n0.flatten(), t0.flatten())
    assert_same(n0.clone(), t0.clone())
    assert_same(n0.reshape(1, 1), t0.reshape(1, 1))
    with pytest.raises(TypeError, match="0-d"):
        len(n0)
    with pytest.raises(TypeError):
        len(t0)


# ------------------------------------------------------------------------ int_repr / dequantize
@pytest.mark.parametrize("shape", [(3, 4, 6), (3, 5), (7,), (1,), (0,)])
def test_quint4x2_int_repr_packed(shape):
    """torch packs two 4-bit values per byte, low nibble first, into a flat array."""
    x = floats(shape, 4, mult=1.0)
    n, t = build(x, "quint4x2")
    assert n.int_repr().shape == ((n.numel() + 1) // 2,) == tuple(t.int_repr().shape)
    assert_same(n, t)
    assert_same(n.reshape(-1), t.reshape(-1))
    if len(shape) == 3:
        assert_same(n.view(shape[0] * shape[1], shape[2]), t.view(shape[0] * shape[1], shape[2]))
        assert_same(n.flatten(1), t.flatten(1))


@pytest.mark.parametrize("qdtype", [np.float32, np.float64])
def test_quint4x2_per_channel_float_qparams(qdtype):
    """Float zero points: torch keeps scales and zero points in float32, whatever it was given."""
    x = floats((4, 6), 5, mult=1.0)
    s = np.random.default_rng(2).uniform(0.05, 0.3, 4).astype(qdtype)
    z = np.random.default_rng(3).uniform(0.0, 8.0, 4).astype(qdtype)
    for ndt, tdt in [(numq.quint4x2, torch.quint4x2), (numq.quint8, torch.quint8)]:
        n = numq.quantize_per_channel(x, s, z, 0, ndt)
        t = torch.quantize_per_channel(to_torch(x), torch.from_numpy(s), torch.from_numpy(z), 0, tdt)
        assert n.qscheme() is numq.per_channel_affine_float_qparams
        assert_same(n, t)
        assert n.q_per_channel_scales().dtype == t.q_per_channel_scales().numpy().dtype
        assert n.q_per_channel_zero_points().dtype == t.q_per_channel_zero_points().numpy().dtype


@pytest.mark.parametrize("dt", ["quint8", "qint8", "qint32", "quint4x2"])
def test_quint4x2_and_friends_supported_methods(dt):
    """The methods torch supports for every dtype, including quint4x2 (see test below)."""
    n, t = build(floats((4, 6), 6, mult=1.0), dt)
    n2, t2 = build(floats((4, 6), 7, mult=1.0), dt)
    for op in ("eq", "ne", "ge", "le", "gt", "lt"):
        np.testing.assert_array_equal(getattr(n, op)(n2), getattr(t, op)(t2).numpy())
        np.testing.assert_array_equal(getattr(n, op)(0.2), getattr(t, op)(0.2).numpy())
    assert n.equal(n) == t.equal(t) and n.equal(n2) == t.equal(t2)
    assert n.q_scale() == t.q_scale() and n.q_zero_point() == t.q_zero_point()
    assert_same(n.reshape(2, 12), t.reshape(2, 12))
    assert f"numq.{dt}" in repr(n) and "per_tensor_affine" in repr(n)


def test_quint4x2_torch_is_broken_for_views_and_reductions():
    """Documents torch 2.13: quint4x2 indexing / max read the *packed* bytes (wrong values),
    and clone / copy_ / contiguous / mean / topk are not implemented. numq works on the
    unpacked values; compare with torch's dequantized values instead."""
    n, t = build(floats((3, 4, 6), 8, mult=1.0), "quint4x2")
    td = t.dequantize()
    assert not torch.equal(t[2].dequantize(), td[2])           # torch bug
    assert float(t.max().dequantize()) != float(td.max())      # torch bug
    for fn in (lambda: t.clone(), lambda: t.mean(), lambda: t.topk(2)):
        with pytest.raises(NotImplementedError):
            fn()
    np.testing.assert_array_equal(n[2].dequantize(), td[2].numpy())
    np.testing.assert_array_equal(n[:, 1].dequantize(), td[:, 1].numpy())
    np.testing.assert_array_equal(n.transpose(0, 2).dequantize(), td.transpose(0, 2).numpy())
    assert float(n.max().dequantize()) == float(td.max())
    assert float(n.min().dequantize()) == float(td.min())
    v, i = n.sort(stable=True)
    tv, ti = td.sort(stable=True)
    np.testing.assert_array_equal(v.dequantize(), tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    c = n.clone().copy_(n.dequantize()[::-1].copy())
    np.testing.assert_array_equal(c.dequantize(), td.numpy()[::-1])


# ----------------------------------------------------------------- reshape / view / flatten
@pytest.mark.parametrize("dt", DTYPES)
def test_reshape_view_flatten_per_tensor(dt):
    n, t = build(floats((2, 3, 4)), dt)
    for shape in [(6, 4), (24,), (-1,), (2, -1), (4, 3, 2), (1, 2, 1, 12), (2, 3, 4)]:
        assert_same(n.reshape(shape), t.reshape(shape))
        assert_same(n.reshape(*shape), t.reshape(*shape))
        assert_same(n.view(*shape), t.view(*shape))
        assert_same(n.view(list(shape)), t.view(list(shape)))
    for args in [(), (0,), (1,), (0, 1), (1, 2), (-2, -1), (2,), (1, 1)]:
        assert_same(n.flatten(*args), t.flatten(*args))
    # view shares the integers with its base (torch and numq)
    v = n.view(24)
    assert np.shares_memory(v._int, n._int)
    # view of a non-contiguous tensor: works when strides allow, raises like torch otherwise
    nt, tt = n.transpose(1, 2), t.transpose(1, 2)
    assert_same(nt.view(2, 4, 3), tt.view(2, 4, 3))
    assert_same(nt.view(2, 4, 3, 1), tt.view(2, 4, 3, 1))
    assert_same(n[:, :, ::2].view(6, 2), t[:, :, ::2].view(6, 2))
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        tt.view(24)
    with pytest.raises(ValueError, match="reshape"):
        nt.view(24)
    assert_same(nt.reshape(24), tt.reshape(24))
    assert_same(nt.flatten(), tt.flatten())


@pytest.mark.parametrize("dt", DTYPES)
def test_reshape_per_channel_where_torch_is_right(dt):
    """torch keeps the axis *index* on reshape: right only while the channel dim keeps it."""
    n, t = build(floats((3, 4, 5)), dt, "pc", 0)
    for shape in [(3, 20), (3, 2, 10), (3, 4, 5, 1), (3, -1)]:
        assert_same(n.reshape(shape), t.reshape(shape))
        assert_same(n.view(shape), t.view(shape))
    assert_same(n.flatten(1), t.flatten(1))
    n, t = build(floats((3, 4, 5)), dt, "pc", 1)
    assert_same(n.reshape(3, 4, 5), t.reshape(3, 4, 5))
    assert_same(n.reshape(3, 4, 5, 1), t.reshape(3, 4, 5, 1))


@pytest.mark.parametrize("dt", DTYPES)
def test_reshape_per_channel_moves_axis_where_torch_is_wrong(dt):
    """numq moves the channel axis with its dimension; torch keeps the stale index
    (so its result dequantizes with the wrong channels, or not at all). Compare with
    torch quantizing the reshaped float input on the right axis."""
    x = floats((3, 4, 5))
    n, t = build(x, dt, "pc", -1)
    s, z = channel_qparams(5, dt)
    tdt = DT[dt][0]
    r = n.reshape(12, 5)
    assert t.reshape(12, 5).q_per_channel_axis() == 2          # torch: stale axis on a 2-d tensor
    assert r.q_per_channel_axis() == 1
    ref = torch.quantize_per_channel(to_torch(x.reshape(12, 5)), torch.from_numpy(s),
                                     torch.from_numpy(z), 1, tdt)
    assert_same(r, ref)
    assert_same(n.flatten(0, 1), ref)
    n, t = build(x, dt, "pc", 1)
    s, z = channel_qparams(4, dt)
    ref = torch.quantize_per_channel(to_torch(x.reshape(1, 3, 4, 5)), torch.from_numpy(s),
                                     torch.from_numpy(z), 2, tdt)
    assert_same(n.reshape(1, 3, 4, 5), ref)
    assert t.reshape(1, 3, 4, 5).q_per_channel_axis() == 1      # torch: stale (should be 2)
    for bad in [(60,), (12, 5), (3, 2, 10)]:
        with pytest.raises(ValueError, match="channel axis"):
            n.reshape(bad)


# -------------------------------------------------------------------- permute / transpose
@pytest.mark.parametrize("dt", DTYPES)
def test_permute_transpose_contiguous_per_tensor(dt):
    n, t = build(floats((2, 3, 4)), dt)
    for dims in [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0), (-1, 0, 1)]:
        assert_same(n.permute(*dims), t.permute(*dims))
        assert_same(n.permute(dims), t.permute(dims))
        p, tp = n.permute(dims), t.permute(dims)
        assert p.is_contiguous() == tp.is_contiguous()
        assert_same(p.contiguous(), tp.contiguous())
        assert p.contiguous().is_contiguous()
    for d0, d1 in [(0, 1), (1, 2), (0, 2), (-1, 0), (1, 1)]:
        assert_same(n.transpose(d0, d1), t.transpose(d0, d1))
    assert n.contiguous() is n                 # already contiguous: same object, as torch
    assert t.contiguous() is t


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_permute_transpose_per_channel(dt, axis):
    """torch refuses strides on per-channel tensors; numq moves the axis along.
    Reference: torch quantizing the permuted float input on the moved axis."""
    x = floats((2, 3, 4))
    n, t = build(x, dt, "pc", axis)
    with pytest.raises(RuntimeError, match="Setting strides"):
        t.transpose(0, 1)
    s, z = channel_qparams(x.shape[axis], dt)
    for dims in [(2, 0, 1), (1, 0, 2), (0, 2, 1)]:
        p = n.permute(dims)
        new_axis = dims.index(axis % 3)
        ref = torch.quantize_per_channel(to_torch(x.transpose(dims)), torch.from_numpy(s),
                                         torch.from_numpy(z), new_axis, DT[dt][0])
        assert_same(p, ref)
        assert_same(p.contiguous(), ref)


# ------------------------------------------------------------------------------ indexing
BASIC_KEYS = [
    1, -1, (1, 2), (-1, -2, -3), (0, 1, 2), slice(None), slice(1, None), slice(None, None, 2),
    (slice(None), slice(None, None, 2)), (slice(None), slice(1, 4, 2), slice(None, None, 3)),
    (Ellipsis, 1), (Ellipsis, slice(1, 3)), (1, Ellipsis), (None,), (None, 1), (slice(None), None, 2),
    (Ellipsis, None), (0, None, Ellipsis, None, 2), (slice(-2, None), -1), (slice(5, 9),),
    (slice(None), slice(3, 1)),
]
ADVANCED_KEYS = [
    [0, 2], np.array([2, 0, 0]), (slice(None), [1, 3]), (Ellipsis, np.array([4, 0])),
    np.array([True, False, True]), (slice(None), np.array([True, False, True, True])),
    (np.array([0, 2]), np.array([1, 3])), (np.array([0, 2]), slice(None), np.array([1, 4])),
    np.zeros((3, 4), bool) | (np.arange(4) % 2 == 0), ([[0, 1], [2, 0]],),
]


def torch_key(key):
    if isinstance(key, tuple):
        return tuple(torch_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return torch.from_numpy(key)
    if isinstance(key, list):
        return torch.tensor(key)
    return key


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("key", BASIC_KEYS + ADVANCED_KEYS, ids=repr)
def test_indexing_per_tensor(dt, key):
    n, t = build(floats((3, 4, 5)), dt)
    r, tr = n[key], t[torch_key(key)]
    assert_same(r, tr)
    # the same key on a non-contiguous tensor
    nt, tt = n.transpose(0, 2).transpose(0, 1), t.transpose(0, 2).transpose(0, 1)
    assert nt.shape == (4, 5, 3)
    try:
        tr = tt[torch_key(key)]
    except IndexError:
        with pytest.raises(IndexError):
            nt[key]
    else:
        assert_same(nt[key], tr)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_indexing_per_channel_basic(dt, axis, key):
    """Basic indexing of a per-channel tensor: slicing the channel dim slices the scales,
    an int on it gives a per-tensor result with torch's (double) scale. torch gets the
    metadata wrong when an int removes a dim after the channel dim (it decrements the
    axis anyway); there numq is compared on values only.

    Note: torch dequantizes per-channel as ``f32((q - zp) * double(scale))`` but
    per-tensor as ``f32(q - zp) * f32(scale)``, so one selected channel can dequantize
    1 ulp away from the same element of the whole tensor, in torch and numq alike."""
    n, t = build(floats((3, 4, 5)), dt, "pc", axis)
    tk = torch_key(key)
    r = n[key]
    np.testing.assert_array_equal(r.int_repr(), t.int_repr()[tk].numpy())
    if r.qscheme() is numq.per_channel_affine and r.shape[r.q_per_channel_axis()] == 0:
        # torch 2.13 cannot slice a per-channel tensor down to 0 channels
        with pytest.raises(RuntimeError, match="0 elements"):
            t[tk]
        assert r.q_per_channel_scales().size == 0 and r.numel() == 0
        return
    tr = t[tk]
    if r.qscheme() is numq.per_tensor_affine:          # one channel: torch is right
        assert_same(r, tr)
        return
    np.testing.assert_array_equal(r.dequantize(), t.dequantize()[tk].numpy())
    try:
        torch_ok = torch.equal(tr.dequantize(), t.dequantize()[tk])
    except RuntimeError:
        torch_ok = False
    if torch_ok:
        assert_same(r, tr)
    # torch decrements the axis for *every* int index on another dim (to -1 for axis
    # 0); it is right when those dims come before the channel dim, and for slices.
    if key in (slice(None, None, 2), (Ellipsis, slice(1, 3)), slice(1, None)) or \
            (axis >= 1 and key in (1, (None, 1))) or (axis == 2 and key == (1, 2)):
        assert torch_ok                   # cases torch gets right must be compared fully


def test_indexing_per_channel_torch_bug_documented():
    n, t = build(floats((3, 4, 5)), "quint8", "pc", 1)
    tr = t[..., 1]           # removes dim 2, after the channel dim 1
    assert tr.q_per_channel_axis() == 0                  # torch: should stay 1
    with pytest.raises(RuntimeError, match="length of scales"):
        tr.dequantize()
    r = n[..., 1]
    assert r.q_per_channel_axis() == 1
    np.testing.assert_array_equal(r.dequantize(), t.dequantize()[..., 1].numpy())
    assert t.select(2, 1).q_per_channel_axis() == 0     # same bug through select
    assert n.select(2, 1).q_per_channel_axis() == 1


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_select_one_channel_is_per_tensor(dt, axis):
    n, t = build(floats((3, 4, 5)), dt, "pc", axis)
    C = n.shape[axis]
    for c in (0, C - 1, -1, -C):
        r, tr = n.select(axis, c), t.select(axis, c)
        assert r.qscheme() is numq.per_tensor_affine
        assert_same(r, tr)                                 # q_scale is torch's double scale
        idx = (slice(None),) * (axis % 3) + (c,)
        assert_same(n[idx], t[idx])


@pytest.mark.parametrize("dt", DTYPES)
def test_sliced_per_channel_scales(dt):
    n, t = build(floats((6, 4, 5)), dt, "pc", 0)
    for key in [slice(1, 4), slice(None, None, 2), slice(-3, None), slice(0, 6, 4)]:
        r, tr = n[key], t[key]
        assert_same(r, tr)
        np.testing.assert_array_equal(r.q_per_channel_scales(), n.q_per_channel_scales()[key])
    assert_same(n[1:4][1], t[1:4][1])                      # one channel of a slice
    assert_same(n[1:4][1:, 2:], t[1:4][1:, 2:])


@pytest.mark.parametrize("dt", DTYPES)
def test_select_per_tensor(dt):
    n, t = build(floats((3, 4, 5)), dt)
    for dim in (0, 1, 2, -1, -2):
        for i in (0, 2, -1):
            assert_same(n.select(dim, i), t.select(dim, i))
    assert_same(n.transpose(0, 2).select(1, 3), t.transpose(0, 2).select(1, 3))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_select_per_channel_other_dims(dt, axis):
    n, t = build(floats((3, 4, 5)), dt, "pc", axis)
    for dim in range(3):
        if dim == axis:
            continue
        r = n.select(dim, 1)
        assert_values(r, t.int_repr().select(dim, 1), t.dequantize().select(dim, 1))
        assert r.q_per_channel_axis() == (axis if dim > axis else axis - 1)
        if dim < axis:                                     # torch is right here
            assert_same(r, t.select(dim, 1))


# -------------------------------------------------------------------------------- expand
@pytest.mark.parametrize("dt", DTYPES)
def test_expand_per_tensor(dt):
    n, t = build(floats((3, 1, 5)), dt)
    for sizes in [(3, 4, 5), (2, 3, 4, 5), (-1, 6, -1), (2, -1, 2, -1), (3, 1, 5)]:
        assert_same(n.expand(*sizes), t.expand(*sizes))
        assert_same(n.expand(sizes), t.expand(sizes))
    e, te = n.expand(3, 4, 5), t.expand(3, 4, 5)
    assert_same(e.contiguous(), te.contiguous())
    assert_same(e[:, 2], te[:, 2])
    n0, t0 = n[0, 0, 0], t[0, 0, 0]
    assert_same(n0.expand(2, 3), t0.expand(2, 3))


@pytest.mark.parametrize("dt", DTYPES)
def test_expand_per_channel(dt):
    """torch refuses; numq broadcasts and keeps the channel axis (shifted by new dims)."""
    x = floats((3, 1, 5))
    n, t = build(x, dt, "pc", 2)
    with pytest.raises(RuntimeError):
        t.expand(3, 4, 5)
    e = n.expand(2, 3, 4, 5)
    assert e.q_per_channel_axis() == 3
    ref = t.dequantize().expand(2, 3, 4, 5).numpy()
    np.testing.assert_array_equal(e.dequantize(), ref)
    np.testing.assert_array_equal(e.int_repr(), t.int_repr().expand(2, 3, 4, 5).numpy())


# ---------------------------------------------------------------------------- as_strided
@pytest.mark.parametrize("dt", DTYPES)
def test_as_strided(dt):
    n, t = build(floats((4, 6)), dt)
    for size, stride, off in [((2, 3), (6, 2), None), ((3, 3), (1, 3), 2), ((2, 2), (0, 1), 5),
                              ((24,), (1,), 0), ((2, 0), (1, 1), None), ((), (), 7),
                              ((5,), (4,), 3)]:
        args = (size, stride) if off is None else (size, stride, off)
        assert_same(n.as_strided(*args), t.as_strided(*args))
    # on views: the default offset is the view's, and the whole storage stays reachable
    for nv, tv in [(n[1:], t[1:]), (n[:, 2:], t[:, 2:]), (n.transpose(0, 1)[1], t.transpose(0, 1)[1]),
                   (n.as_strided((2,), (1,), 3), t.as_strided((2,), (1,), 3)),
                   (n.view(2, 12)[1], t.view(2, 12)[1])]:
        assert_same(nv.as_strided((3,), (2,)), tv.as_strided((3,), (2,)))
        assert_same(nv.as_strided((3,), (2,), 0), tv.as_strided((3,), (2,), 0))
        assert_same(nv.as_strided((2, 2), (7, 1), 1), tv.as_strided((2, 2), (7, 1), 1))
    # writes through an as_strided view land in the base (torch 2.13 refuses copy_ into a
    # non-contiguous quantized view: "Quantized copy only works with contiguous and NHWC")
    c, tc = n.clone(), t.clone()
    y = np.float32([0.5, -0.5])
    c.as_strided((2,), (5,), 1).copy_(y)
    with pytest.raises(RuntimeError, match="contiguous"):
        tc.as_strided((2,), (5,), 1).copy_(torch.from_numpy(y))
    tc.as_strided((1,), (1,), 1).copy_(torch.from_numpy(y[:1]))
    tc.as_strided((1,), (1,), 6).copy_(torch.from_numpy(y[1:]))
    assert_same(c, tc)
    with pytest.raises(RuntimeError, match="out of bounds"):
        t.as_strided((3,), (1,), 22)
    with pytest.raises(ValueError, match="storage"):
        n.as_strided((3,), (1,), 22)


# --------------------------------------------------------------------------- comparisons
OPS = ["eq", "ne", "ge", "le", "gt", "lt"]
DUNDER = {"eq": "__eq__", "ne": "__ne__", "ge": "__ge__", "le": "__le__", "gt": "__gt__",
          "lt": "__lt__"}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_comparisons(dt, op):
    x = np.round(floats((3, 4, 5), 9), 1)
    n, t = build(x, dt)
    n_pc, t_pc = build(x, dt, "pc", 1)
    others = [
        build(x, dt),                                       # equal values
        build(np.round(floats((3, 4, 5), 10), 1), dt),      # other values
        (numq.quantize_per_tensor(x, 0.05, 0, DT[dt][1]),   # other qparams
         torch.quantize_per_tensor(to_torch(x), 0.05, 0, DT[dt][0])),
        build(x, "qint8" if dt != "qint8" else "quint8"),  # other dtype
        (n_pc, t_pc),                                       # per-channel vs per-tensor
        (n[0:1], t[0:1]),                                   # broadcast
        (n.transpose(1, 2).contiguous().transpose(1, 2),    # non-contiguous
         t.transpose(1, 2).contiguous().transpose(1, 2)),
    ]
    for no, to in others:
        want = getattr(t, op)(to).numpy()
        got = getattr(n, op)(no)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(getattr(n, DUNDER[op])(no), want)
        np.testing.assert_array_equal(getattr(n_pc, op)(no), getattr(t_pc, op)(to).numpy())
    # scalars: dequantized float32 against float32(scalar), as torch
    vals = n.dequantize().reshape(-1)
    for s in [0.0, 1, -1, 0.1, float(vals[7]), float(vals[7]) + 1e-9, np.float32(vals[3]),
              np.float64(0.3), True]:
        want = getattr(t, op)(s).numpy()
        np.testing.assert_array_equal(getattr(n, op)(s), want)
        np.testing.assert_array_equal(getattr(n_pc, op)(s), getattr(t_pc, op)(s).numpy())


# ---------------------------------------------------------------------- copy_ / clone / equal
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_copy_from_float_quantizes_with_own_qparams(dt, scheme, axis):
    n, t = build(floats((3, 4, 5)), dt, scheme, axis)
    for name, y in layouts((3, 4, 5), seed=11):
        if name == "float64":
            continue                                        # torch accepts float32 only
        c, tc = n.clone(), t.clone()
        assert c.copy_(y) is c
        tc.copy_(to_torch(y))
        assert_same(c, tc)
    # into a view: the base changes, as in torch
    c, tc = n.clone(), t.clone()
    y = floats((4, 5), 12)
    c[1].copy_(y)
    tc[1].copy_(to_torch(y))
    assert_same(c, tc)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_copy_from_float_into_noncontiguous_view(dt, scheme, axis):
    """torch 2.13 refuses copy_ into a non-contiguous quantized view; numq writes through
    it. Reference: torch's quantization of the new values with the view's qparams,
    placed into torch's int_repr at the view's positions."""
    n, t = build(floats((3, 4, 5)), dt, scheme, axis)
    y = floats((5, 3), 13)
    with pytest.raises(RuntimeError, match="contiguous|strides"):
        t.clone()[:, 2].transpose(0, 1).copy_(to_torch(y))
    c = n.clone()
    v = c[:, 2].transpose(0, 1)
    v.copy_(y)
    want = t.int_repr().numpy().copy()
    if v.qscheme() is numq.per_tensor_affine:
        tq = torch.quantize_per_tensor(to_torch(y), v.q_scale(), v.q_zero_point(), DT[dt][0])
    else:
        tq = torch.quantize_per_channel(
            to_torch(y), torch.from_numpy(v.q_per_channel_scales()),
            torch.from_numpy(v.q_per_channel_zero_points()), v.q_per_channel_axis(), DT[dt][0])
    want[:, 2].T[...] = tq.int_repr().numpy()
    np.testing.assert_array_equal(c.int_repr(), want)
    # a 0-d view (torch accepts this one: a 0-d tensor is contiguous)
    c0, tc0 = n.clone(), t.clone()
    c0[1, 2, 3].copy_(np.float32(0.25))
    tc0[1, 2, 3].copy_(torch.tensor(0.25))
    assert_same(c0, tc0)
    v0 = c0[2, 1, 0]
    v0.copy_(np.array(-0.5))                                # float64 0-d (numq accepts it)
    tc0[2, 1, 0].copy_(torch.tensor(-0.5))
    assert_same(c0, tc0)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_copy_from_qtensor_takes_values_and_qparams(dt, scheme, axis):
    n, t = build(floats((3, 4, 5)), dt, scheme, axis)
    if scheme == "pt":
        tdt, ndt = DT[dt]
        y = floats((3, 4, 5), 14)
        src = numq.quantize_per_tensor(y, 0.031, 1, ndt)
        tsrc = torch.quantize_per_tensor(to_torch(y), 0.031, 1, tdt)
    else:
        s, z = channel_qparams(n.shape[axis], dt, seed=40)
        src = numq.quantize_per_channel(floats((3, 4, 5), 14), s, z, axis, DT[dt][1])
        tsrc = torch.quantize_per_channel(to_torch(floats((3, 4, 5), 14)), torch.from_numpy(s),
                                          torch.from_numpy(z), axis % 3, DT[dt][0])
    c, tc = n.clone(), t.clone()
    assert c.copy_(src) is c
    tc.copy_(tsrc)
    assert_same(c, tc)
    assert c.equal(src) and tc.equal(tsrc)
    if scheme == "pt":
        # broadcast src
        c, tc = n.clone(), t.clone()
        c.copy_(src[:1])
        tc.copy_(tsrc[:1])
        assert_same(c, tc)
        # into a view: the view takes src's qparams, the base keeps its own (torch too)
        c, tc = n.clone(), t.clone()
        v, tv = c[0], tc[0]
        v.copy_(src[2])
        tv.copy_(tsrc[2])
        assert_same(v, tv)
        assert_same(c, tc)


def test_copy_errors_match_torch():
    x = floats((3, 4))
    n8, t8 = build(x, "quint8")
    ns, ts = build(x, "qint8")
    nc, tc = build(x, "quint8", "pc", 1)
    s, _ = channel_qparams(4, "quint8")
    zf = np.linspace(0.5, 3.5, 4).astype(np.float32)
    nf = numq.quantize_per_channel(x, s, zf, 1, numq.quint8)
    tf = torch.quantize_per_channel(to_torch(x), torch.from_numpy(s), torch.from_numpy(zf), 1,
                                    torch.quint8)
    with pytest.raises(RuntimeError):
        t8.clone().copy_(ts)
    with pytest.raises(TypeError, match="src"):
        n8.clone().copy_(ns)
    # (torch 2.13 cannot clone() a float-qparams tensor: copy into the original there)
    with pytest.raises(RuntimeError, match="clone"):
        tf.clone()
    for (a, b), (ta, tb) in [((n8, nc), (t8.clone(), tc)), ((nc, n8), (tc.clone(), t8)),
                             ((nc, nf), (tc.clone(), tf)), ((nf, nc), (tf, tc))]:
        with pytest.raises(RuntimeError, match="same qscheme"):
            ta.copy_(tb)
        with pytest.raises(ValueError, match="qscheme"):
            a.clone().copy_(b)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scheme,axis", SCHEMES, ids=SCHEME_IDS)
def test_clone(dt, scheme, axis):
    n, t = build(floats((3, 4, 5)), dt, scheme, axis)
    c, tc = n.clone(), t.clone()
    assert_same(c, tc)
    assert not np.shares_memory(c._int, n._int)
    c.copy_(np.zeros((3, 4, 5), np.float32))
    assert_same(n, t)                                       # the original is untouched
    if scheme == "pt":
        assert_same(n.transpose(0, 2).clone(), t.transpose(0, 2).clone())
        assert_same(n[:, ::2].clone(), t[:, ::2].clone())


def test_equal():
    x = floats((3, 4))
    n, t = build(x, "quint8")
    cases = [
        (build(x, "quint8"), True),
        (build(floats((3, 4), 1), "quint8"), None),
        ((numq.quantize_per_tensor(x, SCALE * (1 + 1e-12), 3, numq.quint8),
          torch.quantize_per_tensor(to_torch(x), SCALE * (1 + 1e-12), 3, torch.quint8)), False),
        ((numq.quantize_per_tensor(x, SCALE, 4, numq.quint8),
          torch.quantize_per_tensor(to_torch(x), SCALE, 4, torch.quint8)), False),
        (build(x, "qint8"), False),
        ((n[:2], t[:2]), False),
        ((n.transpose(0, 1).contiguous().transpose(0, 1), t.transpose(0, 1).contiguous().transpose(0, 1)), True),
        (build(x, "quint8", "pc", 1), False),
    ]
    for (no, to), expect in cases:
        assert n.equal(no) == t.equal(to)
        if expect is not None:
            assert n.equal(no) is expect
    nc, tc = build(x, "quint8", "pc", 1)
    for (no, to) in [build(x, "quint8", "pc", 1), build(x, "quint8", "pc", 0), (n, t),
                     build(floats((3, 4), 2), "quint8", "pc", 1)]:
        assert nc.equal(no) == tc.equal(to)


# ----------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min(dt, op):
    # few distinct values: many ties, so the index rule (first occurrence) is exercised
    x = np.random.default_rng(15).integers(-3, 4, (3, 4, 5)).astype(np.float32) * 0.25
    n, t = build(x, dt)
    r, tr = getattr(n, op)(), getattr(t, op)()
    assert r.shape == () and isinstance(r, numq.QTensor)
    assert_same(r, tr)
    for nn, tt in [(n, t), (n.transpose(0, 2), t.transpose(0, 2)), (n[:, 1:], t[:, 1:])]:
        for dim in (0, 1, 2, -1):
            for keepdim in (False, True):
                v, i = getattr(nn, op)(dim, keepdim)
                tv, ti = getattr(tt, op)(dim, keepdim)
                assert_same(v, tv)
                assert i.dtype == np.int64
                np.testing.assert_array_equal(i, ti.numpy())
                v2, i2 = getattr(nn, op)(dim=dim, keepdim=keepdim)
                assert v2.equal(v) and np.array_equal(i2, i)
                assert getattr(nn, op)(dim, keepdim).values.equal(v)
                assert np.array_equal(getattr(nn, op)(dim, keepdim).indices, i)
    n0, t0 = n[1, 1, 1], t[1, 1, 1]
    assert_same(getattr(n0, op)(), getattr(t0, op)())
    v, i = getattr(n0, op)(0)
    tv, ti = getattr(t0, op)(0)
    assert_same(v, tv)
    np.testing.assert_array_equal(i, ti.numpy())
    # an empty tensor reduces over a non-empty dim, as torch
    v, i = getattr(n[:0], op)(1)
    tv, ti = getattr(t[:0], op)(1)
    assert_same(v, tv)
    assert i.shape == tuple(ti.shape)


@pytest.mark.parametrize("dt", DTYPES)
def test_mean_small_exact(dt):
    """Reductions over the innermost dims of a contiguous tensor: torch takes the mean of
    the integers, ``rint(f32(sum) / N)``, which numq reproduces bit for bit."""
    x = floats((3, 4, 6), 16)
    n, t = build(x, dt)
    assert_same(n.mean(), t.mean())
    for dim in [2, -1, (1, 2), (2, 1), [1, 2], (0, 1, 2), ()]:
        for keepdim in (False, True):
            assert_same(n.mean(dim, keepdim), t.mean(dim, keepdim))
            assert_same(n.mean(dim=dim, keepdim=keepdim), t.mean(dim=dim, keepdim=keepdim))
    assert_same(n.mean(None, True), t.mean(None, True))
    n0, t0 = n[1, 2, 3], t[1, 2, 3]
    assert_same(n0.mean(), t0.mean())
    assert_same(n0.mean(0), t0.mean(0))
    # exact ties (mean = k + 0.5) round half to even
    q = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [5, 6]], np.float32)
    n, t = (numq.quantize_per_tensor(q, 1.0, 0, DT[dt][1]),
            torch.quantize_per_tensor(to_torch(q), 1.0, 0, DT[dt][0]))
    assert_same(n.mean(1), t.mean(1))
    np.testing.assert_array_equal(n.mean(1).int_repr(), [0, 2, 2, 4, 6])


@pytest.mark.parametrize("dt", DTYPES)
def test_mean_large_tier_b(dt):
    """Tier B (NUMERICS.md). numq takes one position-independent rule, the mean of the
    integers ``rint(f32(f32(sum(q)) / f32(N)))`` with an exact int64 sum: torch's own rule
    for a contiguous tensor reduced over its innermost dims (bit-exact there). For any
    other dim or layout torch computes a float32 mean of the *dequantized* values and
    requantizes it; its summation order (vectorised, layout and thread dependent) then
    decides each exact tie (integer mean k + 0.5), so numq may differ there by 1 LSB,
    and only there. A tie has probability ~1/N for an even reduction size N (none for
    odd N), and torch breaks about half of them the other way: >= 99.9% identical needs
    N >~ 1000 (short reductions, e.g. N = 32 below, stay <= 1 LSB, ties only)."""
    tdt, ndt = DT[dt]
    x = floats((32, 1024, 48), 17, mult=3.0)              # 1.5M values
    n = numq.quantize_per_tensor(x, SCALE, ZP[dt], ndt)
    t = torch.quantize_per_tensor(torch.from_numpy(x), SCALE, ZP[dt], tdt)
    q = n.int_repr().astype(np.int64)
    for dim in [None, (2,), (1, 2), (1,), (0,), (0, 2)]:
        got = (n.mean() if dim is None else n.mean(dim)).int_repr().astype(np.int64)
        want = (t.mean() if dim is None else t.mean(dim)).int_repr().numpy().astype(np.int64)
        diff = np.abs(got - want)
        assert diff.max(initial=0) <= 1, dim
        axes = tuple(range(3)) if dim is None else dim
        N = int(np.prod([q.shape[d] for d in axes]))
        tie = (2 * q.sum(axis=axes)) % (2 * N) == N
        assert not np.any((diff != 0) & ~tie), dim          # differences only at exact ties
        if dim in (None, (2,), (1, 2)):                     # torch's integer path: exact
            np.testing.assert_array_equal(got, want)
        if N >= 1000:
            assert np.mean(diff == 0) >= 0.999, dim
    # a non-contiguous input takes torch's float path even over its innermost dims
    nt, tt = n.transpose(0, 2), t.transpose(0, 2)
    got = nt.mean((1, 2)).int_repr().astype(np.int64)
    want = tt.mean((1, 2)).int_repr().numpy().astype(np.int64)
    assert np.abs(got - want).max() <= 1 and np.mean(got == want) >= 0.999


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("descending", [False, True])
def test_sort(dt, descending):
    x = np.random.default_rng(18).integers(-4, 5, (3, 4, 7)).astype(np.float32) * 0.5
    n, t = build(x, dt)
    for nn, tt in [(n, t), (n.transpose(1, 2), t.transpose(1, 2))]:
        for dim in (0, 1, 2, -1):
            v, i = nn.sort(dim, descending)
            tv, ti = tt.sort(dim=dim, descending=descending, stable=True)
            assert_same(v, tv)
            np.testing.assert_array_equal(i, ti.numpy())
            assert i.dtype == np.int64
            v2, i2 = nn.sort(dim=dim, descending=descending, stable=True)
            assert v2.equal(v) and np.array_equal(i2, i)
            # values: sorted, and the indices gather them
            d = v.dequantize()
            step = np.diff(d, axis=dim)
            assert np.all(step <= 0) if descending else np.all(step >= 0)
            np.testing.assert_array_equal(
                np.take_along_axis(nn.dequantize(), i, axis=dim), d)
    v, i = n.sort()
    tv, ti = t.sort(stable=True)
    assert_same(v, tv)
    np.testing.assert_array_equal(i, ti.numpy())
    n0, t0 = n[0, 0, 0], t[0, 0, 0]
    v, i = n0.sort()
    tv, ti = t0.sort(stable=True)
    assert_same(v, tv)
    np.testing.assert_array_equal(i, ti.numpy())


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dt, largest):
    """Values exact; torch leaves the order of tied indices unspecified, so the indices
    must only point at values equal to the returned ones."""
    x = np.random.default_rng(19).integers(-4, 5, (3, 4, 7)).astype(np.float32) * 0.5
    n, t = build(x, dt)
    for nn, tt in [(n, t), (n.transpose(0, 2), t.transpose(0, 2))]:
        for dim in (0, 1, 2, -1):
            for k in (0, 1, 2, nn.shape[dim]):
                v, i = nn.topk(k, dim, largest)
                tv, ti = tt.topk(k, dim=dim, largest=largest, sorted=True)
                assert_same(v, tv)
                assert i.dtype == np.int64 and i.shape == tuple(ti.shape)
                np.testing.assert_array_equal(
                    np.take_along_axis(nn.int_repr(), i, axis=dim), v.int_repr())
                # distinct indices
                srt = np.sort(i, axis=dim)
                assert np.all(np.diff(srt, axis=dim) > 0)
                v2, i2 = nn.topk(k=k, dim=dim, largest=largest, sorted=True)
                assert v2.equal(v) and np.array_equal(i2, i)
    v, i = n.topk(3)
    assert_same(v, t.topk(3).values)
    n0, t0 = n[0, 0, 0], t[0, 0, 0]
    assert_same(n0.topk(1).values, t0.topk(1).values)


# ---------------------------------------------------------------------------- resize_
@pytest.mark.parametrize("dt", DTYPES)
def test_resize_(dt):
    """Compare the kept prefix only: torch leaves new elements uninitialised (numq: 0)."""
    n, t = build(floats((3, 4, 5)), dt)
    for sizes in [(2, 3), (60,), (5, 12), (4, 4, 5), (7, 11), (0,), (3, 4, 5, 2)]:
        c, tc = n.clone(), t.clone()
        assert c.resize_(*sizes) is c
        tc.resize_(*sizes)
        assert c.shape == tuple(tc.shape)
        k = min(60, c.numel())
        ci, ti = c.int_repr().reshape(-1), tc.int_repr().reshape(-1).numpy()
        np.testing.assert_array_equal(ci[:k], ti[:k])
        np.testing.assert_array_equal(ci[k:], 0)
        assert c.q_scale() == tc.q_scale() and c.q_zero_point() == tc.q_zero_point()
        c2, tc2 = n.clone(), t.clone()
        c2.resize_(list(sizes))
        tc2.resize_(list(sizes))
        assert c2.shape == tuple(tc2.shape)


@pytest.mark.parametrize("dt", DTYPES)
def test_per_tensor_only_methods_raise_for_per_channel(dt):
    n, t = build(floats((3, 4, 5)), dt, "pc", 1)
    calls = {
        "max()": lambda q: q.max(), "min()": lambda q: q.min(1), "mean()": lambda q: q.mean(),
        "sort()": lambda q: q.sort(), "topk()": lambda q: q.topk(2),
        "resize_()": lambda q: q.resize_(2, 3), "as_strided()": lambda q: q.as_strided((2,), (1,)),
        "q_scale()": lambda q: q.q_scale(), "q_zero_point()": lambda q: q.q_zero_point(),
    }
    for name, f in calls.items():
        with pytest.raises(RuntimeError):
            f(t.clone())
        with pytest.raises(ValueError, match=name.replace("(", r"\(").replace(")", r"\)")):
            f(n.clone())
    n, t = build(floats((3, 4, 5)), dt)
    for name in ("q_per_channel_scales", "q_per_channel_zero_points", "q_per_channel_axis"):
        with pytest.raises(RuntimeError):
            getattr(t, name)()
        with pytest.raises(ValueError, match=name):
            getattr(n, name)()


def test_dequantize_functional_and_repr():
    n, t = build(floats((2, 3)), "qint8")
    np.testing.assert_array_equal(numq.dequantize(n), torch.dequantize(t).numpy())
    r = repr(n)
    assert "qint8" in r and "per_tensor_affine" in r and f"scale={SCALE}" in r and "zero_point=-4" in r
    assert "size=(2, 3)" in r
    nc, _ = build(floats((2, 3)), "quint8", "pc", 1)
    assert "per_channel_affine" in repr(nc) and "axis=1" in repr(nc)
