"""gradcourse.core.models: MLP structure, initialization schemes, norms, residual skips, seeding, bad arguments
(over whole ranges of values too), and remove_batchnorm_ and scale_weights_ on a torchvision ResNet."""

import math

import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import gradcourse
from gradcourse.core.models import ACTIVATIONS, MLP, HiddenBlock, init_linear_
from helpers import FAST


def test_forward_gives_logits_per_row():
    model = MLP(depth=3, width=16)
    assert model(torch.randn(5, 784)).shape == (5, 10)
    small = MLP(in_features=7, out_features=3, width=4, depth=1)
    assert small(torch.randn(2, 7)).shape == (2, 3)


@pytest.mark.parametrize("depth", [1, 4])
def test_hidden_linears_are_input_side_first(depth):
    model = MLP(width=16, depth=depth)
    linears = model.hidden_linears()
    assert len(linears) == depth
    assert all(isinstance(layer, nn.Linear) for layer in linears)
    assert linears[0].in_features == 784
    assert [layer.out_features for layer in linears] == [16] * depth
    assert all(layer.in_features == 16 for layer in linears[1:])
    assert model.output.in_features == 16 and model.output.out_features == 10


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_hidden_activations_match_the_name(activation):
    model = MLP(width=8, depth=3, activation=activation)
    assert [type(a) for a in model.hidden_activations()] == [ACTIVATIONS[activation]] * 3
    assert repr(activation) in repr(model)


# ---------------------------------------------------------------- initialization

def _expected_std(init, scale, fan_in, fan_out):
    return {
        "normal": scale,
        "lecun": scale * math.sqrt(1 / fan_in),
        "xavier": scale * math.sqrt(2 / (fan_in + fan_out)),
        "xavier_uniform": scale * math.sqrt(2 / (fan_in + fan_out)),
        "kaiming": scale * math.sqrt(2 / fan_in),
        "default": scale / math.sqrt(3 * fan_in),
    }[init]


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("init", ["normal", "lecun", "xavier", "xavier_uniform", "kaiming", "default"])
def test_init_weight_std_follows_the_formula(init, scale):
    torch.manual_seed(0)
    model = MLP(in_features=400, out_features=10, width=300, depth=2, init=init, init_scale=scale)
    # 120,000 and 90,000 weights: the sample std is within ~0.3% of the true one; 3,000 output
    # weights: within ~1.5%. Tolerances are several standard errors.
    for layer, tolerance in [*((lin, 0.03) for lin in model.hidden_linears()), (model.output, 0.08)]:
        w = layer.weight.detach()
        expected = _expected_std(init, scale, layer.in_features, layer.out_features)
        assert w.std().item() == pytest.approx(expected, rel=tolerance)
        assert abs(w.mean().item()) < 0.05 * expected


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_default_init_is_uniform_within_the_scaled_bound(scale):
    model = MLP(in_features=400, width=300, depth=2, init="default", init_scale=scale)
    for layer in model.hidden_linears():
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max().item() <= scale * bound + 1e-7
        assert layer.weight.abs().max().item() > 0.99 * scale * bound  # the range is filled
        assert layer.bias.abs().max().item() <= bound + 1e-7  # bias is not scaled
        assert layer.bias.abs().max().item() > 0


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_xavier_uniform_fills_its_bound_sqrt6_over_fan_sum(scale):
    model = MLP(in_features=400, width=300, depth=2, init="xavier_uniform", init_scale=scale)
    for layer in model.hidden_linears():
        bound = scale * math.sqrt(6 / (layer.in_features + layer.out_features))
        assert bound * 0.99 < layer.weight.abs().max().item() <= bound + 1e-7


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_orthogonal_init_gives_scaled_orthonormal_rows(scale):
    model = MLP(in_features=784, width=64, depth=2, init="orthogonal", init_scale=scale)
    first, square = model.hidden_linears()
    for layer in (first, square):  # 64 x 784 (rows orthonormal) and 64 x 64
        w = layer.weight.detach().double()
        assert torch.allclose(w @ w.T, scale**2 * torch.eye(64, dtype=torch.float64), atol=1e-5)
    w = square.weight.detach().double()
    assert torch.allclose(w.T @ w, scale**2 * torch.eye(64, dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("init", ["normal", "lecun", "xavier", "xavier_uniform", "kaiming", "orthogonal"])
def test_non_default_inits_zero_every_bias(init):
    model = MLP(width=16, depth=3, init=init)
    for layer in [*model.hidden_linears(), model.output]:
        assert torch.count_nonzero(layer.bias) == 0


def test_init_linear_scales_in_place_and_returns_the_layer():
    layer = nn.Linear(500, 400)
    assert init_linear_(layer, "normal", 0.1) is layer
    assert layer.weight.std().item() == pytest.approx(0.1, rel=0.02)


# ---------------------------------------------------------------- norms and residual skips

@pytest.mark.parametrize("norm, kind", [(None, nn.Identity), ("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_norm_inserts_the_right_module(norm, kind):
    model = MLP(width=12, depth=3, norm=norm)
    assert all(type(block.norm) is kind for block in model.blocks)
    if norm == "batch":
        assert all(block.norm.num_features == 12 for block in model.blocks)
    if norm == "layer":
        assert all(block.norm.normalized_shape == (12,) for block in model.blocks)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_plain_block_computes_activation_of_norm_of_linear(norm):
    torch.manual_seed(0)
    model = MLP(in_features=6, width=6, depth=2, activation="tanh", norm=norm)
    block = model.blocks[1]
    x = torch.randn(8, 6)
    expected = torch.tanh(block.norm(block.linear(x)))
    assert torch.allclose(block(x), expected)


@pytest.mark.parametrize("norm", [None, "layer"])
def test_residual_block_adds_its_input(norm):
    torch.manual_seed(0)
    model = MLP(in_features=784, width=10, depth=3, activation="relu", norm=norm, residual=True)
    assert [block.residual for block in model.blocks] == [False, True, True]  # first block changes width
    x = torch.randn(4, 10)
    for block in model.blocks[1:]:
        assert torch.allclose(block(x) - x, torch.relu(block.norm(block.linear(x))), atol=1e-6)


def test_residual_model_matches_a_manual_forward():
    torch.manual_seed(0)
    model = MLP(in_features=5, out_features=2, width=5, depth=3, activation="sigmoid", residual=True)
    x = torch.randn(3, 5)
    h = torch.sigmoid(model.blocks[0].linear(x))
    for block in model.blocks[1:]:
        h = h + torch.sigmoid(block.linear(h))
    assert torch.allclose(model(x), model.output(h), atol=1e-6)


def test_residual_block_needs_equal_widths():
    with pytest.raises(ValueError, match="in_features=3, out_features=4"):
        HiddenBlock(3, 4, "relu", None, residual=True)


# ---------------------------------------------------------------- seeding

def test_set_seed_makes_two_builds_identical():
    states = []
    for seed in (3, 3, 4):
        gradcourse.set_seed(seed)
        states.append(MLP(width=16, depth=3, init="kaiming").state_dict())
    same, other = states[1], states[2]
    assert all(torch.equal(states[0][k], same[k]) for k in same)
    assert not all(torch.equal(states[0][k], other[k]) for k in other)


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, name, value", [
    (dict(activation="sigmod"), "activation", "sigmod"),
    (dict(depth=0), "depth", 0),
    (dict(depth=2.0), "depth", 2.0),
    (dict(width=0), "width", 0),
    (dict(in_features=-1), "in_features", -1),
    (dict(out_features=True), "out_features", True),
    (dict(init="he"), "init", "he"),
    (dict(init_scale=0), "init_scale", 0),
    (dict(init_scale=-1), "init_scale", -1),
    (dict(init_scale=math.nan), "init_scale", math.nan),
    (dict(init_scale=math.inf), "init_scale", math.inf),
    (dict(init_scale=True), "init_scale", True),
    (dict(norm="group"), "norm", "group"),
    (dict(residual=1), "residual", 1),
    (dict(output_scale=0), "output_scale", 0),
    (dict(output_scale=math.nan), "output_scale", math.nan),
    (dict(output_scale=1e300), "output_scale", 1e300),
])
def test_mlp_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        MLP(**kwargs)


@FAST
@given(st.integers(max_value=0))
def test_depth_below_one_is_rejected_by_name(depth):
    with pytest.raises(ValueError, match=rf"depth={depth} is not allowed"):
        gradcourse.MLP(depth=depth)


@FAST
@given(st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf)))
def test_nonpositive_or_nonfinite_init_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="init_scale="):
        gradcourse.MLP(depth=1, init_scale=scale)


@FAST
@given(st.text(min_size=1, max_size=12).filter(lambda s: s not in gradcourse.core.models.ACTIVATIONS))
def test_unknown_activation_names_list_the_allowed_ones(name):
    with pytest.raises(ValueError, match="activation=.*choose one of: 'sigmoid'"):
        gradcourse.MLP(activation=name)


def test_output_scale_multiplies_only_the_output_weights():
    gradcourse.set_seed(3)
    plain = MLP(in_features=6, width=8, depth=2, init="kaiming")
    gradcourse.set_seed(3)
    small = MLP(in_features=6, width=8, depth=2, init="kaiming", output_scale=0.1)
    assert torch.allclose(small.output.weight, 0.1 * plain.output.weight)
    assert torch.equal(small.output.bias, plain.output.bias)
    assert all(torch.equal(a, b) for a, b in zip(plain.blocks.parameters(), small.blocks.parameters()))
    assert "output_scale=0.1" in repr(small) and "output_scale" not in repr(plain)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(init="uniform"), "init", "uniform"),
    (dict(init_scale=0.0), "init_scale", 0.0),
])
def test_init_linear_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        init_linear_(nn.Linear(3, 3), **kwargs)


# ---------------------------------------------------------------- on models nobody in this project wrote

def test_remove_batchnorm_and_scale_weights():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    conv = resnet.conv1.weight.detach().clone()
    bias = resnet.fc.bias.detach().clone()
    gradcourse.core.models.scale_weights_(gradcourse.core.models.remove_batchnorm_(resnet), 2.0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in resnet.modules())
    assert torch.equal(resnet.conv1.weight, 2 * conv) and torch.equal(resnet.fc.bias, bias)
    assert resnet(torch.randn(2, 3, 32, 32)).shape == (2, 10)
