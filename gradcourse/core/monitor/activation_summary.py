"""Summaries of activation outputs, many at once: the statistics and histograms that
:class:`~gradcourse.core.monitor.GradientMonitor` records at each step.

Outputs of one shape are stacked into one tensor ``(k, batch, ...)`` and summarized in a few tensor
operations whatever ``k``, so a monitored step pays a handful of operations, not a handful per layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATION_MODULES", "DEFAULT_HISTOGRAM_RANGE", "HISTOGRAM_RANGES", "SATURATION", "SATURATION_BY_TYPE",
           "histogram_range", "histograms", "statistics"]

ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
                      nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
                      nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink)
"""Module types whose outputs GradientMonitor summarizes as activations."""

SATURATION = {"tanh": (-0.97, 0.97), "sigmoid": (0.03, 0.97)}
"""A unit counts as saturated when its output lies outside this interval (its derivative is then tiny)."""

SATURATION_BY_TYPE = {nn.Tanh: SATURATION["tanh"], nn.Sigmoid: SATURATION["sigmoid"]}
"""The saturation interval of each activation module type that has two flat tails."""

HISTOGRAM_RANGES = {nn.Tanh: (-1.0, 1.0), nn.Hardtanh: (-1.0, 1.0), nn.Softsign: (-1.0, 1.0),
                    nn.Sigmoid: (0.0, 1.0), nn.Hardsigmoid: (0.0, 1.0), nn.ReLU: (0.0, 4.0), nn.ReLU6: (0.0, 6.0)}
"""The range a histogram of a module type's outputs covers by default: the output range of a bounded
activation; ``[0, 4]`` for ReLU (twice the standard deviation of He-initialized units); ``[-4, 4]``
(:data:`DEFAULT_HISTOGRAM_RANGE`) for any other."""

DEFAULT_HISTOGRAM_RANGE = (-4.0, 4.0)


def histogram_range(module):
    """The default ``(low, high)`` of the histograms of ``module``'s outputs (see :data:`HISTOGRAM_RANGES`)."""
    return HISTOGRAM_RANGES.get(type(module), DEFAULT_HISTOGRAM_RANGE)


def statistics(outputs, saturation=None):
    """``(mean, std, saturated, dead)`` of each of ``k`` stacked outputs ``(k, batch, ...)``, as a float64
    tensor of shape ``(k, 4)``; NaN where a statistic does not apply.

    * mean and std over all entries of an output (std with Bessel's correction, two passes:
      ``sqrt(sum (a - mean)**2 / (n - 1))``);
    * saturated: share of entries outside ``saturation = (low, high)`` (NaN when None);
    * dead: share of units (all positions but the batch dimension) that are exactly zero for every
      example of the batch: a dead ReLU passes no gradient.

    Example:
        >>> statistics(torch.tensor([[[0.0, 1.0], [0.0, 3.0]]]))
        tensor([[1.0000, 1.4142,    nan, 0.5000]], dtype=torch.float64)
    """
    k = len(outputs)
    flat = outputs.reshape(k, -1).float()
    count = flat.shape[1]
    nan = torch.full((k,), math.nan, device=flat.device)
    if count > 1:     # two passes, faster than torch.std_mean's single Welford pass on the CPU
        mean = flat.mean(dim=1, keepdim=True)
        std = torch.linalg.vector_norm(flat - mean, dim=1) / math.sqrt(count - 1)
        mean = mean.squeeze(1)
    else:
        mean, std = flat.sum(dim=1) if count else nan, nan
    saturated = nan
    if saturation is not None and count:
        saturated = ((flat < saturation[0]) | (flat > saturation[1])).sum(dim=1) / count
    dead = nan
    if outputs.dim() > 1 and outputs.shape[1] and count:
        units = flat.reshape(k, outputs.shape[1], count // outputs.shape[1])
        alive = (units.amax(dim=1) != 0) | (units.amin(dim=1) != 0)
        dead = 1 - alive.sum(dim=1) / alive.shape[1]
    return torch.stack([mean, std, saturated, dead], dim=1).double()


def histograms(outputs, low, high, bins):
    """Histogram of each of ``k`` stacked outputs ``(k, ...)`` over ``bins`` equal bins of ``[low, high]``,
    as the share of each output's entries in each bin: a float64 tensor ``(k, bins)``.

    As :func:`torch.histc`, entries outside ``[low, high]`` (and NaN) fall in no bin, and ``high`` itself
    in the last one; so a row sums to the share of entries inside the range.

    Example:
        >>> histograms(torch.tensor([[0.1, 0.2, 0.9, 5.0]]), 0.0, 1.0, 2)
        tensor([[0.5000, 0.2500]], dtype=torch.float64)
    """
    k = len(outputs)
    flat = outputs.reshape(k, -1).float()
    scaled = (flat - low) * (bins / (high - low))
    inside = (scaled >= 0) & (scaled <= bins)
    index = scaled.clamp(0, bins - 1).long() + torch.arange(k, device=flat.device).unsqueeze(1) * bins
    counts = torch.bincount(index[inside], minlength=k * bins).reshape(k, bins)
    return counts.double() / max(flat.shape[1], 1)
