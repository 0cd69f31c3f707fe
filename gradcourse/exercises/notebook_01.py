"""Exercises of notebook 01, backprop and the chain rule."""

from __future__ import annotations

from ..lessons.theory import scalar_chain, sigmoid_derivative
from .judging import Choice, Exercise, Number

__all__ = ["EXERCISES"]

_DELTA_3 = Number(
    (0.2 * 0.2 * 0.8, -0.3 * 0.7 * 0.3),
    explain="the error signal is delta_3 = (y_3 - t) * y_3 (1 - y_3) = (0.2 * 0.16, -0.3 * 0.21) = (0.032, -0.063).",
    hint="delta_3 = (y_3 - t) * sigma'(z_3), entry by entry, and sigma'(z_3) = y_3 (1 - y_3).",
    mistakes=[((0.2, -0.3), "that is dL/dy_3 = y_3 - t; delta_3 = dL/dz_3 also multiplies by sigma'(z_3) = y_3 (1 - y_3)."),
              ((-0.032, 0.063), "the sign: L grows as y_3 moves away from t, so dL/dy_3 = y_3 - t, not t - y_3."),
              ((0.064, -0.126), "twice too large: the 1/2 in L = 1/2 ||y_3 - t||^2 cancels the 2 of the square."),
              ((0.2 * sigmoid_derivative(0.2), -0.3 * sigmoid_derivative(0.7)), "the derivative takes z_3, not y_3: written with the output, sigma'(z_3) = y_3 (1 - y_3)."),
              ((0.16, 0.21), "that is sigma'(z_3) alone; multiply it by the error y_3 - t.")],
    abs_tol=5e-4)

_CHAIN = Number(
    0.5 ** 10,
    explain="every z_l = 2 * 1/2 - 1 = 0, so each factor is sigma'(0) w = 1/4 * 2 = 1/2, and (1/2)^10 = 9.77e-4.",
    hint="first find z_1 = w y_0 + b, then y_1, z_2, ...; each layer multiplies by f'(z_l) w.",
    mistakes=[(0.25 ** 10, "you multiplied only the sigma' factors; each layer's factor is f'(z_l) w, and w = 2."),
              (0.5 ** 9, "count the factors: ten layers give ten factors f'(z_l) w."),
              (0.5 ** 11, "count the factors: ten layers give ten factors f'(z_l) w."),
              (2.0 ** 10, "inverted: each factor is 1/4 * 2 = 1/2, and the product of ten is (1/2)^10."),
              (0.5, "that is one layer's factor; the chain multiplies ten of them."),
              (1.0, "breaking even takes w = 4 (4 * 1/4 = 1); with w = 2 each factor is 1/2.")])


def _tanh_chain():
    chain = scalar_chain(depth=10, weight=3.0, bias=0.0, x0=1.0, activation="tanh")
    y = chain.pre_activations[-1] / 3.0
    report = (f"Autograd gives dy_10/dy_0 = {chain.gradients[0]:.2g}, against the bound 3^10 = {3.0 ** 10:.0f}: the "
              f"units settle where tanh(3y) = y, y = {y:.3f}, where tanh' is tiny, so each factor is only "
              f"{chain.local_derivatives[-1]:.3f}.")
    return ("below" if chain.gradients[0] < 1 else "above"), report


_TANH_CHAIN = Choice(["above", "below"], _tanh_chain, {
    "above": "the bound (max f' * |w|)^10 assumes every z_l sits at 0, where tanh' = 1; this chain saturates."})

EXERCISES = [
    Exercise("01.1", "compute",
             "The output layer gives y_3 = (0.2, 0.7) for the target t = (0, 1). What is the error signal delta_3?",
             _DELTA_3, lambda: (0.032, -0.063), r"""
$\delta_3 = \partial L/\partial z_3 = (y_3 - t) \odot \sigma'(z_3)$, and $\sigma'(z_3) = \sigma(z_3)(1-\sigma(z_3)) = y_3 \odot (1 - y_3)$:

* $y_3 - t = (0.2 - 0,\ 0.7 - 1) = (0.2,\ -0.3)$;
* $y_3(1 - y_3) = (0.2 \cdot 0.8,\ 0.7 \cdot 0.3) = (0.16,\ 0.21)$;
* $\delta_3 = (0.2 \cdot 0.16,\ -0.3 \cdot 0.21) = (0.032,\ -0.063)$.

Check it with the notebook's own formula: `(y - t) * y * (1 - y)` with
`y = torch.tensor([0.2, 0.7])`, `t = torch.tensor([0.0, 1.0])`.
"""),
    Exercise("01.2", "compute",
             "A one-unit sigmoid chain with w = 2, b = -1 starts from y_0 = 1/2. What is dy_10/dy_0 after 10 layers?",
             _CHAIN, lambda: 0.5 ** 10, r"""
Run the chain forward: $z_1 = w y_0 + b = 2 \cdot \tfrac12 - 1 = 0$, so $y_1 = \sigma(0) = \tfrac12$, and every later
layer repeats it: all $z_l = 0$. Each local factor is $\sigma'(0)\, w = \tfrac14 \cdot 2 = \tfrac12$, and the chain rule
multiplies ten of them:
$$\frac{\partial y_{10}}{\partial y_0} = \Big(\tfrac12\Big)^{10} = \tfrac{1}{1024} \approx 9.77\times10^{-4}.$$
Autograd agrees: `gc.theory.scalar_chain(depth=10, weight=2.0, bias=-1.0, x0=0.5).gradients[0]`.
Half of the break-even weight $w = 4$ loses a factor 2 per layer.
"""),
    Exercise("01.3", "predict",
             "A tanh chain with w = 3, b = 0 from y_0 = 1: the bound (max f' |w|)^10 is 3^10 = 59049. "
             "Is dy_10/dy_0 'above' or 'below' 1?",
             _TANH_CHAIN, lambda: "below", r"""
**Below 1**, by far. The bound $(\max f' \cdot |w|)^{10} = 3^{10}$ holds only if every $z_l$ sits at 0, where
$\tanh' = 1$. Here the chain leaves 0 at once: $y_1 = \tanh(3) = 0.995$, and every later unit stays near the
fixed point $y = \tanh(3y) \approx 0.995$, with $z_l \approx 3$, where $\tanh'(z) = 1 - \tanh^2(z) \approx 0.01$.
Each factor is then $\tanh'(z_l)\, w \approx 0.01 \cdot 3 = 0.03$, and ten of them give about $10^{-15}$:
```python
chain = gc.theory.scalar_chain(depth=10, weight=3.0, bias=0.0, x0=1.0,
                               activation="tanh")
chain.gradients[0], chain.local_derivatives
```
A large weight does not make a large gradient: it pushes $z$ into the flat tails, where the derivative is tiny.
"""),
]
