"""ipywidgets explorers built on :mod:`gradcourse.plots`.

They use only widgets that exist in ipywidgets 7.6 and 8 (IntSlider, FloatLogSlider,
Dropdown, HBox, VBox, interactive_output), so they render in JupyterLab, Binder and Colab.
"""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import display

from . import _checks
from .experiments import gradient_flow
from .models import ACTIVATIONS, INITS
from .plots import plot_gradient_flow, plot_log_lines
from .theory import derivative_bound, max_derivative, scalar_chain



def gradient_flow_figure(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """Build a fresh seeded :class:`~gradcourse.models.MLP`, measure ``||dL/dW_l||`` on ``(X, y)``
    and plot it per layer, next to the bound ``(max f')^(L - l)`` that the activation's
    derivatives alone put on the signal reaching layer l from the last hidden layer."""
    _checks.integer("depth", depth, minimum=1, maximum=200)
    norms = gradient_flow(X, y, depth, activation, init, init_scale, width, seed)
    bound = [norms[-1] * derivative_bound(activation, depth - l) if l < depth else norms[-1]
             for l in range(1, depth + 1)]
    title = f"{depth} layers, {activation}, init={init}, scale={init_scale:g}: first/last = {norms[0] / norms[-1]:.2e}"
    return plot_gradient_flow({"measured": norms}, title=title,
                              references={"last layer × (max f')^(L−l)": bound})


def gradient_flow_explorer(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """Sliders for depth and init scale, menus for activation and init; redraws the gradient flow.

    Each change builds a new seeded network and redraws the figure of
    :func:`gradient_flow_figure` in place (the output is cleared with ``wait=True``,
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

    def draw(depth, activation, init, init_scale):
        display(gradient_flow_figure(X, y, depth, activation, init, init_scale, width, seed))

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["depth"], controls["init_scale"]]),
                         widgets.HBox([controls["activation"], controls["init"]]), output])


def chain_figure(depth=10, weight=1.0, bias=0.0, activation="sigmoid"):
    """Plot ``|dy_L/dy_l|`` along the one-unit chain of :func:`~gradcourse.theory.scalar_chain`,
    next to the bound ``(max f' |w|)^(L - l)``."""
    chain = scalar_chain(depth, weight, bias, x0=1.0, activation=activation)
    gradients = [abs(g) for g in chain.gradients]
    bound = [(max_derivative(activation) * abs(weight)) ** (depth - l) for l in range(depth)]
    title = f"{activation}, w={weight:g}, b={bias:g}: |dy_L/dy_0| = {gradients[0]:.2e}"
    return plot_log_lines(range(depth), {"|dy_L/dy_l| (autograd)": gradients}, "l (the output y_L differentiated with respect to y_l)",
                          "gradient (log scale)", title=title, references={"(max f' |w|)^(L-l)": bound})


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

    def draw(depth, weight, bias, activation):
        display(chain_figure(depth, weight, bias, activation))

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["depth"], controls["activation"]]),
                         widgets.HBox([controls["weight"], controls["bias"]]), output])


# ---------------------------------------------------------------- training explorers (notebooks 07, 09, 10)

from .plots import plot_training_and_layers  # noqa: E402
from .runs import train_mlp  # noqa: E402
from .train import OPTIMIZERS  # noqa: E402

RESIDUAL_CHOICES = (("plain", False), ("residual", True), ("pre-activation", "pre"))
NORM_CHOICES = (("none", None), ("batch", "batch"), ("layer", "layer"))


def _final_accuracy(run):
    return f"train accuracy {run.history.train_accuracy[-1]:.2f}" if run.history.train_accuracy else "diverged"


def residual_figure(X, y, depth=50, residual=True, width=64, norm="batch", epochs=2, batch_size=128,
                    optimizer="adam", lr=1e-3, seed=0):
    """Train a seeded ReLU MLP with He init on ``(X, y)`` (plain, ``residual=True`` or
    ``residual="pre"``) and plot its training loss next to ``||dL/dW_l||`` per layer at the
    first step."""
    _checks.integer("depth", depth, minimum=2, maximum=100)
    run = train_mlp(X, y, depth=depth, residual=residual, width=width, norm=norm, activation="relu",
                    init="kaiming", epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed)
    label = dict((value, name) for name, value in RESIDUAL_CHOICES)[residual]
    return plot_training_and_layers({label: run.history}, {label: run.monitor.series("grad_norm")[0].tolist()},
                                    "||dL/dW_l|| at the first step",
                                    title=f"{depth} layers, {label}, norm={norm}: {_final_accuracy(run)}")


def residual_explorer(X, y, depth=50, residual=True, width=64, norm="batch", epochs=2, batch_size=128,
                      optimizer="adam", lr=1e-3, seed=0):
    """A depth slider and plain / residual / pre-activation buttons; each change trains a fresh
    seeded network and redraws :func:`residual_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.integer("depth", depth, minimum=2, maximum=60)
    if not isinstance(residual, (bool, str)) or residual not in dict(RESIDUAL_CHOICES).values():
        raise ValueError(f"residual={residual!r} is not allowed; choose one of: False, True, 'pre'")
    controls = {
        "depth": widgets.IntSlider(value=depth, min=2, max=60, description="depth", continuous_update=False),
        "residual": widgets.ToggleButtons(options=list(RESIDUAL_CHOICES), value=residual, description="blocks"),
    }

    def draw(depth, residual):
        display(residual_figure(X, y, depth, residual, width, norm, epochs, batch_size, optimizer, lr, seed))

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["depth"], controls["residual"]]), output])


def normalization_figure(X, y, norm="batch", depth=3, width=100, activation="sigmoid", init="normal",
                         init_scale=0.01, epochs=2, batch_size=60, lr=0.5, seed=0):
    """Train a seeded MLP (by default the scaled-down sigmoid network of Ioffe & Szegedy 2015)
    with SGD and plot its training loss next to ``||dL/dW_l||`` per layer at the first step."""
    _checks.integer("depth", depth, minimum=1, maximum=30)
    run = train_mlp(X, y, norm=norm, depth=depth, width=width, activation=activation, init=init,
                    init_scale=init_scale, epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=lr, seed=seed)
    label = f"norm={norm}"
    return plot_training_and_layers({label: run.history}, {label: run.monitor.series("grad_norm")[0].tolist()},
                                    "||dL/dW_l|| at the first step",
                                    title=f"{depth} {activation} layers, {label}: {_final_accuracy(run)}")


def normalization_explorer(X, y, norm="batch", depth=3, width=100, activation="sigmoid", init="normal",
                           init_scale=0.01, epochs=2, batch_size=60, lr=0.5, seed=0):
    """none / batch / layer buttons and a depth slider; each change trains a fresh seeded
    network and redraws :func:`normalization_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.choice("norm", norm, tuple(value for _, value in NORM_CHOICES))
    _checks.integer("depth", depth, minimum=1, maximum=10)
    controls = {
        "norm": widgets.ToggleButtons(options=list(NORM_CHOICES), value=norm, description="norm"),
        "depth": widgets.IntSlider(value=depth, min=1, max=10, description="depth", continuous_update=False),
    }

    def draw(norm, depth):
        display(normalization_figure(X, y, norm, depth, width, activation, init, init_scale, epochs, batch_size, lr, seed))

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([widgets.HBox([controls["norm"], controls["depth"]]), output])


def optimizer_figure(X, y, optimizer="adam", lr=1e-3, epochs=2, batch_size=64, seed=0, **model_options):
    """Train a seeded MLP (``model_options`` as for :class:`~gradcourse.models.MLP`) with one
    optimizer and learning rate; plot its training loss next to the mean update-to-weight
    ratio ``||dW_l|| / ||W_l||`` per layer, with the 1e-3 rule of thumb."""
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    run = train_mlp(X, y, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, **model_options)
    ratios = run.monitor.mean("update_ratio") if run.monitor.steps("update_ratio") else [float("nan")]
    return plot_training_and_layers({optimizer: run.history}, {optimizer: ratios}, "mean ||ΔW|| / ||W|| per step",
                                    hline=1e-3, title=f"{optimizer}, lr={lr:.3g}: {_final_accuracy(run)}")


def optimizer_explorer(X, y, optimizer="adam", lr=1e-3, epochs=2, batch_size=64, seed=0, **model_options):
    """Optimizer buttons and a log-scale learning-rate slider (1e-5 to 1); each change trains
    a fresh seeded network and redraws :func:`optimizer_figure`. Returns the widget."""
    _checks.features_and_labels(X, y)
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    _checks.number("lr", lr, minimum=1e-5, maximum=1.0)
    controls = {
        "optimizer": widgets.ToggleButtons(options=list(OPTIMIZERS), value=optimizer, description="optimizer"),
        "lr": widgets.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.25, description="learning rate",
                                     continuous_update=False, readout_format=".0e"),
    }

    def draw(optimizer, lr):
        display(optimizer_figure(X, y, optimizer, lr, epochs, batch_size, seed, **model_options))

    output = widgets.interactive_output(draw, controls)
    return widgets.VBox([controls["optimizer"], controls["lr"], output])
