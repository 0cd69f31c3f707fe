"""gradcourse.precision: casting losses, accumulation in low precision, GradScaler's trace."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from gradcourse import precision, widgets


def test_cast_losses_counts_underflow_and_overflow():
    values = torch.tensor([2.0**-26, 2.0**-20, 1.0, 1e5, 0.0])   # the 0 is not counted
    assert precision.cast_losses(values) == {"flushed": 0.25, "overflowed": 0.25}
    assert precision.cast_losses(values, scale=2.0**8) == {"flushed": 0.0, "overflowed": 0.25}
    assert precision.cast_losses(values, "bfloat16") == {"flushed": 0.0, "overflowed": 0.0}
    assert precision.cast_losses(torch.zeros(3)) == {"flushed": 0.0, "overflowed": 0.0}


def test_accumulate_loses_small_steps_in_float16_only():
    assert precision.accumulate(1.0, -1e-4, 1000, "float16") == 1.0
    assert precision.accumulate(1.0, -1e-4, 1000, "float32") == pytest.approx(0.9, abs=1e-4)
    assert precision.accumulate(1.0, -1e-3, 10, "float16") < 1.0  # a step above half the spacing survives


def test_spacing_matches_finfo():
    assert precision.spacing(1.0) == torch.finfo(torch.float16).eps
    assert precision.spacing(1.0, "bfloat16") == torch.finfo(torch.bfloat16).eps
    assert precision.spacing(0.0) == 2.0**-24  # the smallest subnormal


def test_grad_scaler_trace_backs_off_and_grows():
    trace = precision.grad_scaler_trace(steps=10, overflow_steps=(2, 3), init_scale=1024.0, growth_interval=3)
    assert [row["skipped"] for row in trace] == [False, False, True, True] + [False] * 6
    scales = [row["scale"] for row in trace]
    assert scales[:5] == [1024.0, 1024.0, 1024.0, 512.0, 256.0] and scales[7] == 512.0
    assert all(math.isfinite(row["weight"]) for row in trace)


def test_bad_arguments(raises_bad):
    with raises_bad("dtype", "float8"):
        precision.cast_losses(torch.ones(2), "float8")
    with raises_bad("scale", 0):
        precision.cast_losses(torch.ones(2), scale=0)
    with raises_bad("values", [1.0]):
        precision.cast_losses([1.0])
    with raises_bad("count", -1):
        precision.accumulate(count=-1)
    with raises_bad("growth_interval", 0):
        precision.grad_scaler_trace(growth_interval=0)
    with raises_bad("log2_scale", 41):
        widgets.precision_figure([torch.ones(2)], log2_scale=41)
    with pytest.raises(ValueError, match="gradients"):
        widgets.precision_explorer([])


def test_precision_figure_and_explorer():
    grads = [torch.full((10,), 1e-9), torch.full((10,), 1e-3)]
    fig = widgets.precision_figure(grads, log2_scale=0)
    assert isinstance(fig, Figure)
    flushed_line = fig.axes[0].get_lines()[0]
    assert list(flushed_line.get_ydata()) == [1.0, 0.0]
    assert widgets.precision_explorer(grads).__class__.__name__ == "VBox"
