"""gradcourse.lessons.normalization: quantile recorder, accuracy over steps, BatchNorm scale invariance, norm statistics."""

import math

import pytest
import torch
from torch import nn

import gradcourse
from gradcourse import MLP, ProgressBar, fit
from gradcourse.lessons.normalization import AccuracyOverSteps, PreactivationQuantiles, norm_statistics, scale_invariance


def _model(**kwargs):
    gradcourse.set_seed(0)
    return MLP(**{"width": 16, "depth": 3, "activation": "sigmoid", **kwargs})


# ---------------------------------------------------------------- PreactivationQuantiles

def test_quantiles_are_those_of_the_activation_input(mnist_small):
    X, _ = mnist_small
    model = _model(norm="batch")
    with PreactivationQuantiles(model, layer=1, quantiles=(0.1, 0.5, 0.9)) as recorder:
        model(X)
    block = model.blocks[1]
    h = model.blocks[0](X)
    expected = torch.quantile(block.norm(block.linear(h)).detach().double().flatten(),
                              torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    assert recorder.series().shape == (1, 3)
    assert torch.allclose(recorder.series()[0], expected, atol=1e-5)


def test_quantile_recorder_counts_training_passes_only_and_removes_its_hook(mnist_small):
    X, y = mnist_small
    model = _model()
    recorder = PreactivationQuantiles(model)
    with recorder:
        assert recorder.active
        history = fit(model, X, y, epochs=1, batch_size=64, lr=0.1, callbacks=[ProgressBar(show=False)])  # accuracy runs under no_grad
        with torch.no_grad():
            model(X)
    assert not recorder.active
    assert len(recorder.series()) == history.steps == 4
    model(X)
    assert len(recorder.series()) == 4
    assert "4 passes" in repr(recorder)


def test_drift_is_the_median_shift_in_initial_spreads():
    recorder = PreactivationQuantiles(_model(), quantiles=(0.15, 0.5, 0.85))
    recorder._records = [torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
                         torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64)]
    assert recorder.drift() == pytest.approx(1.5)


def test_unit_quantiles_are_those_of_one_unit_over_the_batch(mnist_small):
    X, _ = mnist_small
    model = _model()
    with PreactivationQuantiles(model, layer=-1, unit=5) as recorder:
        model(X)
    block = model.blocks[-1]
    h = model.blocks[1](model.blocks[0](X))
    expected = torch.quantile(block.linear(h)[:, 5].detach().double(), torch.tensor([0.15, 0.5, 0.85], dtype=torch.float64))
    assert torch.allclose(recorder.series()[0], expected, atol=1e-6)
    assert "unit=5" in repr(recorder)


def test_spread_ratio_is_the_last_spread_over_the_first():
    recorder = PreactivationQuantiles(_model(), quantiles=(0.15, 0.5, 0.85))
    recorder._records = [torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
                         torch.tensor([2.0, 3.0, 8.0], dtype=torch.float64)]
    assert recorder.spread_ratio() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="at least two"):
        PreactivationQuantiles(_model()).spread_ratio()


def test_drift_needs_two_passes():
    with pytest.raises(ValueError, match="at least two"):
        PreactivationQuantiles(_model()).drift()


def test_quantile_recorder_cannot_be_entered_twice():
    recorder = PreactivationQuantiles(_model())
    with recorder:
        with pytest.raises(RuntimeError, match="already active"):
            recorder.__enter__()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(layer=3), "layer", 3),
    (dict(layer=-4), "layer", -4),
    (dict(layer=0.5), "layer", 0.5),
    (dict(quantiles=(0.5, 1.5)), "quantiles[i]", 1.5),
    (dict(quantiles=()), "quantiles", ()),
    (dict(quantiles=0.5), "quantiles", 0.5),
    (dict(unit=16), "unit", 16),
    (dict(unit=-1), "unit", -1),
])
def test_quantile_recorder_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        PreactivationQuantiles(_model(), **kwargs)


def test_quantile_recorder_needs_a_course_model():
    with pytest.raises(ValueError, match="model="):
        PreactivationQuantiles(nn.Linear(2, 2))


# ---------------------------------------------------------------- AccuracyOverSteps

def test_accuracy_is_scored_every_few_steps_and_at_the_end(mnist_small):
    X, y = mnist_small
    model = _model(norm="batch")
    with AccuracyOverSteps(model, X[:100], y[:100], every=2) as accuracy:
        assert accuracy.active
        history = fit(model, X, y, epochs=1, batch_size=50, lr=0.5, callbacks=[ProgressBar(show=False)])  # 6 steps
    assert not accuracy.active and history.steps == 6
    assert accuracy.steps == [0, 2, 4, 6]
    model.eval()
    with torch.no_grad():
        final = (model(X[:100]).argmax(dim=1) == y[:100]).float().mean().item()
    assert accuracy.accuracy[-1] == pytest.approx(final)
    assert accuracy.at(5) == accuracy.accuracy[2] and accuracy.at(6) == accuracy.accuracy[3]
    assert "4 scores" in repr(accuracy)


def test_accuracy_recorder_scores_in_eval_mode_and_leaves_training_mode_alone(mnist_small):
    X, y = mnist_small
    model = _model(norm="batch")
    seen = []
    model.output.register_forward_hook(lambda module, inputs, output: seen.append(module.training))
    with AccuracyOverSteps(model, X[:64], y[:64], every=1):
        fit(model, X, y, epochs=1, batch_size=128, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert model.training
    assert seen[:2] == [True, False]          # the step's pass, then the scoring pass
    running = model.blocks[0].norm.running_mean.clone()
    with AccuracyOverSteps(model, X[:64], y[:64], every=1) as accuracy:
        pass
    assert accuracy.steps == [] and torch.equal(running, model.blocks[0].norm.running_mean)


def test_steps_to_finds_the_first_step_at_the_target():
    accuracy = AccuracyOverSteps(_model(), torch.zeros(4, 784), torch.zeros(4, dtype=torch.long), every=10)
    accuracy.steps, accuracy.accuracy = [0, 10, 20], [0.1, 0.85, 0.8]
    assert accuracy.steps_to(0.8) == 10 and accuracy.steps_to(0.9) is None and accuracy.steps_to(0.0) == 0
    with pytest.raises(ValueError, match="nothing recorded"):
        AccuracyOverSteps(_model(), torch.zeros(4, 784), torch.zeros(4, dtype=torch.long)).at(3)


@pytest.mark.parametrize("kwargs, name, value", [(dict(every=0), "every", 0), (dict(every=1.5), "every", 1.5)])
def test_accuracy_recorder_rejects_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        AccuracyOverSteps(_model(), *mnist_small, **kwargs)


def test_accuracy_recorder_rejects_a_bad_target_and_a_second_entry(mnist_small, raises_bad):
    accuracy = AccuracyOverSteps(_model(), *mnist_small)
    with raises_bad("target", 1.5):
        accuracy.steps_to(1.5)
    with accuracy:
        with pytest.raises(RuntimeError, match="already active"):
            accuracy.__enter__()


# ---------------------------------------------------------------- scale_invariance

@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_batchnorm_makes_the_gradient_scale_as_one_over_a(mnist_small, scale):
    X, y = mnist_small
    result = scale_invariance(_model(activation="relu", init="kaiming", norm="batch"), X, y, layer=1, weight_factor=scale)
    # exact but for BatchNorm's eps (1e-5 added to the batch variance)
    assert result["loss_scaled"] == pytest.approx(result["loss"], abs=1e-5)
    assert scale * result["grad_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert torch.allclose(scale * result["grad_scaled"], result["grad"], atol=1e-4 * result["grad"].abs().max().item())
    assert abs(result["cosine_weight_grad"]) < 1e-6


def test_without_batchnorm_the_gradient_is_not_scale_invariant(mnist_small):
    result = scale_invariance(_model(activation="relu", init="kaiming"), *mnist_small, layer=1, weight_factor=3.0)
    assert abs(3.0 * result["grad_ratio"] - 1) > 0.5
    assert result["loss_scaled"] != pytest.approx(result["loss"], abs=1e-3)


def test_scale_invariance_leaves_the_model_alone(mnist_small):
    model = _model(norm="batch")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scale_invariance(model, *mnist_small, layer=0, weight_factor=2.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(layer=3), "layer", 3),
    (dict(weight_factor=0.0), "weight_factor", 0.0),
    (dict(weight_factor=-2.0), "weight_factor", -2.0),
    (dict(weight_factor=math.inf), "weight_factor", math.inf),
])
def test_scale_invariance_rejects_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        scale_invariance(_model(norm="batch"), *mnist_small, **kwargs)


# ---------------------------------------------------------------- norm_statistics

def test_batchnorm_standardizes_units_and_depends_on_the_batch(mnist_small):
    stats = norm_statistics(_model(norm="batch"), mnist_small[0], layer=0)
    assert stats["unit_mean"] < 1e-5 and stats["unit_std"] < 1e-3
    assert stats["batch_dependence"] > 0.01


def test_layernorm_standardizes_examples_and_ignores_the_batch(mnist_small):
    stats = norm_statistics(_model(norm="layer"), mnist_small[0], layer=1)
    assert stats["example_mean"] < 1e-5 and stats["example_std"] < 1e-3
    assert stats["batch_dependence"] < 1e-6


def test_norm_statistics_leave_batchnorm_statistics_alone(mnist_small):
    model = _model(norm="batch")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norm_statistics(model, mnist_small[0], layer=2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(layer=3), "layer", 3),
    (dict(subset=1), "subset", 1),
    (dict(subset=256), "subset", 256),
])
def test_norm_statistics_reject_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        norm_statistics(_model(norm="batch"), mnist_small[0], **kwargs)
