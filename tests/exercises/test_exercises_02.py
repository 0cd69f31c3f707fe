"""Notebook 02's exercises (gradcourse.exercises.notebook_02), derived again: the sigmoid chain's product and the
ReLU network's factor follow from the package, and the tiny step is absorbed in float32."""

import math

import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES


def test_02_1_and_02_2_follow_from_the_package():
    local = gc.theory.sigmoid_derivative_from_output(0.8)
    assert math.isclose(gc.theory.chain_product([local] * 4), EXERCISES["02.1"].reference(), rel_tol=1e-12)
    symmetric = torch.linspace(-1, 1, 200_000, dtype=torch.float64)   # no point at 0: half of them positive
    relu_second_moment = gc.theory.activation_derivative("relu", symmetric).pow(2).mean().item()
    assert relu_second_moment == 0.5
    with torch.random.fork_rng():
        torch.manual_seed(0)
        n_var_w = 1024 * gc.models.init_linear_(torch.nn.Linear(1024, 1024), "default").weight.var().item()
    rho = math.sqrt(n_var_w * relu_second_moment)   # n Var(w) = 1/3 for PyTorch's default
    assert math.isclose(rho ** 29, EXERCISES["02.2"].reference(), rel_tol=0.1)


def test_02_3_the_step_is_absorbed_in_float32_but_not_in_float64():
    w32, w64 = torch.tensor(0.25), torch.tensor(0.25, dtype=torch.float64)
    assert ((w32 - 0.05 * 1e-9) - w32).item() == EXERCISES["02.3"].reference() == 0.0
    assert ((w64 - 0.05 * 1e-9) - w64).item() != 0.0
