"""Figures of Pascanu et al.'s (2013) cliff: the loss surface, a section through it, and gradient
descent runs on it with and without clipping.
"""

from __future__ import annotations

import torch

from ...core import _checks
from ...lessons.cliff import CliffDescent, CliffSlice, CliffSurface, cliff_wall, unstable_weight
from .common import closes_on_error, finish, positive, subplots
from .style import series_styles

__all__ = ["plot_cliff_descent", "plot_cliff_section", "plot_cliff_surface"]


def _cliff_background(ax, surface, show="loss"):
    values = surface.loss if show == "loss" else surface.grad_norm
    image = ax.pcolormesh(surface.w.numpy(), surface.b.numpy(), torch.log10(values.clamp_min(1e-12)).T.numpy(),
                          shading="auto", cmap="viridis")
    ax.set_xlabel("w (recurrent weight)")
    ax.set_ylabel("b (bias)")
    ax.set_xlim(surface.w[0].item(), surface.w[-1].item())
    ax.set_ylim(surface.b[0].item(), surface.b[-1].item())
    return image


@closes_on_error
def plot_cliff_surface(surface, title=None):
    """The loss of :func:`gradcourse.lessons.cliff.cliff_surface` over the (w, b) grid (log10 colour scale),
    with the wall ``b = x0 - w sigma(x0)``, where ``w sigma'(x0) > 1``, dashed in white."""
    if not isinstance(surface, CliffSurface):
        raise ValueError(f"surface={_checks.describe(surface)} is not allowed; it must be a CliffSurface")
    fig, ax = subplots(figsize=(6.5, 4.6))
    image = _cliff_background(ax, surface)
    fig.colorbar(image, ax=ax, label="log10 loss")
    w_start = max(unstable_weight(surface.x0), surface.w[0].item())
    if w_start < surface.w[-1].item():
        wall_w = [w_start + (surface.w[-1].item() - w_start) * i / 50 for i in range(51)]
        ax.plot(wall_w, [cliff_wall(w, surface.x0) for w in wall_w], "--", color="white", linewidth=1,
                label=f"the wall: x_0 = {surface.x0:g} is an unstable fixed point")
        ax.legend(loc="upper right")
    ax.set_title(title or f"L(w, b) = (x_{surface.steps} - {surface.target:g})^2,  x_t = w sigma(x_(t-1)) + b")
    return finish(fig)


@closes_on_error
def plot_cliff_section(section, title=None):
    """Loss (left) and gradient norm (right) of a :class:`~gradcourse.lessons.cliff.CliffSlice` against the
    distance from the wall, log-log, one line for each side of the wall."""
    if not isinstance(section, CliffSlice):
        raise ValueError(f"section={_checks.describe(section)} is not allowed; it must be a CliffSlice")
    fig, axes = subplots(1, 2, figsize=(11, 3.8))
    above = section.offsets > 0
    sides = ((above, "above the wall (b larger)"), (~above, "below the wall (b smaller)"))
    looks = series_styles([name for _, name in sides], points=len(section.offsets) // 2)
    for ax, values, label in zip(axes, (section.loss, section.grad_norm), ("loss L", "||grad L||")):
        for side, name in sides:
            ax.plot(section.offsets[side].abs().tolist(), positive(values[side].tolist()), label=name, **looks[name])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the wall in b")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"Approaching the wall at w = {section.w:g}")
    return finish(fig)


@closes_on_error
def plot_cliff_descent(surface, runs, huge_step=1.0, title=None):
    """Gradient-descent paths on the cliff's loss surface, one panel per ``{label: CliffDescent}``.

    Start points are black dots; a run that took at least one step longer than ``huge_step`` is
    drawn in red, the others in white. Paths leave the frame where a step threw them out of it.
    """
    if not isinstance(surface, CliffSurface):
        raise ValueError(f"surface={_checks.describe(surface)} is not allowed; it must be a CliffSurface")
    if not isinstance(runs, dict) or not runs or not all(isinstance(r, CliffDescent) for r in runs.values()):
        raise ValueError(f"runs={_checks.describe(runs)} is not allowed; it must be a non-empty dict {{label: CliffDescent}}")
    huge_step = _checks.number("huge_step", huge_step, minimum=0, strict_minimum=True)
    fig, axes = subplots(1, len(runs), figsize=(min(5.5 * len(runs), 11), 4.6), squeeze=False)
    for ax, (label, run) in zip(axes[0], runs.items()):
        _cliff_background(ax, surface)
        huge = run.huge_steps(huge_step)
        for path, is_huge in zip(run.paths.numpy(), huge.tolist()):
            ax.plot(path[:, 0], path[:, 1], color="tab:red" if is_huge else "white", linewidth=0.8, alpha=0.9)
        ax.plot(run.paths[:, 0, 0].numpy(), run.paths[:, 0, 1].numpy(), "k.", markersize=3)
        ax.set_title(f"{label}: {int(huge.sum())} of {len(huge)} runs took a step > {huge_step:g}")
    return finish(fig, title)
