"""Recurrent networks: the adding problem, SequenceRegressor, fit with loss="mse", and
gradients through time (gradcourse.sequences)."""

import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse
from gradcourse import fit
from gradcourse.data import ADDING_BASELINE_MSE, adding_problem
from gradcourse.models import SequenceRegressor
from gradcourse.sequences import (first_step_below, gate_saturation, latching_trials, lstm_gates,
                                  timestep_gradient_norms, unrolled_states)
from gradcourse.layers import named_layers
from gradcourse.train import mean_squared_error


def _model(cell="lstm", **kwargs):
    gradcourse.set_seed(0)
    return SequenceRegressor(cell, **{"hidden": 8, **kwargs})


# ---------------------------------------------------------------- the adding problem

def test_adding_problem_shapes_markers_and_targets():
    X, y = adding_problem(500, 20, seed=3)
    assert X.shape == (500, 20, 2) and y.shape == (500,)
    assert X.dtype == y.dtype == torch.float32
    values, markers = X[..., 0], X[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :10].sum(dim=1) == 1).all() and (markers[:, 10:].sum(dim=1) == 1).all()  # one per half
    assert torch.allclose(y, (values * markers).sum(dim=1))


def test_adding_problem_is_seeded():
    first, second, other = adding_problem(50, 10, seed=1), adding_problem(50, 10, seed=1), adding_problem(50, 10, seed=2)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_adding_problem_odd_length_puts_the_second_marker_in_the_longer_half():
    X, _ = adding_problem(2000, 5, seed=0)
    first, second = X[:, :2, 1].sum(dim=1), X[:, 2:, 1].sum(dim=1)
    assert (first == 1).all() and (second == 1).all()


def test_predicting_one_scores_the_baseline():
    _, y = adding_problem(200_000, 4, seed=0)
    assert ADDING_BASELINE_MSE == 1 / 6
    assert ((y - 1) ** 2).mean().item() == pytest.approx(1 / 6, rel=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.005)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(n=0, length=10), "n", 0),
    (dict(n=10, length=1), "length", 1),
    (dict(n=10, length=10.0), "length", 10.0),
    (dict(n=10, length=10, seed=-1), "seed", -1),
])
def test_adding_problem_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        adding_problem(**kwargs)


# ---------------------------------------------------------------- SequenceRegressor

@pytest.mark.parametrize("cell, module", [("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)])
def test_sequence_regressor_predicts_one_number_per_sequence(cell, module):
    model = _model(cell)
    assert isinstance(model.rnn, module) and model.rnn.batch_first
    X, _ = adding_problem(7, 12)
    out = model(X)
    assert out.shape == (7,)
    full, _ = model.rnn(X)
    assert torch.allclose(out, model.output(full[:, -1]).squeeze(-1))


def test_forget_bias_sets_the_forget_gate_slice_only():
    model = _model("lstm", forget_bias=1.0)
    H = 8
    assert torch.all(model.rnn.bias_ih_l0[H:2 * H] == 1.0) and torch.all(model.rnn.bias_hh_l0[H:2 * H] == 0.0)
    default = _model("lstm")
    for name in ("bias_ih_l0", "bias_hh_l0"):
        for gate in (slice(0, H), slice(2 * H, 4 * H)):  # input, candidate and output gates untouched
            assert torch.equal(getattr(model.rnn, name)[gate], getattr(default.rnn, name)[gate])


def test_forget_bias_makes_the_forget_gate_start_near_sigmoid_of_it():
    X, _ = adding_problem(64, 10)
    for bias in (0.0, 1.0, 3.0):
        forget = lstm_gates(_model("lstm", hidden=32, forget_bias=bias), X)["forget"].mean().item()
        assert forget == pytest.approx(1 / (1 + math.exp(-bias)), abs=0.03)


def test_recurrent_scale_multiplies_the_recurrent_weights():
    scaled, plain = _model("gru", recurrent_scale=3.0), _model("gru")
    assert torch.allclose(scaled.rnn.weight_hh_l0, 3.0 * plain.rnn.weight_hh_l0)
    assert torch.equal(scaled.rnn.weight_ih_l0, plain.rnn.weight_ih_l0)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(cell="transformer"), "cell", "transformer"),
    (dict(hidden=0), "hidden", 0),
    (dict(input_size=0), "input_size", 0),
    (dict(cell="lstm", forget_bias=math.inf), "forget_bias", math.inf),
    (dict(cell="rnn", forget_bias=1.0), "forget_bias", 1.0),
    (dict(recurrent_scale=0.0), "recurrent_scale", 0.0),
])
def test_sequence_regressor_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        SequenceRegressor(**kwargs)


def test_sequence_regressor_names_its_layers():
    model = _model("gru")
    assert [name for name, _ in named_layers(model)] == ["GRU layer", "output layer"]
    assert "cell='gru'" in repr(model)


# ---------------------------------------------------------------- fit with loss="mse"

def test_fit_mse_trains_a_sequence_model_and_records_per_epoch_losses():
    X, y = adding_problem(256, 8, seed=0)
    Xv, yv = adding_problem(64, 8, seed=1)
    model = _model("gru")
    history = fit(model, X, y, epochs=3, batch_size=32, optimizer="adam", lr=0.01, loss="mse",
                  validation=(Xv, yv), progress=False)
    assert history.steps == 3 * 8 and not history.diverged
    assert len(history.train_loss) == len(history.val_loss) == 3
    assert history.train_accuracy == [] and history.val_accuracy == []
    assert history.val_loss[-1] == pytest.approx(mean_squared_error(model, Xv, yv))
    assert history.train_loss[-1] == pytest.approx(F.mse_loss(model(X), y).item(), rel=1e-5)
    assert history.train_loss[-1] < history.train_loss[0]
    assert "val loss=" in repr(history)


def test_fit_mse_first_loss_is_the_first_batch_mse():
    X, y = adding_problem(64, 6)
    model = _model("rnn")
    Xb, yb = next(gradcourse.batches(X, y, 16, shuffle=True, seed=0))
    expected = F.mse_loss(model(Xb), yb).item()
    history = fit(model, X, y, epochs=1, batch_size=16, lr=0.01, loss="mse", progress=False)
    assert history.loss[0] == pytest.approx(expected, rel=1e-6)


def test_fit_mse_rejects_integer_targets_and_a_mismatched_output(raises_bad):
    X, y = adding_problem(32, 6)
    with pytest.raises(ValueError, match=r"y=<tensor shape=\(32,\) dtype=torch.int64> is not allowed"):
        fit(_model(), X, y.long(), epochs=1, batch_size=8, lr=0.1, loss="mse", progress=False)
    with pytest.raises(ValueError, match="validation\\[1\\]"):
        fit(_model(), X, y, epochs=1, batch_size=8, lr=0.1, loss="mse", progress=False, validation=(X, y.long()))
    with raises_bad("loss", "l2"):
        fit(_model(), X, y, epochs=1, batch_size=8, lr=0.1, loss="l2", progress=False)
    wide = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))  # output (n, 1), targets (n,)
    with pytest.raises(ValueError, match=r"the model returned shape \(8, 1\)"):
        fit(wide, X, y, epochs=1, batch_size=8, lr=0.1, loss="mse", progress=False)


def test_cross_entropy_fit_still_rejects_sequences(raises_bad):
    X, y = adding_problem(32, 6)
    with pytest.raises(ValueError, match="2-D floating-point"):
        fit(_model(), X, y.long(), epochs=1, batch_size=8, lr=0.1, progress=False)


def test_mean_squared_error_matches_the_formula_and_keeps_the_mode():
    X, y = adding_problem(100, 6)
    model = _model("lstm")
    model.train()
    assert mean_squared_error(model, X, y, batch_size=7) == pytest.approx(((model(X) - y) ** 2).mean().item(), rel=1e-5)
    assert model.training
    with pytest.raises(ValueError, match="batch_size=0"):
        mean_squared_error(model, X, y, batch_size=0)


def test_a_diverging_sequence_model_stops_cleanly_and_names_its_layer(capsys):
    X, y = adding_problem(64, 10)
    model = _model("lstm")
    with torch.no_grad():
        model.rnn.weight_ih_l0.fill_(math.inf)
    history = fit(model, X, y, epochs=1, batch_size=16, lr=0.1, loss="mse", progress=False)
    assert history.diverged and history.stop_step == 1
    assert history.stop_layer == "LSTM layer"  # found although nn.LSTM returns a tuple
    assert "first non-finite values at LSTM layer" in capsys.readouterr().out


def test_an_exploding_lr_on_a_sequence_model_stops_cleanly(capsys):
    X, y = adding_problem(256, 10)
    history = fit(_model("rnn"), X, y, epochs=5, batch_size=16, optimizer="momentum", lr=50.0, loss="mse",
                  progress=False)
    assert history.diverged
    assert all(math.isfinite(v) for v in history.loss + history.grad_norm)
    assert "Training stopped at step" in capsys.readouterr().out


# ---------------------------------------------------------------- gradients through time

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_unrolled_states_reproduce_the_library_forward(cell):
    model = _model(cell)
    X, _ = adding_problem(5, 9)
    hidden, cell_states, prediction = unrolled_states(model, X)
    full, _ = model.rnn(X)
    assert len(hidden) == 9
    assert torch.allclose(torch.stack(hidden, dim=1), full, atol=1e-6)
    assert torch.allclose(prediction, model(X), atol=1e-6)
    assert (cell_states is not None) == (cell == "lstm")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_hidden_gradient_norms_match_autograd_through_the_full_forward(cell):
    """dL/dh_t from the unrolled loop equals the gradient of the loss with respect to h_t
    obtained by perturbing the state entering step t + 1 (checked with a second unroll)."""
    model = _model(cell)
    X, y = adding_problem(16, 7)
    norms = timestep_gradient_norms(model, X, y)
    assert len(norms) == 7 and all(v > 0 for v in norms)
    # The last step: dL/dh_T = 2 (y_hat - y) / n * w, exactly.
    w = model.output.weight.detach().squeeze(0).double()
    residual = (model(X) - y).detach().double()
    expected_last = torch.linalg.vector_norm(2 * residual[:, None] / len(y) * w[None, :]).item()
    assert norms[-1] == pytest.approx(expected_last, rel=1e-5)


def test_input_gradients_match_a_plain_backward_pass():
    model = _model("lstm")
    X, y = adding_problem(16, 7)
    X_leaf = X.clone().requires_grad_(True)
    F.mse_loss(model(X_leaf), y).backward()
    expected = [X_leaf.grad[:, t].double().norm().item() for t in range(7)]
    assert timestep_gradient_norms(model, X, y, wrt="input") == pytest.approx(expected, rel=1e-5)


def test_rnn_gradient_per_step_obeys_the_jacobian_bound():
    """||dL/dh_t|| <= ||W_hh||_2^(T - t) ||dL/dh_T|| since tanh' <= 1."""
    model = _model("rnn", hidden=16)
    X, y = adding_problem(32, 20)
    norms = timestep_gradient_norms(model, X, y)
    sigma = torch.linalg.matrix_norm(model.rnn.weight_hh_l0.detach().double(), ord=2).item()
    for t, value in enumerate(norms, start=1):
        assert value <= sigma ** (20 - t) * norms[-1] * (1 + 1e-5)


def test_forget_bias_one_carries_far_more_gradient_back_than_zero():
    X, y = adding_problem(64, 40)
    zero = timestep_gradient_norms(_model("lstm", hidden=32, forget_bias=0.0), X, y)
    one = timestep_gradient_norms(_model("lstm", hidden=32, forget_bias=1.0), X, y)
    assert one[0] / one[-1] > 100 * zero[0] / zero[-1]


def test_timestep_gradient_norms_leave_grad_fields_alone():
    model = _model("gru")
    X, y = adding_problem(8, 5)
    timestep_gradient_norms(model, X, y)
    assert all(p.grad is None for p in model.parameters())


def test_timestep_gradient_norms_reject_bad_arguments(raises_bad):
    model = _model("rnn")
    X, y = adding_problem(8, 5)
    with raises_bad("wrt", "cell"):
        timestep_gradient_norms(model, X, y, wrt="cell")
    with pytest.raises(ValueError, match="model=.*SequenceRegressor"):
        timestep_gradient_norms(torch.nn.RNN(2, 4), X, y)
    with pytest.raises(ValueError, match=r"must have shape \(n, T, 2\)"):
        timestep_gradient_norms(model, X[..., :1], y)
    with pytest.raises(ValueError, match="y has 3 targets but X has 8 rows"):
        timestep_gradient_norms(model, X, y[:3])


# ---------------------------------------------------------------- LSTM gates

def test_lstm_gates_by_hand_equal_the_library():
    model = _model("lstm", forget_bias=1.0)
    X, _ = adding_problem(6, 11)
    gates = lstm_gates(model, X)
    full, (h_n, c_n) = model.rnn(X)
    assert set(gates) == {"input", "forget", "candidate", "output", "cell", "hidden"}
    assert all(v.shape == (6, 11, 8) for v in gates.values())
    assert torch.allclose(gates["hidden"], full, atol=1e-6)
    assert torch.allclose(gates["cell"][:, -1], c_n[0], atol=1e-6)
    for name in ("input", "forget", "output"):
        assert ((gates[name] > 0) & (gates[name] < 1)).all()


def test_lstm_gates_and_saturation_reject_other_cells():
    X, _ = adding_problem(4, 5)
    with pytest.raises(ValueError, match="cell='gru'"):
        lstm_gates(_model("gru"), X)
    with pytest.raises(ValueError, match="cell='rnn'"):
        gate_saturation(_model("rnn"), X)
    with pytest.raises(ValueError, match=r"X=<tensor shape=\(4, 5\)"):
        lstm_gates(_model("lstm"), X[..., 0])


def test_gate_saturation_counts_values_outside_the_interval():
    X, _ = adding_problem(16, 6)
    fresh = gate_saturation(_model("lstm"), X)
    assert set(fresh) == {"input", "forget", "output"} and all(v < 0.05 for v in fresh.values())
    saturated = gate_saturation(_model("lstm", forget_bias=8.0), X)  # sigma(8) = 0.9997
    assert saturated["forget"] == 1.0 and saturated["input"] < 0.05


def test_first_step_below_uses_the_running_mean():
    losses = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    # running means over 3 steps, from step 3: 2/3, 2/3, 1/3, 1/3, 0
    assert first_step_below(losses, 0.5, window=3) == 5
    assert first_step_below(losses, 0.1, window=3) == 7
    assert first_step_below(losses, 0.0, window=3) is None
    assert first_step_below(losses, 0.5, window=1) == 3          # a window of 1 is the loss itself
    assert first_step_below(torch.tensor(losses), 0.5, window=3) == 5


def test_first_step_below_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    losses = (torch.linspace(1, 0, 300) + 0.3 * torch.rand(300, generator=generator)).tolist()
    expected = next(k for k in range(20, 301) if sum(losses[k - 20:k]) / 20 < 0.5)
    assert first_step_below(losses, 0.5) == expected


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(losses="abc", level=0.1), "losses", "abc"),
    (dict(losses=[0.1], level="low"), "level", "low"),
    (dict(losses=[0.1], level=0.1, window=0), "window", 0),
])
def test_first_step_below_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        first_step_below(**kwargs)


# ---------------------------------------------------------------- Bengio et al.'s latching task

def test_latching_trials_learn_short_sequences_and_fail_long_ones():
    result = latching_trials([4, 40], trials=40, steps=100, seed=0)
    assert list(result) == [4, 40]
    short, long = result[4], result[40]
    assert short["converged"] >= 0.9 and long["converged"] <= 0.4
    assert short["first_gradient"] > 30 * long["first_gradient"]
    assert short["final_loss"] < 0.05 < long["final_loss"]


def test_latching_trials_give_a_length_the_same_result_alone_or_padded_among_longer_ones():
    together = latching_trials([5, 20], trials=10, steps=20, seed=3)
    for length in (5, 20):
        alone = latching_trials([length], trials=10, steps=20, seed=3)[length]
        for key, value in alone.items():
            assert together[length][key] == pytest.approx(value, rel=1e-9, abs=1e-15), (length, key)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(lengths=[3]), "lengths[i]", 3),
    (dict(trials=0), "trials", 0),
    (dict(noise=-0.1), "noise", -0.1),
    (dict(lr=0.0), "lr", 0.0),
    (dict(target=1.0), "target", 1.0),
    (dict(steps=1.5), "steps", 1.5),
])
def test_latching_trials_reject_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        latching_trials(**{"lengths": [5], "trials": 2, "steps": 1, **kwargs})


def test_latching_trials_need_a_length():
    with pytest.raises(ValueError, match="lengths"):
        latching_trials([])
