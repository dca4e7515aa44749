"""numq's kernel-level API: Numba kernels on plain arrays.

Kernels take C-contiguous native-endian arrays, validated scalars and a preallocated
``out``; they do not check their input (the public functions in :mod:`numq` do). Each
docstring states its contract. Importing this package compiles nothing.

Quantization kernels are exported here by name; the float kernels behind
:mod:`numq.layers` live in their own modules (:mod:`.im2col`, :mod:`.pool_float`,
:mod:`.resize_float`, :mod:`.embedding_float`, :mod:`.norm_float`) and the
HistogramObserver's kernels (:mod:`.histogram`) live in their own modules, each with ``__all__``.
"""
from . import embedding_float, gemm, histogram, im2col, norm_float, pool_float, resize_float
from .fake_quantize import (fake_quantize_learnable_per_channel_backward,
                            fake_quantize_learnable_per_tensor_backward,
                            fake_quantize_per_channel, fake_quantize_per_channel_backward,
                            fake_quantize_per_tensor, fake_quantize_per_tensor_backward)
from .qparams import (AFFINE, FLOAT_QPARAMS, SMALL_SCALE_THRESHOLD, SYMMETRIC,
                      calculate_qparams, choose_qparams_dynamic, choose_qparams_dynamic_range)
from .quantize import (PARALLEL_MIN, dequantize_per_channel, dequantize_per_tensor,
                       pack_quint4x2, quantize_per_channel_f32,
                       quantize_per_channel_float_qparams_f32, quantize_per_tensor_f32,
                       quantize_per_tensor_qint32_f32, quantize_per_tensor_sub_byte_f32,
                       unpack_quint4x2)
from .conv import PackedConvWeight, conv_output_size, pack_conv_weight, qconv, unpack_conv_weight
from .conv_transpose import (PackedConvTransposeWeight, conv_transpose_output_size,
                             pack_conv_transpose_weight, qconv_transpose, qconv_transpose_int32,
                             unpack_conv_transpose_weight)
from .gemm import (PackedLinearWeight, pack_linear_weight, qlinear, qlinear_dynamic,
                   qlinear_int32, requantize, unpack_linear_weight)
from .reduce import minmax_f32, minmax_per_channel_f32

__all__ = [
    "PARALLEL_MIN", "quantize_per_tensor_f32", "quantize_per_tensor_qint32_f32",
    "quantize_per_tensor_sub_byte_f32", "quantize_per_channel_f32",
    "quantize_per_channel_float_qparams_f32",
    "dequantize_per_tensor", "dequantize_per_channel", "pack_quint4x2", "unpack_quint4x2",
    "minmax_f32", "minmax_per_channel_f32",
    "calculate_qparams", "choose_qparams_dynamic", "choose_qparams_dynamic_range",
    "AFFINE", "SYMMETRIC", "FLOAT_QPARAMS", "SMALL_SCALE_THRESHOLD",
    "fake_quantize_per_tensor", "fake_quantize_per_channel", "fake_quantize_per_tensor_backward",
    "fake_quantize_per_channel_backward", "fake_quantize_learnable_per_tensor_backward",
    "fake_quantize_learnable_per_channel_backward",
    "PackedLinearWeight", "pack_linear_weight", "unpack_linear_weight", "qlinear",
    "qlinear_int32", "qlinear_dynamic", "requantize",
    "PackedConvWeight", "pack_conv_weight", "unpack_conv_weight", "qconv", "conv_output_size",
    "PackedConvTransposeWeight", "pack_conv_transpose_weight", "unpack_conv_transpose_weight",
    "qconv_transpose", "qconv_transpose_int32", "conv_transpose_output_size",
]
