"""gradcourse.lessons.signal_propagation: one Jacobian in both directions, and the weight gradient as the
backward signal times the forward input, each checked against a closed form or against autograd."""

import math

import pytest
import torch

import gradcourse
from gradcourse import MLP, activation_gradient_norms, layer_gradient_norms
from gradcourse.lessons import signal_propagation as sp


def _seeded(seed=0, **model_options):
    gradcourse.set_seed(seed)
    return MLP(**model_options)


def test_relative_spread_against_its_closed_form():
    H = torch.tensor([[1.0, 2.0], [3.0, 2.0]])   # mean (2, 2): each row differs from it by 1
    assert sp.relative_spread(H) == pytest.approx(math.sqrt(1 / ((1 + 4 + 9 + 4) / 2)))
    assert sp.relative_spread(torch.ones(5, 3)) == 0.0               # every input gives the same output
    assert sp.relative_spread(torch.tensor([[1.0], [-1.0]])) == 1.0   # outputs of mean 0
    assert math.isnan(sp.relative_spread(torch.zeros(4, 2)))


@pytest.mark.parametrize("H", [torch.ones(1, 3), torch.ones(3), "H", torch.ones(2, 2, dtype=torch.int64)])
def test_relative_spread_rejects_what_is_not_a_batch(H):
    with pytest.raises(ValueError, match="H="):
        sp.relative_spread(H)


def test_per_layer_factor_is_the_geometric_mean():
    assert sp.per_layer_factor([8.0, 4.0, 2.0, 1.0]) == pytest.approx(0.5)
    assert sp.per_layer_factor([1.0, 4.0, 2.0, 8.0]) == pytest.approx(2.0)   # only the ends count
    for bad in ([1.0], [1.0, 0.0], [1.0, math.nan]):
        with pytest.raises(ValueError, match="values="):
            sp.per_layer_factor(bad)


def test_layer_signals_agree_with_the_probes_and_the_identity(Xy):
    X, y = Xy
    model = _seeded(1, width=16, depth=4, activation="tanh").double()
    X = X.double()
    s = sp.layer_signals(model, X, y)
    assert s.activation_gradients == pytest.approx(activation_gradient_norms(model, X, y), rel=1e-12)
    assert s.weight_gradients == pytest.approx(layer_gradient_norms(model, X, y), rel=1e-12)
    for w, a, d, h in zip(s.weight_gradients, s.alignment, s.pre_activation_gradients, s.input_norms):
        assert w == pytest.approx(a * d * h, rel=1e-12) and 0 < a <= 1
    assert s.input_norms[0] == pytest.approx(X.norm().item())
    assert s.spread == pytest.approx(sp.forward_spreads(model, X))
    outputs = sp.hidden_outputs(model, X)
    assert s.differences[2] == pytest.approx((outputs[2] - outputs[2].mean(0)).pow(2).sum(1).mean().sqrt().item())
    assert all(p.grad is None for p in model.parameters())


def test_one_example_gives_a_rank_one_weight_gradient_of_norm_delta_times_input(Xy):
    X, y = Xy
    s = sp.layer_signals(_seeded(2, width=8, depth=3, activation="sigmoid").double(), X[:1].double(), y[:1])
    assert s.alignment == pytest.approx([1.0, 1.0, 1.0], rel=1e-10)   # Cauchy-Schwarz with equality


def test_signals_at_init_is_the_seeded_network(Xy):
    s = sp.signals_at_init(*Xy, seed=3, dtype="float64", width=8, depth=3, activation="relu", init="kaiming")
    model = _seeded(3, in_features=784, width=8, depth=3, activation="relu", init="kaiming").double()
    assert s == sp.layer_signals(model, Xy[0].double(), Xy[1])
    with pytest.raises(ValueError, match="dtype='float16'"):
        sp.signals_at_init(*Xy, dtype="float16")


def test_a_deep_sigmoid_network_shrinks_both_directions_by_the_same_factor(mnist_small):
    s = sp.signals_at_init(*mnist_small, dtype="float64", depth=8, width=64, activation="sigmoid")
    up, down = sp.per_layer_factor(s.differences), sp.per_layer_factor(s.activation_gradients[::-1])
    bound = math.sqrt(1 / 3) / 4
    assert up == pytest.approx(down, rel=0.05) and max(up, down) < 1.02 * bound


def test_first_to_last_factors_multiply_to_the_weight_ratio(Xy):
    s = sp.signals_at_init(*Xy, width=8, depth=5, activation="relu")
    parts = sp.first_to_last_factors(s)
    assert parts["weights"] == pytest.approx(s.weight_gradients[0] / s.weight_gradients[-1])
    assert parts["activations"] * parts["derivatives"] * parts["inputs"] * parts["alignment"] == pytest.approx(
        parts["weights"], rel=1e-12)
    with pytest.raises(ValueError, match="signals="):
        sp.first_to_last_factors([1.0])


def test_layer_signals_refuse_networks_whose_layers_are_not_plain(Xy):
    for options in (dict(norm="batch"), dict(residual=True)):
        with pytest.raises(ValueError, match="plain MLP"):
            sp.layer_signals(_seeded(width=8, depth=3, **options), *Xy)
    with pytest.raises(ValueError, match="model="):
        sp.layer_signals(torch.nn.Linear(784, 10), *Xy)


def test_the_chain_of_layer_jacobians_is_autograds_jacobian(Xy):
    model = _seeded(4, width=12, depth=4, activation="tanh").double()
    x = Xy[0][0].double()
    J = sp.input_output_jacobian(model, x)
    assert J.shape == (12, 784)
    assert torch.allclose(sp.jacobian_by_layers(model, x), J, rtol=1e-10, atol=1e-14)
    first = sp.layer_jacobians(model, x)[0]
    z = model.blocks[0].linear(x).detach()
    assert torch.allclose(first, (1 - torch.tanh(z) ** 2)[:, None] * model.blocks[0].linear.weight.detach())
    with pytest.raises(ValueError, match="x="):
        sp.input_output_jacobian(model, x[:10])


def test_both_directions_use_the_same_jacobian(Xy):
    model = _seeded(5, width=10, depth=3, activation="sigmoid").double()
    x, other = Xy[0][0].double(), Xy[0][1].double()
    g = torch.linspace(-1, 1, 10, dtype=torch.float64)
    d = sp.both_directions(model, x, 1e-4 * (other - x), g)
    assert torch.allclose(d.backward, d.by_jacobian, rtol=1e-10, atol=1e-18)
    assert ((d.linearized - d.forward_change).norm() / d.forward_change.norm()).item() < 1e-2
    with pytest.raises(ValueError, match="g="):
        sp.both_directions(model, x, x, torch.ones(3))


def test_distinct_values_count_what_a_unit_tells_apart():
    model = _seeded(width=4, depth=2, in_features=3, activation="relu", init="kaiming")
    X = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    assert all(1 <= count <= 2 for count in sp.distinct_values(model, X))   # two different inputs at most


def test_one_step_update_ratios_are_the_monitors_and_sgds(Xy):
    ratios = sp.one_step_update_ratios(*Xy, lr=0.1, seed=0, width=8, depth=3, activation="tanh")
    assert len(ratios.monitored) == 3
    assert ratios.monitored == pytest.approx(ratios.by_hand, rel=1e-4)
    with pytest.raises(ValueError, match="lr=0"):
        sp.one_step_update_ratios(*Xy, lr=0, width=8, depth=3)
