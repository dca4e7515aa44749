"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, ``Identity``."""
import collections
import operator

from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict", "Identity"]


class Identity(Module):
    """Returns its input; gradient passes through unchanged."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input

    def backward(self, grad_output):
        return grad_output


class Sequential(Module):
    """Calls its children in order; ``backward`` chains their backwards in reverse.

    A child used twice in one forward is handled: each call's ``_saved`` is kept and put
    back before the matching ``backward``.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for k, m in args[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(collections.OrderedDict(list(self._modules.items())[idx]))
        n = len(self)
        i = operator.index(idx)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for Sequential of length {n}")
        return list(self._modules.values())[i % n]

    def __setitem__(self, idx, module):
        key = list(self._modules.keys())[operator.index(idx)]
        self.add_module(key, module)

    def __delitem__(self, idx):
        keys = list(self._modules.keys())
        for k in (keys[idx] if isinstance(idx, slice) else [keys[operator.index(idx)]]):
            del self._modules[k]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        # the tape (each child and the _saved of that call) is this container's own
        # _saved, so a Sequential used twice inside another container obeys the same rule
        tape = [] if self.training else None
        for m in self._modules.values():
            input = m(input)
            if tape is not None:
                tape.append((m, m._saved))
        self._saved = tape
        return input

    def backward(self, grad_output):
        tape = self._take_saved()
        for m, saved in reversed(tape):
            m._saved = saved
            grad_output = m.backward(grad_output)
        return grad_output


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"`` ..."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        n = len(self)
        i = operator.index(idx)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for ModuleList of length {n}")
        return self._modules[str(i % n)]

    def __setitem__(self, idx, module):
        n = len(self)
        i = operator.index(idx)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for ModuleList of length {n}")
        self.add_module(str(i % n), module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)


class ModuleDict(Module):
    """A dict of named child modules."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            self.add_module(k, m)

    def pop(self, key):
        return self._modules.pop(key)
