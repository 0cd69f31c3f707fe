"""ipywidgets explorers: controls wired to the figures of :mod:`gradcourse.display.figures`.

Each control is declared once, by a spec (:class:`Integer`, :class:`Number`, :class:`LogNumber`,
:class:`Interval`, :class:`Menu`, :class:`Buttons`) that checks the starting value a learner passes
and builds the widget with the same range or options: a value the widget could not show (ipywidgets
would silently clamp it) raises ``ValueError``. The widgets exist in ipywidgets 7.7 and 8, so the
explorers render in JupyterLab, Binder and Colab (which ships 7.7.x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import ipywidgets as widgets
from IPython.display import display

from ..core import _checks
from . import figures
from .figures import NORM_CHOICES, RESIDUAL_CHOICES
from ..core.models import ACTIVATIONS, CELLS, INITS
from ..lessons.precision import LOW_PRECISION
from ..lessons.theory import RECURRENT_ACTIVATIONS
from ..core.train.optimizers import OPTIMIZERS

__all__ = ["Buttons", "Integer", "Interval", "LogNumber", "Menu", "Number", "activation_explorer", "build",
           "chain_explorer", "clipping_explorer", "explorer", "gradient_flow_explorer", "init_explorer",
           "layernorm_placement_explorer", "normalization_explorer", "optimizer_explorer", "precision_explorer",
           "recurrent_explorer", "residual_explorer", "timestep_gradient_explorer"]


# ---------------------------------------------------------------- control specs

@dataclass(frozen=True)
class Integer:
    """An integer from ``low`` to ``high`` (both included): an ``IntSlider`` labelled ``label``."""
    label: str
    low: int
    high: int

    def check(self, name, value):
        return _checks.integer(name, value, minimum=self.low, maximum=self.high)

    def widget(self, value):
        return widgets.IntSlider(value=value, min=self.low, max=self.high, description=self.label, continuous_update=False)


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
        return widgets.FloatSlider(value=value, min=self.low, max=self.high, step=self.step, description=self.label,
                                   continuous_update=False)


@dataclass(frozen=True)
class LogNumber(Number):
    """A number from ``low`` to ``high`` (both > 0) on a log scale: a ``FloatLogSlider`` of base 10
    whose exponent moves in steps of ``step``."""
    readout_format: str = ".3g"

    def widget(self, value):
        return widgets.FloatLogSlider(value=value, base=10, min=math.log10(self.low), max=math.log10(self.high),
                                      step=self.step, description=self.label, continuous_update=False,
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
                                        description=self.label, continuous_update=False)


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
        return widgets.Dropdown(options=list(self.options), value=value, description=self.label)


class Buttons(Menu):
    """One of ``options``, as :class:`Menu`, shown as ``ToggleButtons``."""
    def widget(self, value):
        return widgets.ToggleButtons(options=list(self.options), value=value, description=self.label)


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


_DEPTH = Integer("depth", 2, 50)
_ACTIVATION = Menu("activation", tuple(ACTIVATIONS))
_INIT = Menu("init", INITS)


# ---------------------------------------------------------------- networks at initialization (notebooks 00-05, 11)

def gradient_flow_explorer(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """Sliders for depth and init scale, menus for activation and init; redraws the gradient flow.

    Each change builds a new seeded network and redraws the figure of
    :func:`~gradcourse.display.figures.gradient_flow_figure` in place (the output is cleared with ``wait=True``,
    so there is no flicker, and the old figure is closed). Returns the widget.
    """
    _checks.features_and_labels(X, y)
    specs = {"depth": _DEPTH, "activation": _ACTIVATION, "init": _INIT,
             "init_scale": LogNumber("init scale", 0.1, 10, step=0.05)}
    controls = build(specs, depth=depth, activation=activation, init=init, init_scale=init_scale)
    return explorer(partial(figures.gradient_flow_figure, X, y, width=width, seed=seed), controls,
                    [["depth", "init_scale"], ["activation", "init"]])


def chain_explorer(depth=10, weight=1.0, bias=0.0, activation="sigmoid"):
    """Sliders for depth, weight w and bias b of the one-unit chain, a menu for the activation."""
    specs = {"depth": Integer("depth L", 1, 40), "weight": Number("weight w", -8, 8, step=0.1),
             "bias": Number("bias b", -4, 4, step=0.1), "activation": _ACTIVATION}
    controls = build(specs, depth=depth, weight=weight, bias=bias, activation=activation)
    return explorer(figures.chain_figure, controls, [["depth", "activation"], ["weight", "bias"]])


def recurrent_explorer(sigma_max=1.5, steps=60, activation="tanh"):
    """Sliders for the recurrent matrix's largest singular value and the number of steps."""
    specs = {"sigma_max": Number("σ_max(W)", 0.1, 6.0, step=0.05), "steps": Integer("steps T", 5, 200),
             "activation": Menu("activation", tuple(RECURRENT_ACTIVATIONS))}
    return explorer(figures.recurrent_figure, build(specs, sigma_max=sigma_max, steps=steps, activation=activation))


def init_explorer(X, y, depth=20, activation="tanh", init="default", width=256, seed=0):
    """Menus for the init scheme and the activation and a depth slider; redraws :func:`~gradcourse.display.figures.init_figure`."""
    _checks.features_and_labels(X, y)
    controls = build({"init": _INIT, "activation": _ACTIVATION, "depth": _DEPTH},
                     init=init, activation=activation, depth=depth)
    return explorer(partial(figures.init_figure, X, y, width=width, seed=seed), controls)


def activation_explorer(X, y, activation="relu", depth=20, init="kaiming", width=64, seed=0):
    """A menu for the activation, a range slider for the inputs z and menus for depth and init;
    redraws :func:`~gradcourse.display.figures.activation_figure`."""
    _checks.features_and_labels(X, y)
    specs = {"activation": _ACTIVATION, "z_range": Interval("z range", -10.0, 10.0, step=0.5), "depth": _DEPTH,
             "init": _INIT}
    controls = build(specs, activation=activation, z_range=(-4.0, 4.0), depth=depth, init=init)

    def figure(activation, z_range, depth, init):
        return figures.activation_figure(X, y, activation, z_range[0], z_range[1], depth, init, width, seed)

    return explorer(figure, controls, [["activation", "z_range"], ["depth", "init"]])


def precision_explorer(gradients, log2_scale=0, dtype="float16"):
    """A slider for the loss scale (as a power of 2) and a menu for the dtype; redraws :func:`~gradcourse.display.figures.precision_figure`."""
    if not isinstance(gradients, (list, tuple)) or not gradients:
        raise ValueError(f"gradients={_checks.describe(gradients)} is not allowed; it must be a non-empty list of tensors")
    specs = {"log2_scale": Integer("log2 scale", 0, 40), "dtype": Menu("dtype", tuple(LOW_PRECISION))}
    return explorer(partial(figures.precision_figure, gradients), build(specs, log2_scale=log2_scale, dtype=dtype))


# ---------------------------------------------------------------- clipping and recurrent networks (notebooks 06, 08)

def clipping_explorer(grad_norms, max_norm):
    """A log-scale slider for the clipping threshold ``max_norm`` over a recorded gradient-norm trace
    (e.g. ``History.grad_norm``, which holds the norms before clipping); redraws the trace,
    the histogram and the share of steps that norm clipping at that threshold would rescale.

    The slider spans the decades of the positive finite norms. The returned box's ``figure``
    attribute is the figure it drew last, so code can move the slider
    (``box.children[0].value = c``) and read what the learner would see."""
    norms = [float(v) for v in grad_norms]
    finite = [v for v in norms if math.isfinite(v) and v > 0]
    if not finite:
        raise ValueError("grad_norms holds no positive finite value; record a trace with fit first")
    low, high = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    controls = build({"max_norm": LogNumber("threshold c", 10 ** low, 10 ** high, step=0.05)}, max_norm=max_norm)
    return explorer(partial(figures.clipping_figure, norms), controls, ["max_norm"])


def timestep_gradient_explorer(length=50, cell="lstm", forget_bias=1.0, width=32, batch_size=256, seed=0):
    """A slider for the sequence length, a menu for the cell and a slider for the LSTM's forget
    bias; redraws the gradient reaching every time step of a fresh network (at initialization)."""
    specs = {"length": Integer("length T", 5, 200), "cell": Menu("cell", tuple(CELLS)),
             "forget_bias": Number("forget bias", -2, 4, step=0.5)}
    controls = build(specs, length=length, cell=cell, forget_bias=forget_bias)
    return explorer(partial(figures.timestep_gradient_figure, width=width, batch_size=batch_size, seed=seed), controls,
                    [["length", "cell"], "forget_bias"])


# ---------------------------------------------------------------- training explorers (notebooks 07, 09, 10, 13)

def residual_explorer(X, y, depth=50, residual=True, width=64, norm="batch", epochs=2, batch_size=128,
                      optimizer="adam", lr=1e-3, seed=0, activation="relu"):
    """A depth slider and plain / residual / pre-activation buttons; each change trains a fresh
    seeded network and redraws :func:`~gradcourse.display.figures.residual_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _ACTIVATION.check("activation", activation)
    controls = build({"depth": Integer("depth", 2, 60), "residual": Buttons("blocks", RESIDUAL_CHOICES)},
                     depth=depth, residual=residual)
    return explorer(partial(figures.residual_figure, X, y, width=width, norm=norm, epochs=epochs, batch_size=batch_size,
                            optimizer=optimizer, lr=lr, seed=seed, activation=activation), controls)


def normalization_explorer(X, y, norm="batch", depth=3, width=100, activation="sigmoid", init="normal",
                           init_scale=0.01, epochs=2, batch_size=60, lr=0.5, seed=0):
    """none / batch / layer buttons and a depth slider; each change trains a fresh seeded
    network and redraws :func:`~gradcourse.display.figures.normalization_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    controls = build({"norm": Buttons("norm", NORM_CHOICES), "depth": Integer("depth", 1, 10)}, norm=norm, depth=depth)
    return explorer(partial(figures.normalization_figure, X, y, width=width, activation=activation, init=init,
                            init_scale=init_scale, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed), controls)


def optimizer_explorer(X, y, optimizer="adam", lr=1e-3, epochs=2, batch_size=64, seed=0, **model_options):
    """Optimizer buttons and a log-scale learning-rate slider (1e-5 to 1); each change trains
    a fresh seeded network and redraws :func:`~gradcourse.display.figures.optimizer_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    specs = {"optimizer": Buttons("optimizer", OPTIMIZERS),
             "lr": LogNumber("learning rate", 1e-5, 1.0, step=0.25, readout_format=".0e")}
    return explorer(partial(figures.optimizer_figure, X, y, epochs=epochs, batch_size=batch_size, seed=seed, **model_options),
                    build(specs, optimizer=optimizer, lr=lr), ["optimizer", "lr"])


def layernorm_placement_explorer(X, y, depth=6, residual_scale=1.0, seed=0, **model_options):
    """A depth slider and a residual-scale slider; each change builds fresh seeded Post-LN and
    Pre-LN Transformers and redraws :func:`~gradcourse.display.figures.layernorm_placement_figure`.
    ``model_options`` go to :class:`~gradcourse.lessons.transformers.RowTransformer`. Returns the widget."""
    specs = {"depth": Integer("depth", 2, 24), "residual_scale": LogNumber("branch scale", 0.05, 1, step=0.05)}
    return explorer(partial(figures.layernorm_placement_figure, X, y, seed=seed, **model_options),
                    build(specs, depth=depth, residual_scale=residual_scale))
