"""numq's kernel-level API: Numba kernels on plain arrays.

Kernels take C-contiguous native-endian arrays, validated scalars and a preallocated
``out``; they do not check their input (the public functions in :mod:`numq` do). Each
docstring states its contract. Importing this package compiles nothing.
"""
from .quantize import (PARALLEL_MIN, dequantize_per_channel, dequantize_per_tensor,
                       pack_quint4x2, quantize_per_channel_f32,
                       quantize_per_channel_float_qparams_f32, quantize_per_tensor_f32,
                       quantize_per_tensor_qint32_f32, unpack_quint4x2)

__all__ = [
    "PARALLEL_MIN", "quantize_per_tensor_f32", "quantize_per_tensor_qint32_f32",
    "quantize_per_channel_f32", "quantize_per_channel_float_qparams_f32",
    "dequantize_per_tensor", "dequantize_per_channel", "pack_quint4x2", "unpack_quint4x2",
]
