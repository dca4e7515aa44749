"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm.

They mirror ``torch.nn``: the same constructor arguments (including torch 2.13's
keyword-only ``bias``), parameters ``weight`` / ``bias``, buffers ``running_mean`` /
``running_var`` / ``num_batches_tracked`` (int64, 0-d) and state_dict keys, and
``extra_repr``. The computation is in :mod:`numq.layers.functional` (``batch_norm``,
``instance_norm``, ``layer_norm``, ``group_norm`` and their ``*_backward``).

A training-mode ``forward`` saves ``(input, batch mean, 1/std)`` in ``self._saved``;
eval mode saves nothing. In training mode the batch statistics always normalise, so
``backward`` differentiates through them.
"""
import warnings

import numpy as np

from .._validate import int_scalar
from .functional import _norm as F
from .functional._activation import _real
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "GroupNorm"]


def _factory(device, dtype):
    """Validate torch's ``device`` / ``dtype`` factory arguments; return the NumPy dtype."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"device must be None or 'cpu' (numq runs on NumPy); got {device!r}")
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a float dtype; got {dt}")
    return dt


def _accumulate(param, grad):
    if param is not None and grad is not None:
        param.accumulate(grad)


def _data(p):
    return None if p is None else p.data


def _affine_params(module, shape, affine, bias, dt):
    """Register ``weight`` (ones) and ``bias`` (zeros) of ``shape``, or None when absent."""
    if affine:
        module.weight = Parameter(np.ones(shape, dt))
        if bias:
            module.bias = Parameter(np.zeros(shape, dt))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def _reset_affine(module):
    if module.weight is not None:
        module.weight.data[...] = 1
    if module.bias is not None:
        module.bias.data[...] = 0


class _NormBase(Module):
    """Shared state of batch and instance norm (torch's ``_NormBase``)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        dt = _factory(device, dtype)
        self.num_features = int_scalar(num_features, "num_features", lo=0)
        F._eps(eps)
        if momentum is not None:
            _real(momentum, "momentum")
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        n = self.num_features
        _affine_params(self, n, affine, bias, dt)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(n, dt))
            self.register_buffer("running_var", np.ones(n, dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, ``num_batches_tracked`` 0 (in place)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        """Reset the running statistics and set ``weight`` to 1, ``bias`` to 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # As torch: a checkpoint without num_batches_tracked (older than the buffer) keeps
        # the current count instead of reporting a missing key.
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and self.num_batches_tracked is not None \
                and key not in state_dict:
            state_dict = dict(state_dict)
            state_dict[key] = self.num_batches_tracked.copy()
        super()._load_from_state_dict(state_dict, prefix, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _ranks = ()

    def forward(self, input):
        """Normalise ``input`` (N, C, ...) per channel; update running stats in training."""
        F._check_rank(input, self._ranks, type(self).__name__)
        factor = 0.0 if self.momentum is None else self.momentum
        count = None
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            count = int(self.num_batches_tracked) + 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / count
        # batch statistics in training, and in eval when there are no running ones
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        # buffers are updated only when tracked; in eval they normalise
        pass_running = not self.training or self.track_running_stats
        out, x, mean, invstd = F._batch_norm(
            input, self.running_mean if pass_running else None,
            self.running_var if pass_running else None, _data(self.weight), _data(self.bias),
            use_batch, factor, self.eps)
        if count is not None:  # only once the forward succeeded
            self.num_batches_tracked[...] = count
        if self.training:
            self._saved = (x, mean, invstd)
        return out

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` / ``bias.grad`` (when affine)."""
        x, mean, invstd = self._take_saved()
        gi, gw, gb = F.batch_norm_backward(grad_output, x, None, None, _data(self.weight),
                                           _data(self.bias), True, self.eps,
                                           save_mean=mean, save_invstd=invstd)
        _accumulate(self.weight, gw)
        _accumulate(self.bias, gb)
        return gi


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input (``torch.nn.BatchNorm1d``).

    Parameters
    ----------
    num_features : int
        C, the number of channels.
    eps : float
        Added to the variance.
    momentum : float or None
        Weight of the batch statistics in the running update; ``None`` gives a cumulative
        average (``1 / num_batches_tracked``).
    affine : bool
        Learnable ``weight`` (init 1) and ``bias`` (init 0).
    track_running_stats : bool
        Keep ``running_mean`` / ``running_var`` / ``num_batches_tracked`` buffers and use
        them in eval mode (otherwise eval uses batch statistics too).
    device, dtype
        torch's factory arguments: device must be None or 'cpu'; dtype defaults to float32.
    bias : bool (keyword-only)
        With ``affine``, whether there is a ``bias`` (torch 2.13).

    Notes
    -----
    The running variance is updated with the unbiased batch variance and the output is
    normalised with the biased one, as in torch.
    """

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input (``torch.nn.BatchNorm2d``).

    Arguments as :class:`BatchNorm1d`.
    """

    _ranks = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) input (``torch.nn.BatchNorm3d``).

    Arguments as :class:`BatchNorm1d`.
    """

    _ranks = (5,)


class _InstanceNorm(_NormBase):
    _ranks = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):
        """Normalise each (sample, channel) over its spatial axes."""
        F._check_rank(input, self._ranks, type(self).__name__)
        no_batch = self._ranks[0]
        shape = np.shape(input)
        feature_dim = len(shape) - no_batch
        if shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{type(self).__name__}: expected input's size at "
                                 f"dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. "
                          "You can silence this warning by not passing in num_features, "
                          "which is not used because affine=False", stacklevel=2)
        unbatched = len(shape) == no_batch
        if unbatched:
            input = np.asarray(input)[None]
        out, x, mean, invstd = F._instance_norm(
            input, self.running_mean, self.running_var, _data(self.weight), _data(self.bias),
            self.training or not self.track_running_stats,
            0.0 if self.momentum is None else self.momentum, self.eps)
        if self.training:
            self._saved = (x, mean, invstd, unbatched)
        return out[0] if unbatched else out

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` / ``bias.grad`` (when affine)."""
        x, mean, invstd, unbatched = self._take_saved()
        g = np.asarray(grad_output)
        if unbatched:
            g = g[None]
        gi, gw, gb = F.instance_norm_backward(g, x, None, None, _data(self.weight),
                                              _data(self.bias), True, self.eps,
                                              save_mean=mean, save_invstd=invstd)
        _accumulate(self.weight, gw)
        _accumulate(self.bias, gb)
        return gi[0] if unbatched else gi


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) input (``torch.nn.InstanceNorm1d``).

    Parameters
    ----------
    num_features : int
        C (only checked against the input when ``affine``; otherwise a mismatch warns).
    eps : float
    momentum : float or None
        Running-statistics weight; ``None`` behaves as 0 (no update), as in torch.
    affine : bool, default False
    track_running_stats : bool, default False
        Keep running statistics (updated in training with the batch-mean of the instance
        statistics; used in eval). ``num_batches_tracked`` exists but is never advanced,
        as in torch.
    device, dtype, bias
        As :class:`BatchNorm1d`.
    """

    _ranks = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W) input (``torch.nn.InstanceNorm2d``).

    Arguments as :class:`InstanceNorm1d`.
    """

    _ranks = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W) input.

    ``torch.nn.InstanceNorm3d``; arguments as :class:`InstanceNorm1d`.
    """

    _ranks = (4, 5)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` axes (``torch.nn.LayerNorm``).

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing shape normalised together.
    eps : float
    elementwise_affine : bool
        Learnable per-element ``weight`` (init 1) and ``bias`` (init 0) of that shape.
    bias : bool
        With ``elementwise_affine``, whether there is a ``bias``.
    device, dtype
        As :class:`BatchNorm1d`.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        dt = _factory(device, dtype)
        self.normalized_shape = F._normalized_shape(normalized_shape)
        F._eps(eps)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_params(self, self.normalized_shape, elementwise_affine, bias, dt)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        out, x, mean, invstd = F._layer_norm(input, self.normalized_shape, _data(self.weight),
                                             _data(self.bias), self.eps)
        if self.training:
            self._saved = (x, mean, invstd)
        return out

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` / ``bias.grad``."""
        x, mean, invstd = self._take_saved()
        gi, gw, gb = F.layer_norm_backward(grad_output, x, self.normalized_shape,
                                           _data(self.weight), _data(self.bias), self.eps,
                                           save_mean=mean, save_invstd=invstd)
        _accumulate(self.weight, gw)
        _accumulate(self.bias, gb)
        return gi

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation (``torch.nn.GroupNorm``).

    Parameters
    ----------
    num_groups : int
        Groups the channels are split into; must divide ``num_channels``.
    num_channels : int
        C.
    eps : float
    affine : bool
        Learnable per-channel ``weight`` (init 1) and ``bias`` (init 0).
    device, dtype
        As :class:`BatchNorm1d`.
    bias : bool (keyword-only)
        With ``affine``, whether there is a ``bias``.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        dt = _factory(device, dtype)
        groups = int_scalar(num_groups, "num_groups", lo=1)
        channels = int_scalar(num_channels, "num_channels", lo=0)
        if channels % groups != 0:
            raise ValueError(f"num_channels ({channels}) must be divisible by num_groups "
                             f"({groups})")
        F._eps(eps)
        self.num_groups = groups
        self.num_channels = channels
        self.eps = eps
        self.affine = affine
        _affine_params(self, channels, affine, bias, dt)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        out, x, mean, invstd = F._group_norm(input, self.num_groups, _data(self.weight),
                                             _data(self.bias), self.eps)
        if self.training:
            self._saved = (x, mean, invstd)
        return out

    def backward(self, grad_output):
        """Input gradient; accumulates ``weight.grad`` / ``bias.grad``."""
        x, mean, invstd = self._take_saved()
        gi, gw, gb = F.group_norm_backward(grad_output, x, self.num_groups, _data(self.weight),
                                           _data(self.bias), self.eps, save_mean=mean,
                                           save_invstd=invstd)
        _accumulate(self.weight, gw)
        _accumulate(self.bias, gb)
        return gi

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")
