"""gradcourse.lessons.sequences: gradients through time, LSTM gates, Bengio et al.'s latching task."""

import pytest
import torch
import torch.nn.functional as F

import gradcourse
from gradcourse.lessons import sequences
from gradcourse.core.data import adding_problem
from gradcourse.core.models import SequenceRegressor
from gradcourse.lessons.sequences import (first_step_below, gate_saturation, latching_trials, lstm_gates,
                                          timestep_gradient_norms, unrolled_states)


def _model(cell="lstm", width=8, **kwargs):
    gradcourse.set_seed(0)
    return SequenceRegressor(cell, width, **kwargs)


def test_random_recurrence_has_every_singular_value_equal_to_sigma_max():
    W, U, inputs = sequences.random_recurrence(1.7, 5, width=10, in_features=3, input_scale=0.2, seed=2)
    assert torch.allclose(torch.linalg.svdvals(W), torch.full((10,), 1.7, dtype=torch.float64))
    assert U.shape == (10, 3) and inputs.shape == (5, 3)
    same = sequences.random_recurrence(1.7, 5, width=10, in_features=3, input_scale=0.2, seed=2)
    assert all(torch.equal(a, b) for a, b in zip((W, U, inputs), same))


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
    model = _model("rnn", width=16)
    X, y = adding_problem(32, 20)
    norms = timestep_gradient_norms(model, X, y)
    sigma = torch.linalg.matrix_norm(model.rnn.weight_hh_l0.detach().double(), ord=2).item()
    for t, value in enumerate(norms, start=1):
        assert value <= sigma ** (20 - t) * norms[-1] * (1 + 1e-5)


def test_forget_bias_one_carries_far_more_gradient_back_than_zero():
    X, y = adding_problem(64, 40)
    zero = timestep_gradient_norms(_model("lstm", width=32, forget_bias=0.0), X, y)
    one = timestep_gradient_norms(_model("lstm", width=32, forget_bias=1.0), X, y)
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
    (dict(progress="yes"), "progress", "yes"),
])
def test_latching_trials_reject_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        latching_trials(**{"lengths": [5], "trials": 2, "steps": 1, **kwargs})


def test_latching_trials_need_a_length():
    with pytest.raises(ValueError, match="lengths"):
        latching_trials([])
