"""Figures of training instabilities (notebook 17): the attention logits and their entropy over the
steps, a quantity per step on a linear axis (such as log Z), Adam's first step against its eps, and
Adam's update and the loss around one large gradient.
"""

from __future__ import annotations

import math


from ...core import _checks
from .common import OKABE_ITO, RUN_MARKERS, as_runs, closes_on_error, finish, positive, subplots

__all__ = ["plot_adam_spike", "plot_attention_logits", "plot_over_steps", "plot_update_share"]

_LINES = ("-", "--", ":", "-.")


def _style(i, points):
    """The i-th series' colour, line style and a few markers (about eight over its ``points``)."""
    return dict(color=OKABE_ITO[i % len(OKABE_ITO)], linestyle=_LINES[i % len(_LINES)],
                marker=RUN_MARKERS[i % len(RUN_MARKERS)], markevery=max(1, points // 8), markersize=4)


def _series(runs, keys, optional=()):
    """``{label: {key: [floats]}}`` checked: a non-empty dict whose runs each hold every key of ``keys``
    (and may hold those of ``optional``)."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs={_checks.describe(runs)} is not allowed; it must be a non-empty dict {{label: {{...}}}}")
    found = {}
    for label, run in runs.items():
        if not isinstance(run, dict) or not set(keys) <= set(run):
            raise ValueError(f"runs[{label!r}]={_checks.describe(run)} is not allowed; it must be a dict with "
                             f"the keys {', '.join(keys)}")
        found[label] = {key: as_runs(run[key], key)[None] for key in (*keys, *optional) if key in run}
    return found


@closes_on_error
def plot_attention_logits(runs, uniform_entropy=None, title=None):
    """Three panels against the training step: the largest ``|attention logit|`` (log scale), the smallest
    mean attention entropy over the blocks (``uniform_entropy``, e.g. ln(tokens), drawn dotted) and the
    training loss. ``runs`` is ``{label: {"max_logit": [...], "entropy": [...], "loss": [...]}}``; a run
    may add ``"bound"``, its QK-LayerNorm bound on the logits per step, drawn thin and dotted in its colour
    (infinite values, a run without QK-LayerNorm, are left out)."""
    runs = _series(runs, ("max_logit", "entropy", "loss"), optional=("bound",))
    fig, axes = subplots(1, 3, figsize=(11, 3.6))
    for i, (label, run) in enumerate(runs.items()):
        style = _style(i, len(run["loss"]))
        for ax, key in zip(axes, ("max_logit", "entropy", "loss")):
            values = positive(run[key]) if key == "max_logit" else run[key]
            ax.plot(range(1, len(values) + 1), values, label=label, **style)
        bound = positive(run.get("bound", []))
        if any(math.isfinite(v) for v in bound):
            axes[0].plot(range(1, len(bound) + 1), bound, color=style["color"], linestyle=(0, (1, 1 + i)), linewidth=1.5,
                         label=f"{label}: bound max|γ_q| max|γ_k| √d_h")
    if uniform_entropy is not None:
        uniform = _checks.number("uniform_entropy", uniform_entropy, minimum=0)
        axes[1].axhline(uniform, color="black", linestyle=":", linewidth=1, label=f"uniform attention, {uniform:.2f}")
    axes[0].set_yscale("log")
    for ax, ylabel in zip(axes, ("largest |attention logit| (log scale)", "attention entropy (nats)",
                                 "training loss")):
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    extra = axes[1].get_legend_handles_labels()
    axes[2].legend(handles + extra[0][len(runs):], labels + extra[1][len(runs):], loc="upper left",
                   bbox_to_anchor=(1.02, 1.0))
    return finish(fig, title)


@closes_on_error
def plot_over_steps(values, ylabel, title=None, hline=None, hline_label=None):
    """One line per run against the training step on a linear axis (values that may be negative or 0,
    such as log Z): ``values`` is a sequence or ``{label: sequence}``; ``hline`` a dotted reference line."""
    runs = as_runs(values)
    fig, ax = subplots(figsize=(7, 3.8))
    for i, (label, seq) in enumerate(runs.items()):
        ax.plot(range(1, len(seq) + 1), seq, label=label, **_style(i, len(seq)))
    if hline is not None:
        ax.axhline(_checks.number("hline", hline), color="black", linestyle=":", linewidth=1,
                   label=hline_label or f"{hline:g}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if any(label is not None for label in runs) or hline is not None:
        ax.legend()
    return finish(fig, title)


@closes_on_error
def plot_update_share(eps_values, share, grad_rms, title=None):
    """Adam's first step as a share of the learning rate (``rms(step) / lr``) against its ``eps``, log-log,
    one line per layer: ``share`` is ``{layer: [one value per eps]}``, ``grad_rms`` ``{layer: rms of its
    gradient}``, drawn as a thin vertical line in the layer's colour and style."""
    eps_values = [_checks.number("eps_values[i]", e, minimum=0, strict_minimum=True) for e in eps_values]
    runs = as_runs(share, "share")
    if not isinstance(grad_rms, dict) or set(grad_rms) != set(runs):
        raise ValueError(f"grad_rms={_checks.describe(grad_rms)} is not allowed; it must map the layers of share, "
                         f"{list(runs)}, to their gradient's rms")
    fig, ax = subplots(figsize=(7.5, 4))
    for i, (layer, seq) in enumerate(runs.items()):
        if len(seq) != len(eps_values):
            raise ValueError(f"share[{layer!r}] has {len(seq)} values for {len(eps_values)} eps values; they must match")
        style = _style(i, len(seq)) | {"markevery": 1}
        ax.plot(eps_values, positive(seq), label=f"{layer} (gradient rms {grad_rms[layer]:.1e})", **style)
        ax.axvline(grad_rms[layer], color=style["color"], linestyle=style["linestyle"], linewidth=0.8, alpha=0.7)
    ax.axvline(1e-8, color="black", linestyle=":", linewidth=1, label="torch's default eps, 1e-8")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Adam's eps (log scale); thin vertical lines: each layer's gradient rms")
    ax.set_ylabel("first step rms / learning rate")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left")
    return finish(fig, title)


@closes_on_error
def plot_adam_spike(runs, bounds=None, spike_step=None, before=20, title=None):
    """Adam around one large gradient: ``|update| / lr`` (left, log scale) and the loss (right, log scale)
    per step, from ``before`` steps before ``spike_step`` to the end. ``runs`` is ``{label: {"update": [...],
    "loss": [...]}}``; ``bounds`` ``{label: largest update}`` drawn dashed in the run's colour."""
    runs = _series(runs, ("update", "loss"))
    bounds = {} if bounds is None else bounds
    fig, (ax_update, ax_loss) = subplots(1, 2, figsize=(11, 3.8))
    for i, (label, run) in enumerate(runs.items()):
        start = 0 if spike_step is None else max(0, _checks.integer("spike_step", spike_step, minimum=1) - 1 - before)
        steps = range(start + 1, len(run["update"]) + 1)
        style = _style(i, len(steps))
        ax_update.plot(steps, positive(run["update"][start:]), label=label, **style)
        ax_loss.plot(steps, positive(run["loss"][start:]), label=label, **style)
        if label in bounds:
            ax_update.axhline(bounds[label], color=style["color"], linestyle=style["linestyle"], linewidth=1,
                              label=f"{label}: (1 - β1)/√(1 - β2) = {bounds[label]:.2f}")
    for ax, ylabel in ((ax_update, "|update| / learning rate (log scale)"), (ax_loss, "loss (log scale)")):
        if spike_step is not None:
            ax.axvline(spike_step, color="grey", linewidth=0.8, alpha=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("step (grey line: the large gradient)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax_update.get_legend_handles_labels()
    ax_loss.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, title)
