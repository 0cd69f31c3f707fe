"""gradcourse.core.layers: which modules of a model are its layers, which parameters are their weights, and
in which order a forward pass meets them."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradcourse.core.layers import ForwardOrder, as_one_tensor, find_layers, layer_weights, sharded_parameters
from gradcourse.core.probes import named_layer_gradient_norms
from helpers import resnet18_batch


def _same(found, expected):
    return len(found) == len(expected) and all(a is b for a, b in zip(found, expected))


def test_find_layers_takes_an_explicit_list_or_a_filter():
    model, X, y = resnet18_batch()
    chosen = [model.layer4[1].conv2, model.conv1, model.fc]
    names = [name for name, _ in named_layer_gradient_norms(model, X, y, layers=chosen)]
    assert names == ["conv1", "layer4.1.conv2", "fc"]  # forward order, whatever the list's order
    convs = find_layers(model, include=lambda name, m: isinstance(m, nn.Conv2d))
    assert len(convs) == 20
    with pytest.raises(ValueError, match=r"layers\[0\]"):
        find_layers(model, layers=[nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="no layer"):
        find_layers(model, include=lambda name, m: False)


def test_layer_weights_are_a_layers_own_trainable_parameters_but_its_biases():
    linear, norm = nn.Linear(3, 2), nn.BatchNorm1d(2)
    assert _same(layer_weights(linear), [linear.weight]) and _same(layer_weights(norm), [norm.weight])
    assert layer_weights(nn.Sequential(linear)) == []                  # its child's parameters are not its own
    linear.weight.requires_grad_(False)
    assert _same(layer_weights(linear), [linear.bias])                 # a layer that trains only its bias
    linear.bias.requires_grad_(False)
    assert layer_weights(linear) == [] and _same(layer_weights(linear, frozen=True), [linear.weight])
    normalized = nn.utils.parametrizations.weight_norm(nn.Linear(3, 2))
    assert _same(layer_weights(normalized), list(normalized.parametrizations.weight.parameters()))


def test_as_one_tensor_keeps_a_single_tensor_and_concatenates_several():
    weight, bias = torch.randn(2, 3), torch.randn(2)
    assert as_one_tensor([weight]) is weight
    assert torch.equal(as_one_tensor([weight, bias]), torch.cat([weight.flatten(), bias]))


def test_sharded_parameters_names_the_parameters_fsdp_flattened():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert sharded_parameters(model) == []
    model[1].weight._fsdp_flattened = True                               # what FSDP1 marks its flat parameters with
    assert sharded_parameters(model) == ["1.weight"]


class _Wrapper(nn.Module):
    """A layer with a parameter of its own and a child it never calls (as attention's out_proj)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(2))
        self.inner = nn.Linear(2, 2)

    def forward(self, x):
        return F.linear(x * self.scale, self.inner.weight, self.inner.bias)


class _OutOfOrder(nn.Module):
    def __init__(self):
        super().__init__()
        self.late, self.wrapper, self.early, self.unused = nn.Linear(2, 2), _Wrapper(), nn.Linear(2, 2), nn.Linear(2, 2)

    def forward(self, x):
        return self.late(self.wrapper(self.early(x)))


def test_forward_order_sorts_layers_by_first_call_and_an_uncalled_child_after_its_parent():
    model = _OutOfOrder()
    order = ForwardOrder(model)
    model(torch.randn(1, 2))
    model(torch.randn(1, 2))                                             # a second pass changes nothing
    order.remove()
    assert not any(m._forward_pre_hooks for m in model.modules())
    named = [("late", model.late), ("wrapper", model.wrapper), ("wrapper.inner", model.wrapper.inner),
             ("early", model.early), ("unused", model.unused)]   # registration order
    assert [name for name, _ in order.sort(named)] == ["early", "wrapper", "wrapper.inner", "late", "unused"]
