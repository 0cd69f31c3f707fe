"""gradcourse.lessons.initialization: symmetry breaking, the first-loss check, the gains, LSUV."""

import math

import pytest
import torch
from torch import nn

import gradcourse
from gradcourse import MLP
from gradcourse.lessons import initialization
from gradcourse.lessons.initialization import first_loss
from helpers import batchnorm_mlp, buffer_copies, same_buffers


# ---------------------------------------------------------------- symmetry

def test_constant_init_sets_every_weight_and_zeroes_every_bias():
    model = initialization.constant_init_(MLP(in_features=5, width=7, depth=3), 0.25)
    for layer in [*model.hidden_linears(), model.output]:
        assert torch.all(layer.weight == 0.25) and torch.all(layer.bias == 0)


def test_row_spread_is_zero_for_equal_rows_and_large_for_random_ones():
    assert initialization.row_spread(torch.full((4, 3), 0.5)) == 0.0
    assert initialization.row_spread(torch.zeros(4, 3)) == 0.0
    gradcourse.set_seed(0)
    assert initialization.row_spread(torch.randn(16, 8)) > 0.5
    assert initialization.row_spread(torch.tensor([[1.0, 2.0], [1.0, 4.0]])) == pytest.approx(0.5)


def test_constant_init_keeps_every_unit_alike_through_sgd(Xy):
    """Equal rows compute equal values and get equal gradients, so SGD keeps them equal."""
    run = initialization.symmetry_run(*Xy, init="constant", value=0.05, batch_size=16, depth=3, width=12,
                                      activation="tanh")
    assert all(s < 1e-5 for s in run["row_spread"]) and all(m > 0 for m in run["moved"])
    random = initialization.symmetry_run(*Xy, init="xavier", batch_size=16, depth=3, width=12, activation="tanh")
    assert all(s > 0.5 for s in random["row_spread"]) and random["distinct_rows"] == [12, 12, 12]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_zero_init_leaves_every_hidden_weight_at_zero(Xy, activation):
    """f(0) = 0: hidden outputs are 0, so the output weights get no gradient and pass none back."""
    run = initialization.symmetry_run(*Xy, init="zeros", batch_size=16, depth=2, width=8, activation=activation)
    assert run["moved"] == [0.0, 0.0] and run["history"].loss[0] == pytest.approx(math.log(10), abs=1e-6)


# ---------------------------------------------------------------- the first loss

def test_first_loss_is_ln_10_for_a_small_output_layer_and_above_for_a_large_one(mnist_small):
    X, y = mnist_small
    small = gradcourse.core.models.seeded_mlp(X, 0, depth=3, width=32, activation="relu", init="kaiming", output_scale=0.01)
    large = gradcourse.core.models.seeded_mlp(X, 0, depth=3, width=32, activation="relu", init="kaiming", output_scale=10)
    assert initialization.first_loss(small, X, y) == pytest.approx(math.log(10), rel=0.01)
    assert initialization.first_loss(large, X, y) > 2 * math.log(10)


def test_first_loss_leaves_batchnorm_statistics_and_the_random_generator_alone(mnist_small):
    model = batchnorm_mlp().train()
    model.blocks[0].activation = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))   # its forward pass draws random numbers
    buffers, generator = buffer_copies(model), torch.get_rng_state()
    loss = first_loss(model, *mnist_small)
    assert same_buffers(buffers, model)
    assert torch.equal(torch.get_rng_state(), generator)
    assert first_loss(model, *mnist_small) == loss        # the same dropout mask again: nothing moved
    assert model.training


def test_output_scale_runs_train_the_same_network_at_each_scale(Xy):
    runs = initialization.output_scale_runs(*Xy, [0.1, 10.0], epochs=1, batch_size=16, progress=False,
                                            depth=2, width=16, activation="relu", init="kaiming")
    assert list(runs) == [0.1, 10.0] and all(len(h.loss) == 4 for h in runs.values())
    assert runs[10.0].loss[0] > runs[0.1].loss[0]


def test_steps_to_loss_reads_a_moving_mean():
    assert initialization.steps_to_loss([3.0, 1.0, 1.0, 0.2], 1.5, window=2) == 3
    assert initialization.steps_to_loss([0.1], 1.0) == 1
    assert initialization.steps_to_loss([3.0, 3.0], 1.0) is None


# ---------------------------------------------------------------- gains

def test_second_moment_gains_match_calculate_gain_where_it_is_exact():
    assert initialization.second_moment_gain("relu") == pytest.approx(torch.nn.init.calculate_gain("relu"), rel=1e-6)
    assert initialization.second_moment_gain("leaky_relu") == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2), rel=1e-6)
    assert initialization.second_moment_gain("linear") == pytest.approx(1.0, rel=1e-6)
    assert initialization.second_moment_gain("selu") == pytest.approx(1.0, rel=1e-4)   # SELU's design
    assert 1.5 < initialization.second_moment_gain("tanh") < torch.nn.init.calculate_gain("tanh")


def test_mean_field_fixed_points():
    std, chi = initialization.mean_field("relu", math.sqrt(2))
    assert std == pytest.approx(1.0, rel=1e-6) and chi == pytest.approx(1.0, abs=3e-3)
    std, chi = initialization.mean_field("selu", 1.0)
    assert std == pytest.approx(1.0, rel=1e-4) and chi > 1
    std, chi = initialization.mean_field("tanh", 5 / 3)
    assert 1.0 < std < 1.2 and 1.1 < chi < 1.3
    assert initialization.mean_field("tanh", 1.0)[0] < 0.1   # gain 1: the signal decays towards 0


def test_signal_std_follows_the_gain():
    relu = initialization.signal_std("relu", math.sqrt(2), depth=10, width=64, samples=64)
    assert len(relu["forward"]) == len(relu["backward"]) == 10
    assert 0.5 < relu["forward"][-1] / relu["forward"][0] < 2
    small = initialization.signal_std("relu", 1.0, depth=10, width=64, samples=64)
    assert small["forward"][-1] / small["forward"][0] < 0.1
    assert initialization.signal_std("relu", 1.0, depth=10, width=64, samples=64, seed=0) == small


# ---------------------------------------------------------------- LSUV

def test_lsuv_brings_every_layer_to_unit_variance(mnist_small):
    X, _ = mnist_small
    model = gradcourse.core.models.seeded_mlp(X, 0, depth=8, width=32, activation="relu")
    record = initialization.lsuv_(model, X, tolerance=0.05)
    assert [name for name, _, _ in record] == [f"hidden layer {i}" for i in range(1, 9)] + ["output layer"]
    assert all(abs(v - 1) < 0.05 and 0 <= n <= 10 for _, n, v in record)
    assert all(abs(s ** 2 - 1) < 0.05 for s in initialization.layer_output_std(model, X))
    assert all(torch.all(layer.bias == 0) for _, layer in initialization.weighted_layers(model))


def test_lsuv_works_on_any_model_with_linear_or_conv_layers():
    gradcourse.set_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    X = torch.randn(32, 1, 8, 8)
    record = initialization.lsuv_(model, X)
    assert len(record) == 2 and all(abs(v - 1) < 0.1 for _, _, v in record)


def test_lsuv_stops_after_max_iter():
    gradcourse.set_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4))
    X = 100 * torch.randn(64, 4)
    record = initialization.lsuv_(model, X, tolerance=1e-9, max_iter=2)
    assert all(n <= 2 for _, n, _ in record)


def test_lsuv_refuses_a_batch_without_variance():
    gradcourse.set_seed(0)
    with pytest.raises(ValueError, match="variance"):
        initialization.lsuv_(torch.nn.Sequential(torch.nn.Linear(3, 2)), torch.zeros(8, 3))


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call, name, value", [
    (lambda: initialization.constant_init_("net"), "model", "net"),
    (lambda: initialization.constant_init_(torch.nn.ReLU()), "model", torch.nn.ReLU()),
    (lambda: initialization.constant_init_(MLP(in_features=3, depth=1), math.inf), "value", math.inf),
    (lambda: initialization.row_spread([1.0, 2.0]), "weight", [1.0, 2.0]),
    (lambda: initialization.second_moment_gain("sigmod"), "activation", "sigmod"),
    (lambda: initialization.second_moment_gain("relu", points=2), "points", 2),
    (lambda: initialization.mean_field("tanh", 0), "init_scale", 0),
    (lambda: initialization.signal_std("tanh", 1.0, depth=0), "depth", 0),
    (lambda: initialization.signal_std("gelu", 1.0), "activation", "gelu"),
    (lambda: initialization.steps_to_loss([1.0], 0.5, window=0), "window", 0),
    (lambda: initialization.steps_to_loss(5, 0.5), "losses", 5),
    (lambda: initialization.steps_to_loss("abc", 0.5), "losses", "abc"),
    (lambda: initialization.steps_to_loss([], 0.5), "losses", []),
    (lambda: initialization.steps_to_loss([1.0, math.nan], 0.5), "losses[i]", math.nan),
    (lambda: initialization.first_loss("x", torch.randn(2, 3), torch.tensor([0, 1])), "model", "x"),
    (lambda: initialization.lsuv_(torch.nn.Linear(3, 3), torch.randn(4, 3), tolerance=0), "tolerance", 0),
    (lambda: initialization.lsuv_(torch.nn.Linear(3, 3), torch.randn(4, 3), max_iter=0), "max_iter", 0),
    (lambda: initialization.lsuv_(torch.nn.ReLU(), torch.randn(4, 3)), "model", torch.nn.ReLU()),
])
def test_bad_arguments_are_named(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()


def test_bad_runs_are_named(Xy, raises_bad):
    with raises_bad("init", "ones"):
        initialization.symmetry_run(*Xy, init="ones")
    with raises_bad("output_scales", []):
        initialization.output_scale_runs(*Xy, [])
    with raises_bad("output_scales", 5):
        initialization.output_scale_runs(*Xy, 5)
    with raises_bad("output_scales[i]", -1.0):
        initialization.output_scale_runs(*Xy, [1.0, -1.0])
    with raises_bad("depth", 0):
        initialization.symmetry_run(*Xy, init="zeros", depth=0)
