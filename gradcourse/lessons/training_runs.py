"""Training runs of seeded course MLPs, each watched by a GradientMonitor.

One call builds a fresh :class:`~gradcourse.core.models.MLP` from a seed, trains it with
:func:`~gradcourse.core.train.fit` and keeps the model, its history and its monitor, so a
notebook compares optimizers, depths or norms in one line::

    runs = train_mlps(X, y, {"SGD": dict(optimizer="sgd", lr=0.1),
                             "Adam": dict(optimizer="adam", lr=1e-3)},
                      depth=5, activation="sigmoid", epochs=3, batch_size=64)
    runs["Adam"].history.train_accuracy[-1], runs["Adam"].monitor.mean("update_ratio")
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core import _checks
from ..core.diagnose.diagnose import diagnose
from ..core.models import MLP, MLP_OPTIONS, require_course_model, seeded_mlp
from ..core.monitor.monitor import GradientMonitor
from ..core.model_state import modes_restored
from ..core.runtime import generators_restored
from .theory import activation_derivative
from ..core.scoring import accuracy
from ..core.train import History, ProgressBar, check_fit, fit

__all__ = ["check_mlp_run", "dying_units_experiment", "FIT_OPTIONS", "train_and_diagnose", "train_each", "train_mlp",
           "train_mlps", "TrainedRun", "unit_activity"]

FIT_OPTIONS = tuple(p for p in inspect.signature(fit).parameters if p not in ("model", "X", "y"))
"""Keyword arguments of :func:`~gradcourse.core.train.fit` that :func:`train_mlp` passes on."""


@dataclass
class TrainedRun:
    """A trained network with what was measured while it trained: its :class:`~gradcourse.core.train.History`,
    the :class:`~gradcourse.core.monitor.GradientMonitor` that watched it and, for a network scored on a
    held-out set once training ended, ``test_accuracy``."""

    model: nn.Module
    history: History
    monitor: GradientMonitor
    test_accuracy: float | None = None

    @property
    def train_error(self):
        """1 - training accuracy after the last epoch."""
        return 1.0 - self.history.train_accuracy[-1] if self.history.train_accuracy else 1.0

    @property
    def test_error(self):
        """1 - the held-out accuracy: ``test_accuracy``, else the validation accuracy after the last epoch
        (NaN when there is neither)."""
        if self.test_accuracy is not None:
            return 1.0 - self.test_accuracy
        return 1.0 - self.history.val_accuracy[-1] if self.history.val_accuracy else float("nan")

    def summary(self, steps=10):
        """One line: the mean training loss of the first and of the last ``steps`` steps, and the test accuracy."""
        _checks.integer("steps", steps, minimum=1)
        loss = self.history.loss
        if not loss:
            return f"no training step; test accuracy {1 - self.test_error:.3f}"
        first, last = loss[:steps], loss[-steps:]
        return (f"training loss, mean of the first/last {steps} steps {sum(first) / len(first):.2f} -> "
                f"{sum(last) / len(last):.2f}; test accuracy {1 - self.test_error:.3f}")

    def __repr__(self):
        which = "test" if self.test_accuracy is not None else "validation"
        tested = "" if math.isnan(self.test_error) else f", {which} accuracy {1 - self.test_error:.3f}"
        return f"TrainedRun({self.history!r}{tested})"


def train_mlp(X, y, *, seed=0, progress=False, monitor_every=1, histogram_bins=0, **model_and_fit_options):
    """Seed, build ``MLP(in_features=X.shape[1], ...)`` and ``fit`` it on ``(X, y)`` with a
    :class:`~gradcourse.core.monitor.GradientMonitor` that records every ``monitor_every``-th step
    (the first step always), and with ``histogram_bins`` > 0 each activation's histogram too.

    ``model_and_fit_options`` are keyword arguments of :class:`~gradcourse.core.models.MLP` (``out_features,
    width, depth, activation, init, init_scale, norm, residual``) and of :func:`~gradcourse.core.train.fit`
    (``epochs, batch_size, optimizer, lr, callbacks, ...``); an unknown name raises ValueError.
    ``seed`` seeds both the weights and the batch order. Returns a :class:`TrainedRun`.
    """
    model_options, fit_options = _split_options(X, y, seed, monitor_every, model_and_fit_options)
    model = seeded_mlp(X, seed, **model_options)
    monitor = GradientMonitor(model, every=monitor_every, histogram_bins=histogram_bins)
    history = fit(model, X, y, seed=seed, **_with_monitor(fit_options, monitor, progress))
    return TrainedRun(model, history, monitor)


def _with_monitor(fit_options, monitor, progress):
    """``fit_options`` whose callbacks also hold ``monitor`` and, unless they hold one, a progress bar shown
    when ``progress``."""
    _checks.boolean("progress", progress)
    callbacks = fit_options.get("callbacks", ())
    if not isinstance(callbacks, (list, tuple)):
        raise ValueError(f"callbacks={_checks.describe(callbacks)} is not allowed; it must be a list of callbacks")
    bar = [] if any(isinstance(c, ProgressBar) for c in callbacks) else [ProgressBar(show=progress)]
    return {**fit_options, "callbacks": [*callbacks, monitor, *bar]}


def _split_options(X, y, seed, monitor_every, options):
    """Check :func:`train_mlp`'s own arguments and option names; return ``(MLP options, fit options)``."""
    _checks.features_and_labels(X, y)
    _checks.integer("seed", seed, minimum=0)
    _checks.integer("monitor_every", monitor_every, minimum=1)
    for name in options:
        if name not in MLP_OPTIONS + FIT_OPTIONS:
            raise ValueError(f"{name}={_checks.describe(options[name])} is not allowed; train_mlp takes the "
                             f"MLP options {', '.join(MLP_OPTIONS)} and the fit options {', '.join(FIT_OPTIONS)}")
    return ({k: v for k, v in options.items() if k in MLP_OPTIONS},
            {k: v for k, v in options.items() if k in FIT_OPTIONS})


def check_mlp_run(X, y, *, seed=0, progress=False, monitor_every=1, histogram_bins=0, **model_and_fit_options):
    """Raise the ValueError that :func:`train_mlp` with these arguments would raise before training,
    without training: the network is built (its weights drawn with torch's generator given back
    afterwards), the monitor's settings and every :func:`~gradcourse.core.train.fit` argument are checked
    (:func:`~gradcourse.core.train.check_fit`)."""
    model_options, fit_options = _split_options(X, y, seed, monitor_every, model_and_fit_options)
    with generators_restored():
        model = MLP(in_features=X.shape[1], **model_options)
    monitor = GradientMonitor(model, every=monitor_every, histogram_bins=histogram_bins)
    check_fit(model, X, y, seed=seed, **_with_monitor(fit_options, monitor, progress))


def train_each(train_one, configs, *, check_one=None, progress=True, what="networks", **shared):
    """``{label: train_one(**shared, **config)}`` for each entry of ``configs`` (``{label: {option: value}}``),
    in order, a config's options overriding the shared ones.

    With ``check_one``, every configuration is checked first (``check_one(**options)`` raises the
    ValueError training would), so a bad value in the last one raises at once, naming the configuration.
    An interrupt (Jupyter's stop button) stops the run under way and the ones after it, prints a line
    saying so and returns the runs that finished. ``progress=True`` shows one ``tqdm.auto`` bar that
    advances as each run finishes.
    """
    if not isinstance(configs, dict) or not configs or not all(isinstance(c, dict) for c in configs.values()):
        raise ValueError(f"configs={_checks.describe(configs)} is not allowed; it must be a non-empty "
                         "dict {label: {option: value}}")
    _checks.boolean("progress", progress)
    settings = {label: {**shared, **config} for label, config in configs.items()}
    for label, options in settings.items():
        try:
            if check_one is not None:
                check_one(**options)
        except ValueError as error:
            raise ValueError(f"configs[{label!r}] (with the shared options): {error}") from error
    runs = {}
    with tqdm(total=len(configs), desc=f"training {len(configs)} {what}", disable=not progress) as bar:
        for label, options in settings.items():
            try:
                run = train_one(**options)
            except KeyboardInterrupt:
                run = None
            if run is None or run.history.interrupted:
                skipped = len(configs) - len(runs) - 1
                print(f"Interrupted while training {label!r}: stopped it and the {skipped} run(s) after it; returning "
                      f"the {len(runs)} finished run(s){': ' if runs else ''}{', '.join(repr(k) for k in runs)}.")
                break
            runs[label] = run
            bar.update(1)
    return runs


def train_mlps(X, y, configs, *, progress=True, **shared):
    """Train one network per entry of ``configs`` (``{label: {option: value}}``), each with
    ``shared`` options overridden by its own, through :func:`train_mlp`, as :func:`train_each` does:
    every configuration checked first (:func:`check_mlp_run`), one progress bar, an interrupt returns
    the finished runs. Returns ``{label: TrainedRun}`` in the order of ``configs``.
    """
    return train_each(partial(train_mlp, X, y), configs, check_one=partial(check_mlp_run, X, y), progress=progress,
                      **shared)


@torch.no_grad()
def unit_activity(model, X):
    """Per hidden layer of a course MLP: which units still pass a gradient on the inputs ``X``.

    Returns ``{"inactive": [...], "no_gradient": [...], "no_gradient_units": [...]}``, one entry per
    layer (input side first): ``inactive`` is the share of units whose pre-activation ``z`` is
    negative for every row of ``X``; ``no_gradient`` the share whose derivative ``f'(z)`` is exactly 0
    for every row, and ``no_gradient_units`` the boolean mask of those units. A ReLU unit
    that is inactive everywhere is *dead*: no gradient reaches its weights, so no step moves them;
    only a change in the layers below it can bring it back.
    A LeakyReLU unit there still has ``f' = 0.01``, an ELU unit ``f' = exp(z)`` (Maas et al. 2013;
    Clevert et al. 2016).
    """
    require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D torch.Tensor")
    pre_activations = []
    handles = [block.norm.register_forward_hook(lambda m, i, out: pre_activations.append(out)) for block in model.blocks]
    try:
        with modes_restored(model):
            model.eval()
            model(X)
    finally:
        for handle in handles:
            handle.remove()
    inactive, masks = [], []
    for z in pre_activations:
        inactive.append((z < 0).all(dim=0).float().mean().item())
        masks.append((activation_derivative(model.activation, z) == 0).all(dim=0))
    return {"inactive": inactive, "no_gradient": [m.float().mean().item() for m in masks], "no_gradient_units": masks}


def dying_units_experiment(X, y, activation="relu", bias_shift=2.0, lr=0.05, warmup_epochs=1, recovery_epochs=3,
                           depth=4, width=128, batch_size=64, seed=0, progress=True):
    """Kill units on purpose and see whether training brings them back.

    A fresh seeded MLP (He init) trains for ``warmup_epochs``; then every hidden bias is lowered by
    ``bias_shift`` -- what one too-large SGD step that pushes the biases down does -- so that many
    pre-activations are negative on every input; then it trains again at ``lr`` for
    ``recovery_epochs`` under a :class:`~gradcourse.core.monitor.GradientMonitor`.

    Returns ``{"activity": {stage: unit_activity(...)}, "accuracy": {stage: float},
    "hidden_weights_changed": [bool per layer], "monitor": GradientMonitor}`` with stages
    ``"before"``, ``"after_shift"``, ``"after_recovery"``. A ReLU unit whose pre-activation is
    negative on every input gets exactly zero gradient, so if a whole layer dies no hidden weight
    changes at all; LeakyReLU (slope 0.01) and ELU (slope ``exp(z)``) still pass a gradient.
    ``progress=True`` shows the two trainings' progress bars.
    """
    _checks.features_and_labels(X, y)
    _checks.number("bias_shift", bias_shift)
    _checks.integer("warmup_epochs", warmup_epochs, minimum=1)
    _checks.integer("recovery_epochs", recovery_epochs, minimum=1)
    _checks.boolean("progress", progress)
    model = seeded_mlp(X, seed, width=width, depth=depth, activation=activation, init="kaiming")
    activity, acc = {}, {}

    def measure(stage):
        activity[stage] = unit_activity(model, X)
        acc[stage] = accuracy(model, X, y)

    fit(model, X, y, epochs=warmup_epochs, batch_size=batch_size, lr=lr, seed=seed,
        callbacks=[ProgressBar(show=progress)])
    measure("before")
    with torch.no_grad():
        for layer in model.hidden_linears():
            layer.bias.sub_(bias_shift)
    measure("after_shift")
    weights_before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
    monitor = GradientMonitor(model)
    fit(model, X, y, epochs=recovery_epochs, batch_size=batch_size, lr=lr, seed=seed + 1,
        callbacks=[monitor, ProgressBar(show=progress)])
    measure("after_recovery")
    changed = [not torch.equal(before, layer.weight.detach()) for before, layer in zip(weights_before, model.hidden_linears())]
    return {"activity": activity, "accuracy": acc, "hidden_weights_changed": changed, "monitor": monitor}


def train_and_diagnose(X, y, *, validation, lr, epochs=3, batch_size=64, probe=256, seed=0, **model_options):
    """Build a fresh seeded ``MLP(**model_options)``, diagnose it on the first ``probe`` rows with an SGD
    optimizer at ``lr``, then train it with :func:`gradcourse.fit`. A small ``output_scale``
    (see :class:`~gradcourse.core.models.MLP`) starts the loss at ``ln C``.

    Returns ``{"report": Report, "history": History, "accuracy": the last validation accuracy,
    or None when training diverged before finishing an epoch}``.
    """
    _checks.features_and_labels(X, y)
    _checks.integer("probe", probe, minimum=1)
    model = seeded_mlp(X, seed, **model_options)
    report = diagnose(model, X[:probe], y[:probe], optimizer=torch.optim.SGD(model.parameters(), lr=lr))
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, validation=validation, seed=seed)
    return {"report": report, "history": history,
            "accuracy": history.val_accuracy[-1] if history.val_accuracy else None}
