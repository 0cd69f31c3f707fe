"""gradcourse.runs: seeded, monitored training of course MLPs side by side."""

import math

import pytest

import gradcourse
from gradcourse import MLP, GradientMonitor
from gradcourse.runs import TrainedMLP, initial_gradient_norms, train_mlp, train_mlps


def test_train_mlp_builds_trains_and_monitors(mnist_small):
    X, y = mnist_small
    run = train_mlp(X, y, width=8, depth=3, epochs=2, batch_size=64, lr=0.1, validation=(X[:50], y[:50]))
    assert isinstance(run, TrainedMLP) and isinstance(run.monitor, GradientMonitor)
    assert run.model.blocks[0].linear.in_features == 784 and len(run.model.blocks) == 3
    assert run.history.steps == 8 and run.monitor.steps("update_ratio") == 8
    assert not run.monitor.active
    assert run.train_error == pytest.approx(1 - run.history.train_accuracy[-1])
    assert run.test_error == pytest.approx(1 - run.history.val_accuracy[-1])
    assert "TrainedMLP(History(steps=8" in repr(run)


def test_train_mlp_equals_a_seeded_fit(mnist_small):
    X, y = mnist_small
    run = train_mlp(X, y, width=8, depth=2, epochs=1, batch_size=64, lr=0.1, seed=3)
    gradcourse.set_seed(3)
    model = MLP(width=8, depth=2)
    history = gradcourse.fit(model, X, y, epochs=1, batch_size=64, lr=0.1, seed=3, progress=False)
    assert run.history.loss == history.loss


def test_test_error_is_nan_without_validation(mnist_small):
    run = train_mlp(*mnist_small, width=8, depth=2, epochs=1, batch_size=128, lr=0.1)
    assert math.isnan(run.test_error)


def test_train_mlps_overrides_shared_options_in_order(mnist_small):
    runs = train_mlps(*mnist_small, {"deep": dict(depth=4), "shallow": {}}, width=8, depth=2, epochs=1,
                      batch_size=128, lr=0.1)
    assert list(runs) == ["deep", "shallow"]
    assert len(runs["deep"].model.blocks) == 4 and len(runs["shallow"].model.blocks) == 2


def test_train_mlp_rejects_unknown_options(mnist_small):
    with pytest.raises(ValueError, match=r"widht=8 is not allowed; train_mlp takes"):
        train_mlp(*mnist_small, widht=8, epochs=1, batch_size=64, lr=0.1)


@pytest.mark.parametrize("configs", [{}, [dict(depth=2)], {"a": 3}])
def test_train_mlps_rejects_bad_configs(mnist_small, configs):
    with pytest.raises(ValueError, match="configs="):
        train_mlps(*mnist_small, configs, epochs=1, batch_size=64, lr=0.1)


def test_train_mlp_passes_bad_values_to_the_checks(mnist_small, raises_bad):
    with raises_bad("seed", -1):
        train_mlp(*mnist_small, seed=-1, epochs=1, batch_size=64, lr=0.1)
    with raises_bad("depth", 0):
        train_mlp(*mnist_small, depth=0, epochs=1, batch_size=64, lr=0.1)


# ---------------------------------------------------------------- initial_gradient_norms

def test_initial_gradient_norms_are_those_of_a_float64_copy(mnist_small):
    X, y = mnist_small
    norms = initial_gradient_norms(X, y, signal="weights", width=8, depth=3, seed=2)
    gradcourse.set_seed(2)
    model = MLP(width=8, depth=3).double()
    assert norms == pytest.approx(gradcourse.layer_gradient_norms(model, X.double(), y), rel=1e-12)
    activations = initial_gradient_norms(X, y, width=8, depth=3, seed=2)
    assert activations == pytest.approx(gradcourse.activation_gradient_norms(model, X.double(), y), rel=1e-12)


def test_float64_keeps_gradients_that_underflow_in_float32(mnist_small):
    X, y = mnist_small
    norms = initial_gradient_norms(X, y, width=16, depth=60, activation="sigmoid")
    assert 0 < norms[0] < 1e-45  # below float32's smallest subnormal


def test_the_skip_carries_the_signal(mnist_small):
    plain, residual = (initial_gradient_norms(*mnist_small, width=16, depth=30, activation="sigmoid", residual=r)
                       for r in (False, True))
    assert plain[0] / plain[-1] < 1e-15 and residual[0] / residual[-1] > 0.5


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(signal="biases"), "signal", "biases"),
    (dict(seed=1.5), "seed", 1.5),
    (dict(epochs=2), "epochs", 2),
])
def test_initial_gradient_norms_reject_bad_arguments(mnist_small, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        initial_gradient_norms(*mnist_small, **kwargs)
