"""gradcourse.lessons.at_init: seeded measurements of fresh networks at initialization."""

import math

import pytest
import torch

import gradcourse
from gradcourse import MLP, activation_gradient_norms, layer_gradient_norms
from gradcourse.lessons import at_init


def test_gradient_norms_measure_a_fresh_seeded_mlp(Xy):
    norms = at_init.gradient_norms(*Xy, depth=5, activation="tanh", width=16, seed=2)
    gradcourse.set_seed(2)
    assert norms == pytest.approx(layer_gradient_norms(MLP(width=16, depth=5, activation="tanh"), *Xy))
    assert norms == at_init.gradient_norms(*Xy, depth=5, activation="tanh", width=16, seed=2)


def test_first_to_last_ratio_per_depth(Xy):
    ratios = at_init.first_to_last_ratio(*Xy, depths=[1, 4, 8], width=16, seed=1)
    assert len(ratios) == 3 and ratios[0] == 1.0  # one hidden layer: first is last
    gradcourse.set_seed(1)
    norms = activation_gradient_norms(MLP(width=16, depth=4, activation="sigmoid"), *Xy)
    assert ratios[1] == pytest.approx(norms[0] / norms[-1])
    assert ratios[2] < ratios[1] < 1  # sigmoid: the signal shrinks with depth


@pytest.mark.parametrize("depths, name, value", [([], "depths", []), ([3, 0], "depths[i]", 0)])
def test_first_to_last_ratio_rejects_bad_depths(Xy, depths, name, value, raises_bad):
    with raises_bad(name, value):
        at_init.first_to_last_ratio(*Xy, depths=depths)


def test_gradient_norms_reject_a_bad_activation_and_mismatched_labels(Xy, raises_bad):
    with raises_bad("activation", "sigmod"):
        at_init.gradient_norms(*Xy, activation="sigmod")
    with pytest.raises(ValueError, match="y has 3 labels"):
        at_init.gradient_norms(Xy[0], Xy[1][:3])


def test_product_condition_number_orthogonal_stays_one_gaussian_spreads():
    """Saxe et al. 2014: orthogonal products are isometries; Gaussian products' spectra spread with depth."""
    assert at_init.product_condition_number(30, width=16, init="orthogonal") == pytest.approx(1, abs=1e-4)
    gaussian = [at_init.product_condition_number(depth, width=16, init="lecun") for depth in (1, 5, 10)]
    assert 1 < gaussian[0] < gaussian[1] < gaussian[2]
    assert gaussian[2] > 1e6
    assert at_init.product_condition_number(5, width=16, init="lecun", seed=1) != gaussian[1]


def test_product_condition_number_rejects_bad_arguments(raises_bad):
    with raises_bad("depth", 0):
        at_init.product_condition_number(0)
    with raises_bad("init", "gauss"):
        at_init.product_condition_number(3, init="gauss")


def test_gradient_norms_in_float64_are_those_of_a_float64_copy(mnist_small):
    X, y = mnist_small
    norms = at_init.gradient_norms(X, y, wrt="weights", dtype="float64", width=8, depth=3, seed=2)
    gradcourse.set_seed(2)
    model = MLP(width=8, depth=3).double()
    assert norms == pytest.approx(gradcourse.layer_gradient_norms(model, X.double(), y), rel=1e-12)
    activations = at_init.gradient_norms(X, y, wrt="activations", dtype="float64", width=8, depth=3, seed=2)
    assert activations == pytest.approx(gradcourse.activation_gradient_norms(model, X.double(), y), rel=1e-12)


def test_float64_keeps_gradients_that_underflow_in_float32(mnist_small):
    X, y = mnist_small
    norms = at_init.gradient_norms(X, y, wrt="activations", dtype="float64", width=16, depth=60, activation="sigmoid")
    assert 0 < norms[0] < 1e-45  # below float32's smallest subnormal


def test_the_skip_carries_the_signal(mnist_small):
    plain, residual = (at_init.gradient_norms(*mnist_small, wrt="activations", dtype="float64", width=16, depth=30,
                                              activation="sigmoid", residual=r)
                       for r in (False, True))
    assert plain[0] / plain[-1] < 1e-15 and residual[0] / residual[-1] > 0.5


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(wrt="biases"), "wrt", "biases"),
    (dict(dtype="float16"), "dtype", "float16"),
    (dict(seed=1.5), "seed", 1.5),
    (dict(epochs=2), "epochs", 2),
])
def test_gradient_norms_reject_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        at_init.gradient_norms(*mnist_small, **kwargs)


def test_scale_sweep_per_layer_factor_is_the_gain(mnist_small):
    X, y = mnist_small
    sweep = at_init.scale_sweep(X, y, [0.8, 1.25], depth=20, width=64)
    for g, norms in sweep.items():
        assert len(norms) == 20
        rho = (norms[0] / norms[-1]) ** (1 / 19)
        assert rho == pytest.approx(g, rel=0.08)


def test_scale_sweep_rejects_bad_scales(mnist_small, raises_bad):
    X, y = mnist_small
    with pytest.raises(ValueError, match="init_scales=\\[\\] is not allowed"):
        at_init.scale_sweep(X, y, [])
    with raises_bad("init_scales[i]", -1.0):
        at_init.scale_sweep(X, y, [-1.0])


def test_layer_statistics_shapes_and_gradients_match_autograd(mnist_small):
    X, y = mnist_small
    stats = at_init.layer_statistics(X, y, depth=3, activation="tanh", init="xavier", width=32, seed=4)
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
    assert at_init.std_per_layer([torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])]) == [pytest.approx(math.sqrt(2)), 0.0]
