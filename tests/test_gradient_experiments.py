"""Package pieces behind notebooks 03-05: recurrent Jacobians, sweeps, layer statistics,
unit activity, the dying-units experiment, the activation table, and their plots and widgets."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import experiments, theory, widgets
from gradcourse.plots import plot_layer_histograms, plot_two_per_layer


# ---------------------------------------------------------------- recurrent Jacobians

@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_recurrent_jacobian_norms_match_autograd(activation, sigma):
    W, U, inputs = experiments.random_recurrence(sigma, 8, width=6, seed=1)
    h0 = 0.1 * torch.ones(6, dtype=torch.float64)
    norms = theory.recurrent_jacobian_norms(W, U, inputs, h0=h0, activation=activation)
    for T in (1, 4, 8):
        J = torch.autograd.functional.jacobian(
            lambda h: theory.recurrent_final_state(W, U, inputs[:T], h, activation=activation), h0)
        assert norms[T - 1] == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-10)


@pytest.mark.parametrize("activation, sigma", [("tanh", 0.9), ("sigmoid", 3.5)])
def test_below_one_over_gamma_the_norms_stay_under_the_bound(activation, sigma):
    W, U, inputs = experiments.random_recurrence(sigma, 40, seed=0)
    gamma = theory.recurrent_derivative_bound(activation)
    norms = theory.recurrent_jacobian_norms(W, U, inputs, activation=activation)
    assert all(n <= (gamma * sigma) ** T * (1 + 1e-9) for T, n in enumerate(norms, start=1))


def test_random_recurrence_has_every_singular_value_equal_to_sigma_max():
    W, U, inputs = experiments.random_recurrence(1.7, 5, width=10, input_size=3, input_scale=0.2, seed=2)
    assert torch.allclose(torch.linalg.svdvals(W), torch.full((10,), 1.7, dtype=torch.float64))
    assert U.shape == (10, 3) and inputs.shape == (5, 3)
    same = experiments.random_recurrence(1.7, 5, width=10, input_size=3, input_scale=0.2, seed=2)
    assert all(torch.equal(a, b) for a, b in zip((W, U, inputs), same))


def test_recurrent_derivative_bounds():
    assert theory.recurrent_derivative_bound("tanh") == 1.0
    assert theory.recurrent_derivative_bound("sigmoid") == 0.25


def test_recurrent_functions_reject_bad_arguments(raises_bad):
    W, U, inputs = experiments.random_recurrence(1.0, 3, width=4)
    with raises_bad("activation", "relu"):
        theory.recurrent_jacobian_norms(W, U, inputs, activation="relu")
    with raises_bad("W", [[1.0]]):
        theory.recurrent_jacobian_norms([[1.0]], U, inputs)
    with pytest.raises(ValueError, match="shapes do not fit"):
        theory.recurrent_jacobian_norms(W[:, :3], U, inputs)
    with raises_bad("sigma_max", 0):
        experiments.random_recurrence(0, 3)
    with raises_bad("steps", 0):
        experiments.random_recurrence(1.0, 0)
    with raises_bad("activation", "elu"):
        theory.recurrent_derivative_bound("elu")


# ---------------------------------------------------------------- sweeps and statistics

def test_scale_sweep_per_layer_factor_is_the_gain(mnist_small):
    X, y = mnist_small
    sweep = experiments.scale_sweep(X, y, [0.8, 1.25], depth=20, width=64)
    for g, norms in sweep.items():
        assert len(norms) == 20
        rho = (norms[0] / norms[-1]) ** (1 / 19)
        assert rho == pytest.approx(g, rel=0.08)


def test_scale_sweep_rejects_bad_scales(mnist_small, raises_bad):
    X, y = mnist_small
    with pytest.raises(ValueError, match="scales"):
        experiments.scale_sweep(X, y, [])
    with raises_bad("scales[i]", -1.0):
        experiments.scale_sweep(X, y, [-1.0])


def test_layer_statistics_shapes_and_gradients_match_autograd(mnist_small):
    X, y = mnist_small
    stats = experiments.layer_statistics(X, y, depth=3, activation="tanh", init="xavier", width=32, seed=4)
    assert [tuple(h.shape) for h in stats["activations"]] == [(256, 32)] * 3
    assert [tuple(g.shape) for g in stats["gradients"]] == [(256, 32)] * 3
    gradcourse.set_seed(4)
    model = gradcourse.MLP(width=32, depth=3, activation="tanh", init="xavier")
    assert stats["weight_gradient_norms"] == pytest.approx(gradcourse.layer_gradient_norms(model, X, y), rel=1e-6)
    # dL/dz_l of the last hidden layer, by hand: W_out^T dL/dlogits, times tanh'(z) = 1 - h^2
    logits = model(X)
    dlogits = (torch.softmax(logits, dim=1) - torch.nn.functional.one_hot(y, 10)) / len(y)
    by_hand = (dlogits @ model.output.weight) * (1 - stats["activations"][-1] ** 2)
    assert torch.allclose(stats["gradients"][-1], by_hand.detach(), atol=1e-7)


def test_std_per_layer():
    assert experiments.std_per_layer([torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])]) == [pytest.approx(math.sqrt(2)), 0.0]


def test_unit_activity_counts_units_negative_on_every_input(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=16, depth=2, activation="relu", init="kaiming")
    with torch.no_grad():
        model.blocks[0].linear.bias[:4] = -1e4  # 4 of 16 units negative everywhere
    activity = experiments.unit_activity(model, X)
    assert activity["inactive"][0] == 0.25 and activity["no_gradient"][0] == 0.25
    assert activity["no_gradient_units"][0][:4].all() and not activity["no_gradient_units"][0][4:].any()
    assert model.training  # the mode is restored


def test_unit_activity_sees_leaky_units_keep_a_gradient(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=16, depth=1, activation="leaky_relu", init="kaiming")
    with torch.no_grad():
        model.blocks[0].linear.bias[:] = -1e4
    activity = experiments.unit_activity(model, X)
    assert activity["inactive"] == [1.0] and activity["no_gradient"] == [0.0]


def test_dying_units_experiment_freezes_a_dead_relu_network(mnist_small):
    X, y = mnist_small
    relu = experiments.dying_units_experiment(X, y, "relu", bias_shift=50.0, recovery_epochs=1, width=16, depth=2)
    assert relu["activity"]["after_shift"]["no_gradient"] == [1.0, 1.0]
    assert relu["hidden_weights_changed"] == [False, False]
    assert relu["monitor"].steps() == 4  # 256 digits / 64 per batch, monitored
    elu = experiments.dying_units_experiment(X, y, "elu", bias_shift=2.0, recovery_epochs=1, width=16, depth=2)
    assert elu["activity"]["after_shift"]["no_gradient"] == [0.0, 0.0]
    assert all(elu["hidden_weights_changed"])


def test_dying_units_experiment_rejects_bad_arguments(mnist_small, raises_bad):
    X, y = mnist_small
    with raises_bad("recovery_epochs", 0):
        experiments.dying_units_experiment(X, y, recovery_epochs=0)
    with raises_bad("bias_shift", float("nan")):
        experiments.dying_units_experiment(X, y, bias_shift=float("nan"))


# ---------------------------------------------------------------- activation table

def test_activation_table_ranges():
    rows = {row["name"]: row for row in theory.activation_table()}
    assert set(rows) == set(gradcourse.models.ACTIVATIONS)
    assert rows["sigmoid"]["d_max"] == pytest.approx(0.25) and rows["sigmoid"]["saturates_both_sides"]
    assert 0 < rows["tanh"]["d_min"] and rows["tanh"]["d_max"] == 1.0
    assert rows["relu"]["d_min"] == 0.0 and not rows["relu"]["saturates_both_sides"]
    assert rows["gelu"]["d_max"] == pytest.approx(1.1289, abs=1e-3) and rows["gelu"]["d_min"] < 0
    assert rows["silu"]["d_max"] == pytest.approx(1.0998, abs=1e-3)


def test_activation_table_rejects_bad_arguments(raises_bad):
    with raises_bad("activations[i]", "swish"):
        theory.activation_table(["swish"])
    with raises_bad("high", -20.0):
        theory.activation_table(high=-20.0)


# ---------------------------------------------------------------- plots and widgets

def test_layer_histograms_one_line_per_layer():
    tensors = [torch.randn(500) * s for s in (1.0, 0.5, 0.25)]
    before = plt.get_fignums()
    fig = plot_layer_histograms({"a": tensors, "b": tensors}, title="t")
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]


def test_layer_histograms_reject_bad_input():
    with pytest.raises(ValueError, match="per_layer"):
        plot_layer_histograms({})
    with pytest.raises(ValueError, match="finite"):
        plot_layer_histograms({"a": [torch.zeros(4)]})


def test_two_per_layer_draws_both_panels():
    fig = plot_two_per_layer({"x": [1, 0.5]}, {"x": [2, 4], "y": [1, 1]}, "left", "right")
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 2]
    assert fig.axes[0].get_ylabel() == "left"


def test_new_figures_and_explorers(mnist_small):
    X, y = mnist_small
    assert "σ_max(W) = 0.9" in widgets.recurrent_figure(0.9, steps=10).axes[0].get_title()
    assert isinstance(widgets.init_figure(X, y, depth=3, width=16), Figure)
    assert "gelu" in widgets.activation_figure(X, y, "gelu", depth=3, width=16).axes[0].get_title()
    before = plt.get_fignums()
    for explorer in (widgets.recurrent_explorer(steps=10), widgets.init_explorer(X, y, depth=3, width=16),
                     widgets.activation_explorer(X, y, depth=3, width=16)):
        assert explorer.__class__.__name__ == "VBox"
    assert plt.get_fignums() == before


def test_new_explorers_reject_values_outside_their_sliders(mnist_small, raises_bad):
    X, y = mnist_small
    with raises_bad("sigma_max", 7.0):
        widgets.recurrent_explorer(sigma_max=7.0)
    with raises_bad("depth", 1):
        widgets.init_explorer(X, y, depth=1)
    with raises_bad("init", "he"):
        widgets.activation_explorer(X, y, init="he")
