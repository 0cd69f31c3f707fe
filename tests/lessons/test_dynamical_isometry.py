"""gradcourse.lessons.dynamical_isometry: the weights as drawn, the Jacobian by hand against autograd, the spectra
of networks at chi = 1 against Pennington et al.'s closed forms, the spectrum summary, Saxe et al.'s learning time,
and the ValueErrors."""

import math

import pytest
import torch

from gradcourse.lessons import dynamical_isometry as iso
from gradcourse.lessons import edge_of_chaos as chaos


def test_orthogonal_layers_are_sigma_w_times_orthogonal_and_gaussian_ones_have_variance_sigma_w2_over_n():
    for weight, bias in iso.random_layers(3, 64, weights="orthogonal", sigma_w=1.5, sigma_b=0.2, seed=1):
        assert torch.allclose(weight @ weight.T, 2.25 * torch.eye(64, dtype=torch.float64), atol=1e-12)
        assert bias.shape == (64,) and bias.dtype == torch.float64
    weights = torch.stack([w for w, _ in iso.random_layers(4, 256, weights="gaussian", sigma_w=2.0, seed=0)])
    assert weights.std().item() == pytest.approx(2.0 / 16, rel=0.01)
    again = iso.random_layers(4, 256, weights="gaussian", sigma_w=2.0, seed=0)
    assert all(torch.equal(w, v) for w, (v, _) in zip(weights, again))


@pytest.mark.parametrize("activation", list(iso.ACTIVATIONS))
def test_the_product_of_the_layer_jacobians_is_the_autograd_jacobian(activation):
    layers = iso.random_layers(6, 20, weights="gaussian", sigma_w=1.3, sigma_b=0.1, seed=2)
    x = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(iso.jacobian_by_hand(layers, x, activation), iso.input_output_jacobian(layers, x, activation),
                          atol=1e-12)


def test_every_critical_configuration_has_chi_1():
    configurations = iso.critical_configurations(1 / 64)
    assert len(configurations) == 6 and configurations["ReLU, orthogonal"]["sigma_w"] == math.sqrt(2)
    tanh = configurations["tanh, Gaussian"]
    assert chaos.chi_1(tanh["sigma_w"], tanh["sigma_b"]) == pytest.approx(1, abs=1e-6)
    assert chaos.length_fixed_point(tanh["sigma_w"], tanh["sigma_b"]) == pytest.approx(1 / 64, rel=1e-5)


def test_a_linear_orthogonal_network_is_an_isometry_at_any_depth():
    configurations = {"linear": dict(activation="linear", weights="orthogonal", sigma_w=1.0)}
    spectra = iso.jacobian_spectra(configurations, [1, 30], width=32, seed=0)
    for s in spectra["linear"].values():
        assert s.shape == (32,) and torch.allclose(s, torch.ones(32, dtype=torch.float64), atol=1e-10)


@pytest.mark.parametrize("activation, weights, factor", [("linear", "gaussian", 1.0), ("linear", "orthogonal", 0.0),
                                                         ("relu", "gaussian", 2.0), ("relu", "orthogonal", 1.0)])
def test_the_variance_of_s2_is_pennington_et_als_closed_form(activation, weights, factor):
    assert iso.spectrum_variance(7, activation=activation, weights=weights) == pytest.approx(7 * factor, abs=1e-12)


def test_tanh_with_a_small_fixed_length_is_nearly_isometric_with_orthogonal_weights():
    small = iso.spectrum_variance(64, activation="tanh", weights="orthogonal", q_star=1 / 64)
    assert 0 < small < 0.2 and iso.spectrum_variance(64, activation="tanh", weights="orthogonal", q_star=1.0) > 10
    assert iso.spectrum_variance(64, activation="tanh", weights="gaussian", q_star=1 / 64) == pytest.approx(64 + small)


def test_a_wide_gaussian_linear_network_has_the_mean_and_variance_of_the_theory():
    configurations = {"linear": dict(activation="linear", weights="gaussian", sigma_w=1.0)}
    s = iso.jacobian_spectra(configurations, [3], width=400, seed=0)["linear"][3]
    summary = iso.spectrum_summary(s)
    assert summary["mean_s2"] == pytest.approx(1, abs=0.1) and summary["var_s2"] == pytest.approx(3, rel=0.2)


def test_a_relu_network_has_about_half_its_singular_values_at_zero():
    configurations = {"relu": dict(activation="relu", weights="orthogonal", sigma_w=math.sqrt(2))}
    s = iso.jacobian_spectra(configurations, [5], width=200, seed=0)["relu"][5]
    assert 0.4 < (s < 1e-8).double().mean().item() < 0.6


def test_the_summary_of_a_known_spectrum():
    summary = iso.spectrum_summary(torch.tensor([2.0, 1.0, 0.5, 0.0]))
    assert summary["mean_s2"] == pytest.approx((4 + 1 + 0.25) / 4) and summary["largest_s2"] == 4
    assert summary["median_s2"] == 0.25 and summary["smallest_s"] == 0 and summary["share_near_1"] == 0.25
    assert iso.spectrum_summary([2.0, 1.0, 0.5], near=2.5)["share_near_1"] == 1.0


def test_deep_linear_networks_learn_faster_from_orthogonal_weights_than_from_gaussian_ones():
    steps, lr = iso.learning_time(1, weights="gaussian", max_steps=50)
    assert steps is not None and steps <= 3 and lr == 1.0   # one convex step at lr = 1 nearly solves it
    orthogonal, gaussian = iso.learning_time(12, weights="orthogonal")[0], iso.learning_time(12, weights="gaussian")[0]
    assert orthogonal < gaussian / 3, (orthogonal, gaussian)
    assert iso.learning_time(12, weights="gaussian", max_steps=3) == (None, None)
    times = iso.learning_times([1, 4], max_steps=100, seed=1)
    assert set(times) == {"gaussian", "orthogonal"} and all(len(v) == 2 for v in times.values())


@pytest.mark.parametrize("call, name, value", [
    (lambda: iso.random_layers(0, 4, weights="gaussian", sigma_w=1.0), "depth", 0),
    (lambda: iso.random_layers(2, 4, weights="uniform", sigma_w=1.0), "weights", "uniform"),
    (lambda: iso.random_layers(2, 4, weights="gaussian", sigma_w=-1.0), "sigma_w", -1.0),
    (lambda: iso.jacobian_by_hand([], torch.zeros(3), "sigmoid"), "activation", "sigmoid"),
    (lambda: iso.critical_configurations(0.0), "q_star", 0.0),
    (lambda: iso.spectrum_summary([1.0], near=1.0), "near", 1.0),
    (lambda: iso.spectrum_variance(0, activation="relu", weights="gaussian"), "depth", 0),
    (lambda: iso.spectrum_variance(3, activation="gelu", weights="gaussian"), "activation", "gelu"),
    (lambda: iso.learning_time(2, weights="orthogonal", level=0.0), "level", 0.0),
    (lambda: iso.learning_time(2, weights="orthogonal", max_steps=0), "max_steps", 0),
    (lambda: iso.jacobian_spectra({"a": dict(activation="linear", weights="gaussian", sigma_w=1.0)}, [0]),
     "depths[i]", 0),
])
def test_bad_arguments_are_refused_naming_the_parameter(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()


def test_empty_or_non_finite_inputs_are_refused():
    with pytest.raises(ValueError, match="singular_values="):
        iso.spectrum_summary([float("nan")])
    with pytest.raises(ValueError, match="configurations="):
        iso.jacobian_spectra({}, [1])
    with pytest.raises(ValueError, match="depths="):
        iso.learning_times([])
