"""gradcourse.core.train.loop: fit, History, make_optimizer, the clean stop on divergence, and what fit leaves alone
on the learner's model. (accuracy and mean_squared_error on their own are tested in tests/core/test_scoring.py.)"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from gradcourse import ClipNorm, ClipValue, EpochScores, ProgressBar, Scheduler
import gradcourse
from gradcourse import MLP, GradientMonitor, fit
from gradcourse.core.data import adding_problem
from gradcourse.core.scoring import accuracy, mean_squared_error
from gradcourse.core.train import History, make_optimizer
from helpers import FAST, batchnorm_mlp, buffer_copies, frozen_batchnorm_mlp, modes, same_buffers
from helpers import sequence_regressor as _sequence_model


def _model(**kwargs):
    gradcourse.set_seed(0)
    return MLP(**{"width": 32, "depth": 2, **kwargs})


def _fit(model, X, y, *callbacks, **kwargs):
    return fit(model, X, y, **{"epochs": 1, "batch_size": 64, "lr": 0.1,
                               "callbacks": [*callbacks, ProgressBar(show=False)], **kwargs})


# ---------------------------------------------------------------- History

def test_history_lengths_follow_epochs_and_batches():
    X, y = gradcourse.load_mnist(limit=300, source="bundled")
    model = _model()
    history = _fit(model, X, y, epochs=2, validation=(X[:50], y[:50]))
    assert isinstance(history, History)
    assert len(history.loss) == len(history.grad_norm) == history.steps == 2 * math.ceil(300 / 64)
    assert len(history.train_accuracy) == len(history.val_accuracy) == 2
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.val_accuracy)
    assert history.train_accuracy[-1] == accuracy(model, X, y)
    assert history.val_accuracy[-1] == accuracy(model, X[:50], y[:50])
    assert not history.diverged and history.stop_step is None
    assert f"steps={history.steps}" in repr(history)


def test_no_validation_gives_no_validation_accuracy(mnist_small):
    history = _fit(_model(), *mnist_small)
    assert history.val_accuracy == [] and len(history.train_accuracy) == 1


def test_fit_is_deterministic(mnist_small):
    first = _fit(_model(), *mnist_small, epochs=2)
    second = _fit(_model(), *mnist_small, epochs=2)
    assert first.loss == second.loss and first.grad_norm == second.grad_norm
    third = _fit(_model(), *mnist_small, epochs=2, seed=1)  # another batch order
    assert third.loss != first.loss


def test_first_loss_is_the_loss_of_the_first_shuffled_batch(mnist_small):
    X, y = mnist_small
    model = _model()
    reference = copy.deepcopy(model)
    Xb, yb = next(gradcourse.batches(X, y, 64, shuffle=True, seed=0))
    loss = F.cross_entropy(reference(Xb), yb)
    loss.backward()
    global_norm = torch.cat([p.grad.flatten() for p in reference.parameters()]).norm().item()
    history = _fit(model, X, y)
    assert history.loss[0] == pytest.approx(loss.item(), rel=1e-6)
    assert history.grad_norm[0] == pytest.approx(global_norm, rel=1e-5)


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("momentum", 0.05), ("rmsprop", 0.01), ("adam", 0.01)])
def test_every_optimizer_learns_an_easy_problem(optimizer, lr, blobs):
    X, y = blobs
    model = _model(in_features=20, out_features=3, width=16)
    before = accuracy(model, X, y)
    history = _fit(model, X, y, epochs=3, batch_size=32, optimizer=optimizer, lr=lr)
    assert history.train_accuracy[-1] > before
    assert history.train_accuracy[-1] > 0.9
    assert history.loss[-1] < history.loss[0]


# ---------------------------------------------------------------- clipping

def test_grad_norm_is_recorded_before_clipping(mnist_small):
    plain = _fit(_model(), *mnist_small)
    clipped = _fit(_model(), *mnist_small, ClipNorm(1e-3))
    assert clipped.grad_norm[0] == plain.grad_norm[0] > 1e-3
    assert clipped.loss[1] != plain.loss[1]  # the clipped step changed the weights differently


def _one_sgd_step_change(X, y, *callbacks):
    model = _model()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    fit(model, X, y, epochs=1, batch_size=len(X), lr=0.5, callbacks=[*callbacks, ProgressBar(show=False)])
    return torch.cat([p.detach().flatten() for p in model.parameters()]) - before


def test_max_norm_bounds_the_update(mnist_small):
    X, y = mnist_small
    unclipped = _one_sgd_step_change(X, y).norm().item()
    clipped = _one_sgd_step_change(X, y, ClipNorm(0.01)).norm().item()
    assert unclipped / 0.5 > 0.01  # the gradient was larger than the clip
    assert clipped == pytest.approx(0.5 * 0.01, rel=1e-3)  # lr * max_norm


def test_clip_value_bounds_each_entry(mnist_small):
    X, y = mnist_small
    assert _one_sgd_step_change(X, y).abs().max().item() > 10 * 0.5 * 1e-4
    clipped = _one_sgd_step_change(X, y, ClipValue(1e-4)).abs().max().item()
    assert clipped == pytest.approx(0.5 * 1e-4, rel=1e-3)  # lr * clip_value, up to float32 rounding


# ---------------------------------------------------------------- divergence

def test_exploding_network_stops_cleanly(mnist_small, capsys):
    X, y = mnist_small
    gradcourse.set_seed(0)
    model = MLP(depth=10, activation="relu", init="normal", init_scale=1.0)
    history = fit(model, X, y, epochs=2, batch_size=64, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert history.diverged
    assert history.stop_step == history.steps + 1  # stopped before applying the bad step
    assert isinstance(history.stop_layer, str) and history.stop_layer.startswith("hidden layer")
    assert all(math.isfinite(v) for v in history.loss + history.grad_norm)
    out = capsys.readouterr().out
    assert history.stop_message in out and f"step {history.stop_step}" in out
    assert history.stop_layer in history.stop_message
    assert f"diverged at step {history.stop_step}" in repr(history)

    # The named layer is the first whose output is non-finite on the batch where it stopped.
    all_batches = [b for epoch in range(2) for b in gradcourse.batches(X, y, 64, seed=epoch)]
    h, first_bad = all_batches[history.stop_step - 1][0], None
    with torch.no_grad():
        for i, block in enumerate(model.blocks, start=1):
            if not torch.isfinite(block.linear(h)).all():
                first_bad = i
                break
            h = block(h)
    assert history.stop_layer == f"hidden layer {first_bad}"


def test_non_finite_forward_names_the_layer(mnist_small, capsys):
    model = _model(depth=5)
    with torch.no_grad():
        model.hidden_linears()[2].weight.fill_(math.inf)
    history = _fit(model, *mnist_small)
    assert history.stop_step == 1 and history.loss == [] and history.grad_norm == []
    assert history.stop_layer == "hidden layer 3"
    assert "hidden layer 3" in capsys.readouterr().out


class _SqrtGate(nn.Module):
    """Adds sqrt(g) with g = 0: a finite loss whose gradient for g is infinite."""

    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + torch.sqrt(self.g)


def test_non_finite_gradient_names_the_layer(blobs, capsys):
    X, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 3), _SqrtGate())
    history = _fit(model, X, y)
    assert history.stop_step == 1 and history.loss == []
    assert history.stop_layer == "1"  # the gate's module path in the Sequential
    assert "gradient norm" in history.stop_message and "gradient norm" in capsys.readouterr().out


class _Interrupting(nn.Module):
    def __init__(self, after):
        super().__init__()
        self.linear = nn.Linear(20, 3)
        self.calls, self.after = 0, after

    def forward(self, x):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.linear(x)


def test_interrupt_returns_the_history_so_far(blobs, capsys):
    history = _fit(_Interrupting(after=2), *blobs)
    assert history.steps == 2 and not history.diverged
    assert "interrupted at step 3" in capsys.readouterr().out


@pytest.mark.parametrize("where, steps_applied", [("post", 3), ("pre", 2)])
def test_an_interrupt_in_an_optimizer_hook_leaves_a_history_of_the_steps_applied(where, steps_applied, capsys):
    """Jupyter's stop button can land in an optimizer hook (here a global one, as GradientMonitor's): after
    the update (post) the step moved the weights and counts; before it (pre) it did not."""
    model = nn.Linear(4, 3)
    X, y = torch.randn(64, 4), torch.arange(64) % 3
    moves = []

    def interrupt_at_step_3(opt, args, kwargs):
        moves.append(model.weight.detach().clone())
        if len(moves) == 3:
            raise KeyboardInterrupt

    register = register_optimizer_step_post_hook if where == "post" else register_optimizer_step_pre_hook
    handle = register(interrupt_at_step_3)
    try:
        history = fit(model, X, y, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    finally:
        handle.remove()
    assert "interrupted at step 3" in capsys.readouterr().out
    assert history.steps == len(history.grad_norm) == len(history.clipped) == steps_applied
    assert torch.equal(model.weight, moves[-1])   # nothing moved the weights after the interrupting hook


# ---------------------------------------------------------------- monitor

def test_monitor_passed_to_fit_records_and_ends_inactive(mnist_small):
    model = _model()
    monitor = GradientMonitor(model)
    history = _fit(model, *mnist_small, monitor)
    assert not monitor.active
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == history.steps
    assert monitor.steps("act_mean") == history.steps  # accuracy() runs under no_grad


def test_an_active_monitor_stays_active(mnist_small):
    model = _model()
    with GradientMonitor(model) as monitor:
        history = _fit(model, *mnist_small, monitor)
        assert monitor.active
    assert monitor.steps("grad_norm") == history.steps


# ---------------------------------------------------------------- make_optimizer

@pytest.mark.parametrize("name, kind, momentum", [
    ("sgd", torch.optim.SGD, 0.0),
    ("momentum", torch.optim.SGD, 0.9),
    ("rmsprop", torch.optim.RMSprop, 0.0),
])
def test_make_optimizer_types_and_momentum_defaults(name, kind, momentum):
    optimizer = make_optimizer(nn.Linear(2, 2).parameters(), name, lr=0.05)
    assert type(optimizer) is kind
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert optimizer.param_groups[0]["momentum"] == momentum


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_make_optimizer_uses_a_fused_or_multi_tensor_step_with_the_same_update(name):
    """The fast implementations (fused for SGD and Adam, foreach for RMSprop) give the update of the
    per-parameter loop, to float32 rounding."""
    results = []
    for fast in (True, False):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
        optimizer = make_optimizer(model.parameters(), name, lr=0.01)
        if not fast:
            options = {k: v for k, v in optimizer.defaults.items() if k != "fused"}
            optimizer = type(optimizer)(model.parameters(), **{**options, "foreach": False})
        else:
            assert optimizer.defaults.get("fused") or optimizer.defaults.get("foreach")
        for step in range(3):
            optimizer.zero_grad()
            model(torch.full((4, 6), 0.1 * (step + 1))).square().sum().backward()
            optimizer.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_make_optimizer_explicit_momentum_and_adam():
    assert make_optimizer(nn.Linear(2, 2).parameters(), "momentum", 0.1, momentum=0.5).param_groups[0]["momentum"] == 0.5
    assert make_optimizer(nn.Linear(2, 2).parameters(), "sgd", 0.1, momentum=0.3).param_groups[0]["momentum"] == 0.3
    assert type(make_optimizer(nn.Linear(2, 2).parameters(), "adam", 0.1)) is torch.optim.Adam


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, name, value", [
    (dict(epochs=0), "epochs", 0),
    (dict(epochs=1.5), "epochs", 1.5),
    (dict(batch_size=0), "batch_size", 0),
    (dict(lr=0), "lr", 0),
    (dict(lr=-0.1), "lr", -0.1),
    (dict(lr=math.nan), "lr", math.nan),
    (dict(optimizer="sgdd"), "optimizer", "sgdd"),
    (dict(callbacks="ClipNorm(1.0)"), "callbacks", "ClipNorm(1.0)"),
    (dict(seed=0.5), "seed", 0.5),
    (dict(validation="val"), "validation", "val"),
])
def test_fit_rejects_bad_arguments(kwargs, name, value, raises_bad, mnist_small):
    with raises_bad(name, value):
        _fit(_model(), *mnist_small, **kwargs)


@FAST
@given(st.one_of(st.floats(max_value=0.0), st.just(math.nan)))
def test_fit_rejects_bad_learning_rates(lr):
    X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="lr="):
        gradcourse.fit(gradcourse.MLP(in_features=4, depth=1), X, y, epochs=1, batch_size=4, lr=lr)


@pytest.mark.parametrize("make, name, value", [
    (lambda: ClipNorm(-1), "max_norm", -1),
    (lambda: ClipNorm(0), "max_norm", 0),
    (lambda: ClipValue(0.0), "clip_value", 0.0),
    (lambda: ProgressBar(show="yes"), "show", "yes"),
    (lambda: EpochScores(training_set=1), "training_set", 1),
    (lambda: Scheduler("warmup"), "make_scheduler", "warmup"),
])
def test_callbacks_reject_bad_arguments(make, name, value, raises_bad):
    with raises_bad(name, value):
        make()


def test_fit_rejects_a_monitor_of_another_model_and_what_is_not_a_callback(mnist_small):
    with pytest.raises(ValueError, match=r"callbacks\[0\]=GradientMonitor\(2 layers.*must watch the model"):
        _fit(_model(), *mnist_small, GradientMonitor(_model()))
    with pytest.raises(ValueError, match=r"callbacks\[0\]=.*is not allowed; it must be a Callback"):
        _fit(_model(), *mnist_small, print)


def test_fit_rejects_bad_models_and_data(mnist_small, raises_bad):
    X, y = mnist_small
    with raises_bad("model", "not a model"):
        _fit("not a model", X, y)
    with pytest.raises(ValueError, match="y has 10 labels but X has 256 rows"):
        _fit(_model(), X, y[:10])
    with pytest.raises(ValueError, match=r"validation\[1\] has 5 labels but validation\[0\] has 10 rows"):
        _fit(_model(), X, y, validation=(X[:10], y[:5]))
    with pytest.raises(ValueError, match=r"validation=<tensor shape=\(10, 784\)"):
        _fit(_model(), X, y, validation=X[:10])


def test_progress_bar_does_not_change_the_result(mnist_small, capsys):
    quiet = _fit(_model(), *mnist_small)
    shown = fit(_model(), *mnist_small, epochs=1, batch_size=64, lr=0.1)
    assert shown.loss == quiet.loss
    capsys.readouterr()



def test_batchnorm_model_skips_a_last_batch_of_one():
    model = _model(in_features=4, out_features=2, width=8, norm="batch")
    X, y = torch.randn(65, 4), torch.randint(0, 2, (65,))
    history = fit(model, X, y, epochs=2, batch_size=32, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert history.steps == 2 * 2  # 65 = 32 + 32 + 1: the batch of one is left out
    assert not history.diverged


def test_batchnorm_model_rejects_batch_size_one():
    model = _model(in_features=4, out_features=2, width=8, norm="batch")
    with pytest.raises(ValueError, match="batch_size=1"):
        fit(model, torch.randn(8, 4), torch.randint(0, 2, (8,)), epochs=1, batch_size=1, lr=0.1, callbacks=[ProgressBar(show=False)])


# ---------------------------------------------------------------- what fit leaves alone on the learner's model

def test_fit_trains_with_a_frozen_batchnorm_still_frozen(mnist_small):
    model = frozen_batchnorm_mlp()
    before = modes(model)
    frozen, trained = buffer_copies(model.blocks[0].norm), buffer_copies(model.blocks[1].norm)
    fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1)
    assert same_buffers(frozen, model.blocks[0].norm)            # its running statistics did not move
    assert not same_buffers(trained, model.blocks[1].norm)       # the other BatchNorm trained as usual
    assert modes(model) == before


def test_a_frozen_batchnorm_takes_batches_of_one_example():
    gradcourse.set_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model[1].eval()
    history = fit(model, torch.randn(9, 4), torch.arange(9) % 2, epochs=1, batch_size=4, lr=0.1)
    assert history.steps == 3                                    # 4 + 4 + 1: a last batch of one is kept


def test_a_model_given_in_eval_mode_trains_in_train_mode_and_is_given_back_in_eval_mode(mnist_small):
    model = batchnorm_mlp().eval()
    before = buffer_copies(model)
    fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1)
    assert not same_buffers(before, model)                       # BatchNorm normalized over the batches and tracked them
    assert not any(modes(model).values())


# ---------------------------------------------------------------- sequence models and the mse loss

def test_fit_mse_trains_a_sequence_model_and_records_per_epoch_losses():
    X, y = adding_problem(256, 8, seed=0)
    Xv, yv = adding_problem(64, 8, seed=1)
    model = _sequence_model("gru")
    history = fit(model, X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01, loss_fn="mse",
                  validation=(Xv, yv), callbacks=[ProgressBar(show=False)])
    assert history.steps == 3 * 8 and not history.diverged
    assert len(history.train_loss) == len(history.val_loss) == 3
    assert history.train_accuracy == [] and history.val_accuracy == []
    assert history.val_loss[-1] == pytest.approx(mean_squared_error(model, Xv, yv))
    assert history.train_loss[-1] == pytest.approx(F.mse_loss(model(X), y).item(), rel=1e-5)
    assert history.train_loss[-1] < history.train_loss[0]
    assert "val loss=" in repr(history)


def test_fit_mse_first_loss_is_the_first_batch_mse():
    X, y = adding_problem(64, 6)
    model = _sequence_model("rnn")
    Xb, yb = next(gradcourse.batches(X, y, 16, shuffle=True, seed=0))
    expected = F.mse_loss(model(Xb), yb).item()
    history = fit(model, X, y, epochs=1, batch_size=16, lr=0.01, loss_fn="mse", callbacks=[ProgressBar(show=False)])
    assert history.loss[0] == pytest.approx(expected, rel=1e-6)


def test_fit_mse_rejects_integer_targets_and_a_mismatched_output(raises_bad):
    X, y = adding_problem(32, 6)
    with pytest.raises(ValueError, match=r"y=<tensor shape=\(32,\) dtype=torch.int64> is not allowed"):
        fit(_sequence_model(), X, y.long(), epochs=1, batch_size=8, lr=0.1, loss_fn="mse", callbacks=[ProgressBar(show=False)])
    with pytest.raises(ValueError, match="validation\\[1\\]"):
        fit(_sequence_model(), X, y, epochs=1, batch_size=8, lr=0.1, loss_fn="mse", validation=(X, y.long()), callbacks=[ProgressBar(show=False)])
    with raises_bad("loss_fn", "l2"):
        fit(_sequence_model(), X, y, epochs=1, batch_size=8, lr=0.1, loss_fn="l2", callbacks=[ProgressBar(show=False)])
    wide = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))  # output (n, 1), targets (n,)
    with pytest.raises(ValueError, match=r"the model returned shape \(8, 1\)"):
        fit(wide, X, y, epochs=1, batch_size=8, lr=0.1, loss_fn="mse", callbacks=[ProgressBar(show=False)])


def test_cross_entropy_fit_still_rejects_sequences(raises_bad):
    X, y = adding_problem(32, 6)
    with pytest.raises(ValueError, match="2-D floating-point"):
        fit(_sequence_model(), X, y.long(), epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])


def test_a_diverging_sequence_model_stops_cleanly_and_names_its_layer(capsys):
    X, y = adding_problem(64, 10)
    model = _sequence_model("lstm")
    with torch.no_grad():
        model.rnn.weight_ih_l0.fill_(math.inf)
    history = fit(model, X, y, epochs=1, batch_size=16, lr=0.1, loss_fn="mse", callbacks=[ProgressBar(show=False)])
    assert history.diverged and history.stop_step == 1
    assert history.stop_layer == "LSTM layer"  # found although nn.LSTM returns a tuple
    assert "first non-finite values at LSTM layer" in capsys.readouterr().out


def test_an_exploding_lr_on_a_sequence_model_stops_cleanly(capsys):
    X, y = adding_problem(256, 10)
    history = fit(_sequence_model("rnn"), X, y, epochs=5, batch_size=16, optimizer="momentum", lr=50.0, loss_fn="mse", callbacks=[ProgressBar(show=False)])
    assert history.diverged
    assert all(math.isfinite(v) for v in history.loss + history.grad_norm)
    assert "Training stopped at step" in capsys.readouterr().out


class _InterruptInEval(nn.Module):
    """A classifier that is interrupted (as by Jupyter's stop button) whenever it runs in eval mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        if not self.training:
            raise KeyboardInterrupt
        return self.linear(x)


def test_an_interrupt_during_evaluation_leaves_the_model_in_its_mode(capsys):
    X, y = torch.randn(16, 4), torch.arange(16) % 3
    model = _InterruptInEval()
    with pytest.raises(KeyboardInterrupt):
        accuracy(model, X, y)
    assert model.training
    history = fit(model, X, y, epochs=2, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])   # interrupted scoring epoch 1
    assert model.training and history.steps == 2 and "interrupted" in capsys.readouterr().out
    given_eval = nn.Linear(4, 3).eval()
    fit(given_eval, X, y, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert not given_eval.training


@pytest.mark.parametrize("callers_setting", [True, False])
def test_fit_gives_back_the_callers_flush_denormal_setting(mnist_small, callers_setting):
    def flushing():
        return (torch.full((1,), 1e-39) * 1.5).item() == 0.0

    if not torch.set_flush_denormal(callers_setting):
        pytest.skip("this CPU cannot flush subnormal floats")
    try:
        _fit(_model(), *mnist_small)
        assert flushing() == callers_setting
    finally:
        torch.set_flush_denormal(False)


def test_labels_the_model_cannot_score_are_refused_before_any_step():
    gradcourse.set_seed(0)
    model = MLP(in_features=4, width=8, depth=2, out_features=3)
    X, y = torch.randn(32, 4), torch.arange(32) % 3
    before = [p.detach().clone() for p in model.parameters()]
    bad = y.clone()
    bad[-1] = 10                               # in the last batch, as in a dataset with a stray label
    with pytest.raises(ValueError, match=r"y holds labels from 0 to 10, but the model has 3 outputs") as caught:
        fit(model, X, bad, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert caught.value.history.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match=r"validation\[1\] holds labels from -1"):
        fit(model, X, y, epochs=1, batch_size=8, lr=0.1, validation=(X, y - 1), callbacks=[ProgressBar(show=False)])


def test_an_error_after_training_began_leaves_the_history_of_the_steps_done():
    gradcourse.set_seed(0)
    model = MLP(in_features=4, width=8, depth=2, out_features=3)
    X, y = torch.randn(32, 4), torch.arange(32) % 3
    with pytest.raises(ValueError, match=r"the model cannot take validation\[0\]") as caught:
        fit(model, X, y, epochs=2, batch_size=8, lr=0.1, validation=(torch.randn(8, 5), y[:8]), callbacks=[ProgressBar(show=False)])
    assert caught.value.history.steps == 4 and len(caught.value.history.loss) == 4   # epoch 1, scored then
    assert any("this exception's .history" in note for note in caught.value.__notes__)
    assert model.training


# ---------------------------------------------------------------- the training step itself

def test_a_plain_mlp_trains_exactly_as_the_written_out_loop(mnist_small):
    """fit on a model in train mode is zero_grad, forward, cross-entropy, backward, the global gradient norm
    (the number clip_grad_norm_ returns) and the optimizer's step, batch after batch: the same losses,
    norms and weights to the last bit."""
    X, y = mnist_small
    model = _model()
    reference = copy.deepcopy(model)
    history = _fit(model, X, y, epochs=2, optimizer="momentum", lr=0.05)
    opt = make_optimizer(reference.parameters(), "momentum", lr=0.05)
    losses, norms = [], []
    for epoch in range(2):
        for Xb, yb in gradcourse.batches(X, y, 64, shuffle=True, seed=epoch):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(reference(Xb), yb)
            loss.backward()
            norms.append(torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm=math.inf).item())
            losses.append(loss.item())
            opt.step()
    assert history.loss == losses and history.grad_norm == norms
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))


@pytest.mark.parametrize("max_norm", [None, 1e-3])
def test_the_gradient_norm_is_read_without_rescaling_the_gradients(mnist_small, max_norm):
    """Without max_norm no .grad tensor is written between backward and the optimizer's step (its version
    counter stays), so a monitor can tell a gradient changed in place from one left alone."""
    model = _model()
    after_backward, at_step = {}, {}
    handles = [p.register_post_accumulate_grad_hook(lambda p: after_backward.update({p: p.grad._version}))
               for p in model.parameters()]
    handles.append(register_optimizer_step_pre_hook(
        lambda *_: at_step.update({p: p.grad._version for p in model.parameters()})))
    try:
        _fit(model, *mnist_small, *([] if max_norm is None else [ClipNorm(max_norm)]), epochs=1)
    finally:
        for handle in handles:
            handle.remove()
    unchanged = all(at_step[p] == after_backward[p] for p in model.parameters())
    assert unchanged == (max_norm is None)


class _SparseEmbedding(nn.Module):
    """Embeds 3 token ids (stored as floats, as fit's X must be) with an nn.Embedding(sparse=True), or with
    F.embedding(..., sparse=True) where fit cannot see the sparse layer before the first backward pass."""

    def __init__(self, functional=False):
        super().__init__()
        self.functional = functional
        self.embedding = nn.Embedding(10, 4, sparse=not functional)
        self.output = nn.Linear(12, 3)

    def forward(self, x):
        ids = x.long()
        rows = F.embedding(ids, self.embedding.weight, sparse=True) if self.functional else self.embedding(ids)
        return self.output(rows.flatten(1))


def _tokens():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 10, (40, 3), generator=generator).float(), torch.arange(40) % 3


@pytest.mark.parametrize("functional", [False, True], ids=["nn.Embedding", "F.embedding"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_sparse_gradients_train_with_sgd(optimizer, functional):
    torch.manual_seed(0)
    model = _SparseEmbedding(functional)
    before = model.embedding.weight.detach().clone()
    history = fit(model, *_tokens(), epochs=2, batch_size=8, optimizer=optimizer, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert history.steps == 10 and not history.diverged
    assert not torch.equal(before, model.embedding.weight)


@pytest.mark.parametrize("functional", [False, True], ids=["nn.Embedding", "F.embedding"])
@pytest.mark.parametrize("kwargs, name, value", [
    (dict(optimizer="adam"), "optimizer", "adam"),
    (dict(optimizer="rmsprop"), "optimizer", "rmsprop"),
    (dict(callbacks=[ClipValue(0.1)]), "clip_value", 0.1),
])
def test_sparse_gradients_are_refused_where_torch_cannot_take_them(kwargs, name, value, functional, raises_bad):
    torch.manual_seed(0)
    model = _SparseEmbedding(functional)
    before = [p.detach().clone() for p in model.parameters()]
    with raises_bad(name, value) as caught:
        fit(model, *_tokens(), epochs=1, batch_size=8, lr=0.1, **kwargs)
    assert "sparse" in str(caught.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


class _ComplexWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(0.3 * torch.randn(4, 3, dtype=torch.cfloat))

    def forward(self, x):
        return (x.to(torch.cfloat) @ self.weight).abs()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam"])
def test_complex_parameters_train_with_every_optimizer(optimizer):
    torch.manual_seed(0)
    model = _ComplexWeights()
    before = model.weight.detach().clone()
    history = fit(model, torch.randn(32, 4), torch.arange(32) % 3, epochs=1, batch_size=8, optimizer=optimizer, lr=0.01, callbacks=[ProgressBar(show=False)])
    assert history.steps == 4 and not torch.equal(before, model.weight)


def test_an_update_that_fails_is_not_counted_as_a_step(monkeypatch):
    def failing_step(self, closure=None):
        raise RuntimeError("the update failed")

    monkeypatch.setattr(torch.optim.SGD, "step", failing_step)
    model = nn.Linear(4, 3)
    before = model.weight.detach().clone()
    with pytest.raises(RuntimeError, match="the update failed") as caught:
        fit(model, torch.randn(16, 4), torch.arange(16) % 3, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert caught.value.history.steps == 0 and caught.value.history.grad_norm == []
    assert torch.equal(before, model.weight)


# ---------------------------------------------------------------- models and seeds fit refuses clearly

class _TupleOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        logits = self.linear(x)
        return logits, logits.detach()


@pytest.mark.parametrize("model, message", [
    (_TupleOutput(), r"model is not allowed: it returned <tuple>; it must return one tensor of outputs: wrap it"),
    (nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)),
     r"model is not allowed: it returned outputs of shape \(8,\); cross-entropy .* shape \(batch, classes\)"),
], ids=["tuple", "1-D logits"])
def test_fit_and_accuracy_refuse_outputs_they_cannot_score(model, message):
    X, y = torch.randn(8, 4), torch.arange(8) % 2
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        fit(model, X, y, epochs=1, batch_size=8, lr=0.1, callbacks=[ProgressBar(show=False)])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match=message):
        accuracy(model, X, y)


def test_the_largest_seed_trains_every_epoch(mnist_small):
    X, y = mnist_small
    largest = 2**64 - 1
    history = _fit(_model(), X, y, epochs=2, seed=largest)
    # epoch 1 draws its batch order from the largest seed, epoch 2 from seed 0 (counted round)
    model = _model()
    first_epoch = _fit(model, X, y, seed=largest)
    second_epoch = _fit(model, X, y, seed=0)
    assert history.loss == first_epoch.loss + second_epoch.loss


@pytest.mark.parametrize("seed", [2**64, -2**63 - 1])
def test_fit_refuses_a_seed_torch_cannot_take(seed, mnist_small, raises_bad):
    with raises_bad("seed", seed):
        _fit(_model(), *mnist_small, seed=seed)


def test_fit_and_accuracy_refuse_a_meta_model():
    with torch.device("meta"):
        model = nn.Linear(4, 3)
    X, y = torch.randn(8, 4), torch.arange(8) % 3
    with pytest.raises(ValueError, match=r"'meta' device, which hold no values.*to_empty"):
        fit(model, X, y, epochs=1, batch_size=4, lr=0.1, callbacks=[ProgressBar(show=False)])
    with pytest.raises(ValueError, match=r"'meta' device"):
        accuracy(model, X, y)


def test_fit_takes_a_callable_loss_and_scores_its_mean_per_epoch():
    X, y = adding_problem(64, 8, seed=0)
    model, huber = _sequence_model("gru"), torch.nn.HuberLoss()
    history = fit(model, X, y, epochs=2, batch_size=16, lr=0.01, loss_fn=huber, validation=(X[:16], y[:16]),
                  callbacks=[ProgressBar(show=False)])
    assert history.steps == 8 and len(history.train_loss) == len(history.val_loss) == 2
    assert history.train_accuracy == [] and history.val_accuracy == []
    with torch.no_grad():
        assert history.val_loss[-1] == pytest.approx(huber(model(X[:16]), y[:16]).item(), rel=1e-6)
