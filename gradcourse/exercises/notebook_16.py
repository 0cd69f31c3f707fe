"""Exercises of notebook 16, deep residual networks without normalization."""

from __future__ import annotations

import math

from ..core import _checks
from ..lessons.normalization_free import ResidualMLP, fixup_scale
from .judging import Exercise, Number, known_mistake

__all__ = ["EXERCISES"]

_RESNET50 = Number(
    16 ** -0.25,
    explain="16^(-1/4) = 1/2: m = 3 weight layers per bottleneck branch give the exponent -1/(2m - 2) = -1/4, so "
            "the 1x1 and 3x3 convolutions start at half their He scale, the last 1x1 at 0 (the authors' "
            "fixup_resnet50 uses num_layers ** (-0.25) with num_layers = 3 + 4 + 6 + 3 = 16).",
    hint="Fixup scales the branch weights by L^(-1/(2m - 2)): L is the number of residual branches (16), m the "
         "number of weight layers in one branch.",
    mistakes=[(16 ** -0.5, "that is the exponent for m = 2 (a basic block); a bottleneck branch has three weight "
                           "layers (1x1, 3x3, 1x1), so m = 3 and the exponent is -1/(2*3 - 2) = -1/4."),
              (16 ** (-1 / 6), "the exponent is -1/(2m - 2) = -1/4, not -1/(2m) = -1/6."),
              (1 / 16, "Fixup does not divide by L: the change of a branch grows like c^(2m - 2), so c = L^(-1/(2m - 2))."),
              (1 / math.sqrt(32), "1/sqrt(2L) is GPT-2's factor on the residual layers; Fixup's exponent depends on "
                                  "the layers per branch: L^(-1/(2m - 2)) with m = 3."),
              (16 ** 0.25, "Fixup scales the branch weights down: the exponent is negative, 16^(-1/4).")])

_FIRST_STEP = Number(
    3,
    explain="step 1: the classifier is 0, so no gradient enters the stack and only the classifier moves; step 2: "
            "the gradient reaches every block through the identity path, and each branch's last layer W2 (and "
            "the input layer) gets one, but W1's gradient passes through W2 = 0; step 3: W2 has moved, and W1 "
            "and the multipliers get their first gradient. The stack opens from the output inwards.",
    hint="write the gradient of W1 in a branch x + s * W2 relu(W1 x + b1) + b2: which factors in it are 0 at "
         "initialization, and at which step does each of them first move?",
    mistakes=[(1, "at step 1 the classifier is 0, so dLoss/dx_L = W_out^T (dLoss/dlogits) = 0: no gradient enters the "
                  "stack at all."),
              (2, "at step 2 the gradient reaches every block, but W1's gradient is W2^T(...) and W2 is still 0: it "
                  "gets its first gradient at step 2 and moves only after it.")])

_DEPTH = 16
_FIXUP = fixup_scale(_DEPTH)
_SCALE_MISTAKES = [(_DEPTH ** -0.25, "that is L^(-1/4), the exponent for three layers per branch; these branches "
                                     "have m = 2 weight layers: L^(-1/(2*2 - 2)) = L^(-1/2)."),
                   (1 / _DEPTH, "Fixup's factor is L^(-1/(2m - 2)) = L^(-1/2) for m = 2, not 1/L."),
                   (1 / math.sqrt(2 * _DEPTH), "1/sqrt(2L) is GPT-2's factor; Fixup's is L^(-1/(2m - 2)) = 1/sqrt(L) "
                                               "for two layers per branch.")]


def _fixup_mismatch(model):
    """Why ``model`` is not Fixup's recipe at depth 16 (a sentence), or None if it is."""
    if not isinstance(model, ResidualMLP):
        return f"build a gc.normalization_free.ResidualMLP (got {_checks.describe(model)})."
    if len(model.blocks) != _DEPTH:
        return f"keep depth={_DEPTH} (got depth={len(model.blocks)}): Fixup's factor depends on it."
    if model.norm is not None:
        return "Fixup uses no normalization: leave norm=None."
    if model.last_scale != 0:
        return (f"each branch's last layer starts at 0 in Fixup (got last_scale={model.last_scale:g}): "
                "then every block starts as the identity.")
    if model.head_scale != 0:
        return f"Fixup starts the classifier at 0 too (got head_scale={model.head_scale:g})."
    if model.alpha != 1.0:
        return (f"Fixup's scalar multiplier starts at 1 (got alpha={model.alpha!r}); alpha=0 is SkipInit, and with "
                "W2 = 0 a multiplier of 0 would stop W2 from learning.")
    if not math.isclose(model.first_scale, _FIXUP, rel_tol=0.02):
        hint = known_mistake(model.first_scale, _SCALE_MISTAKES) or "Fixup scales W1 by L^(-1/(2m - 2))."
        return f"{hint} (got first_scale={model.first_scale:.4g})"
    return None


def _fixup_built(model):
    why = _fixup_mismatch(model)
    if why:
        return False, why
    return True, (f"W1 times 16^(-1/2) = {model.first_scale:.4g}, W2 and the classifier 0, a multiplier of 1 on each "
                  "branch: every block starts as the identity, and the first loss is ln 10 whatever the input.")


def _fixup(first_scale=_FIXUP, last_scale=0.0, head_scale=0.0, alpha=1.0):
    return lambda: ResidualMLP(depth=_DEPTH, alpha=alpha, first_scale=first_scale, last_scale=last_scale,
                               head_scale=head_scale)


EXERCISES = [
    Exercise("16.1", "compute",
             "Fixup for ResNet-50: 16 bottleneck blocks, each branch three weight layers. By what factor does Fixup "
             "scale the He-initialized weights inside the branches?",
             _RESNET50, lambda: 16 ** -0.25, r"""
Fixup scales the weight layers inside each residual branch by $L^{-1/(2m-2)}$, where $L$ is the number of residual
branches and $m$ the number of weight layers in one branch. ResNet-50 has $3 + 4 + 6 + 3 = 16$ bottleneck blocks, each
branch a $1\times1$, a $3\times3$ and a $1\times1$ convolution, so $m = 3$:
$$L^{-1/(2m-2)} = 16^{-1/4} = \tfrac12 .$$
Why: scaling every weight of a branch by $c$ multiplies the branch's gradient with respect to each weight by $c^{m-1}$, so an SGD
step changes the branch by $\eta\, c^{2m-2}$ (times what it would be at $c = 1$); the $L$ branches add up to
$\eta\, L\, c^{2m-2}$, which stays $O(\eta)$, independent of depth, when $c^{2m-2} = 1/L$. The authors' code
(`fixup_resnet50`) initializes the first two convolutions with He's standard deviation times `num_layers ** (-0.25)`
and the last at 0.
"""),
    Exercise("16.2", "predict",
             "A Fixup network (W2 = 0 in every branch, the classifier 0) trained by SGD: at which step does a branch's "
             "first layer W1 first get a nonzero gradient?",
             _FIRST_STEP, lambda: 3, r"""
In block $l$, $x_l = x_{l-1} + s\,(W_2\,\mathrm{relu}(W_1 x_{l-1} + b_1) + b_2)$, and the logits are $W_{\text{out}} x_L + b_{\text{out}}$.
At initialization $W_2 = 0$, $b_2 = 0$, $W_{\text{out}} = 0$, $b_{\text{out}} = 0$.

* **Step 1.** $\partial\mathcal{L}/\partial x_L = W_{\text{out}}^{\top}\,\partial\mathcal{L}/\partial\text{logits} = 0$: nothing enters the stack.
  Only the classifier gets a gradient ($\partial\mathcal{L}/\partial W_{\text{out}} = (\partial\mathcal{L}/\partial\text{logits})\, x_L^{\top}$).
* **Step 2.** $W_{\text{out}} \ne 0$, so $g = \partial\mathcal{L}/\partial x_L \ne 0$, and it reaches every block unchanged (each
  block's Jacobian is $I$ while $W_2 = 0$). $\partial\mathcal{L}/\partial W_2 = s\, g\, \mathrm{relu}(\cdot)^{\top} \ne 0$, but
  $\partial\mathcal{L}/\partial W_1 = \big(D\, W_2^{\top} s\, g\big)\, x^{\top} = 0$ and $\partial\mathcal{L}/\partial s = \langle g, W_2\,\mathrm{relu}(\cdot) + b_2\rangle = 0$.
* **Step 3.** $W_2 \ne 0$ now: $W_1$ and $s$ get their first gradient. The answer is **3**.

Compare exercise 13.2 (ReZero, $\alpha = 0$): there every branch weight waits one step for $\alpha$ to move; here the zeros
sit in $W_2$ and the classifier, and the network opens from the output inwards. The next cell measures it with
`gc.normalization_free.first_gradient_steps`.
"""),
    Exercise("16.3", "build",
             "Build Fixup's initialization for a 16-block gc.normalization_free.ResidualMLP from its ingredients "
             "(alpha, first_scale, last_scale, head_scale).",
             _fixup_built, _fixup(), r"""
Fixup's three rules, for $L = 16$ branches of $m = 2$ weight layers and no normalization:
1. the last layer of each branch and the classifier start at 0: `last_scale=0`, `head_scale=0`;
2. the other branch layers use a standard init (He) scaled by $L^{-1/(2m-2)} = 16^{-1/2} = 0.25$: `first_scale=0.25`;
3. a scalar multiplier, initialized at 1, on each branch: `alpha=1.0` (the Linear layers' biases, initialized at 0,
   play the part of the paper's scalar biases).
```python
answer = gc.normalization_free.ResidualMLP(depth=16, alpha=1.0, first_scale=16 ** -0.5,
                                           last_scale=0.0, head_scale=0.0)
```
`gc.normalization_free.seeded_network("Fixup", depth=16)` builds the same network from a seed.
""", ((_fixup(last_scale=1.0), "last layer starts at 0"), (_fixup(head_scale=1.0), "classifier at 0 too"),
      (_fixup(first_scale=_DEPTH ** -0.25), "m = 2 weight layers"), (_fixup(alpha=0.0), "multiplier starts at 1"))),
]
