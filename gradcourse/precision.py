"""Low-precision arithmetic: what fp16 and bfloat16 can hold, and what loss scaling rescues.

IEEE fp16 has 5 exponent bits (bias 15) and 10 mantissa bits: normal numbers
``(1 + m/1024) 2^(e-15)`` reach from ``2^-14`` to ``(2 - 2^-10) 2^15 = 65504``, subnormals
``(m/1024) 2^-14`` down to ``2^-24``. bfloat16 keeps fp32's 8 exponent bits (range down to
about 1e-38) with only 7 mantissa bits. Micikevicius et al. (2018), "Mixed Precision Training",
introduced fp32 master weights and loss scaling; ``torch.amp.GradScaler`` automates the scale.
"""

from __future__ import annotations

import torch

from . import _checks

LOW_PRECISION = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(name):
    return LOW_PRECISION[_checks.choice("dtype", name, tuple(LOW_PRECISION))]


def cast_losses(values, dtype="float16", scale=1.0):
    """What casting ``values * scale`` to a low-precision dtype destroys.

    Returns ``{"flushed": share, "overflowed": share}``: among the entries that are nonzero and
    finite in float32, the share that becomes exactly 0 (underflow) and the share that becomes
    infinite (overflow) after multiplying by ``scale`` and casting.
    """
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        raise ValueError(f"values={_checks._describe(values)} is not allowed; it must be a floating-point torch.Tensor")
    scale = _checks.number("scale", scale, minimum=0, strict_minimum=True)
    v = values.detach().double().flatten()
    v = v[(v != 0) & torch.isfinite(v)]
    if len(v) == 0:
        return {"flushed": 0.0, "overflowed": 0.0}
    cast = (v * scale).to(_dtype(dtype))
    return {"flushed": (cast == 0).double().mean().item(), "overflowed": torch.isinf(cast).double().mean().item()}


def accumulate(start=1.0, step=-1e-4, count=1000, dtype="float16"):
    """Add ``step`` to ``start`` ``count`` times, rounding to ``dtype`` after every addition
    (``"float32"`` allowed too): what happens to a weight updated in that precision."""
    dtypes = {**LOW_PRECISION, "float32": torch.float32}
    _checks.choice("dtype", dtype, tuple(dtypes))
    _checks.number("start", start)
    _checks.number("step", step)
    _checks.integer("count", count, minimum=0)
    value = torch.tensor(start, dtype=dtypes[dtype])
    increment = torch.tensor(step, dtype=dtypes[dtype])
    for _ in range(count):
        value = value + increment
    return value.item()


def spacing(x, dtype="float16"):
    """The gap between ``x`` and the next representable number above it in ``dtype``."""
    _checks.number("x", x)
    t = torch.tensor(x, dtype=_dtype(dtype))
    return (torch.nextafter(t, torch.tensor(float("inf"), dtype=t.dtype)) - t).item()


def grad_scaler_trace(steps=12, overflow_steps=(3,), init_scale=2.0 ** 16, growth_interval=4):
    """Drive ``torch.amp.GradScaler`` through ``steps`` steps of a one-parameter model whose
    gradient overflows on ``overflow_steps``; return one dict per step:
    ``{"step", "scale", "skipped", "weight"}`` (the scale the step used; whether the optimizer step
    was skipped; the weight after it). On an overflow the scaler skips the step and multiplies the
    scale by 0.5; after ``growth_interval`` clean steps in a row it multiplies it by 2.
    """
    _checks.integer("steps", steps, minimum=1)
    overflow_steps = set(overflow_steps)
    for s in overflow_steps:
        _checks.integer("overflow_steps[i]", s, minimum=0)
    _checks.number("init_scale", init_scale, minimum=0, strict_minimum=True)
    _checks.integer("growth_interval", growth_interval, minimum=1)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = torch.optim.SGD([weight], lr=0.01)
    trace = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = weight.sum() * (1e38 if step in overflow_steps else 1.0)   # 1e38 times the scale overflows
        scaler.scale(loss).backward()
        before, scale = weight.item(), scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        trace.append({"step": step, "scale": scale, "skipped": weight.item() == before, "weight": weight.item()})
    return trace
