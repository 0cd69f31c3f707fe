"""Matplotlib figures for the course. Each function takes data and returns a Figure.

Figures are closed in pyplot before they are returned, so a notebook shows each
one exactly once (as the value of its cell) and no figure piles up in memory.
No function calls ``plt.show()``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import LogFormatter, MaxNLocator

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
                             f"got {_checks.describe(seq)} for {label!r}") from None
        if not seq:
            raise ValueError(f"{name} for {label!r} is empty; give at least one value per layer")
        out[label] = seq
    return out


def _finish(fig, suptitle=None):
    """Title, tight layout, and close in pyplot so the figure shows once, as its cell's value."""
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _positive(seq):
    """Replace values a log axis cannot show (zero, negative, NaN, inf) by NaN."""
    return [v if math.isfinite(v) and v > 0 else math.nan for v in seq]


def _as_histories(histories, attribute):
    """``{label: History}`` from one History (label None) or a dict of them; each must have ``loss``
    and ``attribute``, or ValueError names the entry."""
    runs = histories if isinstance(histories, dict) else {None: histories}
    for label, history in runs.items():
        if not hasattr(history, "loss") or not hasattr(history, attribute):
            raise ValueError(f"histories must be a History or a dict of them; got {_checks.describe(history)} for {label!r}")
    return runs


def _as_styles(styles):
    """``{label: {line property: value}}`` (matplotlib's ``Line2D`` keywords, e.g. ``color``,
    ``linestyle``) or None; labels a figure does not draw are ignored, so one dict can serve
    every figure of a notebook."""
    if styles is None:
        return {}
    if not isinstance(styles, dict) or not all(isinstance(style, dict) for style in styles.values()):
        raise ValueError(f"styles={_checks.describe(styles)} is not allowed; it must be None or a dict "
                         "{label: {line property: value}}, e.g. {'plain': {'color': 'C0'}}")
    return styles


def _plot_step_losses(ax, runs, linewidth=1, values=list, styles=None):
    """The training loss per step of each run on ``ax`` (``values`` applied to it), a run that
    diverged marked with an ``x`` where it stopped; ``styles`` as in :func:`_as_styles`;
    returns ``{label: line colour}``."""
    styles = _as_styles(styles)
    colors = {}
    for label, history in runs.items():
        short = {"marker": "o"} if len(history.loss) < 3 else {}   # a line of one or two points is hard to see
        line, = ax.plot(range(1, len(history.loss) + 1), values(history.loss),
                        **{"label": label, "linewidth": linewidth, **short, **styles.get(label, {})})
        colors[label] = line.get_color()
        if history.diverged:
            ax.plot([history.stop_step], [history.loss[-1] if history.loss else 1.0], "x",
                    color=colors[label], markersize=10)
    ax.set_xlabel("step")
    return colors


def plot_log_lines(x, values, xlabel, ylabel, title=None, references=None, hline=None, styles=None,
                   reference_styles=None, legend="inside"):
    """Lines on a log y-axis over shared x positions, one per run.

    Args:
        x: the x position of each value (e.g. layer numbers or depths).
        values: a sequence (one run) or ``{label: sequence}`` (several runs side by side).
        xlabel, ylabel, title: axis labels and title.
        references: optional ``{label: sequence}`` drawn as dashed grey lines (e.g. a bound).
        hline: optional y value drawn as a dotted horizontal line (e.g. the 1e-3 rule of thumb).
        styles: optional ``{label: {line property: value}}`` (``color``, ``linestyle``, ... of
            matplotlib's ``Line2D``) for the runs, so one kind of run keeps one look across
            figures; labels not drawn here are ignored.
        reference_styles: the same for the references, whose default look is a dashed grey line
            (e.g. ``{"bound": {"color": "C2", "linestyle": ":"}}`` to draw a bound in the colour of
            the run it predicts, and to tell two references apart).
        legend: ``"inside"`` (matplotlib's best place) or ``"outside"``, beside the axes, clear of
            the data (for figures with many lines).
    """
    _checks.choice("legend", legend, ("inside", "outside"))
    x = list(x)
    runs = _as_runs(values)
    styles = _as_styles(styles)
    reference_styles = _as_styles(reference_styles)
    refs = _as_runs(references or {}, "references")
    for label, seq in [*runs.items(), *refs.items()]:
        if len(seq) != len(x):
            raise ValueError(f"values for {label!r} has {len(seq)} entries but x has {len(x)}; they must match")
    fig, ax = plt.subplots(figsize=(9, 4) if legend == "outside" else (7, 4))
    for label, seq in runs.items():
        ax.plot(x, _positive(seq), **{"marker": "o", "markersize": 3, "label": label, **styles.get(label, {})})
    for label, seq in refs.items():
        ax.plot(x, _positive(seq), **{"linestyle": "--", "color": "grey", "label": label,
                                      **reference_styles.get(label, {})})
    if hline is not None:
        ax.axhline(hline, linestyle=":", color="black", label=f"{hline:g}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize="medium")
    if any(label is not None for label in runs) or refs or hline is not None:
        if legend == "outside":
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return _finish(fig)


def plot_per_layer(values, ylabel, title=None, references=None, hline=None, styles=None):
    """Per-layer values (layer 1 = input side) on a log scale; see :func:`plot_log_lines`.

    Runs may have different lengths (networks of different depths side by side):
    each is drawn over its own layers.
    """
    runs = _as_runs(values)
    refs = _as_runs(references or {}, "references")
    n = max(len(seq) for seq in [*runs.values(), *refs.values()])
    runs, refs = ({label: seq + [math.nan] * (n - len(seq)) for label, seq in d.items()} for d in (runs, refs))
    return plot_log_lines(range(1, n + 1), runs, "layer (1 = input side)", ylabel, title, refs or None, hline,
                          styles)


def plot_gradient_flow(norms, title="Gradient norm per layer", references=None, styles=None):
    """Per-layer gradient norms ``||dL/dW_l||`` on a log scale (several runs side by side);
    ``styles`` as in :func:`plot_log_lines`."""
    return plot_per_layer(norms, "gradient norm (log scale)", title=title, references=references, styles=styles)


_RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _run_marker(i):
    """The i-th run's hollow marker, smaller for each later run, so equal runs show as nested rings."""
    return dict(marker=_RUN_MARKERS[i % len(_RUN_MARKERS)], markersize=max(13 - 2 * i, 4), markerfacecolor="none",
                markeredgewidth=1.5)


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
    runs = _as_histories(histories, "train_accuracy")
    styles = _as_styles(styles)
    outside = legend == "outside"
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8) if outside else (10, 3.8))
    colors = _plot_step_losses(ax_loss, runs, styles=styles)
    loss_lines = [line for line in ax_loss.get_lines() if line.get_marker() != "x"]   # one per run, in order
    for i, (label, history) in enumerate(runs.items()):
        if outside:   # the same marker on the run's loss line, a few times, so the legend names both panels
            loss_lines[i].set(**_run_marker(i), markevery=max(1, len(history.loss) // 6))
        if not history.train_accuracy:   # stopped before its first epoch ended: nothing to draw, no legend entry
            continue
        epochs = range(1, len(history.train_accuracy) + 1)
        style = _run_marker(i) if outside else {}
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
    return _finish(fig, title)


def plot_activation_and_flow(z, values, derivative, norms, title=None, flow_title=None):
    """An activation ``f(z)`` and its derivative ``f'(z)`` over ``z`` (left) beside the per-layer
    gradient norms ``||dL/dW_l||`` of a network built with it (right, log scale, first/last ratio in
    the title). ``z``, ``values``, ``derivative``: sequences of the same length; ``norms``: one per layer."""
    z, values, derivative = (torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in (z, values, derivative))
    if not len(z) == len(values) == len(derivative):
        raise ValueError(f"z, values and derivative must have the same length; got {len(z)}, {len(values)}, {len(derivative)}")
    norms = [float(v) for v in norms]
    if not norms:
        raise ValueError("norms=[] is not allowed; give one gradient norm per layer")
    fig, (ax_f, ax_g) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax_f.plot(z, values, label="f(z)")
    ax_f.plot(z, derivative, label="f'(z)")
    ax_f.axhline(0, color="black", linewidth=0.5)
    ax_f.set_xlabel("z")
    ax_f.legend(fontsize="small")
    ax_f.grid(True, alpha=0.3)
    if title:
        ax_f.set_title(title, fontsize="medium")
    ax_g.plot(range(1, len(norms) + 1), _positive(norms), marker="o", markersize=3)
    ax_g.set_yscale("log")
    ax_g.set_xlabel("layer (1 = input side)")
    ax_g.set_ylabel("||dL/dW_l|| (log scale)")
    ratio = f"first/last = {norms[0] / norms[-1]:.2e}"
    ax_g.set_title(f"{flow_title}: {ratio}" if flow_title else ratio, fontsize="medium")
    ax_g.grid(True, alpha=0.3)
    return _finish(fig)


def _require_monitor(monitor):
    if not hasattr(monitor, "series"):
        raise ValueError(f"monitor={_checks.describe(monitor)} is not allowed; it must be a GradientMonitor")


def plot_activation_stats(monitor, step=-1, title=None):
    """Per-layer activation mean and std, saturated share and dead share at one recorded step.

    ``monitor`` is a :class:`~gradcourse.monitor.GradientMonitor`; ``step`` indexes its
    recorded forward passes (default: the latest).
    """
    _require_monitor(monitor)
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
    return _finish(fig, title)


def plot_statistic_over_steps(monitor, name="act_mean", title=None):
    """One recorded statistic of a :class:`~gradcourse.monitor.GradientMonitor` against the training
    step, one line per layer (``grad_norm``, ``update_ratio``) or activation call (the others), as
    in Glorot & Bengio's (2010) Figure 2 of each layer's mean activation during training. Steps are
    counted as the monitor records them: every ``monitor.every``-th training step."""
    _require_monitor(monitor)
    values = monitor.series(name)
    if len(values) == 0:
        raise ValueError(f"the monitor has recorded no {name!r} yet; train the model while it is active")
    labels = monitor.layer_names if name in ("grad_norm", "update_ratio") else monitor.activation_names
    steps = [k * monitor.every for k in range(len(values))]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    colors = plt.cm.viridis([i / max(1, values.shape[1] - 1) for i in range(values.shape[1])])
    for column, (label, color) in enumerate(zip(labels, colors)):
        ax.plot(steps, values[:, column], color=color, label=f"{column + 1}: {label}")
    if name in ("grad_norm", "update_ratio"):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _finish(fig, title)


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
    return _finish(fig)


def plot_layer_histograms(per_layer, title=None, bins=60):
    """Glorot & Bengio-style histograms: one panel per quantity, one line per layer.

    ``per_layer`` maps a panel title to a list of tensors, one per layer (input side first),
    e.g. ``{"activations": [...], "back-propagated gradients dL/dz": [...]}`` from
    :func:`gradcourse.experiments.layer_statistics`. Each histogram is normalized to unit area
    and drawn as a line, so the layers' spreads can be compared on one axis.
    """
    if not isinstance(per_layer, dict) or not per_layer:
        raise ValueError(f"per_layer={_checks.describe(per_layer)} is not allowed; it must be a non-empty "
                         "dict {panel title: [tensor per layer]}")
    _checks.integer("bins", bins, minimum=2)
    fig, axes = plt.subplots(1, len(per_layer), figsize=(5.5 * len(per_layer), 3.6), squeeze=False)
    for ax, (panel, tensors) in zip(axes[0], per_layer.items()):
        tensors = [torch.as_tensor(t).detach().flatten().double() for t in tensors]
        low = min(t.min().item() for t in tensors)
        high = max(t.max().item() for t in tensors)
        if not (math.isfinite(low) and math.isfinite(high)) or low == high:
            raise ValueError(f"the values for {panel!r} must be finite and not all equal")
        colors = plt.cm.viridis([i / max(1, len(tensors) - 1) for i in range(len(tensors))])
        for i, (t, color) in enumerate(zip(tensors, colors)):
            density, edges = torch.histogram(t, bins=bins, range=(low, high), density=True)
            centers = (edges[:-1] + edges[1:]) / 2
            ax.plot(centers, density, color=color, label=f"layer {i + 1} (std {t.std().item():.2g})")
        ax.set_title(panel, fontsize="medium")
        ax.set_xlabel(f"value of {panel}")
        ax.set_ylabel("density")
        ax.legend(fontsize="x-small")
        ax.grid(True, alpha=0.3)
    return _finish(fig, title)


def plot_two_per_layer(left, right, left_label, right_label, title=None):
    """Two per-layer log plots side by side, e.g. activation std (left) and gradient norm (right)."""
    runs_left, runs_right = _as_runs(left, "left"), _as_runs(right, "right")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, runs, label in ((axes[0], runs_left, left_label), (axes[1], runs_right, right_label)):
        for name, seq in runs.items():
            ax.plot(range(1, len(seq) + 1), _positive(seq), marker="o", markersize=3, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if any(name is not None for name in runs):
            ax.legend(fontsize="small")
    return _finish(fig, title)


def plot_per_layer_shares(values, ylabel, title=None):
    """Per-layer shares in [0, 1] (e.g. gradients flushed to zero), one line per run, linear axis."""
    runs = _as_runs(values)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, seq in runs.items():
        ax.plot(range(1, len(seq) + 1), seq, marker="o", markersize=3, label=label)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize="medium")
    if any(label is not None for label in runs):
        ax.legend(fontsize="small")
    return _finish(fig)


def plot_loss_scale_sweep(log2_scales, flushed, overflowed, limits=None, title=None):
    """Shares in [0, 1] against the loss scale ``S = 2**k`` (x axis: ``k``), e.g. from
    :func:`gradcourse.precision.cast_sweep`: ``flushed`` (``{label: share per k}``, solid lines)
    and ``overflowed`` (``{label: share per k}``, dashed lines); ``limits``: optional
    ``{label: k}`` drawn as dotted vertical lines (e.g. where ``max|g| * S`` reaches fp16's 65504)."""
    x = [float(k) for k in log2_scales]
    flushed, overflowed = _as_runs(flushed, "flushed"), _as_runs(overflowed, "overflowed")
    for label, seq in [*flushed.items(), *overflowed.items()]:
        if len(seq) != len(x):
            raise ValueError(f"shares for {label!r} has {len(seq)} entries but log2_scales has {len(x)}; they must match")
    limits = dict(limits or {})
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for label, seq in flushed.items():
        ax.plot(x, seq, marker="o", markersize=2.5, label=label)
    for (label, seq), color in zip(overflowed.items(), ("black", "dimgrey", "darkgrey")):
        ax.plot(x, seq, linestyle="--", linewidth=2, color=color, label=label)
    for (label, k), color in zip(limits.items(), ("tab:red", "tab:grey", "tab:brown")):
        ax.axvline(_checks.number(f"limits[{label!r}]", k), linestyle=":", color=color, label=label)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("log2 of the loss scale S")
    ax.set_ylabel("share of the layer's gradients")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig)


# ---------------------------------------------------------------- recurrent networks and clipping (notebooks 06, 08)

def plot_timestep_gradients(norms, title=None, references=None, ylabel="||dL/dh_t|| (log scale)", styles=None,
                            reference_styles=None):
    """``||dL/dh_t||`` against the time step t = 1..T on a log scale, one line per run
    (e.g. ``{"rnn": [...], "lstm": [...]}`` from :func:`gradcourse.sequences.timestep_gradient_norms`).
    The loss is read at the last step T, so the gradient starts there and flows to the left.
    ``styles`` and ``reference_styles`` as in :func:`plot_log_lines`."""
    runs = _as_runs(norms, "norms")
    length = max(len(seq) for seq in runs.values())
    return plot_log_lines(range(1, length + 1), norms, "time step t (the loss reads h_T)", ylabel,
                          title=title, references=references, styles=styles, reference_styles=reference_styles)


def plot_regression_history(histories, baseline=None, title=None):
    """Training loss per step (left) and validation (else training) MSE per epoch (right), log scale,
    for one History of ``fit(..., loss="mse")`` or ``{label: History}``.

    ``baseline``: optional MSE drawn as a dashed line (e.g. 1/6, what predicting the constant 1
    scores on the adding problem). A run that diverged is marked with an ``x`` where it stopped.
    """
    runs = _as_histories(histories, "val_loss")
    if baseline is not None:
        baseline = _checks.number("baseline", baseline, minimum=0, strict_minimum=True)
    fig, (ax_step, ax_epoch) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = _plot_step_losses(ax_step, runs, linewidth=0.8, values=_positive)
    for label, history in runs.items():
        per_epoch = history.val_loss or history.train_loss
        ax_epoch.plot(range(1, len(per_epoch) + 1), _positive(per_epoch), marker="o", color=colors[label], label=label)
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
    return _finish(fig, title)


def plot_gradient_norms(grad_norms, threshold=None, title=None):
    """A gradient-norm trace (left, log scale, one point per step) and its distribution (right,
    histogram over log-spaced bins), with the clipping ``threshold`` as a red line and the
    steps above it in red. The title gives the share of steps above the threshold."""
    if isinstance(grad_norms, dict):
        raise ValueError("grad_norms must be one sequence of numbers (e.g. History.grad_norm), not a dict")
    norms = _as_runs(grad_norms, "grad_norms")[None]
    finite = [v for v in norms if math.isfinite(v) and v > 0]
    if not finite:
        raise ValueError("grad_norms holds no positive finite value to plot")
    if threshold is not None:
        threshold = _checks.number("threshold", threshold, minimum=0, strict_minimum=True)
    steps = range(1, len(norms) + 1)
    fig, (ax_trace, ax_hist) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    ax_trace.plot(steps, _positive(norms), linewidth=0.7, color="tab:blue")
    low, high = math.log10(min(finite)), math.log10(max(finite))
    bins = [10 ** (low + (high - low + 1e-9) * i / 40) for i in range(41)]
    ax_hist.hist(finite, bins=bins, color="tab:blue", alpha=0.7)
    median = torch.tensor(finite, dtype=torch.float64).median().item()  # torch's median: the lower middle value
    ax_hist.axvline(median, color="black", linestyle=":", label=f"median {median:.3g}")
    if threshold is not None:
        above = [(s, v) for s, v in zip(steps, norms) if v > threshold]
        if above:
            ax_trace.plot(*zip(*above), "o", color="tab:red", markersize=2.5, label="above the threshold")
        ax_trace.axhline(threshold, color="tab:red", linewidth=1, label=f"threshold {threshold:.3g}")
        ax_hist.axvline(threshold, color="tab:red", label=f"threshold {threshold:.3g}")
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
    return _finish(fig, title)


def _cliff_background(ax, surface, show="loss"):
    values = surface.loss if show == "loss" else surface.grad_norm
    image = ax.pcolormesh(surface.w.numpy(), surface.b.numpy(), torch.log10(values.clamp_min(1e-12)).T.numpy(),
                          shading="auto", cmap="viridis")
    ax.set_xlabel("w (recurrent weight)")
    ax.set_ylabel("b (bias)")
    ax.set_xlim(surface.w[0].item(), surface.w[-1].item())
    ax.set_ylim(surface.b[0].item(), surface.b[-1].item())
    return image


def plot_cliff_surface(surface, title=None):
    """The loss of :func:`gradcourse.clipping.cliff_surface` over the (w, b) grid (log10 colour scale),
    with the wall ``b = x0 - w sigma(x0)``, where ``w sigma'(x0) > 1``, dashed in white."""
    from .clipping import CliffSurface, cliff_wall

    if not isinstance(surface, CliffSurface):
        raise ValueError(f"surface={_checks.describe(surface)} is not allowed; it must be a CliffSurface")
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    image = _cliff_background(ax, surface)
    fig.colorbar(image, ax=ax, label="log10 loss")
    s0 = 1.0 / (1.0 + math.exp(-surface.x0))
    w_start = max(1.0 / (s0 * (1 - s0)), surface.w[0].item())
    if w_start < surface.w[-1].item():
        wall_w = [w_start + (surface.w[-1].item() - w_start) * i / 50 for i in range(51)]
        ax.plot(wall_w, [cliff_wall(w, surface.x0) for w in wall_w], "--", color="white", linewidth=1,
                label=f"the wall: x_0 = {surface.x0:g} is an unstable fixed point")
        ax.legend(fontsize="small", loc="upper right")
    ax.set_title(title or f"L(w, b) = (x_{surface.steps} - {surface.target:g})^2,  x_t = w sigma(x_(t-1)) + b",
                 fontsize="medium")
    return _finish(fig)


def plot_cliff_section(section, title=None):
    """Loss (left) and gradient norm (right) of a :class:`~gradcourse.clipping.CliffSlice` against the
    distance from the wall, log-log, one line for each side of the wall."""
    from .clipping import CliffSlice

    if not isinstance(section, CliffSlice):
        raise ValueError(f"section={_checks.describe(section)} is not allowed; it must be a CliffSlice")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    above = section.offsets > 0
    for ax, values, label in zip(axes, (section.loss, section.grad_norm), ("loss L", "||grad L||")):
        for side, name in ((above, "above the wall (b larger)"), (~above, "below the wall (b smaller)")):
            ax.plot(section.offsets[side].abs().tolist(), _positive(values[side].tolist()), label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the wall in b")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title or f"Approaching the wall at w = {section.w:g}")
    return _finish(fig)


def plot_cliff_descent(surface, runs, huge_step=1.0, title=None):
    """Gradient-descent paths on the cliff's loss surface, one panel per ``{label: CliffDescent}``.

    Start points are black dots; a run that took at least one step longer than ``huge_step`` is
    drawn in red, the others in white. Paths leave the frame where a step threw them out of it.
    """
    from .clipping import CliffDescent, CliffSurface

    if not isinstance(surface, CliffSurface):
        raise ValueError(f"surface={_checks.describe(surface)} is not allowed; it must be a CliffSurface")
    if not isinstance(runs, dict) or not runs or not all(isinstance(r, CliffDescent) for r in runs.values()):
        raise ValueError(f"runs={_checks.describe(runs)} is not allowed; it must be a non-empty dict {{label: CliffDescent}}")
    huge_step = _checks.number("huge_step", huge_step, minimum=0, strict_minimum=True)
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.6), squeeze=False)
    for ax, (label, run) in zip(axes[0], runs.items()):
        _cliff_background(ax, surface)
        huge = run.huge_steps(huge_step)
        for path, is_huge in zip(run.paths.numpy(), huge.tolist()):
            ax.plot(path[:, 0], path[:, 1], color="tab:red" if is_huge else "white", linewidth=0.8, alpha=0.9)
        ax.plot(run.paths[:, 0, 0].numpy(), run.paths[:, 0, 1].numpy(), "k.", markersize=3)
        ax.set_title(f"{label}: {int(huge.sum())} of {len(huge)} runs took a step > {huge_step:g}", fontsize="medium")
    return _finish(fig, title)


def plot_training_and_layers(histories, per_layer, ylabel, title=None, hline=None):
    """Training loss per step (left, log scale) next to per-layer values (right, log scale).

    ``histories``: a History or ``{label: History}``; ``per_layer``: a sequence of per-layer
    numbers or ``{label: sequence}`` (e.g. gradient norms or update ratios), drawn as in
    :func:`plot_per_layer`; ``hline``: an optional reference level on the right panel
    (e.g. the 1e-3 rule of thumb for update ratios). A diverged run is marked with an ``x``.
    """
    runs = _as_histories(histories, "diverged")
    layers = _as_runs(per_layer, "per_layer")
    if not isinstance(ylabel, str):
        raise ValueError(f"ylabel={ylabel!r} is not allowed; it must be a string")
    fig, (ax_loss, ax_layers) = plt.subplots(1, 2, figsize=(11, 3.8))
    _plot_step_losses(ax_loss, runs)
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
    return _finish(fig, title)


def plot_quantiles(series, quantiles=(0.15, 0.5, 0.85), title=None):
    """Quantiles of a distribution over training steps, one panel per run, sharing the y-axis.

    ``series``: ``{label: tensor (steps, len(quantiles))}`` as recorded by
    :class:`~gradcourse.normalization.PreactivationQuantiles` -- the view of Ioffe &
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
    return _finish(fig, title)


def plot_accuracy_over_steps(curves, title=None, ylabel="test accuracy"):
    """Accuracy against training steps, one line per run: ``{label: (steps, accuracies)}``,
    e.g. ``(recorder.steps, recorder.accuracy)`` of
    :class:`~gradcourse.normalization.AccuracyOverSteps` -- the view of Ioffe & Szegedy (2015),
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
    return _finish(fig, title)
