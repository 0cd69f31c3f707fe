"""How well a model does on a whole set, scored batch by batch in eval mode: accuracy for
classifiers, mean squared error for regression models, and the loop both use.
"""

from __future__ import annotations

import torch

from . import _checks
from .data import batches
from .losses import check_output, mse_loss, resolve_loss, run_model
from .model_state import modes_restored, refuse_meta
from .runtime import device_of

__all__ = ["accuracy", "mean_loss", "mean_over_rows", "mean_squared_error"]


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


def mean_loss(model, X, y, loss_fn, batch_size=1024):
    """The mean of ``loss_fn(model(X_b), y_b)`` over all rows of ``X``, each batch's (mean-reduced) loss
    weighted by its rows (model in eval mode, then every module given back its own mode): what
    :func:`~gradcourse.core.train.fit` records per epoch for a callable ``loss_fn``."""
    _checks.batch(X, y)
    _checks.integer("batch_size", batch_size, minimum=1)
    loss_fn = resolve_loss(loss_fn)
    return mean_over_rows(model, X, y, batch_size, lambda out, target: loss_fn(out, target).item() * len(target))
