"""gradcourse.core.scoring: a model scored over a whole set, batch by batch in eval mode, with every module given
its own mode back. (fit's use of accuracy and mean_squared_error is tested in tests/core/train/test_loop.py.)"""

import pytest
import torch
from torch import nn

from gradcourse.core.data import adding_problem
from gradcourse.core.scoring import accuracy, mean_over_rows, mean_squared_error
from helpers import buffer_copies, frozen_batchnorm_mlp, modes, same_buffers
from helpers import sequence_regressor as _sequence_model


def test_accuracy_gives_every_module_its_own_mode_back(mnist_small):
    model = frozen_batchnorm_mlp()
    before, buffers = modes(model), buffer_copies(model)
    accuracy(model, *mnist_small)
    assert modes(model) == before
    assert same_buffers(buffers, model)


def test_accuracy_counts_correct_rows_and_keeps_the_mode():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger coordinate
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1, 0])
    model.train()
    assert accuracy(model, X, y, batch_size=3) == 0.5
    assert model.training


def test_accuracy_rejects_bad_arguments(raises_bad):
    with raises_bad("batch_size", 0):
        accuracy(nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), batch_size=0)


def test_scoring_gives_modes_back_after_an_error(mnist_small):
    model = frozen_batchnorm_mlp()
    before = modes(model)
    X, y = mnist_small
    with pytest.raises(ValueError, match="the model cannot take X"):
        accuracy(model, X[:, :100], y)
    assert modes(model) == before


def test_mean_over_rows_is_the_same_mean_whatever_the_batch_size_and_runs_in_eval_mode():
    torch.manual_seed(0)
    model, X, y = nn.Linear(3, 1).train(), torch.randn(10, 3), torch.zeros(10)
    expected = model(X).sum().item() / 10
    for batch_size in (1, 3, 10, 64):
        assert mean_over_rows(model, X, y, batch_size, lambda out, target: out.sum().item()) == pytest.approx(expected)
    training = []
    mean_over_rows(model, X, y, 4, lambda out, target: training.append(model.training) or 0.0)
    assert training == [False, False, False] and model.training


def test_evaluation_does_not_let_a_model_write_into_the_callers_data():
    class Scribbler(nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            x.zero_()
            return out

    X, y = torch.randn(16, 4), torch.arange(16) % 3
    before = X.clone()
    accuracy(Scribbler(4, 3), X, y)
    assert torch.equal(X, before)


def test_mean_squared_error_matches_the_formula_and_keeps_the_mode():
    X, y = adding_problem(100, 6)
    model = _sequence_model("lstm")
    model.train()
    assert mean_squared_error(model, X, y, batch_size=7) == pytest.approx(((model(X) - y) ** 2).mean().item(), rel=1e-5)
    assert model.training
    with pytest.raises(ValueError, match="batch_size=0"):
        mean_squared_error(model, X, y, batch_size=0)
