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


_F32_MAX = Fraction(float(np.finfo(np.float32).max))
_F32_OVERFLOW = Fraction(2) ** 128 - Fraction(2) ** 103  # halfway from max to 2**128


def fma32(a, b, c):
    """Return ``f32(a * b + c)`` rounded once (exact rational arithmetic in Python)."""
    a, b, c = np.float32(a), np.float32(b), np.float32(c)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        with np.errstate(all="ignore"):
            return np.float32(a * b + c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if exact == 0:
        # IEEE: an exact zero sum is -0 only when both addends are -0 (or a -0 product
        # plus -0); cancellation of non-zero values gives +0 under round-to-nearest.
        prod_neg = bool(np.signbit(a)) != bool(np.signbit(b))
        both_neg = prod_neg and bool(np.signbit(c)) and (a == 0 or b == 0) and c == 0
        return np.float32(-0.0) if both_neg else np.float32(0.0)
    if abs(exact) >= _F32_OVERFLOW:
        return np.float32(np.inf) if exact > 0 else np.float32(-np.inf)
    if abs(exact) > _F32_MAX:  # below the overflow threshold: rounds to +-max
        return np.float32(np.finfo(np.float32).max) * np.float32(1 if exact > 0 else -1)
    # round the exact value to float32, ties to even, via its two float32 neighbours
    with np.errstate(over="ignore"):
        lo = np.float32(float(exact))
    if not np.isfinite(lo):
        lo = np.float32(np.finfo(np.float32).max) * np.float32(1 if exact > 0 else -1)
    if Fraction(float(lo)) > exact:
        lo = np.nextafter(lo, np.float32(-np.inf))
    hi = np.nextafter(lo, np.float32(np.inf))
    dlo = exact - Fraction(float(lo))
    dhi = Fraction(float(hi)) - exact if np.isfinite(hi) else dlo + 1
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
