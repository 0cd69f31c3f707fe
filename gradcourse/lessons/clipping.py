"""Gradient clipping: norm clipping keeps the gradient's direction, value clipping turns it.

Norm clipping (Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent neural
networks", algorithm 1) rescales the whole gradient when its norm exceeds a threshold c,

    g <- g * min(1, c / ||g||),

which keeps its direction. Value clipping clamps every entry, ``g_i <- clamp(g_i, -c, c)``,
which changes the direction whenever some entries are clamped and others are not. PyTorch
implements them as :func:`torch.nn.utils.clip_grad_norm_` and :func:`torch.nn.utils.clip_grad_value_`;
:func:`clipped_copy` applies them to copies of a list of gradients, :func:`global_norm`, :func:`cosine`
and :func:`entry_quantile` measure what they did, and :func:`error_rate` scores a trained sequence model
the way Pascanu et al. score their synthetic tasks. The loss surface that motivates clipping, their
"cliff", is :mod:`gradcourse.lessons.cliff`.
"""

from __future__ import annotations

import torch

from ..core import _checks
from ..core.losses import LOSSES

__all__ = ["clipped_copy", "cosine", "entry_quantile", "error_rate", "ERROR_TOLERANCE", "global_norm",
           "parameter_gradients"]


def _gradient_list(gradients, name="gradients"):
    gradients = list(gradients) if isinstance(gradients, (list, tuple)) else [gradients]
    if not gradients or not all(isinstance(g, torch.Tensor) and g.is_floating_point() for g in gradients):
        raise ValueError(f"{name}={_checks.describe(gradients)} is not allowed; it must be a floating-point "
                         "torch.Tensor or a non-empty list of them")
    return gradients


def parameter_gradients(model, X, y, loss_fn="cross_entropy"):
    """The gradient of the loss on ``(X, y)`` with respect to every parameter of ``model``.

    One forward and backward pass through :func:`torch.autograd.grad` (``.grad`` fields stay
    untouched); ``loss_fn`` is ``"cross_entropy"`` (classification, as in :func:`~gradcourse.core.train.fit`)
    or ``"mse"`` (regression, e.g. a :class:`~gradcourse.core.models.SequenceRegressor`).
    Returns a list of tensors in ``model.parameters()`` order.
    """
    _checks.module("model", model)
    _checks.choice("loss_fn", loss_fn, tuple(LOSSES))
    (_checks.inputs_and_targets if loss_fn == "mse" else _checks.features_and_labels)(X, y)
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        out = model(X)
        value = LOSSES[loss_fn](out, y)
        return list(torch.autograd.grad(value, params))


def clipped_copy(gradients, max_norm=None, clip_value=None):
    """Clip copies of ``gradients`` with PyTorch's own functions and return them.

    ``max_norm``: :func:`torch.nn.utils.clip_grad_norm_`, which multiplies every tensor by
    ``min(1, max_norm / (||g|| + 1e-6))`` with ``||g||`` the norm of all of them together.
    ``clip_value``: :func:`torch.nn.utils.clip_grad_value_`, which clamps each entry to
    ``[-clip_value, clip_value]``. Give exactly one. The inputs are left unchanged.
    """
    gradients = _gradient_list(gradients)
    if (max_norm is None) == (clip_value is None):
        raise ValueError(f"max_norm={max_norm!r}, clip_value={clip_value!r} is not allowed; give exactly one of them")
    holders = []
    for g in gradients:
        holder = torch.zeros_like(g, requires_grad=True)
        holder.grad = g.detach().clone()
        holders.append(holder)
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(holders, _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True))
    else:
        clip_value = _checks.number("clip_value", clip_value, minimum=0, strict_minimum=True)
        torch.nn.utils.clip_grad_value_(holders, clip_value)
    return [holder.grad for holder in holders]


def global_norm(gradients):
    """``||g||``: the Euclidean norm of all the tensors together, as if flattened into one vector (float64)."""
    gradients = _gradient_list(gradients)
    return torch.linalg.vector_norm(torch.cat([g.detach().double().flatten() for g in gradients])).item()


def cosine(gradients, others):
    """The cosine of the angle between two gradients, each a tensor or a list of tensors taken
    together as one vector: ``<g, h> / (||g|| ||h||)`` (float64). 1 means the same direction."""
    a = torch.cat([g.detach().double().flatten() for g in _gradient_list(gradients)])
    b = torch.cat([g.detach().double().flatten() for g in _gradient_list(others, "others")])
    if a.shape != b.shape:
        raise ValueError(f"gradients has {a.numel()} entries and others {b.numel()}; they must match")
    denominator = torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)
    if denominator == 0:
        raise ValueError("the cosine is undefined for a zero gradient")
    return (a @ b / denominator).item()


def entry_quantile(gradients, q):
    """The ``q``-quantile of the absolute gradient entries ``|g_i|``, over all tensors together.

    A value-clipping threshold at ``entry_quantile(g, 0.9)`` clamps the largest 10% of the entries.
    """
    q = _checks.number("q", q, minimum=0, maximum=1)
    values = torch.cat([g.detach().double().abs().flatten() for g in _gradient_list(gradients)])
    return torch.quantile(values, q).item()


ERROR_TOLERANCE = 0.4


def error_rate(model, X, y, tolerance=ERROR_TOLERANCE):
    """The share of sequences whose prediction misses the target by more than ``tolerance``:
    ``mean(|model(X) - y| > tolerance)``, a float in [0, 1].

    This is how Pascanu, Mikolov & Bengio (2013) score their synthetic regression tasks (the
    authors' code, github.com/pascanu/trainingRNNs, ``RNN.py`` and ``addition.py``): their adding
    problem's target is the *mean* of the two marked values, a sequence counts as an error when
    the squared error exceeds 0.04, i.e. ``|error| > 0.2`` on that scale, and a run counts as
    solved once no validation sequence is an error. For
    :func:`gradcourse.core.data.adding_problem`, whose target is the *sum*, the same criterion is
    ``|error| > 0.4``, the default. Predicting the constant 1 misses by more than 0.4 whenever
    ``|u_a + u_b - 1| > 0.4``, with probability ``(1 - 0.4)^2 = 0.36``.
    """
    _checks.module("model", model)
    _checks.inputs_and_targets(X, y)
    tolerance = _checks.number("tolerance", tolerance, minimum=0, strict_minimum=True)
    with torch.no_grad():
        prediction = model(X)
    if prediction.shape != y.shape:
        raise ValueError(f"the model's predictions have shape {tuple(prediction.shape)} but y has {tuple(y.shape)}; "
                         "they must match")
    return ((prediction - y).abs() > tolerance).double().mean().item()
