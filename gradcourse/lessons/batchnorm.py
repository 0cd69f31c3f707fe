"""BatchNorm from scratch: the batch statistics, the running statistics, and what they cost.

* :func:`batch_norm` writes out Ioffe & Szegedy (2015), Algorithm 1, with PyTorch's running
  statistics; it matches :func:`torch.nn.functional.batch_norm`.
* :func:`fold_batchnorm` folds an eval-mode BatchNorm into the ``nn.Linear`` before it.
* :func:`alone_or_in_batch` measures how much a layer's output for the first examples changes
  when they are run without the rest of the batch: BatchNorm's train-mode output depends on the
  batch, LayerNorm's and GroupNorm's does not.
* :func:`recompute_running_statistics_` re-estimates every BatchNorm's running statistics as a
  plain average over a pass of the data, and :func:`stale_statistics_experiment` shows why one
  would: batches from a single class, run through the network in train mode, leave the weights
  as they were and the running statistics wrong, so the model scores well in train mode and
  badly in eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..core import _checks
from ..core.data import batches
from ..core.models import seeded_mlp
from ..core.scoring import accuracy
from ..core.train import ProgressBar, fit

__all__ = ["alone_or_in_batch", "batch_norm", "fold_batchnorm", "NORM_LAYERS", "recompute_running_statistics_",
           "stale_statistics_experiment", "train_mode_accuracy"]

NORM_LAYERS = (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)


def _tensor(name, value, dim):
    if not isinstance(value, torch.Tensor) or value.dim() != dim or not value.is_floating_point():
        raise ValueError(f"{name}={_checks.describe(value)} is not allowed; it must be a {dim}-D floating-point "
                         "torch.Tensor")
    return value


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch normalization of ``x`` (examples, features), feature by feature.

    Training mode (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training
    by Reducing Internal Covariate Shift", Algorithm 1), over the ``m`` examples of the batch::

        mu = (1/m) sum_i x_i,   var = (1/m) sum_i (x_i - mu)^2        (the biased variance)
        y_i = weight * (x_i - mu) / sqrt(var + eps) + bias

    and, in place, PyTorch's running statistics (exponential moving averages; the variance taken
    unbiased, ``m / (m - 1)`` times the one used above)::

        running_mean <- (1 - momentum) * running_mean + momentum * mu
        running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

    Eval mode normalizes with ``running_mean`` and ``running_var`` and changes nothing. Returns
    ``y``; matches :func:`torch.nn.functional.batch_norm` with the same arguments.
    """
    _tensor("x", x, 2)
    features = x.shape[1]
    for name, value in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if _tensor(name, value, 1).shape[0] != features:
            raise ValueError(f"{name} has {value.shape[0]} entries but x has {features} features; they must match")
    _checks.boolean("training", training)
    if not training and (running_var < 0).any():
        raise ValueError(f"running_var={running_var.tolist()} is not allowed; a variance must be >= 0 in every entry")
    momentum = _checks.number("momentum", momentum, minimum=0, maximum=1)
    eps = _checks.number("eps", eps, minimum=0, strict_minimum=True)
    if training:
        m = x.shape[0]
        if m < 2:
            raise ValueError(f"x has {m} row; training mode needs at least 2 to estimate a variance")
        mean = x.mean(dim=0)
        var = ((x - mean) ** 2).mean(dim=0)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * m / (m - 1))
    else:
        mean, var = running_mean, running_var
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def fold_batchnorm(linear, bn):
    """A new ``nn.Linear`` equal to ``bn(linear(x))`` with ``bn`` in eval mode.

    With ``s = gamma / sqrt(running_var + eps)`` (one factor per output unit)::

        W' = s[:, None] * W,      b' = (b - running_mean) * s + beta

    (a missing bias counts as 0, a BatchNorm without affine as gamma 1, beta 0). Inference then
    runs one layer instead of two; :func:`torch.nn.utils.fusion.fuse_linear_bn_eval` does the
    same. Only valid in eval mode: in training the statistics come from each batch.
    """
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear={type(linear).__name__} is not allowed; it must be a torch.nn.Linear")
    if not isinstance(bn, nn.BatchNorm1d):
        raise ValueError(f"bn={type(bn).__name__} is not allowed; it must be a torch.nn.BatchNorm1d")
    if bn.num_features != linear.out_features:
        raise ValueError(f"bn has {bn.num_features} features but linear has {linear.out_features} outputs; "
                         "they must match")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn has no running statistics (track_running_stats=False); there is nothing to fold")
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.affine:
            scale = scale * bn.weight
        shift = bn.bias if bn.affine else torch.zeros_like(scale)
        bias = linear.bias if linear.bias is not None else torch.zeros_like(scale)
        folded = nn.Linear(linear.in_features, linear.out_features, device=linear.weight.device,
                           dtype=linear.weight.dtype)
        folded.weight.copy_(linear.weight * scale[:, None])
        folded.bias.copy_((bias - bn.running_mean) * scale + shift)
    return folded


def alone_or_in_batch(layer, X, subset=1):
    """``max |layer(X[:subset]) - layer(X)[:subset]|``: how much the first ``subset`` examples'
    outputs change when they are run without the rest of ``X``.

    Runs a copy of ``layer`` in train mode (its running statistics are left untouched). About 0
    for :class:`~torch.nn.LayerNorm` (Ba, Kiros & Hinton 2016) and :class:`~torch.nn.GroupNorm`
    (Wu & He 2018), which normalize each example over its own features; not for
    :class:`~torch.nn.BatchNorm1d`, which normalizes each feature over the batch, and which cannot
    run a single example in train mode at all (``subset=1`` raises torch's ValueError).
    """
    if not isinstance(layer, NORM_LAYERS):
        names = ", ".join(cls.__name__ for cls in NORM_LAYERS)
        raise ValueError(f"layer={type(layer).__name__} is not allowed; choose one of: {names}")
    _tensor("X", X, 2)
    _checks.integer("subset", subset, minimum=1, maximum=max(1, len(X) - 1))
    layer = copy.deepcopy(layer).train()
    with torch.no_grad():
        return (layer(X[:subset]) - layer(X)[:subset]).abs().max().item()


def _batchnorms(model):
    found = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
    if not found:
        raise ValueError(f"model={type(model).__name__} is not allowed; it must contain a BatchNorm layer")
    return found


@torch.no_grad()
def recompute_running_statistics_(model, X, batch_size=500, seed=0):
    """Re-estimate every BatchNorm's running statistics of ``model`` from one shuffled pass over ``X``.

    Resets them, sets ``momentum=None`` (PyTorch's cumulative average: after batch k,
    ``running = running + (batch - running) / k``, the plain mean of the batches' statistics) and
    runs the batches through in train mode without gradients; the weights do not change. Puts the
    model in eval mode, restores each layer's momentum and returns the model.
    """
    _checks.module("model", model)
    layers = _batchnorms(model)
    _tensor("X", X, 2)
    _checks.integer("batch_size", batch_size, minimum=2)
    _checks.integer("seed", seed)
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    model.train()
    for xb, _ in batches(X, torch.zeros(len(X)), batch_size, seed=seed, drop_last=len(X) % batch_size == 1):
        model(xb)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return model.eval()


def train_mode_accuracy(model, X, y, batch_size=1000):
    """Accuracy with each BatchNorm normalizing by the statistics of the test batch itself (train
    mode), on a copy of ``model`` so that its running statistics stay as they are."""
    _checks.module("model", model)
    _checks.features_and_labels(X, y)
    _checks.integer("batch_size", batch_size, minimum=2)
    model = copy.deepcopy(model).train()
    with torch.no_grad():
        correct = sum((model(xb).argmax(dim=1) == yb).sum().item()
                      for xb, yb in batches(X, y, batch_size, shuffle=False))
    return correct / len(X)


def stale_statistics_experiment(X, y, *, validation, digit=0, stale_batches=20, batch_size=16, epochs=1,
                                lr=0.05, width=100, depth=3, seed=0):
    """Train an MLP with BatchNorm, then run ``stale_batches`` batches of one ``digit`` through it in
    train mode without gradients (a pass over class-sorted data that forgot ``model.eval()``).

    The weights do not change, but with BatchNorm's momentum (0.1 by default) each batch pulls the
    running statistics 10% of the way towards that one class's statistics: after k batches the
    training pass keeps only ``(1 - momentum)**k`` (``0.9**k``) of its weight. Returns accuracies on
    ``validation=(X_val, y_val)``: ``"train_mode"`` (batch statistics, batches of 1000) and ``"eval"``
    right after training, ``"eval_stale"`` after the single-class batches, ``"eval_recomputed"`` after
    :func:`recompute_running_statistics_` over ``X``, and ``"stale_weight"``, the
    ``1 - (1 - momentum)**stale_batches`` of the running statistics that came from the one class.
    """
    _checks.features_and_labels(X, y)
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError(f"validation={_checks.describe(validation)} is not allowed; it must be (X_val, y_val)")
    X_val, y_val = validation
    _checks.features_and_labels(X_val, y_val, x_name="validation[0]", y_name="validation[1]")
    _checks.choice("digit", digit, tuple(sorted(set(y.tolist()))))
    _checks.integer("stale_batches", stale_batches, minimum=0)
    _checks.integer("batch_size", batch_size, minimum=2)
    _checks.integer("epochs", epochs, minimum=1)
    _checks.number("lr", lr, minimum=0, strict_minimum=True)
    _checks.integer("seed", seed)
    model = seeded_mlp(X, seed=seed, width=width, depth=depth, norm="batch")
    fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, callbacks=[ProgressBar(show=False)])
    result = {"train_mode": train_mode_accuracy(model, X_val, y_val), "eval": accuracy(model, X_val, y_val)}
    one_class = X[y == digit]
    model.train()
    with torch.no_grad():
        for k in range(stale_batches):
            start = (k * batch_size) % max(1, len(one_class) - batch_size)
            model(one_class[start:start + batch_size])
    result["eval_stale"] = accuracy(model, X_val, y_val)
    recompute_running_statistics_(model, X, seed=seed)
    result["eval_recomputed"] = accuracy(model, X_val, y_val)
    momentum = _batchnorms(model)[0].momentum
    result["stale_weight"] = 1 - (1 - momentum) ** stale_batches
    return result
