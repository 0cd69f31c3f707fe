"""Figures of what is recorded inside a network while it trains: a
:class:`~gradcourse.core.monitor.GradientMonitor`'s per-layer statistics at one step and over the steps,
its activation histograms over the steps, and quantiles of a unit's input over the steps.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import LogNorm

from ...core import _checks
from .common import OKABE_ITO, RUN_MARKERS, closes_on_error, finish, require_monitor, subplots
from .style import layer_styles, series_styles

__all__ = ["STATISTIC_WORDS", "layers_in_words", "plot_activation_stats", "plot_histograms_over_steps",
           "plot_layer_means_during_training", "plot_quantiles", "plot_statistic_over_steps"]

STATISTIC_WORDS = {"act_mean": "mean activation", "act_std": "activation std", "saturated": "share of saturated units",
                   "dead": "share of dead units", "grad_norm": "gradient norm ||dL/dW|| (log scale)",
                   "update_ratio": "update / weight, ||ΔW|| / ||W|| (log scale)"}
"""A :class:`~gradcourse.core.monitor.GradientMonitor` statistic's name, in words, as an axis label."""


def layers_in_words(names):
    """A monitor's layer or activation names (``blocks.0.linear``, ``blocks.2.linear2``) in words: "block k"
    where every name is one module (other than a linear layer, an activation or a norm: an MLP's layer) of
    the k-th of a stack of blocks (a Transformer's), else "layer k" by position, the first "(input side)"."""
    names = list(names)
    found = [re.fullmatch(r"blocks\.(\d+)\.(\w+)(#\d+)?", str(name)) for name in names]
    if names and all(found) and len({m.group(2) for m in found}) == 1 and found[0].group(2) not in ("linear", "activation", "act", "norm"):
        return [f"block {int(m.group(1)) + 1}" for m in found]
    return [f"layer {i + 1}" + (" (input side)" if i == 0 and len(names) > 1 else "") for i in range(len(names))]


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
    fig, axes = subplots(1, 3, figsize=(11, 3.6))
    mean, std = stats["act_mean"][step], stats["act_std"][step]
    axes[0].errorbar(layers, mean, yerr=std, marker="o", capsize=3)
    axes[0].set_ylabel("activation mean ± std")
    axes[1].plot(layers, stats["saturated"][step], marker="s", color=OKABE_ITO[3])
    axes[1].set_ylabel("saturated share")
    axes[2].plot(layers, stats["dead"][step], marker="^", color=OKABE_ITO[7])
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
    labels = layers_in_words(monitor.layer_names if name in ("grad_norm", "update_ratio") else monitor.activation_names)
    steps = [k * monitor.every for k in range(len(values))]
    fig, ax = subplots(figsize=(7, 3.8))
    for column, (label, look) in enumerate(zip(labels, layer_styles(values.shape[1], points=len(steps)))):
        ax.plot(steps, values[:, column], **look, linewidth=1, label=label)
    if reference is not None:
        ax.axhline(reference, color="black", linewidth=1.5, label=f"{reference:g}")
    if name in ("grad_norm", "update_ratio"):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(STATISTIC_WORDS[name])
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
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
    fig, axes = subplots(rows, width, figsize=(min(2.45 * width, 9.8) + 1.2, 2.4 * rows + 0.4), squeeze=False,
                         layout="constrained")
    positive_shares = torch.cat([shares[shares > 0] for _, shares, _ in panels])
    low = positive_shares.min().item() if len(positive_shares) else 1e-6
    norm = LogNorm(vmin=low, vmax=max(1.0, low * 10))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white", under="white")
    titles = layers_in_words([name for name, _, _ in panels]) if all("." in str(n) for n, _, _ in panels) else None
    for k, (ax, (name, shares, edges)) in enumerate(zip(axes.flat, panels)):
        image = ax.imshow(shares.T.numpy(), origin="lower", aspect="auto", interpolation="nearest", cmap=cmap, norm=norm,
                          extent=(0, len(shares), edges[0].item(), edges[-1].item()))
        ax.set_title(titles[k] if titles else str(name))
        if k + width >= len(panels):        # the lowest panel of its column
            ax.set_xlabel("recorded step")
        if k % width == 0:
            ax.set_ylabel("value")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label="share of entries", shrink=0.9)
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
    fig, axes = subplots(1, len(series), figsize=(min(4.5 * len(series), 11), 3.6), sharey=True, squeeze=False)
    for ax, (label, values) in zip(axes[0], series.items()):
        values = torch.as_tensor(values, dtype=torch.float64)
        steps = range(1, len(values) + 1)
        looks = series_styles([f"{100 * q:g}th percentile" for q in quantiles], points=len(values))
        for i, (name, look) in enumerate(looks.items()):
            ax.plot(steps, values[:, i], **look, label=name)
        ax.set_title(str(label))
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("value")
    axes[0][0].legend()
    return finish(fig, title)


@closes_on_error
def plot_layer_means_during_training(monitor, history, loss_reference=None, title=None):
    """Each hidden layer's mean activation against the training step (left) beside the training loss
    per step (right): the view of Glorot & Bengio's (2010) Figure 2, in which a sigmoid network's top
    hidden layer falls to 0 early in training while the loss sits on a plateau.

    ``monitor``: the :class:`~gradcourse.core.monitor.GradientMonitor` that recorded the run (its
    ``act_mean``, one column per activation, input side first, at the 1st, (k+1)-th, (2k+1)-th ...
    step for ``every=k``); ``history``: the run's History. ``loss_reference``: an optional
    ``(value, label)`` drawn as a dashed line on the loss panel, e.g. ``(math.log(10), "ln 10")``.
    """
    require_monitor(monitor)
    if not hasattr(history, "loss") or not len(history.loss):
        raise ValueError(f"history={_checks.describe(history)} is not allowed; it must be the History of the run, "
                         "with at least one loss")
    if loss_reference is not None and (not isinstance(loss_reference, tuple) or len(loss_reference) != 2):
        raise ValueError(f"loss_reference={_checks.describe(loss_reference)} is not allowed; it must be None or a "
                         "pair (value, label), e.g. (2.303, 'ln 10')")
    means = monitor.series("act_mean")
    if len(means) == 0:
        raise ValueError("the monitor has recorded no activation yet; train the model while it is active")
    steps = [1 + k * monitor.every for k in range(len(means))]
    layers = means.shape[1]
    fig, (ax_mean, ax_loss) = subplots(1, 2, figsize=(11, 3.8))
    for i in range(layers):
        name = f"layer {i + 1}" + (" (input side)" if i == 0 else " (top)" if i == layers - 1 else "")
        ax_mean.plot(steps, means[:, i].tolist(), color=OKABE_ITO[i % len(OKABE_ITO)], linewidth=1,
                     marker=RUN_MARKERS[i % len(RUN_MARKERS)], markersize=4, markevery=max(1, len(steps) // 12),
                     label=name)
    ax_mean.set_ylim(0, 1)
    ax_mean.set_ylabel("mean activation of the layer")
    ax_mean.legend(loc="upper right")
    ax_loss.plot(range(1, len(history.loss) + 1), list(history.loss), color=OKABE_ITO[7], linewidth=0.6,
                 label="training loss per step")
    if loss_reference is not None:
        value = _checks.number("loss_reference[0]", loss_reference[0])
        ax_loss.axhline(value, color=OKABE_ITO[3], linestyle="--", label=str(loss_reference[1]))
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(loc="lower left")
    for ax in (ax_mean, ax_loss):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    return finish(fig, title)
