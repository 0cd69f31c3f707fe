"""Notebook 09's exercises (gradcourse.exercises.notebook_09), derived again: BatchNorm's biased batch variance,
Pythagoras for an SGD step behind BatchNorm, and the max-norm bound that keeps the signal."""

import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse as gc
from gradcourse.exercises import check
from gradcourse.exercises.judging import per_layer_factor
from helpers import reference, seeded_mlp


def test_09_1_batchnorm_uses_the_biased_batch_variance():
    z = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    by_hand = ((z - z.mean()) / z.var(unbiased=False).sqrt())[2].item()
    assert by_hand == pytest.approx(3 / math.sqrt(14 / 3), rel=1e-12)
    assert reference("09.1") == pytest.approx(by_hand, rel=1e-5)   # BatchNorm's eps = 1e-5 on a variance of 4.7
    assert not check("09.1", ((z - z.mean()) / z.std())[2].item())   # the unbiased variance is a typical mistake


def test_09_2_an_sgd_step_behind_batchnorm_lengthens_the_weights_by_pythagoras():
    model = seeded_mlp(0, width=100, depth=3, activation="sigmoid", init="normal", init_scale=0.1, norm="batch").double()
    X, y = gc.load_mnist("train", limit=256)
    W = model.blocks[0].linear.weight
    with torch.no_grad():
        W.mul_(3.0 / W.norm())                                  # ||W|| = 3
    grad, = torch.autograd.grad(F.cross_entropy(model(X.double()), y), W)
    assert abs((grad * W).sum().item()) < 1e-6 * grad.norm().item() * 3   # orthogonal to W, up to BatchNorm's eps
    lr = 4.0 / grad.norm().item()                               # a step of length 4, as 0.5 * 8
    assert torch.linalg.vector_norm(W.detach() - lr * grad).item() == pytest.approx(reference("09.2"), rel=1e-6)


def test_09_3_max_norm_at_sqrt_2_keeps_the_signal_and_cuts_every_row():
    for seed in range(3):
        model = seeded_mlp(seed, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
        rows = [layer.weight.norm(dim=1).min().item() for layer in model.hidden_linears()]
        assert min(rows) > math.sqrt(2)                         # every row is longer than the bound, so it is cut
        gc.weight_constraints.constrain_weights_(model, "max_norm", max_norm=math.sqrt(2))
        assert max(gc.weight_constraints.weight_norms(model)["max_row_norm"]) == pytest.approx(math.sqrt(2), rel=1e-5)
        assert abs(per_layer_factor(model) - 1) < 0.05
    one = seeded_mlp(0, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
    gc.weight_constraints.constrain_weights_(one, "max_norm", max_norm=1.0)
    assert per_layer_factor(one) == pytest.approx(math.sqrt(0.5), rel=0.05)   # the notebook's c = 1
    weight_norm = seeded_mlp(0, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
    gc.weight_constraints.constrain_weights_(weight_norm, "weight_norm")
    assert "max-norm constraint" in check("09.3", weight_norm).message
