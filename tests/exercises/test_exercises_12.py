"""Notebook 12's exercises (gradcourse.exercises.notebook_12), derived again: the second layer's rms, the first loss
of a small output layer, and the BatchNorm repairs of the broken network."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check
from helpers import reference, seeded_mlp


def test_12_1_the_second_layer_measures_sqrt_of_128_over_2():
    assert reference("12.1") == pytest.approx(math.sqrt(128 / 2), rel=0.1)
    for seed in range(1, 3):
        assert EXERCISES["12.1"].judge.expected(seed) == pytest.approx(8.0, rel=0.1)


def test_12_2_the_logits_spread_is_the_statements_and_the_loss_follows():
    X, y = gc.load_mnist("train", limit=256)
    model = seeded_mlp(0, depth=8, width=128, activation="relu", init="kaiming")
    with torch.no_grad():
        assert model(X).std().item() == pytest.approx(1.77, abs=0.005)    # section 3's logits at seed 0
        model.output.weight.mul_(0.1)
        measured = F.cross_entropy(model(X), y).item()
    assert measured == pytest.approx(reference("12.2"), abs=0.01)          # 2.313 against the expansion's 2.318


def test_12_3_every_batchnorm_repair_passes_and_slower_ones_are_told_why():
    shape = dict(depth=8, width=128, activation="sigmoid", norm="batch")
    for seed, init in [(1, "normal"), (2, "xavier"), (3, "kaiming")]:
        assert check("12.3", seeded_mlp(seed, **shape, init=init))
    pre = check("12.3", seeded_mlp(0, depth=8, width=128, activation="sigmoid", init="xavier", residual="pre"))
    assert not pre and "no symptom" in pre.message and "too slowly" in pre.message


def test_12_3_trains_a_copy_and_keeps_the_learners_batchnorm_statistics():
    model = reference("12.3")
    before = copy.deepcopy(model.state_dict())
    assert check("12.3", model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
