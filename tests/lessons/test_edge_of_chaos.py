"""gradcourse.lessons.edge_of_chaos: Gauss-Hermite expectations against closed forms and a fine trapezoid rule,
the mean-field maps against their defining equations (fixed points, slopes at the fixed points, the critical line),
a wide random network against the maps, the mean-field MLP and the trainability runs, and the ValueErrors."""

import math

import numpy as np
import pytest
import torch

import gradcourse
from gradcourse.lessons import edge_of_chaos as chaos

SIGMA_B = math.sqrt(0.05)


def _trapezoid(f, q=1.0):
    """E[f(sqrt(q) z)] by a fine trapezoid rule on [-12, 12]: an independent integrator."""
    z = np.linspace(-12, 12, 200_001)
    return np.trapezoid(f(math.sqrt(q) * z) * np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi), z)


@pytest.mark.parametrize("k, moment", [(1, 1), (2, 3), (3, 15), (5, 945)])
def test_gauss_hermite_is_exact_for_the_even_moments(k, moment):
    assert chaos.gaussian_expectation(lambda h: h ** (2 * k)) == pytest.approx(moment, rel=1e-12)
    assert chaos.gaussian_expectation(lambda h: h ** (2 * k), q=2.0) == pytest.approx(moment * 2 ** k, rel=1e-12)


@pytest.mark.parametrize("q, tolerance", [(0.01, 1e-12), (0.5, 1e-10), (1.0, 1e-9), (4.0, 1e-6), (7.0, 1e-5)])
def test_tanh_expectations_match_a_fine_trapezoid_rule(q, tolerance):
    for f in (lambda h: np.tanh(h) ** 2, lambda h: (1 - np.tanh(h) ** 2) ** 2):
        assert chaos.gaussian_expectation(f, q) == pytest.approx(_trapezoid(f, q), rel=tolerance)


def test_the_nodes_grow_with_the_variance_because_64_are_too_few_for_a_steep_tanh():
    steep = lambda h: (1 - np.tanh(h) ** 2) ** 2   # noqa: E731
    assert chaos.quadrature_points(1.0) == 128 and chaos.quadrature_points(100.0) == chaos.MAX_POINTS
    assert abs(chaos.gaussian_expectation(steep, 5.5, points=64) / _trapezoid(steep, 5.5) - 1) > 1e-3
    assert abs(chaos.gaussian_expectation(steep, 5.5) / _trapezoid(steep, 5.5) - 1) < 1e-5


def test_relu_second_moment_is_one_half_and_arrays_of_variances_broadcast():
    assert chaos.gaussian_expectation(lambda h: np.maximum(h, 0) ** 2) == pytest.approx(0.5, abs=1e-14)
    values = chaos.gaussian_expectation(lambda h: h ** 2, q=np.array([[1.0, 2.0], [3.0, 0.0]]))
    assert values.shape == (2, 2) and np.allclose(values, [[1, 2], [3, 0]])


def test_the_fixed_point_solves_the_length_map_and_is_zero_below_sigma_w_1_without_bias():
    for sigma_w, sigma_b in [(1.2, SIGMA_B), (2.0, 0.0), (0.8, 0.5), (3.0, 1.0)]:
        q = chaos.length_fixed_point(sigma_w, sigma_b)
        assert chaos.length_map(q, sigma_w, sigma_b) == pytest.approx(q, rel=1e-10)
    assert chaos.length_fixed_point(0.9, 0.0) < 1e-12 and chaos.length_fixed_point(1.0, 0.0) < 1e-12
    grid = chaos.length_fixed_point(np.array([1.2, 2.0]), np.array([SIGMA_B, 0.0]))
    assert grid.tolist() == pytest.approx([chaos.length_fixed_point(1.2, SIGMA_B), chaos.length_fixed_point(2.0, 0.0)])


def test_chi_1_is_sigma_w_squared_in_the_linear_regime_and_matches_an_autograd_derivative():
    assert chaos.chi_1(0.7, 0.0) == pytest.approx(0.49, rel=1e-9)
    q = chaos.length_fixed_point(1.5, 0.3)
    h = torch.linspace(-12, 12, 100_001, dtype=torch.float64) * math.sqrt(q)
    h.requires_grad_()
    (slope,) = torch.autograd.grad(torch.tanh(h).sum(), h)
    density = torch.exp(-h.detach() ** 2 / (2 * q)) / math.sqrt(2 * math.pi * q)
    expected = 1.5 ** 2 * torch.trapezoid(slope ** 2 * density, h.detach()).item()
    assert chaos.chi_1(1.5, 0.3) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("sigma_w", [0.9, 1.33, 2.0, 3.0])
def test_the_correlation_map_keeps_c_1_and_its_slope_there_is_chi_1(sigma_w):
    assert chaos.correlation_map(1.0, sigma_w, SIGMA_B) == pytest.approx(1.0, abs=1e-12)
    step = 1e-4
    slope = (1.0 - chaos.correlation_map(1 - step, sigma_w, SIGMA_B)) / step
    assert slope == pytest.approx(chaos.chi_1(sigma_w, SIGMA_B), rel=2e-3)


def test_the_correlation_fixed_point_is_1_when_ordered_and_a_fixed_point_below_1_when_chaotic():
    assert chaos.correlation_fixed_point(0.9, SIGMA_B) == 1.0
    c = chaos.correlation_fixed_point(2.0, SIGMA_B)
    assert 0 < c < 1 and chaos.correlation_map(c, 2.0, SIGMA_B) == pytest.approx(c, abs=1e-9)
    assert chaos.correlations_through_depth(0.3, 200, 2.0, SIGMA_B)[-1] == pytest.approx(c, abs=1e-6)
    assert chaos.correlation_map(0.4, 0.8, 0.0) == 0.4   # q* = 0: a linear network passes c on


def test_the_depth_scales_are_the_slopes_of_the_maps_at_their_fixed_points():
    ordered = chaos.depth_scales(0.9, SIGMA_B)
    assert ordered["xi_c"] == pytest.approx(-1 / math.log(ordered["chi_1"]), rel=1e-6)
    for sigma_w in (0.9, 2.5):
        scales = chaos.depth_scales(sigma_w, SIGMA_B)
        q, step = scales["q_star"], 1e-5
        slope = (chaos.length_map(q + step, sigma_w, SIGMA_B) - chaos.length_map(q - step, sigma_w, SIGMA_B)) / (2 * step)
        assert math.exp(-1 / scales["xi_q"]) == pytest.approx(slope, rel=1e-5)
        c = scales["c_star"] - 1e-3 if sigma_w > 1.5 else 1 - 1e-4
        slope_c = (chaos.correlation_map(scales["c_star"], sigma_w, SIGMA_B) - chaos.correlation_map(c, sigma_w, SIGMA_B)) / (scales["c_star"] - c)
        assert math.exp(-1 / scales["xi_c"]) == pytest.approx(slope_c, rel=5e-3)


def test_the_critical_line_and_the_critical_sigma_w_have_chi_1_equal_to_1():
    sigma_w, sigma_b = chaos.critical_line([1 / 64, 0.25, 1.0])
    for w, b, q in zip(sigma_w, sigma_b, [1 / 64, 0.25, 1.0]):
        assert chaos.chi_1(w, b) == pytest.approx(1, abs=1e-6) and chaos.length_fixed_point(w, b) == pytest.approx(q, rel=1e-6)
    assert chaos.critical_sigma_w(0.0) == pytest.approx(1.0, abs=1e-6)
    assert chaos.chi_1(chaos.critical_sigma_w(SIGMA_B), SIGMA_B) == pytest.approx(1, abs=1e-6)
    assert chaos.critical_sigma_w(SIGMA_B) ** 2 == pytest.approx(1.761, abs=1e-3)   # Schoenholz et al.'s sigma_b^2 = 0.05


def test_the_phase_diagram_has_chi_1_on_its_grid_and_the_critical_line_inside_it():
    phase = chaos.phase_diagram(np.linspace(0.5, 4, 8), np.linspace(0, 0.5, 5))
    assert phase["chi_1"].shape == (5, 8)
    assert phase["chi_1"][2, 3] == pytest.approx(chaos.chi_1(math.sqrt(np.linspace(0.5, 4, 8)[3]), math.sqrt(0.25)))
    weights, biases = phase["critical"]
    assert len(weights) > 10 and weights.max() <= 4 and biases.max() <= 0.5


def test_a_wide_network_follows_the_maps():
    sigma_w = chaos.critical_sigma_w(SIGMA_B)
    signals = chaos.wide_network_signals(sigma_w, SIGMA_B, depth=10, width=1000, correlations=(0.5, 0.5), seed=1)
    assert len(signals["q"]) == 11 and len(signals["c"]) == 2 and signals["gradient"][-1] == 1.0
    q = chaos.length_fixed_point(sigma_w, SIGMA_B)
    assert np.mean(signals["q"]) == pytest.approx(q, rel=0.1)
    theory = chaos.correlations_through_depth(0.5, 10, sigma_w, SIGMA_B)
    assert np.abs(np.mean(signals["c"], 0) - theory).max() < 0.1
    again = chaos.wide_network_signals(sigma_w, SIGMA_B, depth=10, width=1000, correlations=(0.5, 0.5), seed=1)
    assert again == signals


def test_the_mean_field_mlp_draws_its_weights_and_biases_at_the_given_scales():
    X = torch.zeros(4, 784)
    model = chaos.mean_field_mlp(X, 0, sigma_w=1.5, sigma_b=0.3, depth=3, width=400)
    assert model.activation == "tanh" and model.sigma_w == 1.5 and model.sigma_b == 0.3
    weight, bias = model.blocks[1].linear.weight, torch.cat([layer.bias for layer in model.hidden_linears()])
    assert weight.std().item() == pytest.approx(1.5 / math.sqrt(400), rel=0.02)
    assert bias.std().item() == pytest.approx(0.3, rel=0.1)
    assert torch.equal(chaos.mean_field_mlp(X, 0, sigma_w=1.5, sigma_b=0.3, depth=3, width=400).blocks[2].linear.bias,
                       model.blocks[2].linear.bias)


def test_trainability_trains_each_configuration_and_reports_its_training_accuracy(mnist_small):
    X, y = mnist_small
    found = chaos.trainability(X, y, [0.9, 1.3], [1, 2], sigma_b=0.2, width=16, epochs=1, batch_size=64, lr=0.01,
                               progress=False)
    assert sorted(found) == [(0.9, 1), (0.9, 2), (1.3, 1), (1.3, 2)]
    assert all(0 <= accuracy <= 1 for accuracy in found.values())
    model = chaos.mean_field_mlp(X, 0, sigma_w=1.3, sigma_b=0.2, depth=2, width=16)
    gradcourse.fit(model, X, y, epochs=1, batch_size=64, optimizer="momentum", lr=0.01, seed=0,
                   callbacks=[gradcourse.ProgressBar(show=False)])
    assert found[(1.3, 2)] == gradcourse.scoring.accuracy(model, X, y)


@pytest.mark.parametrize("call, name, value", [
    (lambda: chaos.gaussian_expectation(3.0), "f", 3.0),
    (lambda: chaos.gaussian_expectation(np.tanh, q=-1.0), "q", -1.0),
    (lambda: chaos.gaussian_expectation(np.tanh, points=0), "points", 0),
    (lambda: chaos.length_map(1.0, -0.5, 0.1), "sigma_w", -0.5),
    (lambda: chaos.length_fixed_point(1.0, float("nan")), "sigma_b", float("nan")),
    (lambda: chaos.correlations_through_depth(1.5, 3, 1.0, 0.1), "c0", 1.5),
    (lambda: chaos.correlations_through_depth(0.5, -1, 1.0, 0.1), "depth", -1),
    (lambda: chaos.critical_sigma_w(-0.1), "sigma_b", -0.1),
    (lambda: chaos.wide_network_signals(1.0, 0.1, 0), "depth", 0),
    (lambda: chaos.wide_network_signals(1.0, 0.1, 3, correlations=(2.0,)), "correlations[i]", 2.0),
    (lambda: chaos.mean_field_mlp(torch.zeros(2, 3), sigma_w=0.0, sigma_b=0.1), "sigma_w", 0.0),
    (lambda: chaos.mean_field_mlp(torch.zeros(2, 3), sigma_w=1.0, sigma_b=0.1, init="xavier"), "init", "xavier"),
])
def test_bad_arguments_are_refused_naming_the_parameter(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()


def test_a_correlation_outside_minus_1_to_1_is_refused():
    with pytest.raises(ValueError, match="c=.*correlation lies in"):
        chaos.correlation_map(np.array([0.5, 1.2]), 1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_ws="):
        chaos.trainability(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), [], [1], sigma_b=0.1, epochs=1,
                           batch_size=2, lr=0.1)
