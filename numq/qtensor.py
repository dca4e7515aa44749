"""``QTensor``: integer values plus quantization parameters (torch's quantized Tensor).

A QTensor holds a NumPy array of integers (``int_repr``) and either one (scale,
zero_point) pair (per tensor) or one pair per slice along ``axis`` (per channel).
Views (indexing, reshape, transpose ...) share the integer array, as in torch.

Where torch corrupts per-channel metadata (``view`` / ``reshape`` / ``flatten`` keep
the old axis index even when the channel dimension moved or merged) numq tracks the
channel axis, and refuses a reshape that splits or merges it. ``transpose`` /
``permute`` / ``expand`` / ``contiguous`` work on per-channel tensors in numq (torch
refuses them). ``quint4x2`` values are held unpacked, one per byte; ``int_repr()``
returns torch's packed layout (two values per byte, low nibble first).
"""
import collections
import numbers

import numpy as np

from . import _validate as V
from .dtypes import (qint32, quint4x2, per_channel_affine,
                     per_channel_affine_float_qparams, per_tensor_affine)
from .kernels import quantize as K

__all__ = ["QTensor", "ValuesIndices"]

ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])


def _sizes(args, name="size"):
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` as torch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{name} must be a sequence of ints; got {a!r}")
        out.append(int(a))
    return tuple(out)


class QTensor:
    """A quantized tensor. Build it with :func:`numq.quantize_per_tensor` and friends."""

    __array_priority__ = 1000  # make ``ndarray == qtensor`` defer to QTensor.__eq__

    def __init__(self, *args, **kwargs):
        raise TypeError("use numq.quantize_per_tensor / quantize_per_channel or "
                        "numq._make_per_tensor_quantized_tensor to build a QTensor")

    @classmethod
    def _from_parts(cls, ints, dtype, *, scale=None, zero_point=None, scales=None,
                    zero_points=None, axis=None):
        self = object.__new__(cls)
        self._int = ints
        self._dtype = dtype
        self._scale = None if scale is None else float(scale)
        self._zp = None if zero_point is None else int(zero_point)
        self._scales = scales
        self._zps = zero_points
        self._axis = axis
        return self

    def _like(self, ints, axis=None, scales=None, zero_points=None):
        """A QTensor with new integer values and the same (or re-indexed) qparams."""
        if self._axis is None:
            return QTensor._from_parts(ints, self._dtype, scale=self._scale, zero_point=self._zp)
        return QTensor._from_parts(
            ints, self._dtype, axis=self._axis if axis is None else axis,
            scales=self._scales if scales is None else scales,
            zero_points=self._zps if zero_points is None else zero_points)

    def _per_tensor_only(self, what):
        if self._axis is not None:
            raise ValueError(f"{what} works on per-tensor quantized tensors only "
                             f"(this one is {self.qscheme()!r}), as in torch")

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self):
        return self._int.shape

    @property
    def ndim(self):
        return self._int.ndim

    @property
    def dtype(self):
        return self._dtype

    @property
    def is_quantized(self):
        return True

    def size(self, dim=None):
        """Shape, or the length of dimension ``dim``."""
        if dim is None:
            return self._int.shape
        return self._int.shape[V.axis_index(dim, self.ndim, "dim")]

    def dim(self):
        return self._int.ndim

    def numel(self):
        return int(self._int.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._int.shape[0]

    def qscheme(self):
        """``per_tensor_affine``, ``per_channel_affine`` or ``per_channel_affine_float_qparams``."""
        if self._axis is None:
            return per_tensor_affine
        if self._zps.dtype.kind == "f":
            return per_channel_affine_float_qparams
        return per_channel_affine

    def q_scale(self):
        self._per_tensor_only("q_scale()")
        return self._scale

    def q_zero_point(self):
        self._per_tensor_only("q_zero_point()")
        return self._zp

    def _per_channel_only(self, what):
        if self._axis is None:
            raise ValueError(f"{what} works on per-channel quantized tensors only")

    def q_per_channel_scales(self):
        """Per-channel scales (a copy): float64, or float32 for float qparams (as torch,
        which stores ``per_channel_affine_float_qparams`` scales in float32)."""
        self._per_channel_only("q_per_channel_scales()")
        if self._zps.dtype.kind == "f":
            return self._scales.astype(np.float32)
        return self._scales.copy()

    def q_per_channel_zero_points(self):
        """Per-channel zero points: int64 array, or float32 for float qparams (a copy)."""
        self._per_channel_only("q_per_channel_zero_points()")
        return self._zps.copy()

    def q_per_channel_axis(self):
        self._per_channel_only("q_per_channel_axis()")
        return self._axis

    def is_contiguous(self):
        return bool(self._int.flags.c_contiguous)

    # ------------------------------------------------------------- conversions
    def int_repr(self):
        """The integer values as a new array (quint4x2: packed, two values per byte)."""
        if self._dtype is quint4x2:
            vals = np.ascontiguousarray(self._int).reshape(-1)
            out = np.empty((vals.size + 1) // 2, np.uint8)
            return K.pack_quint4x2(vals, out)
        return np.array(self._int, copy=True, order="C")

    def dequantize(self):
        """Float32 values: ``(q - zero_point) * scale`` with torch's rounding."""
        q = np.ascontiguousarray(self._int).reshape(self.shape)  # (ascontiguousarray makes 0-d 1-d)
        out = np.empty(q.shape, np.float32)
        if self._axis is None:
            K.dequantize_per_tensor(q.reshape(-1), self._scale, self._zp, out.reshape(-1))
        elif q.size:
            ax = self._axis
            C = q.shape[ax]
            outer = int(np.prod(q.shape[:ax], dtype=np.int64))
            K.dequantize_per_channel(q.reshape(outer, C, -1), self._scales, self._zps,
                                     out.reshape(outer, C, -1))
        return out

    def contiguous(self):
        if self.is_contiguous():
            return self
        return self._like(np.ascontiguousarray(self._int))

    def clone(self):
        """A copy with its own integer storage and qparams."""
        if self._axis is None:
            return self._like(self._int.copy())
        return self._like(self._int.copy(), scales=self._scales.copy(),
                          zero_points=self._zps.copy())

    # ------------------------------------------------------------- shape views
    def _reshaped(self, shape, copy_ok):
        a = self._int
        free = shape.count(-1)  # at most one -1, inferred; it is ambiguous for 0 elements
        known = int(np.prod([n for n in shape if n != -1], dtype=np.int64))
        if free > 1 or any(n < -1 for n in shape) or (free == 0 and known != a.size) or (
                free == 1 and (known == 0 or a.size % known)):
            raise ValueError(f"shape {shape} is invalid for a tensor of {a.size} elements")
        if copy_ok:
            new = a.reshape(shape)
        else:
            new = a.view()
            try:
                new.shape = shape
            except AttributeError as e:
                raise ValueError("view size is not compatible with the tensor's strides; "
                                 "use reshape()") from e
        if self._axis is None:
            return self._like(new)
        ax, C = self._axis, a.shape[self._axis]
        before = int(np.prod(a.shape[:ax], dtype=np.int64))
        run = 1
        for j, n in enumerate(new.shape):
            if run == before and n == C:
                return self._like(new, axis=j)
            run *= n
        raise ValueError(f"shape {tuple(new.shape)} would split or merge the channel axis "
                         f"{ax} (size {C}) of a per-channel tensor")

    def reshape(self, *shape):
        """Reshape (a view when possible); per-channel tensors keep their channel axis whole."""
        return self._reshaped(_sizes(shape, "shape"), True)

    def view(self, *shape):
        """Reshape without copying; raises ``ValueError`` if a copy would be needed."""
        return self._reshaped(_sizes(shape, "shape"), False)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dimensions ``start_dim..end_dim`` into one."""
        if self.ndim == 0:
            return self.reshape(1)
        s = V.axis_index(start_dim, self.ndim, "start_dim")
        e = V.axis_index(end_dim, self.ndim, "end_dim")
        if s > e:
            raise ValueError("flatten() has invalid args: start_dim cannot come after end_dim")
        shp = self.shape
        return self.reshape(shp[:s] + (int(np.prod(shp[s:e + 1], dtype=np.int64)),) + shp[e + 1:])

    def permute(self, *dims):
        """Reorder dimensions; a per-channel axis moves with its dimension."""
        dims = tuple(V.axis_index(d, self.ndim, "dims") for d in _sizes(dims, "dims"))
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"dims must be a permutation of 0..{self.ndim - 1}; got {dims}")
        new = self._int.transpose(dims)
        return self._like(new, axis=None if self._axis is None else dims.index(self._axis))

    def transpose(self, dim0, dim1):
        """Swap two dimensions."""
        d0 = V.axis_index(dim0, self.ndim, "dim0")
        d1 = V.axis_index(dim1, self.ndim, "dim1")
        dims = list(range(self.ndim))
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return self.permute(*dims)

    def expand(self, *sizes):
        """Broadcast to ``sizes`` without copying (-1 keeps a dimension)."""
        sizes = _sizes(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"sizes must have at least {self.ndim} entries; got {len(sizes)}")
        shape = tuple(self.shape[i - lead] if (s == -1 and i >= lead) else s
                      for i, s in enumerate(sizes))
        if self._axis is not None and shape[self._axis + lead] != self.shape[self._axis]:
            raise ValueError("expand cannot change the size of the channel axis")
        try:
            new = np.broadcast_to(self._int, shape)
        except ValueError as e:
            raise ValueError(f"cannot expand shape {self.shape} to {shape}") from e
        return self._like(new, axis=None if self._axis is None else self._axis + lead)

    def as_strided(self, size, stride, storage_offset=None):
        """A view on the underlying storage with element ``size`` / ``stride`` (per tensor only)."""
        self._per_tensor_only("as_strided()")
        size, stride = _sizes((size,), "size"), _sizes((stride,), "stride")
        if len(size) != len(stride):
            raise ValueError(f"size and stride must have the same length; got {size}, {stride}")
        if any(s < 0 for s in size + stride):
            raise ValueError("size and stride must be non-negative")
        storage = self._storage()
        itemsize = storage.itemsize
        off = self._offset(storage) if storage_offset is None else \
            V.int_scalar(storage_offset, "storage_offset", lo=0)
        need = off + (1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0)
        if need > storage.size:
            raise ValueError(f"as_strided: size {size}, stride {stride}, storage_offset {off} "
                             f"need {need} elements; the storage has {storage.size}")
        # np.ndarray(buffer=...) keeps ``storage`` as the base, so a view of this view
        # still finds the whole storage (np.lib.stride_tricks.as_strided would hide it
        # behind a DummyArray).
        new = np.ndarray(size, storage.dtype, buffer=storage,
                         offset=min(off, storage.size) * itemsize,
                         strides=tuple(s * itemsize for s in stride))
        return self._like(new)

    def _storage(self):
        """The owning array of this tensor's integers as a 1-d view in memory order."""
        root = self._int
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root.dtype == self._int.dtype and (root.flags.c_contiguous or root.flags.f_contiguous):
            return np.ndarray((root.size,), root.dtype, buffer=root)
        return np.ascontiguousarray(self._int).reshape(-1)

    def _offset(self, storage):
        if self._int.size == 0:
            return 0
        d = self._int.__array_interface__["data"][0] - storage.__array_interface__["data"][0]
        return d // storage.itemsize if 0 <= d < storage.nbytes else 0

    def select(self, dim, index):
        """Slice at ``index`` along ``dim``; selecting one channel gives a per-tensor QTensor."""
        d = V.axis_index(dim, self.ndim, "dim")
        n = self.shape[d]
        i = V.int_scalar(index, "index")
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for dimension {d} of size {n}")
        key = (slice(None),) * d + (i,)
        return self[key]

    def __getitem__(self, key):
        new = self._int[key]
        if not isinstance(new, np.ndarray):
            # Every index was an int: NumPy returned a scalar copy. A trailing Ellipsis
            # gives the same element as a 0-d *view*, as torch's ``q[i, j]`` is.
            new = self._int[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
        if self._axis is None:
            return self._like(new)
        return self._index_per_channel(key, new)

    def _index_per_channel(self, key, new):
        C = self.shape[self._axis]
        ids = np.arange(C).reshape((1,) * self._axis + (C,) + (1,) * (self.ndim - self._axis - 1))
        ids = np.broadcast_to(ids, self.shape)[key]
        ids = np.asarray(ids)
        basic = _basic_key_axis(key, self.ndim, self._axis)
        if basic is not None:
            kind, val = basic
            if kind == "channel":
                return self._channel_tensor(new, val % C)
            sel = np.arange(C)[val[1]]
            return self._like(new, axis=val[0], scales=self._scales[sel], zero_points=self._zps[sel])
        if ids.size == 0:
            raise IndexError("empty advanced indexing of a per-channel tensor is not supported")
        varying = [d for d in range(ids.ndim) if ids.shape[d] > 1 and
                   np.any(np.diff(ids, axis=d) != 0)]
        if not varying:
            return self._channel_tensor(new, int(ids.reshape(-1)[0]))
        if len(varying) == 1:
            d = varying[0]
            sel = ids[tuple(slice(None) if k == d else 0 for k in range(ids.ndim))]
            return self._like(new, axis=d, scales=self._scales[sel], zero_points=self._zps[sel])
        raise IndexError("this index mixes channels across several dimensions; "
                         "dequantize first")

    def _channel_tensor(self, ints, c):
        if self._zps.dtype.kind == "f":
            raise IndexError("selecting one channel of a float-qparams tensor has no "
                             "per-tensor equivalent (its zero point is a float)")
        return QTensor._from_parts(ints, self._dtype, scale=float(self._scales[c]),
                                   zero_point=int(self._zps[c]))

    # ----------------------------------------------------------------- in place
    def copy_(self, src):
        """Copy ``src`` into this tensor in place.

        A float array is quantized with this tensor's qparams. A QTensor must have the
        same dtype and qscheme family; its values and qparams are taken (as torch does).
        """
        if isinstance(src, QTensor):
            if src._dtype is not self._dtype:
                raise TypeError(f"src must have dtype {self._dtype!r}; got {src._dtype!r}")
            if src.qscheme() is not self.qscheme():
                raise ValueError(f"src must have the same qscheme as this tensor "
                                 f"({self.qscheme()!r}); got {src.qscheme()!r}")
            self._int[...] = np.broadcast_to(src._int, self.shape)
            self._scale, self._zp = src._scale, src._zp
            if src._axis is not None:
                self._scales, self._zps, self._axis = src._scales.copy(), src._zps.copy(), src._axis
            return self
        from .functional import _quantize_flat
        x = V.float_array(src, "src")
        x = x.reshape(np.shape(src))  # float_array makes 0-d inputs 1-d
        try:
            x = np.ascontiguousarray(np.broadcast_to(x, self.shape)).reshape(self.shape)
        except ValueError as e:
            raise ValueError(f"src of shape {x.shape} cannot be broadcast to this "
                             f"tensor's shape {self.shape}") from e
        if self._axis is None:
            self._int[...] = _quantize_flat(x, self._scale, self._zp, self._dtype)
        else:
            from .functional import quantize_per_channel
            q = quantize_per_channel(x, self._scales, self._zps, self._axis, self._dtype)
            self._int[...] = q._int
        return self

    def resize_(self, *sizes):
        """Resize in place (per tensor only); new elements are zero, kept ones keep order.

        The kept elements are the first ones in logical (row-major) order. torch keeps the
        first ones of its *storage* instead: the same for a contiguous tensor, not for a
        transposed view. torch leaves new elements uninitialised.
        """
        self._per_tensor_only("resize_()")
        sizes = _sizes(sizes)
        if any(s < 0 for s in sizes):
            raise ValueError(f"sizes must be non-negative; got {sizes}")
        n = int(np.prod(sizes, dtype=np.int64))
        flat = np.ascontiguousarray(self._int).reshape(-1)
        if n == flat.size:
            self._int = flat.reshape(sizes)
        else:
            new = np.zeros(n, self._int.dtype)
            k = min(n, flat.size)
            new[:k] = flat[:k]
            self._int = new.reshape(sizes)
        return self

    # -------------------------------------------------------------- comparisons
    def _other_values(self, other):
        if isinstance(other, QTensor):
            return other.dequantize()
        if isinstance(other, (numbers.Real, np.ndarray, list, tuple)):
            return np.asarray(other, dtype=np.float32) if not isinstance(other, np.ndarray) \
                else other
        raise TypeError(f"other must be a QTensor, a number or an array; got {type(other).__name__}")

    def eq(self, other):
        """Elementwise ``==`` of dequantized values (bool array), as torch's quantized ``eq``."""
        return np.equal(self.dequantize(), self._other_values(other))

    def ne(self, other):
        return np.not_equal(self.dequantize(), self._other_values(other))

    def ge(self, other):
        return np.greater_equal(self.dequantize(), self._other_values(other))

    def gt(self, other):
        return np.greater(self.dequantize(), self._other_values(other))

    def le(self, other):
        return np.less_equal(self.dequantize(), self._other_values(other))

    def lt(self, other):
        return np.less(self.dequantize(), self._other_values(other))

    __eq__, __ne__, __ge__, __gt__, __le__, __lt__ = eq, ne, ge, gt, le, lt
    __hash__ = object.__hash__

    def equal(self, other):
        """True when dtype, qscheme, qparams, shape and integer values all match."""
        if not isinstance(other, QTensor):
            raise TypeError(f"other must be a QTensor; got {type(other).__name__}")
        if other._dtype is not self._dtype or other.qscheme() is not self.qscheme():
            return False
        if self.shape != other.shape:
            return False
        if self._axis is None:
            if (self._scale, self._zp) != (other._scale, other._zp):
                return False
        elif not (self._axis == other._axis and np.array_equal(self._scales, other._scales)
                  and np.array_equal(self._zps, other._zps)):
            return False
        return bool(np.array_equal(self._int, other._int))

    # -------------------------------------------------------------- reductions
    def _reduce(self, fn, argfn, dim, keepdim, what):
        self._per_tensor_only(what)
        if dim is None:
            if self.numel() == 0:
                raise ValueError(f"{what} of an empty tensor: give a dim whose size is not 0")
            return self._like(np.asarray(fn(self._int)).reshape(()))
        d = V.axis_index(dim, max(self.ndim, 1), "dim")
        a = self._int.reshape(1) if self.ndim == 0 else self._int
        if a.shape[d] == 0:
            raise ValueError(f"{what}: dim {d} has size 0, there is nothing to reduce")
        idx = argfn(a, axis=d, keepdims=True)
        vals = np.take_along_axis(a, idx, axis=d)
        if not keepdim:
            vals, idx = vals.squeeze(d), idx.squeeze(d)
        return ValuesIndices(self._like(vals), idx.astype(np.int64))

    def max(self, dim=None, keepdim=False):
        """Largest value (0-d QTensor), or ``(values, indices)`` along ``dim``."""
        return self._reduce(np.max, np.argmax, dim, keepdim, "max()")

    def min(self, dim=None, keepdim=False):
        """Smallest value (0-d QTensor), or ``(values, indices)`` along ``dim``."""
        return self._reduce(np.min, np.argmin, dim, keepdim, "min()")

    def mean(self, dim=None, keepdim=False):
        """Mean over ``dim`` (all dims if None or empty), with this tensor's qparams.

        Same scale and zero point in and out, so the mean is taken on the integers:
        ``rint(f32(f32(sum(q)) / f32(N)))`` (half to even), with an exact int64 sum. This is
        torch's rule for a contiguous tensor reduced over its innermost dims, bit for bit.
        For other dims or layouts torch takes a float32 mean of the dequantized values,
        whose summation order decides exact ties (a mean of ``k + 0.5``): numq gives
        the same integer except, at some of those ties, a neighbour (1 LSB).
        """
        self._per_tensor_only("mean()")
        a = self._int.reshape(1) if self.ndim == 0 else self._int
        if dim is None:
            axes = ()
        else:
            dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
            axes = tuple(V.axis_index(d, a.ndim, "dim") for d in dims)
            if len(set(axes)) != len(axes):
                raise ValueError(f"dim must not name a dimension twice; got {dim!r}")
        if not axes:
            axes = tuple(range(a.ndim))
        n = int(np.prod([a.shape[d] for d in axes], dtype=np.int64))
        total = np.sum(a, axis=axes, dtype=np.int64, keepdims=keepdim)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.rint(np.asarray(total, dtype=np.float32) / np.float32(n))
        dt = self._dtype
        # An empty mean is NaN, which quantizes like NaN does (type max; qint32: min).
        nan_q = dt.qmin if dt is qint32 else dt.qmax
        q = np.where(np.isnan(m), np.float64(nan_q), np.clip(m.astype(np.float64), dt.qmin, dt.qmax))
        q = q.astype(self._int.dtype)
        return self._like(q.reshape(()) if self.ndim == 0 else q)

    def sort(self, dim=-1, descending=False, stable=False):
        """Sorted values and their indices along ``dim`` (ties keep their order)."""
        self._per_tensor_only("sort()")
        a = self._int.reshape(1) if self.ndim == 0 else self._int
        d = V.axis_index(dim, a.ndim, "dim")
        key = -a.astype(np.int64) if descending else a
        idx = np.argsort(key, axis=d, kind="stable")
        vals = np.take_along_axis(a, idx, axis=d).reshape(self.shape)
        return ValuesIndices(self._like(vals), idx.astype(np.int64).reshape(self.shape))

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The ``k`` largest (or smallest) values along ``dim`` and their indices."""
        self._per_tensor_only("topk()")
        a = self._int.reshape(1) if self.ndim == 0 else self._int
        d = V.axis_index(dim, a.ndim, "dim")
        k = V.int_scalar(k, "k", 0, a.shape[d])
        key = -a.astype(np.int64) if largest else a
        idx = np.argsort(key, axis=d, kind="stable").take(np.arange(k), axis=d)
        vals = np.take_along_axis(a, idx, axis=d)
        if self.ndim == 0 and k == 1:  # as torch: 0-d values and indices (k=0: empty 1-d)
            vals, idx = vals.reshape(()), idx.reshape(())
        return ValuesIndices(self._like(vals), idx.astype(np.int64))

    # ---------------------------------------------------------------------- repr
    def __repr__(self):
        vals = np.array2string(self.dequantize(), precision=4, separator=", ", prefix="QTensor(")
        if self._axis is None:
            q = f"scale={self._scale}, zero_point={self._zp}"
        else:
            q = (f"scale={np.array2string(self._scales, separator=', ')}, "
                 f"zero_point={np.array2string(self._zps, separator=', ')}, axis={self._axis}")
        return (f"QTensor({vals}, size={tuple(self.shape)}, dtype={self._dtype!r},\n"
                f"        quantization_scheme={self.qscheme()!r}, {q})")


def _basic_key_axis(key, ndim, axis):
    """Where the channel axis goes under a basic index (ints, slices, None, Ellipsis).

    Returns ``("channel", c)`` when an int picks channel ``c``, ``("axis", (new_axis,
    slice))`` when the axis survives, or None for advanced indices.
    """
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        if not (k is None or k is Ellipsis or isinstance(k, slice)
                or (isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)))):
            return None
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        return None
    expanded = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (ndim - n_real))
        else:
            expanded.append(k)
    i = o = 0
    for k in expanded:
        if k is None:
            o += 1
            continue
        if i == axis:
            if isinstance(k, slice):
                return "axis", (o, k)
            return "channel", int(k)
        if isinstance(k, slice):
            o += 1
        i += 1
    return "axis", (o + (axis - i), slice(None))
