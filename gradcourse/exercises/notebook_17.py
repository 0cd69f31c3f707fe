"""Exercises of notebook 17, Instabilities at scale, reproduced small."""

from __future__ import annotations

import math

import torch

from ..core import _checks
from ..lessons.instabilities import largest_adam_update, spike_threshold
from .judging import Exercise, Number

__all__ = ["EXERCISES", "gradient_norm_records"]

_BOUND = Number(
    24.0,
    explain="1.5 * 2 * sqrt(64) = 24: each normalized vector has length sqrt(d_h) = 8 before its gains, so "
            "|q.k| <= (1.5 * 8)(2 * 8) = 192, and dividing by sqrt(d_h) = 8 leaves 24.",
    hint="a LayerNorm output without bias is gamma times a vector of mean 0 and rms 1, whose length is sqrt(d_h); "
         "apply Cauchy-Schwarz to q.k, then divide by sqrt(d_h).",
    mistakes=[(192.0, "that is the bound on q.k itself: the logit divides it by sqrt(d_h) = 8."),
              (3.0, "a normalized vector has rms 1 per entry, so its length is sqrt(d_h) = 8, not 1."),
              (8.0, "the gains multiply the normalized q and k: the bound grows with max|gamma_q| max|gamma_k|."),
              (0.375, "you divided by sqrt(d_h) twice; q.k <= 1.5 * 2 * d_h, and the logit divides that by sqrt(d_h) once.")])

_LARGEST = Number(
    largest_adam_update(0.9, 0.99),
    explain="(1 - 0.9) / sqrt(1 - 0.99) = 0.1 / 0.1 = 1: one large gradient moves its weight by a full learning "
            "rate, as far as a gradient that had pointed the same way for many steps.",
    hint="after the quiet steps m and v are about 0; one gradient G makes m = (1 - beta1) G and v = (1 - beta2) G^2.",
    mistakes=[(10.0, "Adam divides by the square root of v = (1 - beta2) G^2: sqrt(0.01) = 0.1, not 0.01."),
              (0.1, "the step divides m = 0.1 G by sqrt(v) = sqrt(0.01) |G| = 0.1 |G|."),
              (largest_adam_update(0.9, 0.999), "that is beta2 = 0.999, PyTorch's default; here beta2 = 0.99."),
              (largest_adam_update(0.9, 0.95), "that is beta2 = 0.95; here beta2 = 0.99.")])

_SCALES = (1e-3, 1.0, 40.0)
_STEPS, _SPIKES = 240, (60, 131, 150, 201)


def gradient_norm_records():
    """Three gradient-norm traces of 240 steps each, as ``History.grad_norm`` holds them, at scales 1e-3, 1
    and 40: a body that falls by half over the run with 25% noise (log-normal), and four spikes 10 to 40
    times the steps around them at steps 60, 131, 150 and 201. Drawn from a fixed seed; returns
    ``[(norms, spike_steps)]`` (spike steps 1-based)."""
    generator = torch.Generator().manual_seed(17)
    records = []
    for scale in _SCALES:
        trend = torch.linspace(1.0, 0.5, _STEPS, dtype=torch.float64)
        norms = scale * trend * torch.exp(0.25 * torch.randn(_STEPS, generator=generator, dtype=torch.float64))
        for step, factor in zip(_SPIKES, (10.0, 40.0, 15.0, 25.0)):
            norms[step - 1] = scale * trend[step - 1] * factor
        records.append((norms.tolist(), _SPIKES))
    return records


def _judge_threshold(answer):
    if not callable(answer) or isinstance(answer, torch.nn.Module):
        return False, (f"give a function of a gradient-norm record that returns a threshold (got "
                       f"{_checks.describe(answer)}); the three records differ in scale by 40,000 times, so no single "
                       "number fits them all.")
    for k, (norms, spikes) in enumerate(gradient_norm_records(), 1):
        try:
            threshold = float(answer(list(norms)))
        except Exception as error:   # a learner's function must not crash the check
            return False, f"your function failed on record {k}: {type(error).__name__}: {error}."
        if not (math.isfinite(threshold) and threshold > 0):
            return False, f"your function returned {threshold!r} on record {k}; a threshold is a positive number."
        missed = [s for s in spikes if norms[s - 1] <= threshold]
        ordinary = [v for i, v in enumerate(norms, 1) if i not in spikes]
        share = sum(v > threshold for v in ordinary) / len(ordinary)
        if missed:
            return False, (f"on record {k} the threshold {threshold:.3g} lets the spikes at steps {missed} through: "
                           "the largest norm, or a high quantile, is set by the spikes themselves, so it clips nothing.")
        if share > 0.05:
            return False, (f"on record {k} the threshold {threshold:.3g} clips {share:.0%} of the ordinary steps: the "
                           "median or the mean lies inside the body of ordinary steps; go a few times above it.")
    return True, ("every spike of the three records is clipped and at most 5% of their ordinary steps: a few times "
                  "the median follows the record's scale, and the spikes do not pull the median up.")


EXERCISES = [
    Exercise("17.1", "compute",
             "With QK-LayerNorm (no bias), d_h = 64, max|gamma_q| = 1.5 and max|gamma_k| = 2: the largest possible "
             "|attention logit| q.k / sqrt(d_h)?",
             _BOUND, lambda: 24.0, r"""
A LayerNorm without bias maps $q$ to $\hat q = \gamma_q \odot u$ with $u = (q - \mu)/\sigma$: mean 0 and root-mean-square 1
over its $d_h$ entries, so $\lVert u\rVert = \sqrt{d_h}$ and $\lVert \hat q\rVert \le \max|\gamma_q|\,\sqrt{d_h}$. By Cauchy–Schwarz
$$\frac{|\hat q\cdot\hat k|}{\sqrt{d_h}} \le \frac{\lVert\hat q\rVert\,\lVert\hat k\rVert}{\sqrt{d_h}}
\le \max|\gamma_q|\,\max|\gamma_k|\,\sqrt{d_h} = 1.5\cdot 2\cdot 8 = 24 .$$
It is reached when the gains are constant and $u_q$, $u_k$ point the same way. The logits can now grow only as fast as
the gains, not with the square of every query and key weight.
"""),
    Exercise("17.2", "compute",
             "Adam with beta1 = 0.9, beta2 = 0.99, after a long run of tiny gradients, meets one large gradient: "
             "how large is that step, in units of the learning rate?",
             _LARGEST, lambda: largest_adam_update(0.9, 0.99), r"""
After a long run of gradients much smaller than the coming one, $m \approx 0$ and $v \approx 0$ (and the bias corrections are
$\approx 1$). One gradient $G$ makes $m = (1-\beta_1)G$ and $v = (1-\beta_2)G^2$, so the step is
$$\eta\,\frac{m}{\sqrt v + \epsilon} \approx \eta\,\frac{(1-\beta_1)\,G}{\sqrt{1-\beta_2}\,|G|} = \eta\,\frac{0.1}{\sqrt{0.01}} = \eta .$$
For $\beta_2 = 0.999$ it is $3.16\,\eta$, for $0.95$ it is $0.45\,\eta$: the larger $\beta_2$, the slower $v$ notices the new
scale, and the larger the step it lets through.
```python
answer = gc.instabilities.largest_adam_update(0.9, 0.99)
```
"""),
    Exercise("17.3", "build",
             "Write threshold(grad_norms) that chooses a clipping threshold from a gradient-norm record: it must "
             "clip every spike and at most 5% of the ordinary steps, on records of any scale.",
             _judge_threshold, lambda: spike_threshold, r"""
A spike is a step far above the *typical* one, so measure the typical one with a statistic the spikes cannot move: the
median. A few times the median clips the spikes and, unless the ordinary steps spread over a factor of a few, none of
them; it follows the record's scale, which a fixed number cannot. The maximum and high quantiles are set by the spikes
themselves, and the median or the mean alone lie inside the body of ordinary steps.
```python
def threshold(grad_norms):
    return 5 * torch.tensor(grad_norms).median().item()

answer = threshold   # or gc.instabilities.spike_threshold, which is 5 times the median
```
""", ((lambda: max, "clips nothing"), (lambda: (lambda norms: torch.tensor(norms).median().item()), "ordinary steps"),
      (lambda: 1.0, "no single number"))),
]
