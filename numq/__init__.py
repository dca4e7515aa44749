"""numq: PyTorch's quantization API (``torch.ao.quantization``) on NumPy arrays.

Importing numq compiles nothing: every kernel compiles on first use and is cached on
disk. See ``README.md`` and ``docs/`` for the name rule (``torch.X`` -> ``numq.X``).
"""
from . import _memory  # noqa: F401  (glibc: keep freed large blocks; see numq/_memory.py)
from . import dtypes, kernels, layers, optim, quantization
from ._random import manual_seed
from ._isa import isa
from ._threads import get_num_threads, set_num_threads
from .dtypes import (QDType, QScheme, float16, per_channel_affine,
                     per_channel_affine_float_qparams, per_channel_symmetric,
                     per_tensor_affine, per_tensor_symmetric, qint8, qint32, quint4x2,
                     quint8)
from .fake_quantize import (_fake_quantize_learnable_per_channel_affine,
                            _fake_quantize_learnable_per_channel_affine_backward,
                            _fake_quantize_learnable_per_tensor_affine,
                            _fake_quantize_learnable_per_tensor_affine_backward,
                            fake_quantize_per_channel_affine,
                            fake_quantize_per_channel_affine_backward,
                            fake_quantize_per_channel_affine_cachemask,
                            fake_quantize_per_tensor_affine,
                            fake_quantize_per_tensor_affine_backward,
                            fake_quantize_per_tensor_affine_cachemask)
from .functional import (_make_per_channel_quantized_tensor, _make_per_tensor_quantized_tensor,
                         dequantize, quantize_per_channel, quantize_per_tensor,
                         quantize_per_tensor_dynamic)
from .qtensor import QTensor

__version__ = "0.1.0"

__all__ = [
    "QDType", "QScheme", "QTensor", "quint8", "qint8", "qint32", "quint4x2", "float16",
    "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams",
    "quantize_per_tensor", "quantize_per_channel", "dequantize", "quantize_per_tensor_dynamic",
    "_make_per_tensor_quantized_tensor", "_make_per_channel_quantized_tensor",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_tensor_affine_cachemask",
    "fake_quantize_per_tensor_affine_backward", "fake_quantize_per_channel_affine",
    "fake_quantize_per_channel_affine_cachemask", "fake_quantize_per_channel_affine_backward",
    "_fake_quantize_learnable_per_tensor_affine",
    "_fake_quantize_learnable_per_tensor_affine_backward",
    "_fake_quantize_learnable_per_channel_affine",
    "_fake_quantize_learnable_per_channel_affine_backward",
    "set_num_threads", "get_num_threads", "isa", "dtypes", "kernels", "layers", "optim", "quantization",
    "manual_seed",
]
