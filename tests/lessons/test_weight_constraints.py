"""gradcourse.lessons.weight_constraints: max-norm, weight-norm and spectral-norm constraints, and the norms they hold."""

import pytest
import torch
from torch.nn.utils import parametrize

import gradcourse
from gradcourse import MLP, ProgressBar, fit
from gradcourse.lessons.weight_constraints import MaxNorm, constrain_weights_, weight_norms
from helpers import measure_keeps_modes_and_buffers


def _model(**kwargs):
    gradcourse.set_seed(0)
    return MLP(**{"width": 16, "depth": 3, "activation": "sigmoid", **kwargs})


def test_max_norm_rescales_long_rows_only():
    weight = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    projected = MaxNorm(1.0)(weight)
    assert torch.allclose(projected, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert "max_norm=1.0" in repr(MaxNorm(1.0))


def test_max_norm_constraint_holds_through_training(mnist_small):
    model = constrain_weights_(_model(activation="relu", init="kaiming", init_scale=2.0), "max_norm", max_norm=0.5)
    assert all(parametrize.is_parametrized(layer, "weight") for layer in model.hidden_linears())
    assert not parametrize.is_parametrized(model.output, "weight")
    fit(model, *mnist_small, epochs=2, batch_size=32, lr=0.5, callbacks=[ProgressBar(show=False)])
    assert max(weight_norms(model)["max_row_norm"]) <= 0.5 + 1e-6


def test_weight_norm_rows_have_length_g(mnist_small):
    model = constrain_weights_(_model(), "weight_norm")
    fit(model, *mnist_small, epochs=1, batch_size=64, lr=0.5, callbacks=[ProgressBar(show=False)])
    for layer in model.hidden_linears():
        g = layer.parametrizations.weight.original0.detach().flatten()
        assert torch.allclose(layer.weight.detach().norm(dim=1), g.abs(), rtol=1e-5)


def test_spectral_norm_keeps_every_largest_singular_value_near_one(mnist_small):
    model = _model(activation="relu", init="kaiming", init_scale=3.0)
    assert min(weight_norms(model)["spectral_norm"]) > 2
    constrain_weights_(model, "spectral_norm")
    fit(model, *mnist_small, epochs=1, batch_size=32, lr=0.1, callbacks=[ProgressBar(show=False)])
    # sigma_max is estimated by power iteration (one step per training forward pass), so it is near 1, not exactly 1
    assert all(abs(s - 1) < 0.1 for s in weight_norms(model)["spectral_norm"])


def test_weight_norms_are_exact():
    model = _model()
    w = model.hidden_linears()[1].weight.detach().double()
    norms = weight_norms(model)
    assert norms["max_row_norm"][1] == pytest.approx(w.norm(dim=1).max().item())
    assert norms["spectral_norm"][1] == pytest.approx(torch.linalg.svdvals(w)[0].item())
    assert len(norms["spectral_norm"]) == 3


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(constraint="unit_norm"), "constraint", "unit_norm"),
    (dict(constraint="max_norm"), "max_norm", None),
    (dict(constraint="max_norm", max_norm=0.0), "max_norm", 0.0),
    (dict(constraint="spectral_norm", max_norm=2.0), "max_norm", 2.0),
])
def test_constrain_weights_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        constrain_weights_(_model(), **kwargs)


def test_constraints_do_not_stack():
    model = constrain_weights_(_model(), "max_norm", max_norm=1.0)
    with pytest.raises(ValueError, match="already constrained"):
        constrain_weights_(model, "spectral_norm")


def test_max_norm_rejects_a_bad_bound(raises_bad):
    with raises_bad("max_norm", -1.0):
        MaxNorm(-1.0)


def test_weight_norms_give_every_module_its_own_mode_back(mnist_small):
    measure_keeps_modes_and_buffers(lambda model, X, y: weight_norms(model), *mnist_small)
