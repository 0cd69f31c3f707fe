"""The optimizers :func:`~gradcourse.core.train.fit` trains with, built by name in the fastest implementation
the parameters take, and the rules for models whose gradients are sparse."""

from __future__ import annotations

import torch
from torch import nn

from .. import _checks

__all__ = ["make_optimizer", "OPTIMIZERS", "refuse_sparse_gradients", "sparse_gradient_modules"]

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")


def make_optimizer(params, optimizer="sgd", lr=0.1, momentum=None, *, allow_fused=True):
    """Build a :mod:`torch.optim` optimizer by name, in the fastest implementation these parameters take.

    ``sgd``: plain SGD (momentum 0 unless given); ``momentum``: SGD with momentum
    (0.9 unless given; Polyak 1964, Sutskever et al. 2013); ``rmsprop``: RMSprop
    (Tieleman & Hinton 2012); ``adam``: Adam (Kingma & Ba 2015), which takes no momentum.
    ``allow_fused=False`` leaves out the fused implementation (for a model with sparse gradients).
    """
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    if momentum is not None:
        if optimizer == "adam":
            raise ValueError(f"momentum={momentum!r} is not allowed with optimizer='adam'; "
                             "leave it None (Adam's betas play that role)")
        momentum = _checks.number("momentum", momentum, minimum=0, maximum=0.999)
    params = list(params)
    if optimizer == "sgd":
        return _fastest(torch.optim.SGD, params, allow_fused, lr=lr, momentum=momentum or 0.0)
    if optimizer == "momentum":
        return _fastest(torch.optim.SGD, params, allow_fused, lr=lr, momentum=0.9 if momentum is None else momentum)
    if optimizer == "rmsprop":
        return _fastest(torch.optim.RMSprop, params, allow_fused, lr=lr, momentum=momentum or 0.0)
    return _fastest(torch.optim.Adam, params, allow_fused, lr=lr)


def _fastest(optimizer_class, params, allow_fused=True, **options):
    """``optimizer_class(params, **options)`` in its fastest form that this torch and these
    parameters support: ``fused=True`` (one kernel for every parameter), else ``foreach=True``
    (one operation per step of the update rule, over all parameters at once), else the loop over
    parameters. The update rule is the same in all three. With a network's many small weight
    tensors, fused Adam's step took a sixth of the loop's time on a CPU.

    The fused kernels take only real floating-point parameters on the devices that have them, and no
    sparse gradients; torch checks that at the first step, not here, so ``fused`` is tried only for such
    parameters, and ``allow_fused=False`` (a model with sparse gradients) leaves it out."""
    fused = allow_fused and _fused_kernels_take(params)
    for implementation in ({"fused": True}, {"foreach": True}) if fused else ({"foreach": True},):
        try:
            return optimizer_class(params, **options, **implementation)
        except (TypeError, RuntimeError, ValueError):
            continue
    return optimizer_class(params, **options)


def _fused_kernels_take(params):
    """True when every parameter (of a list of tensors or of param-group dicts) is a real floating-point
    tensor on a device with fused optimizer kernels."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        devices = set(_get_fused_kernels_supported_devices())
    except (ImportError, AttributeError):   # a torch without the list: the devices every version has
        devices = {"cpu", "cuda"}
    tensors = []
    for item in params:
        group = item["params"] if isinstance(item, dict) else item
        tensors += [group] if isinstance(group, torch.Tensor) else list(group)
    return all(t.is_floating_point() and t.device.type in devices for t in tensors)


def sparse_gradient_modules(model):
    """The names of ``model``'s embeddings built with ``sparse=True``, whose weights get sparse gradients."""
    return [name or type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse]


def refuse_sparse_gradients(optimizer, clip_value, why):
    """Raise a ValueError naming ``optimizer`` or ``clip_value`` when they cannot work with sparse gradients
    (``why`` says where these come from): torch's Adam and RMSprop take none, ``clip_grad_value_`` cannot
    clamp one."""
    if optimizer in ("adam", "rmsprop"):
        raise ValueError(f"optimizer={optimizer!r} is not allowed for this model: {why}, which torch's Adam and "
                         "RMSprop do not take; choose one of: 'sgd', 'momentum' (or build it with sparse=False)")
    if clip_value is not None:
        raise ValueError(f"clip_value={clip_value!r} is not allowed for this model: {why}, which "
                         "torch.nn.utils.clip_grad_value_ cannot clamp; leave ClipValue out and clip with "
                         "ClipNorm(max_norm) (or build it with sparse=False)")
