"""gradcourse.core.probes: one-shot gradient norms per layer (on the course's MLPs and on models nobody in this
project wrote), the layer where a forward pass or a gradient first turns non-finite, and what a probe leaves
alone. (The loss of one batch is tested in test_losses.py, the model's state put back in test_model_state.py.)"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradcourse
from gradcourse.core.probes import (activation_gradient_norms, last_nonfinite_gradient, layer_gradient_norms,
                                    named_layer_gradient_norms)
from helpers import mlp_32x4 as _model
from helpers import seeded_mlp


def _parameterized(model):
    return [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    return nn.LSTM(input_size=3, hidden_size=8, num_layers=2, batch_first=True), torch.randn(5, 7, 3), torch.randn(5)


def _lstm_loss(model, X, y):
    output, _ = model(X)
    return F.mse_loss(output[:, -1, 0], y)


# ---------------------------------------------------------------- one-shot norms on the course's MLPs

def test_layer_gradient_norms_match_a_manual_backward(mnist_small):
    X, y = mnist_small
    model = _model(activation="tanh")
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(X), y).backward()
    expected = [layer.weight.grad.norm().item() for layer in reference.hidden_linears()]
    assert layer_gradient_norms(model, X, y) == pytest.approx(expected, rel=1e-5)


def test_layer_gradient_norms_leave_grad_fields_untouched(mnist_small):
    model = _model()
    layer_gradient_norms(model, *mnist_small)
    assert all(p.grad is None for p in model.parameters())


def test_activation_gradient_norms_match_retained_grads(mnist_small):
    X, y = mnist_small
    model = _model(activation="sigmoid")
    reference = copy.deepcopy(model)
    outputs = []

    def keep(module, inputs, out):
        out.retain_grad()
        outputs.append(out)

    for block in reference.blocks:
        block.register_forward_hook(keep)
    F.cross_entropy(reference(X), y).backward()
    expected = [out.grad.norm().item() for out in outputs]
    norms = activation_gradient_norms(model, X, y)
    assert len(norms) == 4
    assert norms == pytest.approx(expected, rel=1e-5)
    assert all(p.grad is None for p in model.parameters())
    assert all(not block._forward_hooks for block in model.blocks)  # its hooks are gone


def test_deep_sigmoid_network_vanishes(mnist_small):
    # Measured: first/last is about 1e-16 to 1e-15 for seeds 0-3, widths 64 and 128.
    model = _model(depth=20, width=64, activation="sigmoid")
    for norms in (layer_gradient_norms(model, *mnist_small), activation_gradient_norms(model, *mnist_small)):
        assert norms[0] / norms[-1] < 1e-6
        assert all(math.isfinite(v) and v >= 0 for v in norms)


def test_deep_relu_network_with_kaiming_init_keeps_its_gradient(mnist_small):
    # Measured: first/last between 0.7 and 2.6 for seeds 0-3, widths 64 and 128.
    model = _model(depth=20, width=64, activation="relu", init="kaiming")
    for norms in (layer_gradient_norms(model, *mnist_small), activation_gradient_norms(model, *mnist_small)):
        assert 0.1 < norms[0] / norms[-1] < 10


@pytest.mark.parametrize("function", [layer_gradient_norms, activation_gradient_norms])
def test_non_modules_are_rejected(function, mnist_small):
    args = ("mlp", *mnist_small)
    with pytest.raises(ValueError, match=r"model='mlp' is not allowed"):
        function(*args)


@pytest.mark.parametrize("function", [layer_gradient_norms, activation_gradient_norms])
def test_one_shot_norms_reject_bad_batches(function, raises_bad):
    model = _model()
    with pytest.raises(ValueError, match="y has 3 (labels|rows) but X has 4"):
        function(model, torch.randn(4, 784), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"y=<tensor shape=\(4,\) dtype=torch.float32>"):
        function(model, torch.randn(4, 784), torch.zeros(4))


# ---------------------------------------------------------------- gradient norms per layer, on any model

def test_resnet18_one_entry_per_layer_in_forward_order(resnet):
    model, X, y = resnet
    names = [name for name, _ in named_layer_gradient_norms(model, X, y)]
    assert len(names) == len(_parameterized(model)) == 41  # 20 convolutions, 20 batch norms, fc
    assert names[:4] == ["conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1"]
    assert names.index("layer2.0.bn2") < names.index("layer2.0.downsample.0") < names.index("layer2.1.conv1")
    assert names[-1] == "fc"


def test_transformer_forward_order_differs_from_registration_order(transformer):
    model, X, target = transformer
    named = named_layer_gradient_norms(model, X, target, loss_fn="mse")
    names = [name for name, _ in named]
    # registration order is self_attn, linear1, linear2, norm1, norm2; the forward pass meets norm1 before linear1
    assert names[:6] == ["layers.0.self_attn", "layers.0.self_attn.out_proj", "layers.0.norm1",
                         "layers.0.linear1", "layers.0.linear2", "layers.0.norm2"]
    assert len(names) == len(_parameterized(model)) == 12
    assert all(value > 0 for _, value in named)


def test_lstm_is_one_layer_and_works_with_a_loss_closure(lstm):
    model, X, y = lstm
    named = named_layer_gradient_norms(model, X, y, compute_loss=_lstm_loss)
    assert [name for name, _ in named] == ["LSTM"]
    weights = [p for name, p in model.named_parameters() if "bias" not in name]
    model.zero_grad()
    _lstm_loss(model, X, y).backward()
    by_hand = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in weights)).item()
    assert named[0][1] == pytest.approx(by_hand, rel=1e-6)


def test_layer_gradient_norms_rejects_bad_losses(resnet):
    model, X, y = resnet
    with pytest.raises(ValueError, match="loss_fn='l1'"):
        layer_gradient_norms(model, X, y, loss_fn="l1")
    with pytest.raises(ValueError, match="compute_loss=3"):
        layer_gradient_norms(model, X, y, compute_loss=3)
    with pytest.raises(ValueError, match="scalar"):
        layer_gradient_norms(model, X, y, compute_loss=lambda m, X, y: m(X))


def test_gradient_probes_leave_batchnorm_statistics_and_the_random_generator_alone():
    gradcourse.set_seed(0)
    model = gradcourse.MLP(in_features=6, width=8, depth=2, norm="batch")
    dropout = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    X, y = torch.randn(16, 6) * 3 + 1, torch.arange(16) % 3
    buffers = [b.clone() for b in model.buffers()]
    torch.manual_seed(1)
    expected = torch.rand(2)
    torch.manual_seed(1)
    gradcourse.layer_gradient_norms(model, X, y)
    gradcourse.activation_gradient_norms(model, X, y)
    gradcourse.layer_gradient_norms(dropout, X, y)
    assert torch.equal(torch.rand(2), expected)
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers))


# ---------------------------------------------------------------- where values first turn non-finite

def test_locating_a_nonfinite_output_leaves_batchnorm_statistics_alone():
    from gradcourse.core.probes import first_nonfinite_output

    model = _model(in_features=4, out_features=2, width=8, depth=3, norm="batch")
    with torch.no_grad():
        model.blocks[1].linear.weight.fill_(float("inf"))
    before = copy.deepcopy(model.state_dict())
    assert first_nonfinite_output(model, torch.randn(16, 4)) == "hidden layer 2"
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_last_nonfinite_gradient_names_the_layer_nearest_the_output():
    model = seeded_mlp(0, in_features=4, width=8, depth=3, out_features=2)
    assert last_nonfinite_gradient(model) == "unknown layer"     # no gradient yet
    F.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 0, 1, 0])).backward()
    assert last_nonfinite_gradient(model) == "unknown layer"     # every gradient finite
    first, second, _ = model.hidden_linears()
    first.weight.grad[0, 0], second.weight.grad[0, 0] = float("nan"), float("inf")
    assert last_nonfinite_gradient(model) == "hidden layer 2"

