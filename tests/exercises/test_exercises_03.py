"""Notebook 03's exercises (gradcourse.exercises.notebook_03), derived again: the gain sweep measures the predicted
first-to-last ratio."""

import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES


def test_03_1_the_sweep_measures_the_predicted_ratio():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g)
    norms = gc.at_init.scale_sweep(X, y, [1.25], depth=30, width=64)[1.25]
    measured = norms[0] / norms[-1]
    assert EXERCISES["03.1"].reference() / 3 < measured < EXERCISES["03.1"].reference() * 3, measured
