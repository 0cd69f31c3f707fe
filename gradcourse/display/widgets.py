"""ipywidgets explorers: controls wired to the figures of :mod:`gradcourse.display.figures`.

They use only widgets that exist in ipywidgets 7.7 and 8 (IntSlider, FloatSlider, FloatLogSlider,
FloatRangeSlider, Dropdown, ToggleButtons, HBox, VBox, interactive_output), so they render in
JupyterLab, Binder and Colab (which ships ipywidgets 7.7.x); tests/course/test_colab_versions.py runs
their tests under Colab's ipywidgets and IPython.
"""

from __future__ import annotations

import math
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


def explorer(figure, controls, rows=None):
    """An explorer: ``controls`` (``{name: widget}``) above an output area that shows
    ``figure(**{name: widget.value})`` and redraws it whenever a control changes.

    ``ipywidgets.interactive_output`` clears the output with ``wait=True``, so a redraw does not
    flicker; every figure function closes its figure in pyplot, so old ones do not pile up.
    ``rows`` lays out the controls: a list whose entries are a list of names (one ``HBox``) or a
    single name (the control alone); by default all controls sit in one row. Returns a ``VBox``.
    """
    if not isinstance(controls, dict) or not controls:
        raise ValueError(f"controls={_checks.describe(controls)} is not allowed; it must be a non-empty dict {{name: widget}}")
    rows = [list(controls)] if rows is None else rows
    placed = [name for row in rows for name in ([row] if isinstance(row, str) else row)]
    if sorted(placed) != sorted(controls):
        raise ValueError(f"rows={rows!r} is not allowed; it must place each of {list(controls)} exactly once")

    def draw(**values):
        display(figure(**values))

    output = widgets.interactive_output(draw, controls)
    boxes = [controls[row] if isinstance(row, str) else widgets.HBox([controls[name] for name in row]) for row in rows]
    return widgets.VBox([*boxes, output])


def gradient_flow_explorer(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """Sliders for depth and init scale, menus for activation and init; redraws the gradient flow.

    Each change builds a new seeded network and redraws the figure of
    :func:`~gradcourse.display.figures.gradient_flow_figure` in place (the output is cleared with ``wait=True``,
    so there is no flicker, and the old figure is closed). Returns the widget.
    """
    _checks.features_and_labels(X, y)
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    _checks.choice("init", init, INITS)
    # Within the sliders' ranges: ipywidgets would silently clamp a value outside them.
    _checks.integer("depth", depth, minimum=2, maximum=50)
    _checks.number("init_scale", init_scale, minimum=0.1, maximum=10)
    controls = {
        "depth": widgets.IntSlider(value=depth, min=2, max=50, description="depth", continuous_update=False),
        "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
        "init": widgets.Dropdown(options=list(INITS), value=init, description="init"),
        "init_scale": widgets.FloatLogSlider(value=init_scale, base=10, min=-1, max=1, step=0.05,
                                             description="init scale", continuous_update=False),
    }

    return explorer(partial(figures.gradient_flow_figure, X, y, width=width, seed=seed), controls,
                    [["depth", "init_scale"], ["activation", "init"]])


def chain_explorer(depth=10, weight=1.0, bias=0.0, activation="sigmoid"):
    """Sliders for depth, weight w and bias b of the one-unit chain, a menu for the activation."""
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    # Within the sliders' ranges: ipywidgets would silently clamp a value outside them.
    _checks.integer("depth", depth, minimum=1, maximum=40)
    _checks.number("weight", weight, minimum=-8, maximum=8)
    _checks.number("bias", bias, minimum=-4, maximum=4)
    controls = {
        "depth": widgets.IntSlider(value=depth, min=1, max=40, description="depth L", continuous_update=False),
        "weight": widgets.FloatSlider(value=weight, min=-8.0, max=8.0, step=0.1, description="weight w",
                                      continuous_update=False),
        "bias": widgets.FloatSlider(value=bias, min=-4.0, max=4.0, step=0.1, description="bias b",
                                    continuous_update=False),
        "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
    }

    return explorer(figures.chain_figure, controls, [["depth", "activation"], ["weight", "bias"]])


def recurrent_explorer(sigma_max=1.5, steps=60, activation="tanh"):
    """Sliders for the recurrent matrix's largest singular value and the number of steps."""
    _checks.number("sigma_max", sigma_max, minimum=0.1, maximum=6.0)
    _checks.integer("steps", steps, minimum=5, maximum=200)
    _checks.choice("activation", activation, tuple(RECURRENT_ACTIVATIONS))
    controls = {
        "sigma_max": widgets.FloatSlider(value=sigma_max, min=0.1, max=6.0, step=0.05, description="σ_max(W)",
                                         continuous_update=False),
        "steps": widgets.IntSlider(value=steps, min=5, max=200, description="steps T", continuous_update=False),
        "activation": widgets.Dropdown(options=list(RECURRENT_ACTIVATIONS), value=activation, description="activation"),
    }

    return explorer(figures.recurrent_figure, controls)


def init_explorer(X, y, depth=20, activation="tanh", init="default", width=256, seed=0):
    """Menus for the init scheme and the activation and a depth slider; redraws :func:`~gradcourse.display.figures.init_figure`."""
    _checks.features_and_labels(X, y)
    _checks.integer("depth", depth, minimum=2, maximum=50)
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    _checks.choice("init", init, INITS)
    controls = {
        "init": widgets.Dropdown(options=list(INITS), value=init, description="init"),
        "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
        "depth": widgets.IntSlider(value=depth, min=2, max=50, description="depth", continuous_update=False),
    }

    return explorer(partial(figures.init_figure, X, y, width=width, seed=seed), controls)


def activation_explorer(X, y, activation="relu", depth=20, init="kaiming", width=64, seed=0):
    """A menu for the activation, a range slider for the inputs z and menus for depth and init;
    redraws :func:`~gradcourse.display.figures.activation_figure`."""
    _checks.features_and_labels(X, y)
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    _checks.integer("depth", depth, minimum=2, maximum=50)
    _checks.choice("init", init, INITS)
    controls = {
        "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
        "z_range": widgets.FloatRangeSlider(value=[-4.0, 4.0], min=-10.0, max=10.0, step=0.5, description="z range",
                                            continuous_update=False),
        "depth": widgets.IntSlider(value=depth, min=2, max=50, description="depth", continuous_update=False),
        "init": widgets.Dropdown(options=list(INITS), value=init, description="init"),
    }

    def figure(activation, z_range, depth, init):
        return figures.activation_figure(X, y, activation, z_range[0], z_range[1], depth, init, width, seed)

    return explorer(figure, controls, [["activation", "z_range"], ["depth", "init"]])


def precision_explorer(gradients, log2_scale=0, dtype="float16"):
    """A slider for the loss scale (as a power of 2) and a menu for the dtype; redraws :func:`~gradcourse.display.figures.precision_figure`."""
    if not isinstance(gradients, (list, tuple)) or not gradients:
        raise ValueError(f"gradients={_checks.describe(gradients)} is not allowed; it must be a non-empty list of tensors")
    _checks.integer("log2_scale", log2_scale, minimum=0, maximum=40)
    _checks.choice("dtype", dtype, tuple(LOW_PRECISION))
    controls = {
        "log2_scale": widgets.IntSlider(value=log2_scale, min=0, max=40, description="log2 scale", continuous_update=False),
        "dtype": widgets.Dropdown(options=list(LOW_PRECISION), value=dtype, description="dtype"),
    }

    return explorer(partial(figures.precision_figure, gradients), controls)


# ---------------------------------------------------------------- clipping and recurrent networks (notebooks 06, 08)

def clipping_explorer(grad_norms, max_norm):
    """A log-scale slider for the clipping threshold ``max_norm`` over a recorded gradient-norm trace
    (e.g. ``History.grad_norm``, which holds the norms before clipping); redraws the trace,
    the histogram and the share of steps that norm clipping at that threshold would rescale.

    The returned box's ``figure`` attribute is the figure it drew last, so code can move the
    slider (``box.children[0].value = c``) and read what the learner would see."""
    norms = [float(v) for v in grad_norms]
    finite = [v for v in norms if math.isfinite(v) and v > 0]
    if not finite:
        raise ValueError("grad_norms holds no positive finite value; record a trace with fit first")
    low, high = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    # Within the slider's range: ipywidgets would silently clamp a value outside it.
    _checks.number("max_norm", max_norm, minimum=10 ** low, maximum=10 ** high)
    slider = widgets.FloatLogSlider(value=max_norm, base=10, min=low, max=high, step=0.05,
                                    description="threshold c", continuous_update=False)

    box = widgets.VBox([slider])

    def draw(max_norm):
        box.figure = figures.clipping_figure(norms, max_norm)
        display(box.figure)

    box.children = (slider, widgets.interactive_output(draw, {"max_norm": slider}))
    return box


def timestep_gradient_explorer(length=50, cell="lstm", forget_bias=1.0, hidden=32, batch=256, seed=0):
    """A slider for the sequence length, a menu for the cell and a slider for the LSTM's forget
    bias; redraws the gradient reaching every time step of a fresh network (at initialization)."""
    _checks.choice("cell", cell, tuple(CELLS))
    # Within the sliders' ranges: ipywidgets would silently clamp a value outside them.
    _checks.integer("length", length, minimum=5, maximum=200)
    _checks.number("forget_bias", forget_bias, minimum=-2, maximum=4)
    controls = {
        "length": widgets.IntSlider(value=length, min=5, max=200, description="length T",
                                    continuous_update=False),
        "cell": widgets.Dropdown(options=list(CELLS), value=cell, description="cell"),
        "forget_bias": widgets.FloatSlider(value=forget_bias, min=-2.0, max=4.0, step=0.5,
                                           description="forget bias", continuous_update=False),
    }

    return explorer(partial(figures.timestep_gradient_figure, hidden=hidden, batch=batch, seed=seed), controls,
                    [["length", "cell"], "forget_bias"])


# ---------------------------------------------------------------- training explorers (notebooks 07, 09, 10)


def residual_explorer(X, y, depth=50, residual=True, width=64, norm="batch", epochs=2, batch_size=128,
                      optimizer="adam", lr=1e-3, seed=0, activation="relu"):
    """A depth slider and plain / residual / pre-activation buttons; each change trains a fresh
    seeded network and redraws :func:`~gradcourse.display.figures.residual_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.integer("depth", depth, minimum=2, maximum=60)
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    if not isinstance(residual, (bool, str)) or residual not in dict(RESIDUAL_CHOICES).values():
        raise ValueError(f"residual={residual!r} is not allowed; choose one of: False, True, 'pre'")
    controls = {
        "depth": widgets.IntSlider(value=depth, min=2, max=60, description="depth", continuous_update=False),
        "residual": widgets.ToggleButtons(options=list(RESIDUAL_CHOICES), value=residual, description="blocks"),
    }

    return explorer(partial(figures.residual_figure, X, y, width=width, norm=norm, epochs=epochs, batch_size=batch_size,
                            optimizer=optimizer, lr=lr, seed=seed, activation=activation), controls)


def normalization_explorer(X, y, norm="batch", depth=3, width=100, activation="sigmoid", init="normal",
                           init_scale=0.01, epochs=2, batch_size=60, lr=0.5, seed=0):
    """none / batch / layer buttons and a depth slider; each change trains a fresh seeded
    network and redraws :func:`~gradcourse.display.figures.normalization_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.choice("norm", norm, tuple(value for _, value in NORM_CHOICES))
    _checks.integer("depth", depth, minimum=1, maximum=10)
    controls = {
        "norm": widgets.ToggleButtons(options=list(NORM_CHOICES), value=norm, description="norm"),
        "depth": widgets.IntSlider(value=depth, min=1, max=10, description="depth", continuous_update=False),
    }

    return explorer(partial(figures.normalization_figure, X, y, width=width, activation=activation, init=init,
                            init_scale=init_scale, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed), controls)


def optimizer_explorer(X, y, optimizer="adam", lr=1e-3, epochs=2, batch_size=64, seed=0, **model_options):
    """Optimizer buttons and a log-scale learning-rate slider (1e-5 to 1); each change trains
    a fresh seeded network and redraws :func:`~gradcourse.display.figures.optimizer_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    _checks.number("lr", lr, minimum=1e-5, maximum=1.0)
    controls = {
        "optimizer": widgets.ToggleButtons(options=list(OPTIMIZERS), value=optimizer, description="optimizer"),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.25, description="learning rate",
                                     continuous_update=False, readout_format=".0e"),
    }

    return explorer(partial(figures.optimizer_figure, X, y, epochs=epochs, batch_size=batch_size, seed=seed, **model_options),
                    controls, ["optimizer", "lr"])


def layernorm_placement_explorer(X, y, depth=6, residual_scale=1.0, seed=0, **model_options):
    """A depth slider and a residual-scale slider; each change builds fresh seeded Post-LN and
    Pre-LN Transformers and redraws :func:`~gradcourse.display.figures.layernorm_placement_figure`.
    ``model_options`` go to :class:`~gradcourse.lessons.transformers.RowTransformer`. Returns the widget."""
    _checks.integer("depth", depth, minimum=2, maximum=24)
    _checks.number("residual_scale", residual_scale, minimum=0.05, maximum=1)
    controls = {
        "depth": widgets.IntSlider(value=depth, min=2, max=24, description="depth", continuous_update=False),
        "residual_scale": widgets.FloatLogSlider(value=residual_scale, base=10, min=math.log10(0.05), max=0, step=0.05,
                                                 description="branch scale", continuous_update=False),
    }
    return explorer(partial(figures.layernorm_placement_figure, X, y, seed=seed, **model_options), controls)
