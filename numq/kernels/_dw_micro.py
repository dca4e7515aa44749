"""``dw3x3_pixels``: the 3x3 depthwise inner loop, 16 channels per vector.

For ``nout`` consecutive output positions of one line it adds, per channel, the nine
products of three zero-point padded input rows with the int32 weights (tap major,
``(9, OC)``), subtracts ``x_zp * sum w`` and requantizes (the GEMM epilogue's
:func:`numq.kernels._gemm_micro.u8_codes`). Written as vector IR because Numba's loop
vectorizer picks 8 lanes here and spends most of its instructions on the address
arithmetic of the nine taps; 16 lanes with masked tails halve that (measured 1.4x on
the C144 56x56 case). In the interpreter (``NUMBA_DISABLE_JIT=1``) the plain-NumPy
twin below computes the same bits.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._gemm_micro import splat, u8_codes

__all__ = ["dw3x3_pixels"]

_I1, _I8, _I32, _I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
_F32 = ir.FloatType()
_L = 16


def dw3x3_pixels(rb, r0, r1, r2, ew, cstep, nout, w32, zsum, bs, mt, of, o0, top, bot, zp):
    """Output positions ``p < nout`` of a line: ``of[o0 + p*OC + c]`` for every channel.

    ``rb``: uint8 row buffer; ``r0, r1, r2``: offsets of the three input rows at the first
    position's first tap; ``ew``: bytes between horizontal taps; ``cstep``: bytes between
    positions; ``w32``: int32 ``(9*OC,)``; ``zsum``: int32 ``x_zp * sum w``; ``bs``, ``mt``:
    float32 epilogue parameters; ``top, bot, zp``: the clamp bounds and zero point.
    """
    OC = zsum.size
    w = w32.reshape(9, OC).astype(np.int64)
    for p in range(nout):
        acc = np.zeros(OC, np.int64)
        for kr, r in enumerate((r0, r1, r2)):
            for e in range(3):
                s = r + p * cstep + e * ew
                acc += rb[s:s + OC].astype(np.int64) * w[3 * kr + e]
        v = (acc - zsum).astype(np.int32)
        y = (v.astype(np.float32) + bs) * mt
        y = np.where(np.float32(top) < y, np.float32(top), y)
        y = np.where(y > np.float32(bot), y, np.float32(bot))
        o = o0 + p * OC
        of[o:o + OC] = (np.rint(y).astype(np.int64) + int(zp)).astype(np.uint8)


def _vec(ty):
    return ir.VectorType(ty, _L)


@intrinsic
def _dw3x3_llvm(typingctx, rb, r0, r1, r2, ew, cstep, nout, w, oc, zs, bs, mt, out, o0, top,
                bot, zp):
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64,
                     types.int64, types.int64, types.int64, types.int64, types.int64,
                     types.int64, types.int64, types.int64, types.int64, types.float32,
                     types.float32, types.int32)

    def codegen(context, builder, signature, args):
        (rb_, r0_, r1_, r2_, ew_, cs_, n_, w_, oc_, zs_, bs_, mt_, out_, o0_, top_, bot_,
         zp_) = args
        mod = builder.module
        v8, v32, vf, vb = _vec(_I8), _vec(_I32), _vec(_F32), _vec(_I1)

        def fn(name, ret, argtys):
            return cgutils.get_or_insert_function(mod, ir.FunctionType(ret, argtys), name)

        mload8 = fn("llvm.masked.load.v16i8.p0", v8, [v8.as_pointer(), _I32, vb, v8])
        mload32 = fn("llvm.masked.load.v16i32.p0", v32, [v32.as_pointer(), _I32, vb, v32])
        mloadf = fn("llvm.masked.load.v16f32.p0", vf, [vf.as_pointer(), _I32, vb, vf])
        mstore8 = fn("llvm.masked.store.v16i8.p0", ir.VoidType(),
                     [v8, v8.as_pointer(), _I32, vb])
        iota = ir.Constant(v32, list(range(_L)))
        bounds = (splat(builder, zp_, v32), splat(builder, top_, vf),
                  splat(builder, bot_, vf))
        one = ir.Constant(_I32, 1)
        four = ir.Constant(_I32, 4)

        def at(base, off, vty):
            return builder.inttoptr(builder.add(base, off), vty.as_pointer())

        with cgutils.for_range(builder, n_) as lp:
            po = builder.mul(lp.index, cs_)
            rows = [builder.add(builder.add(rb_, r), po) for r in (r0_, r1_, r2_)]
            ob = builder.add(builder.add(out_, o0_), builder.mul(lp.index, oc_))
            nblk = builder.sdiv(builder.add(oc_, ir.Constant(_I64, _L - 1)),
                                ir.Constant(_I64, _L))
            with cgutils.for_range(builder, nblk) as lc:
                c = builder.mul(lc.index, ir.Constant(_I64, _L))
                rem = builder.trunc(builder.sub(oc_, c), _I32)
                mask = builder.icmp_signed("<", iota, splat(builder, rem, v32))
                acc = ir.Constant(v32, [0] * _L)
                for kr in range(3):
                    for e in range(3):
                        xo = builder.add(builder.add(rows[kr], builder.mul(ew_,
                                         ir.Constant(_I64, e))), c)
                        x = builder.call(mload8, [at(xo, ir.Constant(_I64, 0), v8), one, mask,
                                                  ir.Constant(v8, [0] * _L)])
                        wo = builder.mul(builder.add(builder.mul(oc_, ir.Constant(
                            _I64, 3 * kr + e)), c), ir.Constant(_I64, 4))
                        wv = builder.call(mload32, [at(w_, wo, v32), four, mask,
                                                    ir.Constant(v32, [0] * _L)])
                        acc = builder.add(acc, builder.mul(builder.zext(x, v32), wv))
                c4 = builder.mul(c, ir.Constant(_I64, 4))
                z = builder.call(mload32, [at(zs_, c4, v32), four, mask,
                                           ir.Constant(v32, [0] * _L)])
                b = builder.call(mloadf, [at(bs_, c4, vf), four, mask,
                                          ir.Constant(vf, [0.0] * _L)])
                m = builder.call(mloadf, [at(mt_, c4, vf), four, mask,
                                          ir.Constant(vf, [0.0] * _L)])
                q = u8_codes(builder, builder.sub(acc, z), b, m, bounds)
                builder.call(mstore8, [q, at(ob, c, v8), one, mask])
        return context.get_dummy_value()

    return sig, codegen


@overload(dw3x3_pixels, jit_options={"cache": True})
def _dw3x3_pixels_jit(rb, r0, r1, r2, ew, cstep, nout, w32, zsum, bs, mt, of, o0, top, bot,
                      zp):
    def impl(rb, r0, r1, r2, ew, cstep, nout, w32, zsum, bs, mt, of, o0, top, bot, zp):
        _dw3x3_llvm(np.int64(rb.ctypes.data), np.int64(r0), np.int64(r1), np.int64(r2),
                    np.int64(ew), np.int64(cstep), np.int64(nout), np.int64(w32.ctypes.data),
                    np.int64(zsum.size), np.int64(zsum.ctypes.data), np.int64(bs.ctypes.data),
                    np.int64(mt.ctypes.data), np.int64(of.ctypes.data), np.int64(o0),
                    np.float32(top), np.float32(bot), np.int32(zp))

    return impl
