"""gradcourse.lessons.batchnorm: BatchNorm by hand against torch, folding, batch dependence, stale running statistics."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_linear_bn_eval

import gradcourse
from gradcourse.lessons.batchnorm import (alone_or_in_batch, batch_norm, fold_batchnorm, recompute_running_statistics_,
                                          stale_statistics_experiment, train_mode_accuracy)


def _inputs(n=8, features=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(n, features, generator=g, dtype=torch.float64) + 2
    weight = torch.rand(features, generator=g, dtype=torch.float64) + 0.5
    bias = torch.randn(features, generator=g, dtype=torch.float64)
    mean = torch.randn(features, generator=g, dtype=torch.float64)
    var = torch.rand(features, generator=g, dtype=torch.float64) + 0.5
    return x, weight, bias, mean, var


# ---------------------------------------------------------------- batch_norm

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_batch_norm_matches_torch_functional(training, momentum):
    x, weight, bias, mean, var = _inputs()
    mine_mean, mine_var, torch_mean, torch_var = mean.clone(), var.clone(), mean.clone(), var.clone()
    ours = batch_norm(x, weight, bias, mine_mean, mine_var, training, momentum=momentum)
    theirs = F.batch_norm(x, torch_mean, torch_var, weight, bias, training=training, momentum=momentum, eps=1e-5)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(mine_mean, torch_mean, atol=1e-6)
    assert torch.allclose(mine_var, torch_var, atol=1e-6)
    if training:   # the running variance took the unbiased batch variance
        expected = (1 - momentum) * var + momentum * x.var(dim=0, correction=1)
        assert torch.allclose(mine_var, expected, atol=1e-12)
        assert not torch.allclose(mine_var, (1 - momentum) * var + momentum * x.var(dim=0, correction=0))
    else:
        assert torch.equal(mine_mean, mean) and torch.equal(mine_var, var)


def test_batch_norm_matches_batchnorm1d_over_steps_in_train_and_eval():
    torch.manual_seed(0)
    layer = nn.BatchNorm1d(6)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.normal_()
    mean, var = layer.running_mean.clone(), layer.running_var.clone()
    for step in range(5):
        x = torch.randn(16, 6) * (step + 1) + step
        layer.train()
        expected = layer(x)
        ours = batch_norm(x, layer.weight, layer.bias, mean, var, True)
        assert torch.allclose(ours, expected, atol=1e-6)
        assert torch.allclose(mean, layer.running_mean, atol=1e-6)
        assert torch.allclose(var, layer.running_var, atol=1e-6)
    layer.eval()
    x = torch.randn(3, 6)
    assert torch.allclose(batch_norm(x, layer.weight, layer.bias, mean, var, False), layer(x), atol=1e-6)


def test_batch_norm_train_output_has_zero_mean_unit_biased_std():
    x, _, _, mean, var = _inputs(n=32)
    y = batch_norm(x, torch.ones(5, dtype=x.dtype), torch.zeros(5, dtype=x.dtype), mean, var, True, eps=1e-12)
    assert y.mean(dim=0).abs().max() < 1e-10
    assert (y.std(dim=0, correction=0) - 1).abs().max() < 1e-10


def test_batch_norm_passes_gradients_like_torch():
    x, weight, bias, mean, var = _inputs()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w1, w2 = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    (batch_norm(x1, w1, bias, mean.clone(), var.clone(), True) ** 3).sum().backward()
    (F.batch_norm(x2, mean.clone(), var.clone(), w2, bias, training=True) ** 3).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-6) and torch.allclose(w1.grad, w2.grad, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (dict(x=torch.ones(4)), "x=.*2-D"),
    (dict(weight=torch.ones(4, dtype=torch.float64)), "weight has 4 entries"),
    (dict(training=1), "training=1 is not allowed"),
    (dict(momentum=1.5), "momentum=1.5 is not allowed"),
    (dict(eps=0.0), "eps=0.0 is not allowed"),
    (dict(running_var=-torch.ones(5, dtype=torch.float64), training=False), r"running_var=\[-1.0, -1.0, -1.0, -1.0, -1.0\] is not allowed"),
])
def test_batch_norm_rejects_bad_arguments(change, message):
    x, weight, bias, mean, var = _inputs()
    arguments = dict(x=x, weight=weight, bias=bias, running_mean=mean, running_var=var, training=True)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        batch_norm(**arguments)


def test_batch_norm_needs_two_rows_in_training():
    x, weight, bias, mean, var = _inputs(n=1)
    with pytest.raises(ValueError, match="at least 2"):
        batch_norm(x, weight, bias, mean, var, True)
    assert batch_norm(x, weight, bias, mean, var, False).shape == (1, 5)


# ---------------------------------------------------------------- fold_batchnorm

def _trained_pair(bias=True, affine=True):
    torch.manual_seed(1)
    linear, bn = nn.Linear(7, 4, bias=bias), nn.BatchNorm1d(4, affine=affine)
    with torch.no_grad():
        for _ in range(10):
            bn(linear(torch.randn(32, 7) * 2 + 1))
        if affine:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_()
    return linear, bn.eval()


@pytest.mark.parametrize("bias, affine", [(True, True), (False, True), (True, False)])
def test_fold_batchnorm_equals_the_two_layers_and_torch_fusion(bias, affine):
    linear, bn = _trained_pair(bias, affine)
    folded = fold_batchnorm(linear, bn)
    x = torch.randn(20, 7)
    with torch.no_grad():
        assert torch.allclose(folded(x), bn(linear(x)), atol=1e-5)
        if affine:
            fused = fuse_linear_bn_eval(copy.deepcopy(linear).eval(), bn)
            assert torch.allclose(folded.weight, fused.weight, atol=1e-6)
            assert torch.allclose(folded.bias, fused.bias, atol=1e-6)
    assert folded is not linear and torch.equal(linear.weight, _trained_pair(bias, affine)[0].weight)


def test_fold_batchnorm_rejects_bad_arguments():
    linear, bn = _trained_pair()
    with pytest.raises(ValueError, match="linear=Conv1d"):
        fold_batchnorm(nn.Conv1d(1, 1, 1), bn)
    with pytest.raises(ValueError, match="bn=LayerNorm"):
        fold_batchnorm(linear, nn.LayerNorm(4))
    with pytest.raises(ValueError, match="bn has 5 features"):
        fold_batchnorm(linear, nn.BatchNorm1d(5))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(linear, nn.BatchNorm1d(4, track_running_stats=False))


# ---------------------------------------------------------------- alone_or_in_batch

def test_layernorm_and_groupnorm_do_not_depend_on_the_batch_batchnorm_does():
    torch.manual_seed(0)
    X = torch.randn(64, 12) * 3 + 1
    for layer in (nn.LayerNorm(12), nn.GroupNorm(3, 12)):
        for subset in (1, 2, 8):
            assert alone_or_in_batch(layer, X, subset) < 1e-5
    bn = nn.BatchNorm1d(12)
    assert alone_or_in_batch(bn, X, 2) > 0.1
    assert alone_or_in_batch(bn, X, 8) > 0.01
    assert torch.equal(bn.running_mean, torch.zeros(12)) and bn.num_batches_tracked.item() == 0   # a copy ran
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        alone_or_in_batch(bn, X, 1)


def test_running_statistics_functions_name_a_model_that_is_not_one(mnist_small):
    X, y = mnist_small
    with pytest.raises(ValueError, match="model='x' is not allowed; it must be a torch.nn.Module"):
        recompute_running_statistics_("x", X)
    with pytest.raises(ValueError, match="model='x' is not allowed; it must be a torch.nn.Module"):
        train_mode_accuracy("x", X, y)


def test_alone_or_in_batch_rejects_bad_arguments():
    X = torch.randn(8, 4)
    with pytest.raises(ValueError, match="layer=Linear is not allowed"):
        alone_or_in_batch(nn.Linear(4, 4), X)
    with pytest.raises(ValueError, match="subset=8 is not allowed"):
        alone_or_in_batch(nn.LayerNorm(4), X, 8)


# ---------------------------------------------------------------- running statistics

def test_recompute_running_statistics_gives_the_plain_mean_and_leaves_weights(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=8, depth=2, norm="batch")
    weights = copy.deepcopy(model.state_dict())
    recompute_running_statistics_(model, X, batch_size=64)
    assert not model.training
    first = model.blocks[0]
    z = first.linear(X).detach()
    # four batches of 64: the running mean is the mean of the batch means, which is the overall mean
    assert torch.allclose(first.norm.running_mean, z.mean(dim=0), atol=1e-5)
    assert first.norm.momentum == 0.1
    for name, value in model.state_dict().items():
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(value, weights[name])
    with pytest.raises(ValueError, match="must contain a BatchNorm"):
        recompute_running_statistics_(gradcourse.MLP(width=8, depth=2), X)


def test_train_mode_accuracy_leaves_the_running_statistics(mnist_small):
    X, y = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=8, depth=2, norm="batch")
    before = copy.deepcopy(model.state_dict())
    assert 0 <= train_mode_accuracy(model, X, y, batch_size=128) <= 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_stale_statistics_hurt_eval_mode_only_and_recomputing_repairs_them():
    X, y = gradcourse.load_mnist()
    X_test, y_test = gradcourse.load_mnist("test")
    result = stale_statistics_experiment(X, y, validation=(X_test, y_test), seed=0)
    assert result["train_mode"] > 0.85 and abs(result["eval"] - result["train_mode"]) < 0.03
    assert result["eval_stale"] < result["train_mode"] - 0.1
    assert abs(result["eval_recomputed"] - result["train_mode"]) < 0.03
    assert result["stale_weight"] == pytest.approx(1 - 0.9 ** 20)
    none = stale_statistics_experiment(X, y, validation=(X_test, y_test), seed=0, stale_batches=0)
    assert none["eval_stale"] == result["eval"]


@pytest.mark.parametrize("change, message", [
    (dict(digit=10), "digit=10 is not allowed"),
    (dict(stale_batches=-1), "stale_batches=-1 is not allowed"),
    (dict(batch_size=1), "batch_size=1 is not allowed"),
    (dict(lr=0), "lr=0 is not allowed"),
    (dict(validation=None), r"validation=None is not allowed; it must be \(X_val, y_val\)"),
    (dict(validation=("X", "y")), r"validation\[0\]="),
])
def test_stale_statistics_experiment_rejects_bad_arguments(mnist_small, change, message):
    X, y = mnist_small
    with pytest.raises(ValueError, match=message):
        stale_statistics_experiment(X, y, **{"validation": (X, y), **change})
