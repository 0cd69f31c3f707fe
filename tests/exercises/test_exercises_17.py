"""Notebook 17's exercises (gradcourse.exercises.notebook_17), derived again from the package: the QK-LayerNorm bound
on an attention logit, Adam's step after a quiet period, and a clipping threshold chosen from a gradient-norm record.
(test_checker.py runs every exercise's reference answer, typical mistakes and junk answers.)"""

import math
import statistics

import torch

from gradcourse.exercises import EXERCISES, check
from gradcourse.exercises.notebook_17 import gradient_norm_records
from gradcourse.lessons import instabilities as I


def test_17_1_the_bound_is_reached_and_never_exceeded():
    q_norm, k_norm = torch.nn.LayerNorm(64, bias=False), torch.nn.LayerNorm(64, bias=False)
    with torch.no_grad():
        q_norm.weight.fill_(1.5)
        k_norm.weight.fill_(2.0)
    torch.manual_seed(0)
    x = torch.randn(64)
    assert math.isclose((q_norm(x) @ k_norm(x) / 8).item(), EXERCISES["17.1"].reference(), rel_tol=1e-4)
    q, k = q_norm(torch.randn(1000, 64)), k_norm(torch.randn(1000, 64))
    assert (q @ k.T / 8).abs().max().item() <= 24.0
    assert check("17.1", 1.5 * 2 * 64 ** 0.5) and not check("17.1", 1.5 * 2 * 64)


def test_17_2_torchs_adam_takes_that_step_after_a_long_quiet_period():
    run = I.adam_spike(0.99, quiet_steps=2000, after=0, curvature=0.0)
    assert math.isclose(run["update"][-1], EXERCISES["17.2"].reference(), rel_tol=1e-3)
    assert check("17.2", 0.1 / 0.01 ** 0.5) and not check("17.2", 0.1 / 0.001 ** 0.5)


def test_17_3_the_records_hold_their_spikes_and_five_times_the_median_clips_only_them():
    records = gradient_norm_records()
    assert records == gradient_norm_records()   # the same records on every call
    assert len(records) == 3
    for norms, spikes in records:
        median = statistics.median(norms)
        ordinary = [v for i, v in enumerate(norms, 1) if i not in spikes]
        assert all(norms[s - 1] > 10 * median for s in spikes) and max(ordinary) < 4 * median
    assert check("17.3", EXERCISES["17.3"].reference())
    assert check("17.3", lambda norms: 5 * torch.tensor(norms).median().item())
    assert not check("17.3", max) and not check("17.3", statistics.median) and not check("17.3", 1.0)
