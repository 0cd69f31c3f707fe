"""What every course figure shares: argument checks for runs, histories and styles, the loss-per-step
panel and the cut-off of a run that diverged, :func:`subplots`, which makes a :class:`~gradcourse.display.plots.alt_text.CourseFigure`,
:func:`finish`, which lays a figure out and closes it in pyplot, and :func:`closes_on_error`, which draws
a figure function's figure in the course's style (:data:`~gradcourse.display.plots.style.COURSE_RC`) and
closes it when drawing fails.
"""

from __future__ import annotations

import functools
import math

import matplotlib.pyplot as plt

from ...core import _checks
from .alt_text import CourseFigure
from .style import COURSE_RC, OKABE_ITO, RUN_MARKERS, label_log_axes, series_styles

__all__ = ["OKABE_ITO", "RUN_MARKERS", "as_histories", "as_runs", "as_styles", "clip_diverged", "closes_on_error", "finish", "plot_step_losses",
           "positive", "ratio", "require_monitor", "subplots"]


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
    """Decorate a figure function: it draws under :data:`~gradcourse.display.plots.style.COURSE_RC` (fonts,
    colours), and a call that raises leaves no figure open in pyplot (each would otherwise show up, half
    drawn, under a later cell)."""
    @functools.wraps(plot)
    def closing(*args, **kwargs):
        before = set(plt.get_fignums())
        try:
            with plt.rc_context(COURSE_RC):
                return plot(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise
    return closing


def ratio(numerator, denominator):
    """``numerator / denominator`` for a figure's title, NaN (printed "nan") where the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def subplots(*args, **subplot_options):
    """``plt.subplots`` making a :class:`~gradcourse.display.plots.alt_text.CourseFigure`, which a notebook
    shows with its text alternative."""
    return plt.subplots(*args, FigureClass=CourseFigure, **subplot_options)


def finish(fig, suptitle=None):
    """Title, labelled ticks on short log axes, tight layout (unless the figure lays itself out), and
    close in pyplot so the figure shows once, as its cell's value."""
    if suptitle:
        fig.suptitle(suptitle)
    label_log_axes(fig)
    for ax in fig.axes:     # ticks are made when drawn, after the figure function's rc settings are gone
        ax.tick_params(which="both", labelsize=COURSE_RC["xtick.labelsize"])
    if fig.get_layout_engine() is None:
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
    """The training loss per step of each run on ``ax`` (``values`` applied to it), in the run's look
    (:func:`~gradcourse.display.plots.style.series_styles`, ``styles`` as in :func:`as_styles` over it), a
    run that diverged marked with an ``x`` where it stopped; returns ``{label: look}`` (``color``, ``marker``,
    ``linestyle``)."""
    looks = series_styles(runs, as_styles(styles), points={label: len(h.loss) for label, h in runs.items()})
    for label, history in runs.items():
        ax.plot(range(1, len(history.loss) + 1), values(history.loss),
                **{"label": label, "linewidth": linewidth, **looks[label]})
        if history.diverged:
            ax.plot([history.stop_step], [history.loss[-1] if history.loss else 1.0], "x",
                    color=looks[label]["color"], markersize=10)
    ax.set_xlabel("step")
    return looks


def clip_diverged(ax, runs, looks, factor=100.0):
    """Keep the runs that trained in view on a log loss axis: a run that diverged, or whose largest loss
    is over ``factor`` times any other run's, is cut off a little above the others' range (a third of
    their decades again, room for its label), with a ``^`` and its label where it leaves the axis."""
    peaks = {label: max((v for v in h.loss if math.isfinite(v)), default=math.inf) for label, h in runs.items()}
    outliers = {label for label, h in runs.items()
                if h.diverged or peaks[label] > factor * min(peaks[o] for o in runs if o != label)} if len(runs) > 1 else set()
    kept = [v for label, h in runs.items() if label not in outliers for v in h.loss if math.isfinite(v) and v > 0]
    if not outliers or not kept or all(peaks[label] <= 2 * max(kept) for label in outliers):
        return
    top = max(kept) * max(2.0, (max(kept) / min(kept)) ** 0.35)
    ax.set_ylim(min(kept) / 1.5, top)
    for k, label in enumerate(sorted(outliers, key=list(runs).index)):
        loss = runs[label].loss
        step = next((i for i, v in enumerate(loss, 1) if not math.isfinite(v) or v > top), None)
        if step is None:
            continue
        ax.plot([step], [top], marker="^", markersize=9, color=looks[label]["color"], clip_on=False,
                linestyle="none")
        left, right = ax.get_xlim()
        side = 1 if step < (left + right) / 2 else -1         # the label runs towards the middle
        ax.annotate(f"{label}: off the scale from step {step}, up to {peaks[label]:.0e}", (step, top),
                    xytext=(10 * side, -16 - 16 * k), textcoords="offset points", va="top",
                    ha="left" if side > 0 else "right", color="black",
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.85))


def require_monitor(monitor):
    """Raise a ValueError naming ``monitor`` unless it records series like a GradientMonitor."""
    if not hasattr(monitor, "series"):
        raise ValueError(f"monitor={_checks.describe(monitor)} is not allowed; it must be a GradientMonitor")
