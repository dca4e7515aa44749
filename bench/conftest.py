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

import numba
import pytest

import numq

THREADS = min(2, numba.config.NUMBA_NUM_THREADS)

_RESULTS = pytest.StashKey[dict]()


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
    """
    return lambda group, impl, fn: _measure(benchmark, request, group, impl, fn)


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


def _measure(benchmark, request, group, impl, fn, warmup=2):
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    for _ in range(warmup):
        fn()
    before = _cpu_ticks()
    result = benchmark(fn)
    load = _other_load(before, _cpu_ticks())
    if load is not None:
        benchmark.extra_info["other_load"] = round(load, 3)
    meta = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if meta is not None:
        request.config.stash[_RESULTS].setdefault(group, {})[impl] = (
            meta.stats.min, meta.stats.median, load)
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
