"""Pascanu et al.'s cliff: a loss surface with a wall on which the gradient is huge.

The cliff is the one-unit recurrent network of Pascanu, Mikolov & Bengio (2013), "On the difficulty
of training recurrent neural networks", section 3 (their equation 11 with one unit and no input),
``x_t = w sigma(x_{t-1}) + b``, unrolled for T steps from ``x_0`` with loss ``L(w, b) = (x_T - target)^2``.
Where ``x_0`` sits on the unstable fixed point of the map, ``dx_T/dx_0 = prod_t w sigma'(x_{t-1})`` is a
product of T factors above 1: the loss surface has a wall on which the gradient is huge (their figure 6).
:func:`cliff_surface` maps it, :func:`cliff_slice` cuts across it, and :func:`cliff_descent` runs gradient
descent on it from many start points, with or without the norm clipping of
:mod:`gradcourse.lessons.clipping`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..core import _checks
from .theory import power_or_inf, sigmoid, sigmoid_derivative

__all__ = ["cliff_descent", "cliff_loss_and_gradient", "cliff_slice", "CLIFF_STEPS", "cliff_surface", "CLIFF_TARGET",
           "cliff_wall", "CLIFF_X0", "CliffDescent", "CliffSlice", "CliffSurface", "start_grid", "unstable_weight",
           "wall_gradient"]

CLIFF_STEPS = 50
CLIFF_X0 = 0.5
CLIFF_TARGET = 0.7


def _cliff_arguments(steps, x0, target):
    _checks.integer("steps", steps, minimum=1)
    return _checks.number("x0", x0), _checks.number("target", target)


def cliff_loss_and_gradient(w, b, steps=CLIFF_STEPS, x0=CLIFF_X0, target=CLIFF_TARGET):
    """Loss and gradient of the one-unit recurrent network, elementwise over tensors ``w`` and ``b``.

    ``x_t = w sigma(x_{t-1}) + b`` for ``t = 1..steps`` from ``x_0 = x0``, and
    ``L = (x_T - target)^2``. By the chain rule, with ``d_t = dx_T/dx_t = prod_{s=t+1}^{T} w sigma'(x_{s-1})``,

        dL/db = 2 (x_T - target) sum_{t=1}^{T} d_t,
        dL/dw = 2 (x_T - target) sum_{t=1}^{T} d_t sigma(x_{t-1}),

    computed here by autograd in float64. ``w`` and ``b`` may be numbers or tensors of one shape.
    Returns ``(loss, dL/dw, dL/db)``, tensors of that shape.
    """
    x0, target = _cliff_arguments(steps, x0, target)
    w = torch.as_tensor(w, dtype=torch.float64).detach().clone().requires_grad_(True)
    b = torch.as_tensor(b, dtype=torch.float64).detach().clone().requires_grad_(True)
    if w.shape != b.shape:
        raise ValueError(f"w has shape {tuple(w.shape)} and b {tuple(b.shape)}; they must match")
    with torch.enable_grad():
        x = torch.full_like(w, x0)
        for _ in range(steps):
            x = w * torch.sigmoid(x) + b
        loss = (x - target) ** 2
        grad_w, grad_b = torch.autograd.grad(loss.sum(), (w, b))
    return loss.detach(), grad_w, grad_b


def cliff_wall(w, x0=CLIFF_X0):
    """Where the wall lies: the bias ``b = x0 - w sigma(x0)`` that makes ``x0`` a fixed point of
    ``x -> w sigma(x) + b``. The fixed point is unstable (so ``d_t`` grows like ``(w sigma'(x0))^t``)
    when ``w sigma'(x0) > 1``, i.e. ``w > 1 / sigma'(x0)`` (4.26 for ``x0 = 0.5``)."""
    w = _checks.number("w", w)
    x0 = _checks.number("x0", x0)
    return x0 - w * sigmoid(x0)


def unstable_weight(x0=CLIFF_X0):
    """The weight ``w = 1 / sigma'(x0)`` above which the fixed point ``x0`` on the wall is unstable
    (4.26 for ``x0 = 0.5``): where the wall begins.

    Example::

        >>> round(unstable_weight(0.5), 2)
        4.26
    """
    return 1.0 / sigmoid_derivative(_checks.number("x0", x0))


def wall_gradient(w, steps=CLIFF_STEPS, x0=CLIFF_X0, target=CLIFF_TARGET):
    """The closed-form gradient ``(dL/dw, dL/db)`` exactly on the wall, at ``b = cliff_wall(w, x0)``.

    There ``x_t = x0`` for every t, so every factor of ``d_t`` equals ``lambda = w sigma'(x0)`` and

        dL/db = 2 (x0 - target) sum_{t=1}^{T} lambda^(T-t) = 2 (x0 - target) (lambda^T - 1) / (lambda - 1),
        dL/dw = sigma(x0) dL/db.

    For ``lambda > 1`` this grows like ``lambda^T``: for w = 6, lambda = 1.41 and dL/db is about -3e7.
    Where the gradient exceeds float64's largest number (about 1.8e308; for w = 6 from T = 2064 on)
    it is returned as ``inf`` with its sign; with ``x0 == target`` it is 0 for every ``T``.
    """
    w = _checks.number("w", w)
    _checks.integer("steps", steps, minimum=1)
    x0, target = _checks.number("x0", x0), _checks.number("target", target)
    s = sigmoid(x0)
    lam = w * sigmoid_derivative(x0)
    total = float(steps) if lam == 1 else (power_or_inf(lam, steps) - 1) / (lam - 1)
    grad_b = 0.0 if x0 == target else 2 * (x0 - target) * total
    return s * grad_b, grad_b


class CliffSlice(NamedTuple):
    """The cliff along b at one w, at signed distances ``offsets`` from the wall:
    ``b = cliff_wall(w) + offsets``. ``loss`` and ``grad_norm`` have the shape of ``offsets``."""

    w: float
    offsets: torch.Tensor
    loss: torch.Tensor
    grad_norm: torch.Tensor

    def at(self, offset):
        """``(loss, grad_norm)`` as floats at the sampled point nearest to ``offset`` (signed, like
        :attr:`offsets`: negative below the wall)."""
        offset = _checks.number("offset", offset)
        nearest = (self.offsets - offset).abs().argmin()
        return self.loss[nearest].item(), self.grad_norm[nearest].item()


def cliff_slice(w, smallest=1e-10, largest=3.0, points=201, steps=CLIFF_STEPS, x0=CLIFF_X0, target=CLIFF_TARGET):
    """Loss and gradient norm at log-spaced distances from ``smallest`` to ``largest`` on both sides
    of the wall (below it: negative offsets); returns a :class:`CliffSlice`. A grid cannot show the
    wall: its width shrinks like ``lambda^-T`` while the gradient on it grows like ``lambda^T``."""
    w = _checks.number("w", w)
    smallest = _checks.number("smallest", smallest, minimum=0, strict_minimum=True)
    largest = _checks.number("largest", largest, minimum=smallest, strict_minimum=True)
    _checks.integer("points", points, minimum=2)
    distances = torch.logspace(math.log10(smallest), math.log10(largest), points, dtype=torch.float64)
    offsets = torch.cat([-distances.flip(0), distances])
    b = cliff_wall(w, x0) + offsets
    loss, grad_w, grad_b = cliff_loss_and_gradient(torch.full_like(b, w), b, steps, x0, target)
    return CliffSlice(float(w), offsets, loss, torch.hypot(grad_w, grad_b))


class CliffSurface(NamedTuple):
    """The loss of :func:`cliff_loss_and_gradient` on a grid: ``w`` and ``b`` (1-D axes) and
    ``loss`` and ``grad_norm`` (``||(dL/dw, dL/db)||``), both of shape ``(len(w), len(b))``."""

    w: torch.Tensor
    b: torch.Tensor
    loss: torch.Tensor
    grad_norm: torch.Tensor
    steps: int
    x0: float
    target: float


def cliff_surface(w_range=(1.0, 8.0), b_range=(-6.0, 1.0), points=301, steps=CLIFF_STEPS, x0=CLIFF_X0,
                  target=CLIFF_TARGET):
    """Evaluate the cliff's loss and gradient norm on a ``points`` x ``points`` grid over
    ``w_range`` x ``b_range``; returns a :class:`CliffSurface`."""
    _checks.integer("points", points, minimum=2, maximum=2001)
    (w_lo, w_hi), (b_lo, b_hi) = _range("w_range", w_range), _range("b_range", b_range)
    w = torch.linspace(w_lo, w_hi, points, dtype=torch.float64)
    b = torch.linspace(b_lo, b_hi, points, dtype=torch.float64)
    W, B = torch.meshgrid(w, b, indexing="ij")
    loss, grad_w, grad_b = cliff_loss_and_gradient(W, B, steps, x0, target)
    return CliffSurface(w, b, loss, torch.hypot(grad_w, grad_b), steps, float(x0), float(target))


def _range(name, value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name}={value!r} is not allowed; it must be a pair (low, high)")
    low = _checks.number(f"{name}[0]", value[0])
    high = _checks.number(f"{name}[1]", value[1], minimum=low, strict_minimum=True)
    return low, high


class CliffDescent(NamedTuple):
    """Gradient descent runs on the cliff. ``paths`` has shape ``(runs, iterations + 1, 2)``
    (columns w, b; row 0 is the start), ``losses`` ``(runs, iterations + 1)``, ``grad_norms``
    ``(runs, iterations)`` (before clipping) and ``step_lengths`` ``(runs, iterations)``, the
    length ``||theta_{k+1} - theta_k||`` of each step actually taken."""

    paths: torch.Tensor
    losses: torch.Tensor
    grad_norms: torch.Tensor
    step_lengths: torch.Tensor
    lr: float
    max_norm: float | None

    def largest_step(self):
        """The longest step of each run, shape ``(runs,)``."""
        return self.step_lengths.max(dim=1).values

    def huge_steps(self, length):
        """True for each run that took at least one step longer than ``length``."""
        _checks.number("length", length, minimum=0, strict_minimum=True)
        return self.largest_step() > length

    def final_loss(self):
        """The loss where each run ended, shape ``(runs,)``."""
        return self.losses[:, -1]

    def distance_travelled(self):
        """``||theta_end - theta_start||`` of each run, shape ``(runs,)``."""
        return torch.linalg.vector_norm(self.paths[:, -1] - self.paths[:, 0], dim=1)


def start_grid(w_range, b_range, per_side):
    """``per_side**2`` start points ``(w, b)`` on an even grid over ``w_range`` x ``b_range``, shape (runs, 2)."""
    _checks.integer("per_side", per_side, minimum=1)
    (w_lo, w_hi), (b_lo, b_hi) = _range("w_range", w_range), _range("b_range", b_range)
    W, B = torch.meshgrid(torch.linspace(w_lo, w_hi, per_side, dtype=torch.float64),
                          torch.linspace(b_lo, b_hi, per_side, dtype=torch.float64), indexing="ij")
    return torch.stack([W.flatten(), B.flatten()], dim=1)


def cliff_descent(starts, lr, iterations, max_norm=None, steps=CLIFF_STEPS, x0=CLIFF_X0, target=CLIFF_TARGET):
    """Plain gradient descent on the cliff's loss from every start point, all runs at once.

    ``theta_{k+1} = theta_k - lr * g_k`` with ``theta = (w, b)`` and ``g_k`` the run's own gradient,
    clipped when ``max_norm`` is given by the rule of :func:`torch.nn.utils.clip_grad_norm_`
    (Pascanu et al. 2013): ``g <- g * min(1, max_norm / (||g|| + 1e-6))``, applied to each run's
    two-entry gradient separately (the tests check it against ``clip_grad_norm_``).

    Args:
        starts: tensor of shape (runs, 2), e.g. from :func:`start_grid`.
        lr: the learning rate; iterations: steps per run; max_norm: None (no clipping) or c > 0.
        steps, x0, target: the cliff (see :func:`cliff_loss_and_gradient`).

    Returns a :class:`CliffDescent`. A run whose loss or gradient becomes non-finite stops
    moving (its later steps have length 0).
    """
    if not isinstance(starts, torch.Tensor) or starts.dim() != 2 or starts.shape[1] != 2 or len(starts) == 0:
        raise ValueError(f"starts={_checks.describe(starts)} is not allowed; it must be a tensor of shape (runs, 2)")
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    _checks.integer("iterations", iterations, minimum=1)
    if max_norm is not None:
        max_norm = _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True)
    _cliff_arguments(steps, x0, target)
    theta = starts.detach().double().clone()
    paths, losses, norms, lengths = [theta.clone()], [], [], []
    for _ in range(iterations):
        loss, grad_w, grad_b = cliff_loss_and_gradient(theta[:, 0], theta[:, 1], steps, x0, target)
        grad = torch.stack([grad_w, grad_b], dim=1)
        norm = torch.linalg.vector_norm(grad, dim=1)
        if max_norm is not None:
            grad = grad * (max_norm / (norm + 1e-6)).clamp(max=1.0).unsqueeze(1)
        finite = torch.isfinite(loss) & torch.isfinite(grad).all(dim=1)
        step = torch.where(finite.unsqueeze(1), lr * grad, torch.zeros_like(grad))
        theta = theta - step
        losses.append(loss)
        norms.append(norm)
        lengths.append(torch.linalg.vector_norm(step, dim=1))
        paths.append(theta.clone())
    final, _, _ = cliff_loss_and_gradient(theta[:, 0], theta[:, 1], steps, x0, target)
    losses.append(final)
    return CliffDescent(torch.stack(paths, dim=1), torch.stack(losses, dim=1), torch.stack(norms, dim=1),
                        torch.stack(lengths, dim=1), lr, max_norm)
