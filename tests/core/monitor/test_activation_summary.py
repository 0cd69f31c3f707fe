"""gradcourse.core.monitor.activation_summary: the statistics and histograms of many stacked activation outputs."""

import math

import pytest
import torch
from torch import nn

from gradcourse.core.monitor.activation_summary import (HISTOGRAM_RANGES, SATURATION, histogram_range, histograms,
                                                        statistics)


def _outputs():
    torch.manual_seed(0)
    outputs = torch.randn(3, 16, 5, 2)
    outputs[1] = torch.relu(outputs[1])
    outputs[1, :, 0, 0] = 0           # one unit of the second output is zero for every example
    outputs[2] = torch.tanh(3 * outputs[2])
    return outputs


def test_statistics_match_torch_output_by_output():
    outputs = _outputs()
    result = statistics(outputs, SATURATION["tanh"])
    assert result.shape == (3, 4) and result.dtype == torch.float64
    for a, (mean, std, saturated, dead) in zip(outputs, result.tolist()):
        assert mean == pytest.approx(a.mean().item(), abs=1e-6)
        assert std == pytest.approx(a.std().item(), rel=1e-5)
        assert saturated == pytest.approx((a.abs() > 0.97).float().mean().item())
        assert dead == pytest.approx(1 - a.reshape(16, -1).ne(0).any(dim=0).float().mean().item())
    assert result[1, 3].item() >= 0.1          # the zeroed unit, plus the ReLU units dead for all 16 examples


def test_statistics_of_degenerate_outputs():
    single = statistics(torch.tensor([[2.5]]))             # one entry: no std
    assert single[0, 0].item() == 2.5 and math.isnan(single[0, 1].item())
    assert math.isnan(statistics(torch.ones(2, 4))[0, 2].item())   # no saturation interval: NaN


def test_histograms_match_torch_histc():
    outputs = _outputs()
    result = histograms(outputs, -1.0, 1.0, 8)
    assert result.shape == (3, 8) and result.dtype == torch.float64
    for a, shares in zip(outputs, result):
        expected = torch.histc(a, bins=8, min=-1.0, max=1.0).double() / a.numel()
        assert torch.allclose(shares, expected)


def test_histograms_leave_out_what_lies_outside_and_nan():
    shares = histograms(torch.tensor([[0.1, 0.2, 0.9, 1.0, 5.0, -0.1, math.nan, 0.5]]), 0.0, 1.0, 2)
    assert shares.tolist() == [[2 / 8, 3 / 8]]      # 0.5 and 1.0 fall in the upper bin, as in torch.histc


def test_default_histogram_ranges_follow_the_activation():
    assert histogram_range(nn.Tanh()) == (-1.0, 1.0) and histogram_range(nn.Sigmoid()) == (0.0, 1.0)
    assert histogram_range(nn.GELU()) == (-4.0, 4.0)
    assert all(low < high for low, high in HISTOGRAM_RANGES.values())
