"""Exercises of notebook 11, mixed precision."""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from ..core import _checks
from ..lessons.at_init import layer_statistics
from ..core.data import load_mnist
from ..lessons.precision import flushed_and_overflowed, grad_scaler_trace
from ..core.runtime import generators_restored
from .judging import Exercise, Number, as_numbers

__all__ = ["EXERCISES"]

_TINY = 2.0 ** -24   # float16's smallest subnormal


def _cast_to_float16():
    return torch.tensor(1e-7).to(torch.float16).item()


_SUBNORMAL = Number(
    _cast_to_float16,
    explain="measured: torch.tensor(1e-7).half() is {expected} = 2^-23; subnormals are multiples of 2^-24 = 5.96e-8, "
            "1e-7 is 1.68 of them, and the nearest multiple is 2.",
    hint="below 2^-14 float16 has subnormals, the multiples m * 2^-24 (m = 1 ... 1023); round 1e-7 to the nearest one.",
    mistakes=[(0.0, "1e-7 is below the smallest normal number 2^-14, but not below the subnormals: only 2^-25 = 3e-8 "
                    "and less round to 0."),
              (_TINY, "1e-7 = 1.68 * 2^-24: rounding to nearest goes up to 2 * 2^-24, not down to 2^-24."),
              (1e-7, "a float16 cannot hold 1e-7 exactly: between 2^-24 and 2^-14 it holds only multiples of 2^-24."),
              (2.0 ** -14, "casting rounds to the nearest representable value; 2^-14 is the smallest normal, far away: "
                           "the subnormals lie between.")])

_DEPTH, _WIDTH, _BATCH = 10, 128, 256   # the notebook's DEPTH, WIDTH and PROBE_BATCH
_MOST_FLUSHED = 0.01


def _sigmoid_gradients(seed=0):
    """dL/dz_l of the notebook's 10-layer sigmoid network at ``seed``, as section 2 computes them; the
    random generators that :func:`~gradcourse.lessons.at_init.layer_statistics` seeds are given back as they were."""
    X, y = load_mnist("train", limit=_BATCH)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with generators_restored():
            return layer_statistics(X, y, _DEPTH, "sigmoid", "default", width=_WIDTH, seed=seed)["gradients"]
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _loss_scale(answer):
    values = as_numbers(answer, 1)
    if values is None or values[0] <= 0:
        return False, f"give the loss scale S, a positive number such as 2**10; got {_checks.describe(answer)}."
    scale = values[0]
    casts = [flushed_and_overflowed(g, "float16", scale) for g in _sigmoid_gradients()]
    flushed, overflowed = [c["flushed"] for c in casts], [c["overflowed"] for c in casts]
    worst = max(range(_DEPTH), key=flushed.__getitem__)
    measured = (f"Measured at S = {scale:.4g} (2^{math.log2(scale):.1f}): layer {worst + 1} loses {100 * flushed[worst]:.3g}% "
                f"of its gradients to 0, {100 * max(overflowed):.2g}% overflow.")
    if max(overflowed) > 0:
        return False, (f"{measured} The largest |g| times S passed 65504 and became inf; keep max|g| S below 65504 "
                       "(section 2 printed max|g| per layer).")
    if max(flushed) <= _MOST_FLUSHED:
        return True, (f"{measured} Any S from about 2^22 up to 65504 / max|g| = 2^29.2 works; 2^29, the largest power of "
                      "2 below it, flushes least.")
    if 10 <= scale <= 40 and float(scale).is_integer():
        return False, f"{measured} Give the scale S itself (2**{scale:g} = {2.0 ** scale:.4g}), not its exponent."
    if scale == 2.0 ** 16:
        return False, (f"{measured} 2^16 is GradScaler's starting scale, not the best one for these gradients: layer 1's "
                       "median gradient is about 2^-40, and S must lift most of them above 2^-25.")
    if scale < 2.0 ** 16:
        return False, (f"{measured} Too small: layer 1's median gradient is about 2^-40, and S must lift most of them "
                       "above 2^-25.")
    return False, f"{measured} Larger, still: layer 1's smallest gradients need S further up, as far as nothing overflows."


_TRACE = dict(steps=12, overflow_steps=(3,), loss_scale=2.0 ** 16, growth_interval=4)   # section 5's cell


def _last_scale():
    return grad_scaler_trace(**_TRACE)[-1]["scale"]


_SCALER = Number(
    _last_scale,
    explain="the trace's step 11 uses S = 2^16 = 65536 (measured: {expected}). Step 3 overflows and is skipped, S halves to 2^15 for "
            "step 4, steps 4-7 are four clean steps, so S doubles back to 2^16 for steps 8-11.",
    hint="follow the scale step by step: halve it after the skipped step, double it after every 4 clean steps in a row.",
    mistakes=[(2.0 ** 15, "after the backoff the scaler grows again: steps 4-7 are 4 clean steps, so S doubles for step 8."),
              (2.0 ** 17, "steps 8-11 are 4 clean steps too, but their doubling comes after step 11, for step 12."),
              (2.0 ** 18, "the overflow on step 3 resets the count and halves S: without it S would reach 2^18."),
              (2.0 ** 14, "only the overflowing step halves S; the clean steps after it double it again."),
              (16.0, "give the scale S itself (2**16 = 65536), not its exponent.")],
    rel_tol=1e-9)

EXERCISES = [
    Exercise("11.1", "compute",
             "What value does 1e-7 become when cast to float16?",
             _SUBNORMAL, lambda: 2.0 ** -23, r"""
$10^{-7}$ lies below the smallest normal number $2^{-14} \approx 6.1\times10^{-5}$, in the subnormal range, where float16 holds the
multiples $m\cdot 2^{-24}$ ($m = 1, \dots, 1023$) of $2^{-24} \approx 5.96\times10^{-8}$. In those units
$$10^{-7} / 2^{-24} \approx 1.68,$$
which rounds to the nearest integer, 2: the cast gives $2 \cdot 2^{-24} = 2^{-23} \approx 1.19\times10^{-7}$, 19% too large.
```python
torch.tensor(1e-7).half().item()    # 1.1920928955078125e-07
```
Subnormals keep small gradients alive, but with few significant bits: here only one.
"""),
    Exercise("11.2", "build",
             "Pick a loss scale S for the 10-layer sigmoid network's gradients (section 2, SEED = 0) at which no "
             "gradient overflows in float16 and no layer loses more than 1% of its gradients to 0.",
             _loss_scale, lambda: 2.0 ** math.floor(math.log2(65504 / max(g.abs().max().item() for g in _sigmoid_gradients()))),
             r"""
Two limits, both read off section 2's printout. Overflow: the largest gradient is $\max|g| \approx 1.1\times10^{-4}$ (layer 10), and
$\max|g|\,S$ must stay below 65504 (65520 already rounds to infinity), so
$$S < 65504 / (1.1\times10^{-4}) \approx 6\times10^{8} \approx 2^{29.2}.$$
Underflow: layer 1's gradients are the smallest, with a median near $2^{-40}$; at $2^{16}$ a third of them are still at or
below $2^{-25}$. Every doubling of $S$ lifts another slice above it, so take $S$ as large as overflow allows:
```python
answer = 2 ** math.floor(math.log2(65504 / max(largest)))    # 2**29
```
At $2^{29}$ one entry of 327,680 flushes and nothing overflows; from about $2^{22}$ on, no layer loses more than 1%.
Section 3 finds the same range with `cast_sweep`.
""", ((lambda: 2.0 ** 16, "starting scale"), (lambda: 2.0 ** 30, "became inf"), (lambda: 29, "not its exponent"))),
    Exercise("11.3", "predict",
             "Before running the next cell: what scale does GradScaler use at its last step, step 11 (loss_scale 2^16, "
             "growth_interval 4, an overflow at step 3)?",
             _SCALER, lambda: 2.0 ** 16, r"""
Follow the rules step by step (the scale shown is the one each step uses):

| steps | what happens | scale used |
|---|---|---|
| 0-2 | clean, 3 in a row (not yet 4) | $2^{16}$ |
| 3 | overflow: skipped, scale halved, count reset | $2^{16}$ |
| 4-7 | 4 clean steps: doubled after step 7 | $2^{15}$ |
| 8-11 | 4 clean steps: doubled after step 11 | $2^{16}$ |

So step 11 uses $2^{16} = 65536$, the scale it started with. A real run (section 7) does this at the edge of float16's
range: it climbs until one step overflows, falls back by half, and climbs again.
"""),
]
