"""Per-layer quantities in panels side by side: the forward signal beside the backward one, or a weight
gradient beside the factors it is the product of (notebook 14)."""

from __future__ import annotations

import math

from matplotlib.ticker import MaxNLocator

from ...core import _checks
from .common import as_runs, closes_on_error, finish, positive, subplots
from .style import series_style

__all__ = ["plot_layer_panels"]

_REFERENCE_STYLES = ("--", ":", "-.")


def _panels(panels, name):
    if not isinstance(panels, dict) or not all(isinstance(label, str) for label in panels):
        raise ValueError(f"{name}={_checks.describe(panels)} is not allowed; it must be a dict "
                         "{axis label: {series label: one value per layer}}")
    return {label: as_runs(series, f"{name}[{label!r}]") for label, series in panels.items()}


@closes_on_error
def plot_layer_panels(panels, title=None, references=None, hlines=None, order=None):
    """One log-scale panel per entry of ``panels`` (``{y-axis label: {series label: values per layer}}``),
    layer 1 (the input side) on the left. A series label keeps one colour (Okabe-Ito) and one marker in
    every panel, so the same network or quantity is recognised across them.

    Args:
        panels: e.g. ``{"relative spread of h_l": {"sigmoid": [...], "ReLU, He": [...]},
            "||dL/dh_l||": {"sigmoid": [...], "ReLU, He": [...]}}``; series may have different lengths.
        title: the figure's title.
        references: optional ``{y-axis label: {label: values per layer}}``, drawn as black dashed,
            dotted or dash-dotted lines in that panel (e.g. a predicted slope).
        hlines: optional ``{y-axis label: (value, label)}``, a dotted grey horizontal line in that panel
            (e.g. a rule of thumb).
        order: optional list of series labels: the i-th gets the i-th colour and marker, so that a notebook
            that passes one list to every figure keeps one look per series; labels not in it follow, in the
            order they first appear.
    """
    panels = _panels(panels, "panels")
    if not panels:
        raise ValueError("panels={} is not allowed; give at least one panel")
    refs = _panels(references or {}, "references")
    hlines = {} if hlines is None else hlines
    if not isinstance(hlines, dict):
        raise ValueError(f"hlines={_checks.describe(hlines)} is not allowed; it must be None or a dict "
                         "{axis label: (value, label)}")
    for name, given in (("references", refs), ("hlines", hlines)):
        unknown = set(given) - set(panels)
        if unknown:
            raise ValueError(f"{name} for {sorted(unknown)} are not allowed; they must name panels of {list(panels)}")
    for panel, line in hlines.items():
        if not isinstance(line, tuple) or len(line) != 2:
            raise ValueError(f"hlines[{panel!r}]={line!r} is not allowed; it must be (value > 0, label)")
        _checks.number(f"hlines[{panel!r}][0]", line[0], minimum=0, strict_minimum=True)
    if order is not None and (not isinstance(order, (list, tuple)) or not all(isinstance(o, str) for o in order)):
        raise ValueError(f"order={_checks.describe(order)} is not allowed; it must be None or a list of series labels")
    labels = list(dict.fromkeys([*(order or []), *(label for series in panels.values() for label in series)]))
    style = {label: series_style(i) for i, label in enumerate(labels)}
    fig, axes = subplots(1, len(panels), figsize=(min(5.5 * len(panels), 11), 4.0), squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels.items()):
        for label, values in series.items():
            ax.plot(range(1, len(values) + 1), positive(values), markersize=5, label=label, **style[label])
        for (label, values), linestyle in zip(refs.get(ylabel, {}).items(), _REFERENCE_STYLES * 3):
            ax.plot(range(1, len(values) + 1), positive(values), linestyle=linestyle, color="black", linewidth=1,
                    label=label)
        if ylabel in hlines:
            ax.axhline(hlines[ylabel][0], linewidth=1, color="grey", label=hlines[ylabel][1])
        if all(math.isnan(v) for values in series.values() for v in positive(values)):
            ax.text(0.5, 0.5, "nothing positive to draw", transform=ax.transAxes, ha="center")
        else:
            ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    return finish(fig, title)
