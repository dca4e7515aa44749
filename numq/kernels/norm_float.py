"""Float kernels for the normalization / activation layer family (``numq.layers``).

Most of that family is plain NumPy (whole-array arithmetic and reductions are already
vectorised). The exception is the exact GELU: NumPy has no ``erf``, and a Python-level
``math.erf`` loop would be ~100x slower, so the erf-based GELU and its derivative live
here.

Public kernels
--------------
gelu_erf_fwd(x, out)
    ``out[i] = x[i] / 2 * (1 + erf(x[i] / sqrt(2)))`` (``torch.nn.functional.gelu``
    with ``approximate='none'``).
gelu_erf_bwd(x, grad, out)
    ``out[i] = grad[i] * (Phi(x[i]) + x[i] * phi(x[i]))``, the derivative of the above
    times the incoming gradient (``Phi``/``phi``: standard normal CDF / density).

Contract: 1-d C-contiguous float32 or float64 arrays of one length, ``out`` preallocated
with the same dtype as ``x``. Each element is computed in float64 and rounded once to
the output dtype, so float32 results are within one rounding of the exact value (torch's
vectorised float32 erf is a few ulp off exact; the difference is far below the 1e-4
conformance tolerance). The loops are serial: GELU is not on numq's hot paths and a
parallel variant would double the compiled specialisations.
"""
import math

from ._jit import kernel

__all__ = ["gelu_erf_fwd", "gelu_erf_bwd"]

_SQRT1_2 = 0.7071067811865476          # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327     # 1 / sqrt(2 * pi)


@kernel
def gelu_erf_fwd(x, out):
    """Exact GELU of ``x`` into ``out`` (see module docstring for the contract)."""
    for i in range(x.size):
        v = float(x[i])
        out[i] = 0.5 * v * (1.0 + math.erf(v * _SQRT1_2))


@kernel
def gelu_erf_bwd(x, grad, out):
    """``grad * d/dx GELU(x)`` into ``out`` (see module docstring for the contract)."""
    for i in range(x.size):
        v = float(x[i])
        cdf = 0.5 * (1.0 + math.erf(v * _SQRT1_2))
        pdf = _INV_SQRT_2PI * math.exp(-0.5 * v * v)
        out[i] = float(grad[i]) * (cdf + v * pdf)
