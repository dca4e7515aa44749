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
    print(f"\n  threading layer: {numba.threading_layer()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
