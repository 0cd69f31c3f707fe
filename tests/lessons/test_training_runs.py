"""gradcourse.lessons.training_runs: seeded, monitored training runs of course MLPs."""

import math

import pytest
import torch

from gradcourse import ProgressBar
import gradcourse
from gradcourse import MLP, GradientMonitor
from gradcourse.lessons import training_runs
from gradcourse.lessons.training_runs import TrainedRun, train_mlp, train_mlps, unit_activity
from helpers import measure_keeps_modes_and_buffers


def test_train_mlp_builds_trains_and_monitors(mnist_small):
    X, y = mnist_small
    run = train_mlp(X, y, width=8, depth=3, epochs=2, batch_size=64, lr=0.1, validation=(X[:50], y[:50]))
    assert isinstance(run, TrainedRun) and isinstance(run.monitor, GradientMonitor)
    assert run.model.blocks[0].linear.in_features == 784 and len(run.model.blocks) == 3
    assert run.history.steps == 8 and run.monitor.steps("update_ratio") == 8
    assert not run.monitor.active
    assert run.train_error == pytest.approx(1 - run.history.train_accuracy[-1])
    assert run.test_error == pytest.approx(1 - run.history.val_accuracy[-1])
    assert "TrainedRun(History(steps=8" in repr(run)


def test_train_mlp_records_histograms_when_asked(mnist_small):
    run = train_mlp(*mnist_small, width=8, depth=2, epochs=1, batch_size=64, lr=0.1, histogram_bins=6)
    histograms = run.monitor.histograms()
    assert list(histograms) == run.monitor.activation_names
    assert all(shares.shape == (run.history.steps, 6) for shares, _ in histograms.values())


def test_train_mlp_equals_a_seeded_fit(mnist_small):
    X, y = mnist_small
    run = train_mlp(X, y, width=8, depth=2, epochs=1, batch_size=64, lr=0.1, seed=3)
    gradcourse.set_seed(3)
    model = MLP(width=8, depth=2)
    history = gradcourse.fit(model, X, y, epochs=1, batch_size=64, lr=0.1, seed=3, callbacks=[ProgressBar(show=False)])
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


def test_unit_activity_counts_units_negative_on_every_input(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=16, depth=2, activation="relu", init="kaiming")
    with torch.no_grad():
        model.blocks[0].linear.bias[:4] = -1e4  # 4 of 16 units negative everywhere
    activity = training_runs.unit_activity(model, X)
    assert activity["inactive"][0] == 0.25 and activity["no_gradient"][0] == 0.25
    assert activity["no_gradient_units"][0][:4].all() and not activity["no_gradient_units"][0][4:].any()
    assert model.training  # the mode is restored


def test_unit_activity_sees_leaky_units_keep_a_gradient(mnist_small):
    X, _ = mnist_small
    gradcourse.set_seed(0)
    model = gradcourse.MLP(width=16, depth=1, activation="leaky_relu", init="kaiming")
    with torch.no_grad():
        model.blocks[0].linear.bias[:] = -1e4
    activity = training_runs.unit_activity(model, X)
    assert activity["inactive"] == [1.0] and activity["no_gradient"] == [0.0]


def test_unit_activity_gives_every_module_its_own_mode_back(mnist_small):
    measure_keeps_modes_and_buffers(lambda model, X, y: unit_activity(model, X), *mnist_small)


def test_dying_units_experiment_freezes_a_dead_relu_network(mnist_small):
    X, y = mnist_small
    relu = training_runs.dying_units_experiment(X, y, "relu", bias_shift=50.0, recovery_epochs=1, width=16, depth=2)
    assert relu["activity"]["after_shift"]["no_gradient"] == [1.0, 1.0]
    assert relu["hidden_weights_changed"] == [False, False]
    assert relu["monitor"].steps() == 4  # 256 digits / 64 per batch, monitored
    elu = training_runs.dying_units_experiment(X, y, "elu", bias_shift=2.0, recovery_epochs=1, width=16, depth=2)
    assert elu["activity"]["after_shift"]["no_gradient"] == [0.0, 0.0]
    assert all(elu["hidden_weights_changed"])


def test_dying_units_experiment_rejects_bad_arguments(mnist_small, raises_bad):
    X, y = mnist_small
    with raises_bad("recovery_epochs", 0):
        training_runs.dying_units_experiment(X, y, recovery_epochs=0)
    with raises_bad("bias_shift", float("nan")):
        training_runs.dying_units_experiment(X, y, bias_shift=float("nan"))


def test_train_and_diagnose_reports_then_trains(mnist_small):
    X, y = mnist_small
    result = gradcourse.lessons.training_runs.train_and_diagnose(X, y, validation=(X, y), lr=0.05, epochs=1, probe=64, depth=2, width=16,
                                                       activation="relu", init="kaiming")
    assert result["report"].healthy and result["history"].steps == 4
    assert result["accuracy"] == result["history"].val_accuracy[-1]
    blown = gradcourse.lessons.training_runs.train_and_diagnose(X, y, validation=(X, y), lr=50.0, epochs=1, depth=8, width=16,
                                                      activation="relu", init="kaiming", init_scale=3.0)
    assert blown["history"].diverged and blown["accuracy"] is None


def test_train_and_diagnose_small_output_layer_starts_at_ln_c(mnist_small, raises_bad):
    X, y = mnist_small
    for seed in range(2):
        plain, small = (gradcourse.lessons.training_runs.train_and_diagnose(X, y, validation=(X, y), lr=0.05, epochs=1, seed=seed, depth=8,
                                                                  width=64, activation="relu", init="kaiming",
                                                                  output_scale=scale)["report"] for scale in (1.0, 0.1))
        assert abs(small.loss - math.log(10)) < 0.1 < plain.loss - math.log(10)
        # the hidden layers' gradients pass through the output weights: they shrink with them
        assert all(s < 0.2 * p for s, p in zip(small.grad_norms, plain.grad_norms))
    with raises_bad("output_scale", 0):
        gradcourse.lessons.training_runs.train_and_diagnose(X, y, validation=(X, y), lr=0.05, output_scale=0, depth=2, width=8)


@pytest.mark.parametrize("bad, message", [
    (dict(depht=3), r"configs\['c'\].*depht=3 is not allowed; train_mlp takes"),
    (dict(lr=-1.0), r"configs\['c'\].*lr=-1\.0 is not allowed"),
    (dict(activation="sigmod"), r"configs\['c'\].*activation='sigmod' is not allowed"),
    (dict(out_features=5), r"configs\['c'\].*y holds labels from 0 to 9, but the model has 5 outputs"),
    (dict(lr=None), r"configs\['c'\].*lr=None is not allowed"),
], ids=["unknown option", "fit value", "MLP value", "labels", "lr None"])
def test_train_mlps_checks_every_config_before_training_any(mnist_small, monkeypatch, bad, message):
    from helpers import record_calls

    fits = record_calls(monkeypatch, training_runs, "fit", "model")
    generator = torch.get_rng_state()
    configs = {"a": dict(depth=2), "b": dict(depth=3), "c": dict(depth=2, **bad)}
    with pytest.raises(ValueError, match=message):
        train_mlps(*mnist_small, configs, width=8, epochs=1, batch_size=128, lr=0.1, progress=False)
    assert fits == []                                    # no run was trained, so none was thrown away
    assert torch.equal(torch.get_rng_state(), generator)


def test_train_mlps_refuses_a_config_without_a_required_fit_option(mnist_small):
    expected = r"configs\['b'\].*lr is missing; fit needs a value for each of epochs, batch_size, lr"
    with pytest.raises(ValueError, match=expected):
        train_mlps(*mnist_small, {"a": dict(lr=0.1), "b": {}}, width=8, depth=2, epochs=1, batch_size=128,
                   progress=False)


def test_an_interrupt_stops_every_run_and_returns_the_finished_ones(mnist_small, capsys):
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    steps = []

    def stop_button_in_the_second_run(*_):
        steps.append(1)
        if len(steps) == 3:                              # 2 steps per run: the first step of run "b"
            raise KeyboardInterrupt

    handle = register_optimizer_step_pre_hook(stop_button_in_the_second_run)
    try:
        runs = train_mlps(*mnist_small, {"a": {}, "b": {}, "c": {}}, width=8, depth=2, epochs=1, batch_size=128,
                          lr=0.1, progress=False)
    finally:
        handle.remove()
    assert list(runs) == ["a"] and runs["a"].history.steps == 2 and not runs["a"].history.interrupted
    assert len(steps) == 3                               # run "c" never started
    out = capsys.readouterr().out
    assert "Interrupted while training 'b'" in out and "returning the 1 finished run(s): 'a'" in out
