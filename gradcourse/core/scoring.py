"""How well a model does on a whole set, scored batch by batch in eval mode: accuracy for
classifiers, mean squared error for regression models, and the loop both use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks
from .data import batches
from .probes import check_output, modes_restored, refuse_meta, run_model
from .runtime import device_of


def accuracy(model, X, y, batch_size=1024, x_name="X"):
    """Share of rows of ``X`` whose largest logit is the label in ``y`` (model in eval mode, then every
    module given back its own mode). The model must return logits of shape (rows, classes).
    ``x_name`` is what an error message calls ``X`` (fit says ``validation[0]``)."""
    _checks.features_and_labels(X, y, x_name=x_name)
    _checks.integer("batch_size", batch_size, minimum=1)
    return mean_over_rows(model, X, y, batch_size, _correct, x_name)


def _correct(output, target):
    """How many rows' largest output is their label."""
    check_output(output, len(target), "cross_entropy")
    return (output.argmax(dim=1) == target).sum().item()


@torch.no_grad()
def mean_over_rows(model, X, y, batch_size, batch_total, x_name="X"):
    """``sum(batch_total(model(X_b), y_b)) / len(X)`` over batches, in eval mode. Afterwards (even
    after an error or an interrupt) every module has its own mode back: a submodule that was in eval
    mode inside a model in train mode stays in eval mode. Each batch is a copy, so a model that writes
    into its input leaves ``X`` alone. A model whose output is not one tensor is refused."""
    _checks.module("model", model)
    refuse_meta(model)
    device = device_of(model)
    total = 0.0
    with modes_restored(model):
        model.eval()
        for Xb, yb in batches(X, y, batch_size, shuffle=False):
            output = check_output(run_model(model, Xb.to(device, copy=True), x_name), len(yb), loss_fn=None)
            total += batch_total(output, yb.to(device))
    return total / len(X)


def mean_squared_error(model, X, y, batch_size=1024):
    """``mean((model(X) - y)^2)`` over all rows of ``X`` (model in eval mode, then every
    module given back its own mode).

    For regression models whose output has the shape of ``y``, e.g. a
    :class:`~gradcourse.core.models.SequenceRegressor` on :func:`~gradcourse.core.data.adding_problem`.
    """
    _checks.inputs_and_targets(X, y)
    _checks.integer("batch_size", batch_size, minimum=1)
    return mean_over_rows(model, X, y, batch_size,
                           lambda out, target: mse_loss(out, target, reduction="sum").item())


def mse_loss(output, target, reduction="mean"):
    """``F.mse_loss``, refusing to broadcast: an output of shape (n, 1) against targets (n,) would
    silently compare every prediction with every target."""
    if output.shape != target.shape:
        raise ValueError(f"loss_fn='mse' needs the model's output to have the targets' shape {tuple(target.shape)}; "
                         f"the model returned shape {tuple(output.shape)}")
    return F.mse_loss(output, target, reduction=reduction)
