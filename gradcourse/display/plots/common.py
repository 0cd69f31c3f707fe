"""What every course figure shares: argument checks for runs, histories and styles, the loss-per-step
panel, run markers, :func:`finish`, which lays a figure out and closes it in pyplot, and
:func:`closes_on_error`, which closes it when drawing fails.
"""

from __future__ import annotations

import functools
import math

import matplotlib.pyplot as plt

from ...core import _checks

__all__ = ["OKABE_ITO", "RUN_MARKERS", "as_histories", "as_runs", "as_styles", "closes_on_error", "finish", "plot_step_losses",
           "positive", "ratio", "require_monitor", "run_marker"]


def as_runs(values, name="values"):
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


def closes_on_error(plot):
    """Decorate a figure function so that a call that raises leaves no figure open in pyplot
    (each would otherwise show up, half drawn, under a later cell)."""
    @functools.wraps(plot)
    def closing(*args, **kwargs):
        before = set(plt.get_fignums())
        try:
            return plot(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise
    return closing


def ratio(numerator, denominator):
    """``numerator / denominator`` for a figure's title, NaN (printed "nan") where the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def finish(fig, suptitle=None):
    """Title, tight layout, and close in pyplot so the figure shows once, as its cell's value."""
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.close(fig)
    return fig


def positive(seq):
    """Replace values a log axis cannot show (zero, negative, NaN, inf) by NaN."""
    return [v if math.isfinite(v) and v > 0 else math.nan for v in seq]


def as_histories(histories, attribute):
    """``{label: History}`` from one History (label None) or a dict of them; each must have ``loss``
    and ``attribute``, or ValueError names the entry."""
    runs = histories if isinstance(histories, dict) else {None: histories}
    for label, history in runs.items():
        if not hasattr(history, "loss") or not hasattr(history, attribute):
            raise ValueError(f"histories must be a History or a dict of them; got {_checks.describe(history)} for {label!r}")
        for train, val in (("train_accuracy", "val_accuracy"), ("train_loss", "val_loss")):
            scored, validated = getattr(history, train, []), getattr(history, val, [])
            if validated and scored and len(validated) != len(scored):   # scored is empty with EpochScores(training_set=False)
                raise ValueError(f"the History for {label!r} has {len(scored)} {train} entries but {len(validated)} "
                                 f"{val} entries; fit records one of each per epoch")
    return runs


def as_styles(styles):
    """``{label: {line property: value}}`` (matplotlib's ``Line2D`` keywords, e.g. ``color``,
    ``linestyle``) or None; labels a figure does not draw are ignored, so one dict can serve
    every figure of a notebook."""
    if styles is None:
        return {}
    if not isinstance(styles, dict) or not all(isinstance(style, dict) for style in styles.values()):
        raise ValueError(f"styles={_checks.describe(styles)} is not allowed; it must be None or a dict "
                         "{label: {line property: value}}, e.g. {'plain': {'color': 'C0'}}")
    return styles


def plot_step_losses(ax, runs, linewidth=1, values=list, styles=None):
    """The training loss per step of each run on ``ax`` (``values`` applied to it), a run that
    diverged marked with an ``x`` where it stopped; ``styles`` as in :func:`as_styles`;
    returns ``{label: line colour}``."""
    styles = as_styles(styles)
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


OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
"""Okabe & Ito's colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish purple,
sky blue, yellow, black): give the i-th series ``OKABE_ITO[i]`` together with ``RUN_MARKERS[i]`` or a
line style, so that no two series differ by colour alone."""

RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""One marker per run, in order, for figures whose runs may coincide."""


def run_marker(i):
    """The i-th run's hollow marker, smaller for each later run, so equal runs show as nested rings."""
    return dict(marker=RUN_MARKERS[i % len(RUN_MARKERS)], markersize=max(13 - 2 * i, 4), markerfacecolor="none",
                markeredgewidth=1.5)


def require_monitor(monitor):
    """Raise a ValueError naming ``monitor`` unless it records series like a GradientMonitor."""
    if not hasattr(monitor, "series"):
        raise ValueError(f"monitor={_checks.describe(monitor)} is not allowed; it must be a GradientMonitor")
