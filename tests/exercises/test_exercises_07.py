"""Notebook 07's exercises (gradcourse.exercises.notebook_07), derived again: a residual block's Jacobian is identity
plus branch, ten blocks add about ten ReLU means, and tanh stops the drift."""

import math

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference


def test_07_1_ten_residual_blocks_by_autograd():
    assert gc.theory.sigmoid_derivative(0.0) == 0.25
    h0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    h = h0
    for _ in range(10):
        h = h + 0.25 * h
    (by_autograd,) = torch.autograd.grad(h, h0)
    assert by_autograd.item() == pytest.approx(reference("07.1"), rel=1e-12)


def test_07_1_the_block_jacobian_is_identity_plus_branch():
    torch.manual_seed(0)
    block = gc.MLP(in_features=4, width=4, depth=2, activation="sigmoid", residual=True).blocks[1]
    x = torch.randn(4)
    jacobian = torch.func.jacrev(block)(x)
    branch = torch.diag(gc.theory.sigmoid_derivative(block.linear(x))) @ block.linear.weight
    assert torch.allclose(jacobian, torch.eye(4) + branch, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_07_2_ten_blocks_add_about_ten_relu_means(seed):
    torch.manual_seed(seed)
    model = gc.MLP(width=64, depth=50, activation="relu", init="kaiming", norm="batch", residual=True)
    X, _ = gc.load_mnist("train", limit=256)
    means = gc.residual.stream_statistics(model, X)["mean"]
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.relu(z).mean().item() == pytest.approx(1 / math.sqrt(2 * math.pi), rel=0.01)
    assert means[9] == pytest.approx(reference("07.2"), rel=0.05)
    assert means[48] > 10


def test_07_3_tanh_stops_the_drift_and_the_others_do_not():
    for seed in range(2):
        torch.manual_seed(seed)
        assert check("07.3", reference("07.3"))
    for activation in ("relu", "elu"):
        torch.manual_seed(0)
        model = gc.MLP(width=64, depth=50, activation=activation, init="kaiming", norm="batch", residual=True)
        assert not check("07.3", model)
    pre = gc.MLP(width=64, depth=50, activation="relu", init="kaiming", norm="batch", residual="pre")
    assert "pre-activation" in check("07.3", pre).message
    assert "keep the network" in check("07.3", gc.MLP(width=64, depth=50, activation="tanh", norm="batch")).message
