"""``u8_code(y, top, bot, zp)``: the last step of static requantization, for kernels.

The rule (NUMERICS.md) is ``clamp(rint(y) + zp, lo, 255)`` in float32, with NaN giving
``lo``. Because ``lo``, ``zp`` and 255 are integers it equals
``rint(clamp(y, lo - zp, 255 - zp)) + zp``: clamp first (``top = 255 - zp``,
``bot = lo - zp``, NaN to ``bot``), then one round-to-nearest-even conversion to int32
(``llvm.lrint``: one ``cvtps2dq`` per vector instead of a round, an add and a
truncating conversion). In the interpreter (``NUMBA_DISABLE_JIT=1``) the plain-Python
twin below computes the same value. Vector IR kernels use
:func:`numq.kernels._gemm_micro.u8_codes`, the same rule on 16 lanes.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = ["u8_code"]


def u8_code(y, top, bot, zp):
    """Return the uint8 code of ``y`` (float32) for bounds ``top``/``bot``, zero point ``zp``."""
    y = np.float32(y)
    y = np.float32(top) if top < y else y       # NaN passes here ...
    y = y if y > bot else np.float32(bot)       # ... and becomes bot here
    return np.uint8(int(np.rint(y)) + int(zp))


@intrinsic
def _lrint32(typingctx, y):
    """``llvm.lrint.i32.f32``: round to nearest even (the current mode) to int32; the
    loop vectorizer turns it into ``cvtps2dq``. Only called on clamped values."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [ir.FloatType()]), "llvm.lrint.i32.f32")
        return builder.call(fn, args)

    return sig, codegen


@overload(u8_code, jit_options={"cache": True})
def _u8_code_jit(y, top, bot, zp):
    def impl(y, top, bot, zp):
        v = top if top < y else y
        v = v if v > bot else bot
        return np.uint8(_lrint32(v) + zp)

    return impl
