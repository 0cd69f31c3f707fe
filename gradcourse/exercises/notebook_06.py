"""Exercises of notebook 06, gradient clipping."""

from __future__ import annotations

import inspect
import math

import torch

from ..core import _checks
from ..lessons.cliff import wall_gradient
from ..lessons.clipping import clipped_copy, cosine, global_norm
from ..lessons.theory import sigmoid, sigmoid_derivative
from .judging import Exercise, Number

__all__ = ["EXERCISES"]

_G, _C = (1.0, 10.0), 1.0
_VALUE_CLIPPED = tuple(max(-_C, min(_C, g)) for g in _G)
_COSINE = sum(a * b for a, b in zip(_G, _VALUE_CLIPPED)) / (math.hypot(*_G) * math.hypot(*_VALUE_CLIPPED))
_ANGLE = math.degrees(math.acos(_COSINE))

_VALUE_COSINE = Number(
    _COSINE,
    explain=f"value clipping gives (1, 1), and cos = (1 * 1 + 10 * 1) / (sqrt(101) * sqrt(2)) = 11 / 14.21 = "
            f"{_COSINE:.4f}: the direction turned by {_ANGLE:.1f} degrees, from almost along the second axis to the "
            "diagonal. Norm clipping would give (0.0995, 0.995), cosine 1.",
    hint="clamp each entry to [-1, 1] first, then cos = <g, g_hat> / (||g|| ||g_hat||).",
    mistakes=[(1.0, "a cosine of 1 is norm clipping's; value clipping clamps 10 to 1 and leaves the 1 alone, "
                    "which turns the vector."),
              (_ANGLE, "that is the angle in degrees; the question asks for its cosine."),
              (math.radians(_ANGLE), "that is the angle in radians; the question asks for its cosine."),
              (11 / math.hypot(*_G), "a cosine is never above 1: divide <g, g_hat> = 11 by both norms, ||g|| and "
                                     "||g_hat|| = sqrt(2)."),
              (1 / math.sqrt(2), "cos 45 degrees = 0.707 is the angle between g_hat = (1, 1) and the first axis; "
                                 "the question asks for the angle between g and g_hat.")],
    abs_tol=0.005, rel_tol=0.0)


def _reference_clip(gradients, max_norm):
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in gradients))
    return [g * min(1.0, max_norm / total.item()) for g in gradients]


def _per_tensor(gradients, max_norm):
    return [g * min(1.0, max_norm / g.norm().item()) for g in gradients]


def _always_rescaled(gradients, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in gradients))
    return [g * (max_norm / total) for g in gradients]


def _by_value(gradients, max_norm):
    return [g.clamp(-max_norm, max_norm) for g in gradients]


def _in_place(gradients, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in gradients)).item()
    return [g.mul_(min(1.0, max_norm / total)) for g in gradients]


def _test_gradients():
    """Two seeded gradient lists: one of norm about 17 (two tensors of very different norms), and the
    same divided by 100, below the threshold 2."""
    generator = torch.Generator().manual_seed(0)
    long = [5 * torch.randn(4, 3, generator=generator), 0.5 * torch.randn(5, generator=generator)]
    return long, [g / 100 for g in long]


def _as_list(result, like):
    """The function's result as a list of tensors shaped like ``like``, or None."""
    if inspect.isgenerator(result):
        result = list(result)
    if not isinstance(result, (list, tuple)) or len(result) != len(like):
        return None
    if not all(isinstance(r, torch.Tensor) and r.shape == g.shape for r, g in zip(result, like)):
        return None
    return [r.detach().double() for r in result]


def _same(result, expected):
    return all(torch.allclose(r, e.double(), rtol=1e-4, atol=1e-7) for r, e in zip(result, expected))


def _clips_by_norm(function, max_norm=2.0):
    if not callable(function) or isinstance(function, (type, torch.nn.Module)):
        return False, (f"give a function clip_by_norm(gradients, max_norm) that returns the clipped tensors "
                       f"(got {_checks.describe(function)}).")
    for gradients in _test_gradients():
        given = [g.clone() for g in gradients]
        try:
            result = function(given, max_norm)
        except Exception as error:
            return False, f"calling it as clip_by_norm(gradients, {max_norm}) raised {type(error).__name__}: {error}"
        if not all(torch.equal(a, b) for a, b in zip(given, gradients)):
            return False, ("it changed the gradients it was given, in place; return new tensors (g * factor, not "
                           "g.mul_(factor)), so that the notebook can compare the copy with the original.")
        result = _as_list(result, gradients)
        if result is None:
            return False, "return a list with one clipped tensor per input tensor, each of its input's shape."
        expected = clipped_copy(gradients, max_norm=max_norm)   # torch.nn.utils.clip_grad_norm_
        if _same(result, expected):
            continue
        norm = global_norm(gradients)
        if _same(result, _per_tensor(gradients, max_norm)):
            return False, ("it clips each tensor by its own norm. Norm clipping rescales all the tensors by one "
                           "factor, min(1, c / ||g||) with ||g|| the norm of all of them together; per-tensor "
                           "factors change the direction.")
        if _same(result, _always_rescaled(gradients, max_norm)):
            return False, (f"it rescales a gradient of norm {norm:.3g} up to {max_norm:g}. The factor is min(1, c / ||g||): "
                           "a gradient shorter than c stays as it is.")
        if _same(result, _by_value(gradients, max_norm)):
            return False, "that is value clipping (clamping each entry); norm clipping multiplies the whole gradient."
        got = global_norm(result)
        turned = cosine(gradients, result) if got > 0 else float("nan")
        return False, (f"for a gradient of norm {norm:.3g} and c = {max_norm:g} it returns norm {got:.3g} and "
                       f"cosine {turned:.4f} with the input; norm clipping gives norm {min(norm, max_norm):.3g} "
                       "and cosine 1.")
    return True, ("it agrees with torch.nn.utils.clip_grad_norm_ on a gradient above c (clipped to norm c, same "
                  "direction) and on one below c (left as it was).")


_S, _DS = sigmoid(0.5), sigmoid_derivative(0.5)
_LAMBDA = 5 * _DS
_WALL = Number(
    wall_gradient(5.0)[1],
    explain=f"on the wall lambda = 5 sigma'(0.5) = 5 * {_DS:.4f} = {_LAMBDA:.4f}, lambda^50 = {_LAMBDA ** 50:.0f}, and "
            f"dL/db = 2 (0.5 - 0.7) (lambda^50 - 1) / (lambda - 1) = {{expected}}. A gradient of thousands on a "
            "line, where the plateau around it has gradients of about 10.",
    hint="lambda = w sigma'(x_0) with sigma'(0.5) = sigma(0.5)(1 - sigma(0.5)); then "
         "dL/db = 2 (x_0 - 0.7) (lambda^T - 1) / (lambda - 1) with T = 50.",
    mistakes=[(wall_gradient(5.0)[1] / 2, "the factor 2 of the square: dL/db = 2 (x_T - 0.7) * dx_T/db."),
              (wall_gradient(5.0)[0], "that is dL/dw = sigma(x_0) dL/db; the question asks for dL/db."),
              (2 * (0.5 - 0.7) * _LAMBDA ** 50, "the sum of lambda^(T-t) over t = 1..T is (lambda^T - 1) / (lambda - 1), "
                                                "not lambda^T alone."),
              (2 * (0.5 - 0.7) * (_LAMBDA ** 49 - 1) / (_LAMBDA - 1), "the sum runs over t = 1..T: T = 50 terms, "
                                                                     "lambda^0 to lambda^49."),
              (2 * (0.5 - 0.7) * ((5 * _S) ** 50 - 1) / (5 * _S - 1), "lambda multiplies w by the derivative "
                                                                     "sigma'(0.5) = 0.235, not by sigma(0.5)."),
              (2 * (0.5 - 0.7) * (1.25 ** 50 - 1) / 0.25, "sigma' is taken at x_0 = 0.5, where it is 0.235, not at 0, "
                                                          "where it is 1/4.")])

EXERCISES = [
    Exercise("06.1", "compute",
             "The gradient g = (1, 10) is value-clipped at c = 1. What is the cosine between g and the clipped "
             "gradient?",
             _VALUE_COSINE, lambda: _COSINE, r"""
Value clipping clamps each entry to $[-1, 1]$: the 10 becomes 1, the 1 stays, so $\hat g = (1, 1)$. Then
$$\cos(g, \hat g) = \frac{\langle g, \hat g\rangle}{\lVert g\rVert\,\lVert \hat g\rVert} = \frac{1 + 10}{\sqrt{101}\,\sqrt{2}}
= \frac{11}{14.21} \approx 0.774 ,$$
an angle of about $39°$: $g$ pointed almost along the second axis ($84.3°$ from the first), $\hat g$ along the
diagonal ($45°$). Norm clipping at $c = 1$ would give $g / \lVert g\rVert = (0.0995, 0.995)$, cosine 1. Check:
```python
g = torch.tensor([1.0, 10.0])
gc.clipping.cosine(g, gc.clipping.clipped_copy(g, clip_value=1.0))
```
"""),
    Exercise("06.2", "build",
             "Write clip_by_norm(gradients, max_norm): given a list of gradient tensors, return new tensors "
             "clipped by their global norm, as torch.nn.utils.clip_grad_norm_ does.",
             _clips_by_norm, lambda: _reference_clip, r"""
The norm is that of all the tensors together, as one vector; every tensor is then multiplied by the same factor
$\min(1, c/\lVert g\rVert)$:
```python
def clip_by_norm(gradients, max_norm):
    total = torch.sqrt(sum((g ** 2).sum() for g in gradients))
    return [g * min(1.0, max_norm / total.item()) for g in gradients]

answer = clip_by_norm
```
Three things to get right: one norm for all the tensors (clipping each by its own norm changes the direction);
the `min(1, ...)` (a gradient shorter than $c$ stays as it is; without it every step has length $\eta c$); and new
tensors (`g * factor`), not `g.mul_(factor)`, which would overwrite the gradients you were given.
`torch.nn.utils.clip_grad_norm_` works in place on each parameter's `.grad` and divides by
$\lVert g\rVert + 10^{-6}$, which is why the two agree to about $10^{-6}$, not exactly.
""", ((lambda: _per_tensor, "clips each tensor by its own norm"), (lambda: _always_rescaled, "min(1, c / ||g||)"),
      (lambda: _by_value, "that is value clipping"), (lambda: _in_place, "changed the gradients it was given"))),
    Exercise("06.3", "compute",
             "On the wall at w = 5 (b = b*(5), x_0 = 0.5, T = 50, target 0.7): what is dL/db, by the closed form?",
             _WALL, lambda: wall_gradient(5.0)[1], r"""
On the wall every $x_t = x_0 = 0.5$, so every factor is $\lambda = w\,\sigma'(x_0)$ with
$\sigma'(0.5) = \sigma(0.5)(1 - \sigma(0.5)) = 0.6225 \times 0.3775 = 0.2350$:
$$\lambda = 5 \times 0.2350 = 1.175, \qquad \lambda^{50} \approx 3179 .$$
Then
$$\frac{\partial L}{\partial b} = 2(x_0 - 0.7)\,\frac{\lambda^{50} - 1}{\lambda - 1} = 2 \times (-0.2) \times \frac{3178}{0.175}
\approx -7.26\times10^{3} .$$
The package computes it as `gc.cliff.wall_gradient(5.0)` (it returns $(\partial L/\partial w, \partial L/\partial b)$),
and autograd agrees: `gc.cliff.cliff_loss_and_gradient(5.0, gc.cliff.cliff_wall(5.0))`. At $w = 6$ the same formula
gives $-2.8\times10^{7}$: one more unit of $w$ multiplies the wall's gradient by almost 4,000, because $\lambda$ enters
to the 50th power.
"""),
]
