"""Figures of dynamical isometry and the edge of chaos: the singular values of deep networks' Jacobians, deep linear
networks' learning times against depth, correlation maps, the (sigma_w^2, sigma_b^2) phase diagram with the depth
scales, and one random network's correlations and gradients layer by layer.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import BoundaryNorm
from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter

from ...core import _checks
from .common import OKABE_ITO, RUN_MARKERS, closes_on_error, finish, subplots

__all__ = ["plot_learning_times", "plot_phase_diagram", "plot_signal_propagation", "plot_singular_value_cdfs",
           "plot_correlation_maps"]

_LINESTYLES = ("-", "--", "-.", ":")
_SMALLEST = 1e-4


def _style(i):
    """The i-th series' colour, line style and marker."""
    return dict(color=OKABE_ITO[i % len(OKABE_ITO)], linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                marker=RUN_MARKERS[i % len(RUN_MARKERS)])


@closes_on_error
def plot_singular_value_cdfs(spectra, near=2.0, title=None):
    """One panel per network kind: the share of the Jacobian's singular values at or below ``s`` (log axis), one
    line per depth. ``spectra``: ``{kind: {depth: singular values}}``. Dynamical isometry is a step at ``s = 1``;
    the band marks ``[1/near, near]``; singular values below 1e-4 (some are 0) are drawn at 1e-4."""
    if not isinstance(spectra, dict) or not spectra or not all(isinstance(v, dict) and v for v in spectra.values()):
        raise ValueError(f"spectra={_checks.describe(spectra)} is not allowed; it must be {{kind: {{depth: values}}}}")
    columns = math.ceil(len(spectra) / 2) if len(spectra) > 1 else 1
    fig, axes = subplots(min(2, len(spectra)), columns, figsize=(min(4.2 * columns, 11), 7), sharex=True, sharey=True,
                             squeeze=False)
    largest = max(torch.as_tensor(s).max().item() for by_depth in spectra.values() for s in by_depth.values())
    for ax, (kind, by_depth) in zip(axes.flat, spectra.items()):
        ax.axvspan(1 / near, near, color="0.9", label=f"within a factor {near:g} of 1")
        for i, (depth, values) in enumerate(by_depth.items()):
            s = np.sort(np.clip(torch.as_tensor(values, dtype=torch.float64).numpy(), _SMALLEST, None))
            ax.step(s, np.arange(1, len(s) + 1) / len(s), where="post", linewidth=1.8,
                    **{**_style(i), "marker": None}, label=f"depth {depth}")
        ax.set_xscale("log")
        ax.set_xlim(_SMALLEST / 2, max(largest * 2, 10))
        ax.set_title(kind)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(spectra):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("singular value s of J (log scale; 1e-4 = at most 1e-4)")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"share of singular values $\leq s$")
    axes.flat[min(1, len(spectra) - 1)].legend(loc="upper left")   # the second panel: often empty
    return finish(fig, title)


@closes_on_error
def plot_learning_times(depths, times, max_steps, title=None):
    """Steps to the loss threshold against depth (log-log), one line per initialization; ``times``:
    ``{label: [steps, or None where the threshold was not reached within max_steps]}``, drawn at ``max_steps``
    as hollow triangles."""
    depths = [_checks.integer("depths[i]", d, minimum=1) for d in depths]
    max_steps = _checks.integer("max_steps", max_steps, minimum=1)
    if not isinstance(times, dict) or not times or any(len(v) != len(depths) for v in times.values()):
        raise ValueError(f"times={_checks.describe(times)} is not allowed; it must be {{label: one value per depth}}")
    fig, ax = subplots(figsize=(7, 4.2))
    for i, (label, steps) in enumerate(times.items()):
        style = _style(i)
        shown = [math.nan if s is None else max(s, 1) for s in steps]
        ax.plot(depths, shown, label=label, markersize=7, **style)
        missed = [d for d, s in zip(depths, steps) if s is None]
        ax.plot(missed, [max_steps] * len(missed), linestyle="none", marker=style["marker"], markersize=11, markerfacecolor="none",
                markeredgewidth=1.5, color=style["color"], label=f"{label}: not reached in {max_steps} steps" if missed else None)
    ax.axhline(max_steps, color="black", linestyle=":", linewidth=1, label="step budget")
    ax.set_ylim(0.7, max_steps * 30)   # room above the budget for the legend
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(depths))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("depth (weight layers, log scale)")
    ax.set_ylabel("gradient steps to the threshold (log scale)")
    ax.legend(loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return finish(fig, title)


@closes_on_error
def plot_correlation_maps(c, maps, through_depth, title=None):
    """Left: the correlation map ``c_l`` against ``c_{l-1}`` for each label of ``maps`` (``{label: values over c}``)
    with the identity, on which fixed points lie. Right: the correlation of two inputs layer by layer,
    ``through_depth = {label: (theory, measured)}``, theory as a line and a wide network's measurement as markers."""
    c = [float(v) for v in c]
    if not isinstance(maps, dict) or not maps or any(len(v) != len(c) for v in maps.values()):
        raise ValueError(f"maps={_checks.describe(maps)} is not allowed; it must be {{label: one value per c}}")
    if not isinstance(through_depth, dict) or not through_depth:
        raise ValueError(f"through_depth={_checks.describe(through_depth)} is not allowed; it must be "
                         "{label: (theory, measured)}")
    fig, (ax_map, ax_depth) = subplots(1, 2, figsize=(11, 4.4))
    ax_map.plot([0, 1], [0, 1], color="black", linewidth=0.8, label=r"identity: $c_l = c_{l-1}$")
    for i, (label, values) in enumerate(maps.items()):
        ax_map.plot(c, values, label=label, markevery=max(len(c) // 8, 1), markersize=5, **_style(i))
    ax_map.set_xlabel("correlation of two inputs at layer l - 1")
    ax_map.set_ylabel("correlation at layer l")
    ax_map.set_xlim(0, 1)
    ax_map.set_ylim(0, 1.02)
    ax_map.legend(loc="lower right")
    ax_map.set_title("the correlation map")
    for i, (label, (theory, measured)) in enumerate(through_depth.items()):
        style = _style(i)
        ax_depth.plot(range(len(theory)), theory, color=style["color"], linestyle=style["linestyle"],
                      label=f"{label}: mean field")
        ax_depth.plot(range(len(measured)), measured, linestyle="none", marker=style["marker"], markersize=5,
                      markerfacecolor="none", color=style["color"], label=f"{label}: one wide network")
    ax_depth.set_xlabel("layer l")
    ax_depth.set_ylabel("correlation of the two inputs")
    ax_depth.set_ylim(0, 1.02)
    ax_depth.legend(loc="lower left", ncol=2)
    ax_depth.set_title("two inputs through the network")
    for ax in (ax_map, ax_depth):
        ax.grid(True, alpha=0.3)
    return finish(fig, title)


@closes_on_error
def plot_phase_diagram(weight_variances, bias_variances, chi, critical, depth_scales, trained, trained_above=0.5,
                       title=None):
    """Left: ``chi_1`` over the ``(sigma_w^2, sigma_b^2)`` plane (``chi`` of shape (bias, weight)), the line
    ``critical = (sigma_w^2 values, sigma_b^2 values)`` where it is 1, and the trained networks. Right, at the bias
    of the trained networks: ``depth_scales = {"sigma_w2": ..., "xi_c": ..., "xi_q": ...}`` against ``sigma_w^2`` with
    ``6 xi_c``, and each trained network ``{(sigma_w^2, depth): training accuracy}`` at its depth, filled where the
    accuracy is above ``trained_above``."""
    chi = np.asarray(chi, dtype=float)
    if chi.shape != (len(bias_variances), len(weight_variances)):
        raise ValueError(f"chi has shape {chi.shape}; it must be (len(bias_variances), len(weight_variances))")
    if not isinstance(trained, dict) or not all(isinstance(k, tuple) and len(k) == 2 for k in trained):
        raise ValueError(f"trained={_checks.describe(trained)} is not allowed; it must be {{(sigma_w2, depth): accuracy}}")
    fig, (ax_phase, ax_depth) = subplots(1, 2, figsize=(11, 4.8))
    levels = [0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8]
    cmap = plt.get_cmap("PuOr_r")
    shading = ax_phase.contourf(weight_variances, bias_variances, np.clip(chi, levels[0], levels[-1]), levels=levels,
                                cmap=cmap, norm=BoundaryNorm(levels, cmap.N), alpha=0.6)
    fig.colorbar(shading, ax=ax_phase, label=r"$\chi_1$: factor per layer on the squared gradient")
    ax_phase.plot(*critical, color="black", linewidth=2.5, label=r"edge of chaos: $\chi_1 = 1$")
    ax_phase.text(0.03, 0.72, "ordered\n" r"($\chi_1 < 1$)", transform=ax_phase.transAxes)
    ax_phase.text(0.62, 0.72, "chaotic\n" r"($\chi_1 > 1$)", transform=ax_phase.transAxes)
    ax_phase.set_xlabel(r"weight variance $\sigma_w^2$")
    ax_phase.set_ylabel(r"bias variance $\sigma_b^2$")
    ax_phase.set_xlim(min(weight_variances), max(weight_variances) * 1.04)
    ax_phase.set_ylim(min(bias_variances), max(bias_variances))
    weights = sorted({w for w, _ in trained})
    ax_depth.plot(depth_scales["sigma_w2"], depth_scales["xi_c"], color="black", label=r"$\xi_c$ (correlations)")
    ax_depth.plot(depth_scales["sigma_w2"], 6 * np.asarray(depth_scales["xi_c"]), color="black", linestyle="--", label=r"$6\,\xi_c$")
    ax_depth.plot(depth_scales["sigma_w2"], depth_scales["xi_q"], color="0.4", linestyle=":", label=r"$\xi_q$ (lengths)")
    for i, weight in enumerate(weights):
        style = _style(i)
        ax_phase.plot(weight, depth_scales.get("sigma_b2", 0.0), linestyle="none", marker=style["marker"], markersize=10,
                      color=style["color"], markeredgecolor="black")
        for (w, depth), acc in trained.items():
            if w == weight:
                ax_depth.plot(w, depth, linestyle="none", marker=style["marker"], markersize=11, color=style["color"],
                              markeredgecolor="black", markerfacecolor=style["color"] if acc > trained_above else "none")
                ax_depth.annotate(f"{acc:.0%}", (w, depth), textcoords="offset points", xytext=(9, 4))
    ax_depth.plot([], [], linestyle="none", marker="o", color="0.5", label=f"trained net: filled above {trained_above:.0%}")
    ax_depth.set_yscale("log")
    ax_depth.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax_depth.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_depth.set_ylim(0.5, 1000)
    ax_depth.set_xlim(min(depth_scales["sigma_w2"]) - 0.2, max(depth_scales["sigma_w2"]) * 1.06)
    ax_phase.legend(loc="upper right")
    ax_depth.set_xlabel(r"weight variance $\sigma_w^2$" + f" (bias variance {depth_scales.get('sigma_b2', 0.0):g})")
    ax_depth.set_ylabel("depth in layers (log scale)")
    ax_depth.legend(loc="upper right")
    for ax in (ax_phase, ax_depth):
        ax.grid(True, alpha=0.3)
    return finish(fig, title)


@closes_on_error
def plot_signal_propagation(correlations, gradients, title=None):
    """One random network, layer by layer. Left: the correlation of input pairs, ``{label: (theory, measured)}``.
    Right: the back-propagated gradient's squared norm relative to the top layer, ``(theory, measured)``, on a log
    axis. Theory as lines, the measurement as markers."""
    if not isinstance(correlations, dict) or not correlations:
        raise ValueError(f"correlations={_checks.describe(correlations)} is not allowed; it must be "
                         "{label: (theory, measured)}")
    theory, measured = gradients
    fig, (ax_c, ax_g) = subplots(1, 2, figsize=(11, 4.2))
    for i, (label, (line, points)) in enumerate(correlations.items()):
        style = _style(i)
        ax_c.plot(range(len(line)), line, color=style["color"], linestyle=style["linestyle"], label=f"{label}: mean field")
        ax_c.plot(range(len(points)), points, linestyle="none", marker=style["marker"], markersize=4,
                  markerfacecolor="none", color=style["color"], label=f"{label}: this network")
    ax_c.set_ylim(-0.02, 1.02)
    ax_c.set_xlabel("layer l")
    ax_c.set_ylabel("correlation of the two inputs")
    ax_c.legend(loc="lower left")
    layers = range(len(theory))
    ax_g.plot(layers, [max(v, 1e-300) for v in theory], color=OKABE_ITO[0], label=r"mean field: $\chi_1^{L-l}$")
    ax_g.plot(layers, [v if v > 0 else math.nan for v in measured], linestyle="none", marker="o", markersize=4,
              markerfacecolor="none", color=OKABE_ITO[3], label="this network")
    ax_g.set_yscale("log")
    ax_g.set_xlabel("layer l (L = top)")
    ax_g.set_ylabel(r"$\|\partial\mathcal{L}/\partial h_l\|^2 \,/\, \|\partial\mathcal{L}/\partial h_L\|^2$ (log scale)")
    ax_g.legend()
    for ax in (ax_c, ax_g):
        ax.grid(True, alpha=0.3)
    return finish(fig, title)
