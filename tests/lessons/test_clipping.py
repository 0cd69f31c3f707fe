"""gradcourse.lessons.clipping (norm vs value clipping, Pascanu et al.'s error rate) and fit's clipping statistics."""

import math

import pytest
import torch

import gradcourse
from gradcourse.lessons import clipping
from gradcourse import ClipNorm, ClipValue, ProgressBar, fit
from gradcourse.lessons.clipping import clipped_copy, cosine, entry_quantile, global_norm, parameter_gradients
from gradcourse.core.data import adding_problem
from gradcourse.core.models import MLP, SequenceRegressor


@pytest.fixture
def gradients():
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, generator=generator), torch.randn(5, generator=generator) * 10]


# ---------------------------------------------------------------- norm and value clipping

def test_norm_clipping_keeps_the_direction_and_sets_the_norm(gradients):
    before = global_norm(gradients)
    clipped = clipped_copy(gradients, max_norm=before / 4)
    assert global_norm(clipped) == pytest.approx(before / 4, rel=1e-6)
    assert cosine(gradients, clipped) == pytest.approx(1.0, abs=1e-12)
    # the formula g * min(1, c / ||g||)
    for g, c in zip(gradients, clipped):
        assert torch.allclose(c, g * (before / 4) / before, rtol=1e-5)


def test_norm_clipping_leaves_a_small_gradient_alone(gradients):
    clipped = clipped_copy(gradients, max_norm=global_norm(gradients) * 2)
    assert all(torch.equal(c, g) for c, g in zip(clipped, gradients))


def test_value_clipping_clamps_entries_and_turns_the_direction(gradients):
    threshold = entry_quantile(gradients, 0.5)
    clipped = clipped_copy(gradients, clip_value=threshold)
    assert all(c.abs().max().item() <= threshold + 1e-12 for c in clipped)
    assert all(torch.equal(c, g.clamp(-threshold, threshold)) for c, g in zip(clipped, gradients))
    assert cosine(gradients, clipped) < 0.99


def test_clipped_copy_leaves_its_input_unchanged(gradients):
    copies = [g.clone() for g in gradients]
    clipped_copy(gradients, clip_value=0.1)
    clipped_copy(gradients, max_norm=0.1)
    assert all(torch.equal(a, b) for a, b in zip(gradients, copies))


def test_clipped_copy_matches_clipping_real_parameters():
    gradcourse.set_seed(0)
    model = MLP(in_features=5, out_features=3, width=4, depth=2)
    X, y = torch.randn(10, 5), torch.arange(10) % 3
    grads = parameter_gradients(model, X, y, loss_fn="cross_entropy")
    torch.nn.functional.cross_entropy(model(X), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
    assert all(torch.allclose(c, p.grad) for c, p in zip(clipped_copy(grads, max_norm=0.01), model.parameters()))


def test_parameter_gradients_of_a_sequence_model_and_grad_fields_untouched():
    gradcourse.set_seed(0)
    model = SequenceRegressor("lstm", 4)
    X, y = adding_problem(8, 5)
    grads = parameter_gradients(model, X, y, loss_fn="mse")
    assert [g.shape for g in grads] == [p.shape for p in model.parameters()]
    assert all(p.grad is None for p in model.parameters())


def test_entry_quantile_and_cosine_basics():
    g = [torch.tensor([1.0, -2.0, 3.0, -4.0])]
    assert entry_quantile(g, 1.0) == 4.0 and entry_quantile(g, 0.0) == 1.0
    assert cosine(g, [torch.tensor([-1.0, 2.0, -3.0, 4.0])]) == pytest.approx(-1.0)
    assert global_norm(g) == pytest.approx(math.sqrt(30))


@pytest.mark.parametrize("call, match", [
    (lambda g: clipped_copy(g), "give exactly one"),
    (lambda g: clipped_copy(g, max_norm=1.0, clip_value=1.0), "give exactly one"),
    (lambda g: clipped_copy(g, max_norm=0.0), "max_norm=0.0"),
    (lambda g: clipped_copy(g, clip_value=-1.0), "clip_value=-1.0"),
    (lambda g: clipped_copy([], max_norm=1.0), "gradients=\\[\\]"),
    (lambda g: clipped_copy([torch.tensor([1, 2])], max_norm=1.0), "floating-point"),
    (lambda g: entry_quantile(g, 1.5), "q=1.5"),
    (lambda g: cosine(g, g[:1]), "they must match"),
    (lambda g: cosine([torch.zeros(3)], [torch.ones(3)]), "undefined for a zero gradient"),
    (lambda g: parameter_gradients("model", None, None), "model='model'"),
    (lambda g: parameter_gradients(torch.nn.Linear(2, 1), torch.ones(2, 2), torch.ones(2), loss_fn="l1"), "loss_fn='l1'"),
])
def test_clipping_helpers_reject_bad_arguments(gradients, call, match):
    with pytest.raises(ValueError, match=match):
        call(gradients)


# ---------------------------------------------------------------- Pascanu et al.'s error rate

class _Constant(torch.nn.Module):
    """Predicts ``value`` for every sequence."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, X):
        return torch.full((len(X),), self.value)


def test_error_rate_counts_the_sequences_off_by_more_than_the_tolerance():
    X = torch.zeros(4, 3, 2)
    y = torch.tensor([1.0, 1.3, 1.5, 0.55])
    assert clipping.error_rate(_Constant(1.0), X, y) == pytest.approx(2 / 4)   # 1.5 and 0.55 are off by > 0.4
    assert clipping.error_rate(_Constant(1.0), X, y, tolerance=0.25) == pytest.approx(3 / 4)
    assert clipping.ERROR_TOLERANCE == 0.4


def test_the_constant_one_misses_36_percent_of_the_adding_problem():
    # |u_a + u_b - 1| > 0.4 with probability (1 - 0.4)^2 = 0.36 for the sum of two U[0, 1]
    X, y = adding_problem(20000, 6, seed=3)
    assert clipping.error_rate(_Constant(1.0), X, y) == pytest.approx(0.36, abs=0.015)


def test_error_rate_of_a_sequence_model_matches_its_predictions():
    gradcourse.set_seed(1)
    model = SequenceRegressor("gru", 4)
    X, y = adding_problem(64, 5, seed=1)
    with torch.no_grad():
        expected = ((model(X) - y).abs() > 0.4).double().mean().item()
    assert clipping.error_rate(model, X, y) == expected


@pytest.mark.parametrize("call, name, value", [
    (lambda X, y: clipping.error_rate("model", X, y), "model", "model"),
    (lambda X, y: clipping.error_rate(_Constant(1.0), X, y, tolerance=0.0), "tolerance", 0.0),
    (lambda X, y: clipping.error_rate(_Constant(1.0), X, y[:2]), "y", None),
])
def test_error_rate_rejects_bad_arguments(call, name, value):
    X, y = torch.zeros(4, 3, 2), torch.ones(4)
    with pytest.raises(ValueError, match=name):
        call(X, y)


def test_error_rate_rejects_predictions_of_another_shape():
    with pytest.raises(ValueError, match="they must match"):
        clipping.error_rate(torch.nn.Flatten(), torch.zeros(4, 3, 2), torch.ones(4))


# ---------------------------------------------------------------- fit's clipping statistics

def _sequence_fit(max_norm=None, clip_value=None):
    gradcourse.set_seed(0)
    model = SequenceRegressor("rnn", 8)
    X, y = adding_problem(128, 6)
    callbacks = [ProgressBar(show=False)]
    callbacks += [ClipNorm(max_norm)] if max_norm is not None else []
    callbacks += [ClipValue(clip_value)] if clip_value is not None else []
    return fit(model, X, y, epochs=2, batch_size=16, lr=0.05, loss_fn="mse", callbacks=callbacks)


def test_fit_records_which_steps_were_clipped():
    free = _sequence_fit()
    assert free.clipped == [False] * free.steps and free.clipped_share == 0.0
    assert free.max_norm is None and "clipped" not in repr(free)
    for threshold in (sorted(free.grad_norm)[len(free.grad_norm) // 2], 2 * max(free.grad_norm)):
        clipped = _sequence_fit(max_norm=threshold)
        assert clipped.max_norm == threshold
        assert clipped.clipped == [g > threshold for g in clipped.grad_norm]  # norms before clipping
        assert clipped.clipped_share == sum(clipped.clipped) / clipped.steps
        assert f"clipped {clipped.clipped_share:.0%} of steps" in repr(clipped)
    assert clipped.clipped_share == 0.0  # a threshold above every norm never clips


def test_fit_with_value_clipping_records_steps_with_a_large_entry():
    clipped = _sequence_fit(clip_value=1e-9)
    assert clipped.clipped_share == 1.0 and clipped.clip_value == 1e-9
    never = _sequence_fit(clip_value=1e9)
    assert never.clipped_share == 0.0


def test_clipping_does_not_change_the_recorded_first_norm():
    assert _sequence_fit(max_norm=1e-6).grad_norm[0] == _sequence_fit().grad_norm[0]


def test_clipped_share_of_an_empty_history_is_zero():
    assert gradcourse.History().clipped_share == 0.0
