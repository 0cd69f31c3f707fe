"""Finite differences as a gradient check, and the step that makes them most accurate.

The central difference ``(f(θ + ε) - f(θ - ε)) / 2ε`` has a truncation error of about
``ε² |f'''(θ)| / 6``: the even terms of the two Taylor expansions cancel. Its rounding error is about
``u |f(θ)| / ε``, where ``u`` is the unit roundoff of the dtype (``2^-53 ≈ 1.1e-16`` for float64): each
value of ``f`` carries a relative error near ``u``, and their difference is divided by ``2ε``. The first
shrinks with ε and the second grows, so their sum is smallest near ``ε* = (3u |f| / |f'''|)^(1/3)``, of
the order ``u^(1/3) ≈ 5e-6`` in float64 (Nocedal & Wright 2006, *Numerical Optimization*, §8.1). A
smaller step is not a better one: below ε* the check gets worse, about as ``1/ε``.
"""

from __future__ import annotations

import torch

from ..core import _checks

__all__ = ["central_difference", "central_difference_errors"]


def central_difference(f, theta, index, eps):
    """``(f(θ + ε e_i) - f(θ - ε e_i)) / 2ε``: the derivative of ``f`` along the entry ``index`` of the tensor
    ``theta``, estimated from two evaluations. ``f`` takes a tensor shaped like ``theta`` and returns a
    number or a one-element tensor; ``theta`` itself is left as it was. Returns a float."""
    if not callable(f):
        raise ValueError(f"f={_checks.describe(f)} is not allowed; it must be a callable tensor -> number")
    if not isinstance(theta, torch.Tensor) or not theta.is_floating_point():
        raise ValueError(f"theta={_checks.describe(theta)} is not allowed; it must be a floating-point torch.Tensor")
    eps = _checks.number("eps", eps, minimum=0, strict_minimum=True)
    plus, minus = theta.detach().clone(), theta.detach().clone()
    try:
        plus[index] += eps
        minus[index] -= eps
    except (IndexError, TypeError, RuntimeError) as error:
        raise ValueError(f"index={index!r} is not allowed for theta of shape {tuple(theta.shape)}: {error}") from error
    if plus[index].numel() != 1:
        raise ValueError(f"index={index!r} is not allowed; it must pick one entry of theta, of shape "
                         f"{tuple(theta.shape)}")
    return float((f(plus) - f(minus)) / (2 * eps))


def central_difference_errors(f, theta, index, exact, eps_values):
    """``{ε: |central_difference(f, theta, index, ε) - exact|}`` for each step in ``eps_values``: how the
    error of the check changes with the step, against the ``exact`` derivative (e.g. backprop's)."""
    exact = _checks.number("exact", exact)
    if not isinstance(eps_values, (list, tuple)) or not eps_values:
        raise ValueError(f"eps_values={_checks.describe(eps_values)} is not allowed; it must be a non-empty list "
                         "of positive steps")
    return {eps: abs(central_difference(f, theta, index, eps) - exact) for eps in eps_values}
