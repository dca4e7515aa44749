"""The one place kernels are compiled from: ``numq.kernels._jit.kernel``.

Every kernel is cached on disk (Numba's ``FunctionCache``, the one ``cache=True`` sets
up, attached lazily: see :class:`_LazyFunctionCache`), releases the GIL (``nogil=True``)
and compiles lazily on first call (no eager signatures, so ``import numq`` compiles
nothing). Fastmath is off by default: quantization must round exactly as PyTorch
does, so reassociation, contraction into FMA and no-NaN/no-inf assumptions are not
allowed there. Kernels whose result is insensitive to rounding order may opt into
``fastmath=SAFE_FASTMATH``.
"""
import numba
from numba.core.caching import FunctionCache
from numba.core.dispatcher import Dispatcher

__all__ = ["kernel", "SAFE_FASTMATH"]

# Flags that never change a finite result's rounding nor NaN/inf handling.
SAFE_FASTMATH = frozenset({"nsz", "arcp"})
_FORBIDDEN = frozenset({"fast", "nnan", "ninf", "reassoc", "contract", "afn"})


def kernel(fn=None, *, parallel=False, fastmath=False, inline="never"):
    """Compile ``fn`` with numq's Numba policy.

    Parameters
    ----------
    parallel : bool
        Enable ``prange``. Only top-level drivers are parallel; their callees are serial.
    fastmath : bool or set of str
        ``False`` (default) or a subset of :data:`SAFE_FASTMATH`.
    inline : {"never", "always"}
        Numba IR inlining, for tiny helpers called from hot loops.
    """
    if fastmath is True or (fastmath and set(fastmath) & _FORBIDDEN):
        raise ValueError(f"fastmath flags {fastmath!r} would change rounding; "
                         f"use a subset of {sorted(SAFE_FASTMATH)}")
    opts = dict(nogil=True, parallel=parallel, fastmath=fastmath or False,
                error_model="numpy", inline=inline)

    def wrap(f):
        disp = numba.njit(**opts)(f)
        if isinstance(disp, Dispatcher):      # not under NUMBA_DISABLE_JIT
            disp._cache = _LazyFunctionCache(f)
        return disp

    return wrap(fn) if fn is not None else wrap


class _LazyFunctionCache:
    """Numba's on-disk ``FunctionCache`` for ``py_func``, set up on first use.

    ``njit(cache=True)`` builds it at decoration time (locating and checking the cache
    directory: ~0.4 ms per kernel, ~70 ms of ``import numq`` for its ~200 kernels); this
    defers that to the kernel's first compilation or cache load. Same cache files.
    """

    __slots__ = ("_py_func", "_real")

    def __init__(self, py_func):
        self._py_func = py_func
        self._real = None

    def __getattr__(self, name):
        if self._real is None:
            self._real = FunctionCache(self._py_func)
        return getattr(self._real, name)
