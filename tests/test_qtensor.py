"""QTensor without torch: semantics, numq's deliberate differences, and argument errors.

The torch comparison lives in tests/conformance/test_qtensor_conformance.py. Here:
views share integers with their base, per-channel metadata follows its dimension
through every view (numq's deliberate difference from torch), the mean rule, and every
class of bad input raises the documented error type with the argument's name.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numq
import reference as R

DTYPES = [numq.quint8, numq.qint8, numq.qint32]
ZP = {"quint8": 3, "qint8": -4, "qint32": 7, "quint4x2": 5}
SCALE = 0.0173


def floats(shape, seed=0, mult=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * mult).astype(np.float32)


def per_tensor(shape=(3, 4, 5), dt=numq.quint8, seed=0):
    return numq.quantize_per_tensor(floats(shape, seed), SCALE, ZP[dt.name], dt)


def channel_qparams(C, dt=numq.quint8, seed=1):
    rng = np.random.default_rng(seed + C)
    lo, hi = (0, 12) if dt.qmin == 0 else (-6, 6)
    return rng.uniform(0.01, 0.2, C), rng.integers(lo, hi, C, endpoint=True)


def per_channel(shape=(3, 4, 5), axis=1, dt=numq.quint8, seed=0):
    s, z = channel_qparams(shape[axis], dt)
    return numq.quantize_per_channel(floats(shape, seed), s, z, axis, dt)


def channel_ids(q):
    """Which channel each element of per-channel ``q`` belongs to (an int array)."""
    ax = q.q_per_channel_axis()
    C = q.shape[ax]
    ids = np.arange(C).reshape((1,) * ax + (C,) + (1,) * (q.ndim - ax - 1))
    return np.broadcast_to(ids, q.shape)


def element_scales(q):
    """The scale of every element (per tensor or per channel) as a float64 array."""
    if q.qscheme() is numq.per_tensor_affine:
        return np.full(q.shape, q.q_scale())
    return q.q_per_channel_scales()[channel_ids(q)]


def element_zps(q):
    if q.qscheme() is numq.per_tensor_affine:
        return np.full(q.shape, q.q_zero_point())
    return q.q_per_channel_zero_points()[channel_ids(q)]


def assert_same_elements(view, base_ints, base_scales, base_zps):
    """``view`` holds exactly these elements with these per-element qparams."""
    assert view.shape == base_ints.shape
    np.testing.assert_array_equal(view.int_repr(), base_ints)
    np.testing.assert_array_equal(element_scales(view), base_scales)
    np.testing.assert_array_equal(element_zps(view), base_zps)


def view_check(q, op):
    """``op`` applied to the QTensor and to its integers / per-element qparams agrees."""
    r = op(q)
    assert_same_elements(r, op(q.int_repr()), op(element_scales(q)), op(element_zps(q)))
    return r


# ------------------------------------------------------------------------------ metadata
def test_metadata_and_repr():
    q = per_tensor(dt=numq.qint8)
    assert q.shape == q.size() == (3, 4, 5)
    assert q.size(1) == 4 and q.size(-1) == 5
    assert q.dim() == q.ndim == 3
    assert q.numel() == 60 and len(q) == 3
    assert q.dtype is numq.qint8 and q.qscheme() is numq.per_tensor_affine
    assert q.is_quantized is True and q.is_contiguous()
    assert q.q_scale() == SCALE and q.q_zero_point() == -4
    r = repr(q)
    assert r.startswith("QTensor(") and "numq.qint8" in r and "numq.per_tensor_affine" in r
    assert "scale=0.0173" in r and "zero_point=-4" in r and "size=(3, 4, 5)" in r
    c = per_channel(axis=2)
    rc = repr(c)
    assert "numq.per_channel_affine" in rc and "axis=2" in rc and "scale=[" in rc
    assert c.q_per_channel_axis() == 2
    assert c.q_per_channel_scales().dtype == np.float64
    assert c.q_per_channel_zero_points().dtype == np.int64
    # the qparam getters return copies
    c.q_per_channel_scales()[:] = 9.0
    assert not np.any(c.q_per_channel_scales() == 9.0)
    f = numq.quantize_per_channel(floats((2, 3)), [0.1, 0.2], np.float32([0.5, 1.5]), 0,
                                  numq.quint8)
    assert f.qscheme() is numq.per_channel_affine_float_qparams
    assert f.q_per_channel_zero_points().dtype == np.float32
    assert f.q_per_channel_scales().dtype == np.float32         # as torch stores them
    e = numq.quantize_per_tensor(np.zeros((0, 3), np.float32), 1.0, 0, numq.quint8)
    assert len(e) == 0 and e.numel() == 0 and "size=(0, 3)" in repr(e)
    z = q[0, 0, 0]
    assert z.shape == () and z.dim() == 0 and z.numel() == 1 and z.size() == ()
    with pytest.raises(TypeError, match="0-d"):
        len(z)


def test_cannot_construct_directly():
    with pytest.raises(TypeError, match="quantize_per_tensor"):
        numq.QTensor(np.zeros(3, np.uint8))


# ------------------------------------------------------------------ input layouts
@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: d.name)
def test_input_layouts_quantize_identically(dt):
    base = floats((3, 4, 5), 3)
    ref = numq.quantize_per_tensor(base, SCALE, ZP[dt.name], dt)
    want = R.quantize_per_tensor(base, SCALE, ZP[dt.name], dt.qmin, dt.qmax,
                                 np.int32 if dt is numq.qint32 else dt.storage,
                                 qint32=dt is numq.qint32).reshape(base.shape)
    np.testing.assert_array_equal(ref.int_repr(), want)
    s, z = channel_qparams(4, dt)
    ref_c = numq.quantize_per_channel(base, s, z, 1, dt)
    variants = [np.ascontiguousarray(base[::-1, ::-1])[::-1, ::-1],
                np.asfortranarray(base),
                np.ascontiguousarray(base.transpose(2, 1, 0)).transpose(2, 1, 0),
                base.astype(">f4"), base.astype(np.float64)]
    for x in variants:
        assert ref.equal(numq.quantize_per_tensor(x, SCALE, ZP[dt.name], dt))
        assert ref_c.equal(numq.quantize_per_channel(x, s, z, 1, dt))
    np.testing.assert_array_equal(
        ref.dequantize(), R.dequantize_per_tensor(ref.int_repr(), SCALE, ZP[dt.name]))


def test_empty_tensors():
    for shape in [(0,), (0, 3), (2, 0, 4)]:
        q = numq.quantize_per_tensor(np.zeros(shape, np.float32), 0.5, 1, numq.qint8)
        assert q.shape == shape and q.int_repr().shape == shape
        assert q.dequantize().shape == shape and q.dequantize().dtype == np.float32
        assert q.clone().equal(q) and q.flatten().shape == (0,)
        assert q.sort(-1).values.shape == shape
        assert q.reshape(shape[0], -1).shape == shape[:1] + (int(np.prod(shape[1:])),) \
            if shape[0] and len(shape) > 1 else True
        with pytest.raises(ValueError, match="shape"):
            q.reshape(-1, 0)           # -1 is ambiguous for 0 elements (torch raises too)
    c = numq.quantize_per_channel(np.zeros((2, 0, 4), np.float32), [0.1, 0.2], [0, 1], 0,
                                  numq.quint8)
    assert c.dequantize().shape == (2, 0, 4)
    assert c.transpose(0, 2).shape == (4, 0, 2) and c[1:].q_per_channel_scales().tolist() == [0.2]


# ------------------------------------------------------------------------- int_repr
def test_int_repr_is_a_copy():
    q = per_tensor()
    r = q.int_repr()
    r[...] = 0
    assert q.int_repr().any()
    t = q.transpose(0, 2)
    assert t.int_repr().flags.c_contiguous
    np.testing.assert_array_equal(t.int_repr(), q.int_repr().transpose(2, 1, 0))


@pytest.mark.parametrize("shape", [(4, 6), (3, 5), (1,), (7,), (0,)])
def test_quint4x2_int_repr_packs_low_nibble_first(shape):
    x = floats(shape, 4, mult=1.0)
    q = numq.quantize_per_tensor(x, 0.2, 5, numq.quint4x2)
    vals = R.quantize_per_tensor(x, 0.2, 5, 0, 15, np.uint8).reshape(-1)
    padded = np.concatenate([vals, np.zeros(vals.size % 2, np.uint8)])
    want = (padded[0::2] | (padded[1::2] << 4)).astype(np.uint8)
    packed = q.int_repr()
    assert packed.dtype == np.uint8 and packed.shape == ((q.numel() + 1) // 2,)
    np.testing.assert_array_equal(packed, want)
    if len(shape) == 2:
        t = q.transpose(0, 1)        # packs in logical (row-major) order of the view
        tv = vals.reshape(shape).T.reshape(-1)
        tv = np.concatenate([tv, np.zeros(tv.size % 2, np.uint8)])
        np.testing.assert_array_equal(t.int_repr(), tv[0::2] | (tv[1::2] << 4))
        np.testing.assert_array_equal(q[1].dequantize(), q.dequantize()[1])


# ----------------------------------------------------- views: values, qparams, sharing
PT_VIEWS = {
    "reshape": lambda q: q.reshape(6, 10),
    "view": lambda q: q.view(3, 20),
    "flatten": lambda q: q.flatten(1),
    "transpose": lambda q: q.transpose(0, 2),
    "permute": lambda q: q.permute(1, 2, 0),
    "select": lambda q: q.select(1, 2),
    "slice_step": lambda q: q[:, ::2, 1:],
    "negative_index": lambda q: q[-1, :, -2],
    "ellipsis_none": lambda q: q[None, ..., 1],
    "int_scalar": lambda q: q[1, 2, 3],
    "expand": lambda q: q[:, :1].expand(2, 3, 6, 5),
    "as_strided": lambda q: q.as_strided((4, 3), (5, 7), 2),
}


@pytest.mark.parametrize("name", PT_VIEWS)
def test_per_tensor_views_share_the_integers(name):
    """A write through the view (copy_) shows in the base, as in torch."""
    q = per_tensor()
    op = PT_VIEWS[name]
    v = view_check(q, lambda a: op(a) if isinstance(a, numq.QTensor) else _np_op(name, a))
    if name == "expand":
        return                              # broadcast views are read-only
    before = q.int_repr()
    v.copy_(np.full(v.shape, 1.0, np.float32))
    after = q.int_repr()
    changed = after != before
    assert changed.any()
    assert np.all(op(q).int_repr() == v.int_repr())
    assert changed.sum() <= v.numel()


def _np_op(name, a):
    """PT_VIEWS on plain arrays (for the per-element expectations)."""
    if name == "as_strided":
        return np.lib.stride_tricks.as_strided(np.ascontiguousarray(a).reshape(-1)[2:],
                                               (4, 3), (5 * a.itemsize, 7 * a.itemsize))
    if name == "expand":
        return np.broadcast_to(a[:, :1], (2, 3, 6, 5))
    if name == "view":
        return a.reshape(3, 20)
    if name == "flatten":
        return a.reshape(3, 20)
    if name == "select":
        return a[:, 2]
    if name == "permute":
        return a.transpose(1, 2, 0)
    if name == "transpose":
        return a.transpose(2, 1, 0)
    return PT_VIEWS[name](a)


def test_int_index_gives_a_0d_view():
    q = per_tensor()
    z = q[1, 2, 3]
    z.copy_(np.float32(0.5))
    assert q.int_repr()[1, 2, 3] == z.int_repr() == round(0.5 / SCALE) + 3
    c = per_channel(axis=0)
    c[2, 1, 1].copy_(np.float32(0.0))
    assert c.int_repr()[2, 1, 1] == c.q_per_channel_zero_points()[2]


def test_as_strided_reaches_the_whole_storage():
    q = numq.quantize_per_tensor(np.arange(12, dtype=np.float32), 1.0, 0, numq.quint8)
    np.testing.assert_array_equal(q.as_strided((2,), (1,), 2).as_strided((3,), (2,)).int_repr(),
                                  [2, 4, 6])
    np.testing.assert_array_equal(q[3:].as_strided((3,), (2,)).int_repr(), [3, 5, 7])
    np.testing.assert_array_equal(q[3:].as_strided((3,), (2,), 0).int_repr(), [0, 2, 4])
    m = q.view(3, 4).transpose(0, 1)[1]                       # elements 1, 5, 9
    np.testing.assert_array_equal(m.as_strided((2,), (3,)).int_repr(), [1, 4])
    np.testing.assert_array_equal(q.as_strided((), ()).int_repr(), 0)
    assert q.as_strided((2, 0), (1, 1)).shape == (2, 0)
    v = q.as_strided((2, 2), (6, 1), 1)
    v.copy_(np.float32([[20, 21], [22, 23]]))
    np.testing.assert_array_equal(q.int_repr(), [0, 20, 21, 3, 4, 5, 6, 22, 23, 9, 10, 11])


def test_view_raises_when_a_copy_is_needed():
    q = per_tensor()
    t = q.transpose(0, 1)
    with pytest.raises(ValueError, match="reshape"):
        t.view(60)
    with pytest.raises(ValueError, match="reshape"):
        q[:, ::2].view(-1)
    assert t.reshape(60).equal(q.transpose(0, 1).contiguous().view(60))
    assert t.view(4, 3, 5, 1).shape == (4, 3, 5, 1)           # strides allow it


def test_contiguous_and_clone():
    q = per_tensor()
    assert q.contiguous() is q
    t = q.transpose(0, 2)
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.equal(t) and not np.shares_memory(c._int, q._int)
    k = q.clone()
    assert k.equal(q) and k is not q and not np.shares_memory(k._int, q._int)
    pc = per_channel(axis=1)
    kc = pc.clone()
    assert kc.equal(pc)
    kc.copy_(per_channel(axis=1, seed=5).dequantize())
    assert pc.equal(per_channel(axis=1))


# ------------------------------------------------- per channel: numq's deliberate differences
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("shape", [(3, 4, 5, 1), (1, 3, 4, 5), (3, 4, 5), (3, 1, 4, 5)])
def test_per_channel_reshape_keeps_its_axis(axis, shape):
    """torch keeps the axis *index* (wrong once the channel dim moves); numq follows the
    dimension, and refuses a shape that splits or merges it."""
    q = per_channel(axis=axis)
    r = view_check(q, lambda a: a.reshape(shape))
    assert r.shape[r.q_per_channel_axis()] == q.shape[axis]
    np.testing.assert_array_equal(r.q_per_channel_scales(), q.q_per_channel_scales())
    assert view_check(q, lambda a: a.reshape(shape)).equal(q.view(shape))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_reshape_that_splits_or_merges_the_axis_raises(axis):
    q = per_channel(axis=axis)
    good = {0: [(3, 20), (3, 2, 10)], 1: [(3, 4, 5)], 2: [(12, 5), (2, 6, 5)]}[axis]
    bad = {0: [(60,), (6, 10), (1, 6, 10)], 1: [(12, 5), (3, 20), (60,), (3, 2, 2, 5)],
           2: [(3, 20), (60,), (6, 10)]}[axis]
    for s in good:
        view_check(q, lambda a: a.reshape(s))
    for s in bad:
        with pytest.raises(ValueError, match="channel axis"):
            q.reshape(s)
        with pytest.raises(ValueError, match="channel axis"):
            q.view(s)
    if axis == 1:
        with pytest.raises(ValueError, match="channel axis"):
            q.flatten()
    else:
        assert q.flatten(*((1, 2) if axis == 0 else (0, 1))).ndim == 2


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_transpose_permute_contiguous(axis):
    """torch refuses; numq moves the channel axis with its dimension."""
    q = per_channel(axis=axis)
    for dims in [(2, 0, 1), (1, 0, 2), (0, 2, 1), (2, 1, 0)]:
        p = view_check(q, lambda a: a.transpose(dims) if isinstance(a, np.ndarray) else a.permute(dims))
        assert p.q_per_channel_axis() == dims.index(axis)
        c = p.contiguous()
        assert c.is_contiguous() and c.equal(p)
        np.testing.assert_array_equal(c.dequantize(), q.dequantize().transpose(dims))
    t = view_check(q, lambda a: a.swapaxes(0, 2) if isinstance(a, np.ndarray) else a.transpose(0, 2))
    np.testing.assert_array_equal(t.dequantize(), q.dequantize().swapaxes(0, 2))
    np.testing.assert_array_equal(t.transpose(0, 2).int_repr(), q.int_repr())


def test_per_channel_expand():
    q = per_channel((3, 1, 5), axis=2)
    e = view_check(q, lambda a: np.broadcast_to(a, (2, 3, 4, 5)) if isinstance(a, np.ndarray)
                   else a.expand(2, 3, 4, 5))
    assert e.q_per_channel_axis() == 3
    with pytest.raises(ValueError, match="channel axis"):
        per_channel((3, 1, 1), axis=1).expand(3, 4, 1)


BASIC_KEYS = [1, -1, (1, 2), (-1, -2, -3), slice(None, None, 2), slice(1, None),
              (slice(None), slice(1, 4, 2)), (Ellipsis, 1), (Ellipsis, slice(1, 3)),
              (1, Ellipsis), (None, 1), (slice(None), None, 2), (0, None, Ellipsis, None, 2),
              (slice(-2, None), -1), (slice(None), slice(3, 1)), (Ellipsis,), (None,), ()]
ADVANCED_KEYS = [[0, 2], np.array([2, 0, 0]), (slice(None), [1, 3]), (Ellipsis, np.array([4, 0])),
                 np.array([True, False, True]), (slice(None), np.array([True, False, True, True])),
                 (slice(None), [2]), (1, [0, 0, 3]), (np.array([0, 2]), slice(None), np.array([1, 4])),
                 np.arange(60).reshape(3, 4, 5) % 7 == 0]


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("key", BASIC_KEYS + ADVANCED_KEYS, ids=repr)
def test_per_channel_indexing(axis, key):
    """Every element keeps its own channel's scale and zero point; one channel gives a
    per-tensor result. Advanced indexing (torch refuses) works when the channels vary
    along one result dim."""
    q = per_channel(axis=axis)
    ints, sc, zp = q.int_repr()[key], element_scales(q)[key], element_zps(q)[key]
    ch = channel_ids(q)[key]
    try:
        r = q[key]
    except IndexError as e:
        assert "several dimensions" in str(e)
        varying = [d for d in range(ch.ndim) if np.unique(ch, axis=d).shape[d] > 1]
        assert len(varying) > 1
        return
    assert_same_elements(r, ints, sc, zp)
    if r.qscheme() is numq.per_tensor_affine:
        assert np.unique(ch).size <= 1
        assert type(r.q_scale()) is float and r.q_scale() == q.q_per_channel_scales()[ch.flat[0]]
    else:
        assert r.qscheme() is numq.per_channel_affine


def test_per_channel_mixed_advanced_index_raises():
    q = per_channel(axis=1)
    with pytest.raises(IndexError, match="several dimensions"):
        q[:, [[0, 1], [2, 3]]]
    with pytest.raises(IndexError, match="empty"):
        q[:, np.zeros(4, bool)]
    assert q[:, 0:0].shape == (3, 0, 5)                      # a basic empty slice is fine


@given(st.data())
@settings(max_examples=150, derandomize=True, deadline=None)
def test_per_channel_basic_indexing_property(data):
    """Random basic keys (ints, stepped / negative slices, None, Ellipsis) on every axis."""
    axis = data.draw(st.integers(0, 2))
    q = per_channel(axis=axis)
    key = []
    for n in q.shape:
        kind = data.draw(st.sampled_from(["int", "slice", "none", "full"]))
        if kind == "int":
            key.append(data.draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            key.append(slice(data.draw(st.none() | st.integers(-n - 1, n + 1)),
                             data.draw(st.none() | st.integers(-n - 1, n + 1)),
                             data.draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
        elif kind == "none":
            key.append(None)
            key.append(slice(None))
        else:
            key.append(slice(None))
    cut = data.draw(st.integers(0, len(key)))
    if data.draw(st.booleans()):
        key = key[:cut] + [Ellipsis] + [k for k in key[cut:] if k is None][:1]
    key = tuple(key)
    want_ints = q.int_repr()[key]
    r = q[key]
    assert_same_elements(r, want_ints, element_scales(q)[key], element_zps(q)[key])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_select_per_channel(axis):
    q = per_channel(axis=axis)
    for dim in range(3):
        for i in (0, -1):
            r = view_check(q, lambda a: a.select(dim, i) if isinstance(a, numq.QTensor)
                           else np.take(a, i, axis=dim))
            if dim == axis:
                assert r.qscheme() is numq.per_tensor_affine
                assert r.q_scale() == q.q_per_channel_scales()[i]    # double, as torch
            else:
                assert r.q_per_channel_axis() == (axis if dim > axis else axis - 1)


def test_float_qparams_channels():
    x = floats((3, 4), 6, mult=1.0)
    zf = np.float32([0.5, 1.5, 2.25, 3.0])
    f = numq.quantize_per_channel(x, [0.1, 0.2, 0.05, 0.3], zf, 1, numq.quint8)
    s = f[:, 1:3]
    assert s.qscheme() is numq.per_channel_affine_float_qparams
    np.testing.assert_array_equal(s.q_per_channel_zero_points(), zf[1:3])
    np.testing.assert_array_equal(s.dequantize(), f.dequantize()[:, 1:3])
    np.testing.assert_array_equal(f.transpose(0, 1).dequantize(), f.dequantize().T)
    with pytest.raises(IndexError, match="float"):
        f[:, 1]                    # a float zero point has no per-tensor equivalent
    with pytest.raises(IndexError, match="float"):
        f.select(1, 0)


# ------------------------------------------------------------------------------ copy_
@pytest.mark.parametrize("dt", DTYPES + [numq.quint4x2], ids=lambda d: d.name)
def test_copy_from_float_uses_own_qparams(dt):
    q = per_tensor(dt=dt) if dt is not numq.quint4x2 else \
        numq.quantize_per_tensor(floats((3, 4, 5)), 0.2, 5, dt)
    y = floats((3, 4, 5), 9)
    want = numq.quantize_per_tensor(y, q.q_scale(), q.q_zero_point(), dt)
    for src in (y, y.astype(">f4"), y.astype(np.float64), y.astype(np.float16).astype(np.float32),
                np.ascontiguousarray(y[::-1])[::-1], list(y.tolist())):
        c = q.clone()
        assert c.copy_(src) is c
        exp = numq.quantize_per_tensor(np.asarray(src, np.float64).astype(np.float32),
                                       q.q_scale(), q.q_zero_point(), dt)
        assert c.equal(exp)
    c = q.clone()
    c.copy_(y[:1])                                          # broadcast
    assert c.equal(numq.quantize_per_tensor(np.broadcast_to(y[:1], y.shape), q.q_scale(),
                                            q.q_zero_point(), dt))
    assert q.clone().copy_(y).equal(want)
    pc = per_channel(axis=2, dt=dt) if dt is not numq.quint4x2 else None
    if pc is not None:
        c = pc.clone().copy_(y)
        assert c.equal(numq.quantize_per_channel(y, pc.q_per_channel_scales(),
                                                 pc.q_per_channel_zero_points(), 2, dt))


def test_copy_from_qtensor_takes_values_and_qparams():
    q = per_tensor()
    src = numq.quantize_per_tensor(floats((3, 4, 5), 9), 0.031, 1, numq.quint8)
    c = q.clone().copy_(src)
    assert c.equal(src) and c.q_scale() == 0.031 and c.q_zero_point() == 1
    pc = per_channel(axis=1)
    s, z = channel_qparams(4, seed=40)
    psrc = numq.quantize_per_channel(floats((3, 4, 5), 9), s.copy(), z, 1, numq.quint8)
    c = pc.clone().copy_(psrc)
    assert c.equal(psrc)
    # qparams are copied, not shared
    psrc._scales[:] = 1.0
    np.testing.assert_array_equal(c.q_per_channel_scales(), s)
    # into a view: the view takes src's qparams, the base keeps its own (as torch)
    base = q.clone()
    v = base[0]
    v.copy_(src[2])
    assert v.q_scale() == 0.031 and base.q_scale() == SCALE
    np.testing.assert_array_equal(base.int_repr()[0], src.int_repr()[2])


def test_copy_errors_name_src():
    q = per_tensor()
    with pytest.raises(TypeError, match="src"):
        q.clone().copy_(per_tensor(dt=numq.qint8))
    with pytest.raises(TypeError, match="src"):
        q.clone().copy_(np.ones((3, 4, 5), np.int32))
    with pytest.raises(TypeError, match="src"):
        q.clone().copy_("abc")
    with pytest.raises(ValueError, match="src"):
        q.clone().copy_(np.ones((2, 4, 5), np.float32))
    pc = per_channel(axis=1)
    zf = numq.quantize_per_channel(floats((3, 4, 5)), [0.1] * 4, np.float32([0.5] * 4), 1,
                                   numq.quint8)
    for a, b in [(q, pc), (pc, q), (pc, zf), (zf, pc)]:
        with pytest.raises(ValueError, match="src must have the same qscheme"):
            a.clone().copy_(b)
    with pytest.raises(ValueError, match="read-only"):
        q[:, :1].expand(3, 4, 5).copy_(floats((3, 4, 5)))


# -------------------------------------------------------------------------- comparisons
def test_comparisons_are_on_dequantized_values():
    x = np.round(floats((3, 4), 2), 1)
    a = numq.quantize_per_tensor(x, 0.1, 0, numq.qint8)
    b = numq.quantize_per_tensor(x, 0.05, 3, numq.quint8)     # other dtype and qparams
    da, db = a.dequantize(), b.dequantize()
    for op, f in [("eq", np.equal), ("ne", np.not_equal), ("ge", np.greater_equal),
                  ("le", np.less_equal), ("gt", np.greater), ("lt", np.less)]:
        np.testing.assert_array_equal(getattr(a, op)(b), f(da, db))
        np.testing.assert_array_equal(getattr(a, op)(0.1), f(da, np.float32(0.1)))
        np.testing.assert_array_equal(getattr(a, op)(b[:1]), f(da, db[:1]))
        assert getattr(a, op)(b).dtype == np.bool_
    np.testing.assert_array_equal(a == b, da == db)
    np.testing.assert_array_equal(a != 0.0, da != 0)
    np.testing.assert_array_equal(a < b, da < db)
    np.testing.assert_array_equal(x == a, da == x)            # ndarray defers to QTensor
    assert hash(a) != hash(b)


@pytest.mark.parametrize("other", ["abc", None, object(), {1: 2}])
def test_comparison_with_wrong_type_names_other(other):
    q = per_tensor()
    for op in ("eq", "ne", "ge", "le", "gt", "lt"):
        with pytest.raises(TypeError, match="other"):
            getattr(q, op)(other)


def test_equal():
    q = per_tensor()
    assert q.equal(q.clone()) and q.equal(q.transpose(0, 1).contiguous().transpose(0, 1))
    assert not q.equal(q[:2])
    assert not q.equal(numq.quantize_per_tensor(floats((3, 4, 5)), SCALE, 4, numq.quint8))
    assert not q.equal(numq.quantize_per_tensor(floats((3, 4, 5)), SCALE * (1 + 1e-12), 3,
                                                numq.quint8))
    assert not q.equal(per_tensor(dt=numq.qint8))
    assert not q.equal(per_channel())
    assert per_channel().equal(per_channel()) and not per_channel().equal(per_channel(axis=0))
    with pytest.raises(TypeError, match="other"):
        q.equal(q.dequantize())


# -------------------------------------------------------------------------- reductions
def test_max_min():
    x = np.random.default_rng(5).integers(-3, 4, (3, 4, 5)).astype(np.float32)
    q = numq.quantize_per_tensor(x, 1.0, 0, numq.qint8)
    m = q.max()
    assert isinstance(m, numq.QTensor) and m.shape == () and m.q_scale() == 1.0
    assert int(m.int_repr()) == x.max() and int(q.min().int_repr()) == x.min()
    for dim in (0, 1, 2, -1):
        for keep in (False, True):
            v, i = q.max(dim, keep)
            np.testing.assert_array_equal(i, np.argmax(x, axis=dim, keepdims=keep))
            np.testing.assert_array_equal(v.int_repr(), np.max(x, axis=dim, keepdims=keep))
            v, i = q.min(dim=dim, keepdim=keep)
            np.testing.assert_array_equal(i, np.argmin(x, axis=dim, keepdims=keep))
            r = q.min(dim, keep)
            assert r.values.equal(v) and np.array_equal(r.indices, i)
    v, i = q[1, 1, 1].max(0)
    assert v.shape == () and i.shape == () and i == 0
    v, i = q[:0].max(1)                                   # empty, non-empty dim
    assert v.shape == (0, 5) and i.shape == (0, 5)
    with pytest.raises(ValueError, match="empty"):
        q[:0].max()
    with pytest.raises(ValueError, match="dim 0"):
        q[:0].min(0)


def test_mean_integer_rule():
    """Same qparams in and out: the mean of the integers, half to even (torch's rule)."""
    q = numq._make_per_tensor_quantized_tensor(
        np.array([[0, 1], [1, 2], [2, 3], [3, 4], [5, 6], [0, 0]], np.uint8), 0.5, 7)
    np.testing.assert_array_equal(q.mean(1).int_repr(), [0, 2, 2, 4, 6, 0])
    assert q.mean(1).q_scale() == 0.5 and q.mean(1).q_zero_point() == 7
    assert q.mean().shape == () and int(q.mean().int_repr()) == round(27 / 12)
    assert q.mean(1, keepdim=True).shape == (6, 1)
    assert q.mean((0, 1)).equal(q.mean()) and q.mean(()).equal(q.mean())
    assert q.mean([-1, 0]).equal(q.mean())
    assert q.mean(None, True).shape == (1, 1)
    assert q[2, 1].mean().equal(q[2, 1]) and q[2, 1].mean(0).equal(q[2, 1])
    # large qint32 values: exact int64 sum, then torch's float32 division (f32(8 * (2**31 -
    # 100)) = 2**34 - 1024); a mean that rounds up to 2**31 is clamped (torch's innermost-dim
    # path wraps it to -2**31, its other path clamps)
    big = numq._make_per_tensor_quantized_tensor(np.full((2, 8), 2**31 - 100, np.int32), 1.0, 0)
    assert big.mean(1).int_repr().dtype == np.int32
    np.testing.assert_array_equal(big.mean(1).int_repr(), 2**31 - 128)
    top = numq._make_per_tensor_quantized_tensor(np.full((2, 8), 2**31 - 1, np.int32), 1.0, 0)
    np.testing.assert_array_equal(top.mean(1).int_repr(), 2**31 - 1)
    neg = numq._make_per_tensor_quantized_tensor(np.array([[-3, -4], [-5, -6]], np.int8), 1.0, 0)
    np.testing.assert_array_equal(neg.mean(1).int_repr(), [-4, -6])
    # an empty mean is NaN, quantized as NaN is
    e = numq.quantize_per_tensor(np.zeros((0, 3), np.float32), 0.5, 2, numq.quint8)
    np.testing.assert_array_equal(e.mean(0).int_repr(), [255, 255, 255])
    assert e.mean(1).shape == (0,)


def test_mean_matches_float_mean_away_from_ties():
    """The integer rule equals the float mean of the dequantized values, requantized,
    except at exact ties (odd N has none)."""
    x = floats((5, 7, 9), 8)
    q = numq.quantize_per_tensor(x, SCALE, 3, numq.quint8)
    for dim in (0, 1, 2, (0, 2)):
        m = q.mean(dim)
        f = q.dequantize().astype(np.float64).mean(axis=dim).astype(np.float32)
        ref = numq.quantize_per_tensor(f, SCALE, 3, numq.quint8)
        np.testing.assert_array_equal(m.int_repr(), ref.int_repr())


@pytest.mark.parametrize("descending", [False, True])
def test_sort(descending):
    x = np.random.default_rng(6).integers(-4, 5, (3, 4, 7)).astype(np.float32)
    q = numq.quantize_per_tensor(x, 0.5, 0, numq.qint8)
    for dim in (0, 1, 2, -1):
        v, i = q.sort(dim, descending)
        key = -q.int_repr().astype(np.int64) if descending else q.int_repr()
        np.testing.assert_array_equal(i, np.argsort(key, axis=dim, kind="stable"))
        np.testing.assert_array_equal(
            v.int_repr(), np.take_along_axis(q.int_repr(), i, axis=dim))
        assert v.q_scale() == 0.5 and i.dtype == np.int64
    v, i = q[0, 0, 0].sort()
    assert v.shape == () and i.shape == () and i == 0


def test_topk():
    x = np.random.default_rng(7).integers(-4, 5, (3, 4, 7)).astype(np.float32)
    q = numq.quantize_per_tensor(x, 0.5, 0, numq.qint8)
    for dim in (0, 1, 2, -1):
        for largest in (True, False):
            for k in (0, 1, 3):
                v, i = q.topk(k, dim, largest)
                s = np.sort(x, axis=dim)
                s = np.flip(s, axis=dim) if largest else s
                np.testing.assert_array_equal(v.dequantize() * 2, s.take(range(k), axis=dim) * 2)
                np.testing.assert_array_equal(np.take_along_axis(q.int_repr(), i, axis=dim),
                                              v.int_repr())
    v, i = q[0, 0, 0].topk(1)
    assert v.shape == () and i.shape == ()
    assert q[0, 0, 0].topk(0).values.numel() == 0


def test_resize_():
    q = numq.quantize_per_tensor(np.arange(12, dtype=np.float32), 1.0, 0, numq.quint8)
    r = q.clone()
    assert r.resize_(2, 3) is r and r.shape == (2, 3)
    np.testing.assert_array_equal(r.int_repr(), [[0, 1, 2], [3, 4, 5]])
    r.resize_([4, 4])
    np.testing.assert_array_equal(r.int_repr().reshape(-1), list(range(6)) + [0] * 10)
    r.resize_((0,))
    assert r.shape == (0,) and r.numel() == 0
    assert r.q_scale() == 1.0
    t = q.clone().view(3, 4).transpose(0, 1).resize_(12)     # logical order (torch: storage)
    np.testing.assert_array_equal(t.int_repr(), np.arange(12).reshape(3, 4).T.reshape(-1))


# ------------------------------------------------------------------------------ errors
def _raises(exc, name, fn):
    with pytest.raises(exc) as info:
        fn()
    assert name in str(info.value), f"{name!r} not in {str(info.value)!r}"


BAD_DIM = [
    ("dim", lambda q: q.size(3)), ("dim", lambda q: q.select(3, 0)), ("dim", lambda q: q.select(-4, 0)),
    ("dim0", lambda q: q.transpose(3, 0)), ("dim1", lambda q: q.transpose(0, -4)),
    ("dims", lambda q: q.permute(0, 1, 3)), ("dims", lambda q: q.permute(0, 0, 1)),
    ("dims", lambda q: q.permute(0, 1)), ("start_dim", lambda q: q.flatten(3)),
    ("end_dim", lambda q: q.flatten(0, 5)), ("start_dim", lambda q: q.flatten(2, 1)),
    ("dim", lambda q: q.max(3)), ("dim", lambda q: q.min(-4, True)), ("dim", lambda q: q.mean(3)),
    ("dim", lambda q: q.mean((0, 0))), ("dim", lambda q: q.mean((1, -2))),
    ("dim", lambda q: q.sort(3)), ("dim", lambda q: q.topk(1, 3)),
]


@pytest.mark.parametrize("name,fn", BAD_DIM, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_DIM)])
def test_bad_dim_raises_value_error_naming_it(name, fn):
    _raises(ValueError, name, lambda: fn(per_tensor()))


@pytest.mark.parametrize("fn", [lambda q: q.size(1.0), lambda q: q.select(1.5, 0),
                                lambda q: q.max(dim="0"), lambda q: q.mean(dim=0.0),
                                lambda q: q.transpose(0, None), lambda q: q.sort(True)])
def test_non_int_dim_raises_type_error(fn):
    with pytest.raises(TypeError, match="dim"):
        fn(per_tensor())


def test_bad_index():
    q = per_tensor()
    _raises(IndexError, "index", lambda: q.select(0, 3))
    _raises(IndexError, "index", lambda: q.select(1, -5))
    _raises(TypeError, "index", lambda: q.select(0, 1.0))
    _raises(IndexError, "index", lambda: q[5])
    _raises(IndexError, "index", lambda: per_channel()[:, 7])


BAD_SIZES = [
    (ValueError, "shape", lambda q: q.reshape(7)), (ValueError, "shape", lambda q: q.view(2, -1, -1)),
    (ValueError, "shape", lambda q: q.reshape(-3, 20)), (TypeError, "shape", lambda q: q.reshape(3.0, 20)),
    (TypeError, "shape", lambda q: q.view("60")), (TypeError, "shape", lambda q: q.reshape((3, True, 20))),
    (ValueError, "expand", lambda q: q.expand(3, 5, 5)), (ValueError, "sizes", lambda q: q.expand(4, 5)),
    (TypeError, "size", lambda q: q.expand(3, 4.0, 5)), (ValueError, "expand", lambda q: q.expand(-1, 3, 4, 5)),
    (ValueError, "sizes", lambda q: q.resize_(-1, 2)), (TypeError, "size", lambda q: q.resize_(2.0)),
    (ValueError, "size and stride", lambda q: q.as_strided((2, 2), (1,))),
    (ValueError, "stride", lambda q: q.as_strided((2,), (-1,))),
    (ValueError, "storage_offset", lambda q: q.as_strided((2,), (1,), -1)),
    (TypeError, "storage_offset", lambda q: q.as_strided((2,), (1,), 1.0)),
    (ValueError, "storage", lambda q: q.as_strided((2, 31), (30, 1))),
    (TypeError, "stride", lambda q: q.as_strided((2,), (0.5,))),
    (ValueError, "k", lambda q: q.topk(6)), (ValueError, "k", lambda q: q.topk(-1)),
    (TypeError, "k", lambda q: q.topk(2.0)),
]


@pytest.mark.parametrize("exc,name,fn", BAD_SIZES,
                         ids=[f"{n}-{i}" for i, (_, n, _) in enumerate(BAD_SIZES)])
def test_bad_sizes_raise_naming_the_argument(exc, name, fn):
    _raises(exc, name, lambda: fn(per_tensor()))


PER_TENSOR_ONLY = {"max()": lambda q: q.max(), "min()": lambda q: q.min(0),
                   "mean()": lambda q: q.mean(), "sort()": lambda q: q.sort(),
                   "topk()": lambda q: q.topk(1), "resize_()": lambda q: q.resize_(2),
                   "as_strided()": lambda q: q.as_strided((1,), (1,)),
                   "q_scale()": lambda q: q.q_scale(), "q_zero_point()": lambda q: q.q_zero_point()}
PER_CHANNEL_ONLY = {"q_per_channel_scales()": lambda q: q.q_per_channel_scales(),
                    "q_per_channel_zero_points()": lambda q: q.q_per_channel_zero_points(),
                    "q_per_channel_axis()": lambda q: q.q_per_channel_axis()}


@pytest.mark.parametrize("name", PER_TENSOR_ONLY)
def test_per_tensor_only_methods(name):
    for q in (per_channel(axis=0), numq.quantize_per_channel(
            floats((2, 3)), [0.1, 0.2], np.float32([0.5, 1.0]), 0, numq.quint8)):
        _raises(ValueError, name, lambda: PER_TENSOR_ONLY[name](q))
        _raises(ValueError, "per-tensor", lambda: PER_TENSOR_ONLY[name](q))


@pytest.mark.parametrize("name", PER_CHANNEL_ONLY)
def test_per_channel_only_methods(name):
    _raises(ValueError, name, lambda: PER_CHANNEL_ONLY[name](per_tensor()))
    _raises(ValueError, "per-channel", lambda: PER_CHANNEL_ONLY[name](per_tensor()))
