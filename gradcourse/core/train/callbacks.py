"""What :func:`~gradcourse.core.train.fit` does beyond forward, backward and step, as callbacks.

A callback is an instance of a :class:`Callback` subclass that overrides any of its methods; ``fit``
calls each at its moment of the loop with the :class:`FitState` of the run, in the order of the list. The course's remedies are callbacks a
notebook passes, ``fit(..., callbacks=[ClipNorm(1.0)])``, and a learner writes one by overriding a
method::

    class PrintEveryEpoch(Callback):
        def after_epoch(self, state):
            print(state.epoch, state.history.loss[-1])

Order: ``check`` (before any weight moves), ``before_fit``; per step, after ``loss.backward()`` and
the measurement of the gradient norm, ``after_backward`` (where clipping acts), the optimizer's step,
``after_step``; ``after_epoch``; ``after_fit`` (always, also after an error or an interrupt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from tqdm.auto import tqdm

from .. import _checks
from ..monitor.monitor import GradientMonitor
from ..norms import gradient_norm
from ..scoring import accuracy, mean_loss, mean_squared_error

__all__ = ["Callback", "ClipNorm", "ClipValue", "EpochScores", "FitState", "MonitorOn", "NormalizeGradient", "ProgressBar",
           "Scheduler", "clip_value_of", "fit_callbacks"]


@dataclass
class FitState:
    """One :func:`~gradcourse.core.train.fit` run as its callbacks see it.

    ``model``, ``X``, ``y``, ``validation``, ``loss_fn``, ``epochs``, ``batch_size``, ``seed`` and
    ``callbacks`` are the run's; ``optimizer`` is the ``torch.optim`` optimizer built from
    ``optimizer_name``; ``params`` the parameters it trains; ``steps_per_epoch`` counts the batches of
    an epoch (``drop_last``: a last batch of one example is left out for BatchNorm); ``history`` the
    :class:`~gradcourse.core.train.History` being filled. During a step: ``epoch`` (0-based),
    ``step`` (1-based), ``loss`` (float), ``grad_norm`` (the global gradient norm ``||g||`` after
    backward, before any callback changed the gradients) and ``clipped`` (set by a callback that
    changed them)."""

    model: torch.nn.Module
    X: torch.Tensor
    y: torch.Tensor
    validation: tuple | None
    loss_fn: object
    optimizer: torch.optim.Optimizer
    optimizer_name: str
    params: list
    history: object
    epochs: int
    batch_size: int
    steps_per_epoch: int
    drop_last: bool
    seed: int
    callbacks: list = field(default_factory=list)
    epoch: int = 0
    step: int = 0
    loss: float = float("nan")
    grad_norm: float = float("nan")
    clipped: bool = False


class Callback:
    """A behaviour added to :func:`~gradcourse.core.train.fit`'s loop; every method does nothing
    unless overridden, and each takes the run's :class:`FitState`."""

    def check(self, state):
        """Before training: raise a ValueError when this callback cannot work with the run."""

    def before_fit(self, state):
        """Once, before the first step."""

    def after_backward(self, state):
        """After ``loss.backward()``, before the optimizer's step: the place to change gradients."""

    def after_step(self, state):
        """After the optimizer's step, once the step is in ``state.history``."""

    def after_epoch(self, state):
        """After each full pass over the data."""

    def after_fit(self, state):
        """Once at the end, however the run ended."""


class ClipNorm(Callback):
    """Rescale the gradient to global norm ``max_norm`` when it is larger,
    ``g <- g * min(1, max_norm / ||g||)``: ``torch.nn.utils.clip_grad_norm_`` (Pascanu, Mikolov &
    Bengio 2013, "On the difficulty of training recurrent neural networks"). The direction is kept.
    ``History.grad_norm`` keeps the norm before clipping; ``History.clipped`` says when it acted."""

    def __init__(self, max_norm):
        self.max_norm = _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True)

    def before_fit(self, state):
        state.history.max_norm = self.max_norm

    def after_backward(self, state):
        # the norm of the gradients as they are now, after any callback before this one changed them
        if torch.nn.utils.clip_grad_norm_(state.params, self.max_norm).item() > self.max_norm:
            state.clipped = True

    def __repr__(self):
        return f"ClipNorm(max_norm={self.max_norm!r})"


class ClipValue(Callback):
    """Clamp each gradient entry to ``[-clip_value, clip_value]``: ``torch.nn.utils.clip_grad_value_``.
    Unlike :class:`ClipNorm` this can turn the gradient's direction."""

    def __init__(self, clip_value):
        self.clip_value = _checks.number("clip_value", clip_value, minimum=0, strict_minimum=True)

    def before_fit(self, state):
        state.history.clip_value = self.clip_value

    def after_backward(self, state):
        largest = max((p.grad.detach().abs().max().item() for p in state.params if p.grad is not None and p.grad.numel()),
                      default=0.0)
        if largest > self.clip_value:
            state.clipped = True
        torch.nn.utils.clip_grad_value_(state.params, self.clip_value)

    def __repr__(self):
        return f"ClipValue(clip_value={self.clip_value!r})"


class NormalizeGradient(Callback):
    """Divide the gradient by its global norm at every step, ``g / ||g||``, so each plain SGD step has
    length ``lr`` exactly: normalized gradient descent (Hazan, Levy & Shalev-Shwartz 2015, "Beyond
    Convexity: Stochastic Quasi-Convex Optimization"). Clipping only shrinks a gradient above its
    threshold; this also enlarges small ones, so it does not combine with :class:`ClipNorm` or
    :class:`ClipValue`."""

    def check(self, state):
        clipping = [c for c in state.callbacks if isinstance(c, (ClipNorm, ClipValue))]
        if clipping:
            raise ValueError(f"NormalizeGradient() is not allowed with {clipping[0]!r}; normalizing sets every "
                             "gradient's norm to 1, so leave the clipping callback out")

    def after_backward(self, state):
        norm = gradient_norm(state.params).item()   # as the gradients are now, after any earlier callback
        if norm > 0:
            for p in state.params:
                if p.grad is not None:
                    p.grad.div_(norm)

    def __repr__(self):
        return "NormalizeGradient()"


class Scheduler(Callback):
    """A learning-rate schedule stepped after every optimizer step: ``make_scheduler(optimizer)`` builds a
    ``torch.optim.lr_scheduler.LRScheduler`` on the optimizer it is given (e.g.
    :func:`gradcourse.lessons.optimization.linear_warmup`), so ``total_iters`` and the like count
    steps, not epochs."""

    def __init__(self, make_scheduler):
        if not callable(make_scheduler):
            raise ValueError(f"make_scheduler={_checks.describe(make_scheduler)} is not allowed; it must be a callable "
                             "optimizer -> torch.optim.lr_scheduler.LRScheduler")
        self.make_scheduler = make_scheduler
        self.scheduler = None

    def check(self, state):
        self.before_fit(state)   # built on the run's optimizer, which takes no step before training

    def before_fit(self, state):
        if self.scheduler is not None and self.scheduler.optimizer is state.optimizer:
            return               # built by check on this run's optimizer: building it twice would scale lr twice
        scheduler = self.make_scheduler(state.optimizer)
        if (not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
                or isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)):
            raise ValueError(f"make_scheduler returned {_checks.describe(scheduler)}; it must return a "
                             "torch.optim.lr_scheduler.LRScheduler built on the optimizer it is given, stepped "
                             "after every optimizer step (ReduceLROnPlateau, which needs a metric, is not)")
        if scheduler.optimizer is not state.optimizer:
            raise ValueError(f"make_scheduler returned a {type(scheduler).__name__} built on another optimizer "
                             f"({type(scheduler.optimizer).__name__}), whose learning rate fit does not use; it must "
                             "build the scheduler on the optimizer it is given: Scheduler(lambda opt: LinearLR(opt, ...))")
        self.scheduler = scheduler

    def after_step(self, state):
        self.scheduler.step()

    def after_fit(self, state):
        self.scheduler = None   # the run's optimizer, its weights and state are not kept alive

    def __repr__(self):
        return f"Scheduler({self.make_scheduler!r})"


class EpochScores(Callback):
    """Score the model after every epoch, in eval mode: accuracy (``History.train_accuracy``,
    ``val_accuracy``) for cross-entropy, the mean squared error over the whole set (``train_loss``,
    ``val_loss``) for ``loss_fn="mse"``, the mean loss for a callable ``loss_fn``. The validation set is fit's ``validation``.
    ``training_set=False`` leaves out the extra forward pass over ``X``, which for recurrent
    networks on long sequences costs a tenth or more of the training time. :func:`fit` adds
    ``EpochScores()`` unless its callbacks hold one."""

    def __init__(self, training_set=True):
        self.training_set = _checks.boolean("training_set", training_set)

    def after_epoch(self, state):
        model, history, validation = state.model, state.history, state.validation
        if state.loss_fn != "cross_entropy":
            score = mean_squared_error if state.loss_fn == "mse" else partial(mean_loss, loss_fn=state.loss_fn)
            if self.training_set:
                history.train_loss.append(score(model, state.X, state.y))
            if validation is not None:
                history.val_loss.append(score(model, *validation))
            return
        if self.training_set:
            history.train_accuracy.append(accuracy(model, state.X, state.y))
        if validation is not None:
            history.val_accuracy.append(accuracy(model, *validation, x_name="validation[0]"))

    def __repr__(self):
        return f"EpochScores(training_set={self.training_set!r})"


class ProgressBar(Callback):
    """A ``tqdm.auto`` bar over the run's steps, with the loss every 10 steps. :func:`fit` adds
    ``ProgressBar()`` unless its callbacks hold one; ``ProgressBar(show=False)`` hides it."""

    def __init__(self, show=True):
        self.show = _checks.boolean("show", show)
        self.bar = None

    def before_fit(self, state):
        self.bar = tqdm(total=state.epochs * state.steps_per_epoch, desc="training", disable=not self.show,
                        mininterval=0.5)

    def after_step(self, state):
        self.bar.update(1)
        if state.step % 10 == 0:
            self.bar.set_postfix(loss=f"{state.history.loss[-1]:.4f}", refresh=False)

    def after_fit(self, state):
        if self.bar is not None:
            self.bar.close()

    def __repr__(self):
        return f"ProgressBar(show={self.show!r})"


def fit_callbacks(model, callbacks):
    """:func:`~gradcourse.core.train.fit`'s callbacks, checked: a GradientMonitor of ``model`` becomes a
    :class:`MonitorOn`; ``EpochScores()`` is put first and ``ProgressBar()`` last unless one of each is there."""
    if not isinstance(callbacks, (list, tuple)):
        raise ValueError(f"callbacks={_checks.describe(callbacks)} is not allowed; it must be a list of Callback "
                         "objects or GradientMonitor(model)")
    checked = []
    for i, callback in enumerate(callbacks):
        if isinstance(callback, GradientMonitor):
            if callback.model is not model:
                raise ValueError(f"callbacks[{i}]={callback!r} is not allowed; a GradientMonitor must watch the "
                                 "model being trained: GradientMonitor(model)")
            callback = MonitorOn(callback)
        elif not isinstance(callback, Callback):
            raise ValueError(f"callbacks[{i}]={_checks.describe(callback)} is not allowed; it must be a Callback "
                             "(ClipNorm, ClipValue, NormalizeGradient, Scheduler, ... or a subclass of your own) "
                             "or a GradientMonitor(model)")
        checked.append(callback)
    if not any(isinstance(c, EpochScores) for c in checked):
        checked.insert(0, EpochScores())   # first, so that a learner's after_epoch sees this epoch's scores
    if not any(isinstance(c, ProgressBar) for c in checked):
        checked.append(ProgressBar())
    return checked


class MonitorOn(Callback):
    """Activates a :class:`~gradcourse.core.monitor.GradientMonitor` for the run when it is not active already;
    :func:`~gradcourse.core.train.fit` wraps a monitor given among its callbacks in one."""

    def __init__(self, monitor):
        self.monitor, self.entered = monitor, False

    def before_fit(self, state):
        if not self.monitor.active:
            self.monitor.__enter__()
            self.entered = True

    def after_fit(self, state):
        if self.entered:
            self.entered = False
            self.monitor.__exit__(None, None, None)


def clip_value_of(callbacks):
    """The ``clip_value`` of a :class:`ClipValue` among ``callbacks``, or None."""
    return next((c.clip_value for c in callbacks if isinstance(c, ClipValue)), None)
