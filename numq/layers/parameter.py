"""``Parameter``: a trainable array with its gradient (``torch.nn.Parameter``)."""
import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A trainable float array and its accumulated gradient.

    Attributes
    ----------
    data : numpy.ndarray
        The values. Layers read ``param.data``; optimizers update it in place.
    grad : numpy.ndarray or None
        Sum of gradients since the last ``zero_grad`` (None until a backward runs).
    requires_grad : bool
        Whether backward accumulates into ``grad`` and optimizers update it.
    """

    __slots__ = ("data", "grad", "requires_grad", "__weakref__")
    __array_priority__ = 100

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Parameter):
            data = data.data
        arr = np.array(data, dtype=np.float32 if np.asarray(data).dtype.kind in "iub" else None,
                       copy=True)
        if arr.dtype.kind != "f":
            raise TypeError(f"data must be a float array; got dtype {arr.dtype}")
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)

    def accumulate(self, g):
        """Add ``g`` to ``grad`` (allocating it on first use), if ``requires_grad``."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype, copy=True).reshape(self.data.shape)
        else:
            self.grad += g

    # array-like conveniences: shape, dtype, np.asarray(param), arithmetic on the values
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numpy(self):
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, key):
        return self.data[key]

    def __repr__(self):
        return f"Parameter containing:\n{self.data!r}"

    def __deepcopy__(self, memo):
        p = Parameter.__new__(Parameter)
        p.data = self.data.copy()
        p.grad = None if self.grad is None else self.grad.copy()
        p.requires_grad = self.requires_grad
        memo[id(self)] = p
        return p
