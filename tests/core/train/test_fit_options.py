"""fit's normalize_grad, scheduler and score_training_set options (notebooks 08, 09, 10 and 13)."""

import math
import re

import pytest
import torch

import gradcourse
from gradcourse import (MLP, Callback, ClipNorm, ClipValue, EpochScores, GradientMonitor, NormalizeGradient, ProgressBar,
                        Scheduler, fit)
from gradcourse.lessons.optimization import linear_warmup


def _model():
    gradcourse.set_seed(0)
    return MLP(width=16, depth=3)


def _parameters(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("lr", [0.01, 0.3])
def test_normalized_sgd_steps_have_length_lr(mnist_small, lr):
    X, y = mnist_small
    model = _model()
    before = _parameters(model)
    history = fit(model, X, y, epochs=1, batch_size=len(X), lr=lr, callbacks=[NormalizeGradient(), ProgressBar(show=False)])
    assert history.steps == 1
    assert torch.linalg.vector_norm(_parameters(model) - before).item() == pytest.approx(lr, rel=1e-4)
    assert history.grad_norm[0] != pytest.approx(1.0)  # the recorded norm is the raw one


def test_without_normalization_the_step_is_lr_times_the_gradient_norm(mnist_small):
    X, y = mnist_small
    model = _model()
    before = _parameters(model)
    history = fit(model, X, y, epochs=1, batch_size=len(X), lr=0.1, callbacks=[ProgressBar(show=False)])
    change = torch.linalg.vector_norm(_parameters(model) - before).item()
    assert change == pytest.approx(0.1 * history.grad_norm[0], rel=1e-4)


def test_scheduler_sets_the_learning_rate_of_each_step(mnist_small):
    X, y = mnist_small
    model = _model()
    snapshots = [_parameters(model)]
    for _ in range(3):  # one step per call, so we can look between steps; fit builds a new scheduler each call
        fit(model, X, y, epochs=1, batch_size=len(X), lr=0.2,
            callbacks=[NormalizeGradient(), ProgressBar(show=False), Scheduler(linear_warmup(10, start_factor=0.05))])
        snapshots.append(_parameters(model))
    steps = [torch.linalg.vector_norm(b - a).item() for a, b in zip(snapshots, snapshots[1:])]
    assert steps == pytest.approx([0.01] * 3, rel=1e-4)  # 0.05 * 0.2 at the first step of each schedule


def test_scheduler_steps_after_every_optimizer_step(mnist_small):
    X, y = mnist_small
    model = _model()
    before = _parameters(model)
    rates = []

    def recording(optimizer):
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: rates.append(step) or 0.0)
        return scheduler
    history = fit(model, X, y, epochs=2, batch_size=64, lr=0.1, callbacks=[ProgressBar(show=False), Scheduler(recording)])
    assert rates == list(range(history.steps + 1))  # at construction, then after each of the 8 steps
    assert torch.equal(_parameters(model), before)  # a learning rate of 0 never moves the weights


@pytest.mark.parametrize("clipping", [ClipNorm(1.0), ClipValue(0.5)], ids=repr)
def test_normalizing_refuses_clipping_before_any_step(mnist_small, clipping):
    model = _model()
    before = _parameters(model)
    with pytest.raises(ValueError, match=rf"NormalizeGradient\(\) is not allowed with {re.escape(repr(clipping))}"):
        fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1, callbacks=[NormalizeGradient(), clipping])
    assert torch.equal(_parameters(model), before)


def test_fit_rejects_a_scheduler_that_returns_something_else(mnist_small):
    with pytest.raises(ValueError, match="make_scheduler returned"):
        fit(_model(), *mnist_small, epochs=1, batch_size=64, lr=0.1, callbacks=[ProgressBar(show=False), Scheduler(lambda opt: None)])


def test_normalization_keeps_a_large_learning_rate_from_diverging(mnist_small):
    X, y = mnist_small
    gradcourse.set_seed(0)
    model = MLP(width=32, depth=8, activation="relu", init="kaiming", init_scale=1.5)
    assert fit(model, X, y, epochs=2, batch_size=32, lr=0.5, callbacks=[ProgressBar(show=False)]).diverged
    gradcourse.set_seed(0)
    model = MLP(width=32, depth=8, activation="relu", init="kaiming", init_scale=1.5)
    history = fit(model, X, y, epochs=2, batch_size=32, lr=0.5, callbacks=[NormalizeGradient(), ProgressBar(show=False)])
    assert not history.diverged and all(math.isfinite(v) for v in history.loss)


def test_not_scoring_the_training_set_leaves_its_list_empty_and_the_run_unchanged(mnist_small):
    X, y = mnist_small
    validation = (X[:32], y[:32])
    runs = {}
    for score in (True, False):
        model = _model()
        runs[score] = (fit(model, X, y, epochs=2, batch_size=16, lr=0.1, validation=validation,
                           callbacks=[ProgressBar(show=False), EpochScores(training_set=score)]), _parameters(model))
    (scored, scored_weights), (unscored, unscored_weights) = runs[True], runs[False]
    assert len(scored.train_accuracy) == 2 and unscored.train_accuracy == []
    assert unscored.loss == scored.loss and unscored.val_accuracy == scored.val_accuracy
    assert torch.equal(unscored_weights, scored_weights)


def test_not_scoring_the_training_set_of_a_regression_keeps_the_validation_loss():
    gradcourse.set_seed(0)
    X, y = torch.randn(40, 5, 2), torch.randn(40)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 1), torch.nn.Flatten(0))
    history = fit(model, X, y, epochs=3, batch_size=8, lr=0.01, loss_fn="mse", validation=(X[:8], y[:8]),
                  callbacks=[ProgressBar(show=False), EpochScores(training_set=False)])
    assert history.train_loss == [] and len(history.val_loss) == 3


def test_fit_refuses_a_scheduler_built_on_another_optimizer(mnist_small):
    model = _model()
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = r"make_scheduler returned a LinearLR built on another optimizer.*optimizer it is given"
    with pytest.raises(ValueError, match=expected):
        fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1, callbacks=[
            ProgressBar(show=False), Scheduler(lambda opt: torch.optim.lr_scheduler.LinearLR(other, start_factor=0.1))])


def test_clipping_reads_the_gradient_as_the_callbacks_before_it_left_it(mnist_small):
    """ClipValue then ClipNorm: the norm clipped to is that of the value-clipped gradient, as two calls of
    torch's clip_grad_value_ and clip_grad_norm_ in that order give."""
    X, y = mnist_small
    model, reference = _model(), _model()
    fit(model, X, y, epochs=1, batch_size=len(X), lr=0.5, callbacks=[ClipValue(1e-3), ClipNorm(1e-2),
                                                                      ProgressBar(show=False)])
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(reference(X), y).backward()
    torch.nn.utils.clip_grad_value_(reference.parameters(), 1e-3)
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 1e-2)
    optimizer.step()
    assert torch.allclose(_parameters(model), _parameters(reference), rtol=0, atol=1e-7)


def test_a_learners_after_epoch_sees_this_epochs_scores_and_a_failing_after_fit_ends_the_run_cleanly(mnist_small):
    X, y = mnist_small
    seen = []

    class Watch(Callback):
        def after_epoch(self, state):
            seen.append(len(state.history.train_accuracy))

        def after_fit(self, state):
            raise RuntimeError("a learner's bug")

    model = _model()
    monitor = GradientMonitor(model)
    with pytest.raises(RuntimeError, match="a learner's bug"):
        fit(model, X, y, epochs=2, batch_size=64, lr=0.1, callbacks=[Watch(), monitor, ProgressBar(show=False)])
    assert seen == [1, 2]
    assert not monitor.active   # every after_fit ran although an earlier one raised


def test_a_loss_that_is_not_one_number_and_a_plateau_scheduler_are_refused_before_any_step(mnist_small):
    X, y = mnist_small
    model = _model()
    before = _parameters(model)
    per_example = torch.nn.CrossEntropyLoss(reduction="none")
    with pytest.raises(ValueError, match=r"loss_fn=CrossEntropyLoss\(\) is not allowed: it returned .*one number"):
        fit(model, X, y, epochs=1, batch_size=64, lr=0.1, loss_fn=per_example, callbacks=[ProgressBar(show=False)])
    with pytest.raises(ValueError, match="loss_fn=CrossEntropyLoss"):
        gradcourse.core.train.check_fit(model, X, y, epochs=1, batch_size=64, lr=0.1, loss_fn=per_example)
    with pytest.raises(ValueError, match="ReduceLROnPlateau, which needs a metric"):
        fit(model, X, y, epochs=1, batch_size=64, lr=0.1,
            callbacks=[Scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau), ProgressBar(show=False)])
    assert torch.equal(_parameters(model), before)
