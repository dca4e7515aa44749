"""int8 GEMM microkernels as Numba intrinsics (LLVM IR written with llvmlite).

A microkernel computes one tile ``C[r, c] (+)= sum_k A[r, k] * B[k, c]`` for ``mr`` rows
of uint8 ``A`` and one packed strip of ``NR = 32`` int8 weight columns, with exact int32
accumulation, and
stores the ``mr x 32`` int32 tile to a scratch buffer (row stride 32); with
``accumulate`` it first loads the tile from there (K processed in blocks).

``A`` is packed per tile of 8 rows (:func:`numq.kernels.gemm._pack_a`): group ``g``
holds 4 consecutive k of each of the 8 rows (32 bytes), so the 8 broadcasts of one k
step read one half cache line and the rows stream sequentially.

Packed strip layout (see :func:`numq.kernels.gemm.pack_linear_weight`): ``K4 = ceil(K/4)``
groups of 4 k values; group ``g`` holds ``nr`` columns x 4 bytes (``nr = 32`` except in
the last strip), so one 64-byte load feeds 16 columns x 4 k. A tail strip narrower than
32 columns is read with full-width loads: lanes past ``nr`` see the next group's bytes
(or the packed array's 128 bytes of slack) and produce values nobody reads; dot-product
lanes never mix columns, so the lanes that are read are exact.

Variants, all exact int32 and therefore bit-identical:

- ``vnni``: ``vpdpbusd`` (AVX-512 VNNI), 16 columns x 4 k per instruction.
- ``avx2``: ``vpmaddwd`` on zero-/sign-extended 16-bit values (exact; fbgemm's
  ``vpmaddubsw`` saturates to int16 and is not used).
- When the host CPU lacks the instruction at compile time, the intrinsic emits plain
  LLVM vector IR (extend, multiply, add) with the same result, so a cached driver never
  contains an instruction its CPU cannot run. Drivers only call a variant the CPU has.

``ku`` independent accumulator sets over consecutive k groups hide the instruction's
latency when ``mr`` is small (``mr * 2 * ku`` vector accumulators).
"""
import ctypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._isa import cpu_features

__all__ = ["NR", "MR", "fetch_add", "amx16", "amx_conv16", "amx_begin", "amx_end",
           "AMX_KG", "copy_bytes", "epi_u8_rows", "splat", "u8_codes"]
# plus the microkernels vnni1 .. vnni8 and avx2_1 .. avx2_8

NR = 32   # columns per packed strip (two 16-lane int32 vectors)
MR = 8    # rows per full tile

_I8, _I16, _I32, _I64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
_V16 = ir.VectorType(_I32, 16)


def _const(v):
    return ir.Constant(_I64, v)


_PREFETCH = 1024   # bytes ahead in the packed strip (8 k groups); 0 disables


def _ku_for(mr):
    return max(1, -(-8 // (2 * mr)))  # >= 8 accumulators: mr=1 -> 4, 2/3 -> 2, >=4 -> 1


class _Emit:
    """IR helpers shared by the variants: loads of A words and B vectors, the dot step."""

    def __init__(self, builder, kind):
        self.b = builder
        self.kind = kind
        mod = builder.module
        if kind == "vnni":
            self.dp = cgutils.get_or_insert_function(
                mod, ir.FunctionType(_V16, [_V16, _V16, _V16]), "llvm.x86.avx512.vpdpbusd.512")
        elif kind == "avx2":
            v16i16, v8i32 = ir.VectorType(_I16, 16), ir.VectorType(_I32, 8)
            self.pmadd = cgutils.get_or_insert_function(
                mod, ir.FunctionType(v8i32, [v16i16, v16i16]), "llvm.x86.avx2.pmadd.wd")

    def load_b(self, ptr, off):
        """64 bytes at ``ptr + off`` as <64 x i8>."""
        v64 = ir.VectorType(_I8, 64)
        p = self.b.bitcast(self.b.gep(ptr, [off]), v64.as_pointer())
        return self.b.load(p, align=1)

    def load_a(self, ptr, off):
        """4 bytes at ``ptr + off`` as i32."""
        p = self.b.bitcast(self.b.gep(ptr, [off]), _I32.as_pointer())
        return self.b.load(p, align=1)

    def step(self, acc, a_word, b_bytes):
        """acc (<16 x i32>) += per-column dot of 4 uint8 (a_word) and 4 int8 (b_bytes)."""
        b = self.b
        if self.kind == "vnni":
            av = b.insert_element(ir.Constant(_V16, ir.Undefined), a_word, ir.Constant(_I32, 0))
            av = b.shuffle_vector(av, ir.Constant(_V16, ir.Undefined), ir.Constant(_V16, [0] * 16))
            bv = b.bitcast(b_bytes, _V16)
            return b.call(self.dp, [acc, av, bv])
        a4 = b.bitcast(a_word, ir.VectorType(_I8, 4))
        if self.kind == "avx2":
            v16i8, v16i16 = ir.VectorType(_I8, 16), ir.VectorType(_I16, 16)
            a16 = b.shuffle_vector(a4, ir.Constant(ir.VectorType(_I8, 4), ir.Undefined),
                                   ir.Constant(ir.VectorType(_I32, 16), [i % 4 for i in range(16)]))
            a16 = b.zext(a16, v16i16)
            parts = []
            for q in range(4):  # 4 columns x 4 k per 16-byte quarter
                bq = b.shuffle_vector(b_bytes, ir.Constant(ir.VectorType(_I8, 64), ir.Undefined),
                                      ir.Constant(ir.VectorType(_I32, 16),
                                                  list(range(16 * q, 16 * q + 16))))
                prod = b.call(self.pmadd, [a16, b.sext(bq, v16i16)])  # <8 x i32>: pair sums
                parts.append(prod)
            # lanes (2c, 2c+1) of quarter q hold column 4q+c's two pair sums
            lo = b.shuffle_vector(parts[0], parts[1], ir.Constant(_V16, list(range(16))))
            hi = b.shuffle_vector(parts[2], parts[3], ir.Constant(_V16, list(range(16))))
            both = b.shuffle_vector(lo, hi, ir.Constant(ir.VectorType(_I32, 32), list(range(32))))
            ev = b.shuffle_vector(both, both, ir.Constant(_V16, list(range(0, 32, 2))))
            od = b.shuffle_vector(both, both, ir.Constant(_V16, list(range(1, 32, 2))))
            return b.add(acc, b.add(ev, od))
        # portable: widen to i32, multiply, sum each group of 4 lanes
        v64i32 = ir.VectorType(_I32, 64)
        a64 = b.shuffle_vector(a4, ir.Constant(ir.VectorType(_I8, 4), ir.Undefined),
                               ir.Constant(ir.VectorType(_I32, 64), [i % 4 for i in range(64)]))
        prod = b.mul(b.zext(a64, v64i32), b.sext(b_bytes, v64i32))
        total = acc
        for t in range(4):
            lane = b.shuffle_vector(prod, prod, ir.Constant(_V16, list(range(t, 64, 4))))
            total = b.add(total, lane)
        return total


# Epilogue descriptor: int64 fields shared by every tile of one call (see gemm._launch).
DESC_COL_CORR, DESC_BIAS, DESC_MULT, DESC_OUT, DESC_LDO, DESC_RELU, DESC_ZP_BITS, \
    DESC_LO_BITS = range(8)
DESC_SIZE = 8
MODE_TILE, MODE_U8, MODE_F32, MODE_I32 = 0, 1, 2, 3


def splat(builder, v, vty):
    """``v`` in every lane of the 16-lane vector type ``vty``."""
    u = builder.insert_element(ir.Constant(vty, ir.Undefined), v, ir.Constant(_I32, 0))
    return builder.shuffle_vector(u, ir.Constant(vty, ir.Undefined),
                                  ir.Constant(_V16, [0] * 16))


def vec_at(builder, addr, index, vty, elem_bytes):
    """A ``vty`` pointer to element ``index`` (``elem_bytes`` each) of the array at
    integer address ``addr``."""
    return builder.inttoptr(builder.add(addr, builder.mul(index, _const(elem_bytes))),
                            vty.as_pointer())


def u8_codes(builder, acc, bias, mult, bounds):
    """The static uint8 rule on 16 int32 sums ``acc`` (corrections applied): the 16
    codes ``clamp(rint((f32(acc) + bias) * mult) + zp, lo, 255)``; ``bounds`` is
    ``(zp, 255 - zp, lo - zp)`` as vectors (:func:`desc_u8_bounds`). Kernels written in
    Numba use the scalar twin :func:`numq.kernels._requant.u8_code`.

    Computed as ``rint(clamp(y, lo - zp, 255 - zp)) + zp``: the same value (the bounds
    are integers; NaN goes to lo either way), with the rounding one conversion
    (``llvm.lrint``: ``cvtps2dq``) instead of a round, an add and a truncation.
    """
    v16f = ir.VectorType(ir.FloatType(), 16)
    zp_i, top, bot = bounds
    x = builder.fmul(builder.fadd(builder.sitofp(acc, v16f), bias), mult)
    x = builder.select(builder.fcmp_ordered("<", top, x), top, x)   # NaN passes
    x = builder.select(builder.fcmp_ordered(">", x, bot), x, bot)   # NaN -> bot
    lrint = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V16, [v16f]), "llvm.lrint.v16i32.v16f32")
    return builder.trunc(builder.add(builder.call(lrint, [x]), zp_i),
                         ir.VectorType(_I8, 16))


def desc_u8_bounds(builder, field):
    """``(zp, 255 - zp, lo - zp)`` as 16-lane vectors (int32, float32, float32) for
    :func:`u8_codes`, from an epilogue descriptor's zero point and lower bound."""
    f32 = ir.FloatType()
    v16f = ir.VectorType(f32, 16)
    zp = builder.bitcast(builder.trunc(field(DESC_ZP_BITS), _I32), f32)
    lo = builder.bitcast(builder.trunc(field(DESC_LO_BITS), _I32), f32)
    return (splat(builder, builder.fptosi(zp, _I32), _V16),
            splat(builder, builder.fsub(ir.Constant(f32, 255.0), zp), v16f),
            splat(builder, builder.fsub(lo, zp), v16f))


def _epilogue(builder, mr, final, c, mode_v, desc_int, r0_v, j0_v):
    """Write the tile: raw to ``c`` (MODE_TILE) or finished into the output (full strips).

    Output modes (symmetric weights only: no row terms) apply ``acc - col_corr[j]``
    (int32 wrap-around, as fbgemm) and then: uint8 requantization (:func:`u8_codes`),
    float32 ``fma(f32(acc), mult, bias)`` (+ ReLU), or the int32 value. Each float
    operation is a separately rounded IEEE op, as in the plain-Numba epilogue.
    """
    fn = builder.function
    desc = builder.inttoptr(desc_int, _I64.as_pointer())

    def field(i):
        return builder.load(builder.gep(desc, [_const(i)]))

    blocks = {m: fn.append_basic_block(f"epi.{m}") for m in ("tile", "u8", "f32", "i32")}
    done = fn.append_basic_block("epi.done")
    sw = builder.switch(mode_v, blocks["tile"])
    sw.add_case(ir.Constant(_I64, MODE_U8), blocks["u8"])
    sw.add_case(ir.Constant(_I64, MODE_F32), blocks["f32"])
    sw.add_case(ir.Constant(_I64, MODE_I32), blocks["i32"])

    builder.position_at_end(blocks["tile"])
    for r in range(mr):
        for h in range(2):
            p = builder.bitcast(builder.gep(c, [_const(r * NR + 16 * h)]), _V16.as_pointer())
            builder.store(final[2 * r + h], p, align=4)
    builder.branch(done)

    # Only the symmetric-weight case (no row terms) is fused: it is the common one, and
    # each fused body costs compile time in all 8 row counts; drivers finish tiles with
    # weight zero points in the Numba epilogue.
    for mode in ("u8", "f32", "i32"):
        builder.position_at_end(blocks[mode])
        _epilogue_body(builder, mr, final, mode, field, r0_v, j0_v)
        builder.branch(done)
    builder.position_at_end(done)


def _epilogue_body(builder, mr, final, mode, field, r0_v, j0_v):
    """One output mode's vector epilogue for the ``mr`` rows of a full 32-column tile."""
    f32 = ir.FloatType()
    v16f = ir.VectorType(f32, 16)
    v16b = ir.VectorType(_I8, 16)
    cc_a = field(DESC_COL_CORR)
    bias_a, mult_a, out_a, ldo = field(DESC_BIAS), field(DESC_MULT), field(DESC_OUT), \
        field(DESC_LDO)
    relu = builder.icmp_signed("!=", field(DESC_RELU), _const(0))
    if mode == "u8":
        bounds = desc_u8_bounds(builder, field)
    for h in range(2):
        j = builder.add(j0_v, _const(16 * h))
        cc = builder.load(vec_at(builder, cc_a, j, _V16, 4), align=4)
        if mode != "i32":
            bias = builder.load(vec_at(builder, bias_a, j, v16f, 4), align=4)
            mult = builder.load(vec_at(builder, mult_a, j, v16f, 4), align=4)
        for r in range(mr):
            i = builder.add(r0_v, _const(r))
            acc = builder.sub(final[2 * r + h], cc)
            o = builder.add(builder.mul(i, ldo), j)
            if mode == "i32":
                builder.store(acc, vec_at(builder, out_a, o, _V16, 4), align=4)
                continue
            if mode == "u8":
                builder.store(u8_codes(builder, acc, bias, mult, bounds),
                              vec_at(builder, out_a, o, v16b, 1), align=1)
            else:
                fma = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(v16f, [v16f, v16f, v16f]),
                    "llvm.fma.v16f32")
                x = builder.call(fma, [builder.sitofp(acc, v16f), mult, bias])
                zero = ir.Constant(v16f, [0.0] * 16)
                xr = builder.select(builder.fcmp_ordered(">", x, zero), x, zero)
                x = builder.select(relu, xr, x)
                builder.store(x, vec_at(builder, out_a, o, v16f, 4), align=4)


@intrinsic
def epi_u8_rows(typingctx, tile_addr, rows_addr, nrows, j0, desc_addr):
    """The uint8 epilogue of up to 16 rows of a full 32-column tile, each to its own
    output row: row ``r`` (int32 sums at ``tile + 128*r``) goes to output row
    ``rows[r]`` (int64 array at ``rows_addr``), skipped when negative. The same rule and
    descriptor as the microkernels' fused epilogue; one call per 16-pixel conv tile
    instead of one per run of pixels inside an output row.
    """
    sig = types.void(types.int64, types.int64, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        tile_, rows_, n_, j0_, desc_ = args
        f32 = ir.FloatType()
        v16f = ir.VectorType(f32, 16)
        v16b = ir.VectorType(_I8, 16)
        desc = builder.inttoptr(desc_, _I64.as_pointer())

        def field(i):
            return builder.load(builder.gep(desc, [_const(i)]))

        out_a, ldo = field(DESC_OUT), field(DESC_LDO)
        bounds = desc_u8_bounds(builder, field)
        par = []
        for h in range(2):
            j = builder.add(j0_, _const(16 * h))

            def load(a, vty):
                return builder.load(vec_at(builder, a, j, vty, 4), align=4)
            par.append((j, load(field(DESC_COL_CORR), _V16), load(field(DESC_BIAS), v16f),
                        load(field(DESC_MULT), v16f)))
        rows = builder.inttoptr(rows_, _I64.as_pointer())
        with cgutils.for_range(builder, n_) as loop:
            r = loop.index
            orow = builder.load(builder.gep(rows, [r]))
            with builder.if_then(builder.icmp_signed(">=", orow, _const(0))):
                base = builder.mul(orow, ldo)
                for h in range(2):
                    j, cc, bias, mult = par[h]
                    t = builder.add(builder.mul(r, _const(NR)), _const(16 * h))
                    acc = builder.load(vec_at(builder, tile_, t, _V16, 4), align=4)
                    q = u8_codes(builder, builder.sub(acc, cc), bias, mult, bounds)
                    builder.store(q, vec_at(builder, out_a, builder.add(base, j), v16b, 1),
                                  align=1)
        return context.get_dummy_value()

    return sig, codegen


def _make_micro(mr, kind_wanted):
    """Build the intrinsic for ``mr`` rows; ``kind_wanted`` is "vnni" or "avx2"."""
    ku = _ku_for(mr)

    @intrinsic
    def micro(typingctx, a_addr, b_addr, nb, k4, c_addr, accumulate, mode, desc_addr, r0, j0):
        sig = types.void(types.uintp, types.uintp, types.intp, types.intp, types.uintp,
                         types.boolean, types.intp, types.uintp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            feats = cpu_features()
            kind = kind_wanted
            if kind == "vnni" and not {"avx512f", "avx512bw", "avx512vnni"} <= feats:
                kind = "portable"
            if kind == "avx2" and "avx2" not in feats:
                kind = "portable"
            em = _Emit(builder, kind)
            a_int, b_int, nb_v, k4_v, c_int, acc_flag, mode_v, desc_int, r0_v, j0_v = args
            a = builder.inttoptr(a_int, _I8.as_pointer())
            bp = builder.inttoptr(b_int, _I8.as_pointer())
            c = builder.inttoptr(c_int, _I32.as_pointer())
            zero = ir.Constant(_V16, [0] * 16)
            nacc = 2 * mr

            def body(kk, accs):
                """One k group for one accumulator set: returns the new set."""
                boff = builder.mul(kk, nb_v)
                if _PREFETCH:
                    # weights stream from L2/L3 once per strip: ask for them early
                    pf = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(ir.VoidType(), [_I8.as_pointer(), _I32,
                                                                       _I32, _I32]),
                        "llvm.prefetch.p0i8")
                    ahead = builder.gep(bp, [builder.add(boff, _const(_PREFETCH))])
                    builder.call(pf, [ahead, ir.Constant(_I32, 0), ir.Constant(_I32, 3),
                                      ir.Constant(_I32, 1)])
                    builder.call(pf, [builder.gep(ahead, [_const(64)]), ir.Constant(_I32, 0),
                                      ir.Constant(_I32, 3), ir.Constant(_I32, 1)])
                b0 = em.load_b(bp, boff)
                b1 = em.load_b(bp, builder.add(boff, _const(64)))
                out = []
                for r in range(mr):
                    # packed A: group kk holds 4 bytes of each of the tile's 8 rows
                    aoff = builder.add(_const(4 * r), builder.mul(kk, _const(4 * MR)))
                    aw = em.load_a(a, aoff)
                    out.append(em.step(accs[2 * r], aw, b0))
                    out.append(em.step(accs[2 * r + 1], aw, b1))
                return out

            def loop(start, stop, step, init_sets, name):
                """Counted loop kk = start, start+step, ... < stop; returns final sets."""
                pre = builder.block
                head = builder.append_basic_block(name + ".head")
                lp = builder.append_basic_block(name + ".body")
                done = builder.append_basic_block(name + ".done")
                builder.branch(head)
                builder.position_at_end(head)
                kk = builder.phi(_I64)
                kk.add_incoming(start, pre)
                sets = []
                for s in init_sets:
                    ps = []
                    for v in s:
                        p = builder.phi(_V16)
                        p.add_incoming(v, pre)
                        ps.append(p)
                    sets.append(ps)
                more = builder.icmp_signed("<=", builder.add(kk, _const(step)), stop)
                builder.cbranch(more, lp, done)
                builder.position_at_end(lp)
                new_sets = [body(builder.add(kk, _const(u)), sets[u]) for u in range(len(sets))]
                kk_next = builder.add(kk, _const(step))
                end = builder.block
                kk.add_incoming(kk_next, end)
                for ps, ns in zip(sets, new_sets):
                    for p, v in zip(ps, ns):
                        p.add_incoming(v, end)
                builder.branch(head)
                builder.position_at_end(done)
                return kk, sets

            # accumulate: start from the tile already in C (K split into blocks)
            acc_bit = builder.trunc(acc_flag, ir.IntType(1)) if acc_flag.type != ir.IntType(1) \
                else acc_flag
            first = []
            for r in range(mr):
                for h in range(2):
                    p = builder.bitcast(builder.gep(c, [_const(r * NR + 16 * h)]), _V16.as_pointer())
                    first.append(builder.select(acc_bit, builder.load(p, align=4), zero))
            sets0 = [first] + [[zero] * nacc for _ in range(ku - 1)]
            if ku > 1:
                kk, sets = loop(_const(0), k4_v, ku, sets0, "main")
                merged = sets[0]
                for s in sets[1:]:
                    merged = [builder.add(x, y) for x, y in zip(merged, s)]
                _, tail = loop(kk, k4_v, 1, [merged], "tail")
                final = tail[0]
            else:
                _, sets = loop(_const(0), k4_v, 1, sets0, "main")
                final = sets[0]
            if kind_wanted == "vnni":
                _epilogue(builder, mr, final, c, mode_v, desc_int, r0_v, j0_v)
            else:   # the AVX2 fallback always stores the tile (drivers finish it)
                for r in range(mr):
                    for h in range(2):
                        p = builder.bitcast(builder.gep(c, [_const(r * NR + 16 * h)]),
                                            _V16.as_pointer())
                        builder.store(final[2 * r + h], p, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return micro


# One module-level name per (variant, mr): Numba resolves globals at compile time.
vnni1, vnni2, vnni3, vnni4, vnni5, vnni6, vnni7, vnni8 = (
    _make_micro(mr, "vnni") for mr in range(1, MR + 1))
avx2_1, avx2_2, avx2_3, avx2_4, avx2_5, avx2_6, avx2_7, avx2_8 = (
    _make_micro(mr, "avx2") for mr in range(1, MR + 1))


def fetch_add(counter):
    """Add 1 to ``counter[0]`` (int64 array) and return the previous value.

    In kernels this is one atomic ``lock xadd`` (threads share the counter); the Python
    body runs only without the JIT (``NUMBA_DISABLE_JIT=1``, single-threaded).
    """
    old = int(counter[0])
    counter[0] = old + 1
    return old


@intrinsic
def _fetch_add_llvm(typingctx, addr):
    sig = types.int64(types.uintp)

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], _I64.as_pointer())
        return builder.atomic_rmw("add", ptr, ir.Constant(_I64, 1), "monotonic")

    return sig, codegen


@overload(fetch_add, jit_options={"cache": True})
def _fetch_add_impl(counter):
    def impl(counter):
        return _fetch_add_llvm(counter.ctypes.data)
    return impl


# ------------------------------------------------------------------------- AMX

AMX_KG = 16      # k groups of 4 per tile step (64 k)


def _emit_amx(builder, a, lda, a_offset, nsteps, b, nb, c):
    """IR of a 16-row x 32-column AMX tile product (see :func:`amx16`); ``a_offset(kk)``
    is step ``kk``'s byte offset into the A rows at ``a``."""
    p8 = _I8.as_pointer()
    void = ir.VoidType()

    def fn(name, argtys):
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(void, argtys),
                                              name)

    def tid(t):
        return ir.Constant(_I8, t)

    load = fn("llvm.x86.tileloadd64", [_I8, p8, _I64])
    store = fn("llvm.x86.tilestored64", [_I8, p8, _I64])
    dp = fn("llvm.x86.tdpbusd", [_I8, _I8, _I8])
    zero = fn("llvm.x86.tilezero", [_I8])
    # tiles: C in 0 (columns 0-15) and 1 (16-31), A in 4, B in 6 and 7
    builder.call(zero, [tid(0)])
    builder.call(zero, [tid(1)])
    bstep = builder.mul(nb, _const(AMX_KG))
    with cgutils.for_range(builder, nsteps) as loop:
        kk = loop.index
        b0 = builder.add(b, builder.mul(kk, bstep))
        builder.call(load, [tid(4), builder.inttoptr(builder.add(a, a_offset(kk)), p8), lda])
        builder.call(load, [tid(6), builder.inttoptr(b0, p8), nb])
        builder.call(load, [tid(7), builder.inttoptr(builder.add(b0, _const(64)), p8), nb])
        builder.call(dp, [tid(0), tid(4), tid(6)])
        builder.call(dp, [tid(1), tid(4), tid(7)])
    ldc = _const(4 * NR)
    builder.call(store, [tid(0), builder.inttoptr(c, p8), ldc])
    builder.call(store, [tid(1), builder.inttoptr(builder.add(c, _const(64)), p8), ldc])


@intrinsic
def amx16(typingctx, a_addr, lda, b_addr, nb, kchunks, c_addr):
    """C (16 x 32 int32, row stride 128 bytes) = A (16 rows, stride ``lda``) x one strip.

    Needs the tile configuration loaded by :func:`amx_begin` in this thread.
    ``tdpbusd`` on two accumulator tiles (columns 0-15 / 16-31); per step of 64 k it
    loads one A tile (16 rows x 64 bytes) and two B tiles: 16 k groups of the strip,
    columns 0-15 at +0 and 16-31 at +64 of each ``nb``-byte group. A's columns past K
    (and rows past M) must be zero; B may be read past its last group (the products with
    A's zero columns vanish). On a CPU without AMX it compiles to a trap (drivers never
    call it there).
    """
    sig = types.void(types.uintp, types.intp, types.uintp, types.intp, types.intp, types.uintp)

    def codegen(context, builder, signature, args):
        a_, lda_, b_, nb_, kch_, c_ = args
        _amx_or_trap(builder, lambda: _emit_amx(
            builder, a_, lda_, lambda kk: builder.mul(kk, _const(4 * AMX_KG)), kch_, b_,
            nb_, c_))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def amx_conv16(typingctx, a0_addr, lda, offs_addr, nsteps, b_addr, nb, c_addr):
    """:func:`amx16` for an implicit-GEMM convolution: the A rows of step ``kk`` start
    ``offs[kk]`` bytes (int64 array at ``offs_addr``) after ``a0``, ``lda`` bytes apart:
    one kernel tap's 64 input channels of 16 output pixels, read straight from the
    padded channels-last input. C is 16 x 32 int32 as :func:`amx16`'s."""
    sig = types.void(types.uintp, types.intp, types.uintp, types.intp, types.uintp, types.intp,
                     types.uintp)

    def codegen(context, builder, signature, args):
        a0, lda_, offs_, n_, b_, nb_, c_ = args
        offs = builder.inttoptr(offs_, _I64.as_pointer())
        _amx_or_trap(builder, lambda: _emit_amx(
            builder, a0, lda_, lambda kk: builder.load(builder.gep(offs, [kk])), n_, b_,
            nb_, c_))
        return context.get_dummy_value()

    return sig, codegen


def _amx_or_trap(builder, emit):
    if {"amx-tile", "amx-int8"} <= cpu_features():
        emit()
    else:
        trap = cgutils.get_or_insert_function(builder.module,
                                              ir.FunctionType(ir.VoidType(), []), "llvm.trap")
        builder.call(trap, [])


@intrinsic
def amx_begin(typingctx, cfg_addr):
    """Load the tile configuration (64 bytes at ``cfg_addr``) for this thread."""
    sig = types.void(types.uintp)

    def codegen(context, builder, signature, args):
        p8 = _I8.as_pointer()
        f = cgutils.get_or_insert_function(builder.module,
                                           ir.FunctionType(ir.VoidType(), [p8]),
                                           "llvm.x86.ldtilecfg")
        _amx_or_trap(builder, lambda: builder.call(f, [builder.inttoptr(args[0], p8)]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def amx_end(typingctx):
    """Release this thread's tile state (cheaper context switches afterwards)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                           "llvm.x86.tilerelease")
        _amx_or_trap(builder, lambda: builder.call(f, []))
        return context.get_dummy_value()

    return sig, codegen


def copy_bytes(dst_addr, src_addr, nbytes):
    """``memcpy(dst, src, nbytes)`` on raw addresses (non-overlapping buffers).

    In kernels it is ``llvm.memcpy``; in the interpreter (``NUMBA_DISABLE_JIT=1``),
    ``ctypes.memmove``.
    """
    ctypes.memmove(int(dst_addr), int(src_addr), int(nbytes))


@intrinsic
def _copy_bytes_llvm(typingctx, dst_addr, src_addr, nbytes):
    sig = types.void(types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        d, s_, n = args
        cgutils.raw_memcpy(builder, builder.inttoptr(d, _I8.as_pointer()),
                           builder.inttoptr(s_, _I8.as_pointer()), n, 1)
        return context.get_dummy_value()

    return sig, codegen


@overload(copy_bytes, jit_options={"cache": True})
def _copy_bytes_jit(dst_addr, src_addr, nbytes):
    return lambda dst_addr, src_addr, nbytes: _copy_bytes_llvm(np.int64(dst_addr),
                                                               np.int64(src_addr),
                                                               np.int64(nbytes))
