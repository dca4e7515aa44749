"""CPU feature detection and kernel-variant selection.

The variant is one of ``"avx512_amx"``, ``"avx512_vnni"``, ``"avx2"``, ``"generic"``.
It comes from llvmlite's host CPU feature query (the same view of the CPU that Numba
compiles for), capped by the ``NUMQ_ISA`` environment variable, and is ``"generic"`` when
Numba's JIT is disabled (intrinsic kernels cannot run in the interpreter).

AMX also needs the operating system's consent: Linux hands out the tile registers'
state only to a process that asks for it (``arch_prctl(ARCH_REQ_XCOMP_PERM,
XFEATURE_XTILEDATA)``); numq asks once, when it first looks at the CPU, and treats a
refusal as "no AMX".
"""
import contextlib
import functools
import os
import threading
import warnings

__all__ = ["ISA_VARIANTS", "cpu_features", "isa", "supported_variants", "active", "forced"]

ISA_VARIANTS = ("generic", "avx2", "avx512_vnni", "avx512_amx")
_REQUIRES = {
    "avx512_amx": ("avx512f", "avx512bw", "avx512vnni", "amx-tile", "amx-int8"),
    "avx512_vnni": ("avx512f", "avx512bw", "avx512vnni"),
    "avx2": ("avx2", "fma"),
    "generic": (),
}


@functools.cache
def cpu_features():
    """Return the host CPU's feature flags as a frozenset of LLVM feature names."""
    import llvmlite.binding as llvm
    feats = llvm.get_host_cpu_features()
    return frozenset(name for name, on in feats.items() if on)


def _supported(variant, feats):
    ok = all(f in feats for f in _REQUIRES[variant])
    return ok and (variant != "avx512_amx" or _amx_permitted())


@functools.cache
def _amx_permitted():
    """Ask Linux for the AMX tile state (once per process); True if granted."""
    import ctypes
    import sys
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # syscall(SYS_arch_prctl = 158, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18)
        return libc.syscall(158, 0x1023, 18) == 0
    except (OSError, AttributeError):
        return False


@functools.cache
def isa():
    """Return the kernel variant in force for this process.

    ``NUMQ_ISA`` (``generic`` / ``avx2`` / ``avx512_vnni`` / ``avx512_amx``) asks for a variant; a variant
    the CPU cannot run is refused with a warning and the best supported one below it is
    used. An unknown value raises ``ValueError``.
    """
    from numba.core import config
    feats = cpu_features()
    best = next(v for v in reversed(ISA_VARIANTS) if _supported(v, feats))
    want = os.environ.get("NUMQ_ISA", "").strip().lower()
    if want and want not in ISA_VARIANTS:  # refused even when the JIT is off
        raise ValueError(f"NUMQ_ISA must be one of {', '.join(ISA_VARIANTS)}; got {want!r}")
    if config.DISABLE_JIT:
        return "generic"
    if not want:
        return best
    if ISA_VARIANTS.index(want) > ISA_VARIANTS.index(best):
        warnings.warn(f"NUMQ_ISA={want} is not supported by this CPU; using {best}",
                      RuntimeWarning, stacklevel=2)
        return best
    return want


def cpu_name():
    """Return LLVM's name for the host CPU (e.g. ``"skylake-avx512"``)."""
    import llvmlite.binding as llvm
    return llvm.get_host_cpu_name()


def supported_variants():
    """The variants this process can run, slowest first (``generic`` always)."""
    best = isa()
    return ISA_VARIANTS[:ISA_VARIANTS.index(best) + 1]


_override = threading.local()


def active():
    """The variant kernels use now: :func:`isa`, unless :func:`forced` is in effect."""
    return getattr(_override, "variant", None) or isa()


@contextlib.contextmanager
def forced(variant):
    """Run the enclosed calls (in this thread) with kernel variant ``variant``.

    For tests and benchmarks that compare variants in one process. ``variant`` must be
    one of :func:`supported_variants`; anything else raises ``ValueError``.
    """
    if variant not in supported_variants():
        raise ValueError(f"variant must be one of {supported_variants()} on this CPU/process; "
                         f"got {variant!r}")
    old = getattr(_override, "variant", None)
    _override.variant = variant
    try:
        yield
    finally:
        _override.variant = old
