"""Shared set-up for numq's benchmarks (pytest-benchmark).

Run with ``pytest bench --benchmark-only --benchmark-group-by=group`` (see README.md).
Every benchmark puts its implementations (``numq``, ``numpy``, ``torch``) in one group,
and records its timings here, so the terminal summary can print numq's speed-up over
each baseline per group. Both numq and torch run on 2 threads.
"""
import pytest

import numq

THREADS = 2

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


def _measure(benchmark, request, group, impl, fn, warmup=2):
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    for _ in range(warmup):
        fn()
    result = benchmark(fn)
    meta = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if meta is not None:
        request.config.stash[_RESULTS].setdefault(group, {})[impl] = (
            meta.stats.min, meta.stats.median)
    return result


def _fmt_ms(seconds):
    return f"{seconds * 1e3:9.3f}"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    tr.section("numq speed-up per group (baseline time / numq time; > 1 means numq is faster)")
    tr.write_line(f"{'group':<50} {'numq ms':>9} {'numpy ms':>9} {'torch ms':>9} "
                  f"{'x numpy':>8} {'x torch':>8}   (medians; speed-ups from medians | mins)")
    for group in sorted(results):
        r = results[group]
        row = f"{group:<50}"
        for impl in ("numq", "numpy", "torch"):
            row += " " + (_fmt_ms(r[impl][1]) if impl in r else f"{'-':>9}")
        for base in ("numpy", "torch"):
            if "numq" in r and base in r:
                med = r[base][1] / r["numq"][1]
                mn = r[base][0] / r["numq"][0]
                row += f" {med:6.2f}|{mn:<5.2f}"
            else:
                row += f" {'-':>8}"
        tr.write_line(row)
