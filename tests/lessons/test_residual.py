"""Pre-activation residual blocks (MLP(residual="pre")) and gradcourse.lessons.residual.stream_statistics."""

import pytest
import torch
from torch import nn

import gradcourse
from gradcourse.core.models import MLP, HiddenBlock, PreActivationBlock
from gradcourse.lessons.residual import stream_statistics


def test_pre_activation_mlp_structure():
    model = MLP(in_features=12, width=6, depth=4, residual="pre")
    assert type(model.blocks[0]) is HiddenBlock and model.blocks[0].residual is False  # changes the width
    assert all(type(block) is PreActivationBlock for block in model.blocks[1:])
    assert [block.last for block in model.blocks[1:]] == [False, False, True]
    assert len(model.hidden_linears()) == 4 and len(model.hidden_activations()) == 4
    assert model(torch.randn(3, 12)).shape == (3, 10)


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_pre_activation_block_adds_weights_of_activation_of_norm(norm):
    torch.manual_seed(0)
    block = PreActivationBlock(5, "tanh", norm)
    x = torch.randn(8, 5)
    expected = x + block.linear(torch.tanh(block.norm(x)))
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_last_pre_activation_block_normalizes_and_activates_after_the_addition():
    torch.manual_seed(0)
    block = PreActivationBlock(5, "relu", "layer", last=True)
    x = torch.randn(8, 5)
    inner = x + block.linear(torch.relu(block.norm(x)))
    assert torch.allclose(block(x), torch.relu(block.final_norm(inner)), atol=1e-6)
    assert (block(x) >= 0).all()


def test_pre_activation_block_jacobian_is_identity_plus_branch():
    torch.manual_seed(0)
    block = PreActivationBlock(4, "sigmoid", None)
    x = torch.randn(4)
    jacobian = torch.func.jacrev(block)(x)
    s = torch.sigmoid(x)
    expected = torch.eye(4) + block.linear.weight @ torch.diag(s * (1 - s))
    assert torch.allclose(jacobian, expected, atol=1e-6)


def test_pre_activation_model_matches_a_manual_forward():
    torch.manual_seed(0)
    model = MLP(in_features=5, out_features=2, width=5, depth=3, activation="relu", residual="pre")
    x = torch.randn(3, 5)
    h = torch.relu(model.blocks[0].linear(x))
    h = h + model.blocks[1].linear(torch.relu(h))
    h = torch.relu(h + model.blocks[2].linear(torch.relu(h)))
    assert torch.allclose(model(x), model.output(h), atol=1e-6)


def test_every_init_reaches_the_pre_activation_linears():
    torch.manual_seed(0)
    model = MLP(in_features=300, width=300, depth=3, init="normal", init_scale=0.05, residual="pre")
    for layer in model.hidden_linears():
        assert layer.weight.std().item() == pytest.approx(0.05, rel=0.03)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_gradient_monitor_watches_a_pre_activation_model(mnist_small):
    X, y = mnist_small
    gradcourse.set_seed(0)
    model = MLP(width=16, depth=4, norm="batch", residual="pre")
    history = gradcourse.fit(model, X, y, epochs=1, batch_size=64, lr=0.05,
                             callbacks=[gradcourse.GradientMonitor(model), gradcourse.ProgressBar(show=False)])
    assert not history.diverged and history.steps == 4


@pytest.mark.parametrize("value", [1, 0, "post", None, "Pre", 1.0])
def test_mlp_rejects_other_residual_values(value, raises_bad):
    with raises_bad("residual", value):
        MLP(residual=value)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(features=0), "features", 0),
    (dict(activation="relu6"), "activation", "relu6"),
    (dict(norm="group"), "norm", "group"),
    (dict(last=1), "last", 1),
])
def test_pre_activation_block_rejects_bad_arguments(kwargs, name, value, raises_bad):
    arguments = {"features": 4, "activation": "relu", "norm": None, **kwargs}
    with raises_bad(name, value):
        PreActivationBlock(**arguments)


def test_stream_statistics_match_the_block_outputs(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = MLP(width=8, depth=3, residual=True)
    stats = stream_statistics(model, X)
    h = X
    for i, block in enumerate(model.blocks):
        h = block(h)
        assert stats["mean"][i] == pytest.approx(h.mean().item(), rel=1e-5)
        assert stats["std"][i] == pytest.approx(h.std().item(), rel=1e-5)


def test_relu_branch_makes_the_stream_mean_grow_and_pre_activation_does_not(mnist_small):
    X, _ = mnist_small
    means = {}
    for residual in (True, "pre"):
        gradcourse.set_seed(0)
        model = MLP(width=32, depth=20, activation="relu", init="kaiming", norm="batch", residual=residual)
        means[residual] = stream_statistics(model, X)["mean"]
    assert all(a < b for a, b in zip(means[True][1:], means[True][2:]))  # each block adds relu(...) >= 0
    assert means[True][-1] > 5
    assert abs(means["pre"][-2]) < 1


def test_stream_statistics_leave_batchnorm_statistics_alone(mnist_small):
    gradcourse.set_seed(0)
    model = MLP(width=8, depth=3, norm="batch", residual="pre")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stream_statistics(model, mnist_small[0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stream_statistics_reject_bad_input(raises_bad):
    with pytest.raises(ValueError, match="model="):
        stream_statistics(nn.Linear(3, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="X="):
        stream_statistics(MLP(in_features=3, width=4, depth=2), torch.randn(3))


def test_line_styles_give_each_kind_its_colour_whatever_the_depth():
    from gradcourse.lessons.residual import KIND_COLORS, line_styles

    styles = line_styles(["plain, 6 layers", "plain", "residual, 18 layers", "pre-activation"], {"plain, 6 layers": "--"})
    assert styles["plain, 6 layers"] == {"color": KIND_COLORS["plain"], "linestyle": "--"}
    assert styles["plain"] == {"color": KIND_COLORS["plain"], "linestyle": "-"}
    assert styles["residual, 18 layers"]["color"] == KIND_COLORS["residual"]
    assert styles["pre-activation"]["color"] == KIND_COLORS["pre-activation"]
    assert len(set(KIND_COLORS.values())) == 3


def test_line_styles_reject_labels_of_no_kind_and_stray_linestyles():
    from gradcourse.lessons.residual import line_styles

    with pytest.raises(ValueError, match="labels="):
        line_styles(["plain", "sgd"])
    with pytest.raises(ValueError, match="linestyles="):
        line_styles(["plain"], {"residual": "--"})
    with pytest.raises(ValueError, match="linestyles="):
        line_styles(["plain"], "--")


def test_he_2016_table_prints_both_measures():
    from gradcourse.lessons.residual import HE_2016_IMAGENET_TOP1_ERROR, he_2016_table

    text = he_2016_table({(False, 6): 0.04, (False, 18): 0.097, (True, 18): 0.031}, 6, 18)
    assert "27.94%" in text and "28.54%" in text and "25.03%" in text
    assert "4.00%" in text and "9.70%" in text and "3.10%" in text and "(6 / 18 layers)" in text
    assert HE_2016_IMAGENET_TOP1_ERROR["plain-34"] > HE_2016_IMAGENET_TOP1_ERROR["plain-18"]


def test_he_2016_table_rejects_bad_arguments(raises_bad):
    from gradcourse.lessons.residual import he_2016_table

    errors = {(False, 6): 0.04, (False, 18): 0.097, (True, 18): 0.031}
    with raises_bad("deep", 6):
        he_2016_table(errors, 6, 6)
    with pytest.raises(ValueError, match="train_error="):
        he_2016_table({(False, 6): 0.04}, 6, 18)
