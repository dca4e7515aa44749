"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Parameter names, shapes, state_dict keys, initialisation (every parameter
``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``) and forward conventions follow
``torch.nn``. Training is explicit: a training-mode ``forward`` keeps what backward
needs in ``self._saved``; ``backward`` runs backpropagation through time, accumulates
parameter gradients and returns the input gradient (plus the initial-state gradients
when initial states were passed).
"""
import math
import numbers
import warnings

import numpy as np

from .._random import resolve
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_FWD = {"RNN_TANH": F.rnn_tanh, "RNN_RELU": F.rnn_relu, "LSTM": F.lstm, "GRU": F.gru}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _param_dtype(dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a float dtype; got {dt}")
    return dt


def _check_size(v, arg):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{arg} should be of type int, got: {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{arg} must be greater than zero; got {v}")
    return int(v)


def _check_bool(v, arg):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{arg} should be of type bool, got: {type(v).__name__}")
    return bool(v)


def _reset_uniform(module, hidden_size, generator):
    """torch's RNN init: every parameter ``U(-1/sqrt(hidden), 1/sqrt(hidden))``."""
    gen = resolve(generator)
    stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        p.data[...] = gen.uniform(-stdv, stdv, p.data.shape)


class RNNBase(Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU` (``torch.nn.RNNBase``).

    Parameters
    ----------
    mode : {"RNN_TANH", "RNN_RELU", "LSTM", "GRU"}
    input_size, hidden_size : int
    num_layers : int
        Stacked recurrent layers; layer k > 0 reads layer k-1's output.
    bias : bool
        Whether ``bias_ih_l*`` / ``bias_hh_l*`` exist.
    batch_first : bool
        Input and output are (N, L, features) instead of (L, N, features); the states
        keep (D*num_layers, N, H) either way.
    dropout : float
        Dropout probability on every layer's output but the last, in training mode.
    bidirectional : bool
        Adds a reverse-time direction (``*_reverse`` parameters); outputs concatenate.
    proj_size : int
        LSTM only: project ``h`` to ``proj_size`` features with ``weight_hr_l*``.
    dtype : numpy float dtype, optional
        Parameter dtype (float32 by default).
    generator : numpy Generator or int, optional
        numq extension: the source of the initial weights and of the dropout masks. An
        int seeds a generator once, here, so successive forwards draw different masks;
        None uses numq's global generator (``numq.manual_seed``) at each use, as torch
        uses its global RNG. numq's masks are not torch's.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0, *,
                 dtype=None, generator=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"mode must be one of {sorted(_GATES)}; got {mode!r}")
        if (isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed; got {dropout!r}")
        bias = _check_bool(bias, "bias")
        batch_first = _check_bool(batch_first, "batch_first")
        bidirectional = _check_bool(bidirectional, "bidirectional")
        input_size = _check_size(input_size, "input_size")
        hidden_size = _check_size(hidden_size, "hidden_size")
        num_layers = _check_size(num_layers, "num_layers")
        if isinstance(proj_size, (bool, np.bool_)) or not isinstance(proj_size, numbers.Integral):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             f"projections; got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size; got proj_size="
                             f"{proj_size}, hidden_size={hidden_size}")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = int(proj_size)
        self.generator = None if generator is None else resolve(generator)
        dt = _param_dtype(dtype)
        D = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        hout = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hout * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gate, layer_in)), ("weight_hh", (gate, hout))]
                if bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for base, shape in shapes:
                    setattr(self, base + sfx, Parameter(np.empty(shape, dt)))
                    names.append(base + sfx)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        """Refill every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``
        (drawn from ``generator``, else the module's, else the global one)."""
        _reset_uniform(self, self.hidden_size,
                       self.generator if generator is None else generator)

    def flatten_parameters(self):
        """No-op (torch uses it to pack weights for cuDNN)."""

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        """Parameters per layer and direction: ``[[weight_ih_l0, weight_hh_l0, ...], ...]``."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _run(self, input, hx):
        res = _FWD[self.mode](input, hx, [p.data for p in self._flat_weights], self.bias,
                              self.num_layers, self.dropout, self.training,
                              self.bidirectional, self.batch_first,
                              generator=self.generator, return_saved=self.training)
        if self.training:
            res, saved = res
            self._saved = (saved, hx is not None)
        return res

    def _accumulate(self, gparams):
        for p, g in zip(self._flat_weights, gparams):
            p.accumulate(g)


class RNN(RNNBase):
    """Multi-layer Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``
    (``torch.nn.RNN``).

    Parameters
    ----------
    input_size, hidden_size, num_layers : int
    nonlinearity : {"tanh", "relu"}
    bias, batch_first, dropout, bidirectional, dtype, generator
        As :class:`RNNBase`.

    Examples
    --------
    >>> rnn = RNN(10, 20, 2)
    >>> out, h_n = rnn(np.zeros((5, 3, 10), np.float32))
    >>> out.shape, h_n.shape
    ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, dtype=None,
                 generator=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        """Run the sequence.

        Parameters
        ----------
        input : ndarray
            (L, N, input_size), (N, L, input_size) if ``batch_first``, or unbatched
            (L, input_size).
        hx : ndarray, optional
            h_0, (D*num_layers, N, hidden_size) or unbatched (D*num_layers, hidden_size);
            zeros when None.

        Returns
        -------
        output : ndarray
            (L, N, D*hidden_size) (batch-first / unbatched like ``input``).
        h_n : ndarray
            Final states, shaped like h_0.
        """
        return self._run(input, hx)

    def backward(self, grad_output, grad_hn=None):
        """Backpropagation through time.

        Parameters
        ----------
        grad_output : ndarray or None
            dL/d output (None: zero).
        grad_hn : ndarray or None
            dL/d h_n (None: zero).

        Returns
        -------
        grad_input, or ``(grad_input, grad_h0)`` when ``forward`` was given ``hx``.
        """
        saved, hx_given = self._take_saved()
        fn = F.rnn_tanh_backward if self.mode == "RNN_TANH" else F.rnn_relu_backward
        gi, gh0, gp = fn(grad_output, grad_hn, saved)
        self._accumulate(gp)
        return (gi, gh0) if hx_given else gi


class GRU(RNNBase):
    """Multi-layer gated recurrent unit (``torch.nn.GRU``); gates ``r, z, n`` with
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) n + z h``.

    Parameters as :class:`RNNBase` (no ``proj_size``). ``forward`` and ``backward``
    as :class:`RNN`'s.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, dtype=None, generator=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, generator=generator)

    def forward(self, input, hx=None):
        """Run the sequence; returns ``(output, h_n)`` as :meth:`RNN.forward`."""
        return self._run(input, hx)

    def backward(self, grad_output, grad_hn=None):
        """Backpropagation through time; returns as :meth:`RNN.backward`."""
        saved, hx_given = self._take_saved()
        gi, gh0, gp = F.gru_backward(grad_output, grad_hn, saved)
        self._accumulate(gp)
        return (gi, gh0) if hx_given else gi


class LSTM(RNNBase):
    """Multi-layer long short-term memory (``torch.nn.LSTM``); gates ``i, f, g, o``.

    Parameters as :class:`RNNBase`, including ``proj_size`` (projected hidden state
    ``h_t = W_hr (o_t * tanh(c_t))``, so ``h`` has ``proj_size`` features).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, dtype=None,
                 generator=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, dtype=dtype, generator=generator)

    def forward(self, input, hx=None):
        """Run the sequence.

        Parameters
        ----------
        input : ndarray
            (L, N, input_size), (N, L, input_size) if ``batch_first``, or unbatched
            (L, input_size).
        hx : tuple (h_0, c_0), optional
            h_0 (D*num_layers, N, H_out), c_0 (D*num_layers, N, hidden_size) (2-D when
            unbatched); zeros when None. ``H_out`` is ``proj_size`` or ``hidden_size``.

        Returns
        -------
        (output, (h_n, c_n))
        """
        output, hn, cn = self._run(input, hx)
        return output, (hn, cn)

    def backward(self, grad_output, grad_hn=None, grad_cn=None):
        """Backpropagation through time.

        Returns
        -------
        grad_input, or ``(grad_input, grad_h0, grad_c0)`` when ``forward`` was given
        ``hx``.
        """
        saved, hx_given = self._take_saved()
        gi, (gh0, gc0), gp = F.lstm_backward(grad_output, grad_hn, grad_cn, saved)
        self._accumulate(gp)
        return (gi, gh0, gc0) if hx_given else gi


class RNNCellBase(Module):
    """Shared machinery of the cells (``torch.nn.RNNCellBase``): ``weight_ih``
    (G*hidden, input), ``weight_hh`` (G*hidden, hidden), ``bias_ih`` / ``bias_hh``."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, *, dtype=None,
                 generator=None):
        super().__init__()
        self.input_size = _check_size(input_size, "input_size")
        self.hidden_size = _check_size(hidden_size, "hidden_size")
        self.bias = _check_bool(bias, "bias")
        dt = _param_dtype(dtype)
        g = num_chunks * self.hidden_size
        self.weight_ih = Parameter(np.empty((g, self.input_size), dt))
        self.weight_hh = Parameter(np.empty((g, self.hidden_size), dt))
        if self.bias:
            self.bias_ih = Parameter(np.empty(g, dt))
            self.bias_hh = Parameter(np.empty(g, dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """Refill every parameter from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        _reset_uniform(self, self.hidden_size, generator)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _weights(self):
        return (self.weight_ih.data, self.weight_hh.data,
                None if self.bias_ih is None else self.bias_ih.data,
                None if self.bias_hh is None else self.bias_hh.data)

    def _accumulate(self, gp):
        for p, g in zip((self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh), gp):
            if p is not None:
                p.accumulate(g)

    def _step(self, fn, input, hx):
        res = fn(input, hx, *self._weights(), return_saved=self.training)
        if self.training:
            res, self._saved = res
        return res


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` (``torch.nn.RNNCell``).

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool
    nonlinearity : {"tanh", "relu"}
    dtype, generator
        As :class:`RNNBase`.
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *,
                 dtype=None, generator=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype, generator=generator)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        """``h'`` for ``input`` (N, input_size) or (input_size,) and ``hx`` (zeros if None)."""
        fn = F.rnn_tanh_cell if self.nonlinearity == "tanh" else F.rnn_relu_cell
        return self._step(fn, input, hx)

    def backward(self, grad_h):
        """Given dL/dh', return ``(grad_input, grad_hx)``; accumulates parameter grads."""
        saved = self._take_saved()
        fn = F.rnn_tanh_cell_backward if saved.mode == "RNN_TANH" else F.rnn_relu_cell_backward
        gi, ghx, gp = fn(grad_h, saved)
        self._accumulate(gp)
        return gi, ghx


class GRUCell(RNNCellBase):
    """One GRU step (``torch.nn.GRUCell``); gates ``r, z, n`` as :class:`GRU`."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=None, generator=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype, generator=generator)

    def forward(self, input, hx=None):
        """``h'`` for ``input`` (N, input_size) or (input_size,) and ``hx`` (zeros if None)."""
        return self._step(F.gru_cell, input, hx)

    def backward(self, grad_h):
        """Given dL/dh', return ``(grad_input, grad_hx)``; accumulates parameter grads."""
        gi, ghx, gp = F.gru_cell_backward(grad_h, self._take_saved())
        self._accumulate(gp)
        return gi, ghx


class LSTMCell(RNNCellBase):
    """One LSTM step (``torch.nn.LSTMCell``); gates ``i, f, g, o``."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=None, generator=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype, generator=generator)

    def forward(self, input, hx=None):
        """``(h', c')`` for ``input`` (N, input_size) or (input_size,) and ``hx = (h, c)``
        (zeros if None)."""
        return self._step(F.lstm_cell, input, hx)

    def backward(self, grad_h, grad_c=None):
        """Given dL/dh' and dL/dc' (either may be None), return
        ``(grad_input, grad_hx, grad_cx)``; accumulates parameter grads."""
        gi, (ghx, gcx), gp = F.lstm_cell_backward(grad_h, grad_c, self._take_saved())
        self._accumulate(gp)
        return gi, ghx, gcx
