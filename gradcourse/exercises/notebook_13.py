"""Exercises of notebook 13, Transformers: where LayerNorm goes."""

from __future__ import annotations

import math

import torch

from ..core import _checks
from ..core.runtime import generators_restored
from ..lessons.transformers import RowTransformer, block_gradient_norms
from .judging import Choice, Exercise, Number, known_mistake

__all__ = ["EXERCISES"]

_PRE_LN_FACTOR = Number(
    0.5,
    explain="Xiong et al.'s Pre-LN bound on the last layer's gradient scales as 1/sqrt(L): "
            "sqrt(2/8) = 1/2.",
    hint="the Pre-LN bound is O(d sqrt(ln d / L)): d stays the same, only 1/sqrt(L) changes.",
    mistakes=[(0.25, "the bound falls as 1/sqrt(L), not 1/L: sqrt(2/8), not 2/8."),
              (2.0, "the Pre-LN gradient gets smaller with depth: new over old is below 1."),
              (1.0, "that is the Post-LN bound, O(d sqrt(ln d)), which does not depend on L; the Pre-LN one does."),
              (1 / 16, "the bound falls as 1/sqrt(L) with L the number of layers: sqrt(2/8).")])

_DEPTH = 8
_BRANCHES = 2 * _DEPTH   # an attention and an FFN branch per block, each added to the stream
_BRANCH_SCALE = 1 / math.sqrt(_BRANCHES)
_SCALE_MISTAKES = [
    (1 / math.sqrt(_DEPTH), "each block adds two branches to the stream, attention and the FFN (section 1): 16 of them, "
                            "and with 1/sqrt(8) their sum has 16/8 = 2 times one branch's variance. (1/sqrt(8) is "
                            "GPT-2's 1/sqrt(N) if N counts blocks; the paper does not say, and this question counts "
                            "what is added: branches.)"),
    (1 / _BRANCHES, "variances add as squares of the scale: 16 c^2 = 1 needs c = 1/sqrt(16); with c = 1/16 the sum "
                    "is 16/256 = 1/16 of one branch."),
    (1 / _DEPTH, "16 c^2 = 1 needs c = 1/sqrt(16) = 1/4: count both branches of a block and take the square root."),
    (1.0, "unscaled, the 16 branches add 16 times one branch's variance: the stream's growth this exercise removes."),
]


def _sum_of_branches(model):
    if not isinstance(model, RowTransformer):
        return False, f"build a gc.transformers.RowTransformer (got {_checks.describe(model)})."
    if model.placement != "pre":
        return False, (f"keep placement='pre' (got {model.placement!r}): in Pre-LN every branch reads LN(x) and "
                       "adds to an unnormalized stream, so the branches' variances add up; Post-LN normalizes the "
                       "sum after every block.")
    if len(model.blocks) != _DEPTH:
        return False, f"keep depth={_DEPTH} (got depth={len(model.blocks)}): the number of branches depends on it."
    scale = model.residual_scale
    added = _BRANCHES * scale ** 2
    if math.isclose(scale, _BRANCH_SCALE, rel_tol=0.02):
        return True, (f"residual_scale = {scale:.4g}: each of the 16 branches has {scale ** 2:.4g} times an unscaled "
                      f"branch's variance, and together they add {added:.3g} branch's worth to the stream. This is "
                      "GPT-2's 1/sqrt(N) with N counted as the branches added to the stream.")
    hint = known_mistake(scale, _SCALE_MISTAKES) or ("each branch's variance is multiplied by residual_scale^2, and "
                                                     "16 of them add up.")
    return False, (f"{hint} (residual_scale = {scale:.4g}: the 16 branches add {added:.3g} times one unscaled "
                   "branch's variance; the exercise wants 1.)")


def _transformer(placement, residual_scale):
    return lambda: RowTransformer(depth=_DEPTH, placement=placement, residual_scale=residual_scale)


def _rezero_gradients():
    with generators_restored():
        torch.manual_seed(0)
        model = RowTransformer(depth=4, placement="rezero")
        generator = torch.Generator().manual_seed(0)
        X, y = torch.randn(32, 784, generator=generator), torch.randint(0, 10, (32,), generator=generator)
        norms = block_gradient_norms(model, X, y)
        alpha = torch.autograd.grad(torch.nn.functional.cross_entropy(model(X), y), model.blocks[-1].alpha)[0]
    report = (f"Measured (seed 0, depth 4): ||dL/dW^(2,l)|| = {', '.join(f'{v:.1g}' for v in norms)}; "
              f"the last block's dL/dalpha = {alpha.item():.2g}.")
    return ("none" if max(norms) == 0 else "all"), report


_REZERO = Choice(["none", "all", "last"], _rezero_gradients, {
    "all": "every branch is multiplied by alpha = 0, and dL/dW of a branch carries that factor alpha.",
    "last": "the last block's branch is multiplied by its alpha = 0 too: dL/dW^(2,L) = alpha * (...) = 0."})

EXERCISES = [
    Exercise("13.1", "compute",
             "Xiong et al.'s Pre-LN bound on the last layer's gradient: by what factor does it change when the "
             "depth L goes from 2 to 8?",
             _PRE_LN_FACTOR, lambda: 0.5, r"""
Theorem 1 of Xiong et al. (2020) bounds the gradient of the last layer's feed-forward weights at initialization:
$\lVert \partial L/\partial W^{2,L}\rVert_F = O\big(d\sqrt{\ln d}\big)$ for Post-LN and $O\big(d\sqrt{\ln d / L}\big)$ for Pre-LN.
With $d$ fixed, the Pre-LN bound scales as $1/\sqrt{L}$:
$$\frac{\sqrt{1/8}}{\sqrt{1/2}} = \sqrt{\tfrac{2}{8}} = \tfrac12 .$$
Why: the Pre-LN stream $x_L = x_0 + \sum_l F_l(\cdot)$ is a sum of $L$ branches of similar size, so $\lVert x_L\rVert$ grows like
$\sqrt{L}$, and the final LayerNorm divides the gradient flowing back into the stack by it.
"""),
    Exercise("13.2", "predict",
             "A ReZero Transformer at initialization (alpha = 0 in every block): which blocks' weights W^(2,l) get a "
             "nonzero gradient: none, all, or only the last?",
             _REZERO, lambda: "none", r"""
A ReZero block computes $x \leftarrow x + \alpha\,F(x)$ with $\alpha = 0$ at initialization. The loss depends on a branch's
weights $W$ only through $\alpha F(x; W)$, so
$$\frac{\partial L}{\partial W} = \alpha\,\frac{\partial L}{\partial x_{\text{out}}}\,\frac{\partial F}{\partial W} = 0$$
for every block. What does get a gradient is $\alpha$ itself, $\partial L/\partial \alpha = \langle \partial L/\partial x_{\text{out}}, F(x)\rangle$:
the first step of training opens the branches, and only then do their weights start to learn. Meanwhile the network is
the identity map from the embedding to the head, with a perfectly conditioned Jacobian, $I$.
"""),
    Exercise("13.3", "build",
             "Every branch of a Pre-LN stack (attention and FFN each count) reads LN(x) and adds a similar, "
             "independent output to the stream. Build a Pre-LN gc.transformers.RowTransformer of depth 8 whose "
             "residual_scale makes the sum of all its branches, at initialization, as large (in variance) as one "
             "unscaled branch.",
             _sum_of_branches, _transformer("pre", _BRANCH_SCALE), r"""
Each block adds two branches to the stream, attention and the FFN (section 1), so a stack of depth 8 adds
$N = 2 \times 8 = 16$:
$$x_L = x_0 + \sum_{k=1}^{16} F_k .$$
`residual_scale` $= c$ multiplies the weights that write into the stream, so every branch's output, and
$\mathrm{Var}(F_k)$ by $c^2$. In Pre-LN each branch reads $\mathrm{LN}(x)$, an input of unit scale however large
the stream has grown, so the unscaled branches have similar variances $v$; independent ones add them:
$$\mathrm{Var}\Big(\sum_{k=1}^{16} F_k\Big) \approx 16\, c^2 v = v \quad\Longrightarrow\quad c = \frac{1}{\sqrt{16}} = \frac14 .$$
```python
answer = gc.transformers.RowTransformer(depth=8, placement="pre",
                                        residual_scale=1 / 16 ** 0.5)
```
This is GPT-2's $1/\sqrt{N}$ (Radford et al. 2019, section 2.3) with $N$ counted as the branches added to the
stream, as `gc.transformers.gpt2_residual_scale(8)` reads it. The paper does not say whether it counts blocks or
branches; counting blocks gives $1/\sqrt{8}$, whose 16 branches add twice one branch's variance.
""", ((_transformer("pre", 1 / math.sqrt(_DEPTH)), "two branches"),
      (_transformer("pre", 1 / _BRANCHES), "variances add as squares"),
      (_transformer("post", _BRANCH_SCALE), "placement='pre'"))),
]
