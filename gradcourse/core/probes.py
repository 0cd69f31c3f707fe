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
from .models import require_course_model
from .norms import group_norms, norm
from .runtime import generators_restored

LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss}


def resolve_loss(loss_fn=None):
    """A loss ``(outputs, targets) -> scalar``: None or ``"cross_entropy"`` (the default),
    ``"mse"``, or any callable such as ``torch.nn.MSELoss()``."""
    if loss_fn is None:
        return F.cross_entropy
    if isinstance(loss_fn, str):
        return LOSSES[_checks.choice("loss_fn", loss_fn, tuple(LOSSES))]
    if not callable(loss_fn):
        raise ValueError(f"loss_fn={loss_fn!r} is not allowed; it must be None, 'cross_entropy', 'mse' "
                         "or a callable (outputs, targets) -> loss")
    return loss_fn


def batch_loss(model, X, y, loss_fn=None, compute_loss=None):
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
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"the loss must be a scalar tensor; got {_checks.describe(loss)}")
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


def refuse_meta(model):
    """Refuse a model with parameters or buffers on the ``meta`` device: they have a shape but no values."""
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise ValueError("model is not allowed: it has parameters or buffers on the 'meta' device, which hold no "
                         "values; it must be on a real device: build it there, or call model.to_empty(device='cpu') "
                         "and initialize its weights first")


@contextlib.contextmanager
def modes_restored(model):
    """A context that gives every module of ``model`` its own train/eval mode back on leaving it (after
    an error or an interrupt too), so a submodule that was in eval mode inside a model in train mode
    (a frozen BatchNorm) is in eval mode again. Modes are put back with ``module.train(mode)``, parents
    before their children."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            if module.training != training:
                module.train(training)


@contextlib.contextmanager
def state_left_alone(model, parameters=False):
    """Run a pass without leaving a trace on ``model`` or torch: its buffers (BatchNorm's running
    statistics, ...) and torch's random generators (dropout) are put back afterwards; with
    ``parameters=True`` also its parameters, their ``.grad`` fields and its train/eval mode (for a
    pass that takes an optimizer step on a model that cannot be copied)."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    params = [(p, p.detach().clone(), p.grad, None if p.grad is None else p.grad.detach().clone())
              for p in model.parameters()] if parameters else []
    modes = [(m, m.training) for m in model.modules()] if parameters else []
    with generators_restored():
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
                for param, saved, grad, values in params:
                    param.copy_(saved)
                    if grad is not None:      # the same tensor (a learner's loop may hold it), its values back
                        grad.copy_(values)
                    param.grad = grad
            for module, training in modes:
                module.training = training


def named_layer_gradient_norms(model, X, y, *, loss_fn=None, compute_loss=None, layers=None, include=None):
    """One forward/backward; ``[(name, ||dL/dW||)]`` per layer, in the order the forward pass meets them.

    The loss is ``loss_fn(model(X), y)`` (cross-entropy by default) or ``compute_loss(model, X, y)``.
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


def layer_gradient_norms(model, X, y, *, loss_fn=None, compute_loss=None, layers=None, include=None):
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
