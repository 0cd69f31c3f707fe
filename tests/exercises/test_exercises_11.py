"""Notebook 11's exercises (gradcourse.exercises.notebook_11), derived again: 1e-7 in float16, the largest safe
loss scale from cast_sweep, and GradScaler's rules."""

import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference


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
    trace = gc.precision.grad_scaler_trace(steps=12, overflow_steps=(3,), loss_scale=2.0 ** 16, growth_interval=4)
    assert [row["scale"] for row in trace] == used and used[-1] == reference("11.3") == 2.0 ** 16
