"""Notebook 08's exercises (gradcourse.exercises.notebook_08), derived again: the best constant for the adding
problem, the forget bias along the direct path, and the GRU's update gate."""

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference


def test_08_1_the_best_constant_for_the_mean_scores_a_quarter_of_the_sum():
    _, y = gc.data.adding_problem(200_000, 10, seed=0)
    mean_target = y.double() / 2
    assert mean_target.mean().item() == pytest.approx(0.5, abs=0.005)
    assert ((mean_target - 0.5) ** 2).mean().item() == pytest.approx(reference("08.1"), rel=0.02)
    assert reference("08.1") == pytest.approx(gc.data.ADDING_BASELINE_MSE / 4)


def test_08_2_the_forget_bias_keeps_one_percent_along_the_direct_path():
    bias = reference("08.2")
    assert gc.theory.sigmoid(bias) ** 49 == pytest.approx(0.01, rel=1e-9)
    X, y = gc.data.adding_problem(1000, 50, seed=1)
    torch.manual_seed(0)
    model = gc.models.SequenceRegressor("lstm", 32, forget_bias=bias)
    forget = gc.sequences.lstm_gates(model, X[:256])["forget"].mean().item()
    assert forget == pytest.approx(gc.theory.sigmoid(bias), abs=0.02)
    norms = gc.sequences.timestep_gradient_norms(model, X[:256], y[:256])
    assert norms[0] / norms[-1] > 0.01   # the other paths add to the direct path's 1%


@pytest.mark.parametrize("seed", range(3))
def test_08_3_the_lstm_passes_more_than_its_direct_path(seed):
    X, y = gc.data.adding_problem(1000, 50, seed=1)
    torch.manual_seed(seed)
    model = gc.models.SequenceRegressor("lstm", 32, forget_bias=1.0)
    norms = gc.sequences.timestep_gradient_norms(model, X[:256], y[:256])
    forget = gc.sequences.lstm_gates(model, X[:256])["forget"].mean().item()
    assert norms[0] / norms[-1] > forget ** 49
    assert reference("08.3") == "above"


def test_08_4_the_update_gate_is_the_second_slice_of_a_gru():
    torch.manual_seed(0)
    model = gc.models.SequenceRegressor("gru", 8)
    with torch.no_grad():
        model.rnn.bias_ih_l0[8:16] = 50.0   # z = 1: h_t = h_(t-1) = h_0 = 0 at every step
    X, _ = gc.data.adding_problem(4, 10, seed=0)
    hidden, _ = model.rnn(X)
    assert torch.equal(hidden, torch.zeros_like(hidden))


@pytest.mark.parametrize("seed", range(5))
def test_08_4_the_bias_of_exercise_08_2_is_enough_for_the_gru(seed):
    torch.manual_seed(seed)
    model = gc.models.SequenceRegressor("gru", 32)
    default = check("08.4", model)
    with torch.no_grad():
        model.rnn.bias_ih_l0[32:64] = reference("08.2")
        model.rnn.bias_hh_l0[32:64] = 0.0
    assert not default and check("08.4", model)
