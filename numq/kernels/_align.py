"""Buffers aligned to 64 bytes (one cache line).

AMX tile loads and stores whose 64-byte rows straddle two cache lines run about six times
slower (measured on the development machine: 22 ns instead of 3.5 ns per 1 KiB tile), and
NumPy only promises 16-byte alignment. Every buffer a tile instruction touches comes from
here: packed weights, the activation copies and the accumulator scratch.
"""
import math

import numpy as np

from ._jit import kernel

__all__ = ["ALIGN", "aligned_empty", "aligned_zeros", "aligned_u8", "aligned_i32", "is_aligned"]

ALIGN = 64


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` starting on a 64-byte boundary (C order).

    numq's own outputs use it, so that the next layer's tile loads can read them in place.
    """
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    off = -raw.ctypes.data % ALIGN
    # built on a memoryview, so the result is its own root array: code that walks
    # ``.base`` to find a tensor's storage (QTensor.as_strided) sees exactly these bytes
    return np.frombuffer(memoryview(raw)[off:off + nbytes], dt).reshape(shape)


def aligned_zeros(n, dtype):
    """A zero-filled 1-D array of ``n`` elements whose data starts on a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + ALIGN, np.uint8)
    off = -raw.ctypes.data % ALIGN
    return raw[off:off + n * itemsize].view(dtype)


@kernel(inline="always")
def aligned_u8(n):
    """An uninitialised uint8 array of ``n`` bytes starting on a 64-byte boundary."""
    raw = np.empty(n + ALIGN, np.uint8)
    off = (ALIGN - (np.int64(raw.ctypes.data) & (ALIGN - 1))) & (ALIGN - 1)
    return raw[off:off + n]


@kernel(inline="always")
def aligned_i32(n):
    """An uninitialised int32 array of ``n`` elements starting on a 64-byte boundary."""
    return aligned_u8(4 * n).view(np.int32)


@kernel(inline="always")
def is_aligned(a):
    """Whether array ``a``'s data starts on a 64-byte boundary."""
    return (np.int64(a.ctypes.data) & (ALIGN - 1)) == 0
