"""A text alternative for every course figure: :class:`CourseFigure`, a matplotlib ``Figure`` that a
notebook shows as ``<img src="data:image/png;base64,..." alt="...">`` (text/html, which JupyterLab, Colab
and myst-nb's HTML pages prefer to the image/png also sent), with the alt text :func:`describe_figure`
writes from the figure itself: its title, each panel's title, what is drawn against what, the series in
its legend, the colour scale.
"""

from __future__ import annotations

import base64
import html
import io
import re

from matplotlib.figure import Figure

__all__ = ["CourseFigure", "describe_figure"]

_COMMANDS = {"leq": "≤", "geq": "≥", "times": "×", "cdot": "·", "infty": "∞", "partial": "∂", "sqrt": "√",
             "mathcal": "", "mathrm": "", "left": "", "right": "", "lVert": "‖", "rVert": "‖", "|": "‖"}
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eta": "η", "lambda": "λ",
          "mu": "μ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "xi": "ξ"}


def _plain(text):
    """``text`` with matplotlib's ``$...$`` math written out as plain characters, one line."""
    def math(match):
        inner = re.sub(r"\\([A-Za-z]+|\|)", lambda m: _GREEK.get(m.group(1), _COMMANDS.get(m.group(1), m.group(1))),
                       match.group(1))
        return re.sub(r"[{}]|\\[,;! ]", "", inner)
    text = re.sub(r"\$([^$]*)\$", math, str(text))
    return " ".join(text.split())


def _series(ax, fig):
    legend = ax.get_legend()
    if legend is not None:
        return [_plain(t.get_text()) for t in legend.get_texts() if t.get_text().strip()]
    return [_plain(label) for label in ax.get_legend_handles_labels()[1] if not label.startswith("_")]


def _bars(ax):
    """Each unlabelled bar's category (its tick label) and value, as "name value"."""
    found = []
    for container in ax.containers:
        if not hasattr(container, "patches") or container.get_label() and not container.get_label().startswith("_"):
            continue
        horizontal = getattr(container, "orientation", "vertical") == "horizontal"
        axis = ax.yaxis if horizontal else ax.xaxis
        names = {round(float(tick), 6): _plain(label.get_text())
                 for tick, label in zip(axis.get_ticklocs(), axis.get_ticklabels())}
        for bar in container.patches:
            where = bar.get_y() + bar.get_height() / 2 if horizontal else bar.get_x() + bar.get_width() / 2
            value = bar.get_width() if horizontal else bar.get_height()
            found.append(f"{names.get(round(where, 6), '')} {value:.3g}".strip())
    return found


def _panel(ax, fig):
    """One sentence on one axes: its title, y against x (with a log scale named), series, images."""
    xlabel, ylabel = _plain(ax.get_xlabel()), _plain(ax.get_ylabel())
    for label, scale in ((xlabel, ax.get_xscale()), (ylabel, ax.get_yscale())):
        if scale == "log" and "log" not in label:
            if label is ylabel:
                ylabel = f"{ylabel} (log scale)" if ylabel else "log scale"
            else:
                xlabel = f"{xlabel} (log scale)" if xlabel else "log scale"
    title = _plain(ax.get_title() or ax.get_title("left") or ax.get_title("right"))
    drawn = (f"{ylabel} against {xlabel}" if ylabel and xlabel else f"y axis {ylabel}" if ylabel
             else f"x axis {xlabel}" if xlabel else "")
    parts = [part for part in (title, drawn) if part]
    text = ": ".join(parts) if parts else "a plot"
    series = _series(ax, fig)
    if series:
        text += f"; {len(series)} series: " + "; ".join(series)
    bars = _bars(ax)
    if bars:
        text += "; bars: " + "; ".join(bars)
    if ax.images or ax.collections and not ax.lines and not series:
        text += " (drawn as a colour map)"
    return text


def describe_figure(fig):
    """A text alternative for ``fig``: its title, then one sentence per panel (title; y-label against
    x-label, log scales named; the legend's entries; colour maps), then the figure-wide legend and the
    colour bars' labels. ``fig.alt_text``, where set, is returned instead."""
    given = getattr(fig, "alt_text", None)
    if given:
        return str(given)
    colorbars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison and ax not in colorbars]
    suptitle = getattr(fig, "_suptitle", None)
    sentences = [f"Figure: {_plain(suptitle.get_text())}." if suptitle and suptitle.get_text() else "Figure."]
    for k, ax in enumerate(panels, 1):
        where = f"Panel {k} of {len(panels)}" if len(panels) > 1 else "The plot"
        sentences.append(f"{where}: {_panel(ax, fig)}.")
    for legend in fig.legends:
        sentences.append("Legend: " + "; ".join(_plain(t.get_text()) for t in legend.get_texts()) + ".")
    for ax in colorbars:
        label = _plain(ax.get_ylabel() or ax.get_xlabel())
        if label:
            sentences.append(f"Colour scale: {label}.")
    return " ".join(sentences)


def _png_of_the_bundle(fig):
    """IPython's image/png printer for a :class:`CourseFigure`: None, so that IPython keeps the PNG of the
    figure's own bundle (:meth:`CourseFigure._repr_mimebundle_`) rather than render the figure again, as the
    printer the inline backend registers for every ``Figure`` would."""
    return None


class CourseFigure(Figure):
    """A matplotlib ``Figure`` (every attribute and method of one) that a notebook shows with a text
    alternative: its display bundle holds the PNG twice, as image/png and as text/html, an ``<img>`` whose
    ``alt`` is :func:`describe_figure` (screen readers announce it; JupyterLab, Colab and myst-nb's HTML
    pages show text/html before image/png), rendered once. Set ``fig.alt_text`` to write the description
    by hand."""

    alt_text = None

    def _png(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight", facecolor=self.get_facecolor(),
                     edgecolor=self.get_edgecolor(), dpi=self.dpi)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def _html(self, png):
        alt = html.escape(describe_figure(self), quote=True)
        return f'<img src="data:image/png;base64,{png}" alt="{alt}" />'

    def _repr_html_(self):
        return self._html(self._png())

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            from IPython import get_ipython
            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None and "image/png" in shell.display_formatter.formatters:
            shell.display_formatter.formatters["image/png"].for_type(CourseFigure, _png_of_the_bundle)
        png = self._png()
        bundle = {"text/html": self._html(png), "image/png": png}
        return {kind: data for kind, data in bundle.items()
                if (not include or kind in include) and (not exclude or kind not in exclude)}
