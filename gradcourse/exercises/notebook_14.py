"""Exercises of notebook 14, one Jacobian in both directions: what the forward signal and the optimizer feel."""

from __future__ import annotations

import torch

from ..core import _checks
from ..core.data import load_mnist
from ..core.models import MLP
from ..core.probes import activation_gradient_norms
from ..core.runtime import generators_restored
from ..lessons.signal_propagation import forward_spreads, layer_signals
from .judging import Choice, Exercise, Number, redrawn_mlp

__all__ = ["EXERCISES"]

_FIRST, _RHO, _LAYER = 0.22, 0.14, 6
_SPREAD = Number(
    _FIRST * _RHO ** (_LAYER - 1),
    explain="from layer 1 to layer 6 the differences pass five layers, each multiplying them by 0.14: "
            "0.22 * 0.14^5 = {expected}.",
    hint="each layer above layer 1 multiplies the spread by rho = 0.14: how many layers lie between layer 1 and "
         "layer 6?",
    mistakes=[(_FIRST * _RHO ** _LAYER, "layer 1's spread has already passed layer 1: five more layers (2 to 6) "
                                        "multiply it, 0.14^5, not 0.14^6."),
              (_FIRST * _RHO ** (_LAYER - 2), "count the layers that multiply: 2, 3, 4, 5 and 6, five factors 0.14."),
              (_RHO ** (_LAYER - 1), "start from layer 1's spread, 0.22, and multiply it by 0.14^5."),
              (_FIRST * 0.25 ** (_LAYER - 1), "1/4 bounds the sigmoid's derivative alone; each layer's factor also "
                                              "carries the weights: rho = 0.14."),
              (_FIRST * _RHO * (_LAYER - 1), "the factors multiply layer after layer: a power, 0.14^5, not 0.14 * 5."),
              (_FIRST / _RHO ** (_LAYER - 1), "the spread shrinks going up: multiply by 0.14 per layer, do not divide.")],
    rel_tol=0.02)

_PROBE, _SEED = 256, 0
_RELU_NET = dict(depth=30, width=64, activation="relu", init="default")   # notebook 02's sweep, at depth 30


def _seeded(seed=_SEED, **model_options):
    """``MLP(**model_options)`` drawn after ``torch.manual_seed(seed)``; torch's generator is given back."""
    with generators_restored():
        torch.manual_seed(seed)
        return MLP(**model_options)


def _which_falls_more():
    X, y = load_mnist("train", limit=_PROBE)
    s = layer_signals(_seeded(**_RELU_NET), X, y)
    weights = s.weight_gradients[0] / s.weight_gradients[-1]
    signal = s.activation_gradients[0] / s.activation_gradients[-1]
    report = (f"Measured (seed {_SEED}, {_PROBE} digits): ||dL/dW_1|| / ||dL/dW_30|| = {weights:.2g}, "
              f"||dL/dh_1|| / ||dL/dh_30|| = {signal:.2g}. Layer 1's input, the pixels (||H_0|| = "
              f"{s.input_norms[0]:.3g}), is {s.input_norms[0] / s.input_norms[-1]:.2g} times layer 30's.")
    return ("activations" if signal < weights else "weights"), report


_FALLS_MORE = Choice(["weights", "activations", "equal"], _which_falls_more, {
    "weights": "the weight gradient dL/dW_l = delta_l h_(l-1)^T carries the layer's input too: layer 1 reads the raw pixels, layer 30 a "
               "signal that shrank on its way up, so the weight gradient falls less than the back-propagated one.",
    "equal": "the weight gradient is the backward signal times the layer's input, and the inputs of layers 1 and 30 "
             "differ in size: the pixels against a signal that shrank on its way up."})

_DEPTH, _KEPT = 10, 0.1


def _keeps_both_directions(model):
    if not isinstance(model, MLP):
        return False, f"build a gc.MLP (got {_checks.describe(model)})."
    if len(model.blocks) < _DEPTH or model.blocks[0].linear.in_features != 784:
        return False, f"keep a deep network on the digits: depth={_DEPTH} or more, 784 inputs."
    X, y = load_mnist("train", limit=_PROBE)
    rebuilt = redrawn_mlp(model, seed=_SEED).double()
    spread = forward_spreads(rebuilt, X.double())
    with generators_restored():
        grads = activation_gradient_norms(rebuilt, X.double(), y)
    kept, passed = spread[-1] / spread[0], grads[0] / grads[-1]
    depth = len(spread)
    measured = (f"Rebuilt with seed {_SEED} and measured on the {_PROBE} probe digits: the relative spread goes from "
                f"{spread[0]:.2g} at layer 1 to {spread[-1]:.2g} at layer {depth} ({kept:.2g} times layer 1's); "
                f"||dL/dh_1|| / ||dL/dh_{depth}|| = {passed:.2g}.")
    if kept >= _KEPT and _KEPT <= passed <= 1 / _KEPT:
        return True, (f"{measured} Forward and backward both keep their size: the same Jacobians, "
                      "with a per-layer factor near 1, act in both directions.")
    if kept < _KEPT:
        factor = kept ** (1 / (depth - 1))
        return False, (f"{measured} The differences between digits shrink by x{factor:.2g} per layer. Choose weights "
                       "whose factor sqrt(n Var(w) E[f'(z)^2]) is near 1 (He init for ReLU, LeCun or Xavier for "
                       "tanh), or normalize every layer.")
    way = "grows" if passed > 1 else "shrinks"
    why = ("each block's Jacobian is I + dF/dh, and branches as large as He init makes them add to it layer after "
           "layer (notebook 07)" if model.blocks[-1].residual else
           "the weights are far from the scale whose per-layer factor is 1")
    return False, f"{measured} The forward spread is kept, but the gradient {way} on its way down: {why}."


def _network(**model_options):
    return lambda: MLP(depth=_DEPTH, **model_options)


EXERCISES = [
    Exercise("14.1", "compute",
             "The relative spread of the deep sigmoid network is 0.22 at layer 1, and each layer above multiplies "
             "it by rho = 0.14. What is it at layer 6?",
             _SPREAD, lambda: _FIRST * _RHO ** (_LAYER - 1), r"""
Each layer multiplies the differences between digits by its Jacobian $J_l = \mathrm{diag}(\sigma'(z_l))\,W_l$, whose
typical factor is $\rho = \sqrt{n\,\mathrm{Var}(w)}\;|\sigma'| \approx \sqrt{1/3}\cdot\tfrac14 \approx 0.14$. The output of
layer 1 has spread 0.22; layers 2, 3, 4, 5 and 6 each multiply it by $\rho$:
$$s_6 = s_1\,\rho^{\,6-1} = 0.22 \times 0.14^5 \approx 1.2\times10^{-5}.$$
Five layers took away nearly five orders of magnitude: $0.14^5 \approx 5.4\times10^{-5}$. Section 1 measures this
decay and the same factor in the gradient going down.
"""),
    Exercise("14.2", "predict",
             "In notebook 02's 30-layer ReLU network with PyTorch's default init, which falls more from the last "
             "hidden layer to the first: the weight gradient ||dL/dW_l|| or the back-propagated ||dL/dh_l||?",
             _FALLS_MORE, lambda: "activations", r"""
The weight gradient is the backward signal times the layer's forward input,
$\partial L/\partial W_l = \sum_b \delta_{l,b}\, h_{l-1,b}^{\top}$ with $\delta_l = \partial L/\partial z_l$. Going from layer 30 down
to layer 1, $\delta$ shrinks like $\lVert\partial L/\partial h_l\rVert$, by about $\rho = \sqrt{1/6} \approx 0.41$ per layer
(PyTorch's default init, ReLU). But the inputs grow in the same direction: layer 1 reads the standardized
pixels, $\lVert H_0\rVert \approx \sqrt{784 \cdot 256} \approx 450$ over 256 digits, while the forward signal shrank by the same
factor 0.41 on its way up until the random biases hold it, so layer 30 reads a signal tens of times smaller.
So $\lVert\partial L/\partial h_1\rVert / \lVert\partial L/\partial h_{30}\rVert$ is the smaller ratio
("activations"): about $5\times10^{-12}$ against $10^{-9}$ for the weights at seed 0. Notebook 02's sweep plots the first,
its explorer the second.
"""),
    Exercise("14.3", "build",
             "Build a gc.MLP of depth 10 whose forward spread keeps at least a tenth of its size from layer 1 to "
             "layer 10, and whose ||dL/dh_1|| / ||dL/dh_10|| lies between 0.1 and 10.",
             _keeps_both_directions, _network(activation="relu", init="kaiming"), r"""
One Jacobian governs both directions, so one choice fixes both: make every layer's factor
$\rho = \sqrt{n\,\mathrm{Var}(w)\,\mathbb{E}[f'(z)^2]}$ close to 1. With ReLU, $\mathbb{E}[f'^2] = 1/2$ and He init,
$\mathrm{Var}(w) = 2/n$, gives $\rho = 1$:
```python
answer = gc.MLP(depth=10, activation="relu", init="kaiming")
```
The spread then falls by about 2 over ten layers (ReLU makes the digits' representations slowly more alike, a
correlation effect of notebook 15) and the gradient keeps its size. Also right: tanh with `init="lecun"`,
`"xavier"` or `"orthogonal"`, or the sigmoid network with `norm="batch"` (BatchNorm rescales every layer's
input, notebook 09). Too large a scale keeps the forward spread but makes the gradient grow: `gc.MLP(depth=10,
activation="tanh", init="normal")` fails for that reason.
""", ((_network(activation="sigmoid", init="default"), "shrink by"),
      (_network(activation="tanh", init="normal"), "gradient grows"))),
]
