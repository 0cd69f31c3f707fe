"""One-shot measurements of gradient flow: one forward and one backward pass, per-layer norms.

For a network ``x -> h_1 -> ... -> h_L -> logits`` with ``h_l = f(W_l h_{l-1} + b_l)``,
backpropagation gives ``dL/dW_l = delta_l h_{l-1}^T`` with
``delta_l = diag(f'(z_l)) W_{l+1}^T delta_{l+1}``: a product of Jacobians that can
shrink (vanish) or grow (explode) geometrically with depth. :func:`layer_gradient_norms` measures
``||dL/dW_l||``, :func:`activation_gradient_norms` the signal ``||dL/dh_l|| = ||delta_l||`` itself;
:class:`~gradcourse.core.monitor.GradientMonitor` records the same during training.
"""

from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F

from . import _checks
from .layers import ForwardOrder, find_layers, layer_weights, named_layers
from .losses import batch_loss
from .model_state import state_left_alone
from .models import require_course_model
from .norms import group_norms, norm

__all__ = ["activation_gradient_norms", "first_nonfinite_output", "last_nonfinite_gradient", "layer_gradient_norms",
           "named_layer_gradient_norms"]


def named_layer_gradient_norms(model, X, y, *, loss_fn="cross_entropy", compute_loss=None, layers=None, include=None):
    """One forward/backward; ``[(name, ||dL/dW||)]`` per layer, in the order the forward pass meets them.

    The loss is ``loss_fn(model(X), y)`` (:func:`~gradcourse.core.losses.resolve_loss`) or
    ``compute_loss(model, X, y)`` for a model whose output is not one tensor.
    The norm covers each layer's weights (:func:`layer_weights`), as a float64 number that does not
    underflow (:func:`norm`). Uses :func:`torch.autograd.grad`, so the model's ``.grad`` fields are
    left untouched; so are its buffers (BatchNorm's running statistics) and torch's random generators.
    """
    found = find_layers(model, layers, include)
    _checks.batch(X, y)
    with state_left_alone(model):   # restored after the backward pass, which reads BatchNorm's buffers
        order = ForwardOrder(model)
        try:
            with torch.enable_grad():
                loss = batch_loss(model, X, y, loss_fn, compute_loss)
        finally:
            order.remove()
        found = order.sort(found)
        weights = [layer_weights(m) for _, m in found]
        grads = torch.autograd.grad(loss, [p for ws in weights for p in ws], allow_unused=True)
    received, i = [], 0
    for ws in weights:
        received.append([g for g in grads[i:i + len(ws)] if g is not None])
        i += len(ws)
    totals = group_norms(received)
    return [(name, total.item() if gs else float("nan")) for (name, _), total, gs in zip(found, totals, received)]


def layer_gradient_norms(model, X, y, *, loss_fn="cross_entropy", compute_loss=None, layers=None, include=None):
    """One forward/backward; return ``||dL/dW_l||`` per layer as a list of floats, input side first.

    For a course MLP, the layers are its hidden ``nn.Linear`` layers; for any other model,
    see :func:`find_layers` and :func:`named_layer_gradient_norms` (which also gives the names).
    """
    return [value for _, value in named_layer_gradient_norms(
        model, X, y, loss_fn=loss_fn, compute_loss=compute_loss, layers=layers, include=include)]


def activation_gradient_norms(model, X, y):
    """Return ``||dL/dh_l||`` for the output ``h_l`` of every hidden layer, input side first.

    This is the back-propagated signal itself (the ``delta`` that reaches layer l),
    before it is multiplied by the layer's input to give the weight gradient. The model's buffers
    (BatchNorm's running statistics) and torch's random generators are left as they were.
    """
    require_course_model(model)
    _checks.features_and_labels(X, y)
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out)) for block in model.blocks]
    try:
        with torch.enable_grad(), state_left_alone(model):
            loss = F.cross_entropy(model(X), y)
            grads = torch.autograd.grad(loss, outputs)
    finally:
        for handle in handles:
            handle.remove()
    return [norm(g).item() for g in grads]


@torch.no_grad()
def first_nonfinite_output(model, Xb):
    """The name of the first layer (as :func:`named_layers` names it) whose output on the batch ``Xb``
    is not finite: ``"the input batch"`` when ``Xb`` itself is not, ``"the loss"`` when every layer's
    output is. The forward pass runs on a copy of the model (on the model itself, with its buffers
    put back, when it cannot be copied), so BatchNorm's running statistics stay as they were."""
    if not torch.isfinite(Xb).all():
        return "the input batch"
    try:
        model, untouched = copy.deepcopy(model), contextlib.nullcontext()
    except Exception:   # cannot be deep-copied (torch.nn.utils.prune, ...): run on it and restore its buffers
        untouched = state_left_alone(model)
    found = []
    handles = [module.register_forward_hook(
        lambda m, i, out, name=name: found.append(name) if not _all_finite(out) else None)
        for name, module in named_layers(model)]
    try:
        with untouched:
            model(Xb)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else "the loss"


def last_nonfinite_gradient(model):
    """Backward runs from the output: name the layer nearest the output with a non-finite gradient."""
    for name, module in reversed(named_layers(model)):
        if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in module.parameters(recurse=False)):
            return name
    return "unknown layer"


def _all_finite(output):
    """True when every tensor in a module's output (a tensor, or nested tuples such as an LSTM's) is finite."""
    if isinstance(output, torch.Tensor):
        return bool(torch.isfinite(output).all())
    if isinstance(output, (tuple, list)):
        return all(_all_finite(item) for item in output)
    return True
