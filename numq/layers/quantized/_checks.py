"""Checks shared by the quantized Linear and convolution families.

Both take a qint8 weight QTensor quantized per tensor or per channel along axis 0 and a
float bias with one value per output channel; each family adds its own shape checks.
"""
import numpy as np

from ...dtypes import per_channel_affine, per_tensor_affine, qint8
from ...qtensor import QTensor

__all__ = ["array_of", "check_qweight_type", "qweight_qparams", "check_bias"]


def array_of(v):
    """The array behind a Parameter (``.data``), else ``v``."""
    return v.data if hasattr(v, "grad") and hasattr(v, "data") else v


def check_qweight_type(weight, name):
    """A QTensor of dtype qint8, else TypeError."""
    if not isinstance(weight, QTensor):
        raise TypeError(f"{name}: weight must be a qint8 QTensor (quantize it with "
                        f"numq.quantize_per_tensor / quantize_per_channel); got "
                        f"{type(weight).__name__}")
    if weight.dtype is not qint8:
        raise TypeError(f"{name}: weight must have dtype numq.qint8; got {weight.dtype!r}")


def qweight_qparams(weight, name, out_dim):
    """``(codes, scales, zero_points)`` of a checked qint8 weight.

    Scales / zero points are Python scalars (per tensor) or float64 / int64 arrays (per
    channel along axis 0, ``out_dim`` names that axis in the message), as the packing
    functions take.
    """
    qs = weight.qscheme()
    codes = np.ascontiguousarray(weight._int)
    if qs is per_tensor_affine:
        return codes, weight.q_scale(), weight.q_zero_point()
    if qs is per_channel_affine:
        if weight.q_per_channel_axis() != 0:
            raise ValueError(f"{name}: a per-channel weight must be quantized along axis 0 "
                             f"({out_dim}); got axis {weight.q_per_channel_axis()}")
        return (codes, np.ascontiguousarray(weight._scales, dtype=np.float64),
                np.ascontiguousarray(weight._zps, dtype=np.int64))
    raise ValueError(f"{name}: weight must be per_tensor_affine or per_channel_affine "
                     f"quantized; got {qs!r}")


def check_bias(bias, n, name, per="output channel"):
    """``None``, or the bias as a new float32 C-contiguous ``(n,)`` array."""
    if bias is None:
        return None
    if isinstance(bias, QTensor):
        raise TypeError(f"{name}: bias must be a float array (it is not quantized); got a "
                        "QTensor")
    b = np.asarray(array_of(bias))
    if b.dtype.kind != "f":
        raise TypeError(f"{name}: bias must be a float array; got dtype {b.dtype}")
    if b.shape != (n,):
        raise ValueError(f"{name}: bias must have shape ({n},) (one value per {per}); got "
                         f"{b.shape}")
    return np.array(b, dtype=np.float32, order="C", copy=True)
