"""Exercises of notebook 07, residual connections."""

from __future__ import annotations

import math

import torch

from ..core import _checks
from ..core.data import load_mnist
from ..core.models import MLP, PreActivationBlock
from ..lessons.residual import stream_statistics
from ..core.runtime import generators_restored
from .judging import Exercise, Number, redrawn_mlp

__all__ = ["EXERCISES"]

_CHAIN = Number(
    1.25 ** 10,
    explain="each block's Jacobian is 1 + 1/4 = 1.25, and ten of them multiply: 1.25^10 = 9.31. Without the "
            "skips the same branches give (1/4)^10 = 9.5e-7.",
    hint="a residual block's derivative is 1 + dF/dh; the chain rule multiplies one per block.",
    mistakes=[(0.25 ** 10, "that is the plain chain, (dF/dh)^10; each residual block adds the identity: 1 + 1/4."),
              (1.0, "1 is only the identity term of the expansion; the product of (1 + 1/4) over ten blocks is larger."),
              (1 + 10 * 0.25, "1 + 10 * 1/4 keeps only the terms with at most one branch; the product (1 + 1/4)^10 has "
                              "all of them."),
              (1.25 ** 9, "count the blocks: ten blocks give ten factors 1 + 1/4."),
              (1.25 ** 11, "count the blocks: ten blocks give ten factors 1 + 1/4."),
              (2.0 ** 10, "the branch's derivative is 1/4, not 1: each factor is 1 + 1/4.")])

_SEED, _WIDTH, _DEPTH, _PROBE, _BLOCK = 0, 64, 50, 256, 10


def _notebook_stream(seed=_SEED):
    """The mean of the stream after every block of notebook 07's 50-layer ReLU network with BatchNorm and
    residual=True, built from ``seed`` (torch's generators restored afterwards), on its 256 probe digits."""
    X, _ = load_mnist("train", limit=_PROBE)
    with generators_restored():
        torch.manual_seed(seed)
        model = MLP(width=_WIDTH, depth=_DEPTH, activation="relu", init="kaiming", norm="batch", residual=True)
    return stream_statistics(model, X)["mean"]


def _mean_after_block_10():
    return _notebook_stream()[_BLOCK - 1]


_EACH = 1 / math.sqrt(2 * math.pi)
_STREAM = Number(
    _mean_after_block_10,
    explain=f"BatchNorm makes each branch's pre-activation about N(0, 1), and E[relu(z)] = 1/sqrt(2 pi) = {_EACH:.3f}, "
            f"so every block adds about 0.4 to the mean: 10 * 0.399 = 3.99, measured {{expected}}.",
    hint="each block adds relu(BN(...)) to the stream, and BN makes the pre-activation about N(0, 1): what is "
         "E[relu(z)] for z ~ N(0, 1), and how many blocks have added it by block 10?",
    mistakes=[(10 * 0.5, "1/2 is E[relu(z)^2], the second moment; the mean is E[relu(z)] = 1/sqrt(2 pi) = 0.399."),
              (10 * math.sqrt(0.5), "sqrt(1/2) is the rms of relu(z); the mean is E[relu(z)] = 1/sqrt(2 pi) = 0.399."),
              (0.0, "a ReLU's output is never negative, so each block can only add to the stream's mean."),
              (_EACH, "that is one block's share; the stream after block 10 is the sum of ten of them."),
              (9 * _EACH, "count the blocks: block 1 (the plain one) outputs a ReLU too, so ten blocks have added "
                          "their mean by block 10.")],
    rel_tol=0.05)

_ACTIVATION_HINTS = {
    "relu": "with ReLU every branch adds a non-negative output.",
    "leaky_relu": "LeakyReLU's negative side, 0.01 z, barely changes the branch's mean.",
    "elu": "ELU's negative side is bounded below by -1 while its positive side is not: the branch's mean is still "
           "positive.",
    "gelu": "GELU's negative side is small: the branch's mean is still positive.",
    "silu": "SiLU's negative side is small: the branch's mean is still positive.",
    "sigmoid": "a sigmoid's output lies in (0, 1), with mean 1/2 for a symmetric input: every block adds 1/2.",
}


def _no_drift(model):
    if not isinstance(model, MLP):
        return False, f"build a gc.MLP (got {_checks.describe(model)})."
    if isinstance(model.blocks[-1], PreActivationBlock):
        return False, "that is the pre-activation block of the cell above; keep residual=True and find another fix."
    if len(model.blocks) < _DEPTH or not getattr(model.blocks[-1], "residual", False):
        return False, f"keep the network of the cell above: depth={_DEPTH} and residual=True (the skips stay)."
    if not isinstance(model.blocks[-1].norm, torch.nn.BatchNorm1d):
        return False, "keep norm='batch': the exercise is about what the branches add, not their scale."
    X, y = load_mnist("train", limit=_PROBE)
    model = redrawn_mlp(model)   # the recipe, drawn from seed 0: a copy, the learner's network is left alone
    mean = stream_statistics(model, X)["mean"][_DEPTH - 2]
    measured = (f"Measured mean of the stream after block {_DEPTH - 1} (your settings, weights drawn with seed 0): "
                f"{round(mean, 2) + 0.0:.2f}.")   # no "-0.00"
    if abs(mean) < 1:
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(model.train()(X), y).item()
        return True, (f"{measured} A branch whose output takes either sign adds nothing to the mean. (The loss at "
                      f"initialization is still {loss:.1f}, against ln 10 = 2.3: the stream's spread still grows "
                      "with every block, which the pre-activation block's last normalization removes.)")
    return False, f"{_ACTIVATION_HINTS.get(model.activation, 'the branch output still has a positive mean.')} {measured}"


def _residual_mlp(activation):
    return lambda: MLP(width=_WIDTH, depth=_DEPTH, activation=activation, init="kaiming", norm="batch", residual=True)


EXERCISES = [
    Exercise("07.1", "compute",
             "Ten residual blocks h_k = h_{k-1} + F_k(h_{k-1}), each branch with derivative dF_k/dh = 1/4 (a sigmoid "
             "branch at z = 0, weight 1). What is dh_10/dh_0?",
             _CHAIN, lambda: 1.25 ** 10, r"""
Each block's Jacobian is $J_k = 1 + \partial F_k/\partial h_{k-1} = 1 + \tfrac14 = 1.25$, and the chain rule multiplies
the ten of them:
$$\frac{\partial h_{10}}{\partial h_0} = \prod_{k=1}^{10}\Big(1 + \tfrac14\Big) = 1.25^{10} \approx 9.31 .$$
Expanded, $(1 + a)^{10} = 1 + 10a + 45a^2 + \dots + a^{10}$: the identity term 1, then every path through some of the
branches. The plain chain keeps only the last term, $a^{10} = (1/4)^{10} \approx 9.5\times10^{-7}$. Check with autograd:
```python
h0 = torch.tensor(0.0, requires_grad=True)
h = h0
for _ in range(10):
    h = h + 0.25 * h    # a branch with derivative 1/4
torch.autograd.grad(h, h0)[0]
```
Notice that the residual product can also grow: skips make the identity the default, and the branches' derivatives
should be small for the product to stay near 1.
"""),
    Exercise("07.2", "predict",
             "In the 50-layer ReLU network with BatchNorm and residual=True, each block adds relu(BN(W h + b)) to the "
             "stream. Predict the stream's mean after block 10.",
             _STREAM, lambda: 10 / math.sqrt(2 * math.pi), r"""
Block 1 outputs $\mathrm{relu}(\mathrm{BN}(W_1 x + b_1))$ and every later block adds one more such term. BatchNorm
makes each unit's pre-activation have mean 0 and variance 1 over the batch, about $N(0, 1)$ for a sum of many
inputs, and for $z \sim N(0, 1)$
$$\mathbb{E}[\mathrm{relu}(z)] = \int_0^\infty z\,\varphi(z)\,dz = \varphi(0) = \frac{1}{\sqrt{2\pi}} \approx 0.399 .$$
So each block adds about 0.4 to the mean, and after ten blocks it is about $10 \times 0.399 \approx 3.99$; on the
notebook's network the check measures a little less, about 3.9. The next cell prints the mean after blocks 2
($\approx 0.8$) and 49. Deeper in, each block adds less (about 0.3 by block 49: the branch inputs are no longer
Gaussian there), and by block 49 the mean has reached about 17.
"""),
    Exercise("07.3", "build",
             "Keep residual=True and norm='batch' at depth 50, width 64, and change the activation so that the "
             "stream's mean after block 49 stays within +-1.",
             _no_drift, _residual_mlp("tanh"), r"""
The stream drifts because each ReLU branch adds a positive mean. Any branch whose output is as often negative as
positive adds nothing to it: tanh is odd, and BatchNorm centres its input, so the branch's mean is about 0.
```python
answer = gc.MLP(width=DRIFT_WIDTH, depth=DRIFT_DEPTH, activation="tanh", init="kaiming",
                norm="batch", residual=True)
```
Activations with a small negative side are not enough: ELU's, GELU's and SiLU's branches still add a positive mean
(ELU's about 0.16 per block), and a sigmoid adds 1/2. The drift of the mean is fixed, not the growth of the
stream: each tanh branch still adds its variance, so the logits are large and the loss at initialization is far
above $\ln 10$. The pre-activation block fixes both, by normalizing before the output layer.
""", tuple((_residual_mlp(name), words) for name, words in _ACTIVATION_HINTS.items())),
]
