"""The course's look, shared by every figure: Okabe & Ito's colour-blind-safe palette with a marker (and,
past eight series, a line style) per series, one look per well-known series (an activation, an
initialization recipe, a LayerNorm placement, an optimizer, a number format) in every figure, fonts
readable at 1280 px (:data:`COURSE_RC`), and log axes whose short ranges still carry labelled ticks.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
from cycler import cycler
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

__all__ = ["COURSE_RC", "KNOWN_SERIES", "LINESTYLES", "OKABE_ITO", "RUN_MARKERS", "label_log_axes", "layer_styles",
           "series_style", "series_styles"]

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""Okabe & Ito's colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish purple,
sky blue, yellow, black): give the i-th series ``OKABE_ITO[i]`` together with ``RUN_MARKERS[i]`` or a
line style, so that no two series differ by colour alone (:func:`series_style` does)."""

RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""One marker per series, in order."""

LINESTYLES = ("-", "--", ":", "-.")
"""The line style of series 1-8, 9-16, 17-24 and 25-32: with :data:`RUN_MARKERS`, 32 distinct looks."""

COURSE_RC = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10,
             "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 12,
             "lines.markersize": 5, "axes.prop_cycle": cycler(color=OKABE_ITO)}
"""matplotlib settings every course figure is drawn under: no text below 10 pt, so that a figure at most
11 inches wide (1,100 px at the inline backend's 100 dpi) reads at 1280 px; Okabe-Ito colours."""

KNOWN_SERIES = {
    0: ("sigmoid", "sigmoid, default init", "sigmoid, pytorch default init", "post-ln", "sgd", "float32"),
    1: ("tanh", "tanh, default init", "tanh, standard init", "pre-ln", "momentum", "bfloat16"),
    2: ("relu", "relu, default init", "rezero", "rmsprop", "float16"),
    3: ("relu, he init", "relu, he", "relu + he", "relu, he (kaiming) init", "pre-ln, gpt-2 scaling", "adam",
        "float16 + gradscaler"),
    4: ("leaky relu", "leaky_relu", "post-ln + warmup"),
    5: ("elu",),
    6: ("gelu",),
    7: ("silu",),
}
"""Series with one look in every course figure, by their index into :data:`OKABE_ITO` and
:data:`RUN_MARKERS`; a label matches when it equals one of the names, ignoring case (so "ReLU, He init"
is vermillion diamonds wherever it is drawn). Names of different families may share an index: they are
not drawn in one figure."""

_KNOWN = {name: index for index, names in KNOWN_SERIES.items() for name in names}


def _known_index(label):
    return _KNOWN.get(re.sub(r"\s+", " ", str(label).strip().lower())) if label is not None else None


def series_style(i, points=None):
    """The i-th series' look: ``color``, ``marker`` and ``linestyle`` (unique for i < 32). ``points``: the
    number of points the line has; past 20 a marker sits on about one point in ten, each series' markers
    shifted a little, so that series drawn over one another still show."""
    style = dict(color=OKABE_ITO[i % len(OKABE_ITO)], marker=RUN_MARKERS[i % len(RUN_MARKERS)],
                 linestyle=LINESTYLES[(i // len(RUN_MARKERS)) % len(LINESTYLES)])
    if points is not None and points > 20:
        step = max(2, points // 10)
        style["markevery"] = ((i * step) // len(RUN_MARKERS) % step, step)
    return style


def series_styles(labels, styles=None, points=None):
    """``{label: look}`` for the series ``labels`` of one figure: a label of :data:`KNOWN_SERIES` gets its
    fixed look, the others the next looks no known label of this figure takes, in order; ``styles``
    (``{label: {line property: value}}``, e.g. from a notebook) override what they name. ``points``:
    as in :func:`series_style` (an int for every series, or ``{label: int}``)."""
    labels = list(dict.fromkeys(labels))
    known = {label: _known_index(label) for label in labels}
    taken = {index for index in known.values() if index is not None}
    free = (i for i in range(1000) if i not in taken)
    looks = {}
    for label in labels:
        count = points.get(label) if isinstance(points, dict) else points
        index = known[label] if known[label] is not None else next(free)
        looks[label] = {**series_style(index, count), **((styles or {}).get(label, {}))}
    return looks


def layer_styles(count, points=None):
    """Looks for ``count`` ordered series (layers, input side first): colours along viridis (dark to
    light green-yellow, its last tenth left out), each with its own marker and line style."""
    looks = []
    for i in range(count):
        style = series_style(i, points)
        style["color"] = plt.get_cmap("viridis")(0.9 * i / max(1, count - 1))
        looks.append(style)
    return looks


def _nice_ticks(low, high):
    """At least three tick values in [low, high] (0 < low < high): 1-2-5 steps per decade, finer ones
    when the range is short, evenly spaced ones when it is shorter still."""
    for subs in ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [s * 10.0 ** k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                 for s in subs]
        ticks = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
        if len(ticks) >= 3:
            return ticks
    return [t for t in MaxNLocator(4).tick_values(low, high) if low <= t <= high and t > 0]


def label_log_axes(fig):
    """Give each log axis of ``fig`` spanning less than two decades at least three labelled ticks in plain
    numbers (matplotlib labels only powers of ten, so a range of 0.75 to 1.67 showed one label)."""
    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim), (ax.yaxis, ax.get_ylim)):
            if axis.get_scale() != "log" or not isinstance(axis.get_major_locator(), LogLocator):
                continue    # ticks a figure function placed itself are kept
            low, high = sorted(limits())
            if not (0 < low < high and math.isfinite(high)) or math.log10(high / low) >= 2:
                continue
            axis.set_major_locator(FixedLocator(_nice_ticks(low, high)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            axis.set_minor_formatter(NullFormatter())
