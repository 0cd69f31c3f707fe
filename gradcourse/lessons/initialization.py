"""Initialization beyond a variance formula: symmetry breaking, the first-loss check, the gains of
``torch.nn.init.calculate_gain`` and LSUV, a data-dependent init.

Notebook 04 derives the variance that keeps a layer's signal steady; these experiments check the
rest of what a good start needs: units that differ from each other, a first loss at ``ln C``, a gain
that suits the activation, and, when no formula fits, a scale measured on data.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import _checks
from ..core.layers import named_layers
from ..core.models import INITS, seeded_mlp
from ..core.losses import batch_loss
from ..core.model_state import state_left_alone
from ..core.runtime import set_seed
from ..core.train import ProgressBar, fit

__all__ = ["constant_init_", "CONSTANT_INITS", "first_loss", "GAIN_ACTIVATIONS", "layer_output_std", "lsuv_",
           "mean_field", "output_scale_runs", "row_spread", "second_moment_gain", "signal_std", "steps_to_loss",
           "symmetry_run", "WEIGHTED", "weighted_layers"]

CONSTANT_INITS = ("zeros", "constant")
"""Inits that give every unit of a layer the same weights (:func:`constant_init_`)."""

GAIN_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "leaky_relu": lambda z: nn.functional.leaky_relu(z, 0.2),   # the negative slope of calculate_gain's example
    "tanh": torch.tanh,
    "selu": nn.functional.selu,
}
"""The activations whose gains :func:`second_moment_gain` and :func:`signal_std` measure."""

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def constant_init_(model, value=0.0):
    """Set every ``nn.Linear`` weight of ``model`` to ``value`` and every bias to 0, in place.

    Every unit of a layer then has the same incoming weights, so it computes the same value and
    receives the same gradient: ``dL/dW_i = delta_i x^T`` with ``delta_i`` equal for all units ``i``.
    SGD keeps the rows of ``W`` equal, and the layer acts like a single unit however wide it is. With
    ``value=0`` and an activation with ``f(0) = 0`` (ReLU, tanh) every hidden output is 0, so
    ``dL/dW_out = delta h^T = 0`` and ``dL/dh = W_out^T delta = 0``: no hidden weight ever moves.
    """
    _checks.module("model", model)
    value = _checks.number("value", value)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it has no nn.Linear layer")
    for layer in linears:
        nn.init.constant_(layer.weight, value)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


def row_spread(weight):
    """``max_i max_j |W_ij - W_1j| / max |W|``: how far the units' incoming weights (the rows of a
    weight matrix of shape (units, inputs)) are from unit 1's, relative to the largest weight; 0 when
    every row is equal (or ``W`` is 0), about 1 or more for random rows."""
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"weight={_checks.describe(weight)} is not allowed; it must be a 2-D floating-point tensor")
    weight = weight.detach().double()
    largest = weight.abs().max()
    return 0.0 if largest == 0 else ((weight - weight[:1]).abs().max() / largest).item()


def symmetry_run(X, y, *, init="constant", value=0.05, epochs=1, batch_size=64, lr=0.1, seed=0, **model_options):
    """Train a fresh ``seeded_mlp(X, seed, **model_options)`` by SGD from ``init`` and report whether its units
    stayed alike.

    ``init``: ``"zeros"`` or ``"constant"`` (:func:`constant_init_` with 0 or ``value``), or one of
    the random schemes of :func:`~gradcourse.core.models.init_linear_`. Returns ``{"history": History,
    "row_spread": [row_spread(W_l) per hidden layer after training], "moved": [||W_l after - W_l
    before|| per hidden layer], "distinct_rows": [rows of W_l that differ from each other]}``.
    """
    _checks.features_and_labels(X, y)
    _checks.choice("init", init, CONSTANT_INITS + INITS)
    value = _checks.number("value", value)
    model = seeded_mlp(X, seed, init=init if init in INITS else "default", **model_options)
    if init in CONSTANT_INITS:
        constant_init_(model, 0.0 if init == "zeros" else value)
    before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, callbacks=[ProgressBar(show=False)])
    after = [layer.weight.detach() for layer in model.hidden_linears()]
    return {"history": history, "row_spread": [row_spread(w) for w in after],
            "moved": [(w - b).norm().item() for w, b in zip(after, before)],
            "distinct_rows": [len(torch.unique(w, dim=0)) for w in after]}


def first_loss(model, X, y):
    """The cross-entropy of ``model`` on ``(X, y)`` before any step, as a float. For ``C`` balanced
    classes a network that has learnt nothing should give about ``ln C`` (``ln 10 = 2.303``).

    The forward pass runs in the model's own mode (a model in train mode normalizes with the batch's
    statistics, as the first training step would) and leaves no trace: its buffers (BatchNorm's
    running statistics) and torch's random generators (dropout) are as they were afterwards."""
    _checks.module("model", model)
    _checks.features_and_labels(X, y)
    with torch.no_grad(), state_left_alone(model):
        return batch_loss(model, X, y).item()


def output_scale_runs(X, y, output_scales, *, epochs=2, batch_size=64, optimizer="adam", lr=1e-3, seed=0,
                      progress=True, **model_options):
    """``{scale: History}``: the same seeded ``MLP(**model_options, output_scale=scale)`` trained on ``(X, y)``
    for each output-layer scale, with the same batches. Adam by default: its step does not grow with
    the output weights, whereas plain SGD's hidden-layer gradients pass through ``W_out`` and grow with
    it, which mixes a larger effective learning rate into the comparison."""
    _checks.features_and_labels(X, y)
    if not isinstance(output_scales, (list, tuple)) or not output_scales:
        raise ValueError(f"output_scales={_checks.describe(output_scales)} is not allowed; it must be a non-empty list "
                         "or tuple of positive numbers")
    for scale in output_scales:
        _checks.number("output_scales[i]", scale, minimum=0, strict_minimum=True)
    _checks.boolean("progress", progress)
    return {scale: fit(seeded_mlp(X, seed, output_scale=scale, **model_options), X, y, epochs=epochs,
                       batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed, callbacks=[ProgressBar(show=progress)])
            for scale in output_scales}


def steps_to_loss(losses, level, window=20):
    """The first step (counting from 1) at which the mean of the last ``window`` losses is below
    ``level``, or None if it never is: a training curve's progress, robust to batch-to-batch noise."""
    if isinstance(losses, (str, bytes)) or not hasattr(losses, "__len__") or len(losses) == 0:
        raise ValueError(f"losses={_checks.describe(losses)} is not allowed; it must be a non-empty sequence of finite "
                         "numbers (e.g. History.loss)")
    losses = [_checks.number("losses[i]", v) for v in (losses.tolist() if isinstance(losses, torch.Tensor) else losses)]
    level = _checks.number("level", level)
    window = _checks.integer("window", window, minimum=1)
    for step in range(1, len(losses) + 1):
        recent = losses[max(0, step - window):step]
        if sum(recent) / len(recent) < level:
            return step
    return None


def second_moment_gain(activation, points=200_001):
    """``1 / sqrt(E[f(z)^2])`` for ``z ~ N(0, 1)``: the gain on weights of variance ``1/n_in`` that
    brings the second moment after ``f`` back to that of a unit-variance input.

    ``E[f(z)^2]`` is integrated numerically (trapezoid rule on ``[-10, 10]`` in float64). For ReLU,
    ``E[relu(z)^2] = Var(z)/2`` exactly, so the gain is ``sqrt 2`` at any input scale (He et al. 2015);
    for LeakyReLU with slope ``a``, ``(1 + a^2)/2`` and ``sqrt(2/(1 + a^2))``. For tanh and SELU the
    ratio depends on the input's scale, so this one-layer figure is only a guide: tanh gives about 1.59
    (PyTorch's ``calculate_gain`` says 5/3, a heuristic), SELU 1 (Klambauer et al. 2017 built SELU so
    that ``E[selu(z)^2] = 1``; PyTorch's 3/4 was chosen empirically).
    """
    _checks.choice("activation", activation, tuple(GAIN_ACTIVATIONS))
    points = _checks.integer("points", points, minimum=3)
    f = GAIN_ACTIVATIONS[activation]
    return 1 / math.sqrt(_gaussian_expectation(lambda z: f(z) ** 2, points))


def mean_field(activation, init_scale, depth=200, points=4_001):
    """``(sqrt(q), chi)`` after ``depth`` layers of the variance map of Poole et al. (2016),
    ``q_l = g^2 E[f(sqrt(q_{l-1}) z)^2]`` from ``q_0 = 1``, ``z ~ N(0, 1)``, for an infinitely wide
    bias-free network with weights of variance ``g^2 / n``, the gain ``g = init_scale``: the std of the
    pre-activations it settles at, and ``chi = g^2 E[f'(sqrt(q) z)^2]``, the factor by which one layer there
    multiplies the back-propagated gradient's second moment (its std by ``sqrt(chi)``).
    The expectations are integrated as in :func:`second_moment_gain`."""
    _checks.choice("activation", activation, tuple(GAIN_ACTIVATIONS))
    gain = _checks.number("init_scale", init_scale, minimum=0, strict_minimum=True)
    depth = _checks.integer("depth", depth, minimum=1)
    points = _checks.integer("points", points, minimum=3)
    f = GAIN_ACTIVATIONS[activation]
    q = 1.0
    for _ in range(depth):
        q = gain ** 2 * _gaussian_expectation(lambda z: f(math.sqrt(q) * z) ** 2, points)

    def squared_slope(z):
        scaled = (math.sqrt(q) * z).requires_grad_()
        (slope,) = torch.autograd.grad(f(scaled).sum(), scaled)   # f' at each point, elementwise
        return slope ** 2

    return math.sqrt(q), gain ** 2 * _gaussian_expectation(squared_slope, points)


def _gaussian_expectation(g, points):
    """``E[g(z)]`` for ``z ~ N(0, 1)``: the trapezoid rule on ``points`` points of ``[-10, 10]`` in float64."""
    z = torch.linspace(-10.0, 10.0, points, dtype=torch.float64)
    density = torch.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    return torch.trapezoid(g(z) * density, z).item()


def signal_std(activation, init_scale, depth=30, width=256, samples=512, seed=0):
    """Per layer of a deep bias-free network ``z_l = W_l f(z_{l-1})`` with ``W_l ~ N(0, g^2 / width)``
    (``torch.nn.init.kaiming_normal_`` with ``nonlinearity="linear"``, times the gain ``g = init_scale``,
    as ``MLP(init="lecun", init_scale=g)`` draws them) on N(0, 1) inputs:
    ``{"forward": [std of z_l], "backward": [std of dL/dz_l]}``, input side first, where
    ``L = sum(f(z_depth) * r)`` with a fixed N(0, 1) tensor ``r``.

    A gain keeps the forward signal steady when the forward stds settle; Poole et al. (2016),
    "Exponential expressivity in deep neural networks through transient chaos", derive the fixed point
    ``q* = g^2 E[f(sqrt(q*) z)^2]`` and the backward factor per layer, ``g^2 E[f'(sqrt(q*) z)^2]``.
    """
    _checks.choice("activation", activation, tuple(GAIN_ACTIVATIONS))
    gain = _checks.number("init_scale", init_scale, minimum=0, strict_minimum=True)
    depth = _checks.integer("depth", depth, minimum=1)
    width = _checks.integer("width", width, minimum=1)
    samples = _checks.integer("samples", samples, minimum=2)
    set_seed(seed)
    f = GAIN_ACTIVATIONS[activation]
    h = torch.randn(samples, width, requires_grad=True)
    pre_activations = []
    with torch.enable_grad():
        for _ in range(depth):
            weight = nn.init.kaiming_normal_(torch.empty(width, width), nonlinearity="linear") * gain
            z = h @ weight.T
            z.retain_grad()
            pre_activations.append(z)
            h = f(z)
        (h * torch.randn(h.shape)).sum().backward()
    return {"forward": [z.detach().std().item() for z in pre_activations],
            "backward": [z.grad.std().item() for z in pre_activations]}


def weighted_layers(model):
    """``[(name, module)]``: the ``nn.Linear`` and ``nn.Conv`` layers of ``model``, input side first
    for a course MLP (else in registration order), the layers LSUV rescales."""
    _checks.module("model", model)
    if not any(isinstance(m, WEIGHTED) for m in model.modules()):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it has no nn.Linear or nn.Conv layer")
    return [(name, m) for name, m in named_layers(model) if isinstance(m, WEIGHTED)]


def layer_output_std(model, X):
    """The standard deviation of each weighted layer's output ``W x + b`` on the batch ``X``, as floats,
    in the order of :func:`weighted_layers` (for a course MLP: hidden layers, then the output layer)."""
    layers = weighted_layers(model)
    _checks.batch(X, X)
    outputs = {}
    handles = [m.register_forward_hook(lambda m, i, out, name=name: outputs.setdefault(name, out))
               for name, m in layers]
    try:
        with torch.no_grad():
            model(X)
    finally:
        for handle in handles:
            handle.remove()
    return [outputs[name].double().std().item() for name, _ in layers]


@torch.no_grad()
def lsuv_(model, X, tolerance=0.1, max_iter=10):
    """Layer-sequential unit-variance initialization, in place (Mishkin & Matas 2016, "All you need is
    a good init", ICLR, Algorithm 1).

    1. Pre-initialize every weighted layer with an orthonormal matrix (``torch.nn.init.orthogonal_``,
       Saxe et al. 2014) and a zero bias.
    2. From the input side, for each layer: run the batch ``X`` forward, measure the variance ``v`` of
       the layer's output, and divide its weights by ``sqrt(v)``; repeat until ``|v - 1| < tolerance`` or
       ``max_iter`` rescalings.

    Returns ``[(name, rescalings, variance)]`` per layer, the variance as last measured on ``X``. The
    defaults are the numbers of the authors' PyTorch code (ducha-aiki/LSUV-pytorch, whose tolerance
    applies to the std); a layer usually needs one or two rescalings, since the layers below it are
    already at unit variance.
    """
    layers = weighted_layers(model)
    _checks.batch(X, X)
    tolerance = _checks.number("tolerance", tolerance, minimum=0, strict_minimum=True)
    max_iter = _checks.integer("max_iter", max_iter, minimum=1)
    for _, layer in layers:
        nn.init.orthogonal_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    record = []
    for name, layer in layers:
        seen = []
        handle = layer.register_forward_hook(lambda m, i, out: seen.append(out.double().var().item()))
        try:
            rescalings = 0
            model(X)
            while abs(seen[-1] - 1) >= tolerance and rescalings < max_iter:
                if not math.isfinite(seen[-1]) or seen[-1] == 0:
                    raise ValueError(f"layer {name!r} has output variance {seen[-1]} on X; LSUV cannot rescale it "
                                     "to 1 (check X: it must vary, and be finite)")
                layer.weight.div_(math.sqrt(seen[-1]))
                rescalings += 1
                model(X)
        finally:
            handle.remove()
        record.append((name, rescalings, seen[-1]))
    return record
