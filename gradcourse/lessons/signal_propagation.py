"""One Jacobian, both directions: what a deep network passes forward and back, and what the optimizer receives.

In a plain MLP, ``z_l = W_l h_{l-1} + b_l`` and ``h_l = f(z_l)``, so the layer Jacobian is
``J_l = dh_l/dh_{l-1} = diag(f'(z_l)) W_l``. The same matrices act in both directions:

* forward, a small change ``dx`` of the input moves the last hidden layer by about
  ``J_L ... J_1 dx``, so the differences between inputs shrink or grow with the product
  (:func:`relative_spread`, :func:`forward_spreads`, :func:`both_directions`);
* backward, ``dL/dh_{l-1} = J_l^T dL/dh_l``: the gradient shrinks or grows with the transposed product.

What the optimizer receives combines the two: ``dL/dW_l = sum over the batch of delta_l h_{l-1}^T`` with
``delta_l = dL/dz_l``, the backward signal times the layer's forward input (:func:`layer_signals`).
Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks",
eq. 14: when ``n Var(W)`` is the same in every layer, the variance of the weight gradient does not
depend on the layer, while that of the back-propagated gradient does.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..core import _checks
from ..core.model_state import state_left_alone
from ..core.models import HiddenBlock, require_course_model, seeded_mlp
from ..core.monitor.monitor import GradientMonitor
from ..core.norms import norm
from ..core.train import EpochScores, ProgressBar, fit
from .at_init import DTYPES
from .theory import activation_derivative

__all__ = ["Directions", "LayerSignals", "UpdateRatios", "both_directions", "distinct_values", "first_to_last_factors",
           "forward_spreads", "hidden_outputs", "input_output_jacobian", "jacobian_by_layers", "layer_jacobians",
           "layer_signals", "one_step_update_ratios", "per_layer_factor", "relative_spread", "signals_at_init"]


class LayerSignals(NamedTuple):
    """Per hidden layer l = 1..L (input side first), from one forward and one backward pass on a batch:

    * ``spread``: :func:`relative_spread` of the layer's outputs ``h_l`` over the batch;
    * ``differences``: ``sqrt(mean_b ||h_l(x_b) - m_l||^2)``, the typical size of what differs between
      inputs (``m_l`` the mean over the batch);
    * ``activation_gradients``: ``||dL/dh_l||``, the back-propagated signal;
    * ``pre_activation_gradients``: ``||dL/dz_l|| = ||delta_l||``;
    * ``input_norms``: ``||H_{l-1}||``, the layer's input over the batch (the pixels for layer 1);
    * ``weight_gradients``: ``||dL/dW_l||``;
    * ``alignment``: ``||dL/dW_l|| / (||delta_l|| ||H_{l-1}||)``, in (0, 1]: how much of the batch's
      per-example terms ``delta_b h_b^T`` survives their sum (1 when they all point the same way).

    Norms are Frobenius norms over the whole batch, as float64 numbers (:func:`~gradcourse.core.norms.norm`).
    """

    spread: list
    differences: list
    activation_gradients: list
    pre_activation_gradients: list
    input_norms: list
    weight_gradients: list
    alignment: list


def relative_spread(H):
    """How much of a layer's output differs between the rows (inputs) of the batch ``H`` (n, units):

    ``spread = sqrt(mean_b ||h_b - m||^2) / sqrt(mean_b ||h_b||^2)``, with ``m`` the mean over the rows.

    It lies in [0, 1]: 0 when every input gives the same output, 1 when the outputs have mean 0.
    For a small spread it is the ratio of the differences to the common part ``||m||``. NaN for an
    all-zero ``H`` (nothing to compare). Computed in float64.
    """
    if not isinstance(H, torch.Tensor) or H.dim() != 2 or not H.is_floating_point() or len(H) < 2:
        raise ValueError(f"H={_checks.describe(H)} is not allowed; it must be a 2-D floating-point torch.Tensor "
                         "with at least 2 rows (one per input)")
    H = H.detach().double()
    size = H.pow(2).sum(1).mean().sqrt()
    if size == 0:
        return math.nan
    return ((H - H.mean(0)).pow(2).sum(1).mean().sqrt() / size).item()


def _as_dtype(model, X, dtype):
    """``(model, X)``, or a copy of the model and X converted to ``dtype`` ("float32" or "float64")."""
    if dtype is None:
        return model, X
    _checks.choice("dtype", dtype, tuple(DTYPES))
    return copy.deepcopy(model).to(DTYPES[dtype]), X.to(DTYPES[dtype])


def hidden_outputs(model, X, dtype=None):
    """The outputs ``h_1 .. h_L`` of a course MLP's hidden blocks on the batch ``X``, without gradients
    (buffers such as BatchNorm's running statistics are left as they were); ``dtype`` runs a copy of
    the model in that precision."""
    require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D floating-point torch.Tensor")
    model, X = _as_dtype(model, X, dtype)
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out.detach())) for block in model.blocks]
    try:
        with torch.no_grad(), state_left_alone(model):
            model(X)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def forward_spreads(model, X, dtype=None):
    """:func:`relative_spread` of every hidden layer's output over the rows of ``X``, input side first."""
    return [relative_spread(h) for h in hidden_outputs(model, X, dtype)]


def distinct_values(model, X):
    """Per hidden layer, the median over its units of how many different values a unit takes over the
    rows of ``X``, in the model's own precision: where the differences between inputs fall below the
    precision's rounding, many inputs give a unit the very same number."""
    return [int(torch.tensor([len(torch.unique(h[:, j])) for j in range(h.shape[1])]).median())
            for h in hidden_outputs(model, X)]


def per_layer_factor(values):
    """The geometric mean factor per layer of a per-layer sequence: ``(values[-1] / values[0]) ** (1 / (L - 1))``.
    For a backward signal read from the output, pass it reversed (``values[::-1]``)."""
    values = [float(v) for v in values]
    if len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"values={values!r} is not allowed; give at least 2 positive finite numbers, one per layer")
    return (values[-1] / values[0]) ** (1 / (len(values) - 1))


def _plain_mlp(model):
    require_course_model(model)
    if not all(isinstance(b, HiddenBlock) and not b.residual and isinstance(b.norm, torch.nn.Identity)
               for b in model.blocks):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a plain MLP (norm=None, "
                         "residual=False), whose layers compute h = f(W h_prev + b)")
    return model


def layer_signals(model, X, y):
    """One forward and one backward pass of a plain course MLP (cross-entropy on ``(X, y)``); a
    :class:`LayerSignals` of the forward and backward signals and the weight gradient of every hidden layer.

    Backpropagation gives ``dL/dW_l = delta_l^T H_{l-1}`` summed over the batch (Glorot & Bengio 2010,
    eq. 3), so ``||dL/dW_l|| = alignment_l * ||delta_l|| * ||H_{l-1}||`` exactly. The model's
    buffers, ``.grad`` fields and torch's random generators are left as they were.
    """
    _plain_mlp(model)
    _checks.features_and_labels(X, y)
    inputs, outputs, pre_activations = [], [], []
    handles = [block.register_forward_hook(lambda m, i, out: (inputs.append(i[0]), outputs.append(out)) and None)
               for block in model.blocks]
    handles += [block.linear.register_forward_hook(lambda m, i, out: pre_activations.append(out))
                for block in model.blocks]
    weights = [block.linear.weight for block in model.blocks]
    try:
        with torch.enable_grad(), state_left_alone(model):
            loss = F.cross_entropy(model(X), y)
            grads = torch.autograd.grad(loss, outputs + pre_activations + weights)
    finally:
        for handle in handles:
            handle.remove()
    depth = len(weights)
    dh, dz, dW = ([norm(g).item() for g in grads[k * depth:(k + 1) * depth]] for k in range(3))
    h_in = [norm(h.detach()).item() for h in inputs]
    alignment = [w / (z * h) if z * h > 0 else math.nan for w, z, h in zip(dW, dz, h_in)]
    spread = [relative_spread(h) if len(h) > 1 else math.nan for h in outputs]
    differences = [norm(h.detach() - h.detach().mean(0)).item() / len(h) ** 0.5 for h in outputs]
    return LayerSignals(spread, differences, dh, dz, h_in, dW, alignment)


def signals_at_init(X, y, *, seed=0, dtype="float32", **model_options):
    """:func:`layer_signals` of a fresh ``seeded_mlp(X, seed, **model_options)`` in ``dtype``
    (``"float64"`` resolves differences and gradients far below float32's rounding)."""
    _checks.features_and_labels(X, y)
    _checks.choice("dtype", dtype, tuple(DTYPES))
    model = seeded_mlp(X, seed, **model_options).to(DTYPES[dtype])
    return layer_signals(model, X.to(DTYPES[dtype]), y)


def first_to_last_factors(signals):
    """The first-to-last ratio of the weight gradients, ``||dL/dW_1|| / ||dL/dW_L||``, as the product of four
    ratios (exactly, from :class:`LayerSignals`' identity): ``activations`` (``||dL/dh_1|| / ||dL/dh_L||``),
    ``derivatives`` (``||delta|| / ||dL/dh||`` at layer 1 over the same at layer L: the activation's slopes),
    ``inputs`` (``||H_0|| / ||H_{L-1}||``) and ``alignment`` (layer 1's over layer L's). A dict with the five."""
    if not isinstance(signals, LayerSignals):
        raise ValueError(f"signals={_checks.describe(signals)} is not allowed; it must be a LayerSignals")

    def ratio(name):
        values = getattr(signals, name)
        return values[0] / values[-1]

    return {"weights": ratio("weight_gradients"), "activations": ratio("activation_gradients"),
            "derivatives": ratio("pre_activation_gradients") / ratio("activation_gradients"),
            "inputs": ratio("input_norms"), "alignment": ratio("alignment")}


class UpdateRatios(NamedTuple):
    """Per hidden layer, ``||dW_l|| / ||W_l||`` of one optimizer step: as a ``GradientMonitor`` recorded it, and
    by hand for SGD, ``lr ||dL/dW_l|| / ||W_l||``."""

    monitored: list
    by_hand: list


def one_step_update_ratios(X, y, *, lr, seed=0, **model_options):
    """One SGD step of ``seeded_mlp(X, seed, **model_options)`` on the whole batch ``(X, y)`` under a
    :class:`~gradcourse.core.monitor.GradientMonitor`: the update-to-weight ratio of every hidden layer, the
    quantity the step changes the layer by (notebook 10), beside ``lr ||dL/dW_l|| / ||W_l||``."""
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    model = seeded_mlp(X, seed, **model_options)
    by_hand = [lr * g / norm(layer.weight.detach()).item()
               for g, layer in zip(layer_signals(model, X, y).weight_gradients, model.hidden_linears())]
    monitor = GradientMonitor(model)
    fit(model, X, y, epochs=1, batch_size=len(X), lr=lr, seed=seed,
        callbacks=[monitor, ProgressBar(show=False), EpochScores(training_set=False)])
    return UpdateRatios(monitor.series("update_ratio")[0, :len(by_hand)].tolist(), by_hand)


# ---------------------------------------------------------------- the Jacobian itself


def _one_input(model, x):
    first = model.blocks[0].linear
    if not isinstance(x, torch.Tensor) or x.shape != (first.in_features,) or not x.is_floating_point():
        raise ValueError(f"x={_checks.describe(x)} is not allowed; it must be one input, a 1-D floating-point "
                         f"torch.Tensor of {first.in_features} features")
    return x.detach().to(first.weight.dtype)


def _last_hidden(model, x):
    for block in model.blocks:
        x = block(x)
    return x


def input_output_jacobian(model, x):
    """``d h_L / d x`` of a course MLP at one input ``x`` (1-D), by :func:`torch.func.jacrev`:
    a (width, in_features) matrix."""
    require_course_model(model)
    x = _one_input(model, x)
    with state_left_alone(model):
        return torch.func.jacrev(lambda v: _last_hidden(model, v))(x).detach()


def layer_jacobians(model, x):
    """``[J_1, ..., J_L]`` at one input ``x``, written out: ``J_l = diag(f'(z_l)) W_l`` with ``f'`` by autograd
    (:func:`~gradcourse.lessons.theory.activation_derivative`), for a plain course MLP."""
    _plain_mlp(model)
    h = _one_input(model, x)
    jacobians = []
    with torch.no_grad():
        for block in model.blocks:
            z = block.linear(h)
            jacobians.append(activation_derivative(model.activation, z)[:, None] * block.linear.weight.detach())
            h = block(h)
    return jacobians


def jacobian_by_layers(model, x):
    """The product ``J_L ... J_1`` of :func:`layer_jacobians`: the chain rule, which
    :func:`input_output_jacobian` computes by autograd."""
    product = None
    for jacobian in layer_jacobians(model, x):
        product = jacobian if product is None else jacobian @ product
    return product


class Directions(NamedTuple):
    """What one Jacobian ``J = dh_L/dx`` at ``x`` says in both directions (:func:`both_directions`)."""

    forward_change: torch.Tensor   # h_L(x + dx) - h_L(x), by two forward passes
    linearized: torch.Tensor       # J dx
    backward: torch.Tensor         # d<g, h_L(x)>/dx, by autograd
    by_jacobian: torch.Tensor      # J^T g


def both_directions(model, x, dx, g):
    """Forward, the change of the last hidden layer when the input moves from ``x`` to ``x + dx``, against
    ``J dx``; backward, the gradient of ``<g, h_L(x)>`` with respect to ``x`` (the gradient that reaches the
    input when ``g`` arrives at the last hidden layer), against ``J^T g``."""
    require_course_model(model)
    x, dx = _one_input(model, x), _one_input(model, dx)
    width = model.blocks[-1].linear.out_features
    if not isinstance(g, torch.Tensor) or g.shape != (width,) or not g.is_floating_point():
        raise ValueError(f"g={_checks.describe(g)} is not allowed; it must be a 1-D floating-point torch.Tensor "
                         f"of {width} entries, one per unit of the last hidden layer")
    g = g.detach().to(x.dtype)
    J = input_output_jacobian(model, x)
    with state_left_alone(model):
        with torch.no_grad():
            change = _last_hidden(model, x + dx) - _last_hidden(model, x)
        point = x.clone().requires_grad_(True)
        with torch.enable_grad():
            (backward,) = torch.autograd.grad(_last_hidden(model, point) @ g, point)
    return Directions(change, J @ dx, backward, J.T @ g)
