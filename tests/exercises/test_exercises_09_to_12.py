"""The exercises of notebooks 09-12: each answer derived again from torch and the package, and each
check that runs something quick, seeded and without side effects on the learner's session."""

import copy
import math
import random
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check
from gradcourse.exercises.judging import per_layer_factor

RUNS_SOMETHING = ["09.1", "09.3", "10.2", "10.3", "11.1", "11.2", "11.3", "12.1", "12.3"]


def reference(exercise_id):
    return EXERCISES[exercise_id].reference()


def _seeded(seed, **options):
    with gc.runtime.generators_restored():
        torch.manual_seed(seed)
        return gc.MLP(**options)


@pytest.mark.parametrize("exercise_id", RUNS_SOMETHING)
def test_a_check_that_runs_something_is_quick_and_leaves_every_generator_alone(exercise_id):
    answer = reference(exercise_id)
    parameters = [p.detach().clone() for p in answer.parameters()] if isinstance(answer, torch.nn.Module) else []
    buffers = [b.clone() for b in answer.buffers()] if isinstance(answer, torch.nn.Module) else []
    check(exercise_id, answer)   # the first call may load MNIST and build torch's first optimizer
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    threads = torch.get_num_threads()
    gc.use_cpus()                # as every notebook does: on a shared 2-core machine, 2 threads are far slower than 1
    try:
        start = time.perf_counter()
        assert check(exercise_id, answer)
        assert time.perf_counter() - start < 5   # a guard against a check that trains long; under 0.3 s on an idle CPU
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])
    if parameters:
        assert all(torch.equal(p, q) and q.grad is None for p, q in zip(parameters, answer.parameters()))
        assert all(torch.equal(b, c) for b, c in zip(buffers, answer.buffers()))


@pytest.mark.parametrize("exercise_id", RUNS_SOMETHING)
def test_a_check_that_runs_something_gives_the_same_verdict_twice(exercise_id, capsys):
    answer = reference(exercise_id)
    check(exercise_id, answer)
    first = capsys.readouterr().out
    check(exercise_id, answer)
    assert capsys.readouterr().out == first


# ---------------------------------------------------------------- notebook 09

def test_09_1_batchnorm_uses_the_biased_batch_variance():
    z = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    by_hand = ((z - z.mean()) / z.var(unbiased=False).sqrt())[2].item()
    assert by_hand == pytest.approx(3 / math.sqrt(14 / 3), rel=1e-12)
    assert reference("09.1") == pytest.approx(by_hand, rel=1e-5)   # BatchNorm's eps = 1e-5 on a variance of 4.7
    assert not check("09.1", ((z - z.mean()) / z.std())[2].item())   # the unbiased variance is a typical mistake


def test_09_2_an_sgd_step_behind_batchnorm_lengthens_the_weights_by_pythagoras():
    model = _seeded(0, width=100, depth=3, activation="sigmoid", init="normal", init_scale=0.1, norm="batch").double()
    X, y = gc.load_mnist("train", limit=256)
    W = model.blocks[0].linear.weight
    with torch.no_grad():
        W.mul_(3.0 / W.norm())                                  # ||W|| = 3
    grad, = torch.autograd.grad(F.cross_entropy(model(X.double()), y), W)
    assert abs((grad * W).sum().item()) < 1e-6 * grad.norm().item() * 3   # orthogonal to W, up to BatchNorm's eps
    lr = 4.0 / grad.norm().item()                               # a step of length 4, as 0.5 * 8
    assert torch.linalg.vector_norm(W.detach() - lr * grad).item() == pytest.approx(reference("09.2"), rel=1e-6)


def test_09_3_max_norm_at_sqrt_2_keeps_the_signal_and_cuts_every_row():
    for seed in range(3):
        model = _seeded(seed, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
        rows = [layer.weight.norm(dim=1).min().item() for layer in model.hidden_linears()]
        assert min(rows) > math.sqrt(2)                         # every row is longer than the bound, so it is cut
        gc.normalization.constrain_weights_(model, "max_norm", max_norm=math.sqrt(2))
        assert max(gc.normalization.weight_norms(model)["max_row_norm"]) == pytest.approx(math.sqrt(2), rel=1e-5)
        assert abs(per_layer_factor(model) - 1) < 0.05
    one = _seeded(0, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
    gc.normalization.constrain_weights_(one, "max_norm", max_norm=1.0)
    assert per_layer_factor(one) == pytest.approx(math.sqrt(0.5), rel=0.05)   # the notebook's c = 1
    weight_norm = _seeded(0, width=128, depth=10, activation="relu", init="kaiming", init_scale=1.5)
    gc.normalization.constrain_weights_(weight_norm, "weight_norm")
    assert "max-norm constraint" in check("09.3", weight_norm).message


# ---------------------------------------------------------------- notebook 10

def _adam_step(gradient, lr=1e-3):
    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=lr)
    parameter.grad = torch.full_like(parameter, gradient)
    optimizer.step()
    return parameter.item()


def test_10_1_the_first_step_is_torch_adams():
    assert _adam_step(1e-7) == pytest.approx(reference("10.1"), rel=1e-9)
    assert optimizer_defaults() == (0.9, 0.999, gc.optimization.ADAM_EPS)


def optimizer_defaults():
    group = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    return (*group["betas"], group["eps"])


def test_10_2_the_learning_rate_is_the_ceiling_formula_inverted():
    model = _seeded(0, width=128, depth=5, activation="sigmoid")
    ceiling = gc.optimization.adam_ratio_ceiling(model, reference("10.2"))
    assert all(c == pytest.approx(1e-3, rel=0.05) for c in ceiling[1:])   # lr / rms(W), rms(W) about 1/sqrt(384)
    assert ceiling[0] == pytest.approx(1e-3 * math.sqrt(784 / 128), rel=0.05)
    assert check("10.2", 5e-5) and not check("10.2", 1e-3 / math.sqrt(3 * 784))


def test_10_3_a_gradient_at_eps_over_s_loses_half_its_step():
    s, eps, g = 1e-4, gc.optimization.ADAM_EPS, 1e-4
    assert _adam_step(s * g) / _adam_step(g) == pytest.approx(reference("10.3"), rel=1e-12)
    assert reference("10.3") == pytest.approx((g + eps) / (g + eps / s), rel=1e-9)
    assert _adam_step(s * g) == pytest.approx(-1e-3 * g / (g + eps / s), rel=1e-9)   # the step with eps/s


# ---------------------------------------------------------------- notebook 11

def test_11_1_1e_minus_7_rounds_up_to_two_subnormal_steps():
    tiny = torch.finfo(torch.float16).smallest_normal * 2 ** -10   # 2^-24
    assert tiny == 2.0 ** -24 and 1.5 < 1e-7 / tiny < 2.5
    assert torch.tensor(1e-7, dtype=torch.float64).half().item() == reference("11.1") == 2.0 ** -23


def test_11_2_the_largest_safe_power_of_two_is_cast_sweeps():
    X, y = gc.load_mnist("train", limit=256)
    with gc.runtime.generators_restored():
        gradients = gc.at_init.layer_statistics(X, y, 10, "sigmoid", "default", width=128, seed=0)["gradients"]
    sweep = gc.precision.cast_sweep(gradients, range(16, 32))
    assert reference("11.2") == 2.0 ** sweep["largest_safe"] == 2.0 ** 29
    at = {k: i for i, k in enumerate(sweep["log2_scales"])}
    assert max(layer[at[22]] for layer in sweep["flushed"]) < 0.01 < max(layer[at[20]] for layer in sweep["flushed"])
    assert check("11.2", 2 ** 22) and not check("11.2", 2 ** 20)
    assert check("11.2", 65504 / max(g.abs().max().item() for g in gradients))   # right at float16's largest value


def test_11_3_the_scale_follows_gradscalers_rules():
    scale, clean, used = 2.0 ** 16, 0, []
    for step in range(12):
        used.append(scale)
        if step == 3:
            scale, clean = scale / 2, 0     # overflow: skip, back off, reset the count
        else:
            clean += 1
            if clean == 4:
                scale, clean = scale * 2, 0
    trace = gc.precision.grad_scaler_trace(steps=12, overflow_steps=(3,), init_scale=2.0 ** 16, growth_interval=4)
    assert [row["scale"] for row in trace] == used and used[-1] == reference("11.3") == 2.0 ** 16


# ---------------------------------------------------------------- notebook 12

def test_12_1_the_second_layer_measures_sqrt_of_128_over_2():
    assert reference("12.1") == pytest.approx(math.sqrt(128 / 2), rel=0.1)
    for seed in range(1, 3):
        assert EXERCISES["12.1"].judge.expected(seed) == pytest.approx(8.0, rel=0.1)


def test_12_2_the_logits_spread_is_the_statements_and_the_loss_follows():
    X, y = gc.load_mnist("train", limit=256)
    model = _seeded(0, depth=8, width=128, activation="relu", init="kaiming")
    with torch.no_grad():
        assert model(X).std().item() == pytest.approx(1.77, abs=0.005)    # section 3's logits at seed 0
        model.output.weight.mul_(0.1)
        measured = F.cross_entropy(model(X), y).item()
    assert measured == pytest.approx(reference("12.2"), abs=0.01)          # 2.313 against the expansion's 2.318


def test_12_3_every_batchnorm_repair_passes_and_slower_ones_are_told_why():
    shape = dict(depth=8, width=128, activation="sigmoid", norm="batch")
    for seed, init in [(1, "normal"), (2, "xavier"), (3, "kaiming")]:
        assert check("12.3", _seeded(seed, **shape, init=init))
    pre = check("12.3", _seeded(0, depth=8, width=128, activation="sigmoid", init="xavier", residual="pre"))
    assert not pre and "no symptom" in pre.message and "too slowly" in pre.message


def test_12_3_trains_a_copy_and_keeps_the_learners_batchnorm_statistics():
    model = reference("12.3")
    before = copy.deepcopy(model.state_dict())
    assert check("12.3", model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
