"""Notebook 15's exercises (gradcourse.exercises.notebook_15), derived again from the package: a linear network's
mean squared singular value chi^L, the phase of a bias-free tanh network at PyTorch's gain 5/3, and a tanh network
built at the edge of chaos. (test_checker.py runs every exercise's reference answer, typical mistakes and junk.)"""

import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check
from gradcourse.lessons import dynamical_isometry as iso
from gradcourse.lessons import edge_of_chaos as chaos


def test_15_1_is_chi_to_the_depth_and_a_wide_linear_network_agrees():
    assert EXERCISES["15.1"].reference() == 1.44 ** 10
    layers = iso.random_layers(10, 600, weights="gaussian", sigma_w=1.2, seed=0)
    J = iso.jacobian_by_hand(layers, torch.zeros(600, dtype=torch.float64), "linear")
    assert 0.7 < iso.spectrum_summary(torch.linalg.svdvals(J))["mean_s2"] / 1.44 ** 10 < 1.3
    assert check("15.1", 1.44 ** 10) and not check("15.1", 1.2 ** 10) and not check("15.1", 14.4)


def test_15_2_a_bias_free_tanh_network_with_gain_5_3_is_chaotic():
    assert chaos.chi_1(5 / 3, 0.0) > 1 and chaos.length_fixed_point(5 / 3, 0.0) > 0.5
    assert EXERCISES["15.2"].reference() == "chaotic" and check("15.2", "Chaotic.")
    result = check("15.2", "ordered")
    assert not result and "outweighs" in result.message and "chi_1 = " in result.message


def test_15_3_the_reference_is_at_the_edge_and_sigma_w_1_or_a_plain_mlp_is_not():
    answer = EXERCISES["15.3"].reference()
    assert answer.sigma_b == 0.3 and len(answer.blocks) == 20
    assert abs(chaos.chi_1(answer.init_scale, 0.3) - 1) < 1e-6 and check("15.3", answer)
    wrong = check("15.3", chaos.mean_field_mlp(torch.zeros(2, 784), sigma_w=1.0, sigma_b=0.3, depth=20))
    assert not wrong and "ordered" in wrong.message
    too_wide = chaos.critical_sigma_w(0.3) ** 2
    assert "sigma_w squared" in check("15.3", chaos.mean_field_mlp(torch.zeros(2, 784), sigma_w=too_wide,
                                                                    sigma_b=0.3, depth=20)).message
    other_bias = chaos.mean_field_mlp(torch.zeros(2, 784), sigma_w=chaos.critical_sigma_w(0.3), sigma_b=0.1)
    assert "keep sigma_b=0.3" in check("15.3", other_bias).message
    assert "mean_field_mlp" in check("15.3", gc.MLP(depth=3, activation="tanh", init="lecun")).message
