"""Matplotlib figures for the course. Each function takes data and returns a Figure.

Figures are closed in pyplot before they are returned, so a notebook shows each
one exactly once (as the value of its cell) and no figure piles up in memory.
No function calls ``plt.show()``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator

from . import _checks


def _as_runs(values, name="values"):
    """Accept one sequence of per-layer numbers or a dict ``{label: sequence}``."""
    runs = values if isinstance(values, dict) else {None: values}
    out = {}
    for label, seq in runs.items():
        try:
            seq = [float(v) for v in seq]
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a sequence of numbers or a dict of such sequences; "
                             f"got {_checks._describe(seq)} for {label!r}") from None
        if not seq:
            raise ValueError(f"{name} for {label!r} is empty; give at least one value per layer")
        out[label] = seq
    return out


def _positive(seq):
    """Replace values a log axis cannot show (zero, negative, NaN, inf) by NaN."""
    return [v if math.isfinite(v) and v > 0 else math.nan for v in seq]


def plot_log_lines(x, values, xlabel, ylabel, title=None, references=None, hline=None):
    """Lines on a log y-axis over shared x positions, one per run.

    Args:
        x: the x position of each value (e.g. layer numbers or depths).
        values: a sequence (one run) or ``{label: sequence}`` (several runs side by side).
        xlabel, ylabel, title: axis labels and title.
        references: optional ``{label: sequence}`` drawn as dashed grey lines (e.g. a bound).
        hline: optional y value drawn as a dotted horizontal line (e.g. the 1e-3 rule of thumb).
    """
    x = list(x)
    runs = _as_runs(values)
    refs = _as_runs(references or {}, "references")
    for label, seq in [*runs.items(), *refs.items()]:
        if len(seq) != len(x):
            raise ValueError(f"values for {label!r} has {len(seq)} entries but x has {len(x)}; they must match")
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, seq in runs.items():
        ax.plot(x, _positive(seq), marker="o", markersize=3, label=label)
    for label, seq in refs.items():
        ax.plot(x, _positive(seq), linestyle="--", color="grey", label=label)
    if hline is not None:
        ax.axhline(hline, linestyle=":", color="black", label=f"{hline:g}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize="medium")
    if any(label is not None for label in runs) or refs or hline is not None:
        ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_per_layer(values, ylabel, title=None, references=None, hline=None):
    """Per-layer values (layer 1 = input side) on a log scale; see :func:`plot_log_lines`.

    Runs may have different lengths (networks of different depths side by side):
    each is drawn over its own layers.
    """
    runs = _as_runs(values)
    refs = _as_runs(references or {}, "references")
    n = max(len(seq) for seq in [*runs.values(), *refs.values()])
    runs, refs = ({label: seq + [math.nan] * (n - len(seq)) for label, seq in d.items()} for d in (runs, refs))
    return plot_log_lines(range(1, n + 1), runs, "layer (1 = input side)", ylabel, title, refs or None, hline)


def plot_gradient_flow(norms, title="Gradient norm per layer", references=None):
    """Per-layer gradient norms ``||dL/dW_l||`` on a log scale (several runs side by side)."""
    return plot_per_layer(norms, "gradient norm (log scale)", title=title, references=references)


def plot_history(histories, title=None):
    """Loss per step (left) and accuracy per epoch (right) of one History or ``{label: History}``.

    A run that diverged is marked with an ``x`` at the step where it stopped.
    """
    runs = histories if isinstance(histories, dict) else {None: histories}
    for label, history in runs.items():
        if not hasattr(history, "loss") or not hasattr(history, "train_accuracy"):
            raise ValueError(f"histories must be a History or a dict of them; got {_checks._describe(history)} for {label!r}")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, history in runs.items():
        line, = ax_loss.plot(range(1, len(history.loss) + 1), history.loss, label=label, linewidth=1)
        if history.diverged:
            ax_loss.plot([history.stop_step], [history.loss[-1] if history.loss else 1.0], "x",
                         color=line.get_color(), markersize=10)
        epochs = range(1, len(history.train_accuracy) + 1)
        ax_acc.plot(epochs, history.train_accuracy, marker="o", color=line.get_color(),
                    label=None if label is None else f"{label} (train)")
        if history.val_accuracy:
            ax_acc.plot(epochs, history.val_accuracy, marker="s", linestyle="--", color=line.get_color(),
                        label=None if label is None else f"{label} (validation)")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_acc.set_xlabel("epoch")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
        if any(label is not None for label in runs):
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_activation_stats(monitor, step=-1, title=None):
    """Per-layer activation mean and std, saturated share and dead share at one recorded step.

    ``monitor`` is a :class:`~gradcourse.monitor.GradientMonitor`; ``step`` indexes its
    recorded forward passes (default: the latest).
    """
    if not hasattr(monitor, "series"):
        raise ValueError(f"monitor={_checks._describe(monitor)} is not allowed; it must be a GradientMonitor")
    stats = {name: monitor.series(name) for name in ("act_mean", "act_std", "saturated", "dead")}
    steps = len(stats["act_mean"])
    if steps == 0:
        raise ValueError("the monitor has recorded no forward pass yet; run the model with gradients enabled")
    _checks.integer("step", step, minimum=-steps, maximum=steps - 1)
    layers = range(1, stats["act_mean"].shape[1] + 1)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    mean, std = stats["act_mean"][step], stats["act_std"][step]
    axes[0].errorbar(layers, mean, yerr=std, marker="o", capsize=3)
    axes[0].set_ylabel("activation mean ± std")
    axes[1].plot(layers, stats["saturated"][step], marker="o", color="tab:red")
    axes[1].set_ylabel("saturated share")
    axes[2].plot(layers, stats["dead"][step], marker="o", color="tab:grey")
    axes[2].set_ylabel("dead-unit share")
    for ax in axes[1:]:
        ax.set_ylim(-0.02, 1.02)
    for ax in axes:
        ax.set_xlabel("layer (1 = input side)")
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_activations(activations=("sigmoid", "tanh", "relu"), low=-6.0, high=6.0):
    """Each activation f(z) (left) and its derivative f'(z) by autograd (right)."""
    from .theory import activation_derivative
    from .models import ACTIVATIONS

    activations = list(activations)
    for name in activations:
        _checks.choice("activations[i]", name, tuple(ACTIVATIONS))
    _checks.number("low", low)
    _checks.number("high", high, minimum=low, strict_minimum=True)
    z = torch.linspace(low, high, 601)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in activations:
        ax_f.plot(z, ACTIVATIONS[name]()(z), label=name)
        ax_d.plot(z, activation_derivative(name, z), label=name)
    ax_f.set_ylabel("f(z)")
    ax_d.set_ylabel("f'(z)")
    for ax in (ax_f, ax_d):
        ax.set_xlabel("z")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    plt.close(fig)
    return fig


from matplotlib.ticker import LogFormatter  # noqa: E402


def plot_training_and_layers(histories, per_layer, ylabel, title=None, hline=None):
    """Training loss per step (left, log scale) next to per-layer values (right, log scale).

    ``histories``: a History or ``{label: History}``; ``per_layer``: a sequence of per-layer
    numbers or ``{label: sequence}`` (e.g. gradient norms or update ratios), drawn as in
    :func:`plot_per_layer`; ``hline``: an optional reference level on the right panel
    (e.g. the 1e-3 rule of thumb for update ratios). A diverged run is marked with an ``x``.
    """
    runs = histories if isinstance(histories, dict) else {None: histories}
    for label, history in runs.items():
        if not hasattr(history, "loss") or not hasattr(history, "diverged"):
            raise ValueError(f"histories must be a History or a dict of them; got {_checks._describe(history)} for {label!r}")
    layers = _as_runs(per_layer, "per_layer")
    if not isinstance(ylabel, str):
        raise ValueError(f"ylabel={ylabel!r} is not allowed; it must be a string")
    fig, (ax_loss, ax_layers) = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, history in runs.items():
        line, = ax_loss.plot(range(1, len(history.loss) + 1), history.loss, label=label, linewidth=1)
        if history.diverged:
            ax_loss.plot([history.stop_step], [history.loss[-1] if history.loss else 1.0], "x",
                         color=line.get_color(), markersize=10)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    # plain numbers (2.3, 2.4, ...) when the loss spans less than a decade, instead of 2.3 x 10^0
    ax_loss.yaxis.set_major_formatter(LogFormatter())
    ax_loss.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
    for label, seq in layers.items():
        ax_layers.plot(range(1, len(seq) + 1), _positive(seq), marker="o", markersize=3, label=label)
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_quantiles(series, quantiles=(0.15, 0.5, 0.85), title=None):
    """Quantiles of a distribution over training steps, one panel per run, sharing the y-axis.

    ``series``: ``{label: tensor (steps, len(quantiles))}`` as recorded by
    :class:`~gradcourse.normalization.PreactivationQuantiles` -- the view of Ioffe &
    Szegedy (2015), Figure 1(b, c).
    """
    if not isinstance(series, dict) or not series:
        raise ValueError(f"series={_checks._describe(series)} is not allowed; it must be a non-empty dict {{label: tensor (steps, quantiles)}}")
    quantiles = list(quantiles)
    for q in quantiles:
        _checks.number("quantiles[i]", q, minimum=0, maximum=1)
    for label, values in series.items():
        values = torch.as_tensor(values)
        if values.dim() != 2 or values.shape[1] != len(quantiles) or len(values) == 0:
            raise ValueError(f"series[{label!r}] has shape {tuple(values.shape)}; it must be (steps >= 1, {len(quantiles)})")
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.6), sharey=True, squeeze=False)
    for ax, (label, values) in zip(axes[0], series.items()):
        values = torch.as_tensor(values, dtype=torch.float64)
        steps = range(1, len(values) + 1)
        for i, q in enumerate(quantiles):
            ax.plot(steps, values[:, i], label=f"{100 * q:g}th percentile")
        ax.set_title(str(label), fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("value")
    axes[0][0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig
