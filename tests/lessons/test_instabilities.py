"""gradcourse.lessons.instabilities: the written-out attention and its QK-LayerNorm bound, the tiny Transformer and
what it records, the z-loss, Adam's first step against eps and its step after a quiet period, and the clipping
threshold read off a gradient-norm record (notebook 17)."""

import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse as gc
from gradcourse.lessons import instabilities as I

SMALL = dict(depth=2, d_model=8, heads=2, ffn=16, tokens=7, token_size=4)


def data(n=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator)


@pytest.mark.parametrize("qk_norm", [False, True])
def test_the_written_out_attention_is_torchs_scaled_dot_product_attention(qk_norm):
    torch.manual_seed(0)
    attention = I.QKAttention(8, 2, qk_norm)
    x = torch.randn(3, 5, 8)
    q, k, v = attention.queries_keys_values(x)
    expected = attention.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))
    assert torch.allclose(attention(x), expected, atol=1e-6)
    logits, _ = attention.attention_logits(x)
    assert math.isclose(attention.max_logit, logits.abs().max().item(), rel_tol=1e-6)


def test_equal_logits_give_uniform_attention_with_entropy_ln_tokens():
    attention = I.QKAttention(8, 2)
    with torch.no_grad():
        attention.qkv.weight[:16].zero_()
        attention.qkv.bias[:16].zero_()
    attention(torch.randn(2, 6, 8))
    assert attention.max_logit == 0 and math.isclose(attention.entropy, math.log(6), rel_tol=1e-6)
    assert attention.logit_bound == math.inf


def test_qk_layernorm_bounds_every_logit_by_the_gains_times_sqrt_dh():
    torch.manual_seed(1)
    attention = I.QKAttention(32, 2, qk_norm=True)   # d_h = 16
    with torch.no_grad():
        attention.qkv.weight.mul_(50)                 # huge weights: without the LayerNorms, huge logits
        attention.q_norm.weight.uniform_(-1.5, 1.5)
        attention.k_norm.weight.uniform_(-2.0, 2.0)
    attention(torch.randn(16, 7, 32))
    bound = attention.q_norm.weight.abs().max() * attention.k_norm.weight.abs().max() * 4
    assert math.isclose(attention.logit_bound, bound.item(), rel_tol=1e-6)
    assert attention.max_logit <= attention.logit_bound


def test_the_bound_is_reached_by_a_query_equal_to_its_key_with_constant_gains():
    norm = torch.nn.LayerNorm(16, bias=False)
    u = norm(torch.randn(16))
    assert math.isclose((u @ u / 4).item(), 4.0, rel_tol=1e-4)   # sqrt(d_h) = 4 with unit gains


def test_logits_grow_with_the_square_of_the_query_and_key_weights_unless_normalized():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 8)
    assert math.isclose(I.logit_growth(I.QKAttention(8, 2), x, 3.0), 9.0, rel_tol=1e-5)
    assert math.isclose(I.logit_growth(I.QKAttention(8, 2, qk_norm=True), x, 3.0), 1.0, rel_tol=1e-3)


def test_the_attention_refuses_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="heads=3"):
        I.QKAttention(8, 3)


def test_the_tiny_transformer_classifies_and_records_log_z_and_its_blocks():
    torch.manual_seed(0)
    model = I.TinyTransformer(**SMALL, qk_norm=True)
    X, _ = data()
    logits = model(X)
    assert logits.shape == (32, 10)
    assert math.isclose(model.log_z, logits.logsumexp(-1).mean().item(), rel_tol=1e-6)
    blocks = model.attention_layers()
    assert model.max_logit == max(a.max_logit for a in blocks) and model.entropy == min(a.entropy for a in blocks)
    assert model.logit_bound == max(a.logit_bound for a in blocks) == pytest.approx(2.0)   # sqrt(4), unit gains
    names = [name for name, _ in model.named_layers()]
    assert names[0] == "embedding" and names[-1] == "output layer" and "block 2 FFN 1" in names


def test_the_tiny_transformer_refuses_bad_options_and_inputs(raises_bad):
    with raises_bad("depth", 0):
        I.TinyTransformer(depth=0)
    with raises_bad("qk_norm", 1):
        I.TinyTransformer(qk_norm=1)
    with pytest.raises(ValueError, match="7 tokens of 4 values"):
        I.TinyTransformer(**SMALL)(torch.randn(2, 27))


def test_cross_entropy_ignores_a_shift_of_the_logits_and_the_z_loss_pulls_along_it():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 10, requires_grad=True), torch.randint(0, 10, (5,))
    assert torch.allclose(F.cross_entropy(logits + 3.0, y), F.cross_entropy(logits, y))
    loss = I.ZLoss(0.1)
    assert torch.allclose(loss(logits, y), F.cross_entropy(logits, y) + 0.1 * logits.logsumexp(-1).pow(2).mean())
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(logits, y), logits)
    (z_grad,) = torch.autograd.grad(loss(logits, y), logits)
    assert torch.allclose(ce_grad.sum(1), torch.zeros(5), atol=1e-7)                 # CE: no gradient along (1, ..., 1)
    assert torch.allclose(z_grad.sum(1), 2 * 0.1 * logits.logsumexp(-1).detach() / 5, atol=1e-6)
    with pytest.raises(ValueError, match="coefficient=-1"):
        I.ZLoss(-1)


def test_a_short_run_records_one_value_per_step_and_clips_at_max_norm():
    X, y = data(64)
    run = I.train_tiny_transformer(X, y, lr=1e-2, batch_size=16, max_norm=0.5, z_loss=1e-4, **SMALL)
    assert run.history.steps == 4 and run.test_accuracy is None and run.history.max_norm == 0.5
    assert all(len(getattr(run.record, name)) == 4 for name in I.LogitRecorder.NAMES)
    assert run.history.clipped == [norm > 0.5 for norm in run.history.grad_norm]
    curves = run.curves()
    assert curves["loss"] == run.history.loss and curves["max_logit"] == run.record.max_logit
    scored = I.train_tiny_transformers(X, y, {"a": {}}, validation=(X, y), progress=False, lr=1e-2, **SMALL)["a"]
    assert 0 <= scored.test_accuracy <= 1
    assert I.steps_alike(run.history, run.history) == 4


def test_training_refuses_bad_options(raises_bad):
    X, y = data(16)
    with raises_bad("z_loss", -0.1):
        I.train_tiny_transformer(X, y, lr=1e-2, z_loss=-0.1, **SMALL)
    with pytest.raises(ValueError, match="LogitRecorder reads a TinyTransformer"):
        gc.fit(gc.MLP(in_features=28, width=8, depth=1), X, y, epochs=1, batch_size=8, lr=0.1,
               callbacks=[I.LogitRecorder()])


def test_the_gradient_rms_by_width_is_the_rms_of_every_parameters_gradient():
    X, y = data()
    found = I.gradient_rms_by_width(X, y, [8, 16], seed=3, depth=1, heads=2, tokens=7, token_size=4)
    gc.set_seed(3)
    model = I.TinyTransformer(d_model=16, ffn=32, depth=1, heads=2, tokens=7, token_size=4)
    F.cross_entropy(model(X), y).backward()
    rms = torch.cat([p.grad.flatten() for p in model.parameters()]).pow(2).mean().sqrt().item()
    assert len(found) == 2 and math.isclose(found[1], rms, rel_tol=1e-5)
    with pytest.raises(ValueError, match="widths"):
        I.gradient_rms_by_width(X, y, [])


def test_adams_first_step_is_g_over_g_plus_eps_and_falls_below_rms_over_eps():
    torch.manual_seed(0)
    model = I.TinyTransformer(**SMALL)
    before = [p.detach().clone() for p in model.parameters()]
    X, y = data()
    found = I.adam_step_share(model, X, y, [1e-12, 1e-3, 1.0], lr=1e-3)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))   # steps taken on copies
    assert found["layers"] == [name for name, _ in model.named_layers()]
    for eps in (1e-12, 1e-3, 1.0):
        for share, formula, rms in zip(found["share"][eps], found["formula"][eps], found["grad_rms"]):
            assert math.isclose(share, formula, rel_tol=1e-3, abs_tol=1e-6)
            assert share <= (1 + 1e-5) * rms / eps
    assert min(found["share"][1e-12]) > 0.99 and max(found["share"][1.0]) < 0.1
    with pytest.raises(ValueError, match="TinyTransformer"):
        I.adam_step_share(torch.nn.Linear(2, 2), X, y, [1e-8])
    with pytest.raises(ValueError, match=r"eps_values\[i\]=0"):
        I.adam_step_share(model, X, y, [0])


def test_the_largest_adam_update_after_a_quiet_period():
    assert math.isclose(I.largest_adam_update(0.9, 0.999), 0.1 / math.sqrt(0.001))
    assert math.isclose(I.largest_adam_update(0.9, 0.95), 0.4472135955, rel_tol=1e-9)
    assert math.isclose(I.largest_adam_update(0.9, 0.99), 1.0)
    assert math.isclose(I.largest_adam_update(0.9, 0.999, step=1), 1.0)   # Adam's first step moves by lr
    with pytest.raises(ValueError, match="beta2=1"):
        I.largest_adam_update(0.9, 1)
    with pytest.raises(ValueError, match="step=0"):
        I.largest_adam_update(step=0)


@pytest.mark.parametrize("beta2", [0.95, 0.999])
def test_torchs_adam_takes_the_predicted_step_at_the_large_gradient(beta2):
    run = I.adam_spike(beta2, quiet_steps=500, after=5, seed=1)
    assert len(run["update"]) == len(run["loss"]) == 506 and run["spike_step"] == 501
    assert math.isclose(run["update"][500], I.largest_adam_update(0.9, beta2, step=501), rel_tol=0.01)
    assert math.isclose(run["update"][0], 1.0, rel_tol=1e-3)   # the first step: lr * g / (|g| + eps)
    assert max(run["loss"][500:]) > 100 * max(run["loss"][400:500])
    with pytest.raises(ValueError, match="quiet_steps=0"):
        I.adam_spike(beta2, quiet_steps=0)


def test_the_spike_threshold_is_a_multiple_of_the_median_and_refuses_empty_records(raises_bad):
    assert I.spike_threshold([1.0, 2.0, 3.0, 100.0], factor=4) == 10.0
    assert I.spike_threshold([1.0, float("nan"), 3.0]) == 10.0
    with pytest.raises(ValueError, match="grad_norms"):
        I.spike_threshold([])
    with pytest.raises(ValueError, match="grad_norms"):
        I.spike_threshold(["a"])
    with raises_bad("factor", 0.5):
        I.spike_threshold([1.0], factor=0.5)


def test_steps_alike_counts_the_shared_first_steps():
    a, b = gc.History(loss=[1.0, 2.0, 3.0], grad_norm=[1.0, 1.0, 1.0]), gc.History(loss=[1.0, 2.0, 4.0],
                                                                                   grad_norm=[1.0, 1.0, 1.0])
    assert I.steps_alike(a, b) == 2 and I.steps_alike(a, a) == 3
