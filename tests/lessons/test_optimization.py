"""gradcourse.lessons.optimization: loss scaling against SGD and Adam, Adam's ceiling on a step, learning-rate warmup."""

import math

import pytest
import torch
from torch import nn

import gradcourse
from gradcourse import MLP
from gradcourse.lessons.optimization import (ADAM_EPS, adam_ratio_ceiling, learning_rates, linear_warmup,
                                             loss_scaling_steps)
from gradcourse.lessons.transformers import RowTransformer


def _model(**kwargs):
    gradcourse.set_seed(0)
    return MLP(**{"width": 16, "depth": 3, "activation": "sigmoid", **kwargs})


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_sgd_step_shrinks_by_the_loss_scale(mnist_small, optimizer):
    result = loss_scaling_steps(_model(), *mnist_small, optimizer, lr=0.1, loss_scale=1e-4, steps=1)
    assert result["layers"] == ["hidden layer 1", "hidden layer 2", "hidden layer 3", "output layer"]
    assert all(r == pytest.approx(1e-4, rel=1e-6) for r in result["ratio"])
    assert result["eps_over_scale"] is None


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_scaling_the_loss_is_dividing_eps(mnist_small, optimizer):
    result = loss_scaling_steps(_model(), *mnist_small, optimizer, lr=1e-3, loss_scale=1e-4, steps=3)
    assert result["scaled"] == pytest.approx(result["eps_over_scale"], rel=1e-9)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_first_step_ratio_is_predicted_from_the_gradient_entries(mnist_small, optimizer):
    # the sigmoid net's early layers have gradients near eps / scale = 1e-4: the ratio is far from 0 and 1
    result = loss_scaling_steps(_model(depth=5), *mnist_small, optimizer, lr=1e-3, loss_scale=1e-4)
    assert min(result["ratio"]) < 0.5 < max(result["ratio"])
    assert result["predicted_ratio"] == pytest.approx(result["ratio"], rel=1e-6)


def test_predicted_ratio_is_for_one_adaptive_step_only(mnist_small):
    assert loss_scaling_steps(_model(), *mnist_small, "sgd", lr=0.1)["predicted_ratio"] is None
    assert loss_scaling_steps(_model(), *mnist_small, "adam", lr=1e-3, steps=2)["predicted_ratio"] is None


def test_adam_step_is_unchanged_where_gradients_are_far_above_eps_over_scale(mnist_small):
    # a shallow ReLU network has gradients near 1e-2, far above eps / scale = 1e-6
    result = loss_scaling_steps(_model(activation="relu", init="kaiming", depth=1), *mnist_small, "adam",
                                lr=1e-3, loss_scale=1e-2)
    assert min(result["grad_rms"]) > 100 * ADAM_EPS / 1e-2
    assert all(r == pytest.approx(1.0, abs=0.01) for r in result["ratio"])


def test_adam_first_step_moves_each_weight_by_about_lr(mnist_small):
    model = _model(activation="relu", init="kaiming", depth=1)
    result = loss_scaling_steps(model, *mnist_small, "adam", lr=1e-3, loss_scale=1.0)
    weights = [model.blocks[0].linear.weight, model.output.weight]
    for change, weight in zip(result["unscaled"], weights):
        assert change == pytest.approx(1e-3 * math.sqrt(weight.numel()), rel=0.05)


def test_loss_scaling_steps_leave_the_model_alone(mnist_small):
    model = _model(norm="batch")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss_scaling_steps(model, *mnist_small, "adam")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(optimizer="adamw"), "optimizer", "adamw"),
    (dict(lr=0.0), "lr", 0.0),
    (dict(loss_scale=0.0), "loss_scale", 0.0),
    (dict(loss_scale=math.nan), "loss_scale", math.nan),
    (dict(steps=0), "steps", 0),
])
def test_loss_scaling_steps_reject_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        loss_scaling_steps(_model(), *mnist_small, **kwargs)


def test_loss_scaling_steps_need_a_module(mnist_small):
    with pytest.raises(ValueError, match="model="):
        loss_scaling_steps("net", *mnist_small)


# ---------------------------------------------------------------- warmup

def test_linear_warmup_builds_a_linear_lr_scheduler():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    scheduler = linear_warmup(4, start_factor=0.1)(optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LinearLR)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_learning_rates_rise_linearly_then_stay():
    rates = learning_rates(linear_warmup(4, start_factor=0.2), lr=1.0, steps=7)
    assert rates == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(steps=0), "steps", 0),
    (dict(steps=2.5), "steps", 2.5),
    (dict(start_factor=0.0), "start_factor", 0.0),
    (dict(start_factor=1.5), "start_factor", 1.5),
])
def test_linear_warmup_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        linear_warmup(**{"steps": 10, **kwargs})


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(make_scheduler=3), "make_scheduler", 3),
    (dict(lr=-1.0), "lr", -1.0),
    (dict(steps=0), "steps", 0),
])
def test_learning_rates_reject_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        learning_rates(**{"make_scheduler": linear_warmup(3), "lr": 0.1, "steps": 5, **kwargs})


def test_adam_ratio_ceiling_is_lr_times_root_three_fan_in_for_the_default_init():
    model = _model(width=128, depth=3, init="default")
    ceiling = adam_ratio_ceiling(model, lr=3e-3)
    assert len(ceiling) == 3
    for value, fan_in in zip(ceiling, [784, 128, 128]):
        assert value == pytest.approx(3e-3 * math.sqrt(3 * fan_in), rel=0.03)


def test_adam_ratio_ceiling_bounds_adams_measured_ratios(mnist_small):
    X, y = mnist_small
    model = _model(width=32, depth=3)
    ceiling = adam_ratio_ceiling(model, lr=1e-3)
    monitor = gradcourse.GradientMonitor(model)
    gradcourse.fit(model, X, y, epochs=1, batch_size=32, optimizer="adam", lr=1e-3,
                   callbacks=[monitor, gradcourse.ProgressBar(show=False)])
    measured = monitor.mean("update_ratio")
    assert all(c / 20 < m <= c * 1.01 for m, c in zip(measured, ceiling)), (measured, ceiling)


def test_adam_ratio_ceiling_scales_with_lr_and_takes_any_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    small, large = adam_ratio_ceiling(model, lr=1e-3), adam_ratio_ceiling(model, lr=1e-2)
    assert small[0] == pytest.approx(1e-3 / 0.5)
    assert all(b == pytest.approx(10 * a) for a, b in zip(small, large))


@pytest.mark.parametrize("lr", [0, -1e-3, float("nan"), "0.1"])
def test_adam_ratio_ceiling_rejects_bad_lr(lr, raises_bad):
    with raises_bad("lr", lr):
        adam_ratio_ceiling(_model(), lr=lr)


def _row_transformer(placement="post"):
    """A small RowTransformer reading a digit as 7 tokens of 4 pixel rows, as notebook 13 does."""
    gradcourse.set_seed(0)
    return RowTransformer(depth=2, d_model=16, heads=2, ffn=32, tokens=7, token_size=112, placement=placement)


def test_loss_scaling_steps_take_a_row_transformer(mnist_small):
    X, y = mnist_small[0][:64], mnist_small[1][:64]
    model = _row_transformer()
    sgd = loss_scaling_steps(model, X, y, "sgd", lr=0.1, loss_scale=1e-4)
    assert "RowTransformer" in sgd["layers"] and "blocks.1.self_attn" in sgd["layers"] and sgd["layers"][-1] == "head"
    assert all(r == pytest.approx(1e-4, rel=1e-6) for r in sgd["ratio"])
    adam = loss_scaling_steps(model, X, y, "adam", lr=1e-3, loss_scale=1e-4)
    assert len(adam["grad_rms"]) == len(adam["layers"]) and min(adam["grad_rms"]) > 0
    assert adam["scaled"] == pytest.approx(adam["eps_over_scale"], rel=1e-9)
    assert adam["predicted_ratio"] == pytest.approx(adam["ratio"], rel=1e-6)


def test_loss_scaling_steps_report_a_frozen_layer_as_unmoved(mnist_small):
    model = _model()
    model.hidden_linears()[0].requires_grad_(False)
    result = loss_scaling_steps(model, *mnist_small, "sgd", lr=0.1)
    assert result["grad_rms"][0] == 0.0 and result["unscaled"][0] == 0.0 and math.isnan(result["ratio"][0])
    assert all(r == pytest.approx(1e-4, rel=1e-6) for r in result["ratio"][1:])
