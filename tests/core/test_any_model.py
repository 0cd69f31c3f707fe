"""GradientMonitor and layer_gradient_norms on models nobody in this project wrote."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

import gradcourse
from gradcourse.core.layers import find_layers
from gradcourse.core.monitor.monitor import GradientMonitor
from gradcourse.core.probes import layer_gradient_norms, named_layer_gradient_norms


def _parameterized(model):
    return [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]


def _no_hooks_left(model):
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    for p in model.parameters():
        assert not getattr(p, "_post_accumulate_grad_hooks", None)
    assert not _global_optimizer_pre_hooks and not _global_optimizer_post_hooks


@pytest.fixture
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])


@pytest.fixture
def transformer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    return model, torch.randn(4, 10, 16), torch.randn(4, 10, 16)


@pytest.fixture
def lstm():
    torch.manual_seed(0)
    return nn.LSTM(input_size=3, hidden_size=8, num_layers=2, batch_first=True), torch.randn(5, 7, 3), torch.randn(5)


def _lstm_loss(model, X, y):
    output, _ = model(X)
    return F.mse_loss(output[:, -1, 0], y)


def test_resnet18_one_entry_per_layer_in_forward_order(resnet):
    model, X, y = resnet
    names = [name for name, _ in named_layer_gradient_norms(model, X, y)]
    assert len(names) == len(_parameterized(model)) == 41  # 20 convolutions, 20 batch norms, fc
    assert names[:4] == ["conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1"]
    assert names.index("layer2.0.bn2") < names.index("layer2.0.downsample.0") < names.index("layer2.1.conv1")
    assert names[-1] == "fc"


def test_resnet18_monitor_records_layers_and_reused_relus(resnet):
    model, X, y = resnet
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with GradientMonitor(model) as monitor:
        for _ in range(2):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
    assert monitor.series("grad_norm").shape == (2, 41)
    assert monitor.series("update_ratio").shape == (2, 41)
    assert monitor.layer_names[0] == "conv1" and monitor.layer_names[-1] == "fc"
    # each BasicBlock calls its one ReLU module twice: two activation entries
    assert "layer1.0.relu#1" in monitor.activation_names and "layer1.0.relu#2" in monitor.activation_names
    assert monitor.series("dead").shape == (2, len(monitor.activation_names)) and monitor.activation_note is None
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    _no_hooks_left(model)


def test_transformer_forward_order_differs_from_registration_order(transformer):
    model, X, target = transformer
    named = named_layer_gradient_norms(model, X, target, loss_fn="mse")
    names = [name for name, _ in named]
    # registration order is self_attn, linear1, linear2, norm1, norm2; the forward pass meets norm1 before linear1
    assert names[:6] == ["layers.0.self_attn", "layers.0.self_attn.out_proj", "layers.0.norm1",
                         "layers.0.linear1", "layers.0.linear2", "layers.0.norm2"]
    assert len(names) == len(_parameterized(model)) == 12
    assert all(value > 0 for _, value in named)


def test_transformer_functional_activations_are_reported(transformer):
    model, X, target = transformer
    with GradientMonitor(model) as monitor:
        F.mse_loss(model(X), target).backward()
    assert monitor.series("grad_norm").shape == (1, 12)
    assert monitor.series("act_mean").shape[1] == 0
    assert "as functions" in monitor.activation_note
    _no_hooks_left(model)


def test_lstm_is_one_layer_and_works_with_a_loss_closure(lstm):
    model, X, y = lstm
    named = named_layer_gradient_norms(model, X, y, compute_loss=_lstm_loss)
    assert [name for name, _ in named] == ["LSTM"]
    weights = [p for name, p in model.named_parameters() if "bias" not in name]
    model.zero_grad()
    _lstm_loss(model, X, y).backward()
    by_hand = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in weights)).item()
    assert named[0][1] == pytest.approx(by_hand, rel=1e-6)


def test_monitor_with_an_explicit_layer_list_and_a_filter(resnet):
    model, X, y = resnet
    chosen = [model.layer4[1].conv2, model.conv1, model.fc]
    names = [name for name, _ in named_layer_gradient_norms(model, X, y, layers=chosen)]
    assert names == ["conv1", "layer4.1.conv2", "fc"]  # forward order, whatever the list's order
    convs = find_layers(model, include=lambda name, m: isinstance(m, nn.Conv2d))
    assert len(convs) == 20
    with pytest.raises(ValueError, match=r"layers\[0\]"):
        find_layers(model, layers=[nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="no layer"):
        find_layers(model, include=lambda name, m: False)


def test_hooks_are_removed_after_an_exception(resnet):
    model, X, y = resnet
    with pytest.raises(RuntimeError, match="boom"):
        with GradientMonitor(model):
            F.cross_entropy(model(X), y).backward()
            raise RuntimeError("boom")
    _no_hooks_left(model)


def test_parametrized_weights_are_monitored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    nn.utils.parametrizations.weight_norm(model[0])
    names = [name for name, _ in named_layer_gradient_norms(model, torch.randn(6, 4), torch.tensor([0, 1] * 3))]
    assert names == ["0", "2"]  # the parametrization belongs to its layer
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(torch.randn(6, 4)), torch.tensor([0, 1] * 3)).backward()
    assert monitor.series("grad_norm").shape == (1, 2) and monitor.activation_names == ["1"]


def test_layer_gradient_norms_rejects_bad_losses(resnet):
    model, X, y = resnet
    with pytest.raises(ValueError, match="loss_fn='l1'"):
        layer_gradient_norms(model, X, y, loss_fn="l1")
    with pytest.raises(ValueError, match="compute_loss=3"):
        layer_gradient_norms(model, X, y, compute_loss=3)
    with pytest.raises(ValueError, match="scalar"):
        layer_gradient_norms(model, X, y, compute_loss=lambda m, X, y: m(X))


def test_monitor_watches_the_raw_parameters_of_a_constrained_course_model(mnist_small):
    import gradcourse

    X, y = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(depth=3)
    gradcourse.lessons.normalization.constrain_weights_(model, "spectral_norm")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    assert monitor.series("grad_norm").shape == (1, 3) and (monitor.series("update_ratio") > 0).all()


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
