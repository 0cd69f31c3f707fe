"""Exercises of notebook 09, normalization and weight constraints."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core.models import MLP
from ..lessons.weight_constraints import MaxNorm, constrain_weights_
from .judging import Exercise, Number, known_mistake, mlp_mismatch, per_layer_factor, redrawn_mlp

__all__ = ["EXERCISES"]

_BATCH = (1.0, 2.0, 6.0)   # one unit's pre-activations over a batch of three examples


def _batchnorm_output():
    """What ``nn.BatchNorm1d`` in training mode (gamma = 1, beta = 0) gives the batch's third example."""
    layer = nn.BatchNorm1d(1).train()
    with torch.no_grad():
        return layer(torch.tensor(_BATCH).unsqueeze(1))[2, 0].item()


_BATCHNORM = Number(
    _batchnorm_output,
    explain="measured with nn.BatchNorm1d in training mode: {expected}. The mean is 3, the biased variance "
            "(4 + 1 + 9) / 3 = 14/3, and (6 - 3) / sqrt(14/3) = 1.389.",
    hint="subtract the batch mean, then divide by the batch standard deviation, the square root of the mean "
         "squared deviation.",
    mistakes=[(3 / math.sqrt(7), "that divides the squared deviations by m - 1 = 2; BatchNorm normalizes with the "
                                 "biased batch variance, 1/m (the formula above)."),
              (3 / (14 / 3), "that divides by the variance; BatchNorm divides by its square root, the standard deviation."),
              (6 / math.sqrt(14 / 3), "subtract the batch mean first: z - mu = 6 - 3."),
              (6 / math.sqrt(7), "subtract the batch mean first, and use the biased variance, 1/m."),
              (6.0, "gamma = 1 and beta = 0 do not make BatchNorm the identity: it still standardizes over the batch.")])

_W_NORM, _GRAD_NORM, _LR = 3.0, 8.0, 0.5
_LONGER = Number(
    math.hypot(_W_NORM, _LR * _GRAD_NORM),
    explain="the step -lr g is orthogonal to W, so ||W - lr g||^2 = 3^2 + (0.5 * 8)^2 = 9 + 16 = 25: ||W|| grows to 5.",
    hint="the gradient is orthogonal to W, so the step -lr g and W are the two legs of a right triangle.",
    mistakes=[(_W_NORM, "the step is orthogonal to W, but it is not zero: Pythagoras lengthens W."),
              (_W_NORM - _LR * _GRAD_NORM, "norms add like legs of a right triangle here, not along a line: the step "
                                           "is orthogonal to W."),
              (_LR * _GRAD_NORM - _W_NORM, "norms add like legs of a right triangle here, not along a line: the step "
                                           "is orthogonal to W."),
              (_W_NORM + _LR * _GRAD_NORM, "norms add like legs of a right triangle here, not along a line: the step "
                                           "is orthogonal to W."),
              (math.hypot(_W_NORM, _GRAD_NORM), "the step is lr * g, of length 0.5 * 8 = 4, not 8."),
              (_W_NORM ** 2 + (_LR * _GRAD_NORM) ** 2, "25 is the squared norm; take its square root.")])

_DEPTH, _WIDTH, _GAIN = 10, 128, 1.5   # the notebook's RELU_NET with EXPLODING_SCALE
_ROW_LENGTH = _GAIN * math.sqrt(2)     # a row of He init times 1.5: sqrt(n * 2 * 1.5^2 / n)
_C_MISTAKES = [
    (1.0, "with c = 1 each row has n Var(w) = 1, and ReLU halves the second moment: rho = sqrt(1/2)."),
    (2.0, "the bound c is a row's length sqrt(n Var(w)), so rho = c * sqrt(1/2): c = 2 gives 1.41."),
    (0.5, "the bound c is a row's length sqrt(n Var(w)), so rho = c * sqrt(1/2): c = 1/2 gives 0.35."),
    (math.sqrt(2 / _WIDTH), "that is He's standard deviation of one weight; max-norm bounds a whole row, whose length "
                            "is sqrt(n) times it."),
]


def _max_norm_of(model):
    """The max-norm bound ``c`` every hidden layer of ``model`` carries, or why there is none."""
    bounds = set()
    for layer in model.hidden_linears():
        found = [m.max_norm for m in (layer.parametrizations.weight if parametrize.is_parametrized(layer, "weight") else [])
                 if isinstance(m, MaxNorm)]
        if not found:
            return None, ("put the max-norm constraint on every hidden layer: "
                          'gc.weight_constraints.constrain_weights_(model, "max_norm", max_norm=c).')
        bounds.add(found[0])
    if len(bounds) > 1:
        return None, "use one bound c for every layer."
    return bounds.pop(), None


def _max_norm_repair(model):
    why = mlp_mismatch(model, activation="relu", init="kaiming", width=_WIDTH, min_depth=_DEPTH)
    if why:
        return False, why
    if not math.isclose(model.init_scale, _GAIN, rel_tol=1e-6):
        return False, (f"keep init_scale=EXPLODING_SCALE (1.5; got {model.init_scale:g}): the exercise repairs the "
                       "exploding network with the constraint, not with the init.")
    c, why = _max_norm_of(model)
    if why:
        return False, why
    rho = per_layer_factor(redrawn_mlp(model))   # the recipe, drawn from seed 0, with your constraint
    measured = f"Measured per-layer factor with c = {c:.4g} (your settings, weights drawn with seed 0): {rho:.3f}."
    if abs(rho - 1) <= 0.05:
        return True, (f"{measured} Every row is cut to length c, so n Var(w) = c^2 and rho = c * sqrt(1/2): "
                      "c = sqrt(2) gives 1, He's own row length.")
    if c >= _ROW_LENGTH * 1.05:
        return False, (f"{measured} He init times 1.5 gives rows about {_ROW_LENGTH:.2f} long: a bound above that "
                       "cuts nothing, and the network still explodes.")
    hint = known_mistake(c, _C_MISTAKES)
    if hint:
        return False, f"{hint} {measured}"
    direction = "too large: lower c" if rho > 1 else "too small: raise c"
    return False, f"{measured} The bound is {direction}; with ReLU, rho = c * sqrt(1/2)."


def _constrained(c):
    def make():
        model = MLP(depth=_DEPTH, width=_WIDTH, activation="relu", init="kaiming", init_scale=_GAIN)
        return constrain_weights_(model, "max_norm", max_norm=c)
    return make


EXERCISES = [
    Exercise("09.1", "predict",
             "One unit's pre-activations over a batch of three examples are z = (1, 2, 6). What does BatchNorm "
             "(training mode, gamma = 1, beta = 0) output for the third example?",
             _BATCHNORM, _batchnorm_output, r"""
BatchNorm standardizes the unit over the batch with the batch mean and the *biased* batch variance:
$$\mu = \tfrac13(1 + 2 + 6) = 3,\qquad \sigma^2 = \tfrac13\big((1-3)^2 + (2-3)^2 + (6-3)^2\big) = \tfrac{14}{3},\qquad
\mathrm{BN}(6) = \frac{6 - 3}{\sqrt{14/3 + \epsilon}} \approx 1.389 .$$
Run it:
```python
torch.nn.BatchNorm1d(1).train()(torch.tensor([[1.0], [2.0], [6.0]]))
# -0.926, -0.463, 1.389
```
(The running variance that BatchNorm keeps for evaluation uses the unbiased $1/(m-1)$; the normalization in
training uses $1/m$.) The output of one example depends on its two companions: change the 1 to a 5 and the third
output changes too.
"""),
    Exercise("09.2", "compute",
             "A layer followed by BatchNorm has ||W|| = 3, and its gradient has norm 8. After one SGD step with "
             "learning rate 0.5, what is ||W||?",
             _LONGER, lambda: 5.0, r"""
With BatchNorm the gradient is orthogonal to the weights, $\langle W, \nabla L\rangle = 0$ (section 3). The step
$-\eta\,g$ has length $0.5 \times 8 = 4$, at a right angle to $W$, so
$$\lVert W - \eta g\rVert^2 = \lVert W\rVert^2 + \eta^2\lVert g\rVert^2 = 3^2 + 4^2 = 25,\qquad \lVert W\rVert = 5 .$$
The step moves the weights but can only lengthen them, and the gradient at the longer weights is $\tfrac35$ times what
it would be at the old length ($\nabla L(aW) = \nabla L(W)/a$): the effective learning rate decays by itself.
"""),
    Exercise("09.3", "build",
             "Build the exploding network gc.MLP(**RELU_NET, init_scale=EXPLODING_SCALE) and put a max-norm "
             "constraint on it with a bound c that makes its per-layer factor 1 (within 5%).",
             _max_norm_repair, _constrained(math.sqrt(2)), r"""
He init times 1.5 gives each row (a unit's incoming weights) a length of about $\sqrt{n \cdot 2 \cdot 1.5^2/n} = 1.5\sqrt2 \approx 2.1$.
A max-norm bound $c$ below that cuts every row to length $c$: $n\,\mathrm{Var}(w) = c^2$. ReLU's $\mathbb{E}[f'^2] = \tfrac12$ then gives
notebook 02's factor
$$\rho = \sqrt{n\,\mathrm{Var}(w)\,\mathbb{E}[f'^2]} = \frac{c}{\sqrt2},$$
and $\rho = 1$ needs $c = \sqrt2$, the row length of plain He init:
```python
answer = gc.MLP(**RELU_NET, init_scale=EXPLODING_SCALE)
gc.weight_constraints.constrain_weights_(answer, "max_norm", max_norm=2 ** 0.5)
```
The notebook's $c = 1$ gives $\rho = 1/\sqrt2$ and the mild decay $2^{-4.5}$ over nine layers.
""", tuple((_constrained(c), words) for c, words in _C_MISTAKES[:2])
       + ((_constrained(3.0), "cuts nothing"), (lambda: MLP(depth=_DEPTH, width=_WIDTH, activation="relu", init="kaiming",
                                                            init_scale=_GAIN), "constrain_weights_"))),
]
