"""Exercises of notebook 10, optimizers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core import _checks
from ..core.data import load_mnist
from ..core.models import MLP
from ..lessons.optimization import ADAM_EPS
from ..core.runtime import generators_restored
from .judging import Exercise, Number, as_numbers, known_mistake

__all__ = ["EXERCISES"]

_G, _LR = 1e-7, 1e-3    # a tiny gradient, ten times Adam's eps, and the learning rate
_FIRST_STEP = Number(
    -_LR * _G / (_G + ADAM_EPS),
    explain="at the first step m_hat = g and sqrt(v_hat) = |g|, so the step is -lr g / (|g| + eps) = "
            "-1e-3 * 1e-7 / 1.1e-7 = -9.09e-4: almost the full learning rate, for a gradient of 1e-7.",
    hint="at the first step Adam's bias corrections give m_hat = g_1 and v_hat = g_1^2; put them into "
         "-lr m_hat / (sqrt(v_hat) + eps).",
    mistakes=[(-_LR * _G, "that is SGD's step, -lr g; Adam divides by the gradient's own size, sqrt(v_hat) = |g|."),
              (-_LR, "here eps matters: |g| = 1e-7 is only ten times eps = 1e-8, so the step is lr |g| / (|g| + eps)."),
              (-_LR * 0.1 * _G / (math.sqrt(0.001) * _G + ADAM_EPS),
               "that leaves out the bias corrections: m_hat = m_1 / (1 - 0.9) = g and v_hat = v_1 / (1 - 0.999) = g^2."),
              (-_LR * _G / (0.1 * _G + ADAM_EPS), "that is RMSProp's first step, without a bias correction (s_1 = 0.01 g^2)."),
              (-10 * _LR, "that is RMSProp's first step when |g| >> eps (10 lr); the question is about Adam.")])

_SIGMOID_NET = dict(width=128, depth=5, activation="sigmoid")   # the notebook's SIGMOID_NET, PyTorch's default init
_TARGET = 1e-3
_RATIO_LR = _TARGET / math.sqrt(3 * 128)
_LR_MISTAKES = [
    (_TARGET, "1e-3 is the update ratio you want, not Adam's learning rate: Adam's first step moves every weight by "
              "about lr, a ratio of lr / rms(W) = lr sqrt(3 n_in)."),
    (_TARGET / math.sqrt(128), "PyTorch's default init U(+-1/sqrt(n)) has rms 1/sqrt(3 n), not 1/sqrt(n)."),
    (_TARGET / math.sqrt(3 * 784), "layers 2-5 have fan-in 128, the width; 784 is layer 1's."),
    (_TARGET / (3 * 128), "the ratio is lr / rms(W) = lr sqrt(3 n_in): a square root, not 3 n_in itself."),
    (3e-3, "that is the notebook's Adam learning rate: its update ratio is the ceiling 0.059."),
]


def _first_adam_ratios(lr, seed=0, samples=512):
    """``||dW|| / ||W||`` of the hidden layers after one Adam step of the seeded SIGMOID_NET on the first
    ``samples`` training digits (torch's global generator is left as it was)."""
    X, y = load_mnist("train", limit=samples)
    with generators_restored():
        torch.manual_seed(seed)
        model = MLP(**_SIGMOID_NET)
    before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    F.cross_entropy(model(X), y).backward()
    optimizer.step()
    return [(torch.linalg.vector_norm(layer.weight.detach() - w) / torch.linalg.vector_norm(w)).item()
            for layer, w in zip(model.hidden_linears(), before)]


def _adam_lr(answer):
    values = as_numbers(answer, 1)
    if values is None or values[0] <= 0 or values[0] > 1:
        return False, f"give a learning rate, a number between 0 and 1; got {_checks.describe(answer)}."
    lr = values[0]
    ratios = _first_adam_ratios(lr)[1:]
    measured = f"Measured first-step update ratios of layers 2-5 at lr = {lr:.3g}: " + ", ".join(f"{r:.2e}" for r in ratios) + "."
    if all(abs(r / _TARGET - 1) <= 0.1 for r in ratios):
        return True, f"{measured} Adam moves each weight by about lr, and rms(W) = 1/sqrt(3 * 128): lr = 1e-3 / sqrt(384) = 5.1e-5."
    hint = known_mistake(lr, _LR_MISTAKES)
    if hint:
        return False, f"{hint} {measured}"
    direction = "large: lower the learning rate" if sum(ratios) > len(ratios) * _TARGET else "small: raise the learning rate"
    return False, f"{measured} Too {direction}; the ratio is proportional to it."


def _scaled_step_ratio(g=1e-4, loss_scale=1e-4, lr=1e-3):
    """Adam's first step on one float64 parameter with gradient ``loss_scale * g``, over the step with gradient ``g``."""
    steps = []
    for gradient in (loss_scale * g, g):
        parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        optimizer = torch.optim.Adam([parameter], lr=lr)
        parameter.grad = torch.full_like(parameter, gradient)
        optimizer.step()
        steps.append(parameter.item())
    return steps[0] / steps[1]


_HALF = Number(
    _scaled_step_ratio,
    explain="measured with torch.optim.Adam: a ratio of {expected}. With loss x s the step is g / (|g| + eps/s), and at "
            "|g| = eps/s the denominator doubles: (1e-4 + 1e-8) / (1e-4 + 1e-4) = 0.50005.",
    hint="scaling the loss by s is replacing eps by eps/s = 1e-4; compare -lr g / (|g| + eps/s) with -lr g / (|g| + eps).",
    mistakes=[(1e-4, "that is SGD's ratio, s itself; Adam divides by the scaled gradient's own size."),
              (1.0, "Adam ignores the loss's scale only where |g| >> eps/s; here |g| equals eps/s = 1e-4."),
              (2.0, "inverted: the scaled step is the smaller one.")])

EXERCISES = [
    Exercise("10.1", "compute",
             "A parameter's first gradient is g_1 = 1e-7. What step Delta theta_1 does Adam take with lr = 1e-3 "
             "and PyTorch's defaults (beta_1 = 0.9, beta_2 = 0.999, eps = 1e-8)?",
             _FIRST_STEP, lambda: -_LR * _G / (_G + ADAM_EPS), r"""
The bias corrections make the first moments exact: $m_1 = 0.1\,g_1$, $\hat m_1 = m_1/(1 - 0.9) = g_1$;
$v_1 = 0.001\,g_1^2$, $\hat v_1 = v_1/(1 - 0.999) = g_1^2$. So
$$\Delta\theta_1 = -\eta\,\frac{g_1}{|g_1| + \epsilon} = -10^{-3}\cdot\frac{10^{-7}}{10^{-7} + 10^{-8}} = -\frac{10^{-3}}{1.1} \approx -9.09\times10^{-4}.$$
SGD would move it by $-\eta g = -10^{-10}$, ten million times less. Check:
```python
import torch
p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
opt = torch.optim.Adam([p], lr=1e-3)
p.grad = torch.full_like(p, 1e-7); opt.step(); p.item()     # -0.000909...
```
Only where $|g|$ comes down to $\epsilon$ does the step fall well below $\eta$.
"""),
    Exercise("10.2", "build",
             "Choose Adam's learning rate so that its first step moves hidden layers 2-5 of SIGMOID_NET (PyTorch's "
             "default init) by 1e-3 of their size, the SGD rule of thumb (within 10%).",
             _adam_lr, lambda: _RATIO_LR, r"""
Adam's first step moves every weight by about $\eta$ (section 1), so a layer with $n$ weights moves by
$\lVert\Delta W\rVert \approx \eta\sqrt n$ and its ratio is $\eta/\mathrm{rms}(W)$, the ceiling of `adam_ratio_ceiling`. Layers
2-5 have fan-in $n_{\text{in}} = 128$ and PyTorch's default init $U(\pm1/\sqrt{n_{\text{in}}})$, of rms $1/\sqrt{3n_{\text{in}}}$:
$$\frac{\lVert\Delta W\rVert}{\lVert W\rVert} \approx \eta\sqrt{3 n_{\text{in}}} = 10^{-3}
\quad\Longrightarrow\quad \eta = \frac{10^{-3}}{\sqrt{384}} \approx 5.1\times10^{-5}.$$
```python
answer = 1e-3 / math.sqrt(3 * 128)
```
The check takes one Adam step and measures 0.98-1.00e-3 in layers 2-5; layer 1 ($n_{\text{in}} = 784$) moves
$\sqrt{784/128} \approx 2.5$ times more. Sixty times below the notebook's 3e-3, this learning rate would train slowly:
for Adam, the rule of thumb is not a target.
""", tuple((lambda value=value: value, words) for value, words in _LR_MISTAKES)),
    Exercise("10.3", "predict",
             "The loss is scaled by s = 1e-4, so eps/s = 1e-4. A parameter's gradient (on the unscaled loss) is "
             "g = 1e-4. By what factor does its first Adam step shrink: step on s L / step on L?",
             _HALF, _scaled_step_ratio, r"""
Scaling the loss by $s$ is replacing $\epsilon$ by $\epsilon/s$ (section 3). At the first step the step is $-\eta\,g/(|g| + \epsilon)$, so
$$\frac{\text{step on } sL}{\text{step on } L} = \frac{|g| + \epsilon}{|g| + \epsilon/s} = \frac{10^{-4} + 10^{-8}}{10^{-4} + 10^{-4}} \approx 0.50 .$$
A gradient at exactly $\epsilon/s$ loses half its step; well above it nothing, well below it a factor $s$. That is the
S-shaped transition the next cell measures layer by layer, from the output layer (gradients far above $10^{-4}$,
ratio near 1) to layer 1 (gradients far below, ratio towards $10^{-4}$).
"""),
]
