"""One small training loop for the course, with a clean stop when training diverges."""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import _checks
from ..data import batches
from ..monitor.monitor import GradientMonitor
from .optimizers import make_optimizer, refuse_sparse_gradients, sparse_gradient_modules
from .history import History
from ..probes import (LOSSES, check_output, first_nonfinite_output, last_nonfinite_gradient, modes_restored,
                      refuse_meta, run_model, state_left_alone)
from ..runtime import device_of, flush_denormals
from ..scoring import accuracy, mean_squared_error, mse_loss

SEEDS = (-2**63, 2**64 - 1)
"""The seeds :func:`fit` takes: those of :meth:`torch.Generator.manual_seed`."""


def fit(model, X, y, *, epochs, batch_size, optimizer="sgd", lr, momentum=None, max_norm=None,
        clip_value=None, monitor=None, progress=True, seed=0, validation=None, loss_fn="cross_entropy",
        normalize_grad=False, scheduler=None, score_training_set=True):
    """Train ``model`` on ``(X, y)`` with cross-entropy (or MSE) and return a :class:`History`.

    Args:
        epochs, batch_size: passes over the data and examples per step.
        optimizer, lr, momentum: see :func:`make_optimizer`. A model with sparse gradients
            (``nn.Embedding(..., sparse=True)``) trains with ``"sgd"`` or ``"momentum"`` only.
        max_norm: rescale the gradient to this global norm when larger,
            ``torch.nn.utils.clip_grad_norm_`` (Pascanu et al. 2013).
        clip_value: clamp each gradient entry to [-clip_value, clip_value],
            ``torch.nn.utils.clip_grad_value_``.
        monitor: a :class:`~gradcourse.core.monitor.GradientMonitor` of ``model``; activated
            for the run if it is not active already.
        progress: show a ``tqdm.auto`` progress bar.
        seed: seeds the batch order (epoch e uses ``seed + e``, counted round past 2**64 - 1 to 0);
            an integer in the range of :meth:`torch.Generator.manual_seed`, -2**63 to 2**64 - 1.
        validation: optional ``(X_val, y_val)`` scored after every epoch.
        score_training_set: score the whole training set after every epoch as well
            (``History.train_accuracy`` or ``train_loss``). ``False`` skips that extra forward pass
            over ``X``, which for recurrent networks on long sequences costs a tenth or more of
            the training time.
        loss_fn: ``"cross_entropy"`` (classification: ``X`` of shape (n, features), integer labels
            ``y``, a model that returns logits of shape (n, classes); accuracy recorded per epoch) or
            ``"mse"`` (regression: ``X`` of shape (n, ...), e.g. (n, T, features) sequences, float
            targets ``y`` of shape (n,), the shape of the model's output; the MSE over the whole set
            recorded per epoch in ``train_loss`` and ``val_loss``). The model must return one tensor.
        normalize_grad: divide the gradient by its global norm at every step, ``g / ||g||``,
            so each plain SGD step has length ``lr`` exactly -- normalized gradient descent
            (Hazan, Levy & Shalev-Shwartz 2015, "Beyond Convexity: Stochastic Quasi-Convex
            Optimization"). Clipping only shrinks a gradient above its threshold; this also
            enlarges small ones. It cannot be combined with ``max_norm`` or ``clip_value``.
        scheduler: optional ``optimizer -> torch.optim.lr_scheduler.LRScheduler`` callable
            (e.g. :func:`gradcourse.lessons.optimization.linear_warmup`) that builds its scheduler on the
            optimizer it is given; its ``step()`` runs after every optimizer step, so ``total_iters``
            and the like count steps, not epochs.


    With ``max_norm`` or ``clip_value``, ``History.grad_norm`` still records the norm before
    clipping, and ``History.clipped`` / ``History.clipped_share`` say how often clipping acted.
    Without them the gradients are read, never rescaled in place.

    Train and eval mode: a model given in train mode trains with each of its modules in its own mode,
    so a submodule put in eval mode (a frozen BatchNorm, whose running statistics then stay as they
    are; a Dropout switched off) stays in eval mode; a model given in eval mode (``model.eval()``)
    trains wholly in train mode. Scoring after each epoch runs in eval mode. However the run ends,
    every module is left in the mode it was given.

    If the loss or a gradient becomes NaN or infinite, training stops before the
    optimizer applies it, prints one line naming the step and the layer where the
    values first went non-finite, and returns the history so far. An interrupt
    (Jupyter's stop button) also returns the history so far, with ``History.interrupted`` set; any
    other exception raised during training carries it as its ``.history``, which counts only the
    steps whose update ran. Labels outside ``0..outputs - 1`` (of ``y`` and of the validation set),
    inputs the model cannot take and outputs it cannot score (a tuple, logits of shape (n,)) are
    refused at the first step, before any weight moves.
    """
    opt, params, run = _prepared(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                                 momentum=momentum, max_norm=max_norm, clip_value=clip_value, monitor=monitor,
                                 progress=progress, seed=seed, validation=validation, loss_fn=loss_fn,
                                 normalize_grad=normalize_grad, scheduler=scheduler,
                                 score_training_set=score_training_set)
    with flush_denormals(), (monitor if monitor is not None and not monitor.active else contextlib.nullcontext()):
        history = _train(model, X, y, opt, params, run)
    return history


def check_fit(model, X, y, **options):
    """Raise the ValueError that ``fit(model, X, y, **options)`` would raise before its first step, without
    training: the arguments are checked, the optimizer is built and the scheduler on it (neither takes a
    step), and the model runs in eval mode on the first two rows of ``X`` so that inputs, outputs
    and labels are checked against it. The model's weights, buffers and modes and torch's random
    generators are left as they were. An option that ``fit`` does not have, or a missing ``epochs``,
    ``batch_size`` or ``lr``, is a ValueError too."""
    signature = inspect.signature(fit)
    allowed = [name for name in signature.parameters if name not in ("model", "X", "y")]
    required = [name for name in allowed if signature.parameters[name].default is inspect.Parameter.empty]
    for name, value in options.items():
        if name not in allowed:
            raise ValueError(f"{name}={_checks.describe(value)} is not allowed; fit's options are {', '.join(allowed)}")
    missing = [name for name in required if name not in options]
    if missing:
        raise ValueError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; fit needs a value for "
                         f"each of {', '.join(required)}")
    bound = signature.bind(model, X, y, **options)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    _, _, run = _prepared(arguments.pop("model"), arguments.pop("X"), arguments.pop("y"), **arguments)
    rows = min(len(X), 2)
    with torch.no_grad(), state_left_alone(model), modes_restored(model):
        model.eval()
        device = device_of(model)
        output = check_output(run_model(model, X[:rows].to(device, copy=True), "X"), rows, run.loss_fn)
        if run.loss_fn == "cross_entropy":
            _check_labels(output, y, run.validation)
        else:
            mse_loss(output, y[:rows].to(device))


def _prepared(model, X, y, *, epochs, batch_size, optimizer, lr, momentum, max_norm, clip_value, monitor, progress,
              seed, validation, loss_fn, normalize_grad, scheduler, score_training_set):
    """Check :func:`fit`'s arguments; return its optimizer, the parameters it trains and the :class:`_Run`."""
    _checks.module("model", model)
    refuse_meta(model)
    _checks.choice("loss_fn", loss_fn, tuple(LOSSES))
    check_data = _checks.features_and_labels if loss_fn == "cross_entropy" else _checks.inputs_and_targets
    check_data(X, y)
    _checks.integer("epochs", epochs, minimum=1)
    _checks.integer("batch_size", batch_size, minimum=1)
    for name, value in (("max_norm", max_norm), ("clip_value", clip_value)):
        if value is not None:
            _checks.number(name, value, minimum=0, strict_minimum=True)
    if monitor is not None and (not isinstance(monitor, GradientMonitor) or monitor.model is not model):
        raise ValueError(f"monitor={monitor!r} is not allowed; it must be a GradientMonitor(model) of this model or None")
    _checks.boolean("progress", progress)
    _checks.integer("seed", seed, minimum=SEEDS[0], maximum=SEEDS[1])
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise ValueError(f"validation={_checks.describe(validation)} is not allowed; it must be (X_val, y_val) or None")
        check_data(*validation, x_name="validation[0]", y_name="validation[1]")
    if _training_batchnorm(model) and min(batch_size, len(X)) < 2:
        raise ValueError(f"batch_size={batch_size} with {len(X)} examples is not allowed for a model with BatchNorm; "
                         "it normalizes over the batch and needs at least 2 examples per batch")
    _checks.boolean("normalize_grad", normalize_grad)
    _checks.boolean("score_training_set", score_training_set)
    if normalize_grad and (max_norm is not None or clip_value is not None):
        raise ValueError(f"normalize_grad=True is not allowed with max_norm={max_norm!r} or clip_value={clip_value!r}; "
                         "normalizing sets every gradient's norm to 1, so leave both None")
    if scheduler is not None and not callable(scheduler):
        raise ValueError(f"scheduler={_checks.describe(scheduler)} is not allowed; it must be None or a callable "
                         "optimizer -> torch.optim.lr_scheduler.LRScheduler")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True, so there is nothing to train")
    sparse = sparse_gradient_modules(model)
    if sparse:
        many = len(sparse) > 1
        why = (f"its embedding{'s' * many} {', '.join(map(repr, sparse))} built with sparse=True "
               f"make{'s' * (not many)} sparse gradients")
        refuse_sparse_gradients(optimizer, clip_value, why)
    opt = make_optimizer(params, optimizer, lr, momentum, allow_fused=not sparse)
    run = _Run(epochs, batch_size, max_norm, clip_value, normalize_grad, _scheduler_of(opt, scheduler), loss_fn,
               validation, seed, progress, score_training_set, optimizer)
    return opt, params, run


@dataclass(frozen=True)
class _Run:
    """The settings of one :func:`fit` call, checked, as the training loop reads them."""

    epochs: int
    batch_size: int
    max_norm: float | None
    clip_value: float | None
    normalize_grad: bool
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    loss_fn: str
    validation: tuple | None
    seed: int
    progress: bool
    score_training_set: bool
    optimizer: str


def _scheduler_of(opt, scheduler):
    """The learning-rate scheduler that ``scheduler(opt)`` builds, or None."""
    if scheduler is None:
        return None
    lr_scheduler = scheduler(opt)
    if not isinstance(lr_scheduler, torch.optim.lr_scheduler.LRScheduler):
        raise ValueError(f"scheduler returned {_checks.describe(lr_scheduler)}; it must return a "
                         "torch.optim.lr_scheduler.LRScheduler built on the optimizer it is given")
    if lr_scheduler.optimizer is not opt:
        raise ValueError(f"scheduler returned a {type(lr_scheduler).__name__} built on another optimizer "
                         f"({type(lr_scheduler.optimizer).__name__}), whose learning rate fit does not use; it must "
                         "build the scheduler on the optimizer it is given: scheduler=lambda opt: LinearLR(opt, ...)")
    return lr_scheduler


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


def _gradient_norm(params):
    """The global norm ``||g||`` of the gradients of ``params`` (as ``torch.nn.utils.clip_grad_norm_``
    computes it), as a tensor, read without touching the gradients: no in-place rescaling, so no
    ``.grad`` tensor's version counter moves."""
    grads = [p.grad for p in params if p.grad is not None]
    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(grads)
    if not grads:   # torch before 2.6: the norm clip_grad_norm_ computes, from the same pieces
        return torch.tensor(0.0)
    with torch.no_grad():
        first = grads[0].device
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, 2.0).to(first) for g in grads]), 2.0)


def _train(model, X, y, opt, params, run):
    """Run the training loop with the modes :func:`fit` documents, then give every module its own mode back."""
    with modes_restored(model):
        if not model.training:
            model.train()   # a model given in eval mode trains wholly in train mode
        return _train_steps(model, X, y, opt, params, run)


def _train_steps(model, X, y, opt, params, run):
    epochs, batch_size, max_norm, clip_value = run.epochs, run.batch_size, run.max_norm, run.clip_value
    validation = run.validation
    history = History(max_norm=max_norm, clip_value=clip_value)
    criterion = F.cross_entropy if run.loss_fn == "cross_entropy" else mse_loss
    device = device_of(model)
    # BatchNorm cannot normalize a batch of one example in training mode: leave such a last batch out.
    drop_last = len(X) % batch_size == 1 and _training_batchnorm(model)
    steps_per_epoch = len(X) // batch_size if drop_last else math.ceil(len(X) / batch_size)
    bar = tqdm(total=epochs * steps_per_epoch, desc="training", disable=not run.progress, mininterval=0.5)
    step = 0
    # Filled just before the optimizer's own update runs (its last pre-hook), so that a step interrupted
    # after that, in the update or in a post-hook, is in the History with the steps that moved the weights;
    # ``updated`` just after the update (its first post-hook): an error in the update itself moved nothing.
    entering, updated = {}, {}
    hooks = [opt.register_step_pre_hook(lambda *_: entering.update(started=True)),
             opt.register_step_post_hook(lambda *_: updated.update(done=True))]
    step_done = None
    try:
        for epoch in range(epochs):
            seed = _epoch_seed(run.seed, epoch)
            for Xb, yb in batches(X, y, batch_size, shuffle=True, seed=seed, drop_last=drop_last):
                step += 1
                Xb, yb = Xb.to(device), yb.to(device)
                opt.zero_grad(set_to_none=True)
                if step == 1:   # a ValueError before any weight moves when X or the labels do not fit the model
                    output = check_output(run_model(model, Xb, "X"), len(yb), run.loss_fn)
                    if run.loss_fn == "cross_entropy":
                        _check_labels(output, y, validation)
                else:
                    output = model(Xb)
                loss = criterion(output, yb)
                if not torch.isfinite(loss):
                    _stop(history, step, epoch, f"the loss became {loss.item()}",
                          first_nonfinite_output(model, Xb), bar)
                    return history
                loss.backward()
                if step == 1:
                    _check_gradients(opt, params, run)
                if max_norm is None:
                    norm = _gradient_norm(params).item()
                else:
                    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm).item()
                if not math.isfinite(norm):
                    _stop(history, step, epoch, f"the gradient norm became {norm}",
                          last_nonfinite_gradient(model), bar)
                    return history
                clipped = max_norm is not None and norm > max_norm
                if clip_value is not None:
                    clipped = clipped or _largest_gradient_entry(params) > clip_value
                    torch.nn.utils.clip_grad_value_(params, clip_value)
                if run.normalize_grad and norm > 0:
                    for p in params:
                        if p.grad is not None:
                            p.grad.div_(norm)
                step_done = (loss.item(), norm, clipped)
                entering.clear()
                updated.clear()
                opt.step()
                _record_step(history, step_done)
                step_done = None
                if run.scheduler is not None:
                    run.scheduler.step()
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{history.loss[-1]:.4f}", refresh=False)
            if run.loss_fn == "mse":
                if run.score_training_set:
                    history.train_loss.append(mean_squared_error(model, X, y))
                if validation is not None:
                    history.val_loss.append(mean_squared_error(model, *validation))
                continue
            if run.score_training_set:
                history.train_accuracy.append(accuracy(model, X, y))
            if validation is not None:
                history.val_accuracy.append(accuracy(model, *validation, x_name="validation[0]"))
    except KeyboardInterrupt:
        if step_done is not None and entering:
            _record_step(history, step_done)       # the interrupt came after the weights began to move
        history.interrupted = True
        print(f"Training interrupted at step {step}; returning the history so far.")
    except Exception as error:
        if step_done is not None and updated:
            _record_step(history, step_done)       # the error came after the update, in a post-hook
        error.history = history
        error.add_note(f"fit: the History of the {history.steps} steps done is this exception's .history")
        raise
    finally:
        for hook in hooks:
            hook.remove()
        bar.close()
    return history


def _check_gradients(opt, params, run):
    """Before the first step: sparse gradients from a module other than an embedding built with
    ``sparse=True`` (which :func:`fit` sees before training) are refused for Adam, RMSprop and
    ``clip_value`` before any weight moves, and make SGD use its multi-tensor implementation instead
    of the fused one, which does not take them."""
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        return
    refuse_sparse_gradients(run.optimizer, run.clip_value, "it makes sparse gradients")
    for group in opt.param_groups:
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


def _stop(history, step, epoch, what, layer, bar):
    bar.close()
    history.stop_step = step
    history.stop_layer = layer
    history.stop_message = (f"Training stopped at step {step} (epoch {epoch + 1}): {what}; "
                            f"first non-finite values at {layer}. Lower the learning rate or the init scale, "
                            "or clip gradients (notebooks 03, 04, 06).")
    print(history.stop_message)


def _largest_gradient_entry(params):
    """``max_i |g_i|`` over every gradient entry (what ``clip_grad_value_`` compares with its threshold)."""
    return max((p.grad.detach().abs().max().item() for p in params if p.grad is not None and p.grad.numel()),
               default=0.0)
