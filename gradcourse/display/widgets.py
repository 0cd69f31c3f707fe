"""ipywidgets explorers: controls wired to the figures of :mod:`gradcourse.display.figures` and
:mod:`gradcourse.display.theory_figures`.

Each control is declared once, by a spec of :mod:`gradcourse.display.controls` (re-exported here:
:class:`Integer`, :class:`Number`, :class:`LogNumber`, :class:`Interval`, :class:`Menu`, :class:`Buttons`)
that checks the starting value a learner passes and builds the widget with the same range or options.
"""

from __future__ import annotations

import math
from functools import partial

from ..core import _checks
from . import figures, theory_figures
from .controls import Buttons, Integer, Interval, LogNumber, Menu, Number, build, explorer
from .figures import NORM_CHOICES, RESIDUAL_CHOICES
from .theory_figures import QK_NORM_CHOICES
from ..core.models import ACTIVATIONS, CELLS, INITS
from ..lessons.precision import LOW_PRECISION
from ..lessons.theory import RECURRENT_ACTIVATIONS
from ..core.train.optimizers import OPTIMIZERS

__all__ = ["activation_explorer", "attention_logit_explorer", "build", "Buttons", "chain_explorer",
           "clipping_explorer", "edge_of_chaos_explorer", "explorer", "gradient_flow_explorer", "init_explorer",
           "Integer", "Interval", "layernorm_placement_explorer", "LogNumber", "Menu", "normalization_explorer",
           "Number", "optimizer_explorer", "precision_explorer", "propagation_explorer", "recurrent_explorer",
           "residual_explorer", "residual_stream_explorer", "timestep_gradient_explorer"]


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


def propagation_explorer(X, y, depth=10, activation="sigmoid", init="default", width=128, seed=0):
    """A depth slider and menus for the activation and the init; each change builds a fresh seeded plain MLP
    and redraws :func:`~gradcourse.display.theory_figures.propagation_figure` (forward differences beside the
    backward gradients, per layer). Returns the widget."""
    _checks.features_and_labels(X, y)
    controls = build({"depth": _DEPTH, "activation": _ACTIVATION, "init": _INIT},
                     depth=depth, activation=activation, init=init)
    return explorer(partial(theory_figures.propagation_figure, X, y, width=width, seed=seed), controls,
                    ["depth", ["activation", "init"]])


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


def residual_stream_explorer(X, y, depth=32, alpha=1.0, norm=None, width=64, seed=0):
    """A depth slider, a log-scale slider for the branch multiplier alpha and none / BatchNorm buttons; each
    change builds a fresh seeded residual MLP and redraws
    :func:`~gradcourse.display.theory_figures.residual_stream_figure` (the stream and the gradient per block at
    initialization). Returns the widget."""
    _checks.features_and_labels(X, y)
    specs = {"depth": Integer("blocks", 2, 100), "alpha": LogNumber("α", 0.01, 1, step=0.05),
             "norm": Buttons("norm", (("none", None), ("BatchNorm", "batch")))}
    return explorer(partial(theory_figures.residual_stream_figure, X, y, width=width, seed=seed),
                    build(specs, depth=depth, alpha=alpha, norm=norm), [["depth", "alpha"], "norm"])


def attention_logit_explorer(X, y, lr=0.1, qk_norm="both", epochs=1, batch_size=64, seed=0, **model_options):
    """A log-scale learning-rate slider and QK-norm buttons (without / with / both); each change trains fresh
    seeded Transformers and redraws :func:`~gradcourse.display.theory_figures.attention_logit_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    specs = {"lr": LogNumber("learning rate", 1e-3, 1.0, step=0.25, readout_format=".0e"),
             "qk_norm": Buttons("QK-norm", QK_NORM_CHOICES)}
    return explorer(partial(theory_figures.attention_logit_figure, X, y, epochs=epochs, batch_size=batch_size, seed=seed,
                            **model_options), build(specs, lr=lr, qk_norm=qk_norm), ["lr", "qk_norm"])


def edge_of_chaos_explorer(sigma_w=1.0, sigma_b=0.2, depth=50, width=500, seed=0):
    """Sliders for the weight and bias scales and the depth; each change draws a fresh random tanh network and
    redraws :func:`~gradcourse.display.theory_figures.edge_of_chaos_figure` (correlations and gradients layer by layer
    against the mean field, chi_1 and the depth scales in the title). Returns the widget."""
    specs = {"sigma_w": Number("σ_w", 0.5, 3.0, step=0.01), "sigma_b": Number("σ_b", 0.0, 0.7, step=0.01),
             "depth": Integer("depth", 5, 100)}
    return explorer(partial(theory_figures.edge_of_chaos_figure, width=width, seed=seed),
                    build(specs, sigma_w=sigma_w, sigma_b=sigma_b, depth=depth), [["sigma_w", "sigma_b"], "depth"])
