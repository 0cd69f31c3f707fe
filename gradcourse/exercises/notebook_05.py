"""Exercises of notebook 05, activation functions."""

from __future__ import annotations

import math

from ..core.models import MLP
from .judging import Entries, Exercise, Number, known_mistake, measured_factor

__all__ = ["EXERCISES"]

_AT_MINUS_2 = Entries({
    "ReLU": Number(0.0, explain="", abs_tol=1e-6,
                   hint="ReLU is flat (0) for z < 0 and has slope 1 for z > 0.",
                   mistakes=[(1.0, "slope 1 is for z > 0; at z = -2 ReLU is flat and passes nothing back.")]),
    "LeakyReLU": Number(0.01, explain="",
                        hint="LeakyReLU is 0.01 z for z < 0: its derivative there is the slope.",
                        mistakes=[(-0.02, "-0.02 is the value f(-2) = 0.01 * (-2); the derivative is the slope, 0.01."),
                                  (1.0, "slope 1 is for z > 0; for z < 0 LeakyReLU's slope is 0.01.")]),
    "ELU": Number(math.exp(-2), explain="",
                  hint="ELU is e^z - 1 for z < 0, so its derivative there is e^z.",
                  mistakes=[(math.exp(-2) - 1, "e^-2 - 1 is ELU's value f(-2); its derivative is e^z = e^-2."),
                            (math.exp(2), "at z = -2 the derivative is e^z = e^-2, not e^2."),
                            (1.0, "slope 1 is for z > 0; for z < 0 ELU's derivative is e^z.")]),
}, explain="at z = -2 the derivative is 0 for ReLU, 0.01 for LeakyReLU and e^-2 = 0.135 for ELU: a unit pushed "
           "to z = -2 passes 13.5 times more gradient back through ELU than through LeakyReLU, and none through ReLU.")

_RELU_MOMENTS = Entries({
    "E[relu(z)^2]": Number(2.0, explain="",
                           hint="relu(z)^2 is z^2 on the positive half and 0 on the other: half of E[z^2] = Var(z).",
                           mistakes=[(4.0, "forgot that ReLU zeroes the negative half: E[relu(z)^2] = Var(z) / 2."),
                                     (1.0, "ReLU halves the second moment, not the standard deviation: (2/2)^2 = 1 "
                                           "halves the std."),
                                     (0.5, "1/2 is the share of the second moment that survives; times Var(z) = 4."),
                                     (2 / math.pi, "2/pi is the squared mean (E[relu(z)])^2 = (2/sqrt(2 pi))^2; the "
                                                   "second moment is E[relu(z)^2]."),
                                     (2 - 2 / math.pi, "that is the variance of relu(z); the second moment "
                                                       "E[relu(z)^2] also counts the mean."),
                                     (math.sqrt(2), "sqrt(2) is the rms, the square root of the second moment.")]),
    "E[relu'(z)^2]": Number(0.5, explain="",
                            hint="relu'(z) is 1 with probability 1/2 (z > 0) and 0 otherwise.",
                            mistakes=[(1.0, "relu' = 1 only on the active half: E[relu'(z)^2] = 1 * P(z > 0) = 1/2."),
                                      (0.25, "relu' is 0 or 1, so relu'^2 = relu': its mean is P(z > 0) = 1/2, not (1/2)^2."),
                                      (2.0, "the derivative does not grow with Var(z): it is 0 or 1, whatever the scale.")]),
}, explain="E[relu(z)^2] = Var(z) / 2 = 2 and E[relu'(z)^2] = 1/2: the forward signal's second moment and the "
           "backward signal's both lose half at every ReLU layer, so He's Var(w) = 2/n puts back exactly that.")

_TANH_WIDTH, _TANH_DEPTH = 64, 30
_TANH_GAINS = [
    (1.0, "gain 1 is section 2's network that does not explode: tanh' < 1 where the units spread out, so each "
          "layer loses a little."),
    (5 / 3, "5/3 is torch.nn.init.calculate_gain('tanh'); in this 30-layer network it makes the gradient grow."),
    (math.sqrt(2), "sqrt(2) is He's gain, which undoes ReLU's halving of the second moment; tanh halves nothing, "
                   "it only shrinks the derivative a little."),
    (2.0, "gain 2 is section 2's exploding network."),
]


def _tanh_critical(model):
    rho, why = measured_factor(model, activation="tanh", init="xavier", width=_TANH_WIDTH, min_depth=_TANH_DEPTH)
    if why:
        return False, why
    layers = len(model.blocks) - 1
    measured = (f"Measured per-layer factor (your settings, weights drawn with seed 0): {rho:.3f}, so over {layers} "
                f"layers the ratio is about {rho ** layers:.2g}.")
    if abs(rho - 1) <= 0.025:
        return True, (f"{measured} With gain {model.init_scale:.3g}, rms(tanh') settles where gain * rms(tanh') is "
                      "about 1: the critical gain of tanh is a little above 1.")
    hint = known_mistake(model.init_scale, _TANH_GAINS)
    if hint:
        return False, f"{hint} {measured}"
    direction = "still grows: lower init_scale" if rho > 1 else "still shrinks: raise init_scale"
    return False, f"{measured} The gradient {direction}, and measure again."


def _tanh_mlp(init_scale):
    return lambda: MLP(depth=_TANH_DEPTH, width=_TANH_WIDTH, activation="tanh", init="xavier", init_scale=init_scale)


EXERCISES = [
    Exercise("05.1", "compute",
             "Section 4 pushes every hidden bias down by 2. At z = -2, what derivative f'(z) do ReLU, LeakyReLU "
             "and ELU pass back? Give (relu, leaky_relu, elu).",
             _AT_MINUS_2, lambda: (0.0, 0.01, math.exp(-2)), r"""
Read the derivatives off the table for $z < 0$:
* ReLU: $f(z) = 0$, so $f'(-2) = 0$;
* LeakyReLU: $f(z) = 0.01\,z$, so $f'(-2) = 0.01$ (its value, $-0.02$, is not what backpropagation multiplies by);
* ELU: $f(z) = e^z - 1$, so $f'(z) = e^z$ and $f'(-2) = e^{-2} \approx 0.135$.

Autograd agrees: `gc.theory.activation_derivative(name, torch.tensor([-2.0]))` for each name. A unit sitting at
$z = -2$ passes 13.5 times more gradient back through ELU than through LeakyReLU, and none through ReLU:
section 4 shows what that does to a network whose biases were pushed down.
"""),
    Exercise("05.2", "compute",
             "For z ~ N(0, 4) (variance 4), what are the second moment E[relu(z)^2] and the backward factor "
             "E[relu'(z)^2]? Give (E[relu(z)^2], E[relu'(z)^2]).",
             _RELU_MOMENTS, lambda: (2.0, 0.5), r"""
The density of $z \sim N(0, 4)$ is symmetric, so $z^2$ has the same mean on both halves, and
$$\mathbb{E}[\mathrm{relu}(z)^2] = \mathbb{E}[z^2\,;\ z > 0] = \tfrac12\,\mathbb{E}[z^2] = \tfrac12 \cdot 4 = 2 .$$
The derivative is 1 for $z > 0$ and 0 for $z < 0$, so $\mathrm{relu}'(z)^2 = \mathrm{relu}'(z)$ and
$$\mathbb{E}[\mathrm{relu}'(z)^2] = P(z > 0) = \tfrac12 ,$$
whatever the variance. Both signals lose half of their second moment at every layer, which is why the
per-layer factor with $n\,\mathrm{Var}(w) = 1$ is $\sqrt{1/2}$. Check by sampling:
```python
z = 2 * torch.randn(1_000_000, dtype=torch.float64)
torch.relu(z).pow(2).mean(), (z > 0).double().mean()
```
Not the variance of $\mathrm{relu}(z)$, $2 - 2/\pi \approx 1.36$: what the next layer's $\mathrm{Var}(z)$ depends on
is $\mathbb{E}[h^2]$, mean included.
"""),
    Exercise("05.3", "build",
             "Build the 30-layer tanh network of section 2 (width 64, init='xavier') with the init_scale that makes "
             "its per-layer factor 1 (within 2.5%).",
             _tanh_critical, _tanh_mlp(1.2), r"""
Section 2's estimate: with Xavier times a gain $g$ the typical factor is about $g \cdot \mathrm{rms}(\tanh'(z))$.
At $g = 1$ the units spread out to where $\tanh' < 1$, so the factor is a little below 1 (about 0.93 here: the
ratio $\approx 0.12$ printed for gain 1 is $0.93^{29}$). A larger gain raises the factor but also spreads $z$ further,
lowering $\mathrm{rms}(\tanh')$, so there is no closed form; measure instead:
```python
for g in [1.1, 1.2, 1.3, 1.4]:
    ratio = gc.at_init.first_to_last_ratio(X, y, [TANH_DEPTH], "tanh", "xavier",
                                           init_scale=g, width=WIDTH, seed=SEED)[0]
    print(g, ratio, ratio ** (1 / (TANH_DEPTH - 1)))
```
The per-layer factor crosses 1 near $g = 1.2$, where $\mathrm{rms}(\tanh'(z))$ in the deep layers is about 0.85:
```python
answer = gc.MLP(depth=TANH_DEPTH, width=WIDTH, activation="tanh", init="xavier",
                init_scale=1.2)
```
Anything from about 1.15 to 1.3 passes. He's $\sqrt2$ is already too much for tanh, and
`torch.nn.init.calculate_gain("tanh")` $= 5/3$ makes this 30-layer network explode.
""", tuple((_tanh_mlp(gain), words) for gain, words in _TANH_GAINS)),
]
