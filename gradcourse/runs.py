"""Train seeded course MLPs side by side, each watched by a GradientMonitor.

One call builds a fresh :class:`~gradcourse.models.MLP` from a seed, trains it with
:func:`~gradcourse.train.fit` and keeps the model, its history and its monitor, so a
notebook compares optimizers, depths or norms in one line::

    runs = train_mlps(X, y, {"SGD": dict(optimizer="sgd", lr=0.1),
                             "Adam": dict(optimizer="adam", lr=1e-3)},
                      depth=5, activation="sigmoid", epochs=3, batch_size=64)
    runs["Adam"].history.train_accuracy[-1], runs["Adam"].monitor.mean("update_ratio")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from tqdm.auto import tqdm

from . import _checks
from .models import MLP
from .monitor import GradientMonitor
from .train import History, fit

MODEL_OPTIONS = tuple(p for p in inspect.signature(MLP).parameters if p != "in_features")
"""Keyword arguments of :class:`~gradcourse.models.MLP` that :func:`train_mlp` passes on."""
FIT_OPTIONS = tuple(p for p in inspect.signature(fit).parameters if p not in ("model", "X", "y", "monitor"))
"""Keyword arguments of :func:`~gradcourse.train.fit` that :func:`train_mlp` passes on."""


@dataclass
class TrainedMLP:
    """A trained network with what was measured while it trained."""

    model: MLP
    history: History
    monitor: GradientMonitor

    @property
    def train_error(self):
        """1 - training accuracy after the last epoch."""
        return 1.0 - self.history.train_accuracy[-1] if self.history.train_accuracy else 1.0

    @property
    def test_error(self):
        """1 - validation accuracy after the last epoch (NaN when there was no validation set)."""
        return 1.0 - self.history.val_accuracy[-1] if self.history.val_accuracy else float("nan")

    def __repr__(self):
        return f"TrainedMLP({self.history!r})"


def train_mlp(X, y, *, seed=0, progress=False, monitor_every=1, **options):
    """Seed, build ``MLP(in_features=X.shape[1], ...)`` and ``fit`` it on ``(X, y)`` with a
    :class:`~gradcourse.monitor.GradientMonitor` that records every ``monitor_every``-th step
    (the first step always).

    ``options`` are keyword arguments of :class:`~gradcourse.models.MLP` (``out_features,
    width, depth, activation, init, init_scale, norm, residual``) and of :func:`~gradcourse.train.fit`
    (``epochs, batch_size, optimizer, lr, ...``); an unknown name raises ValueError.
    ``seed`` seeds both the weights and the batch order. Returns a :class:`TrainedMLP`.
    """
    from . import set_seed

    _checks.features_and_labels(X, y)
    _checks.integer("seed", seed, minimum=0)
    _checks.integer("monitor_every", monitor_every, minimum=1)
    for name in options:
        if name not in MODEL_OPTIONS + FIT_OPTIONS:
            raise ValueError(f"{name}={_checks.describe(options[name])} is not allowed; train_mlp takes the "
                             f"MLP options {', '.join(MODEL_OPTIONS)} and the fit options {', '.join(FIT_OPTIONS)}")
    model_options = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    fit_options = {k: v for k, v in options.items() if k in FIT_OPTIONS}
    set_seed(seed)
    model = MLP(in_features=X.shape[1], **model_options)
    monitor = GradientMonitor(model, every=monitor_every)
    history = fit(model, X, y, monitor=monitor, seed=seed, progress=progress, **fit_options)
    return TrainedMLP(model, history, monitor)


def train_mlps(X, y, configs, *, progress=True, **shared):
    """Train one network per entry of ``configs`` (``{label: {option: value}}``), each with
    ``shared`` options overridden by its own, through :func:`train_mlp`.

    ``progress=True`` shows one ``tqdm.auto`` bar that advances as each network finishes.
    Returns ``{label: TrainedMLP}`` in the order of ``configs``.
    """
    if not isinstance(configs, dict) or not configs or not all(isinstance(c, dict) for c in configs.values()):
        raise ValueError(f"configs={_checks.describe(configs)} is not allowed; it must be a non-empty "
                         "dict {label: {option: value}}")
    _checks.boolean("progress", progress)
    runs = {}
    for label, config in tqdm(configs.items(), total=len(configs), desc=f"training {len(configs)} networks",
                              disable=not progress):
        runs[label] = train_mlp(X, y, **{**shared, **config, "progress": False})
    return runs


def initial_gradient_norms(X, y, *, signal="activations", seed=0, **model_options):
    """Per-layer gradient norms of a fresh seeded ``MLP(in_features=X.shape[1], **model_options)``
    on ``(X, y)``, computed in float64, input side first.

    ``signal="activations"``: ``||dL/dh_l||`` for every hidden block's output (the signal that
    reaches layer l, :func:`~gradcourse.probes.activation_gradient_norms`);
    ``signal="weights"``: ``||dL/dW_l||`` (:func:`~gradcourse.probes.layer_gradient_norms`).
    Float64 keeps gradients far below float32's smallest number (about 1e-45) measurable.
    """
    from . import set_seed
    from .probes import activation_gradient_norms, layer_gradient_norms

    _checks.features_and_labels(X, y)
    _checks.choice("signal", signal, ("activations", "weights"))
    _checks.integer("seed", seed, minimum=0)
    for name in model_options:
        if name not in MODEL_OPTIONS:
            raise ValueError(f"{name}={_checks.describe(model_options[name])} is not allowed; "
                             f"initial_gradient_norms takes the MLP options {', '.join(MODEL_OPTIONS)}")
    set_seed(seed)
    model = MLP(in_features=X.shape[1], **model_options).double()
    measure = activation_gradient_norms if signal == "activations" else layer_gradient_norms
    return measure(model, X.double(), y)
