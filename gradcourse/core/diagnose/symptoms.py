"""The checks of :func:`~gradcourse.core.diagnose.diagnose`: each reads one kind of measurement of a
:class:`~gradcourse.core.diagnose.report.Report` against its threshold of :data:`THRESHOLDS` and, where it
is crossed, gives a :class:`~gradcourse.core.diagnose.report.Symptom` with the evidence, the likely
causes and the remedies, each with the notebook of :data:`NOTEBOOKS` that teaches it
(:func:`find_symptoms` runs them in order)."""

from __future__ import annotations

import math

import torch

from ..probes import first_nonfinite_output
from .report import Symptom

__all__ = ["NOTEBOOKS", "THRESHOLDS", "find_symptoms"]

THRESHOLDS = {
    "vanishing_ratio": 1e-3,    # first-layer / last-layer gradient norm below this: vanishing
    "exploding_ratio": 1e3,     # ... above this: exploding
    "exploding_grad_weight_ratio": 1e2,   # any layer's ||dL/dW|| / ||W|| above this: exploding
    "saturated_share": 0.3,     # share of sigmoid/tanh outputs in the flat tails
    "dead_share": 0.4,          # share of units that output 0 for the whole batch
    "update_ratio_low": 1e-5,   # ||dW|| / ||W|| after one optimizer step, far below ~1e-3
    "update_ratio_high": 1e-1,  # ... far above ~1e-3
}
"""Default thresholds; ``diagnose(..., thresholds={...})`` overrides any of them.

Every threshold is relative. A bound on ``||dL/dW||`` alone would depend on the layer's size and the
loss's scale, so ``exploding_grad_weight_ratio`` (which takes the place of such a bound) reads the
gradient against the layer's own weights: one SGD step of learning rate ``lr`` changes a layer by
``lr * ||dL/dW|| / ||W||`` of its size, so above 100 even ``lr = 1e-3`` moves it by more than
``update_ratio_high`` (10%). An untrained ResNet-18 peaks near 10 (``conv1``); MLPs with He or Xavier
init stay below 1.
"""

NOTEBOOKS = {
    "01": "01_backprop_and_the_chain_rule", "02": "02_vanishing_gradients", "03": "03_exploding_gradients",
    "04": "04_weight_initialization", "05": "05_activation_functions", "06": "06_gradient_clipping",
    "07": "07_residual_connections", "09": "09_normalization", "10": "10_optimizers", "11": "11_mixed_precision",
}


def find_symptoms(r, limits, patient, X, reached):
    """The symptoms of the report ``r`` against ``limits`` (:data:`THRESHOLDS` with the learner's overrides),
    in order; ``reached``: whether each layer got a gradient (the checks after "no gradient" leave out those
    that did not); ``patient`` and ``X``: the model diagnosed and its batch, to find where a non-finite loss
    first appears. A non-finite loss, or non-finite gradients, end the checks."""
    if not math.isfinite(r.loss):
        return [_nonfinite_loss(r, patient, X)]
    symptoms = _no_gradient(r, reached)
    names = [n for n, got in zip(r.layer_names, reached) if got]
    norms = [g for g, got in zip(r.grad_norms, reached) if got]
    nonfinite = _nonfinite_gradients(names, norms)
    if nonfinite:
        return symptoms + nonfinite
    symptoms += _gradient_ratio(names, norms, limits)
    if not any(s.name == "exploding gradients" for s in symptoms):
        symptoms += _large_gradients(r, reached, limits, len(names))
    return symptoms + _saturated_units(r, limits) + _dead_units(r, limits) + _update_sizes(r, reached, limits)


def _nonfinite_loss(r, patient, X):
    return Symptom(
        "non-finite loss", f"the loss is {r.loss}", "the loss must be finite", _first_nonfinite(patient, X),
        ["weights or activations so large that they overflow (too large an init scale or learning rate)",
         "a log or division of zero in a hand-written loss", "fp16 overflow"],
        [("lower the init scale (He/Xavier) or the learning rate", NOTEBOOKS["04"]),
         ("clip the gradient norm", NOTEBOOKS["06"]),
         ("use a library loss (log-sum-exp inside) and loss scaling in fp16", NOTEBOOKS["11"])])


def _no_gradient(r, reached):
    unused = [n for n, got in zip(r.layer_names, reached) if not got]
    if not unused:
        return []
    return [Symptom(
        "no gradient",
        f"{_layers(unused)} got no gradient: {_their(unused)} weights' .grad is still None after the backward pass "
        "(the gradient norm reads NaN); the checks below leave them out",
        ".grad is None", unused,
        ["the layer is not used by forward, or its output never reaches the loss (an unused head or branch)",
         "the path to the loss is cut: .detach(), .data or torch.no_grad() between the layer and the loss"],
        [("use the layer in forward, and keep .detach(), .data and torch.no_grad() off its path to the loss: "
          "backpropagation reaches only what computed the loss", NOTEBOOKS["01"]),
         ("if it is unused on purpose, freeze it (requires_grad_(False)) or leave it out with layers= or "
          "include=", NOTEBOOKS["01"])])]


def _nonfinite_gradients(names, norms):
    bad = [(n, g) for n, g in zip(names, norms) if not math.isfinite(g)]
    if not bad:
        return []
    return [Symptom(
        "non-finite gradients",
        f"{_layers(bad)} {_have(bad)} NaN or infinite gradients (norm {bad[0][1]} at {bad[0][0]})",
        "gradients must be finite", [n for n, _ in bad],
        ["exploding gradients that overflowed", "a non-differentiable point hit exactly (e.g. sqrt(0))"],
        [("clip the gradient norm", NOTEBOOKS["06"]), ("lower the init scale or learning rate", NOTEBOOKS["03"])])]


def _gradient_ratio(names, norms, limits):
    """Vanishing (a gradient exactly 0, or the first layer's norm far below the last's) or exploding (far above)."""
    zero = [n for n, g in zip(names, norms) if g == 0]
    if zero:
        return [Symptom(
            "vanishing gradients",
            f"the gradient norm is exactly 0 at {len(zero)} of {len(names)} layers: no signal reaches them, the "
            "extreme of vanishing", "||dL/dW|| = 0", zero,
            ["zero weights in a layer above (a constant init of 0, a zero-initialized output layer): it passes back "
             "W^T delta = 0", "every unit of a ReLU layer dead for the whole batch: f'(z) = 0 stops the gradient",
             "a gradient so small that float32 or fp16 rounds it to 0"],
            [("initialize with random weights scaled to the layer: He for ReLU, Xavier for tanh and sigmoid",
              NOTEBOOKS["04"]),
             ("use LeakyReLU or ELU, whose derivative is never 0", NOTEBOOKS["05"]),
             ("in fp16, scale the loss", NOTEBOOKS["11"])])]
    if len(norms) < 2:
        return []
    ratio = norms[0] / norms[-1]
    if ratio < limits["vanishing_ratio"]:
        return [Symptom(
            "vanishing gradients",
            f"the first layer's gradient norm is {ratio:.1e} times the last layer's "
            f"({norms[0]:.2e} at {names[0]}, {norms[-1]:.2e} at {names[-1]})",
            f"ratio < {limits['vanishing_ratio']:g}",
            [n for n, g in zip(names, norms) if g < limits["vanishing_ratio"] * norms[-1]],
            ["saturating activations (sigmoid: derivative at most 1/4)", "weights too small for the depth",
             "a deep stack without skip connections or normalization"],
            [("use ReLU-family activations", NOTEBOOKS["05"]),
             ("initialize for the activation: He for ReLU, Xavier for tanh", NOTEBOOKS["04"]),
             ("add residual connections", NOTEBOOKS["07"]), ("add BatchNorm or LayerNorm", NOTEBOOKS["09"]),
             ("an adaptive optimizer (Adam) rescales small gradients", NOTEBOOKS["10"])])]
    if ratio > limits["exploding_ratio"]:
        return [_exploding(f"the first layer's gradient norm is {ratio:.1e} times the last layer's",
                           f"ratio > {limits['exploding_ratio']:g}", names[:1])]
    return []


def _large_gradients(r, reached, limits, count):
    """Exploding: a layer's gradient far larger than its weights (``count``: the layers a gradient reached)."""
    limit = limits["exploding_grad_weight_ratio"]
    high = [(n, q) for n, q, got in zip(r.layer_names, r.grad_weight_ratios, reached) if got and q > limit]
    if not high:
        return []
    name, worst = max(high, key=lambda item: item[1])
    return [_exploding(
        f"{len(high)} of {count} layers have a gradient norm more than {limit:g} times their weights' norm "
        f"(largest {worst:.1e} at {name}: one SGD step at lr 0.001 would change that layer by {worst * 1e-3:.2g} "
        "times its size)", f"||dL/dW|| / ||W|| > {limit:g}", [n for n, _ in high])]


def _saturated_units(r, limits):
    saturated = [(n, s) for n, s in zip(r.activation_names, r.saturated) if s > limits["saturated_share"]]
    if not saturated:
        return []
    return [Symptom(
        "saturated units",
        f"{_layers(saturated, 'sigmoid/tanh layer')} {_have(saturated)} more than {limits['saturated_share']:.0%} of "
        f"{_their(saturated)} outputs in the flat tails (worst {max(s for _, s in saturated):.0%})",
        f"share > {limits['saturated_share']:.0%}", [n for n, _ in saturated],
        ["weights or inputs too large, pushing pre-activations into the tails", "inputs not standardized"],
        [("initialize with Xavier (std sqrt(2/(n_in+n_out)))", NOTEBOOKS["04"]),
         ("standardize the inputs; add BatchNorm before the activation", NOTEBOOKS["09"]),
         ("use a non-saturating activation", NOTEBOOKS["05"])])]


def _dead_units(r, limits):
    dead = [(n, d) for n, d in zip(r.activation_names, r.dead) if d > limits["dead_share"]]
    if not dead:
        return []
    return [Symptom(
        "dead units",
        f"{_layers(dead, 'activation layer')} {_have(dead)} more than {limits['dead_share']:.0%} of {_their(dead)} units "
        f"at exactly 0 for the whole batch (worst {max(d for _, d in dead):.0%})",
        f"share > {limits['dead_share']:.0%}", [n for n, _ in dead],
        ["a too-large learning-rate step pushed biases/weights negative", "weights too small, biases dominate"],
        [("use LeakyReLU or ELU", NOTEBOOKS["05"]), ("lower the learning rate, use warmup", NOTEBOOKS["10"]),
         ("He initialization", NOTEBOOKS["04"])])]


def _update_sizes(r, reached, limits):
    """Updates too small or too large, when an optimizer step was taken."""
    if r.update_ratios is None:
        return []
    symptoms = []
    updates = [(n, u) for n, u, got in zip(r.layer_names, r.update_ratios, reached) if got]
    slow = [(n, u) for n, u in updates if u < limits["update_ratio_low"]]
    fast = [(n, u) for n, u in updates if u > limits["update_ratio_high"]]
    if slow:
        symptoms.append(Symptom(
            "updates too small",
            f"one step changes {_layers(slow)} by less than {limits['update_ratio_low']:g} of their size "
            f"(smallest {min(u for _, u in slow):.1e}; around 1e-3 is healthy)",
            f"||dW||/||W|| < {limits['update_ratio_low']:g}", [n for n, _ in slow],
            ["learning rate too small", "vanishing gradients in those layers"],
            [("raise the learning rate, or use Adam, which rescales each parameter's step", NOTEBOOKS["10"]),
             ("fix the vanishing gradient first", NOTEBOOKS["02"])]))
    if fast:
        symptoms.append(Symptom(
            "updates too large",
            f"one step changes {_layers(fast)} by more than {limits['update_ratio_high']:g} of their size "
            f"(largest {max(u for _, u in fast):.1e}; around 1e-3 is healthy)",
            f"||dW||/||W|| > {limits['update_ratio_high']:g}", [n for n, _ in fast],
            ["learning rate too large", "exploding gradients in those layers"],
            [("lower the learning rate; warm it up", NOTEBOOKS["10"]), ("clip the gradient norm", NOTEBOOKS["06"])]))
    return symptoms


def _layers(items, noun="layer"):
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _have(items):
    return "has" if len(items) == 1 else "have"


def _their(items):
    return "its" if len(items) == 1 else "their"


def _exploding(evidence, threshold, layers):
    return Symptom(
        "exploding gradients", evidence, threshold, layers,
        ["weights too large for the depth (per-layer gain above 1)", "a recurrent matrix with singular values above 1/gamma",
         "no normalization"],
        [("lower the init scale: He for ReLU, Xavier for tanh", NOTEBOOKS["04"]),
         ("clip the gradient norm", NOTEBOOKS["06"]), ("add BatchNorm or LayerNorm", NOTEBOOKS["09"]),
         ("see how the product of Jacobians grows", NOTEBOOKS["03"])])


@torch.no_grad()
def _first_nonfinite(patient, X):
    return [first_nonfinite_output(patient, X)]
