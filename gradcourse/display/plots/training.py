"""Figures of training runs: loss and accuracy over steps and epochs, gradient norms during training,
the monitor's statistics over steps, quantiles of a unit's input.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import LogNorm
from matplotlib.ticker import LogFormatter, MaxNLocator

from ...core import _checks
from .common import (as_histories, as_runs, as_styles, closes_on_error, finish, plot_step_losses, positive,
                     require_monitor, run_marker)


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
        per_epoch = history.train_accuracy or history.val_accuracy   # fit(score_training_set=False): validation only
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
def plot_activation_stats(monitor, step=-1, title=None):
    """Per-layer activation mean and std, saturated share and dead share at one recorded step.

    ``monitor`` is a :class:`~gradcourse.core.monitor.GradientMonitor`; ``step`` indexes its
    recorded forward passes (default: the latest).
    """
    require_monitor(monitor)
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
    return finish(fig, title)


@closes_on_error
def plot_statistic_over_steps(monitor, name="act_mean", title=None, reference=None):
    """One recorded statistic of a :class:`~gradcourse.core.monitor.GradientMonitor` against the training
    step, one line per layer (``grad_norm``, ``update_ratio``) or activation call (the others), as
    in Glorot & Bengio's (2010) Figure 2 of each layer's mean activation during training. Steps are
    counted as the monitor records them: every ``monitor.every``-th training step. ``reference``
    draws a dashed horizontal line, e.g. 1e-3 for ``update_ratio``, Karpathy's rule of thumb for SGD."""
    require_monitor(monitor)
    if reference is not None:
        log_axis = name in ("grad_norm", "update_ratio")
        reference = _checks.number("reference", reference, minimum=0 if log_axis else None, strict_minimum=log_axis)
    values = monitor.series(name)
    if len(values) == 0:
        raise ValueError(f"the monitor has recorded no {name!r} yet; train the model while it is active")
    labels = monitor.layer_names if name in ("grad_norm", "update_ratio") else monitor.activation_names
    steps = [k * monitor.every for k in range(len(values))]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    colors = plt.cm.viridis([i / max(1, values.shape[1] - 1) for i in range(values.shape[1])])
    for column, (label, color) in enumerate(zip(labels, colors)):
        ax.plot(steps, values[:, column], color=color, label=f"{column + 1}: {label}")
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=f"{reference:g}")
    if name in ("grad_norm", "update_ratio"):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return finish(fig, title)


@closes_on_error
def plot_histograms_over_steps(histograms, title=None, columns=4):
    """Each activation's histogram against the training step, as an image: the step runs left to right,
    the activation's value bottom to top, the colour is the share of its entries in that bin (log
    scale; white where none). The picture of fastai's ``ActivationStats`` ("colorful dimension"): mass
    piling up at a tanh's -1 and 1 is saturation, a ReLU's collapsing onto 0 is dying units.

    Args:
        histograms: ``{name: (shares, edges)}`` as :meth:`GradientMonitor.histograms
            <gradcourse.core.monitor.GradientMonitor.histograms>` returns it: ``shares`` of shape
            ``(steps, bins)``, ``edges`` the ``bins + 1`` bin edges.
        columns: panels per row.
    """
    if not isinstance(histograms, dict) or not histograms:
        raise ValueError(f"histograms={_checks.describe(histograms)} is not allowed; it must be a non-empty dict "
                         "{name: (shares, edges)}, as GradientMonitor(..., histogram_bins=40).histograms() returns")
    columns = _checks.integer("columns", columns, minimum=1)
    panels = []
    for name, value in histograms.items():
        shares, edges = (torch.as_tensor(v, dtype=torch.float64) for v in value)
        if shares.dim() != 2 or len(shares) == 0 or edges.shape != (shares.shape[1] + 1,):
            raise ValueError(f"histograms[{name!r}] must be (shares, edges) with shares of shape (steps, bins), at "
                             f"least one step, and bins + 1 edges; got shapes {tuple(shares.shape)} and {tuple(edges.shape)}")
        panels.append((name, shares, edges))
    rows = math.ceil(len(panels) / columns)
    width = min(columns, len(panels))
    fig, axes = plt.subplots(rows, width, figsize=(2.8 * width + 1.2, 2.4 * rows + 0.4), squeeze=False,
                             layout="constrained")
    positive_shares = torch.cat([shares[shares > 0] for _, shares, _ in panels])
    low = positive_shares.min().item() if len(positive_shares) else 1e-6
    norm = LogNorm(vmin=low, vmax=max(1.0, low * 10))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white", under="white")
    for k, (ax, (name, shares, edges)) in enumerate(zip(axes.flat, panels)):
        image = ax.imshow(shares.T.numpy(), origin="lower", aspect="auto", interpolation="nearest", cmap=cmap, norm=norm,
                          extent=(0, len(shares), edges[0].item(), edges[-1].item()))
        ax.set_title(name, fontsize="small")
        if k + width >= len(panels):        # the lowest panel of its column
            ax.set_xlabel("recorded step")
        if k % width == 0:
            ax.set_ylabel("value")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label="share of entries", shrink=0.9)
    if title:
        fig.suptitle(title)
    plt.close(fig)
    return fig


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
def plot_quantiles(series, quantiles=(0.15, 0.5, 0.85), title=None):
    """Quantiles of a distribution over training steps, one panel per run, sharing the y-axis.

    ``series``: ``{label: tensor (steps, len(quantiles))}`` as recorded by
    :class:`~gradcourse.lessons.normalization.PreactivationQuantiles` -- the view of Ioffe &
    Szegedy (2015), Figure 1(b, c).
    """
    if not isinstance(series, dict) or not series:
        raise ValueError(f"series={_checks.describe(series)} is not allowed; it must be a non-empty dict {{label: tensor (steps, quantiles)}}")
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
