"""The loss a run or a probe computes, one name per loss everywhere: ``loss_fn`` is ``"cross_entropy"``,
``"mse"`` or a callable ``(outputs, targets) -> loss`` (:func:`resolve_loss`); and the checks that a model
takes its input and gives an output the loss can score (:func:`run_model`, :func:`check_output`).

``"mse"`` is shape-strict everywhere (:func:`mse_loss`): an output of shape (n, 1) against targets of
shape (n,) would broadcast to an (n, n) comparison of every prediction with every target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks

__all__ = ["LOSSES", "batch_loss", "check_loss", "check_output", "mse_loss", "resolve_loss", "run_model"]


def mse_loss(output, target, reduction="mean"):
    """``F.mse_loss``, refusing to broadcast: an output of shape (n, 1) against targets (n,) would
    silently compare every prediction with every target."""
    if output.shape != target.shape:
        raise ValueError(f"loss_fn='mse' needs the model's output to have the targets' shape {tuple(target.shape)}; "
                         f"the model returned shape {tuple(output.shape)}")
    return F.mse_loss(output, target, reduction=reduction)


LOSSES = {"cross_entropy": F.cross_entropy, "mse": mse_loss}
"""The losses ``loss_fn`` names."""


def resolve_loss(loss_fn="cross_entropy"):
    """The loss ``(outputs, targets) -> scalar`` that ``loss_fn`` names: ``"cross_entropy"``
    (``F.cross_entropy``, logits against integer labels), ``"mse"`` (:func:`mse_loss`, outputs of the
    targets' shape), or a callable of its own such as ``torch.nn.HuberLoss()``."""
    if isinstance(loss_fn, str):
        return LOSSES[_checks.choice("loss_fn", loss_fn, tuple(LOSSES))]
    if not callable(loss_fn):
        raise ValueError(f"loss_fn={_checks.describe(loss_fn)} is not allowed; it must be 'cross_entropy', 'mse' "
                         "or a callable (outputs, targets) -> loss")
    return loss_fn


def batch_loss(model, X, y, loss_fn="cross_entropy", compute_loss=None):
    """The loss of one batch: ``compute_loss(model, X, y)`` when given, else ``loss_fn(model(X), y)``."""
    if compute_loss is not None:
        if not callable(compute_loss):
            raise ValueError(f"compute_loss={compute_loss!r} is not allowed; it must be a callable "
                             "(model, X, y) -> loss, or None")
        loss = compute_loss(model, X, y)
    else:
        loss_fn = resolve_loss(loss_fn)
        if loss_fn is F.cross_entropy and (y.is_floating_point() and y.dim() == 1):
            raise ValueError(f"y={_checks.describe(y)} is not allowed with cross-entropy; it must hold integer "
                             "class labels (pass loss_fn='mse' or another loss for real-valued targets)")
        output = run_model(model, X)
        if not isinstance(output, torch.Tensor):
            raise ValueError(f"the model returned {_checks.describe(output)}, not a tensor of outputs; pass "
                             "compute_loss=(model, X, y) -> loss, which picks the output to score")
        loss = loss_fn(output, y)
    return check_loss(loss, loss_fn if compute_loss is None else compute_loss,
                      "compute_loss" if compute_loss is not None else "loss_fn")


def check_loss(loss, loss_fn, name="loss_fn"):
    """``loss`` when it is one number (a tensor of one element), else a ValueError naming ``loss_fn``: a loss
    with ``reduction="none"`` gives one value per example, which backward cannot start from."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"{name}={_checks.describe(loss_fn)} is not allowed: it returned {_checks.describe(loss)}; "
                         "it must return the loss as one number (a scalar tensor, e.g. reduction='mean')")
    return loss


def run_model(model, X, x_name="X"):
    """``model(X)``, with a ValueError that names ``X`` instead of torch's error deep in a layer when
    ``X`` does not fit the model: a floating dtype other than the parameters' (``X.float()`` or
    ``model.double()`` converts), or a shape the model cannot take."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if X.is_floating_point() and dtypes and X.dtype not in dtypes:
        raise ValueError(f"{x_name}={_checks.describe(X)} is not allowed for this model, whose parameters are "
                         f"{', '.join(sorted(str(d) for d in dtypes))}; convert one of them (e.g. {x_name}.float())")
    try:
        return model(X)
    except torch.OutOfMemoryError:   # not a mismatch: the batch is too large for the device
        raise
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"the model cannot take {x_name}={_checks.describe(X)}: {error}") from error


def check_output(output, rows, loss_fn="cross_entropy"):
    """Refuse, with a ValueError that says what to do, a model output that :func:`~gradcourse.fit` and
    the scoring functions cannot score against ``rows`` targets: anything but one tensor (a tuple, a
    dict), and for ``loss_fn="cross_entropy"`` a tensor of any shape other than (rows, classes)."""
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"model is not allowed: it returned {_checks.describe(output)}; it must return one tensor "
                         "of outputs: wrap it in a module whose forward returns the tensor to score (e.g. the logits "
                         "out of the tuple)")
    if loss_fn == "cross_entropy" and (output.dim() != 2 or len(output) != rows):
        raise ValueError(f"model is not allowed: it returned outputs of shape {tuple(output.shape)}; cross-entropy "
                         f"and accuracy need logits of shape (batch, classes) = ({rows}, classes), one logit per class "
                         "(for two classes, 2 logits; for one real-valued output per example, loss_fn='mse')")
    return output
