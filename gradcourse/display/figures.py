"""Figures of the lessons' experiments: each function computes what it shows (runs an experiment,
evaluates an activation) from plain arguments and draws it with :mod:`gradcourse.display.plots`, which
only draws numbers it is given. The explorers of :mod:`gradcourse.display.widgets` redraw one of these
with their controls' values; every function also works, and is tested, without a widget.

Each returns a matplotlib figure already closed in pyplot, so old figures do not pile up.
"""

from __future__ import annotations

import math
import warnings

import torch
from matplotlib.ticker import FixedLocator, NullLocator

from ..core import _checks
from ..lessons.at_init import gradient_norms, layer_statistics, std_per_layer
from ..core.data import adding_problem
from ..core.models import ACTIVATIONS, SequenceRegressor
from .plots import (plot_activation_and_flow, plot_activation_curves, plot_gradient_flow, plot_gradient_norms,
                    plot_log_lines, plot_per_layer, plot_per_layer_shares, plot_timestep_gradients,
                    plot_training_and_layers, plot_two_per_layer)
from .plots.common import ratio
from ..lessons.precision import flushed_and_overflowed
from ..core.runtime import set_seed
from ..lessons.sequences import random_recurrence, timestep_gradient_norms
from ..lessons.theory import (activation_derivative, derivative_bound, max_derivative, power_or_inf,
                              recurrent_derivative_bound, recurrent_jacobian_norms, scalar_chain)
from ..core.train.optimizers import OPTIMIZERS
from ..lessons.training_runs import train_mlp
from ..lessons.transformers import block_gradient_norms, seeded_transformer

__all__ = ["activation_curves_figure", "activation_figure", "BEYOND_FLOAT64", "chain_figure", "clipping_figure",
           "gradient_flow_figure", "init_figure", "layernorm_placement_figure", "NORM_CHOICES",
           "normalization_figure", "optimizer_figure", "precision_figure", "recurrent_figure", "RESIDUAL_CHOICES",
           "residual_figure", "timestep_gradient_figure"]


def gradient_flow_figure(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """Build a fresh seeded :class:`~gradcourse.core.models.MLP`, measure ``||dL/dW_l||`` on ``(X, y)``
    and plot it per layer, next to the bound ``(max f')^(L - l)`` that the activation's
    derivatives alone put on the signal reaching layer l from the last hidden layer."""
    _checks.integer("depth", depth, minimum=1, maximum=200)
    norms = gradient_norms(X, y, depth=depth, activation=activation, init=init, init_scale=init_scale,
                           width=width, seed=seed)
    bound = [norms[-1] * derivative_bound(activation, depth - l) if l < depth else norms[-1]
             for l in range(1, depth + 1)]
    title = f"{depth} layers, {activation}, init={init}, scale={init_scale:g}: first/last = {ratio(norms[0], norms[-1]):.2e}"
    return plot_gradient_flow({"measured": norms}, title=title,
                              references={"last layer × (max f')^(L−l)": bound})


BEYOND_FLOAT64 = "values beyond float64's range (1.8e308) are not drawn"
"""The line a figure's title gains when some of its values overflowed float64 (inf, or NaN where an
overflowed forward pass meets a zero derivative): the log axis leaves them out."""


def _with_overflow_note(title, *sequences):
    """``title``, plus a second line :data:`BEYOND_FLOAT64` if any value of ``sequences`` is inf or NaN."""
    if any(not math.isfinite(v) for seq in sequences for v in seq):
        return f"{title}\n({BEYOND_FLOAT64})"
    return title


def _log_lines_near_overflow(x, values, xlabel, ylabel, title, references):
    """:func:`~gradcourse.display.plots.plot_log_lines`, with the y-axis drawn here when the values come near
    float64's largest number (1.8e308).

    matplotlib pads a log axis by 5% of its decades and looks for tick decades up to two tick
    intervals beyond it; when ``log10(largest) + span / 2`` passes 300 decades (``span`` the
    decades between the smallest and largest drawn value) that search overflows and the axis
    collapses to [1, 10]. The limits are then set here, padded by 5% of the span and capped at
    10^308.25 (1.78e308), with a labelled tick every 1, 2, 5, 10, 20, 25, 50 or 100 decades (at
    most about nine ticks) and no minor ticks. Where some values are inf or NaN (not drawn), the
    x-axis still spans every position in ``x``, so the gap shows.
    """
    x = list(x)
    every = [v for seq in [*values.values(), *references.values()] for v in seq]
    drawn = [v for v in every if math.isfinite(v) and v > 0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        fig = plot_log_lines(x, values, xlabel, ylabel, title=title, references=references)
    if x and not all(math.isfinite(v) for v in every):    # keep the x positions whose values are not drawn in view
        pad = 0.05 * max(x[-1] - x[0], 1)
        fig.axes[0].set_xlim(x[0] - pad, x[-1] + pad)
    if not drawn:
        return fig
    low, high = math.log10(min(drawn)), math.log10(max(drawn))
    span = max(high - low, 1.0)
    if high + span / 2 <= 300:
        return fig
    bottom, top = max(low - 0.05 * span, -300.0), min(high + 0.05 * span, 308.25)
    step = next(d for d in (1, 2, 5, 10, 20, 25, 50, 100) if (top - bottom) / d <= 8)
    ax = fig.axes[0]
    ax.set_ylim(10.0 ** bottom, 10.0 ** top)
    first = math.ceil(bottom / step) * step
    ax.yaxis.set_major_locator(FixedLocator([10.0 ** k for k in range(first, math.floor(top) + 1, step)]))
    ax.yaxis.set_minor_locator(NullLocator())
    fig.tight_layout()
    return fig


def chain_figure(depth=10, weight=1.0, bias=0.0, activation="sigmoid"):
    """Plot ``|dy_L/dy_l|`` along the one-unit chain of :func:`~gradcourse.lessons.theory.scalar_chain`,
    next to the bound ``(max f' |w|)^(L - l)``.

    The chain runs in float64: a gradient or bound above about 1.8e308 (``|w| = 8`` with ReLU
    from 342 layers on) is inf, left out of the log axis, and the title says so."""
    chain = scalar_chain(depth, weight, bias, x0=1.0, activation=activation)
    gradients = [abs(g) for g in chain.gradients]
    gain = max_derivative(activation) * abs(weight)
    bound = [power_or_inf(gain, depth - l) for l in range(depth)]
    title = _with_overflow_note(f"{activation}, w={weight:g}, b={bias:g}: |dy_L/dy_0| = {gradients[0]:.2e}",
                                gradients, bound)
    return _log_lines_near_overflow(range(depth), {"|dy_L/dy_l| (autograd)": gradients},
                                    "l (the output y_L differentiated with respect to y_l)", "gradient (log scale)",
                                    title, {"(max f' |w|)^(L-l)": bound})


def recurrent_figure(sigma_max=1.5, steps=60, activation="tanh", width=32, input_scale=0.1, seed=0):
    """``||dh_T/dh_0||`` for ``T = 1..steps`` of ``h_t = f(W h_{t-1} + U x_t)`` where ``W`` is a random
    orthogonal matrix times ``sigma_max`` (all its singular values equal ``sigma_max``), next to
    the bound ``(gamma sigma_max)^T``; see :func:`gradcourse.lessons.theory.recurrent_jacobian_norms`.

    A norm or bound above float64's largest number, about 1.8e308 (the bound for
    ``sigma_max = 6`` from T = 397 on), is inf, left out of the log axis, and the title says so."""
    _checks.integer("steps", steps, minimum=1, maximum=1000)
    W, U, inputs = random_recurrence(sigma_max, steps, width, input_scale=input_scale, seed=seed)
    norms = recurrent_jacobian_norms(W, U, inputs, activation=activation)
    gamma = recurrent_derivative_bound(activation)
    bound = [power_or_inf(gamma * sigma_max, T) for T in range(1, steps + 1)]
    title = _with_overflow_note(f"{activation} RNN, σ_max(W) = {sigma_max:g} (1/γ = {1 / gamma:g}): "
                                f"||dh_T/dh_0|| at T={steps}: {norms[-1]:.2e}", norms, bound)
    return _log_lines_near_overflow(range(1, steps + 1), {"||dh_T/dh_0|| (measured)": norms}, "T (time steps back)",
                                    "Jacobian norm (log scale)", title, {"(γ σ_max)^T": bound})


def init_figure(X, y, depth=20, activation="tanh", init="default", width=256, seed=0):
    """Per-layer activation standard deviation (left) and weight-gradient norm (right) at
    initialization, for one init scheme; see :func:`gradcourse.lessons.at_init.layer_statistics`."""

    stats = layer_statistics(X, y, depth, activation, init, 1.0, width, seed)
    stds = std_per_layer(stats["activations"])
    return plot_two_per_layer({init: stds}, {init: stats["weight_gradient_norms"]},
                              "activation std (log scale)", "||dL/dW_l|| (log scale)",
                              title=f"{depth} {activation} layers of {width} units at initialization")


def activation_curves_figure(activations=("sigmoid", "tanh", "relu"), low=-6.0, high=6.0):
    """Each activation f(z) (left) and its derivative f'(z) by autograd (right) on [low, high]:
    :func:`~gradcourse.display.plots.plot_activation_curves` of :func:`~gradcourse.lessons.theory.activation_derivative`."""
    activations = list(activations)
    for name in activations:
        _checks.choice("activations[i]", name, tuple(ACTIVATIONS))
    _checks.number("low", low)
    _checks.number("high", high, minimum=low, strict_minimum=True)
    z = torch.linspace(low, high, 601)
    words = {name: name.replace("_", " ") for name in activations}     # leaky_relu: "leaky relu"
    return plot_activation_curves(z, {words[name]: ACTIVATIONS[name]()(z) for name in activations},
                                  {words[name]: activation_derivative(name, z) for name in activations})


def activation_figure(X, y, activation="relu", low=-4.0, high=4.0, depth=20, init="kaiming", width=64, seed=0):
    """The activation f and its derivative f' on [low, high] (left), and the gradient flow of a
    ``depth``-layer MLP built with it (right): :func:`~gradcourse.display.plots.plot_activation_and_flow`."""
    _checks.number("low", low)
    _checks.number("high", high, minimum=low, strict_minimum=True)
    norms = gradient_norms(X, y, depth=depth, activation=activation, init=init, width=width, seed=seed)
    z = torch.linspace(low, high, 401)
    return plot_activation_and_flow(z, ACTIVATIONS[activation]()(z), activation_derivative(activation, z), norms,
                                    title=activation, flow_title=f"{depth} layers, init={init}")


def precision_figure(gradients, log2_scale=16, dtype="float16"):
    """Per layer, the share of ``gradients`` (a list of tensors, input side first) that underflow
    to 0 and that overflow to inf when multiplied by ``2**log2_scale`` and cast to ``dtype``."""
    _checks.integer("log2_scale", log2_scale, minimum=0, maximum=40)
    losses = [flushed_and_overflowed(g, dtype, 2.0 ** log2_scale) for g in gradients]
    return plot_per_layer_shares({"flushed to 0": [l["flushed"] for l in losses],
                                  "overflowed to inf": [l["overflowed"] for l in losses]},
                                 "share of the layer's gradients",
                                 title=f"{dtype}, loss scale 2^{log2_scale}")


def clipping_figure(grad_norms, max_norm):
    """The gradient-norm trace and histogram of :func:`~gradcourse.display.plots.plot_gradient_norms`
    with the clipping threshold ``max_norm``, titled with the share of steps it would clip."""
    return plot_gradient_norms(grad_norms, max_norm, title=f"threshold c = {max_norm:.3g}")


def timestep_gradient_figure(length=50, cell="lstm", forget_bias=1.0, width=32, batch_size=256, seed=0):
    """Build a fresh seeded :class:`~gradcourse.core.models.SequenceRegressor` and plot ``||dL/dh_t||``
    over one batch of ``batch_size`` sequences of the adding problem of that ``length``, with ``width``
    units in the recurrent layer, at initialization.
    ``forget_bias`` is used by the LSTM only."""
    _checks.integer("length", length, minimum=2)
    X, y = adding_problem(batch_size, length, seed=seed)
    set_seed(seed)
    model = SequenceRegressor(cell, width, forget_bias=forget_bias if cell == "lstm" else None)
    norms = timestep_gradient_norms(model, X, y)
    name = f"lstm, forget bias {forget_bias:g}" if cell == "lstm" else cell
    return plot_timestep_gradients({name: norms}, title=f"{name}, T = {length}: "
                                   f"||dL/dh_1|| / ||dL/dh_T|| = {ratio(norms[0], norms[-1]):.1e}")


RESIDUAL_CHOICES = (("plain", False), ("residual", True), ("pre-activation", "pre"))
NORM_CHOICES = (("none", None), ("batch", "batch"), ("layer", "layer"))


def _final_accuracy(run):
    return f"train accuracy {run.history.train_accuracy[-1]:.2f}" if run.history.train_accuracy else "diverged"


def residual_figure(X, y, depth=50, residual=True, width=64, norm="batch", epochs=2, batch_size=128,
                    optimizer="adam", lr=1e-3, seed=0, activation="relu"):
    """Train a seeded MLP with He init on ``(X, y)`` (plain, ``residual=True`` or
    ``residual="pre"``; ReLU unless ``activation`` says otherwise) and plot its training loss next
    to ``||dL/dW_l||`` per layer at the first step."""
    _checks.integer("depth", depth, minimum=2, maximum=100)
    run = train_mlp(X, y, depth=depth, residual=residual, width=width, norm=norm, activation=activation,
                    init="kaiming", epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed)
    label = dict((value, name) for name, value in RESIDUAL_CHOICES)[residual]
    return plot_training_and_layers({label: run.history}, {label: run.monitor.series("grad_norm")[0].tolist()},
                                    "||dL/dW_l|| at the first step",
                                    title=f"{depth} layers, {label}, {activation}, norm={norm}: {_final_accuracy(run)}")


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


def optimizer_figure(X, y, optimizer="adam", lr=1e-3, epochs=2, batch_size=64, seed=0, **model_options):
    """Train a seeded MLP (``model_options`` as for :class:`~gradcourse.core.models.MLP`) with one
    optimizer and learning rate; plot its training loss next to the mean update-to-weight
    ratio ``||dW_l|| / ||W_l||`` per layer, with the 1e-3 rule of thumb."""
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    run = train_mlp(X, y, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, **model_options)
    ratios = run.monitor.mean("update_ratio") if run.monitor.steps("update_ratio") else [float("nan")]
    return plot_training_and_layers({optimizer: run.history}, {optimizer: ratios}, "mean ||ΔW|| / ||W|| per step",
                                    hline=1e-3, title=f"{optimizer}, lr={lr:.3g}: {_final_accuracy(run)}")


def layernorm_placement_figure(X, y, depth=6, residual_scale=1.0, seed=0, **model_options):
    """Build fresh seeded Post-LN and Pre-LN :class:`~gradcourse.lessons.transformers.RowTransformer` s of
    ``depth`` blocks, their residual branches scaled by ``residual_scale`` at initialization, and plot
    ``||dL/dW^{2,l}||`` per block on ``(X, y)`` (Xiong et al. 2020, Figure 3, at initialization), with
    each placement's first-to-last block ratio in the title."""
    _checks.integer("depth", depth, minimum=2, maximum=32)
    _checks.number("residual_scale", residual_scale, minimum=0, strict_minimum=True, maximum=1)
    norms = {name: block_gradient_norms(seeded_transformer(seed, depth=depth, placement=placement,
                                                           residual_scale=residual_scale, **model_options), X, y)
             for name, placement in [("Post-LN", "post"), ("Pre-LN", "pre")]}
    return plot_per_layer(norms, "||dL/dW2_l|| (log scale)", xlabel="block (1 = input side)",
                          title=f"{depth} blocks at initialization, residual branches × {residual_scale:.3g}: "
                                f"first/last Post-LN {ratio(norms['Post-LN'][0], norms['Post-LN'][-1]):.2f}, "
                                f"Pre-LN {ratio(norms['Pre-LN'][0], norms['Pre-LN'][-1]):.2f}")


