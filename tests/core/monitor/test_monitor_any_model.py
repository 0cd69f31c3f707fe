"""GradientMonitor on models nobody in this project wrote (torchvision's ResNet-18, torch's Transformer, weights
under a parametrization), and on a course model under a weight constraint. (layer_gradient_norms on the same
models is tested in tests/core/test_probes.py, the choice of layers in tests/core/test_layers.py.)"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

import gradcourse
from gradcourse.core.monitor.monitor import GradientMonitor
from gradcourse.core.probes import named_layer_gradient_norms
from gradcourse.lessons.weight_constraints import constrain_weights_


def _no_hooks_left(model):
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    for p in model.parameters():
        assert not getattr(p, "_post_accumulate_grad_hooks", None)
    assert not _global_optimizer_pre_hooks and not _global_optimizer_post_hooks


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


def test_transformer_functional_activations_are_reported(transformer):
    model, X, target = transformer
    with GradientMonitor(model) as monitor:
        F.mse_loss(model(X), target).backward()
    assert monitor.series("grad_norm").shape == (1, 12)
    assert monitor.series("act_mean").shape[1] == 0
    assert "as functions" in monitor.activation_note
    _no_hooks_left(model)


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


def test_monitor_watches_the_raw_parameters_of_a_constrained_course_model(mnist_small):
    X, y = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(depth=3)
    constrain_weights_(model, "spectral_norm")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    assert monitor.series("grad_norm").shape == (1, 3) and (monitor.series("update_ratio") > 0).all()
