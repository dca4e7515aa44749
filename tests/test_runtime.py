"""Runtime behaviour: import cost, the on-disk kernel cache, threads, NUMQ_ISA.

Most checks run in fresh subprocesses (a clean import, an environment variable read at
start-up, a crash that must fail the test instead of killing pytest). Each costs about
half a second, so there are few of them.
"""
import json
import os
import statistics
import subprocess
import sys
import textwrap

import numba
import pytest

import numq
from numq import _isa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, env=None, timeout=300):
    """Run ``code`` in a fresh interpreter; return its last stdout line parsed as JSON."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("NUMQ_ISA", "NUMBA_DISABLE_JIT", "NUMBA_THREADING_LAYER")}
    full_env.update(env or {})
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=full_env,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"subprocess failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ import

IMPORT_PROBE = """
    import json, sys, time
    t0 = time.perf_counter()
    import numba
    t1 = time.perf_counter()
    import numq
    t2 = time.perf_counter()
    from numba.core.dispatcher import Dispatcher
    compiled, seen = {}, set()
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] != "numq" or mod is None:
            continue
        for attr, obj in vars(mod).items():
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                if obj.overloads:
                    compiled[f"{name}.{attr}"] = len(obj.overloads)
    print(json.dumps({"numba": t1 - t0, "numq": t2 - t1, "dispatchers": len(seen),
                      "compiled": compiled,
                      "qpt8": len(numq.kernels.quantize._qpt8.overloads)}))
"""


def test_import_compiles_nothing_and_is_cheap():
    runs = [run_python(IMPORT_PROBE) for _ in range(3)]
    for r in runs:
        assert r["dispatchers"] >= 10      # the walk really finds numq's kernels
        assert r["qpt8"] == 0
        assert r["compiled"] == {}, f"import numq compiled: {r['compiled']}"
    extra = statistics.median(r["numq"] for r in runs)
    assert extra < 0.5, f"import numq adds {extra:.3f} s over import numba"


CACHE_PROBE = """
    import json, time
    import numpy as np
    import numba
    import numq
    from numq.kernels import quantize as K
    x = np.linspace(-3, 3, 1000, dtype=np.float32)
    t = time.perf_counter()
    if INIT_NUMBA:  # Numba's own once-per-process set-up, paid by any first jitted call
        from numba.core.registry import cpu_target
        cpu_target.target_context.refresh()
        cpu_target.typing_context.refresh()
    t1 = time.perf_counter()
    q = numq.quantize_per_tensor(x, 0.05, 3, numq.quint8)
    t2 = time.perf_counter()
    s = K._qpt8.stats
    print(json.dumps({"numba_init": t1 - t, "first": t2 - t1,
                      "hits": sum(s.cache_hits.values()), "misses": sum(s.cache_misses.values()),
                      "ints": q.int_repr()[::97].tolist()}))
"""


def test_cached_kernel_first_call_is_fast(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    warm = run_python("INIT_NUMBA = False\n" + textwrap.dedent(CACHE_PROBE), env)
    assert warm["misses"] >= 1 and warm["hits"] == 0      # compiled, cache written
    assert any(tmp_path.rglob("*.nbi")), "no Numba cache index in NUMBA_CACHE_DIR"
    cold = run_python("INIT_NUMBA = True\n" + textwrap.dedent(CACHE_PROBE), env)
    assert cold["hits"] >= 1 and cold["misses"] == 0      # a new process loads the cache
    assert cold["ints"] == warm["ints"]
    # numq's share of the first call: loading its kernels from the cache. Numba's own
    # first-use set-up (registries; it imports scipy.linalg to probe BLAS when SciPy is
    # installed) is measured apart: it is the same for any Numba library (~0.3-1 s).
    assert cold["first"] < 0.5, (f"first call with a warm cache took {cold['first']:.3f} s "
                                 f"(after {cold['numba_init']:.3f} s of Numba set-up)")


NOJIT_PROBE = """
    import json
    import numpy as np
    import numq
    rng = np.random.default_rng(3)
    k = rng.integers(-40, 40, 96)
    x = np.concatenate([((k + 0.5) * 0.5).astype(np.float32),
                        (rng.standard_normal(40) * 30).astype(np.float32),
                        np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, -0.0, 3e9, -3e9],
                                 np.float32)])
    out = {}
    for name in ("quint8", "qint8", "qint32", "quint4x2"):
        dt = getattr(numq, name)
        q = numq.quantize_per_tensor(x, 0.5, 3, dt)
        out["pt_" + name] = [q.int_repr().tolist(), q.dequantize().view(np.int32).tolist()]
        if name != "quint4x2":
            for axis, xx in ((0, x.reshape(8, -1)), (1, x.reshape(-1, 8))):
                C = xx.shape[axis]
                q = numq.quantize_per_channel(xx, np.linspace(0.3, 2.0, C), np.arange(C) % 5,
                                              axis, dt)
                out[f"pc_{name}_{axis}"] = [q.int_repr().tolist(),
                                            q.dequantize().view(np.int32).tolist()]
        if name in ("quint8", "quint4x2"):
            q = numq.quantize_per_channel(x.reshape(8, -1), np.linspace(0.3, 2.0, 8),
                                          np.linspace(-1, 9, 8).astype(np.float32), 0, dt)
            out["pcf_" + name] = [q.int_repr().tolist(), q.dequantize().view(np.int32).tolist()]
    from numq.kernels import gemm
    xq = rng.integers(0, 256, (9, 37), dtype=np.uint8)
    p = gemm.pack_linear_weight(rng.integers(-128, 128, (35, 37), dtype=np.int8),
                                rng.random(35) + 0.01, rng.integers(-3, 3, 35))
    out["gemm_u8"] = gemm.qlinear(xq, 0.05, 7, p, rng.standard_normal(35).astype(np.float32),
                                  0.9, 4, relu=True).tolist()
    out["gemm_f32"] = gemm.qlinear_dynamic(rng.standard_normal((9, 37)).astype(np.float32), p,
                                           None).view(np.int32).tolist()
    # 3x3 depthwise on a channels-last input (ring of padded rows, vector inner loop;
    # C = 20: a full and a masked 16-channel block)
    from numq.kernels import conv as kconv
    dww = rng.integers(-128, 128, (20, 1, 3, 3)).astype(np.int8)
    dwp = kconv.pack_conv_weight(dww, rng.random(20) * 0.02 + 0.01, np.zeros(20, np.int64), 20)
    dwx = np.ascontiguousarray(rng.integers(0, 256, (1, 5, 4, 20)).astype(np.uint8))
    out["depthwise3x3"] = np.asarray(kconv.qconv(
        dwx.transpose(0, 3, 1, 2), 0.05, 9, dwp, rng.standard_normal(20).astype(np.float32),
        (1, 1), (1, 1), (1, 1), 0.3, 100)).tolist()
    print(json.dumps(out))
"""


def test_uncompiled_twins_give_the_same_bits():
    # Under NUMBA_DISABLE_JIT=1 every kernel runs as Python (fma32 as exact rational
    # arithmetic): the same bits as the compiled kernels.
    nojit = run_python(NOJIT_PROBE, {"NUMBA_DISABLE_JIT": "1"})
    jit = run_python(NOJIT_PROBE)
    assert nojit.keys() == jit.keys() and len(jit) == 15
    for key in jit:
        assert nojit[key] == jit[key], key


# ----------------------------------------------------------------------------- threads

def test_set_and_get_num_threads():
    old = numq.get_num_threads()
    try:
        numq.set_num_threads(1)
        assert numq.get_num_threads() == 1 == numba.get_num_threads()
        top = numba.config.NUMBA_NUM_THREADS
        numq.set_num_threads(top)
        assert numq.get_num_threads() == top
        import numpy as np
        numq.set_num_threads(np.int64(1))   # NumPy integers are integers
        assert numq.get_num_threads() == 1
    finally:
        numq.set_num_threads(old)
    assert numq.get_num_threads() == old


@pytest.mark.parametrize("bad, exc", [
    (0, ValueError), (-1, ValueError), (numba.config.NUMBA_NUM_THREADS + 1, ValueError),
    (1.0, TypeError), ("2", TypeError), (True, TypeError), (None, TypeError),
])
def test_set_num_threads_bad_input(bad, exc):
    old = numq.get_num_threads()
    with pytest.raises(exc, match=r"^n\b"):
        numq.set_num_threads(bad)
    assert numq.get_num_threads() == old


CONCURRENCY_PROBE = """
    import json, threading
    import numpy as np
    import numba
    import numq
    from numq.kernels import PARALLEL_MIN

    rng = np.random.default_rng(0)
    n = 2 * PARALLEL_MIN + 9
    x = ((rng.integers(-300, 300, n) + 0.5) * 0.5).astype(np.float32)  # ties everywhere
    x[::101] = np.nan
    scales, zps = np.linspace(0.1, 1.0, 8), np.arange(8)

    def work():
        a = numq.quantize_per_tensor(x, 0.5, 3, numq.quint8)
        b = numq.quantize_per_channel(x[: n - n % 8].reshape(-1, 8), scales, zps, 1, numq.qint8)
        c = numq.quantize_per_tensor(x, 0.5, 7, numq.qint32)
        return [a.int_repr(), b.int_repr(), c.int_repr(), a.dequantize(), b.dequantize(),
                c.dequantize()]

    barrier = threading.Barrier(4)
    results, errors = [[] for _ in range(4)], []

    def thread(i):
        try:
            barrier.wait()          # start together, before any parallel region has run
            for _ in range(5):
                results[i].append(work())
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(repr(e))

    ts = [threading.Thread(target=thread, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ref = work()                    # serial, after the threads
    same = all(all(np.array_equal(r.view(np.uint8), e.view(np.uint8)) for r, e in zip(res, ref))
               for rs in results for res in rs)
    print(json.dumps({"layer": numba.threading_layer(), "errors": errors, "same": same,
                      "calls": sum(len(r) for r in results)}))
"""


@pytest.mark.parametrize("layer", [None, "workqueue"])
def test_four_python_threads_give_identical_results(layer):
    # Numba's workqueue layer aborts the process on concurrent parallel regions unless
    # numq serialises them; the default layer here (omp or tbb) runs them concurrently.
    env = {"NUMBA_THREADING_LAYER": layer} if layer else {}
    r = run_python(CONCURRENCY_PROBE, env)
    assert r["errors"] == []
    assert r["calls"] == 20 and r["same"]
    if layer:
        assert r["layer"] == layer


# -------------------------------------------------------------------------------- ISA

ISA_PROBE = """
    import json, os, warnings
    import numq
    from numq import _isa

    def probe(value="startup", fake=None):
        # value "startup": the environment the process started with, no reset
        if value != "startup":
            if value is None:
                os.environ.pop("NUMQ_ISA", None)
            else:
                os.environ["NUMQ_ISA"] = value
            _isa.isa.cache_clear()
        real = _isa.cpu_features
        if fake is not None:        # pretend to be a CPU without some features
            _isa.cpu_features = lambda: frozenset(fake)
            _isa.isa.cache_clear()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                out = {"isa": numq.isa(), "again": numq.isa()}
            except Exception as e:
                out = {"error": type(e).__name__, "message": str(e)}
        _isa.cpu_features = real
        out["warnings"] = [str(m.message) for m in w if issubclass(m.category, RuntimeWarning)]
        return out

    avx2_only = ["avx", "avx2", "fma", "sse4.2"]
    print(json.dumps({
        "startup": probe(),
        "unset": probe(None),
        "generic": probe("generic"),
        "avx2": probe("avx2"),
        "avx512_vnni": probe(" AVX512_VNNI "),
        "unsupported": probe("avx512_vnni", fake=avx2_only),
        "invalid": probe("sse9"),
    }))
"""


@pytest.fixture(scope="module")
def isa_runs():
    """Two fresh processes: JIT on with NUMQ_ISA=avx2, JIT off with an invalid NUMQ_ISA."""
    return {"jit": run_python(ISA_PROBE, {"NUMQ_ISA": "avx2"}),
            "nojit": run_python(ISA_PROBE, {"NUMQ_ISA": "sse9", "NUMBA_DISABLE_JIT": "1"})}


def _host_best():
    feats = _isa.cpu_features()
    return next(v for v in reversed(_isa.ISA_VARIANTS) if _isa._supported(v, feats))


def _capped(want):
    """What the host gives for ``want``: (variant, warned)."""
    best = _host_best()
    if _isa.ISA_VARIANTS.index(want) > _isa.ISA_VARIANTS.index(best):
        return best, True
    return want, False


@pytest.mark.parametrize("mode, case, expect", [
    ("jit", "startup", lambda: _capped("avx2")),    # NUMQ_ISA set before the process started
    ("jit", "unset", lambda: (_host_best(), False)),
    ("jit", "generic", lambda: ("generic", False)),
    ("jit", "avx2", lambda: _capped("avx2")),
    ("jit", "avx512_vnni", lambda: _capped("avx512_vnni")),  # case and spaces ignored
    ("jit", "unsupported", lambda: ("avx2", True)),  # warning, then the best below it
    ("jit", "invalid", lambda: ValueError),
    ("nojit", "startup", lambda: ValueError),       # an invalid value is refused even then
    ("nojit", "avx512_vnni", lambda: ("generic", False)),  # intrinsics cannot run uncompiled
    ("nojit", "unset", lambda: ("generic", False)),
])
def test_numq_isa_environment_variable(isa_runs, mode, case, expect):
    r = isa_runs[mode][case]
    want = expect()
    if want is ValueError:
        assert r.get("error") == "ValueError", r
        assert r["message"].startswith("NUMQ_ISA") and "sse9" in r["message"]
        return
    isa, warned = want
    assert r.get("isa") == isa and r["again"] == isa, r
    if warned:
        assert len(r["warnings"]) == 1 and "NUMQ_ISA" in r["warnings"][0], r
        assert isa in r["warnings"][0]
    else:
        assert r["warnings"] == [], r


# ------------------------------------------------------------------------------ memory

MEMORY_PROBE = """
    import json, platform
    import numq._memory as m
    print(json.dumps({"kept": m.KEPT, "glibc": platform.libc_ver()[0] == "glibc"}))
"""


@pytest.mark.parametrize("env, expect", [({}, True), ({"NUMQ_KEEP_MEMORY": "0"}, False)])
def test_keep_freed_memory_policy(env, expect):
    # glibc keeps large freed blocks for reuse unless NUMQ_KEEP_MEMORY=0 (numq/_memory.py)
    r = run_python(MEMORY_PROBE, env)
    assert r["kept"] is (expect and r["glibc"])
