"""Thread-count control and safe concurrent use of parallel kernels.

Numba's ``workqueue`` threading layer aborts the process when two Python threads enter
parallel regions at once; ``omp`` and ``tbb`` are safe. numq never pins a layer; when
the layer in force is ``workqueue`` it serialises parallel kernel calls with a lock.
"""
import contextlib
import numbers
import threading

import numba
import numpy as np

__all__ = ["set_num_threads", "get_num_threads", "parallel_region"]

_lock = threading.Lock()
_safe = None  # unknown until the first parallel kernel has run
_fast_get = None


def set_num_threads(n):
    """Set the number of threads parallel kernels use (wraps ``numba.set_num_threads``)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int; got {type(n).__name__}")
    n = int(n)  # numpy integers too (e.g. from np.clip)
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n must be in [1, {numba.config.NUMBA_NUM_THREADS}]; got {n}")
    numba.set_num_threads(n)


def get_num_threads():
    """Return the number of threads parallel kernels use in this thread."""
    global _fast_get
    if _fast_get is not None:
        n = _fast_get()
        if n > 0:
            return n
    n = numba.get_num_threads()
    # Numba's public call re-checks that its thread pool is up (a lock, ~1.5 us); once it
    # is, the layer's own getter answers the same question (per calling thread).
    _fast_get = getattr(numba.np.ufunc.parallel, "_get_num_threads", None)
    return n


_NO_LOCK = contextlib.nullcontext()


def parallel_region():
    """Context for one parallel kernel call: ``with parallel_region(): kernel(...)``.

    Returns a no-op context once a thread-safe layer is known to be in use (the common,
    sub-microsecond path), else the module lock, so ``workqueue`` never sees two
    parallel regions at once.
    """
    global _safe
    if _safe:
        return _NO_LOCK
    try:
        _safe = numba.threading_layer() != "workqueue"
    except ValueError:  # no parallel region has run yet: the layer is not chosen
        return _lock
    return _NO_LOCK if _safe else _lock
