"""gradcourse.lessons.transformers: the row Transformer, its three block placements, the per-block gradient
probes and the training runs of notebook 13."""

import math
import re

import pytest
import torch
from torch import nn

import gradcourse as gc
from gradcourse.lessons import transformers as T

SMALL = dict(tokens=7, token_size=4, d_model=8, heads=2, ffn=16)


def data(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator)


@pytest.mark.parametrize("placement, block_type", [("post", nn.TransformerEncoderLayer),
                                                   ("pre", nn.TransformerEncoderLayer), ("rezero", T.ReZeroBlock)])
def test_each_placement_builds_its_blocks_and_classifies(placement, block_type):
    model = T.RowTransformer(depth=3, placement=placement, **SMALL)
    assert len(model.blocks) == 3 and all(type(block) is block_type for block in model.blocks)
    if placement != "rezero":
        assert all(block.norm_first == (placement == "pre") for block in model.blocks)
    assert isinstance(model.final_norm, nn.LayerNorm if placement == "pre" else nn.Identity)
    assert model(data()[0]).shape == (16, 10)
    assert model.ffn_outputs() == [block.linear2 for block in model.blocks]


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_encoder_layer_computes_the_written_out_formula(norm_first):
    torch.manual_seed(0)
    block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first)
    x = torch.randn(4, 7, 8)
    assert torch.allclose(block(x), T.block_by_the_formula(block, x), atol=1e-6)
    # the placement matters: the same weights under the other formula compute another function
    before = T.block_by_the_formula(block, x)
    block.norm_first = not norm_first
    assert (before - T.block_by_the_formula(block, x)).abs().max() > 1e-2


def test_a_rezero_block_is_the_identity_at_initialization_and_its_weights_get_no_gradient():
    torch.manual_seed(0)
    model = T.RowTransformer(depth=3, placement="rezero", **SMALL)
    X, y = data()
    assert T.block_gradient_norms(model, X, y) == [0.0, 0.0, 0.0]
    x = torch.randn(2, 7, 8)
    assert torch.equal(model.blocks[0](x), x)
    alpha = torch.autograd.grad(nn.functional.cross_entropy(model(X), y), model.blocks[-1].alpha)[0]
    assert alpha.abs().item() > 0


def test_residual_scale_multiplies_the_weights_that_write_into_the_stream():
    plain = T.seeded_transformer(3, depth=4, placement="pre", **SMALL)
    scaled = T.seeded_transformer(3, depth=4, placement="pre", residual_scale=0.25, **SMALL)
    for a, b in zip(plain.blocks, scaled.blocks):
        assert torch.allclose(b.linear2.weight, 0.25 * a.linear2.weight)
        assert torch.allclose(b.self_attn.out_proj.weight, 0.25 * a.self_attn.out_proj.weight)
        assert torch.equal(b.linear1.weight, a.linear1.weight) and torch.equal(b.self_attn.in_proj_weight,
                                                                                a.self_attn.in_proj_weight)
    assert T.gpt2_residual_scale(8) == 1 / math.sqrt(16)


def test_block_gradient_norms_are_the_linear2_weight_gradients():
    model = T.seeded_transformer(0, depth=3, placement="post", **SMALL)
    X, y = data()
    model.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    expected = [block.linear2.weight.grad.norm().item() for block in model.blocks]
    assert T.block_gradient_norms(model, X, y) == pytest.approx(expected, rel=1e-5)


def test_measurements_at_initialization_are_seeded_and_shaped():
    X, y = data(32)
    norms = T.gradient_norms_at_init(X, y, seeds=[0, 1, 2], depth=4, placement="pre", **SMALL)
    assert norms.shape == (3, 4) and norms.dtype == torch.float64 and (norms > 0).all()
    assert torch.equal(norms, T.gradient_norms_at_init(X, y, seeds=[0, 1, 2], depth=4, placement="pre", **SMALL))
    assert T.growth_towards_output([[1.0, 2.0, 4.0], [2.0, 5.0, 1.0]]).tolist() == [4.0, 0.5]
    with pytest.raises(ValueError, match=re.escape("norms[:, 0]=[0.0] is not allowed")):   # ReZero's first step
        T.growth_towards_output([[0.0, 1.0]])
    by_depth = T.last_block_gradient_by_depth(X, y, [2, 4], seeds=[0, 1], placement="post", **SMALL)
    assert list(by_depth) == [2, 4] and all(len(v) == 2 for v in by_depth.values())
    assert by_depth[4] == T.gradient_norms_at_init(X, y, seeds=[0, 1], depth=4, placement="post", **SMALL)[:, -1].tolist()


def test_training_runs_keep_model_history_monitor_and_score():
    X, y = data(64)
    runs = T.train_variants(X, y, validation=(X, y), lr=1e-3, epochs=1, batch_size=32, depth=2, monitor_every=1, progress=False, **SMALL)
    assert list(runs) == list(T.VARIANTS)
    for name, run in runs.items():
        assert run.history.steps == 2 and 0 <= run.test_accuracy <= 1
        assert run.monitor.series("grad_norm").shape == (2, 2)
    assert runs["ReZero"].monitor.series("grad_norm")[0].abs().max() == 0
    # warmup starts at lr / 100, so its first step is the same gradient but a smaller move
    assert torch.equal(runs["Post-LN"].monitor.series("grad_norm")[0], runs["Post-LN + warmup"].monitor.series("grad_norm")[0])
    assert runs["Post-LN"].history.loss[0] == runs["Post-LN + warmup"].history.loss[0]
    assert runs["Post-LN"].history.loss[1] != runs["Post-LN + warmup"].history.loss[1]
    assert "TrainedRun(History" in repr(runs["Pre-LN"])
    loss = runs["Pre-LN"].history.loss
    assert runs["Pre-LN"].summary(steps=1) == (f"training loss, mean of the first/last 1 steps {loss[0]:.2f} -> {loss[-1]:.2f}; "
                                             f"test accuracy {runs['Pre-LN'].test_accuracy:.3f}")


def test_a_list_of_labels_picks_those_variants_in_its_order():
    X, y = data(64)
    runs = T.train_variants(X, y, validation=(X, y), variants=["ReZero", "Post-LN"], lr=1e-3, epochs=1, batch_size=32, depth=2,
                            progress=False, **SMALL)
    assert list(runs) == ["ReZero", "Post-LN"]
    alone = T.train_variants(X, y, validation=(X, y), lr=1e-3, epochs=1, batch_size=32, depth=2, progress=False, **SMALL)
    assert runs["Post-LN"].history.loss == alone["Post-LN"].history.loss


@pytest.mark.parametrize("call, name, value", [
    (lambda v: T.RowTransformer(placement=v), "placement", "middle"),
    (lambda v: T.RowTransformer(depth=v), "depth", 0),
    (lambda v: T.RowTransformer(heads=v, d_model=32), "heads", 5),
    (lambda v: T.RowTransformer(residual_scale=v), "residual_scale", -1.0),
    (lambda v: T.seeded_transformer(v), "seed", -1),
    (lambda v: T.gpt2_residual_scale(v), "depth", 0),
    (lambda v: T.block_gradient_norms(v, *data()), "model", nn.Linear(2, 2)),
    (lambda v: T.block_by_the_formula(v, torch.zeros(1, 2, 8)), "block", nn.Linear(8, 8)),
    (lambda v: T.gradient_norms_at_init(*data(), seeds=v, **SMALL), "seeds", []),
    (lambda v: T.last_block_gradient_by_depth(*data(), v, **SMALL), "depths", []),
    (lambda v: T.growth_towards_output(v), "norms", torch.ones(3)),
    (lambda v: T.train_transformer(*data(), validation=data(), lr=1e-3, epochs=1, warmup_steps=v, **SMALL), "warmup_steps", 5),
    (lambda v: T.train_variants(*data(), validation=data(), variants=v, lr=1e-3, epochs=1), "variants", {}),
    (lambda v: T.train_variants(*data(), validation=data(), variants=v, lr=1e-3, epochs=1), "variants", ["Pre-LN", "Post-LM"]),
])
def test_bad_arguments_name_the_parameter(call, name, value, raises_bad):
    with raises_bad(name, value) if not isinstance(value, (nn.Module, torch.Tensor, list, dict)) else \
            pytest.raises(ValueError, match=f"{name}="):
        call(value)


def test_warmup_makes_the_first_adam_step_a_hundred_times_smaller():
    X, y = data(32)
    moved = {}
    for warmup in (False, True):
        run = T.train_transformer(X, y, validation=(X, y), lr=1e-3, epochs=1, batch_size=32, warmup=warmup, depth=2, **SMALL)
        fresh = T.seeded_transformer(0, depth=2, **SMALL)
        moved[warmup] = torch.cat([(a - b).detach().flatten() for a, b in zip(run.model.parameters(), fresh.parameters())]).norm()
    assert run.history.steps == 1 and moved[True] / moved[False] == pytest.approx(0.01, rel=0.02)


@pytest.mark.parametrize("settings, name", [(dict(activation="gelu"), "block.activation"), (dict(dropout=0.1), "block.dropout")])
def test_the_written_out_formula_refuses_a_layer_it_does_not_describe(settings, name):
    block = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, **{"dropout": 0.0, **settings})
    with pytest.raises(ValueError, match=re.escape(name + "=")):
        T.block_by_the_formula(block, torch.zeros(1, 2, 8))
    if name == "block.dropout":   # in eval mode dropout is off, and the formula holds
        block.eval()
        x = torch.randn(1, 2, 8)
        assert torch.allclose(block(x), T.block_by_the_formula(block, x), atol=1e-6)


def test_an_input_of_the_wrong_width_is_refused_with_the_shape_it_needs():
    with pytest.raises(ValueError, match=r"shape \(n, 28\)"):
        T.RowTransformer(**SMALL)(torch.zeros(2, 30))


def test_the_package_gives_the_lesson_on_first_use():
    assert gc.transformers is T and "transformers" in gc.LESSONS


def test_the_placement_figure_and_its_explorer():
    import matplotlib.pyplot as plt

    X, y = data(16)
    open_before = plt.get_fignums()
    fig = gc.figures.layernorm_placement_figure(X, y, depth=3, residual_scale=0.5, **SMALL)
    assert [line.get_label() for line in fig.axes[0].get_lines()][:2] == ["Post-LN", "Pre-LN"]
    assert "3 blocks" in fig.axes[0].get_title() + (fig._suptitle.get_text() if fig._suptitle else "")
    assert plt.get_fignums() == open_before
    widget = gc.widgets.layernorm_placement_explorer(X, y, depth=4, **SMALL)
    assert [control.description for control in widget.children[0].children] == ["depth", "branch scale"]


@pytest.mark.parametrize("name, value", [("depth", 1), ("residual_scale", 0.0)])
def test_the_placement_figure_refuses_bad_controls(name, value, raises_bad):
    with raises_bad(name, value):
        gc.figures.layernorm_placement_figure(*data(), **{"depth": 3, "residual_scale": 1.0, name: value}, **SMALL)
