"""Shared set-up for numq's benchmarks (pytest-benchmark).

Run with ``pytest bench --benchmark-only --benchmark-group-by=group`` (see README.md).
Every benchmark puts its implementations (``numq``, ``numpy``, ``torch``) in one group
through the ``measure`` fixture, which records the timings so the terminal summary can
print numq's speed-up over each baseline per group. numq and torch run on 2 threads.

The summary also shows how much CPU *other* processes used while each group ran
(Linux ``/proc/stat``): on a shared 2-core machine that column says whether the
figures can be trusted.
"""
import os
import time

import numba
import pytest

import numq

THREADS = min(2, numba.config.NUMBA_NUM_THREADS)

_RESULTS = pytest.StashKey[dict]()
_POOL_IDLE = 0.3   # seconds of idling before each member (see _measure)


def pytest_configure(config):
    config.stash[_RESULTS] = {}
    numq.set_num_threads(THREADS)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(THREADS)


@pytest.fixture
def measure(benchmark, request):
    """``measure(group, impl, fn)``: time ``fn`` as implementation ``impl`` of ``group``.

    Two untimed calls come first: they compile the Numba kernels (or load them from the
    cache) and touch the inputs, so the timed rounds measure steady-state speed only.
    ``ops`` (optional): integer operations per call (``2*M*K*N`` for a GEMM); when given,
    ``extra_info`` gets ``gops`` (from the median) and the summary adds a throughput
    table comparing numq with the fastest baseline.
    """
    return lambda group, impl, fn, ops=None: _measure(benchmark, request, group, impl, fn,
                                                      ops=ops)


def _cpu_ticks():
    """(busy ticks of the whole machine, ticks of this process, total ticks) or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    t = os.times()
    own = (t.user + t.system) * os.sysconf("SC_CLK_TCK")
    return sum(v) - v[3] - v[4], own, sum(v)


def _other_load(before, after):
    """Share of the machine's CPU time used by other processes between two samples."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, other / (after[2] - before[2]))


def _measure(benchmark, request, group, impl, fn, warmup=2, ops=None):
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    if ops is not None:
        benchmark.extra_info["ops"] = int(ops)
    # the previous member's thread pool (OpenBLAS, torch's or Numba's OpenMP) keeps
    # spinning for a while after its last call and would steal this member's cores
    time.sleep(_POOL_IDLE)
    for _ in range(warmup):
        fn()
    before = _cpu_ticks()
    result = benchmark(fn)
    load = _other_load(before, _cpu_ticks())
    if load is not None:
        benchmark.extra_info["other_load"] = round(load, 3)
    if hasattr(os, "sched_getaffinity"):   # CPUs this process may run on (may change)
        benchmark.extra_info["cpus"] = len(os.sched_getaffinity(0))
    meta = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if meta is not None:
        if ops is not None:
            benchmark.extra_info["gops"] = round(ops / meta.stats.median / 1e9, 1)
        request.config.stash[_RESULTS].setdefault(group, {})[impl] = (
            meta.stats.min, meta.stats.median, load, ops)
    return result


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    tr.section("numq speed-up: baseline time / numq time (> 1: numq faster)")
    tr.write_line("medians in ms; speed-ups as median (min); 'other' = CPU share other "
                  "processes used meanwhile (> ~5%: figures unreliable)")
    tr.write_line(f"{'group':<50} {'numq':>9} {'numpy':>9} {'torch':>9} "
                  f"{'vs numpy':>14} {'vs torch':>14} {'other':>6}")
    for group in sorted(results):
        r = results[group]
        row = f"{group:<50}"
        for impl in ("numq", "numpy", "torch"):
            row += f" {r[impl][1] * 1e3:9.3f}" if impl in r else f" {'-':>9}"
        for base in ("numpy", "torch"):
            if "numq" in r and base in r:
                med = r[base][1] / r["numq"][1]
                mn = r[base][0] / r["numq"][0]
                row += f" {f'{med:.2f} ({mn:.2f})':>14}"
            else:
                row += f" {'-':>14}"
        loads = [v[2] for v in r.values() if v[2] is not None]
        row += f" {max(loads):6.0%}" if loads else f" {'-':>6}"
        tr.write_line(row)
    _throughput_summary(tr, results)


# members named "numq..." are numq's; every other member except "numpy" is a baseline
# to beat (torch, ort, ...); numpy (float32) has its own column
_THROUGHPUT_ORDER = ("numq", "numq-layer", "torch", "ort", "numpy")


def _throughput_summary(tr, results):
    """GOPS of every member and numq's speed-up over the fastest non-NumPy baseline."""
    groups = {g: r for g, r in results.items() if any(v[3] for v in r.values())}
    if not groups:
        return
    impls = [i for i in _THROUGHPUT_ORDER if any(i in r for r in groups.values())]
    impls += sorted({i for r in groups.values() for i in r} - set(impls))
    numqs = [i for i in impls if i.startswith("numq")]
    tr.section("numq throughput: ms / GOPS; speed-up = fastest baseline / numq")
    tr.write_line(f"{THREADS} thread(s); cells: median ms / GOPS from the median (GOPS from "
                  "the min); 'best' = fastest member that is neither numq nor numpy; "
                  "speed-ups as median (min)")
    head = f"{'group':<44}" + "".join(f" {i[:20]:>20}" for i in impls)
    head += f" {'best':>10}" + "".join(f" {i[:12] + ' vs best':>20}" for i in numqs)
    head += f" {'numq vs numpy':>14} {'other':>6}"
    tr.write_line(head)
    for group in sorted(groups):
        r = groups[group]
        row = f"{group:<44}"
        for impl in impls:
            v = r.get(impl)
            cell = (f"{v[1] * 1e3:.3f}/{v[3] / v[1] / 1e9:.0f} ({v[3] / v[0] / 1e9:.0f})"
                    if v and v[3] else "-")
            row += f" {cell:>20}"
        bases = [i for i in r if not i.startswith("numq") and i != "numpy"]
        best = min(bases, key=lambda i: r[i][1]) if bases else None
        row += f" {best or '-':>10}"
        for impl in numqs:
            if best and impl in r:
                med, mn = r[best][1] / r[impl][1], r[best][0] / r[impl][0]
                row += f" {f'{med:.2f} ({mn:.2f})':>20}"
            else:
                row += f" {'-':>20}"
        if "numq" in r and "numpy" in r:
            row += f" {r['numpy'][1] / r['numq'][1]:14.2f}"
        else:
            row += f" {'-':>14}"
        loads = [v[2] for v in r.values() if v[2] is not None]
        row += f" {max(loads):6.0%}" if loads else f" {'-':>6}"
        tr.write_line(row)
