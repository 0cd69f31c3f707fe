"""Exercises of notebook 15, Dynamical isometry and the edge of chaos."""

from __future__ import annotations

import math

import torch

from ..core import _checks
from ..core.models import MLP
from ..lessons.edge_of_chaos import chi_1, critical_sigma_w, length_fixed_point, mean_field_mlp
from .judging import Choice, Exercise, Number, known_mistake

__all__ = ["EXERCISES"]

_LINEAR_GAIN, _LINEAR_DEPTH = 1.2, 10
_MEAN_S2 = (_LINEAR_GAIN ** 2) ** _LINEAR_DEPTH

_LINEAR = Number(
    _MEAN_S2,
    explain="each linear layer multiplies the mean squared singular value by chi = sigma_w^2 = 1.44, so ten of "
            "them by 1.44^10 = {expected}: the network is not at the edge of chaos.",
    hint="a linear layer has D = I, so chi = sigma_w^2 E[1] = sigma_w^2, and the depth multiplies it.",
    mistakes=[(_LINEAR_GAIN ** _LINEAR_DEPTH, "chi is sigma_w squared: the mean of s^2 grows by 1.2^2 = 1.44 per "
                                              "layer, so 1.44^10, not 1.2^10."),
              (_LINEAR_GAIN ** 2, "that is one layer's factor; the Jacobian is a product of ten layers, and the "
                                  "mean of s^2 multiplies by 1.44 in each: 1.44^10."),
              (_LINEAR_GAIN ** 2 * _LINEAR_DEPTH, "the layers' factors multiply, they do not add: 1.44^10."),
              (1.0, "sigma_w = 1.2 is not the critical scale of a linear network (that is sigma_w = 1): "
                    "chi = 1.44.")])

_GAIN = 5 / 3


def _tanh_gain_phase():
    q, chi = length_fixed_point(_GAIN, 0.0), chi_1(_GAIN, 0.0)
    report = (f"Mean field: q* = {q:.3f}, E[tanh'(h)^2] = {chi / _GAIN ** 2:.3f} there, so chi_1 = "
              f"(5/3)^2 x {chi / _GAIN ** 2:.3f} = {chi:.3f}: each layer multiplies the squared gradient by "
              f"{chi:.2f}, and over 30 layers the gradient norm by about {chi ** 15:.0f}.")
    return ("chaotic" if chi > 1 else "ordered"), report


_PHASE = Choice(["ordered", "chaotic"], _tanh_gain_phase, {
    "ordered": "tanh' < 1 does shrink each layer's factor, but not enough: sigma_w^2 = 25/9 = 2.78 outweighs it."})

_BIAS, _DEPTH = 0.3, 20


def _critical_mistakes():
    sigma_w = critical_sigma_w(_BIAS)
    return [(1.0, "sigma_w = 1 is the edge of chaos only without biases: with sigma_b = 0.3 the pre-activations "
                  "settle at q* > 0, where tanh' < 1, so chi_1 < 1 (ordered): raise sigma_w."),
            (_GAIN, "5/3 (PyTorch's tanh gain) puts this network in the chaotic phase: chi_1 > 1."),
            (sigma_w ** 2, f"that is sigma_w squared ({sigma_w ** 2:.3f}); mean_field_mlp takes the standard "
                           f"deviation's gain sigma_w = {sigma_w:.3f}.")]


def _at_the_edge(model):
    if not isinstance(model, MLP) or not hasattr(model, "sigma_b"):
        return False, (f"build the network with gc.edge_of_chaos.mean_field_mlp(...) (got {_checks.describe(model)}), "
                       "so that its biases are drawn with sigma_b.")
    if model.activation != "tanh" or model.init != "lecun":
        return False, f"keep activation='tanh' and the mean-field init (got activation={model.activation!r})."
    if not math.isclose(model.sigma_b, _BIAS, rel_tol=1e-9):
        return False, f"keep sigma_b={_BIAS} (got sigma_b={model.sigma_b:g}): the critical sigma_w depends on it."
    sigma_w = model.init_scale
    chi = chi_1(sigma_w, _BIAS)
    if abs(chi - 1) < 0.01:
        return True, (f"sigma_w = {sigma_w:.4g}: chi_1 = {chi:.4f}, so a gradient keeps its size through the "
                      f"layers, and two inputs' correlation relaxes over xi_c >> depth layers.")
    hint = known_mistake(sigma_w, _critical_mistakes())
    phase = "ordered (raise sigma_w)" if chi < 1 else "chaotic (lower sigma_w)"
    return False, f"{hint + ' ' if hint else ''}(sigma_w = {sigma_w:.4g} gives chi_1 = {chi:.3f}: {phase}.)"


def _edge_network(sigma_w):
    return lambda: mean_field_mlp(torch.zeros(2, 784), sigma_w=sigma_w, sigma_b=_BIAS, depth=_DEPTH)


EXERCISES = [
    Exercise("15.1", "compute",
             "A linear network of 10 layers with weights N(0, 1.2^2 / n): by what factor is the mean of s^2 over "
             "its Jacobian's singular values larger than 1?",
             _LINEAR, lambda: _MEAN_S2, r"""
For a linear layer $D_l = I$, so $J = W_{10} \cdots W_1$. One layer with $W \sim \mathcal N(0, \sigma_w^2/n)$ multiplies
the mean squared singular value of whatever it follows by $\chi = \sigma_w^2\,\mathbb E[\phi'(h)^2] = \sigma_w^2 = 1.44$:
$\tfrac1n\mathbb E\,\mathrm{tr}(W M M^\top W^\top) = \sigma_w^2\,\tfrac1n\mathrm{tr}(M M^\top)$. Over ten layers
$$\tfrac1n\,\mathbb E\,\mathrm{tr}(J J^\top) = \chi^{L} = 1.44^{10} \approx 38.3 .$$
The gradient that reaches the input is, on average, 38 times larger in squared norm ($\sqrt{38.3} \approx 6.2$ in norm)
than at the top: exploding, and only $\sigma_w = 1$ gives $\chi = 1$.
"""),
    Exercise("15.2", "predict",
             "PyTorch's calculate_gain('tanh') is 5/3. A tanh network with weights N(0, (5/3)^2 / n) and zero biases: "
             "ordered or chaotic?",
             _PHASE, lambda: "chaotic", r"""
With $\sigma_b = 0$ the length map $q \mapsto \sigma_w^2\,\mathbb E[\tanh(\sqrt q z)^2]$ has slope $\sigma_w^2 > 1$ at
$q = 0$, so the pre-activations settle at a fixed length $q^* > 0$ (about 1.18 here). There
$\chi_1 = \sigma_w^2\,\mathbb E[\tanh'(\sqrt{q^*} z)^2] = \tfrac{25}{9} \times 0.44 \approx 1.21 > 1$: the chaotic phase.
In fact every bias-free tanh network with $\sigma_w > 1$ is chaotic: the critical line of the phase diagram meets
$\sigma_b = 0$ at $\sigma_w = 1$. The gain 5/3 keeps the forward signal from shrinking (notebook 04), but the gradient
grows by $\sqrt{1.21} \approx 1.1$ per layer.
```python
gc.edge_of_chaos.chi_1(5 / 3, 0.0)
```
"""),
    Exercise("15.3", "build",
             "Build a 20-layer tanh network with bias standard deviation 0.3 at the edge of chaos, with "
             "gc.edge_of_chaos.mean_field_mlp.",
             _at_the_edge, _edge_network(critical_sigma_w(_BIAS)), r"""
Fix $\sigma_b = 0.3$ and find the $\sigma_w$ where $\chi_1 = 1$: $\chi_1$ grows with $\sigma_w$, so a bisection (or a few
tries with `gc.edge_of_chaos.chi_1`) finds it; `critical_sigma_w` does exactly that:
```python
sigma_w = gc.edge_of_chaos.critical_sigma_w(0.3)          # 1.3956
answer = gc.edge_of_chaos.mean_field_mlp(X_train, sigma_w=sigma_w, sigma_b=0.3,
                                         depth=20)
```
$\sigma_w = 1$, the bias-free answer, is ordered here: the biases hold the pre-activations at $q^* \approx 0.76$, where
$\tanh'$ is well below 1, and $\sigma_w^2$ must make up for it. The depth does not enter: $\chi_1$ is a property of
one layer at its fixed point.
""", ((_edge_network(1.0), "raise sigma_w"), (_edge_network(_GAIN), "chaotic"))),
]
