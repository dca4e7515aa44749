"""``MultiheadAttention`` (``torch.nn.MultiheadAttention``) with an explicit backward."""
import numbers

import numpy as np

from .. import _random
from . import init
from .linear import NonDynamicallyQuantizableLinear
from .functional import _attention as F
from .module import Module
from .parameter import Parameter

__all__ = ["MultiheadAttention"]


def _bool(v, arg):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{arg} must be a bool; got {type(v).__name__}")
    return bool(v)


class MultiheadAttention(Module):
    """Multi-head attention, ``torch.nn.MultiheadAttention``'s parameters and semantics.

    Parameters
    ----------
    embed_dim, num_heads : int
        ``embed_dim`` must be divisible by ``num_heads``.
    dropout : float
        Dropout on the attention weights in training mode (mask drawn from ``generator``
        if one was given, else numq's global generator).
    bias : bool
        ``in_proj_bias`` and ``out_proj.bias``.
    add_bias_kv : bool
        Learnable ``bias_k`` / ``bias_v`` (1, 1, embed_dim) appended to keys / values.
    add_zero_attn : bool
        Append an all-zero key / value position.
    kdim, vdim : int, optional
        Key / value feature sizes (default ``embed_dim``). When either differs, the
        projections are ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead of
        the packed ``in_proj_weight`` (3 * embed_dim, embed_dim).
    batch_first : bool
        Inputs and output are (N, L, E) instead of (L, N, E).
    device : None or 'cpu'
    dtype : float32 (default) or float64
    generator : numpy Generator or int, optional
        Initialisation (xavier_uniform_ projections, zero biases, xavier_normal_
        ``bias_k`` / ``bias_v``, Linear's init for ``out_proj.weight``) and dropout.

    Notes
    -----
    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` returns
    ``(attn_output, attn_weights)`` as torch. ``backward(grad_output)`` takes the
    gradient of ``attn_output`` (or a tuple ``(grad_attn_output, grad_attn_weights)``),
    accumulates every parameter's ``.grad`` and returns ``(grad_query, grad_key,
    grad_value)``; for self-attention (one array passed three times) add them up.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None, *, generator=None):
        super().__init__()
        for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name} must be an int; got {type(v).__name__}")
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0; got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim must be divisible by num_heads; got {embed_dim} and "
                             f"{num_heads}")
        if device is not None and str(device) != "cpu":
            raise ValueError(f"device must be None or 'cpu'; got {device!r}")
        dt = np.dtype(np.float32 if dtype is None else dtype)
        if dt.kind != "f" or dt.itemsize not in (4, 8):
            raise TypeError(f"dtype must be float32 or float64; got {dt}")
        for name, v in (("kdim", kdim), ("vdim", vdim)):
            if v is not None and (isinstance(v, (bool, np.bool_))
                                  or not isinstance(v, numbers.Integral) or v <= 0):
                raise ValueError(f"{name} must be a positive int or None; got {v!r}")
        self.embed_dim = int(embed_dim)
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.num_heads = int(num_heads)
        self.dropout = F._check_p(dropout, "dropout")
        self.batch_first = _bool(batch_first, "batch_first")
        self.head_dim = self.embed_dim // self.num_heads
        E = self.embed_dim
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(np.empty((E, E), dt))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dt))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dt))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dt))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if _bool(bias, "bias"):
            self.in_proj_bias = Parameter(np.empty(3 * E, dt))
        else:
            self.register_parameter("in_proj_bias", None)
        rng = _random.resolve(generator)
        # dropout masks come from the same generator when one was given
        self._generator = rng if generator is not None else None
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dt, generator=rng)
        if _bool(add_bias_kv, "add_bias_kv"):
            self.bias_k = Parameter(np.empty((1, 1, E), dt))
            self.bias_v = Parameter(np.empty((1, 1, E), dt))
        else:
            # plain attributes, as torch: absent from state_dict
            self.bias_k = self.bias_v = None
        self.add_zero_attn = _bool(add_zero_attn, "add_zero_attn")
        self._reset_parameters(rng)

    def _reset_parameters(self, generator=None):
        rng = _random.resolve(generator)
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=rng)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=rng)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k, generator=rng)
            init.xavier_normal_(self.bias_v, generator=rng)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """``(attn_output, attn_weights)``, as torch.

        See :func:`numq.layers.functional.multi_head_attention_forward` for the arguments.
        """
        separate = not self._qkv_same_embed_dim
        out, weights, saved = F._mha_forward(
            query, key, value, self.embed_dim, self.num_heads,
            self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v,
            self.add_zero_attn, self.dropout, self.out_proj.weight,
            self.out_proj.bias, self.training, key_padding_mask,
            _bool(need_weights, "need_weights"), attn_mask, separate,
            self.q_proj_weight, self.k_proj_weight, self.v_proj_weight,
            _bool(average_attn_weights, "average_attn_weights"),
            _bool(is_causal, "is_causal"), self.batch_first,
            self._generator, None, self.training)
        if self.training:
            self._saved = saved
        return out, weights

    def backward(self, grad_output):
        """Accumulate parameter grads; return ``(grad_query, grad_key, grad_value)``.

        ``grad_output`` is the gradient of ``attn_output``, or a pair
        ``(grad_attn_output, grad_attn_weights)``; ``grad_attn_weights`` may be None.
        """
        saved = self._take_saved()
        grad_weights = None
        if isinstance(grad_output, tuple):
            if len(grad_output) != 2:
                raise ValueError("grad_output must be an array or a pair (grad_attn_output, "
                                 "grad_attn_weights)")
            grad_output, grad_weights = grad_output
        gq, gk, gv, grads = F.multi_head_attention_backward(grad_output, saved, grad_weights)
        for name, g in grads.items():
            if name.startswith("out_proj_"):
                param = getattr(self.out_proj, name[len("out_proj_"):])
            else:
                param = getattr(self, name)
            param.accumulate(g)
        return gq, gk, gv
