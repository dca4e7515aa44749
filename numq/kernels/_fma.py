"""``fma32(a, b, c)``: float32 fused multiply-add with one rounding, callable from kernels.

torch's x86 quantize computes ``x * inv + zp`` with a hardware FMA. Inside kernels this
lowers to ``llvm.fma.f32`` (one ``vfmadd`` per vector on FMA CPUs, a correctly rounded
libm call elsewhere), so it is exact on every ISA variant. In the interpreter
(``NUMBA_DISABLE_JIT=1``) the plain-Python twin below computes the same bits.
"""
from fractions import Fraction

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

__all__ = ["fma32"]


def fma32(a, b, c):
    """Return ``f32(a * b + c)`` rounded once (exact rational arithmetic in Python)."""
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return np.float32(a * b + c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    # round the exact value to float32, ties to even, via its two float32 neighbours
    lo = np.float32(float(exact))
    if Fraction(float(lo)) > exact:
        lo = np.nextafter(lo, np.float32(-np.inf))
    hi = np.nextafter(lo, np.float32(np.inf))
    dlo, dhi = exact - Fraction(float(lo)), Fraction(float(hi)) - exact
    if dlo < dhi or (dlo == dhi and (lo.view(np.int32) & 1) == 0):
        return lo
    return hi


@intrinsic
def _fma32_llvm(typingctx, a, b, c):
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@overload(fma32, jit_options={"cache": True})
def _fma32_jit(a, b, c):
    if all(isinstance(t, types.Float) and t.bitwidth == 32 for t in (a, b, c)):
        return lambda a, b, c: _fma32_llvm(a, b, c)
    return None
