"""numq's global random generator (``numq.manual_seed``), used by layer initialisation."""
import numpy as np

__all__ = ["manual_seed", "default_generator", "resolve"]

_state = {"gen": np.random.default_rng()}


def manual_seed(seed):
    """Reseed the global generator; returns it (as ``torch.manual_seed`` returns one)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    _state["gen"] = np.random.default_rng(int(seed))
    return _state["gen"]


def default_generator():
    """The global ``np.random.Generator``."""
    return _state["gen"]


def resolve(generator):
    """``generator`` if given (a Generator or an int seed), else the global one."""
    if generator is None:
        return _state["gen"]
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy Generator, an int seed or None; "
                    f"got {type(generator).__name__}")
