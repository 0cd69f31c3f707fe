"""Notebook 05's exercises (gradcourse.exercises.notebook_05), derived again: the derivatives at -2 are autograd's,
ReLU halves both second moments of a sample, and the critical tanh gain is measured on the notebook's digits."""

import math

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference


def test_05_1_the_derivatives_at_minus_2_are_autograds():
    z = torch.tensor([-2.0], dtype=torch.float64)
    by_autograd = tuple(gc.theory.activation_derivative(name, z).item() for name in ("relu", "leaky_relu", "elu"))
    assert by_autograd == pytest.approx(reference("05.1"), rel=1e-9, abs=1e-12)
    assert check("05.1", by_autograd)


def test_05_2_relu_halves_both_second_moments_of_a_sample():
    z = 2 * torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    forward = torch.relu(z).pow(2).mean().item()
    backward = gc.theory.activation_derivative("relu", z).pow(2).mean().item()
    assert z.var().item() == pytest.approx(4, rel=0.01)
    assert (forward, backward) == pytest.approx(reference("05.2"), rel=0.01)
    variance = torch.relu(z).var().item()
    assert not check("05.2", (variance, backward)) and variance == pytest.approx(2 - 2 / math.pi, rel=0.01)


def test_05_3_the_critical_tanh_gain_is_measured_on_the_notebooks_digits():
    X, y = gc.load_mnist("train", limit=256)
    ratio = {g: gc.at_init.first_to_last_ratio(X, y, [30], "tanh", "xavier", init_scale=g, width=64, seed=0)[0]
             for g in (1.0, 1.2, math.sqrt(2), 5 / 3)}
    factor = {g: r ** (1 / 29) for g, r in ratio.items()}
    assert abs(factor[1.2] - 1) < 0.025 and factor[1.0] < 0.95
    assert factor[math.sqrt(2)] > 1.03 and ratio[5 / 3] > 10   # 5/3 explodes by the notebook's measure
    assert math.isclose(gc.theory.activation_derivative("tanh", torch.zeros(1)).item(), 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_05_3_the_reference_gain_passes_whatever_the_networks_seed(seed):
    torch.manual_seed(seed)
    assert check("05.3", reference("05.3"))
