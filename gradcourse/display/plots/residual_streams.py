"""Figures of a deep residual stack at initialization: how large the stream is after each block, and how
large the gradient that reaches it, one look per initialization scheme (notebook 16)."""

from __future__ import annotations

from matplotlib.ticker import MaxNLocator

from ...core import _checks
from ...lessons.normalization_free import SCHEMES
from .common import OKABE_ITO, RUN_MARKERS, as_runs, as_styles, closes_on_error, finish, positive, subplots

__all__ = ["plot_stream_at_init", "scheme_styles"]

_LINESTYLES = ("-", "-", "--", "-", ":")


def scheme_styles(labels, markevery=None):
    """``{label: {"color", "marker", "linestyle"}}`` for figure labels: a scheme of
    :data:`~gradcourse.lessons.normalization_free.SCHEMES` keeps its Okabe-Ito colour, marker and line
    style in every figure (SkipInit dashed and zero-γ BatchNorm dotted, as they coincide with Fixup's
    stream at initialization); any other label takes the next free ones. ``markevery``: an integer n puts
    a marker on every n-th point only (for long lines). Pass the result as ``styles=``."""
    labels = list(labels)
    if markevery is not None:
        _checks.integer("markevery", markevery, minimum=1)
    styles, others = {}, len(SCHEMES)
    for label in labels:
        i = SCHEMES.index(label) if label in SCHEMES else others
        others += label not in SCHEMES
        styles[label] = {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": RUN_MARKERS[i % len(RUN_MARKERS)],
                         "linestyle": _LINESTYLES[i] if i < len(_LINESTYLES) else "-"}
        if markevery is not None:
            styles[label]["markevery"] = markevery
    return styles


@closes_on_error
def plot_stream_at_init(second_moment, gradient, references=None, gradient_references=None, title=None, styles=None):
    """Two log-scale panels over the blocks l = 0 .. L of a residual stack at initialization: the mean
    square of the stream ``x_l`` (left) and the gradient norm ``||dLoss/dx_l||`` that reaches it (right).

    ``second_moment``, ``gradient``: a sequence or ``{label: sequence}`` of L + 1 values (block 0 is the
    input layer's output); values a log axis cannot show (0) are left out. ``references``,
    ``gradient_references``: optional ``{label: sequence}`` drawn as thin black lines (closed forms).
    ``styles``: ``{label: {line property: value}}``, by default :func:`scheme_styles`.
    """
    panels = [(as_runs(second_moment, "second_moment"), as_runs(references or {}, "references"),
               "mean square of the stream x_l (log scale)"),
              (as_runs(gradient, "gradient"), as_runs(gradient_references or {}, "gradient_references"),
               "gradient norm ||∂loss/∂x_l|| (log scale)")]
    styles = as_styles(styles) or scheme_styles([label for label in panels[0][0] if label is not None])
    fig, axes = subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    legend, dashes = {}, iter([(4, 2), (1, 2), (6, 2, 1, 2), (2, 1)] * 8)
    for ax, (runs, refs, ylabel) in zip(axes, panels):
        for label, seq in runs.items():
            line, = ax.plot(range(len(seq)), positive(seq), label=label,
                            **{"markersize": 4, "markevery": max(1, len(seq) // 12), **styles.get(label, {})})
            legend.setdefault(label, line)
        for label, seq in refs.items():
            legend[label], = ax.plot(range(len(seq)), positive(seq), color="black", linewidth=1, dashes=next(dashes),
                                     label=label)
        ax.set_yscale("log")
        ax.set_xlabel("residual block l (0 = input layer's output)")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
    named = {label: line for label, line in legend.items() if label is not None}
    if named:
        fig.legend(named.values(), named.keys(), loc="outside lower center", ncol=min(len(named), 4))
    return finish(fig, title)
