"""Dynamic quantized ``Linear`` (``torch.ao.nn.quantized.dynamic.Linear``): float in,
float out, int8 (or float16) weights packed once."""
import numpy as np

from ...linear import Linear as _FloatLinear, NonDynamicallyQuantizableLinear
from ....dtypes import as_qdtype, float16, qint8
from .. import _functional_linear as _F
from .. import linear as _qlinear
from .._conv_base import _quantize_weight

__all__ = ["Linear"]


class Linear(_qlinear.Linear):
    """Dynamically quantized ``y = x @ W.T + b`` on float arrays.

    Parameters
    ----------
    in_features, out_features : int
    bias_ : bool
        Whether the layer has a float32 bias (initialised to zeros).
    dtype : QDType
        ``numq.qint8`` (default): int8 weights; each call quantizes the whole input with
        one (scale, zero point) chosen from its min/max (fbgemm's rule, activations in
        [0, 127] as torch's x86 ``reduce_range=True``), runs the int8 GEMM and returns
        float32 ``fma(acc, x_scale * w_scale, bias)``, equal to torch 2.13 bit for bit.
        ``numq.float16``: weights clipped to +-65504 and rounded to float16, float32
        GEMM, then the bias (agrees with torch to float32 rounding, not bit for bit:
        fbgemm's fp16 GEMM sums in its own order).

    Notes
    -----
    Input: a float16/32/64 array ``(*, in_features)``, at least 2-d (as torch); it is
    computed in float32 and the output is float32 ``(*, out_features)``. NaN or inf in
    the input of a qint8 layer raises ``ValueError`` (torch raises for NaN and returns
    meaningless values for inf). ``scale`` / ``zero_point`` exist (and are saved) as in
    torch but are unused.
    """

    _version = 4

    def __init__(self, in_features, out_features, bias_=True, dtype=qint8):
        super().__init__(in_features, out_features, bias_, dtype=dtype)
        self.version = 4

    @classmethod
    def _dtypes(cls):
        return (qint8, float16)

    def forward(self, x):
        """Dynamic quantized linear (ReLU-fused for ``LinearReLU``); see the class notes."""
        pp = self._packed_params
        name = type(self).__name__
        if pp.dtype is qint8:
            return _F._linear_dynamic(x, pp._packed_params, pp._bias, self._relu, name)
        return _F._linear_fp16(x, pp._packed_params, pp._bias, self._relu, name)

    def _get_name(self):
        return "DynamicQuantized" + type(self).__name__

    def extra_repr(self):
        s = (f"in_features={self.in_features}, out_features={self.out_features}, "
             f"dtype={self._packed_params.dtype}")
        if self._packed_params.dtype is qint8:
            s += f", qscheme={self.weight().qscheme()}"
        return s

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """A dynamic quantized layer from a float ``Linear`` (or fused ``LinearReLU``).

        The weight observer is ``mod.qconfig.weight()`` (``default_dynamic_qconfig``'s
        when ``mod.qconfig`` is None); its dtype (qint8 or float16) picks the layer's.
        """
        from ...intrinsic.fused import LinearReLU as _FusedLinearReLU
        name = cls.__name__
        kinds = (_FloatLinear, NonDynamicallyQuantizableLinear, _FusedLinearReLU)
        if type(mod) not in kinds:
            raise TypeError(f"{name}.from_float only works for one of "
                            f"{[k.__name__ for k in kinds]}; got {type(mod).__name__}")
        if not hasattr(mod, "qconfig"):
            raise ValueError(f"{name}.from_float: the float module must have a qconfig")
        qconfig = mod.qconfig
        if type(mod) is _FusedLinearReLU:
            mod = mod[0]
            qconfig = getattr(mod, "qconfig", None) or qconfig
        if qconfig is not None and qconfig.weight is not None:
            observer = qconfig.weight()
        else:
            # a lazy import, as torch's: the workflow package sits above the layers
            from ....quantization.qconfig import default_dynamic_qconfig
            observer = default_dynamic_qconfig.weight()
        dtype = observer.dtype
        if dtype not in (qint8, float16):
            raise ValueError(f"{name}.from_float: the weight observer's dtype must be qint8 "
                             f"or float16; got {dtype!r}")
        weight = np.asarray(_F._arr(mod.weight), np.float32)
        observer(weight)
        qweight = _quantize_weight(weight, observer) if dtype is qint8 else weight
        q = cls(mod.in_features, mod.out_features, dtype=dtype)
        q.set_weight_bias(qweight, None if mod.bias is None else _F._arr(mod.bias))
        return q

    @classmethod
    def from_reference(cls, ref_qlinear):
        """A dynamic layer from a reference quantized Linear (``weight_dtype``,
        ``get_quantized_weight()``, ``bias``)."""
        if cls._relu:
            ref_qlinear = ref_qlinear[0]
        dt = as_qdtype(getattr(ref_qlinear, "weight_dtype", qint8), allowed=(qint8, float16))
        q = cls(ref_qlinear.in_features, ref_qlinear.out_features, dtype=dt)
        b = ref_qlinear.bias
        q.set_weight_bias(ref_qlinear.get_quantized_weight(), None if b is None else _F._arr(b))
        return q
