"""gradcourse.core.sequence_models: the recurrent SequenceRegressor (RNN, LSTM, GRU), its forget bias and
recurrent scale."""

import math

import pytest
import torch

import gradcourse
from gradcourse.core.data import adding_problem
from gradcourse.core.layers import named_layers
from gradcourse.core.sequence_models import SequenceRegressor
from gradcourse.lessons.sequences import lstm_gates


def _model(cell="lstm", **kwargs):
    gradcourse.set_seed(0)
    return SequenceRegressor(cell, **{"width": 8, **kwargs})


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
        forget = lstm_gates(_model("lstm", width=32, forget_bias=bias), X)["forget"].mean().item()
        assert forget == pytest.approx(1 / (1 + math.exp(-bias)), abs=0.03)


def test_recurrent_scale_multiplies_the_recurrent_weights():
    scaled, plain = _model("gru", recurrent_scale=3.0), _model("gru")
    assert torch.allclose(scaled.rnn.weight_hh_l0, 3.0 * plain.rnn.weight_hh_l0)
    assert torch.equal(scaled.rnn.weight_ih_l0, plain.rnn.weight_ih_l0)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(cell="transformer"), "cell", "transformer"),
    (dict(width=0), "width", 0),
    (dict(in_features=0), "in_features", 0),
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
