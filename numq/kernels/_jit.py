"""The one place kernels are compiled from: ``numq.kernels._jit.kernel``.

Every kernel is cached on disk (``cache=True``), releases the GIL (``nogil=True``)
and compiles lazily on first call (no eager signatures, so ``import numq`` compiles
nothing). Fastmath is off by default: quantization must round exactly as PyTorch
does, so reassociation, contraction into FMA and no-NaN/no-inf assumptions are not
allowed there. Kernels whose result is insensitive to rounding order may opt into
``fastmath=SAFE_FASTMATH``.
"""
import numba

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
    opts = dict(cache=True, nogil=True, parallel=parallel, fastmath=fastmath or False,
                error_model="numpy", inline=inline)

    def wrap(f):
        return numba.njit(**opts)(f)

    return wrap(fn) if fn is not None else wrap
