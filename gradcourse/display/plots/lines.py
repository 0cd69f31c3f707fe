"""Figures of numbers against layers, depths, time steps or scales: log-scale lines, per-layer
histograms and shares, activations and their derivatives.
"""

from __future__ import annotations

import math

import torch
from matplotlib.ticker import MaxNLocator

from ...core import _checks
from .common import as_runs, as_styles, closes_on_error, finish, positive, ratio, subplots
from .style import layer_styles, series_style, series_styles

_REFERENCE_STYLES = ({"linestyle": "--"}, {"linestyle": ":"}, {"linestyle": "-."}, {"linestyle": (0, (6, 2, 1, 2, 1, 2))})
"""The looks of reference lines (bounds, predictions), dark grey, one line style each."""

__all__ = ["plot_activation_and_flow", "plot_activation_curves", "plot_gradient_flow", "plot_layer_histograms",
           "plot_log_lines", "plot_loss_scale_sweep", "plot_per_layer", "plot_per_layer_shares",
           "plot_timestep_gradients", "plot_two_per_layer"]


@closes_on_error
def plot_log_lines(x, values, xlabel, ylabel, title=None, references=None, hline=None, styles=None,
                   reference_styles=None, legend="inside"):
    """Lines on a log y-axis over shared x positions, one per run.

    Args:
        x: the x position of each value (e.g. layer numbers or depths).
        values: a sequence (one run) or ``{label: sequence}`` (several runs side by side).
        xlabel, ylabel, title: axis labels and title.
        references: optional ``{label: sequence}`` drawn as dashed grey lines (e.g. a bound).
        hline: optional y value drawn as a thin black horizontal line (e.g. the 1e-3 rule of thumb).
        styles: optional ``{label: {line property: value}}`` (``color``, ``linestyle``, ... of
            matplotlib's ``Line2D``) over each run's look (:func:`~gradcourse.display.plots.style.series_styles`:
            an Okabe-Ito colour and a marker per run, the same for a well-known run in every figure);
            labels not drawn here are ignored.
        reference_styles: the same for the references, drawn dark grey, dashed, dotted, dash-dotted ...
            in turn (e.g. ``{"bound": {"color": "C2"}}`` to draw a bound in the colour of the run it
            predicts).
        legend: ``"inside"`` (matplotlib's best place) or ``"outside"``, beside the axes, clear of
            the data (for figures with many lines).
    """
    _checks.choice("legend", legend, ("inside", "outside"))
    x = list(x)
    runs = as_runs(values)
    styles = as_styles(styles)
    reference_styles = as_styles(reference_styles)
    refs = as_runs(references or {}, "references")
    for label, seq in [*runs.items(), *refs.items()]:
        if len(seq) != len(x):
            raise ValueError(f"values for {label!r} has {len(seq)} entries but x has {len(x)}; they must match")
    fig, ax = subplots(figsize=(8, 4) if legend == "outside" else (7, 4))
    looks = series_styles(runs, styles, points=len(x))
    for label, seq in runs.items():
        ax.plot(x, positive(seq), **{"label": label, **looks[label]})
    for (label, seq), look in zip(refs.items(), _REFERENCE_STYLES * 4):
        ax.plot(x, positive(seq), **{"color": "0.3", "label": label, **look, **reference_styles.get(label, {})})
    if hline is not None:
        ax.axhline(hline, linewidth=1, color="black", label=f"{hline:g}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if any(label is not None for label in runs) or refs or hline is not None:
        if legend == "outside":
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend()
    ax.grid(True, which="major", alpha=0.3)
    return finish(fig)


@closes_on_error
def plot_per_layer(values, ylabel, title=None, references=None, hline=None, styles=None,
                   xlabel="layer (1 = input side)"):
    """Per-layer values (layer 1 = input side) on a log scale; see :func:`plot_log_lines`.

    Runs may have different lengths (networks of different depths side by side):
    each is drawn over its own layers. ``xlabel`` names the units (e.g. "block (1 = input side)").
    """
    if not isinstance(xlabel, str) or not xlabel:
        raise ValueError(f"xlabel={xlabel!r} is not allowed; it must be a non-empty string")
    runs = as_runs(values)
    refs = as_runs(references or {}, "references")
    n = max(len(seq) for seq in [*runs.values(), *refs.values()])
    runs, refs = ({label: seq + [math.nan] * (n - len(seq)) for label, seq in d.items()} for d in (runs, refs))
    return plot_log_lines(range(1, n + 1), runs, xlabel, ylabel, title, refs or None, hline, styles)


@closes_on_error
def plot_gradient_flow(norms, title="Gradient norm per layer", references=None, styles=None):
    """Per-layer gradient norms ``||dL/dW_l||`` on a log scale (several runs side by side);
    ``styles`` as in :func:`plot_log_lines`."""
    return plot_per_layer(norms, "gradient norm (log scale)", title=title, references=references, styles=styles)


@closes_on_error
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
    fig, (ax_f, ax_g) = subplots(1, 2, figsize=(11, 3.8))
    ax_f.plot(z, values, label="f(z)", **series_style(0, len(z)))
    ax_f.plot(z, derivative, label="f'(z)", **{**series_style(1, len(z)), "linestyle": "--"})
    ax_f.axhline(0, color="black", linewidth=0.5)
    ax_f.set_xlabel("z")
    ax_f.legend()
    ax_f.grid(True, alpha=0.3)
    if title:
        ax_f.set_title(title)
    ax_g.plot(range(1, len(norms) + 1), positive(norms), **series_style(0, len(norms)))
    ax_g.set_yscale("log")
    ax_g.set_xlabel("layer (1 = input side)")
    ax_g.set_ylabel("||dL/dW_l|| (log scale)")
    ratio_text = f"first/last = {ratio(norms[0], norms[-1]):.2e}"
    ax_g.set_title(f"{flow_title}: {ratio_text}" if flow_title else ratio_text)
    ax_g.grid(True, alpha=0.3)
    return finish(fig)


@closes_on_error
def plot_activation_curves(z, values, derivatives):
    """Functions ``f(z)`` (left) and their derivatives ``f'(z)`` (right) over the points ``z``:
    ``values`` and ``derivatives`` map the same names to sequences as long as ``z``."""
    z = torch.as_tensor(z, dtype=torch.float64).reshape(-1)
    if not isinstance(values, dict) or not values or not isinstance(derivatives, dict) or list(values) != list(derivatives):
        raise ValueError(f"values={_checks.describe(values)} and derivatives={_checks.describe(derivatives)} are not "
                         "allowed; they must be non-empty dicts {name: values over z} with the same names")
    curves = {}
    for name in values:
        pair = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in (values[name], derivatives[name])]
        if not len(pair[0]) == len(pair[1]) == len(z):
            raise ValueError(f"the curves for {name!r} have {len(pair[0])} and {len(pair[1])} points but z has {len(z)}")
        curves[name] = pair
    fig, (ax_f, ax_d) = subplots(1, 2, figsize=(10, 3.6))
    looks = series_styles(curves, points=len(z))
    for name, (f, d) in curves.items():
        ax_f.plot(z, f, label=name, **looks[name])
        ax_d.plot(z, d, label=name, **looks[name])
    ax_f.set_ylabel("f(z)")
    ax_d.set_ylabel("f'(z)")
    for ax in (ax_f, ax_d):
        ax.set_xlabel("z")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.grid(True, alpha=0.3)
        ax.legend()
    return finish(fig)


@closes_on_error
def plot_layer_histograms(per_layer, title=None, bins=60):
    """Glorot & Bengio-style histograms: one panel per quantity, one line per layer.

    ``per_layer`` maps a panel title to a list of tensors, one per layer (input side first),
    e.g. ``{"activations": [...], "back-propagated gradients dL/dz": [...]}`` from
    :func:`gradcourse.lessons.at_init.layer_statistics`. Each histogram is normalized to unit area
    and drawn as a line, so the layers' spreads can be compared on one axis.
    """
    if not isinstance(per_layer, dict) or not per_layer:
        raise ValueError(f"per_layer={_checks.describe(per_layer)} is not allowed; it must be a non-empty "
                         "dict {panel title: [tensor per layer]}")
    _checks.integer("bins", bins, minimum=2)
    panels = {}
    for panel, tensors in per_layer.items():
        tensors = [torch.as_tensor(t).detach().flatten().double() for t in tensors]
        if not tensors or any(t.numel() == 0 for t in tensors):
            raise ValueError(f"per_layer[{panel!r}] is not allowed; it must be a list of non-empty tensors, one per layer")
        low = min(t.min().item() for t in tensors)
        high = max(t.max().item() for t in tensors)
        if not (math.isfinite(low) and math.isfinite(high)) or low == high:
            raise ValueError(f"the values for {panel!r} must be finite and not all equal")
        panels[panel] = tensors, low, high
    fig, axes = subplots(1, len(panels), figsize=(min(5.5 * len(panels), 11), 3.6), squeeze=False)
    for ax, (panel, (tensors, low, high)) in zip(axes[0], panels.items()):
        for i, (t, look) in enumerate(zip(tensors, layer_styles(len(tensors), points=bins))):
            density, edges = torch.histogram(t, bins=bins, range=(low, high), density=True)
            centers = (edges[:-1] + edges[1:]) / 2
            ax.plot(centers, density, **look, label=f"layer {i + 1} (std {t.std().item():.2g})")
        ax.set_title(panel)
        ax.set_xlabel(f"value of {panel}")
        ax.set_ylabel("density")
        ax.legend()
        ax.grid(True, alpha=0.3)
    return finish(fig, title)


@closes_on_error
def plot_two_per_layer(left, right, left_label, right_label, title=None):
    """Two per-layer log plots side by side, e.g. activation std (left) and gradient norm (right)."""
    runs_left, runs_right = as_runs(left, "left"), as_runs(right, "right")
    fig, axes = subplots(1, 2, figsize=(11, 3.8))
    looks = series_styles([*runs_left, *runs_right])
    for ax, runs, label in ((axes[0], runs_left, left_label), (axes[1], runs_right, right_label)):
        for name, seq in runs.items():
            ax.plot(range(1, len(seq) + 1), positive(seq), **looks[name], label=name)
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if any(name is not None for name in runs):
            ax.legend()
    return finish(fig, title)


@closes_on_error
def plot_per_layer_shares(values, ylabel, title=None):
    """Per-layer shares in [0, 1] (e.g. gradients flushed to zero), one line per run, linear axis."""
    runs = as_runs(values)
    fig, ax = subplots(figsize=(7, 3.8))
    looks = series_styles(runs)
    for label, seq in runs.items():
        ax.plot(range(1, len(seq) + 1), seq, **looks[label], label=label)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if any(label is not None for label in runs):
        ax.legend()
    return finish(fig)


@closes_on_error
def plot_loss_scale_sweep(log2_scales, flushed, overflowed, limits=None, title=None):
    """Shares in [0, 1] against the loss scale ``S = 2**k`` (x axis: ``k``), e.g. from
    :func:`gradcourse.lessons.precision.cast_sweep`: ``flushed`` (``{label: share per k}``, solid lines)
    and ``overflowed`` (``{label: share per k}``, dashed lines); ``limits``: optional
    ``{label: k}`` drawn as dotted vertical lines (e.g. where ``max|g| * S`` reaches fp16's 65504)."""
    x = [float(k) for k in log2_scales]
    flushed, overflowed = as_runs(flushed, "flushed"), as_runs(overflowed, "overflowed")
    for label, seq in [*flushed.items(), *overflowed.items()]:
        if len(seq) != len(x):
            raise ValueError(f"shares for {label!r} has {len(seq)} entries but log2_scales has {len(x)}; they must match")
    limits = dict(limits or {})
    fig, ax = subplots(figsize=(8, 3.8))
    looks = series_styles(flushed, points=len(x))
    for label, seq in flushed.items():
        ax.plot(x, seq, **looks[label], label=label)
    for (label, seq), look in zip(overflowed.items(), _REFERENCE_STYLES[::2] * 4):
        ax.plot(x, seq, linewidth=2, color="black", **look, label=label)
    for (label, k), look in zip(limits.items(), _REFERENCE_STYLES[1::2] * 4):
        ax.axvline(_checks.number(f"limits[{label!r}]", k), color="0.3", linewidth=1.5, **look, label=label)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("log2 of the loss scale S")
    ax.set_ylabel("share of the layer's gradients")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig)


# ---------------------------------------------------------------- recurrent networks and clipping (notebooks 06, 08)


@closes_on_error
def plot_timestep_gradients(norms, title=None, references=None, ylabel="||dL/dh_t|| (log scale)", styles=None,
                            reference_styles=None):
    """``||dL/dh_t||`` against the time step t = 1..T on a log scale, one line per run
    (e.g. ``{"rnn": [...], "lstm": [...]}`` from :func:`gradcourse.lessons.sequences.timestep_gradient_norms`).
    The loss is read at the last step T, so the gradient starts there and flows to the left.
    ``styles`` and ``reference_styles`` as in :func:`plot_log_lines`."""
    runs = as_runs(norms, "norms")
    length = max(len(seq) for seq in runs.values())
    return plot_log_lines(range(1, length + 1), norms, "time step t (the loss reads h_T)", ylabel,
                          title=title, references=references, styles=styles, reference_styles=reference_styles)
