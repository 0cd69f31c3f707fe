"""gradcourse.core._checks: the argument checks behind every public function, on their own, and the messages
the public functions give with them: each mistake a ValueError that says what to change. (Each public function's
checks over whole ranges of bad values are tested with its module.)"""

import math
import re

import numpy as np
import pytest
import torch

import gradcourse
from gradcourse.core import _checks


def test_choice_returns_an_allowed_value():
    assert _checks.choice("activation", "relu", ("sigmoid", "relu")) == "relu"
    assert _checks.choice("norm", None, (None, "batch")) is None


def test_choice_message_names_parameter_value_and_options():
    with pytest.raises(ValueError) as info:
        _checks.choice("activation", "sigmod", ("sigmoid", "relu"))
    message = str(info.value)
    assert message.startswith("activation='sigmod' is not allowed")
    assert "'sigmoid', 'relu'" in message


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_integer_accepts_python_and_numpy_integers(value):
    result = _checks.integer("depth", value, minimum=1)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [True, 2.0, "3", None, 0, 11])
def test_integer_rejects_non_integers_bools_and_out_of_range(value, raises_bad):
    with raises_bad("depth", value):
        _checks.integer("depth", value, minimum=1, maximum=10)


def test_integer_message_states_the_range():
    with pytest.raises(ValueError, match=r"depth=0 is not allowed; it must be an integer >= 1 and <= 10"):
        _checks.integer("depth", 0, minimum=1, maximum=10)


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25)])
def test_number_returns_a_float(value):
    result = _checks.number("lr", value, minimum=0, strict_minimum=True)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.1", None, torch.tensor(0.1)])
def test_number_rejects_non_finite_bool_and_non_numbers(value):
    with pytest.raises(ValueError, match="lr=") as info:
        _checks.number("lr", value)
    assert "finite number" in str(info.value)


def test_number_strict_minimum_excludes_the_bound_itself(raises_bad):
    assert _checks.number("lr", 0, minimum=0) == 0.0
    with raises_bad("lr", 0):
        _checks.number("lr", 0, minimum=0, strict_minimum=True)
    with pytest.raises(ValueError, match=re.escape("lr=-1 is not allowed; it must be a finite number > 0")):
        _checks.number("lr", -1, minimum=0, strict_minimum=True)


def test_number_maximum(raises_bad):
    assert _checks.number("momentum", 0.999, minimum=0, maximum=0.999) == 0.999
    with raises_bad("momentum", 1.5):
        _checks.number("momentum", 1.5, minimum=0, maximum=0.999)


@pytest.mark.parametrize("value", [1, 0, "True", None])
def test_boolean_accepts_only_bools(value, raises_bad):
    assert _checks.boolean("shuffle", True) is True
    with raises_bad("shuffle", value):
        _checks.boolean("shuffle", value)


def test_features_and_labels_accepts_a_valid_batch():
    X, y = torch.zeros(4, 3), torch.tensor([0, 1, 2, 1])
    assert _checks.features_and_labels(X, y) == (X, y)


@pytest.mark.parametrize("X, y, expected", [
    (torch.zeros(4), torch.zeros(4, dtype=torch.long), "X=<tensor shape=(4,) dtype=torch.float32>"),
    (torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long), "X=<tensor shape=(4, 3) dtype=torch.int64>"),
    ([[0.0]], torch.zeros(1, dtype=torch.long), "X=[[0.0]]"),
    (torch.zeros(4, 3), torch.zeros(4), "y=<tensor shape=(4,) dtype=torch.float32>"),
    (torch.zeros(4, 3), torch.zeros(4, dtype=torch.bool), "y=<tensor shape=(4,) dtype=torch.bool>"),
    (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long), "y=<tensor shape=(4, 1) dtype=torch.int64>"),
    (torch.zeros(4, 3), torch.zeros(3, dtype=torch.long), "y has 3 labels but X has 4 rows"),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "X is empty"),
])
def test_features_and_labels_rejects_bad_batches(X, y, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        _checks.features_and_labels(X, y)


def test_features_and_labels_uses_the_given_names():
    with pytest.raises(ValueError, match=re.escape("validation[1] has 2 labels but validation[0] has 3 rows")):
        _checks.features_and_labels(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long),
                                    x_name="validation[0]", y_name="validation[1]")


def test_describe_shortens_long_values():
    assert _checks.describe(list(range(100))) == "<list>"
    assert _checks.describe("sigmod") == "'sigmod'"


@pytest.mark.parametrize("value", [(0, 1), [-2.5, 3], (1e-3, 1e-2)])
def test_interval_returns_two_floats(value):
    assert _checks.interval("histogram_range", value) == (float(value[0]), float(value[1]))


@pytest.mark.parametrize("value", [(1, 0), (1, 1), (0, math.inf), (0,), (0, 1, 2), "ab", (True, 2), (0, math.nan), 3])
def test_interval_rejects_anything_else(value):
    with pytest.raises(ValueError, match=r"histogram_range=.* is not allowed; it must be \(low, high\)"):
        _checks.interval("histogram_range", value)


# ---------------------------------------------------------------- errors a learner can act on

def _small_mlp():
    gradcourse.set_seed(0)
    return gradcourse.MLP(in_features=6, width=8, depth=2, out_features=3)


_X9, _Y9 = torch.randn(32, 6), torch.arange(32) % 3
_FIT = dict(epochs=1, batch_size=8, lr=0.1)


@pytest.mark.parametrize("call, match", [
    (lambda: gradcourse.fit(_small_mlp(), _X9.double(), _Y9, **_FIT), r"X=<tensor shape=\(8, 6\) dtype=torch.float64>"),
    (lambda: gradcourse.fit(_small_mlp(), torch.randn(32, 5), _Y9, **_FIT), "the model cannot take X="),
    (lambda: gradcourse.fit(_small_mlp(), _X9, _Y9.int(), **_FIT), r"y\.long\(\) converts"),
    (lambda: gradcourse.fit(_small_mlp().requires_grad_(False), _X9, _Y9, **_FIT), "nothing to train"),
    (lambda: gradcourse.diagnose(_small_mlp(), _X9.double(), _Y9), "dtype=torch.float64"),
    (lambda: gradcourse.layer_gradient_norms(_small_mlp(), torch.randn(32, 5), _Y9), "the model cannot take X="),
    (lambda: gradcourse.diagnose(torch.nn.LSTM(6, 3, batch_first=True), _X9.unsqueeze(1), _Y9), "pass compute_loss="),
    (lambda: gradcourse.diagnose(_small_mlp(), _X9, _Y9, optimizer=torch.optim.LBFGS(_small_mlp().parameters())),
     "optimizer=LBFGS is not allowed"),
    (lambda: gradcourse.GradientMonitor(_small_mlp(), layers=torch.nn.Linear(2, 2)), r"layers=\[module\]"),
    (lambda: gradcourse.set_seed(2**33), "seed=8589934592"),
    (lambda: gradcourse.MLP(init_scale=1e300), r"init_scale=1e\+300 is not allowed"),
])
def test_mistakes_raise_a_value_error_that_says_what_to_change(call, match):
    with pytest.raises(ValueError, match=match):
        call()
