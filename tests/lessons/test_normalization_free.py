"""gradcourse.lessons.normalization_free: the residual MLP of notebook 16, its five initializations, the stream
at initialization against its closed forms, the first gradient steps and the training runs; and the notebook's
figure and explorer (gradcourse.display.plots.residual_streams, theory_figures.residual_stream_figure,
widgets.residual_stream_explorer)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse as gc
from gradcourse.lessons import normalization_free as nf


def data(n=64, features=20, classes=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=generator), torch.randint(0, classes, (n,), generator=generator)


def test_fixup_scale_is_l_to_the_minus_one_over_2m_minus_2():
    assert nf.fixup_scale(16) == 16 ** -0.5 == 0.25
    assert math.isclose(nf.fixup_scale(16, branch_layers=3), 0.5)          # ResNet-50's bottleneck blocks
    assert math.isclose(nf.fixup_scale(81, branch_layers=3), 81 ** -0.25)
    assert nf.fixup_scale(1) == 1.0


@pytest.mark.parametrize("kwargs, name, value", [({"depth": 0}, "depth", 0), ({"depth": 4, "branch_layers": 1},
                                                                               "branch_layers", 1)])
def test_fixup_scale_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        nf.fixup_scale(**kwargs)


def test_a_block_computes_its_formula():
    torch.manual_seed(0)
    block = nf.ResidualBlock(8, norm="batch", alpha=0.5)
    with torch.no_grad():
        block.norm2.weight.uniform_(0.5, 1.5)
    x = torch.randn(16, 8)
    h = F.relu(F.batch_norm(block.linear1(x), None, None, block.norm1.weight, block.norm1.bias, training=True))
    h = F.batch_norm(block.linear2(h), None, None, block.norm2.weight, block.norm2.bias, training=True)
    assert torch.allclose(block(x), x + 0.5 * h, atol=1e-6)
    plain = nf.ResidualBlock(8)
    assert plain.alpha is None and torch.allclose(plain(x), x + plain.linear2(F.relu(plain.linear1(x))))


def test_the_initialization_follows_the_scales():
    torch.manual_seed(0)
    model = nf.ResidualMLP(in_features=50, width=256, depth=3, alpha=1.0, first_scale=0.25, last_scale=0.0,
                           head_scale=0.0)
    block = model.blocks[0]
    assert math.isclose(block.linear1.weight.std().item(), 0.25 * math.sqrt(2 / 256), rel_tol=0.03)
    assert math.isclose(model.input.weight.std().item(), math.sqrt(1 / 50), rel_tol=0.03)
    assert block.linear2.weight.abs().max() == 0 and model.output.weight.abs().max() == 0
    assert all(p.abs().max() == 0 for name, p in model.named_parameters() if name.endswith("bias"))
    assert block.alpha.item() == 1.0 and block.alpha.requires_grad
    torch.manual_seed(0)
    plain = nf.ResidualMLP(in_features=50, width=256, depth=3)
    assert math.isclose(plain.blocks[0].linear2.weight.std().item(), math.sqrt(1 / 256), rel_tol=0.03)
    zero_gamma = nf.ResidualMLP(in_features=50, width=16, depth=2, norm="batch", gamma=0.0)
    assert all(b.norm2.weight.abs().max() == 0 and b.norm1.weight.min() == 1 for b in zero_gamma.blocks)


@pytest.mark.parametrize("kwargs, name, value", [
    ({"norm": "layer"}, "norm", "layer"), ({"gamma": 0.0}, "gamma", 0.0), ({"depth": 0}, "depth", 0),
    ({"width": 0}, "width", 0), ({"first_scale": -1.0}, "first_scale", -1.0), ({"alpha": "zero"}, "alpha", "zero")])
def test_the_network_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        nf.ResidualMLP(**kwargs)


def test_each_scheme_names_its_options_and_a_seed_names_the_network():
    assert nf.scheme_options("Fixup", 32) == dict(alpha=1.0, first_scale=32 ** -0.5, last_scale=0.0, head_scale=0.0)
    assert nf.scheme_options("SkipInit", 8) == dict(alpha=0.0)
    assert nf.scheme_options("zero-γ BatchNorm", 8) == dict(norm="batch", gamma=0.0)
    a, b = (nf.seeded_network("plain", 3, 4, in_features=20, width=8) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert len(a.blocks) == 4 and a.input.in_features == 20


def test_seeded_network_rejects_a_scheme_it_does_not_know_or_an_option_the_scheme_sets(raises_bad):
    with raises_bad("scheme", "ReZero"):
        nf.seeded_network("ReZero")
    with raises_bad("alpha", 0.5):
        nf.seeded_network("SkipInit", alpha=0.5)


def test_the_plain_stream_doubles_per_block_and_the_normalized_one_adds_one():
    X, y = data(256, 40)
    plain = nf.stream_at_init(nf.seeded_network("plain", 0, 8, in_features=40, width=512), X, y)
    q = plain["second_moment"]
    assert len(q) == 9 and len(plain["branch_second_moment"]) == 8 and len(plain["gradient"]) == 9
    assert 1.7 < (q[-1] / q[0]) ** (1 / 8) < 2.3
    assert 1.7 < (plain["gradient"][0] / plain["gradient"][-1]) ** (2 / 8) < 2.3
    bn = nf.stream_at_init(nf.seeded_network("BatchNorm", 0, 8, in_features=40, width=512), X, y)
    law = nf.predicted_second_moment(bn["second_moment"][0], 8, 1.0, normalized=True)
    assert all(math.isclose(a, b, rel_tol=0.1) for a, b in zip(bn["second_moment"], law))
    assert all(math.isclose(b, 1.0, rel_tol=1e-3) for b in bn["branch_second_moment"])   # unit size per unit


@pytest.mark.parametrize("scheme", ["SkipInit", "Fixup", "zero-γ BatchNorm"])
def test_the_remedies_start_as_the_identity_and_the_stream_matches_autograd(scheme):
    X, y = data()
    model = nf.seeded_network(scheme, 1, 5, in_features=20, width=16)
    before = copy.deepcopy(model.state_dict())
    stats = nf.stream_at_init(model, X, y)
    assert stats["identity_gap"] == 0.0 and len(set(stats["second_moment"])) == 1
    x0 = model.input(X)
    assert math.isclose(stats["second_moment"][0], x0.pow(2).mean().item(), rel_tol=1e-6)
    (gradient,) = torch.autograd.grad(F.cross_entropy(model.output(x0), y), x0)   # the stack is the identity
    assert math.isclose(stats["gradient"][0], gradient.norm().item(), rel_tol=1e-5, abs_tol=1e-12)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # running statistics too
    if scheme == "Fixup":
        assert stats["loss"] == pytest.approx(math.log(10), abs=1e-6) and stats["gradient"] == [0.0] * 6


def test_stream_at_init_rejects_other_models(raises_bad):
    X, y = data()
    with pytest.raises(ValueError, match="model=.* is not allowed"):
        nf.stream_at_init(gc.MLP(in_features=20, depth=2), X, y)


def test_the_closed_forms():
    assert nf.predicted_second_moment(2.0, 3, 1.0) == [2.0, 4.0, 8.0, 16.0]
    assert nf.predicted_second_moment(2.0, 3, 0.5, normalized=True) == [2.0, 2.5, 3.0, 3.5]
    assert nf.predicted_gradient(1.0, 2, 3.0) == [4.0, 2.0, 1.0]


@pytest.mark.parametrize("call, name, value", [
    (lambda: nf.predicted_second_moment(1.0, 3, -1.0), "v", -1.0),
    (lambda: nf.predicted_gradient(1.0, -1, 1.0), "depth", -1),
    (lambda: nf.first_gradient_steps(nf.ResidualMLP(in_features=20, depth=2), *data(), lr=0), "lr", 0)])
def test_the_closed_forms_and_the_first_steps_reject_bad_arguments(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()


def test_the_first_steps_open_skipinit_at_alpha_and_fixup_from_the_output():
    X, y = data()
    skipinit = nf.first_gradient_steps(nf.seeded_network("SkipInit", 0, 4, in_features=20, width=16), X, y, lr=0.1)
    assert skipinit == {"classifier": 1, "input layer": 1, "α": 1, "W2": 2, "W1": 2}
    model = nf.seeded_network("Fixup", 0, 4, in_features=20, width=16)
    before = copy.deepcopy(model.state_dict())
    fixup = nf.first_gradient_steps(model, X, y, lr=0.1)
    assert fixup == {"classifier": 1, "input layer": 2, "α": 3, "W2": 2, "W1": 3}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    zero_gamma = nf.first_gradient_steps(nf.seeded_network("zero-γ BatchNorm", 0, 4, in_features=20, width=16), X, y,
                                         lr=0.1, steps=1)
    assert zero_gamma == {"classifier": 1, "input layer": 1, "W2": None, "W1": None, "γ and β": 1}


def test_train_schemes_trains_each_scheme_and_watches_the_first_step():
    X, y = data(200)
    runs = nf.train_schemes(X, y, validation=data(50, seed=1), schemes=["SkipInit", "BatchNorm"], depth=3,
                            width=8, lr=0.05, epochs=1, batch_size=50, progress=False)
    assert list(runs) == ["SkipInit", "BatchNorm"]
    assert all(run.history.steps == 4 and 0 <= run.test_accuracy <= 1 for run in runs.values())
    assert runs["SkipInit"].monitor.series("grad_norm")[0].max() == 0      # alpha = 0 blocks every W2
    assert runs["BatchNorm"].monitor.series("grad_norm")[0].min() > 0


def test_train_schemes_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="schemes=.* is not allowed"):
        nf.train_schemes(*data(), validation=data(), schemes=["ReZero"], lr=0.1, epochs=1, batch_size=8)


# ---------------------------------------------------------------- the notebook's figure and explorer

def test_scheme_styles_keep_one_look_per_scheme():
    styles = gc.plots.scheme_styles(["Fixup", "plain", "mine"], markevery=5)
    assert styles["Fixup"] == gc.plots.scheme_styles(["BatchNorm", "Fixup"])["Fixup"] | {"markevery": 5}
    assert len({s["color"] for s in styles.values()}) == 3 and len({s["marker"] for s in styles.values()}) == 3


def test_the_stream_figure_draws_both_panels_and_the_explorer_redraws():
    X, y = data(32, 784)
    fig = gc.theory_figures.residual_stream_figure(X, y, depth=6, alpha=0.5, width=16)
    left, right = fig.axes
    assert left.get_yscale() == right.get_yscale() == "log" and len(left.get_lines()) == 2
    box = gc.widgets.residual_stream_explorer(X, y, depth=6, alpha=0.5, width=16)
    box.controls["norm"].value = "batch"
    assert "BatchNorm" in box.figure.legends[0].get_texts()[0].get_text()


def test_the_stream_figure_and_explorer_reject_bad_values(raises_bad):
    X, y = data(32, 784)
    with raises_bad("depth", 0):
        gc.theory_figures.residual_stream_figure(X, y, depth=0)
    with raises_bad("alpha", 2.0):
        gc.widgets.residual_stream_explorer(X, y, alpha=2.0)
