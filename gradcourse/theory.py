"""Closed-form pieces the math notebooks check their prose against.

The chain rule through a stack of layers multiplies local derivatives. For the
scalar chain ``y_l = sigma(w_l y_{l-1} + b_l)`` it gives
``dy_L/dy_0 = prod_l sigma'(z_l) w_l``; the activation alone contributes
``prod_l sigma'(z_l)``, at most ``(1/4)^L`` for the sigmoid.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from . import _checks
from .models import ACTIVATIONS


def sigmoid(z):
    """The logistic function ``sigma(z) = 1 / (1 + exp(-z))`` (float or tensor)."""
    if isinstance(z, torch.Tensor):
        return torch.sigmoid(z)
    z = _checks.number("z", z)
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def sigmoid_derivative(z):
    """``sigma'(z) = sigma(z) (1 - sigma(z))``, at most 1/4 (reached at z = 0)."""
    s = sigmoid(z)
    return s * (1 - s)


def sigmoid_derivative_from_output(s):
    """The sigmoid's derivative written with its output ``s = sigma(z)``: ``s (1 - s)``.

    For ``s = 0.9`` it is ``0.9 * 0.1 = 0.09``.
    """
    if isinstance(s, torch.Tensor):
        outside = ~((s > 0) & (s < 1))  # NaN counts as outside
        if outside.any():
            raise ValueError(f"s={_checks._describe(s)} is not allowed; it must lie strictly between 0 and 1 "
                             f"(a sigmoid output), but it holds {s[outside].flatten()[0].item()!r}")
        return s * (1 - s)
    s = _checks.number("s", s, minimum=0, strict_minimum=True, maximum=1)
    if s == 1.0:
        raise ValueError("s=1.0 is not allowed; it must lie strictly between 0 and 1 (a sigmoid output)")
    return s * (1 - s)


def chain_product(local_derivatives):
    """Product of the local derivatives along a chain: ``prod_l d y_l / d y_{l-1}``."""
    values = list(local_derivatives)
    if not values:
        raise ValueError("local_derivatives=[] is not allowed; give at least one local derivative")
    for i, v in enumerate(values):
        _checks.number(f"local_derivatives[{i}]", v)
    return math.prod(values)


def activation_derivative(activation, z):
    """``f'(z)`` of a course activation, computed by autograd, elementwise over tensor ``z``."""
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise ValueError(f"z={_checks._describe(z)} is not allowed; it must be a floating-point torch.Tensor")
    z = z.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(ACTIVATIONS[activation]()(z).sum(), z)
    return grad


def max_derivative(activation, low=-10.0, high=10.0, points=200_001):
    """The largest ``f'(z)`` over a grid on [low, high] (sigmoid 1/4, tanh 1, ReLU 1)."""
    low = _checks.number("low", low)
    high = _checks.number("high", high, minimum=low, strict_minimum=True)
    _checks.integer("points", points, minimum=2)
    z = torch.linspace(low, high, points, dtype=torch.float64)
    return activation_derivative(activation, z).max().item()


def derivative_bound(activation, depth):
    """``max f' ** depth``: the most the activations alone can pass back through ``depth`` layers.

    For the sigmoid it is ``(1/4)^depth``; the weights multiply in their own factors.
    """
    _checks.integer("depth", depth, minimum=1)
    return max_derivative(activation) ** depth


class ScalarChain(NamedTuple):
    """A chain of one-unit layers ``z_l = w y_{l-1} + b``, ``y_l = f(z_l)``, ``l = 1..L``.

    ``pre_activations[l-1]`` is ``z_l``; ``local_derivatives[l-1]`` is
    ``dy_l/dy_{l-1} = f'(z_l) w``; ``gradients[l]`` is ``dy_L/dy_l`` for ``l = 0..L-1``,
    computed by autograd. The chain rule says
    ``gradients[l] == prod(local_derivatives[l:])``.
    """

    pre_activations: list
    local_derivatives: list
    gradients: list


def scalar_chain(depth, weight, bias=0.0, x0=1.0, activation="sigmoid"):
    """Run the one-unit chain forward and backward (float64) and return a :class:`ScalarChain`."""
    _checks.integer("depth", depth, minimum=1)
    weight = _checks.number("weight", weight)
    bias = _checks.number("bias", bias)
    x0 = _checks.number("x0", x0)
    _checks.choice("activation", activation, tuple(ACTIVATIONS))
    f = ACTIVATIONS[activation]()
    with torch.enable_grad():
        ys = [torch.tensor(x0, dtype=torch.float64, requires_grad=True)]
        zs = []
        for _ in range(depth):
            zs.append(weight * ys[-1] + bias)
            ys.append(f(zs[-1]))
        gradients = torch.autograd.grad(ys[-1], ys[:-1])
    local = [weight * activation_derivative(activation, z.detach()).item() for z in zs]
    return ScalarChain([z.item() for z in zs], local, [g.item() for g in gradients])


def sigmoid_network_loss(weights, biases, x, target):
    """The squared-error loss of a fully connected sigmoid network on one example.

    ``y_0 = x``, ``z_l = W_l y_{l-1} + b_l``, ``y_l = sigma(z_l)`` for ``l = 1..L``, and
    ``L = 1/2 ||y_L - target||^2``. Vectors are columns: ``W_l`` has shape
    ``(n_l, n_{l-1})``. Notebook 01 backpropagates through it by hand.
    """
    weights, biases = list(weights), list(biases)
    if not weights or len(weights) != len(biases):
        raise ValueError(f"weights and biases must be non-empty lists of equal length; got {len(weights)} "
                         f"weights and {len(biases)} biases")
    y = x
    for i, (W, b) in enumerate(zip(weights, biases)):
        if W.dim() != 2 or b.shape != (W.shape[0],) or W.shape[1] != y.shape[0]:
            raise ValueError(f"weights[{i}] has shape {tuple(W.shape)} and biases[{i}] {tuple(b.shape)}, which do "
                             f"not fit an input of size {y.shape[0]}; W_l must be (n_l, n_(l-1)) and b_l (n_l,)")
        y = torch.sigmoid(W @ y + b)
    if target.shape != y.shape:
        raise ValueError(f"target has shape {tuple(target.shape)} but the network outputs {tuple(y.shape)}")
    return 0.5 * ((y - target) ** 2).sum()
