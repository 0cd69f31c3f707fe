"""Notebook 04's exercises (gradcourse.exercises.notebook_04), derived again: He's std is torch's, a uniform guess
costs ln 10, and a small output layer starts there for any seed."""

import math

import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check


def test_04_1_the_he_std_is_torchs():
    assert math.isclose(EXERCISES["04.1"].reference(), torch.nn.init.calculate_gain("relu") / math.sqrt(256))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        layer = gc.models.init_linear_(torch.nn.Linear(256, 128), "kaiming")
    assert layer.weight.shape == (128, 256)   # fan-in 256: the columns
    assert abs(layer.weight.std().item() / EXERCISES["04.1"].reference() - 1) < 0.03


def test_04_2_a_uniform_guess_costs_ln_10():
    loss = torch.nn.functional.cross_entropy(torch.zeros(10, 10), torch.arange(10)).item()
    assert math.isclose(loss, EXERCISES["04.2"].reference(), rel_tol=1e-6)


def test_04_4_a_small_output_layer_starts_at_ln_10_for_any_seed():
    X, y = gc.load_mnist("train", limit=256)
    for seed in range(5):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = gc.MLP(depth=3, width=128, activation="relu", init="kaiming", output_scale=0.1)
        assert abs(gc.initialization.first_loss(model, X, y) / math.log(10) - 1) < 0.05
        assert check("04.4", model)
    logits = torch.zeros(256, 10)
    assert math.isclose(torch.nn.functional.cross_entropy(logits, y).item(), math.log(10), rel_tol=1e-6)


def test_04_5_the_first_losses_are_ln_3_and_the_priors_entropy():
    equal, biased = EXERCISES["04.5"].reference()
    prior = torch.tensor([0.8, 0.1, 0.1])
    assert math.isclose(equal, torch.nn.functional.cross_entropy(torch.zeros(3, 3), torch.arange(3)).item(),
                        rel_tol=1e-6)
    assert math.isclose(biased, torch.distributions.Categorical(probs=prior).entropy().item(), rel_tol=1e-6)
    labels = torch.tensor([0] * 8 + [1, 2])                               # the prior, exactly
    logits = prior.log().expand(10, 3)
    assert math.isclose(torch.nn.functional.cross_entropy(logits, labels).item(), biased, rel_tol=1e-6)
    assert check("04.5", (math.log(3), biased)) and not check("04.5", (biased, biased))
