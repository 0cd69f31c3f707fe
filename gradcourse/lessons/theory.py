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

from ..core import _checks
from ..core.models import ACTIVATIONS

__all__ = ["activation_derivative", "activation_table", "chain_product", "derivative_bound", "max_derivative",
           "power_or_inf", "RECURRENT_ACTIVATIONS", "recurrent_derivative_bound", "recurrent_final_state",
           "recurrent_jacobian_norms", "scalar_chain", "ScalarChain", "sigmoid", "sigmoid_derivative",
           "sigmoid_derivative_from_output", "sigmoid_network_loss"]


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
            raise ValueError(f"s={_checks.describe(s)} is not allowed; it must lie strictly between 0 and 1 "
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
        raise ValueError(f"z={_checks.describe(z)} is not allowed; it must be a floating-point torch.Tensor")
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


def power_or_inf(base, exponent):
    """``base ** exponent`` as a float, with ``inf`` (signed as the power would be) where the power
    exceeds float64's largest number, about 1.8e308, instead of Python's ``OverflowError``: a
    bound such as ``(gamma sigma_max)^T`` that a figure draws, where the value beyond that range
    is simply left out.

    Example::

        >>> power_or_inf(8.0, 400)
        inf
    """
    base = _checks.number("base", base)
    exponent = _checks.number("exponent", exponent)
    if base < 0 and exponent != int(exponent):
        raise ValueError(f"exponent={exponent!r} is not allowed with base={base!r}; a negative base takes whole "
                         "exponents only (its other powers are complex)")
    if base == 0 and exponent < 0:
        raise ValueError(f"exponent={exponent!r} is not allowed with base=0; it must be at least 0 (0 has no "
                         "negative powers)")
    try:
        return base ** exponent
    except OverflowError:
        odd = exponent == int(exponent) and int(exponent) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf


def derivative_bound(activation, depth):
    """``max f' ** depth``: the most the activations alone can pass back through ``depth`` layers.

    For the sigmoid it is ``(1/4)^depth``; the weights multiply in their own factors. ``inf``
    where the power exceeds float64's range (:func:`power_or_inf`).
    """
    _checks.integer("depth", depth, minimum=1)
    return power_or_inf(max_derivative(activation), depth)


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


RECURRENT_ACTIVATIONS = {"tanh": (torch.tanh, 1.0), "sigmoid": (torch.sigmoid, 0.25)}
"""The recurrent nonlinearities with their derivative bound gamma = max f'."""


def recurrent_jacobian_norms(W, U, inputs, h0=None, activation="tanh"):
    """Spectral norms ``||dh_T/dh_0||_2`` for ``T = 1..len(inputs)`` of ``h_t = f(W h_{t-1} + U x_t)``.

    The Jacobian of one step is ``dh_t/dh_{t-1} = diag(f'(a_t)) W`` with ``a_t = W h_{t-1} + U x_t``,
    so ``dh_T/dh_0 = prod_{t=T..1} diag(f'(a_t)) W`` and
    ``||dh_T/dh_0|| <= (gamma * sigma_max(W))^T`` with ``gamma = max f'`` (1 for tanh, 1/4 for the
    sigmoid). Hence ``sigma_max(W) < 1/gamma`` is *sufficient* for the gradient to vanish
    exponentially; ``sigma_max(W) > 1/gamma`` is *necessary* for it to explode. Bengio, Simard &
    Frasconi (1994), "Learning long-term dependencies with gradient descent is difficult";
    Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks".

    Args:
        W: recurrent matrix (n, n). U: input matrix (n, d). inputs: tensor (T, d).
        h0: initial state (n,), zeros by default. activation: ``"tanh"`` or ``"sigmoid"``.

    Returns a list of T floats; the Jacobian product is accumulated in float64. Whenever its
    largest entry passes ``2^512`` it is divided by a power of two (exact in floating point) and
    the exponent is kept apart, so a product beyond float64's range (``sigma_max = 6`` without
    input keeps ``h = 0`` and gives ``6^T``, past 1.8e308 from T = 396) neither turns into inf
    and NaN nor stops the computation: its norm is returned as ``inf``, and a product that
    shrinks back into range later is returned exactly.
    """
    _checks.choice("activation", activation, tuple(RECURRENT_ACTIVATIONS))
    for name, tensor, dims in (("W", W, 2), ("U", U, 2), ("inputs", inputs, 2)):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
            raise ValueError(f"{name}={_checks.describe(tensor)} is not allowed; it must be a {dims}-D torch.Tensor")
    n = W.shape[0]
    if W.shape != (n, n) or U.shape[0] != n or inputs.shape[1] != U.shape[1]:
        raise ValueError(f"shapes do not fit: W {tuple(W.shape)} must be (n, n), U {tuple(U.shape)} (n, d), "
                         f"inputs {tuple(inputs.shape)} (T, d)")
    f, _ = RECURRENT_ACTIVATIONS[activation]
    W, U, inputs = W.double(), U.double(), inputs.double()
    h = torch.zeros(n, dtype=torch.float64) if h0 is None else h0.double()
    product = torch.eye(n, dtype=torch.float64)
    exponent = 0            # dh_t/dh_0 = product * 2**exponent
    norms = []
    for x in inputs:
        a = W @ h + U @ x
        h = f(a)
        local = (1 - h ** 2) if activation == "tanh" else h * (1 - h)   # f'(a) from the output
        product = (local[:, None] * W) @ product
        largest = product.abs().max().item()
        if math.isfinite(largest) and largest > 2.0 ** 512:
            shift = math.frexp(largest)[1]
            product = product * 2.0 ** -shift
            exponent += shift
        norms.append(_times_power_of_two(torch.linalg.matrix_norm(product, ord=2).item(), exponent))
    return norms


def _times_power_of_two(value, exponent):
    """``value * 2**exponent``, ``inf`` beyond float64's range."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


def recurrent_derivative_bound(activation):
    """``gamma = max f'`` of a recurrent nonlinearity: 1 for tanh, 1/4 for the sigmoid."""
    _checks.choice("activation", activation, tuple(RECURRENT_ACTIVATIONS))
    return RECURRENT_ACTIVATIONS[activation][1]


def activation_table(activations=None, low=-10.0, high=10.0, points=200_001):
    """For each activation: the range of f and of f' on a grid over [low, high], f'(0), and whether
    f' tends to 0 on both sides (saturating) -- derivatives by autograd.

    Returns a list of dicts with keys ``name, f_min, f_max, d_min, d_max, d_at_0, saturates_both_sides``.
    """
    names = list(ACTIVATIONS) if activations is None else list(activations)
    for name in names:
        _checks.choice("activations[i]", name, tuple(ACTIVATIONS))
    low = _checks.number("low", low)
    high = _checks.number("high", high, minimum=low, strict_minimum=True)
    _checks.integer("points", points, minimum=3)
    z = torch.linspace(low, high, points, dtype=torch.float64)
    rows = []
    for name in names:
        values = ACTIVATIONS[name]()(z)
        d = activation_derivative(name, z)
        rows.append({
            "name": name,
            "f_min": values.min().item(), "f_max": values.max().item(),
            "d_min": d.min().item(), "d_max": d.max().item(),
            "d_at_0": activation_derivative(name, torch.zeros(1, dtype=torch.float64)).item(),
            "saturates_both_sides": d[0].item() < 1e-3 and d[-1].item() < 1e-3,
        })
    return rows


def recurrent_final_state(W, U, inputs, h0=None, activation="tanh"):
    """Run ``h_t = f(W h_{t-1} + U x_t)`` over ``inputs`` (T, d) from ``h0`` and return ``h_T``.

    Differentiable: ``torch.autograd.functional.jacobian`` of it with respect to ``h0`` gives
    ``dh_T/dh_0``, the library's check of :func:`recurrent_jacobian_norms`.
    """
    _checks.choice("activation", activation, tuple(RECURRENT_ACTIVATIONS))
    f, _ = RECURRENT_ACTIVATIONS[activation]
    h = torch.zeros(W.shape[0], dtype=W.dtype) if h0 is None else h0
    for x in inputs:
        h = f(W @ h + U @ x)
    return h
