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
_GPT2_SCALE = 1 / math.sqrt(2 * _DEPTH)
_SCALE_MISTAKES = [
    (1 / math.sqrt(_DEPTH), "each block has two residual layers (attention and FFN), so N = 2 * depth = 16 and "
                            "the factor is 1/sqrt(16)."),
    (1 / (2 * _DEPTH), "GPT-2 scales by 1/sqrt(N), the square root: 1/sqrt(16), not 1/16."),
    (1 / _DEPTH, "GPT-2 scales by 1/sqrt(N) with N = 2 * depth residual layers: 1/sqrt(16)."),
]


def _gpt2_scaled(model):
    if not isinstance(model, RowTransformer):
        return False, f"build a gc.transformers.RowTransformer (got {_checks.describe(model)})."
    if model.placement != "pre":
        return False, (f"keep placement='pre' (got {model.placement!r}): GPT-2 is a Pre-LN Transformer, and the "
                       "scaling is about the residual stream that Pre-LN leaves unnormalized.")
    if len(model.blocks) != _DEPTH:
        return False, f"keep depth={_DEPTH} (got depth={len(model.blocks)}): the factor depends on it."
    scale = model.residual_scale
    if math.isclose(scale, _GPT2_SCALE, rel_tol=0.02):
        return True, (f"1/sqrt(2 * {_DEPTH}) = {scale:.4g}: each of the 16 residual branches starts "
                      "4 times smaller, so their sum has about the size of one unscaled branch.")
    hint = known_mistake(scale, _SCALE_MISTAKES)
    if hint:
        return False, f"{hint} (got residual_scale = {scale:.4g})"
    return False, f"residual_scale = {scale:.4g}; GPT-2 uses 1/sqrt(N), N the number of residual layers."


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
             "Build a Pre-LN gc.transformers.RowTransformer of depth 8 whose residual branches are scaled at "
             "initialization as in GPT-2.",
             _gpt2_scaled, _transformer("pre", _GPT2_SCALE), r"""
GPT-2 (Radford et al. 2019, section 2.3) scales the weights of the residual layers at initialization by $1/\sqrt{N}$, $N$
the number of residual layers. Each block has two of them (attention and FFN), so $N = 2 \times 8 = 16$:
```python
answer = gc.transformers.RowTransformer(depth=8, placement="pre", residual_scale=1 / 16 ** 0.5)
```
The stream after $N$ branches is $x_0 + \sum_{k=1}^{N} F_k$; with independent branches its variance grows by $N\,\mathrm{Var}(F)$,
and scaling each branch's last weights by $1/\sqrt{N}$ keeps that sum at the size of a single unscaled branch.
""", ((_transformer("pre", 1 / math.sqrt(_DEPTH)), "two residual layers"),
      (_transformer("post", _GPT2_SCALE), "placement='pre'"))),
]
