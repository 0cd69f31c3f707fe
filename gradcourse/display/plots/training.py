"""Figures of training runs: loss and accuracy over steps and epochs, gradient norms during training,
the training loss beside per-layer values. Figures of what a monitor records inside the network are in
:mod:`~gradcourse.display.plots.monitoring`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import LogFormatter, MaxNLocator

from ...core import _checks
from .common import as_histories, as_runs, as_styles, closes_on_error, finish, plot_step_losses, positive, run_marker

__all__ = ["plot_accuracy_over_steps", "plot_gradient_norms", "plot_history", "plot_regression_history",
           "plot_training_and_layers"]


@closes_on_error
def plot_history(histories, title=None, legend="inside", styles=None):
    """Loss per step (left) and accuracy per epoch (right) of one History or ``{label: History}``.

    A run that diverged is marked with an ``x`` at the step where it stopped.
    ``legend="outside"`` draws one legend beside the axes, clear of the data, with one entry per
    run, and gives each run its own hollow marker, smaller for each later run, so that runs with
    equal values (two networks at chance) stay visible as rings one inside the other; training
    accuracy is drawn solid, validation accuracy dashed.
    ``styles``: optional ``{label: {line property: value}}`` for the runs' loss and training
    accuracy lines (see :func:`plot_log_lines`); validation lines take the run's colour.
    """
    _checks.choice("legend", legend, ("inside", "outside"))
    runs = as_histories(histories, "train_accuracy")
    styles = as_styles(styles)
    outside = legend == "outside"
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8) if outside else (10, 3.8))
    colors = plot_step_losses(ax_loss, runs, styles=styles)
    loss_lines = [line for line in ax_loss.get_lines() if line.get_marker() != "x"]   # one per run, in order
    for i, (label, history) in enumerate(runs.items()):
        if outside:   # the same marker on the run's loss line, a few times, so the legend names both panels
            loss_lines[i].set(**run_marker(i), markevery=max(1, len(history.loss) // 6))
        per_epoch = history.train_accuracy or history.val_accuracy   # EpochScores(training_set=False): validation only
        if not per_epoch:   # stopped before its first epoch ended: nothing to draw, no legend entry
            continue
        epochs = range(1, len(per_epoch) + 1)
        style = run_marker(i) if outside else {}
        if history.train_accuracy:
            ax_acc.plot(epochs, history.train_accuracy, **({"marker": "o", "color": colors[label]} | style
                                                           | styles.get(label, {})),
                        label=None if label is None else f"{label} (train)")
        if history.val_accuracy:
            ax_acc.plot(epochs, history.val_accuracy, linestyle="--", color=colors[label],
                        **({"marker": "s"} | style),
                        label=None if label is None else f"{label} (validation)")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_acc.set_xlabel("epoch")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
    if any(label is not None for label in runs):
        if outside:
            handles = loss_lines + [plt.Line2D([], [], color="grey", label="accuracy: train"),
                                    plt.Line2D([], [], color="grey", linestyle="--", label="accuracy: validation")]
            ax_acc.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            for ax in (ax_loss, ax_acc):
                ax.legend(fontsize="small")
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
    fig, (ax_step, ax_epoch) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = plot_step_losses(ax_step, runs, linewidth=0.8, values=positive)
    for label, history in runs.items():
        per_epoch = history.val_loss or history.train_loss
        ax_epoch.plot(range(1, len(per_epoch) + 1), positive(per_epoch), marker="o", color=colors[label], label=label)
    some_validation = any(history.val_loss for history in runs.values())
    ax_step.set_ylabel("training loss (batch MSE)")
    ax_epoch.set_xlabel("epoch")
    ax_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_epoch.set_ylabel("validation MSE" if some_validation else "training MSE")
    for ax in (ax_step, ax_epoch):
        ax.set_yscale("log")
        if baseline is not None:
            ax.axhline(baseline, linestyle="--", color="grey", label=f"baseline {baseline:.3g}")
        ax.grid(True, alpha=0.3)
        if any(label is not None for label in runs) or baseline is not None:
            ax.legend(fontsize="small")
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
    fig, (ax_trace, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    ax_trace.plot(steps, positive(norms), linewidth=0.7, color="tab:blue")
    low, high = math.log10(min(finite)), math.log10(max(finite))
    bins = [10 ** (low + (high - low + 1e-9) * i / 40) for i in range(41)]
    ax_hist.hist(finite, bins=bins, color="tab:blue", alpha=0.7)
    median = torch.tensor(finite, dtype=torch.float64).median().item()  # torch's median: the lower middle value
    ax_hist.axvline(median, color="black", linestyle=":", label=f"median {median:.3g}")
    if max_norm is not None:
        above = [(s, v) for s, v in zip(steps, norms) if v > max_norm]
        if above:
            ax_trace.plot(*zip(*above), "o", color="tab:red", markersize=2.5, label="above the threshold")
        ax_trace.axhline(max_norm, color="tab:red", linewidth=1, label=f"threshold {max_norm:.3g}")
        ax_hist.axvline(max_norm, color="tab:red", label=f"threshold {max_norm:.3g}")
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
            ax.legend(fontsize="small")
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
    fig, (ax_loss, ax_layers) = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_step_losses(ax_loss, runs)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    # plain numbers (2.3, 2.4, ...) when the loss spans less than a decade, instead of 2.3 x 10^0
    ax_loss.yaxis.set_major_formatter(LogFormatter())
    ax_loss.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
    for label, seq in layers.items():
        ax_layers.plot(range(1, len(seq) + 1), positive(seq), marker="o", markersize=3, label=label)
    if hline is not None:
        ax_layers.axhline(hline, linestyle=":", color="black", label=f"{hline:g}")
    ax_layers.set_yscale("log")
    ax_layers.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_layers.set_xlabel("layer (1 = input side)")
    ax_layers.set_ylabel(ylabel)
    for ax in (ax_loss, ax_layers):
        ax.grid(True, alpha=0.3)
    if any(label is not None for label in runs):
        ax_loss.legend(fontsize="small")
    if any(label is not None for label in layers) or hline is not None:
        ax_layers.legend(fontsize="small")
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
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, (steps, accuracies) in curves.items():
        ax.plot(list(steps), list(accuracies), marker=".", label=str(label))
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return finish(fig, title)
