"""Notebook 10's exercises (gradcourse.exercises.notebook_10), derived again: Adam's first step is torch's, the
learning rate inverts the update-ratio ceiling, and a gradient at eps/s loses half its step."""

import math

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference, seeded_mlp


def _adam_step(gradient, lr=1e-3):
    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=lr)
    parameter.grad = torch.full_like(parameter, gradient)
    optimizer.step()
    return parameter.item()


def test_10_1_the_first_step_is_torch_adams():
    assert _adam_step(1e-7) == pytest.approx(reference("10.1"), rel=1e-9)
    assert optimizer_defaults() == (0.9, 0.999, gc.optimization.ADAM_EPS)


def optimizer_defaults():
    group = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    return (*group["betas"], group["eps"])


def test_10_2_the_learning_rate_is_the_ceiling_formula_inverted():
    model = seeded_mlp(0, width=128, depth=5, activation="sigmoid")
    ceiling = gc.optimization.adam_ratio_ceiling(model, reference("10.2"))
    assert all(c == pytest.approx(1e-3, rel=0.05) for c in ceiling[1:])   # lr / rms(W), rms(W) about 1/sqrt(384)
    assert ceiling[0] == pytest.approx(1e-3 * math.sqrt(784 / 128), rel=0.05)
    assert check("10.2", 5e-5) and not check("10.2", 1e-3 / math.sqrt(3 * 784))


def test_10_3_a_gradient_at_eps_over_s_loses_half_its_step():
    s, eps, g = 1e-4, gc.optimization.ADAM_EPS, 1e-4
    assert _adam_step(s * g) / _adam_step(g) == pytest.approx(reference("10.3"), rel=1e-12)
    assert reference("10.3") == pytest.approx((g + eps) / (g + eps / s), rel=1e-9)
    assert _adam_step(s * g) == pytest.approx(-1e-3 * g / (g + eps / s), rel=1e-9)   # the step with eps/s
