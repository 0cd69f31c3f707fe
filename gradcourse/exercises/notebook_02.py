"""Exercises of notebook 02, vanishing gradients."""

from __future__ import annotations

import math

import torch

from .judging import Exercise, Number

__all__ = ["EXERCISES"]

_SIGMOID_CHAIN = Number(
    0.16 ** 4,
    explain="the local derivative is sigma' = 0.8 * (1 - 0.8) = 0.16 per layer, and 0.16^4 = 6.55e-4.",
    hint="the local derivative of a unit with output s is sigma' = s (1 - s); multiply one per layer.",
    mistakes=[(0.8 ** 4, "0.8 is sigma(z), the unit's output; its derivative is sigma'(z) = sigma(z) (1 - sigma(z))."),
              (0.2 ** 4, "0.2 is 1 - sigma(z); the derivative is the product sigma(z) (1 - sigma(z)) = 0.8 * 0.2."),
              (0.16 ** 3, "count the layers: four units give four factors."),
              (0.16 ** 5, "count the layers: four units give four factors."),
              (0.16 * 4, "the chain rule multiplies the four factors: 0.16^4, not 4 * 0.16."),
              (0.25 ** 4, "1/4 is sigma' at z = 0, its largest value; this unit outputs 0.8, further out.")])

_RHO = math.sqrt(1 / 3 * 1 / 2)   # n Var(w) = 1/3 (PyTorch's default init), E[f'^2] = 1/2 (ReLU)
_RELU_RATIO = Number(
    _RHO ** 29,
    explain="the per-layer factor is rho = sqrt(1/3 * 1/2) = 0.408, and 29 factors from h_30 down to h_1 give 0.408^29 = 5.2e-12. "
            "The relu row's last number below is the measurement.",
    hint="the per-layer factor is rho = sqrt(n Var(w) E[f'^2]) with n Var(w) = 1/3 (the default init) and E[f'^2] for ReLU; "
         "then raise rho to the number of layers between h_1 and h_30.",
    mistakes=[(_RHO ** 30, "count the factors: from h_30 down to h_1 the signal crosses L - 1 = 29 layers."),
              ((1 / 6) ** 29, "the per-layer factor is the square root of n Var(w) E[f'^2]: sqrt(1/6), not 1/6."),
              (math.sqrt(1 / 3) ** 29, "ReLU zeroes the negative half of its inputs: E[f'^2] = 1/2 halves the second "
                                       "moment, so rho = sqrt(1/3 * 1/2)."),
              (math.sqrt(1 / 2) ** 29, "LeCun's init has n Var(w) = 1; PyTorch's default U(+-1/sqrt(n)) has "
                                       "n Var(w) = 1/3."),
              (_RHO ** -29, "the ratio is first over last: below 1 when the gradient vanishes.")],
    factor=2.0)


def _float32_change():
    w = torch.tensor(0.25)                 # float32
    return ((w - 0.05 * 1e-9) - w).item()  # one SGD step with LR = 0.05 and a gradient of 1e-9


_ABSORBED = Number(
    _float32_change,
    explain="measured: torch.tensor(0.25) - 0.05 * 1e-9 changes the weight by {expected}. The step, 5e-11, is "
            "2e-10 of the weight, far below 2^-24 = 6e-8: the nearest float32 to 0.25 - 5e-11 is 0.25 itself.",
    hint="float32 keeps 24 significant bits: a change below about 2^-24 = 6e-8 of the weight rounds away.",
    mistakes=[(-5e-11, "that is the exact step lr * g = 0.05 * 1e-9, but float32 cannot store 0.25 - 5e-11."),
              (5e-11, "that is the exact step (with the wrong sign), but float32 cannot store 0.25 - 5e-11."),
              (-1e-9, "the step is lr * g, and float32 cannot store it either."),
              (-(2.0 ** -26), "2^-26 is float32's spacing just below 0.25: the result rounds to the nearer "
                              "neighbour, 0.25 itself.")])

EXERCISES = [
    Exercise("02.1", "compute",
             "A sigmoid unit outputs sigma(z) = 0.8. Chain four such units, with weights of 1 between them: "
             "what is dy_4/dy_0, the fraction of the gradient left after the four layers?",
             _SIGMOID_CHAIN, lambda: 0.16 ** 4, r"""
The local derivative, written with the output $s = \sigma(z) = 0.8$: $\sigma'(z) = s(1-s) = 0.8 \times 0.2 = 0.16$.
Four layers with weights 1 multiply four such factors:
$$0.16^4 = 0.16 \times 0.16 \times 0.16 \times 0.16 = 0.0256 \times 0.0256 = 6.5536\times10^{-4}.$$
Check: `gc.theory.chain_product([gc.theory.sigmoid_derivative_from_output(0.8)] * 4)`.
A unit at $\sigma = 0.8$ is closer to the centre than the worked example's $0.9$, yet four layers already
keep less than a thousandth of the gradient.
"""),
    Exercise("02.2", "predict",
             "Before running the sweep: predict the ratio ||dL/dh_1|| / ||dL/dh_30|| it prints for ReLU with the "
             "default init at depth L = 30 (within a factor 2).",
             _RELU_RATIO, lambda: _RHO ** 29, r"""
The per-layer factor is $\rho = \sqrt{n\,\mathrm{Var}(w)\,\mathbb{E}[f'(z)^2]}$. PyTorch's default init
$U(\pm 1/\sqrt n)$ gives $n\,\mathrm{Var}(w) = n \cdot \frac{1}{3n} = \frac13$; ReLU's derivative is 1 on the
active half and 0 on the other, so $\mathbb{E}[f'^2] = \frac12$. Hence
$$\rho = \sqrt{\tfrac13 \cdot \tfrac12} = \sqrt{1/6} \approx 0.408 .$$
From $h_{30}$ back to $h_1$ the signal crosses $L - 1 = 29$ layers:
$$\frac{\lVert \partial L/\partial h_1\rVert}{\lVert \partial L/\partial h_{30}\rVert} \approx \rho^{29} = (1/6)^{29/2} \approx 5.2\times10^{-12}.$$
The measured value differs by a few percent per layer, compounded over 29 layers, hence the tolerance.
"""),
    Exercise("02.3", "predict",
             "A float32 weight w = 0.25 takes one SGD step with LR = 0.05 and gradient 1e-9. "
             "By how much does the stored weight change (w_new - w, in float32)?",
             _ABSORBED, lambda: 0.0, r"""
The exact step is $\eta g = 0.05 \times 10^{-9} = 5\times10^{-11}$, an update ratio of $5\times10^{-11}/0.25 = 2\times10^{-10}$.
A float32 number has 24 significant bits: the float32 numbers just below $0.25 = 2^{-2}$ lie $2^{-2-24} = 2^{-26} \approx 1.5\times10^{-8}$
apart. $0.25 - 5\times10^{-11}$ is far closer to $0.25$ than to its lower neighbour, so it rounds to $0.25$:
**the change is 0**. Run it:
```python
w = torch.tensor(0.25)
(w - LR * 1e-9) - w    # tensor(0.)
```
This is what happens to the deep sigmoid network's first layer: its update ratio is below $2^{-24}$, so its
steps are absorbed and its weights keep their initial values bit for bit.
"""),
]
