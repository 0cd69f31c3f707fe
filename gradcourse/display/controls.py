"""The controls of the explorers, each declared once by a spec that both checks a starting value and
builds its ipywidget with the same range or options (:class:`Integer`, :class:`Number`,
:class:`LogNumber`, :class:`Interval`, :class:`Menu`, :class:`Buttons`), :func:`build`, which makes the
controls, and :func:`explorer`, which wires them to a figure function. A value the widget could not
show (ipywidgets would silently clamp it) raises ``ValueError``. The widgets exist in ipywidgets 7.7
and 8, so the explorers render in JupyterLab, Binder and Colab (which ships 7.7.x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
from IPython.display import display

from ..core import _checks

__all__ = ["Buttons", "Integer", "Interval", "LogNumber", "Menu", "Number", "build", "explorer"]

_LABEL = {"description_width": "initial"}   # a control's label in full ("branch scale", not "branch sc...")


@dataclass(frozen=True)
class Integer:
    """An integer from ``low`` to ``high`` (both included): an ``IntSlider`` labelled ``label``."""
    label: str
    low: int
    high: int

    def check(self, name, value):
        return _checks.integer(name, value, minimum=self.low, maximum=self.high)

    def widget(self, value):
        return widgets.IntSlider(value=value, min=self.low, max=self.high, description=self.label, style=_LABEL, continuous_update=False)


@dataclass(frozen=True)
class Number:
    """A finite number from ``low`` to ``high`` in steps of ``step``: a ``FloatSlider``."""
    label: str
    low: float
    high: float
    step: float

    def check(self, name, value):
        return _checks.number(name, value, minimum=self.low, maximum=self.high)

    def widget(self, value):
        return widgets.FloatSlider(value=value, min=self.low, max=self.high, step=self.step, description=self.label, style=_LABEL,
                                   continuous_update=False)


@dataclass(frozen=True)
class LogNumber(Number):
    """A number from ``low`` to ``high`` (both > 0) on a log scale: a ``FloatLogSlider`` of base 10
    whose exponent moves in steps of ``step``."""
    readout_format: str = ".3g"

    def widget(self, value):
        return widgets.FloatLogSlider(value=value, base=10, min=math.log10(self.low), max=math.log10(self.high),
                                      step=self.step, description=self.label, style=_LABEL, continuous_update=False,
                                      readout_format=self.readout_format)


@dataclass(frozen=True)
class Interval:
    """An interval ``(a, b)`` with ``low <= a < b <= high``: a ``FloatRangeSlider``."""
    label: str
    low: float
    high: float
    step: float

    def check(self, name, value):
        for end in _checks.interval(name, value):
            _checks.number(name, end, minimum=self.low, maximum=self.high)
        return tuple(float(end) for end in value)

    def widget(self, value):
        return widgets.FloatRangeSlider(value=list(value), min=self.low, max=self.high, step=self.step,
                                        description=self.label, style=_LABEL, continuous_update=False)


class _Allowed(tuple):
    """Allowed values, matched by ``in`` on value and on being a bool, so ``1`` is not taken for ``True``."""
    def __contains__(self, value):
        return any(option == value and isinstance(option, bool) == isinstance(value, bool) for option in self)


@dataclass(frozen=True)
class Menu:
    """One of ``options``: a tuple of values, or of ``(label, value)`` pairs. Shown as a ``Dropdown``."""
    label: str
    options: tuple

    @property
    def values(self):
        labelled = all(isinstance(option, tuple) and len(option) == 2 for option in self.options)
        return tuple(option[1] for option in self.options) if labelled else tuple(self.options)

    def check(self, name, value):
        return _checks.choice(name, value, _Allowed(self.values))

    def widget(self, value):
        return widgets.Dropdown(options=list(self.options), value=value, description=self.label, style=_LABEL)


class Buttons(Menu):
    """One of ``options``, as :class:`Menu`, shown as ``ToggleButtons``."""
    def widget(self, value):
        return widgets.ToggleButtons(options=list(self.options), value=value, description=self.label, style=_LABEL)


def build(specs, **values):
    """Check each starting value in ``values`` against its spec in ``specs`` (``{name: spec}``) and
    return the controls ``{name: widget}``; raises ``ValueError`` naming the first value refused."""
    if set(values) != set(specs):
        raise ValueError(f"values for {sorted(values)} are not allowed; give one for each of {list(specs)}")
    checked = {name: spec.check(name, values[name]) for name, spec in specs.items()}
    return {name: spec.widget(checked[name]) for name, spec in specs.items()}


def explorer(figure, controls, rows=None):
    """An explorer: ``controls`` (``{name: widget}``) above an output area that shows
    ``figure(**{name: widget.value})`` and redraws it whenever a control changes.

    ``ipywidgets.interactive_output`` clears the output with ``wait=True``, so a redraw does not
    flicker; every figure function closes its figure in pyplot, so old ones do not pile up.
    ``rows`` lays out the controls: a list whose entries are a list of names (one ``HBox``) or a
    single name (the control alone); by default all controls sit in one row. Returns a ``VBox``
    whose ``controls`` attribute is ``controls`` and whose ``figure`` attribute is the figure drawn
    last, so code can move a control (``box.controls["depth"].value = 5``) and read what a learner sees.
    """
    if not isinstance(controls, dict) or not controls:
        raise ValueError(f"controls={_checks.describe(controls)} is not allowed; it must be a non-empty dict {{name: widget}}")
    rows = [list(controls)] if rows is None else rows
    placed = [name for row in rows for name in ([row] if isinstance(row, str) else row)]
    if sorted(placed) != sorted(controls):
        raise ValueError(f"rows={rows!r} is not allowed; it must place each of {list(controls)} exactly once")
    boxes = [controls[row] if isinstance(row, str) else widgets.HBox([controls[name] for name in row]) for row in rows]
    box = widgets.VBox(boxes)
    box.controls = controls

    def draw(**values):
        box.figure = figure(**values)
        display(box.figure)

    box.children = (*boxes, widgets.interactive_output(draw, controls))
    return box
