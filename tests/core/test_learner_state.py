"""What the package leaves alone on a learner's model and in torch: each module's own train/eval mode
(a BatchNorm the learner froze with .eval() stays frozen), BatchNorm's running statistics and torch's
random generator."""

import pytest
import torch
from torch import nn

import gradcourse
from gradcourse import MLP, fit
from gradcourse.lessons.initialization import first_loss
from gradcourse.lessons.normalization import weight_norms
from gradcourse.core.scoring import accuracy
from gradcourse.lessons.training_runs import unit_activity


def _batchnorm_mlp(depth=2):
    gradcourse.set_seed(0)
    return MLP(width=16, depth=depth, activation="relu", init="kaiming", norm="batch")


def _modes(model):
    return {name: module.training for name, module in model.named_modules()}


def _buffers(module):
    return {name: buffer.clone() for name, buffer in module.named_buffers()}


def _same(before, module):
    return all(torch.equal(before[name], buffer) for name, buffer in module.named_buffers())


def _frozen_first_norm(depth=2):
    """A model in train mode whose first BatchNorm the learner froze with .eval()."""
    model = _batchnorm_mlp(depth).train()
    model.blocks[0].norm.eval()
    return model


# ---------------------------------------------------------------- fit

def test_fit_trains_with_a_frozen_batchnorm_still_frozen(mnist_small):
    model = _frozen_first_norm()
    modes = _modes(model)
    frozen, trained = _buffers(model.blocks[0].norm), _buffers(model.blocks[1].norm)
    fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1, progress=False)
    assert _same(frozen, model.blocks[0].norm)            # its running statistics did not move
    assert not _same(trained, model.blocks[1].norm)       # the other BatchNorm trained as usual
    assert _modes(model) == modes


def test_a_frozen_batchnorm_takes_batches_of_one_example():
    gradcourse.set_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    model[1].eval()
    history = fit(model, torch.randn(9, 4), torch.arange(9) % 2, epochs=1, batch_size=4, lr=0.1, progress=False)
    assert history.steps == 3                             # 4 + 4 + 1: a last batch of one is kept


def test_a_model_given_in_eval_mode_trains_in_train_mode_and_is_given_back_in_eval_mode(mnist_small):
    model = _batchnorm_mlp().eval()
    before = _buffers(model)
    fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.1, progress=False)
    assert not _same(before, model)                       # BatchNorm normalized over the batches and tracked them
    assert not any(_modes(model).values())


# ---------------------------------------------------------------- scoring and measurements

@pytest.mark.parametrize("measure", [
    lambda model, X, y: accuracy(model, X, y),
    lambda model, X, y: unit_activity(model, X),
    lambda model, X, y: weight_norms(model),
], ids=["accuracy", "unit_activity", "weight_norms"])
def test_measurements_give_every_module_its_own_mode_back(measure, mnist_small):
    model = _frozen_first_norm()
    modes, buffers = _modes(model), _buffers(model)
    measure(model, *mnist_small)
    assert _modes(model) == modes
    assert _same(buffers, model)


def test_scoring_gives_modes_back_after_an_error(mnist_small):
    model = _frozen_first_norm()
    modes = _modes(model)
    X, y = mnist_small
    with pytest.raises(ValueError, match="the model cannot take X"):
        accuracy(model, X[:, :100], y)
    assert _modes(model) == modes


# ---------------------------------------------------------------- first loss and exercise 04.4

def _with_dropout(model):
    """The course MLP with a Dropout after its first activation: its forward pass draws random numbers."""
    model.blocks[0].activation = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))
    return model


def test_first_loss_leaves_batchnorm_statistics_and_the_random_generator_alone(mnist_small):
    model = _with_dropout(_batchnorm_mlp()).train()
    buffers, generator = _buffers(model), torch.get_rng_state()
    loss = first_loss(model, *mnist_small)
    assert _same(buffers, model)
    assert torch.equal(torch.get_rng_state(), generator)
    assert first_loss(model, *mnist_small) == loss        # the same dropout mask again: nothing moved
    assert model.training


def test_checking_exercise_04_4_leaves_the_learners_network_and_torch_alone(capsys):
    gradcourse.set_seed(0)
    model = _with_dropout(MLP(depth=3, width=128, activation="relu", init="kaiming", output_scale=0.1, norm="batch"))
    buffers, parameters, generator = _buffers(model), [p.clone() for p in model.parameters()], torch.get_rng_state()
    gradcourse.exercises.check("04.4", model)
    assert "Exercise 04.4" in capsys.readouterr().out
    assert _same(buffers, model)
    assert all(torch.equal(a, b) for a, b in zip(parameters, model.parameters()))
    assert torch.equal(torch.get_rng_state(), generator)
