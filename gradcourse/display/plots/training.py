"""Figures of training runs: loss and accuracy over steps and epochs, gradient norms during training,
the training loss beside per-layer values. Figures of what a monitor records inside the network are in
:mod:`~gradcourse.display.plots.monitoring`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from ...core import _checks
from .common import (OKABE_ITO, as_histories, as_runs, clip_diverged, closes_on_error, finish, plot_step_losses, positive,
                     subplots)
from .style import series_styles

__all__ = ["plot_accuracy_over_steps", "plot_gradient_norms", "plot_history", "plot_regression_history",
           "plot_training_and_layers"]


def _ring(i):
    """The i-th run's hollow marker size, smaller for each later run: equal runs show as nested rings."""
    return dict(markersize=max(11 - 2 * i, 4), markerfacecolor="none", markeredgewidth=1.5)


def _accuracy_per_epoch(ax, runs, looks, validation_label, rings=False):
    """Training accuracy (in the run's look) and validation accuracy (dashed, hollow markers) per epoch;
    ``rings``: every marker hollow, smaller for each later run."""
    for i, (label, history) in enumerate(runs.items()):
        look = {key: value for key, value in looks[label].items() if key != "markevery"}   # a point per epoch
        for values, name, extra in ((history.train_accuracy, "train", {}),
                                    (history.val_accuracy, validation_label, {"linestyle": "--", "markerfacecolor": "none"})):
            if values:
                ax.plot(range(1, len(values) + 1), values, **(look | extra | (_ring(i) if rings else {})),
                        label=None if label is None else f"{label} ({name})")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)


def _accuracy_bars(ax, scores, looks, xlabel):
    """Each run's accuracy (``{label: value or None}``) as a bar in its colour, the value written at the bar's
    end, runs named on the y axis in the order of the legend."""
    for k, (label, score) in enumerate(scores.items()):
        if score is None:
            ax.text(0.01, -k, "no accuracy (stopped in its first epoch)", va="center")
            continue
        ax.barh(-k, score, color=looks[label]["color"], height=0.6)
        ax.text(min(score, 0.86) + 0.01, -k, f"{score:.2f}", va="center")
    ax.set_yticks([-k for k in range(len(scores))], [("one run" if label is None else str(label)) for label in scores])
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)


def _final_scores(runs, test_accuracy, validation_label):
    """(``{label: accuracy or None}``, axis label) for the bars: ``test_accuracy`` where given, else the last
    validation accuracy where any run has one, else the last training accuracy."""
    if test_accuracy is not None:
        if not isinstance(test_accuracy, dict) or set(test_accuracy) != set(runs):
            raise ValueError(f"test_accuracy={_checks.describe(test_accuracy)} is not allowed; it must be None or a "
                             f"dict with one accuracy for each run, {list(runs)}")
        return ({label: _checks.number(f"test_accuracy[{label!r}]", test_accuracy[label], minimum=0, maximum=1)
                 for label in runs}, "test accuracy after training")
    validated = any(history.val_accuracy for history in runs.values())
    scores = {label: (h.val_accuracy if validated else h.train_accuracy) for label, h in runs.items()}
    return ({label: s[-1] if s else None for label, s in scores.items()},
            f"{validation_label if validated else 'training'} accuracy after the epoch")


@closes_on_error
def plot_history(histories, title=None, legend="inside", styles=None, validation_label="validation",
                 test_accuracy=None):
    """Loss per step (left) and accuracy per epoch (right) of one History or ``{label: History}``.

    Each run keeps one look (:func:`~gradcourse.display.plots.style.series_styles`): its colour and marker
    on the loss line and on its accuracy lines (training solid, validation dashed with hollow markers).
    A run that diverged is marked with an ``x`` at the step where it stopped; a run whose loss leaves the
    others' range far behind is cut off at its top, with a label (:func:`~gradcourse.display.plots.common.clip_diverged`).
    With one epoch, or with ``test_accuracy`` (``{label: accuracy}``, e.g. each run's
    ``TrainedRun.test_accuracy``), the right panel shows one accuracy per run as a bar: ``test_accuracy``
    where given, else the validation accuracy where measured, else the training accuracy. ``legend="outside"`` draws one legend beside the axes, clear of the data, with one entry
    per run, the loss markers hollow and smaller for each later run, so that equal runs (two networks at
    chance) stay visible as rings one inside the other.
    ``styles``: optional ``{label: {line property: value}}`` over each run's look (see :func:`plot_log_lines`).
    ``validation_label``: what the validation data are, for the legend and axis (e.g. "test").
    """
    _checks.choice("legend", legend, ("inside", "outside"))
    if not isinstance(validation_label, str) or not validation_label:
        raise ValueError(f"validation_label={validation_label!r} is not allowed; it must be a non-empty string")
    runs = as_histories(histories, "train_accuracy")
    outside = legend == "outside"
    fig, (ax_loss, ax_acc) = subplots(1, 2, figsize=(11, 3.8) if outside else (10, 3.8))
    looks = plot_step_losses(ax_loss, runs, styles=styles)
    loss_lines = [line for line in ax_loss.get_lines() if line.get_linestyle() not in ("None", "none")]  # one per run
    if outside:     # nested rings where runs coincide
        for i, line in enumerate(loss_lines):
            line.set(**_ring(i))
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    clip_diverged(ax_loss, runs, looks)
    one_epoch = test_accuracy is not None or max(len(h.train_accuracy or h.val_accuracy) for h in runs.values()) <= 1
    if one_epoch:
        scores, xlabel = _final_scores(runs, test_accuracy, validation_label)
        _accuracy_bars(ax_acc, scores, looks, xlabel)
    else:
        _accuracy_per_epoch(ax_acc, runs, looks, validation_label, rings=outside)
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
    if any(label is not None for label in runs):
        if outside:
            handles = list(loss_lines)
            if not one_epoch:
                handles += [plt.Line2D([], [], color="grey", label="accuracy: train"),
                            plt.Line2D([], [], color="grey", linestyle="--", label=f"accuracy: {validation_label}")]
            ax_acc.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax_loss.legend()
            if not one_epoch:
                ax_acc.legend()
    return finish(fig, title)


@closes_on_error
def plot_regression_history(histories, baseline=None, title=None):
    """Training loss per step (left) and validation (else training) MSE per epoch (right), log scale,
    for one History of ``fit(..., loss_fn="mse")`` or ``{label: History}``.

    ``baseline``: optional MSE drawn as a dashed line (e.g. 1/6, what predicting the constant 1
    scores on the adding problem). A run that diverged is marked with an ``x`` where it stopped.
    """
    runs = as_histories(histories, "val_loss")
    if baseline is not None:
        baseline = _checks.number("baseline", baseline, minimum=0, strict_minimum=True)
    fig, (ax_step, ax_epoch) = subplots(1, 2, figsize=(11, 3.8))
    looks = plot_step_losses(ax_step, runs, linewidth=0.8, values=positive)
    for label, history in runs.items():
        per_epoch = history.val_loss or history.train_loss
        look = {key: looks[label][key] for key in ("color", "marker", "linestyle")}
        ax_epoch.plot(range(1, len(per_epoch) + 1), positive(per_epoch), **look, label=label)
    some_validation = any(history.val_loss for history in runs.values())
    ax_step.set_ylabel("training loss (batch MSE)")
    ax_epoch.set_xlabel("epoch")
    ax_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_epoch.set_ylabel("validation MSE" if some_validation else "training MSE")
    for ax in (ax_step, ax_epoch):
        ax.set_yscale("log")
        if baseline is not None:
            ax.axhline(baseline, linewidth=1.2, color="black", label=f"baseline {baseline:.3g}")
        ax.grid(True, alpha=0.3)
    clip_diverged(ax_step, runs, looks)
    if any(label is not None for label in runs) or baseline is not None:
        ax_epoch.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return finish(fig, title)


@closes_on_error
def plot_gradient_norms(grad_norms, max_norm=None, title=None):
    """A gradient-norm trace (left, log scale, one point per step) and its distribution (right,
    histogram over log-spaced bins), with the clipping threshold ``max_norm`` as a red line and the
    steps above it in red. The title gives the share of steps above it."""
    if isinstance(grad_norms, dict):
        raise ValueError("grad_norms must be one sequence of numbers (e.g. History.grad_norm), not a dict")
    norms = as_runs(grad_norms, "grad_norms")[None]
    finite = [v for v in norms if math.isfinite(v) and v > 0]
    if not finite:
        raise ValueError("grad_norms holds no positive finite value to plot")
    if max_norm is not None:
        max_norm = _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True)
    steps = range(1, len(norms) + 1)
    fig, (ax_trace, ax_hist) = subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    ax_trace.plot(steps, positive(norms), linewidth=0.7, color=OKABE_ITO[0])
    low, high = math.log10(min(finite)), math.log10(max(finite))
    bins = [10 ** (low + (high - low + 1e-9) * i / 40) for i in range(41)]
    ax_hist.hist(finite, bins=bins, color=OKABE_ITO[0], alpha=0.7)
    median = torch.tensor(finite, dtype=torch.float64).median().item()  # torch's median: the lower middle value
    ax_hist.axvline(median, color="black", linestyle=":", label=f"median {median:.3g}")
    if max_norm is not None:
        above = [(s, v) for s, v in zip(steps, norms) if v > max_norm]
        if above:
            ax_trace.plot(*zip(*above), "o", color=OKABE_ITO[3], markersize=3, label="above the threshold")
        ax_trace.axhline(max_norm, color=OKABE_ITO[3], linewidth=1, label=f"threshold {max_norm:.3g}")
        ax_hist.axvline(max_norm, color=OKABE_ITO[3], label=f"threshold {max_norm:.3g}")
        share = len(above) / len(norms)
        title = f"{title + ': ' if title else ''}{share:.0%} of {len(norms)} steps above the threshold"
    ax_trace.set_yscale("log")
    ax_trace.set_xlabel("step")
    ax_trace.set_ylabel("gradient norm before clipping")
    ax_hist.set_xscale("log")
    ax_hist.set_xlabel("gradient norm")
    ax_hist.set_ylabel("steps")
    for ax in (ax_trace, ax_hist):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return finish(fig, title)


@closes_on_error
def plot_training_and_layers(histories, per_layer, ylabel, title=None, hline=None):
    """Training loss per step (left, log scale) next to per-layer values (right, log scale).

    ``histories``: a History or ``{label: History}``; ``per_layer``: a sequence of per-layer
    numbers or ``{label: sequence}`` (e.g. gradient norms or update ratios), drawn as in
    :func:`plot_per_layer`; ``hline``: an optional reference level on the right panel
    (e.g. the 1e-3 rule of thumb for update ratios). A diverged run is marked with an ``x``.
    """
    runs = as_histories(histories, "diverged")
    layers = as_runs(per_layer, "per_layer")
    if not isinstance(ylabel, str):
        raise ValueError(f"ylabel={ylabel!r} is not allowed; it must be a string")
    if hline is not None:
        hline = _checks.number("hline", hline, minimum=0, strict_minimum=True)   # drawn on a log axis
    fig, (ax_loss, ax_layers) = subplots(1, 2, figsize=(11, 3.8))
    looks = plot_step_losses(ax_loss, runs)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")     # a range under two decades gets plain-number ticks (finish)
    clip_diverged(ax_loss, runs, looks)
    looks = {**series_styles(layers), **looks}
    for label, seq in layers.items():
        look = {key: looks[label][key] for key in ("color", "marker", "linestyle")}
        ax_layers.plot(range(1, len(seq) + 1), positive(seq), **look, label=label)
    if hline is not None:
        ax_layers.axhline(hline, linewidth=1, color="black", label=f"{hline:g}")
    ax_layers.set_yscale("log")
    ax_layers.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_layers.set_xlabel("layer (1 = input side)")
    ax_layers.set_ylabel(ylabel)
    for ax in (ax_loss, ax_layers):
        ax.grid(True, alpha=0.3)
    if any(label is not None for label in runs):
        ax_loss.legend()
    if any(label is not None for label in layers) or hline is not None:
        ax_layers.legend()
    return finish(fig, title)


@closes_on_error
def plot_accuracy_over_steps(curves, title=None, ylabel="test accuracy"):
    """Accuracy against training steps, one line per run: ``{label: (steps, accuracies)}``,
    e.g. ``(recorder.steps, recorder.accuracy)`` of
    :class:`~gradcourse.lessons.normalization.AccuracyOverSteps` -- the view of Ioffe & Szegedy (2015),
    Figure 1(a)."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"curves={_checks.describe(curves)} is not allowed; it must be a non-empty dict "
                         "{label: (steps, accuracies)}")
    for label, curve in curves.items():
        if (not isinstance(curve, (tuple, list)) or len(curve) != 2 or not all(hasattr(c, "__len__") for c in curve)
                or len(curve[0]) != len(curve[1]) or not len(curve[0])):
            raise ValueError(f"curves[{label!r}]={_checks.describe(curve)} is not allowed; it must be a pair "
                             "(steps, accuracies) of equal, non-zero lengths")
    fig, ax = subplots(figsize=(6, 3.8))
    looks = series_styles(curves, points={label: len(curve[0]) for label, curve in curves.items()})
    for label, (steps, accuracies) in curves.items():
        ax.plot(list(steps), list(accuracies), **looks[label], label=str(label))
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return finish(fig, title)
