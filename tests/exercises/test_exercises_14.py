"""Notebook 14's exercises (gradcourse.exercises.notebook_14), derived again from the package: the spread after five
sigmoid layers, which first-to-last ratio is smaller at depth 30, and a network that keeps both directions. (test_checker.py
runs every exercise's reference answer, typical mistakes and junk answers.)"""

import random

import numpy as np
import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check
from gradcourse.lessons import signal_propagation as sp


def test_14_1_is_five_factors_of_rho():
    assert EXERCISES["14.1"].reference() == pytest.approx(0.22 * 0.14 ** 5)
    assert check("14.1", 0.22 * 0.14 ** 5) and not check("14.1", 0.22 * 0.14 ** 6)
    result = check("14.1", 0.14 ** 5)
    assert "start from layer 1's spread" in result.message


def test_14_2_the_back_propagated_ratio_is_the_smaller(mnist_small):
    X, y = mnist_small
    s = sp.signals_at_init(X, y, seed=0, depth=30, width=64, activation="relu")
    assert s.activation_gradients[0] / s.activation_gradients[-1] < s.weight_gradients[0] / s.weight_gradients[-1]
    assert EXERCISES["14.2"].reference() == "activations" and check("14.2", "Activations.")
    assert "pixels" in check("14.2", "weights").message


@pytest.mark.parametrize("options", [dict(activation="relu", init="kaiming"), dict(activation="tanh", init="lecun"),
                                     dict(activation="sigmoid", norm="batch")])
def test_14_3_accepts_each_recipe_that_keeps_both_directions(options):
    assert check("14.3", gc.MLP(depth=10, **options))


@pytest.mark.parametrize("options, words", [
    (dict(activation="sigmoid"), "shrink by"),
    (dict(activation="relu"), "shrink by"),
    (dict(activation="tanh", init="normal"), "gradient grows"),
    (dict(activation="relu", init="kaiming", residual=True), "I + dF/dh"),
])
def test_14_3_tells_which_direction_fails(options, words):
    result = check("14.3", gc.MLP(depth=10, **options))
    assert not result and words in result.message


def test_14_3_judges_the_recipe_not_the_draw():
    torch.manual_seed(123)
    first = check("14.3", gc.MLP(depth=10, activation="relu", init="kaiming"))
    torch.manual_seed(456)
    second = check("14.3", gc.MLP(depth=10, activation="relu", init="kaiming"))
    assert first and second and first.message == second.message
    assert "depth=10 or more" in check("14.3", gc.MLP(depth=3, activation="relu", init="kaiming")).message


def test_the_checks_leave_every_random_generator_alone():
    answer = gc.MLP(depth=10, activation="tanh", init="xavier")
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    check("14.2", "activations")
    check("14.3", answer)
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])
