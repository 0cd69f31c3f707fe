"""Exercises of notebook 03, exploding gradients."""

from __future__ import annotations

import math

from ..core.models import MLP
from ..lessons.sequences import random_recurrence
from ..lessons.theory import recurrent_jacobian_norms
from .judging import Choice, Exercise, Number, known_mistake, measured_factor

__all__ = ["EXERCISES"]

_GAIN_RATIO = Number(
    1.25 ** 29,
    explain="each of the 29 layers between h_30 and h_1 multiplies by rho = g = 1.25: 1.25^29 = 646. "
            "Compare with the measured ratio for g = 1.25 below.",
    hint="with He init times g, the per-layer factor is rho = g; count the layers between h_1 and h_30.",
    mistakes=[(1.25 ** 30, "count the factors: from h_30 down to h_1 the signal crosses L - 1 = 29 layers."),
              (1.25 ** 58, "the factor is rho = g, not g^2: the gain multiplies the weights' std, and rho = sqrt(n Var(w) / 2) = g."),
              (1.25 ** 14.5, "the factor is rho = sqrt(n * 2 g^2 / n * 1/2) = g itself: no further square root."),
              (1.25 ** -29, "above g = 1 the gradient grows towards the input: first over last is above 1."),
              (1.25 * 29, "the 29 factors multiply: g^29, not 29 g.")],
    rel_tol=0.02)

_WIDTH = 128
_FIXED_SCALE = math.sqrt(2 / _WIDTH)
_SCALE_MISTAKES = [
    (0.25, "that is the network that explodes: rho = 0.25 * sqrt(128 / 2) = 2."),
    (0.25 / 4, "the factor rho is proportional to the std, not to the variance: divide the std by 2, not 4."),
    (math.sqrt(1 / _WIDTH), "forgot that ReLU halves the second moment: He takes Var(w) = 2 / n, not 1 / n."),
    (math.sqrt(2 / 784), "the hidden layers' fan-in is the width, 128; 784 is the first layer's."),
    (2 / _WIDTH, "2 / n is the variance; init_scale of init='normal' is the std, its square root."),
]


def _explodes_fixed(model):
    rho, why = measured_factor(model, activation="relu", init="normal", width=_WIDTH)
    if why:
        return False, why
    measured = f"Measured per-layer factor (your settings, weights drawn with seed 0): {rho:.3f}."
    if abs(rho - 1) <= 0.05:
        return True, f"{measured} init_scale = {model.init_scale:.4g}, and sqrt(2 / 128) = {_FIXED_SCALE:.4g} gives rho = 1."
    hint = known_mistake(model.init_scale, _SCALE_MISTAKES)
    if hint:
        return False, f"{hint} {measured}"
    direction = "still grows: lower init_scale" if rho > 1 else "now shrinks: raise init_scale"
    return False, f"{measured} It {direction}; rho = init_scale * sqrt(n / 2) with n = 128."


def _mlp(init_scale):
    return lambda: MLP(depth=20, width=_WIDTH, activation="relu", init="normal", init_scale=init_scale)


def _recurrence():
    W, U, inputs = random_recurrence(1.1, 60, seed=0)
    norms = recurrent_jacobian_norms(W, U, inputs, activation="tanh")
    peak = max(range(len(norms)), key=norms.__getitem__)
    report = (f"Measured (seed 0): ||dh_T/dh_0|| peaks at {norms[peak]:.2f} at T = {peak + 1} and ends at "
              f"{norms[-1]:.2g} at T = 60.")
    return ("below" if norms[-1] < 1 else "above"), report


_RECURRENCE = Choice(["above", "below"], _recurrence, {
    "above": "explosion needs sigma_max(W) > 1/gamma, but that does not force it: as the state grows, tanh "
             "saturates, and its derivative pulls each factor below 1."})

EXERCISES = [
    Exercise("03.1", "compute",
             "A 30-layer ReLU network with He init times g = 1.25: what ratio ||dL/dh_1|| / ||dL/dh_30|| do you expect?",
             _GAIN_RATIO, lambda: 1.25 ** 29, r"""
With He init times $g$, $\mathrm{Var}(w) = 2g^2/n$ and ReLU's $\mathbb{E}[f'^2] = 1/2$, so the per-layer factor is
$\rho = \sqrt{n \cdot \frac{2g^2}{n} \cdot \frac12} = g = 1.25$. The signal crosses the $L - 1 = 29$ layers between
$h_{30}$ and $h_1$, and grows by $g$ at each:
$$\frac{\lVert \partial L/\partial h_1\rVert}{\lVert \partial L/\partial h_{30}\rVert} \approx 1.25^{29} \approx 646 .$$
A gain only 25% above critical multiplies the gradient at the first layer by more than 600.
"""),
    Exercise("03.2", "build",
             "gc.MLP(depth=20, width=128, activation='relu', init='normal', init_scale=0.25) explodes. "
             "Build it again with the init_scale that makes its per-layer factor 1 (within 5%).",
             _explodes_fixed, _mlp(_FIXED_SCALE), r"""
`init="normal"` draws $w \sim N(0, s^2)$ with $s$ = `init_scale`, so the hidden layers (fan-in $n = 128$) have
$$\rho = \sqrt{n\, s^2 \cdot \tfrac12} = s\sqrt{n/2} = 0.25 \times 8 = 2 :$$
the gradient doubles at every layer. $\rho = 1$ needs $s = \sqrt{2/n} = \sqrt{2/128} = 0.125$, He's std for this
width, so halve the std:
```python
answer = gc.MLP(depth=20, width=128, activation="relu", init="normal",
                init_scale=math.sqrt(2 / 128))
```
The check measures $\rho$ on one seeded batch: about 1.0.
""", tuple((_mlp(scale), words) for scale, words in _SCALE_MISTAKES)),
    Exercise("03.3", "predict",
             "A tanh RNN with sigma_max(W) = 1.1 (just above 1/gamma = 1), over 60 steps: does "
             "||dh_60/dh_0|| end 'above' or 'below' 1?",
             _RECURRENCE, lambda: "below", r"""
**Below 1.** $\sigma_{\max}(W) = 1.1 > 1/\gamma = 1$ only makes explosion *possible*: each factor
$\mathrm{diag}(\tanh'(a_t))\,W$ can stretch by at most $1.1 \cdot \max \tanh' = 1.1$. It reaches that only while the state
stays near 0. Along the directions where $W$ stretches, the state grows, $\tanh$ saturates, $\tanh'(a_t)$ falls
below $1/1.1$, and the product shrinks: the norm rises for a few steps, then decays. Run it:
```python
W, U, inputs = gc.sequences.random_recurrence(1.1, 60, seed=0)
norms = gc.theory.recurrent_jacobian_norms(W, U, inputs, activation="tanh")
max(norms), norms[-1]
```
With $\sigma = 1.5$ or $3$ the weights win over saturation and the norm explodes.
"""),
]
