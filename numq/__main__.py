"""``python -m numq``: environment report and a quantize/dequantize round trip."""
import os
import platform
import sys
import time

import numpy as np


def _cache_dir():
    from numba.core import config
    if config.CACHE_DIR:
        return config.CACHE_DIR
    import numq.kernels
    return os.path.join(os.path.dirname(numq.kernels.__file__), "__pycache__")


def _round_trip(numq, n, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) / (dtype.qmax - dtype.qmin)
    zp = int(np.clip(round(dtype.qmin - lo / scale), dtype.qmin, dtype.qmax))
    t0 = time.perf_counter()
    q = numq.quantize_per_tensor(x, scale, zp, dtype)
    t1 = time.perf_counter()
    y = numq.dequantize(q)
    t2 = time.perf_counter()
    err = float(np.max(np.abs(y - x)))
    # half a step, plus float32 rounding of the dequantized value
    bound = scale / 2 + float(np.max(np.abs(x))) * float(np.finfo(np.float32).eps)
    return scale, zp, err, bound, (t1 - t0) * 1e3, (t2 - t1) * 1e3


def main():
    import llvmlite
    import numba

    import numq

    print("numq environment")
    print(f"  numq {numq.__version__}  numpy {np.__version__}  numba {numba.__version__}  "
          f"llvmlite {llvmlite.__version__}  python {platform.python_version()}")
    print(f"  cpu: {numq._isa.cpu_name()}  kernel ISA variant: {numq.isa()}"
          f"  (NUMQ_ISA={os.environ.get('NUMQ_ISA', '') or 'unset'})")
    print(f"  threads: {numq.get_num_threads()}  cache folder: {_cache_dir()}")

    print("\nquantize -> dequantize round trip (16M standard-normal float32 values)")
    for dtype in (numq.quint8, numq.qint8):
        scale, zp, err, bound, tq, tdq = _round_trip(numq, 1 << 24, dtype)
        print(f"  {dtype!r:13} {'first call (compile or cache load)':36} "
              f"quantize {tq:8.2f} ms  dequantize {tdq:8.2f} ms")
        runs = [_round_trip(numq, 1 << 24, dtype) for _ in range(5)]
        tq, tdq = (float(np.median([r[k] for r in runs])) for k in (4, 5))
        print(f"  {dtype!r:13} {'warm (median of 5)':36} quantize {tq:8.2f} ms  dequantize {tdq:8.2f} ms")
        ok = err <= bound
        print(f"  {dtype!r:13} scale {scale:.6g} zero_point {zp}: max |x - dq(q(x))| = {err:.6g}"
              f" (bound scale/2 + ulp = {bound:.6g}) {'OK' if ok else 'FAIL'}")
        if not ok:
            return 1
    if _int8_linear(numq) != 0:
        return 1
    print(f"\n  threading layer: {numba.threading_layer()}")
    return 0


def _int8_linear(numq):
    """Static int8 linear (M=256, K=N=1024): speed, and the same bits on every variant."""
    from numq import _isa
    from numq.kernels import gemm
    rng = np.random.default_rng(0)
    m, k, n = 256, 1024, 1024
    x = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    packed = gemm.pack_linear_weight(w, rng.random(n) * 0.01 + 1e-3, np.zeros(n, np.int64))
    bias = rng.standard_normal(n).astype(np.float32)
    print(f"\nint8 linear (uint8 {m}x{k} @ int8 {n}x{k} -> uint8, per-channel weights)")
    t0 = time.perf_counter()
    y = gemm.qlinear(x, 0.02, 3, packed, bias, 0.5, 128)
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        gemm.qlinear(x, 0.02, 3, packed, bias, 0.5, 128)
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    print(f"  variant {_isa.active():12} first call {first:8.2f} ms  warm {t * 1e3:.3f} ms "
          f"({2 * m * k * n / t / 1e9:.0f} GOPS)")
    acc = (x[:8].astype(np.int64) - 3) @ w.astype(np.int64).T
    same = np.array_equal(gemm.qlinear_int32(x[:8], 3, packed), acc)
    for v in _isa.supported_variants():
        with _isa.forced(v):
            same = same and np.array_equal(gemm.qlinear(x[:16], 0.02, 3, packed, bias, 0.5, 128),
                                           y[:16])
    print(f"  exact int32 sums and identical bits on {', '.join(_isa.supported_variants())}: "
          f"{'OK' if same else 'FAIL'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
