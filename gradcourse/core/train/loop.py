"""One small training loop for the course, with a clean stop when training diverges; what else it does
is a callback (:mod:`~gradcourse.core.train.callbacks`)."""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from .. import _checks
from ..data import batches
from ..losses import check_loss, check_output, resolve_loss, run_model
from ..probes import first_nonfinite_output, last_nonfinite_gradient
from ..model_state import modes_restored, refuse_meta, state_left_alone
from ..norms import gradient_norm
from ..runtime import device_of, flush_denormals
from .callbacks import FitState, clip_value_of, fit_callbacks
from .history import History
from .optimizers import make_optimizer, refuse_sparse_gradients, sparse_gradient_modules

__all__ = ["SEEDS", "check_fit", "fit"]

SEEDS = (-2**63, 2**64 - 1)
"""The seeds :func:`fit` takes: those of :meth:`torch.Generator.manual_seed`."""


def fit(model, X, y, *, epochs, batch_size, optimizer="sgd", lr, loss_fn="cross_entropy", validation=None, seed=0,
        callbacks=()):
    """Train ``model`` on ``(X, y)`` with minibatch steps and return a :class:`History`.

    Args:
        epochs, batch_size: passes over the data and examples per step.
        optimizer, lr: ``"sgd"``, ``"momentum"`` (momentum 0.9), ``"rmsprop"`` or ``"adam"`` with torch's
            defaults, see :func:`~gradcourse.core.train.make_optimizer`. A model with sparse gradients
            (``nn.Embedding(..., sparse=True)``) trains with ``"sgd"`` or ``"momentum"`` only.
        loss_fn: ``"cross_entropy"`` (``X`` of shape (n, features), integer labels ``y``, logits of
            shape (n, classes); accuracy scored per epoch), ``"mse"`` (float targets ``y`` of the
            shape of the model's output, e.g. (n,) for (n, T, features) sequences; the mean squared
            error over the whole set scored per epoch in ``train_loss`` and ``val_loss``) or a
            callable ``(outputs, targets) -> loss`` (its mean over the whole set scored per epoch in
            ``train_loss`` and ``val_loss``); see :func:`~gradcourse.core.losses.resolve_loss`.
        validation: optional ``(X_val, y_val)`` scored after every epoch.
        seed: seeds the batch order (epoch e uses ``seed + e``, counted round past 2**64 - 1 to 0);
            an integer from -2**63 to 2**64 - 1, as :meth:`torch.Generator.manual_seed` takes.
        callbacks: what else the loop does (:mod:`~gradcourse.core.train.callbacks`): :class:`ClipNorm`,
            :class:`ClipValue`, :class:`NormalizeGradient`, :class:`Scheduler`, a
            :class:`~gradcourse.core.monitor.GradientMonitor` of ``model`` (activated for the run if it
            is not active already), or a learner's own :class:`Callback`. ``ProgressBar()`` and
            ``EpochScores()`` are added unless the list holds one of each kind.

    ``History.grad_norm`` records the global norm ``||g||`` of every step's gradient before any
    callback changed it. Train and eval mode: a model given in train mode trains with each module
    in its own mode (a frozen BatchNorm stays frozen); a model given in eval mode trains wholly in
    train mode; scoring runs in eval mode; every module gets its own mode back at the end.

    If the loss or a gradient becomes NaN or infinite, training stops before the optimizer applies
    it, prints one line naming the step and the layer where the values first went non-finite, and
    returns the history so far. An interrupt (Jupyter's stop button) also returns the history so far,
    with ``History.interrupted`` set; any other exception carries it as its ``.history``, which counts
    only the steps whose update ran. Labels outside ``0..outputs - 1``, inputs the model cannot take
    and outputs it cannot score are refused at the first step, before any weight moves.
    """
    state = _prepared(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, loss_fn=loss_fn,
                      validation=validation, seed=seed, callbacks=callbacks)
    with flush_denormals():
        _run(state)
    if state.history.stop_message:
        print(state.history.stop_message)
    return state.history


def check_fit(model, X, y, **fit_options):
    """Raise the ValueError that ``fit(model, X, y, **fit_options)`` would raise before its first step, without
    training: the arguments and callbacks are checked, the optimizer is built (a :class:`Scheduler` is built
    on it; neither takes a step), and the model runs in eval mode on the first two rows of ``X`` so that
    inputs, outputs and labels are checked against it. The model's weights, buffers and modes and torch's
    random generators are left as they were. An option that ``fit`` does not have, or a missing ``epochs``,
    ``batch_size`` or ``lr``, is a ValueError too."""
    signature = inspect.signature(fit)
    allowed = [name for name in signature.parameters if name not in ("model", "X", "y")]
    required = [name for name in allowed if signature.parameters[name].default is inspect.Parameter.empty]
    for name, value in fit_options.items():
        if name not in allowed:
            raise ValueError(f"{name}={_checks.describe(value)} is not allowed; fit's options are {', '.join(allowed)}")
    missing = [name for name in required if name not in fit_options]
    if missing:
        raise ValueError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; fit needs a value for "
                         f"each of {', '.join(required)}")
    state = _prepared(model, X, y, **{name: fit_options.get(name, signature.parameters[name].default) for name in allowed})
    rows = min(len(X), 2)
    with torch.no_grad(), state_left_alone(model), modes_restored(model):
        model.eval()
        output = check_output(run_model(model, X[:rows].to(device_of(model), copy=True), "X"), rows, loss_fn=state.loss_fn)
        if state.loss_fn == "cross_entropy":
            _check_labels(output, y, state.validation)
        else:
            check_loss(resolve_loss(state.loss_fn)(output, y[:rows].to(device_of(model))), state.loss_fn)


def _prepared(model, X, y, *, epochs, batch_size, optimizer, lr, loss_fn, validation, seed, callbacks):
    """Check :func:`fit`'s arguments and callbacks; return the run's :class:`FitState`."""
    _checks.module("model", model)
    refuse_meta(model)
    resolve_loss(loss_fn)
    check_data = {"cross_entropy": _checks.features_and_labels, "mse": _checks.inputs_and_targets}.get(
        loss_fn if isinstance(loss_fn, str) else None, _checks.batch)
    check_data(X, y)
    _checks.integer("epochs", epochs, minimum=1)
    _checks.integer("batch_size", batch_size, minimum=1)
    _checks.integer("seed", seed, minimum=SEEDS[0], maximum=SEEDS[1])
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError(f"validation={_checks.describe(validation)} is not allowed; it must be (X_val, y_val) or None")
        check_data(*validation, x_name="validation[0]", y_name="validation[1]")
    if _training_batchnorm(model) and min(batch_size, len(X)) < 2:
        raise ValueError(f"batch_size={batch_size} with {len(X)} examples is not allowed for a model with BatchNorm; "
                         "it normalizes over the batch and needs at least 2 examples per batch")
    callbacks = fit_callbacks(model, callbacks)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True, so there is nothing to train")
    sparse = sparse_gradient_modules(model)
    if sparse:
        many = len(sparse) > 1
        why = (f"its embedding{'s' * many} {', '.join(map(repr, sparse))} built with sparse=True "
               f"make{'s' * (not many)} sparse gradients")
        refuse_sparse_gradients(optimizer, clip_value_of(callbacks), why)
    opt = make_optimizer(params, optimizer, lr, allow_fused=not sparse)
    # BatchNorm cannot normalize a batch of one example in training mode: leave such a last batch out.
    drop_last = len(X) % batch_size == 1 and _training_batchnorm(model)
    state = FitState(model, X, y, validation, loss_fn, opt, optimizer, params, History(), epochs, batch_size,
                     len(X) // batch_size if drop_last else math.ceil(len(X) / batch_size), drop_last, seed, callbacks)
    for callback in callbacks:
        callback.check(state)
    return state


def _training_modes(model):
    """The modules of ``model`` that :func:`fit` runs in train mode: those in train mode when the model
    itself is (a submodule put in eval mode stays so), every module when the model is in eval mode."""
    return [m for m in model.modules() if m.training or not model.training]


def _training_batchnorm(model):
    """True when a BatchNorm of ``model`` normalizes over the batch during :func:`fit`."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in _training_modes(model))


def _epoch_seed(seed, epoch):
    """``seed + epoch``, counted round to 0 past the largest seed torch takes, 2**64 - 1."""
    total = seed + epoch
    return total - 2**64 if total > SEEDS[1] else total


def _run(state):
    """The loop, with the modes, the interrupt and the error handling :func:`fit` documents."""
    model, history, opt = state.model, state.history, state.optimizer
    # Filled just before the optimizer's own update runs (its last pre-hook), so that a step interrupted
    # after that, in the update or in a post-hook, is in the History with the steps that moved the weights;
    # ``updated`` just after the update (its first post-hook): an error in the update itself moved nothing.
    entering, updated, pending = {}, {}, []
    hooks = [opt.register_step_pre_hook(lambda *_: entering.update(started=True)),
             opt.register_step_post_hook(lambda *_: updated.update(done=True))]
    try:
        with modes_restored(model):
            if not model.training:
                model.train()   # a model given in eval mode trains wholly in train mode
            for callback in state.callbacks:
                callback.before_fit(state)
            _epochs(state, entering, updated, pending)
    except KeyboardInterrupt:
        if pending and entering:
            _record_step(history, pending.pop())       # the interrupt came after the weights began to move
        history.interrupted = True
        print(f"Training interrupted at step {state.step}; returning the history so far.")
    except Exception as error:
        if pending and updated:
            _record_step(history, pending.pop())       # the error came after the update, in a post-hook
        error.history = history
        error.add_note(f"fit: the History of the {history.steps} steps done is this exception's .history")
        raise
    finally:
        for hook in hooks:
            hook.remove()
        _after_fit(state)


def _after_fit(state):
    """Every callback's ``after_fit``, each one even when an earlier one raised; then the first error."""
    errors = []
    for callback in state.callbacks:
        try:
            callback.after_fit(state)
        except Exception as error:   # noqa: PERF203 (each callback must get its turn)
            errors.append(error)
    if errors:
        raise errors[0]


def _epochs(state, entering, updated, pending):
    device = device_of(state.model)
    for state.epoch in range(state.epochs):
        for Xb, yb in batches(state.X, state.y, state.batch_size, shuffle=True, seed=_epoch_seed(state.seed, state.epoch),
                              drop_last=state.drop_last):
            state.step += 1
            if not _backward(state, Xb.to(device), yb.to(device)):
                return
            pending.append((state.loss, state.grad_norm, state.clipped))
            entering.clear()
            updated.clear()
            state.optimizer.step()
            _record_step(state.history, pending.pop())
            for callback in state.callbacks:
                callback.after_step(state)
        for callback in state.callbacks:
            callback.after_epoch(state)


def _backward(state, Xb, yb):
    """Forward, loss, backward and the callbacks that change the gradient; False when training must stop."""
    model, opt = state.model, state.optimizer
    opt.zero_grad(set_to_none=True)
    if state.step == 1:   # a ValueError before any weight moves when X or the labels do not fit the model
        output = check_output(run_model(model, Xb, "X"), len(yb), state.loss_fn)
        if state.loss_fn == "cross_entropy":
            _check_labels(output, state.y, state.validation)
    else:
        output = model(Xb)
    loss = resolve_loss(state.loss_fn)(output, yb)
    if state.step == 1:
        check_loss(loss, state.loss_fn)
    if not torch.isfinite(loss):
        _stop(state, f"the loss became {loss.item()}", first_nonfinite_output(model, Xb))
        return False
    loss.backward()
    if state.step == 1:
        _check_gradients(state)
    state.loss, state.grad_norm, state.clipped = loss.item(), gradient_norm(state.params).item(), False
    if not math.isfinite(state.grad_norm):
        _stop(state, f"the gradient norm became {state.grad_norm}", last_nonfinite_gradient(model))
        return False
    for callback in state.callbacks:
        callback.after_backward(state)
    return True


def _check_gradients(state):
    """Before the first step: sparse gradients from a module other than an embedding built with
    ``sparse=True`` (which :func:`fit` sees before training) are refused for Adam, RMSprop and
    :class:`ClipValue` before any weight moves, and make SGD use its multi-tensor implementation instead
    of the fused one, which does not take them."""
    if not any(p.grad is not None and p.grad.is_sparse for p in state.params):
        return
    refuse_sparse_gradients(state.optimizer_name, clip_value_of(state.callbacks), "it makes sparse gradients")
    for group in state.optimizer.param_groups:
        if group.get("fused"):
            group.update(fused=False, foreach=True)


def _record_step(history, values):
    """Append one optimizer step's loss, gradient norm and whether it was clipped."""
    loss, norm, clipped = values
    history.loss.append(loss)
    history.grad_norm.append(norm)
    history.clipped.append(clipped)


def _check_labels(output, y, validation):
    """Cross-entropy's labels must index the model's outputs: ``0 <= label < output.shape[1]``."""
    classes = output.shape[-1]
    for name, labels in (("y", y), ("validation[1]", None if validation is None else validation[1])):
        if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"{name} holds labels from {labels.min().item()} to {labels.max().item()}, but the model "
                             f"has {classes} outputs; the labels must lie in 0..{classes - 1}")


def _stop(state, what, layer):
    history = state.history
    history.stop_step = state.step
    history.stop_layer = layer
    history.stop_message = (f"Training stopped at step {state.step} (epoch {state.epoch + 1}): {what}; "
                            f"first non-finite values at {layer}. Lower the learning rate or the init scale, "
                            "or clip gradients (notebooks 03, 04, 06).")
