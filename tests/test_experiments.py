"""gradcourse.experiments: seeded measurements the notebooks print."""

import pytest

import gradcourse
from gradcourse import MLP, activation_gradient_norms, experiments, layer_gradient_norms


def test_gradient_flow_measures_a_fresh_seeded_mlp(Xy):
    norms = experiments.gradient_flow(*Xy, depth=5, activation="tanh", width=16, seed=2)
    gradcourse.set_seed(2)
    assert norms == pytest.approx(layer_gradient_norms(MLP(width=16, depth=5, activation="tanh"), *Xy))
    assert norms == experiments.gradient_flow(*Xy, depth=5, activation="tanh", width=16, seed=2)


def test_first_to_last_ratio_per_depth(Xy):
    ratios = experiments.first_to_last_ratio(*Xy, depths=[1, 4, 8], width=16, seed=1)
    assert len(ratios) == 3 and ratios[0] == 1.0  # one hidden layer: first is last
    gradcourse.set_seed(1)
    norms = activation_gradient_norms(MLP(width=16, depth=4, activation="sigmoid"), *Xy)
    assert ratios[1] == pytest.approx(norms[0] / norms[-1])
    assert ratios[2] < ratios[1] < 1  # sigmoid: the signal shrinks with depth


@pytest.mark.parametrize("depths, name, value", [([], "depths", []), ([3, 0], "depths[i]", 0)])
def test_first_to_last_ratio_rejects_bad_depths(Xy, depths, name, value, raises_bad):
    with raises_bad(name, value):
        experiments.first_to_last_ratio(*Xy, depths=depths)


def test_experiments_reject_bad_arguments(Xy, raises_bad):
    with raises_bad("activation", "sigmod"):
        experiments.gradient_flow(*Xy, activation="sigmod")
    with pytest.raises(ValueError, match="y has 3 labels"):
        experiments.gradient_flow(Xy[0], Xy[1][:3])


def test_product_condition_number_orthogonal_stays_one_gaussian_spreads():
    """Saxe et al. 2014: orthogonal products are isometries; Gaussian products' spectra spread with depth."""
    assert experiments.product_condition_number(30, width=16, init="orthogonal") == pytest.approx(1, abs=1e-4)
    gaussian = [experiments.product_condition_number(depth, width=16, init="lecun") for depth in (1, 5, 10)]
    assert 1 < gaussian[0] < gaussian[1] < gaussian[2]
    assert gaussian[2] > 1e6
    assert experiments.product_condition_number(5, width=16, init="lecun", seed=1) != gaussian[1]


def test_product_condition_number_rejects_bad_arguments(raises_bad):
    with raises_bad("depth", 0):
        experiments.product_condition_number(0)
    with raises_bad("init", "gauss"):
        experiments.product_condition_number(3, init="gauss")
