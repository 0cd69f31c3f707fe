"""Low-precision arithmetic: what fp16 and bfloat16 can hold, and what loss scaling rescues.

IEEE fp16 has 5 exponent bits (bias 15) and 10 mantissa bits: normal numbers
``(1 + m/1024) 2^(e-15)`` reach from ``2^-14`` to ``(2 - 2^-10) 2^15 = 65504``, subnormals
``(m/1024) 2^-14`` down to ``2^-24``; anything of size ``2^-25`` or less rounds to 0. bfloat16
keeps fp32's 8 exponent bits (range down to about 1e-38) with only 7 mantissa bits.

Micikevicius et al. (2018), "Mixed Precision Training" (ICLR), keep three things in float32:
the master copy of the weights (an fp16 weight of 1 cannot take a step below ``2^-11``), the
accumulation of dot products (an fp16 running sum stops growing once half its spacing exceeds
each addend), and the loss scale's arithmetic: the loss is multiplied by ``S`` before the
backward pass, which multiplies every gradient by ``S`` (backpropagation is linear in
``dL``), and the weight gradients are divided by ``S`` in float32 before the step.
``torch.autocast`` runs each operation in the precision it tolerates; ``torch.amp.GradScaler``
chooses ``S`` dynamically.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core import _checks
from ..core.data import batches
from ..core.layers import as_one_tensor, layer_weights, named_layers
from ..core.scoring import accuracy

__all__ = ["accumulate", "cast_sweep", "dot_product", "flushed_and_overflowed", "grad_scaler_trace", "LOW_PRECISION",
           "PRECISIONS", "spacing", "train_mixed_precision"]

LOW_PRECISION = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(name):
    return LOW_PRECISION[_checks.choice("dtype", name, tuple(LOW_PRECISION))]


def flushed_and_overflowed(values, dtype="float16", loss_scale=1.0):
    """What casting ``values * loss_scale`` to a low-precision dtype destroys.

    Returns ``{"flushed": share, "overflowed": share}``: among the entries that are nonzero and
    finite in float32, the share that becomes exactly 0 (underflow) and the share that becomes
    infinite (overflow) after multiplying by ``loss_scale`` and casting.
    """
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        raise ValueError(f"values={_checks.describe(values)} is not allowed; it must be a floating-point torch.Tensor")
    loss_scale = _checks.number("loss_scale", loss_scale, minimum=0, strict_minimum=True)
    v = values.detach().double().flatten()
    v = v[(v != 0) & torch.isfinite(v)]
    if len(v) == 0:
        return {"flushed": 0.0, "overflowed": 0.0}
    cast = (v * loss_scale).to(_dtype(dtype))
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


def grad_scaler_trace(steps=12, overflow_steps=(3,), loss_scale=2.0 ** 16, growth_interval=4):
    """Drive ``torch.amp.GradScaler`` through ``steps`` steps of a one-parameter model whose
    gradient overflows on ``overflow_steps``; return one dict per step:
    ``{"step", "scale", "skipped", "weight"}`` (the scale the step used; whether the optimizer step
    was skipped; the weight after it). The scaler starts at the loss scale ``loss_scale`` (GradScaler's
    ``init_scale``). On an overflow the scaler skips the step and multiplies the scale by 0.5; after
    ``growth_interval`` clean steps in a row it multiplies it by 2.
    """
    _checks.integer("steps", steps, minimum=1)
    overflow_steps = set(overflow_steps)
    for s in overflow_steps:
        _checks.integer("overflow_steps[i]", s, minimum=0)
    _checks.number("loss_scale", loss_scale, minimum=0, strict_minimum=True)
    _checks.integer("growth_interval", growth_interval, minimum=1)
    scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale, growth_interval=growth_interval)
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


def cast_sweep(gradients, log2_scales=range(0, 41), dtype="float16"):
    """:func:`flushed_and_overflowed` of each tensor in ``gradients`` (one per layer, input side first) at every
    loss scale ``S = 2**k`` for ``k`` in ``log2_scales``.

    Returns a dict:

    * ``"log2_scales"``: the ``k`` as a list;
    * ``"flushed"``, ``"overflowed"``: per layer, the list over ``k`` of the share of its nonzero
      entries that ``g * 2**k`` turns into 0 and into inf;
    * ``"largest_safe"``: the largest ``k`` at which no entry of any layer overflows (``None`` if
      every scale overflows). fp16 overflows once ``max|g| * S`` reaches 65520 (halfway to
      ``2^16``), so this is ``floor(log2(65520 / max|g|))`` wherever that ``k`` is in the sweep,
      the scale a dynamic scaler settles on: it doubles ``S`` after clean steps and halves it
      after an overflow;
    * ``"smallest_complete"``: the smallest ``k`` at which no entry of any layer is flushed
      (``None`` if none): about ``log2(2^-25 / min|g|)``.
    """
    if not isinstance(gradients, (list, tuple)) or not gradients:
        raise ValueError(f"gradients={_checks.describe(gradients)} is not allowed; it must be a non-empty list of tensors")
    log2_scales = list(log2_scales)
    if not log2_scales:
        raise ValueError("log2_scales=[] is not allowed; give at least one exponent")
    for k in log2_scales:
        _checks.integer("log2_scales[i]", k, minimum=-200, maximum=200)
    target = _dtype(dtype)
    flushed, overflowed = [], []
    for g in gradients:
        if not isinstance(g, torch.Tensor) or not g.is_floating_point():
            raise ValueError(f"gradients[i]={_checks.describe(g)} is not allowed; it must be a floating-point torch.Tensor")
        v = g.detach().double().flatten()
        v = v[(v != 0) & torch.isfinite(v)]
        rows = [(v * 2.0 ** k).to(target) for k in log2_scales] if len(v) else []
        flushed.append([(c == 0).double().mean().item() for c in rows] or [0.0] * len(log2_scales))
        overflowed.append([torch.isinf(c).double().mean().item() for c in rows] or [0.0] * len(log2_scales))
    safe = [k for i, k in enumerate(log2_scales) if all(layer[i] == 0 for layer in overflowed)]
    complete = [k for i, k in enumerate(log2_scales) if all(layer[i] == 0 for layer in flushed)]
    return {"log2_scales": log2_scales, "flushed": flushed, "overflowed": overflowed,
            "largest_safe": max(safe) if safe else None, "smallest_complete": min(complete) if complete else None}


def dot_product(a, b, accumulate="float16"):
    """``sum_i a_i b_i`` as a float16 matrix multiply computes it: ``a`` and ``b`` cast to float16,
    each product rounded to float16, the products added one after another in ``accumulate``
    (``"float16"`` or ``"float32"``) and the result rounded to float16.

    Accumulating in float16 loses every product smaller than half the running sum's spacing
    (``2^-11`` of the sum and up), so a long sum of small positive products stops growing: 4096
    products of ``0.1 * 0.1`` stall at 32, where the spacing is ``2^-5``. Micikevicius et al.
    (2018) therefore accumulate the products in float32 and write only the result in float16.
    """
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 1:
            raise ValueError(f"{name}={_checks.describe(t)} is not allowed; it must be a 1-D floating-point torch.Tensor")
    if len(a) != len(b):
        raise ValueError(f"a has {len(a)} entries and b has {len(b)}; they must match")
    accumulators = {"float16": torch.float16, "float32": torch.float32}
    total_dtype = accumulators[_checks.choice("accumulate", accumulate, tuple(accumulators))]
    products = (a.detach().to(torch.float16) * b.detach().to(torch.float16)).to(total_dtype)
    total = torch.zeros((), dtype=total_dtype)
    for p in products:
        total = total + p
    return total.to(torch.float16).item()


PRECISIONS = ("float32", "float16", "bfloat16")


def train_mixed_precision(model, X, y, *, dtype="float16", loss_scaling=True, loss_weight=1.0, steps=100,
                          batch_size=128, lr=0.1, loss_scale=2.0 ** 16, growth_interval=10, seed=0, progress=False):
    """Train a copy of ``model`` with SGD on the cross-entropy of ``(X, y)`` the way mixed-precision
    training does it (Micikevicius et al. 2018), with ``torch.autocast`` and ``torch.amp.GradScaler``.

    Each step: the forward pass runs under ``torch.autocast(dtype=dtype)``, so the linear
    layers compute in ``dtype`` from the float32 master weights, and so does the backward
    pass through them (the gradients of their outputs and weights are ``dtype`` numbers, cast
    to float32 only where they reach the master weights); the loss ``L`` itself is computed in
    float32. With ``loss_scaling`` the scaler, starting at ``S = loss_scale`` (GradScaler's
    ``init_scale``), back-propagates ``S * loss_weight * L``, divides the weight gradients by ``S``
    in float32, skips the step if any is inf or NaN (then ``S <- S/2``), and doubles ``S`` after
    ``growth_interval`` clean steps; without it ``S = 1``. Then
    ``W <- W - (lr / loss_weight) * g`` on the float32 weights.

    ``loss_weight`` multiplies the loss and divides the learning rate. In exact arithmetic, and in
    float32 for a power of 2, that is the same training step for step; it only makes every
    gradient ``loss_weight`` times smaller, as in a model whose loss is a mean over that many
    times more elements (tokens, pixels) than this batch has examples. The gradient of a mean
    cross-entropy with respect to a logit is ``(softmax - onehot) / batch_size``, at most
    ``loss_weight / batch_size`` in size here: at ``2^-25`` or less, float16 rounds it to 0.

    ``dtype="float32"`` turns autocast off (the reference run); ``"bfloat16"`` has float32's
    range and needs no scaling. Batches are drawn by :func:`gradcourse.core.data.batches` with seeds
    ``seed, seed + 1, ...`` per epoch, full batches only (so every step averages over
    ``batch_size`` examples); ``model`` itself is left untouched.

    Returns a dict: ``"loss"`` (``L`` per step, unweighted and unscaled), ``"scale"`` (the ``S``
    each step used), ``"skipped"`` (0-based indices of the skipped steps), ``"layers"`` (names as
    in :func:`~gradcourse.core.layers.named_layers`), ``"zero_share"`` (per layer, the share of its
    weight-gradient entries that are exactly 0, averaged over steps), ``"moved"`` (per layer,
    ``||W_end - W_0|| / ||W_0||``; ``inf`` for a layer whose weights start at 0 and move, such as
    a ReZero gain), ``"accuracy"`` (on ``(X, y)`` after training) and ``"model"`` (the trained copy).

    A layer's weights ``W`` are those of :func:`~gradcourse.core.layers.layer_weights`, taken together
    as one vector: an ``nn.Linear``'s ``weight``; a ``torch.nn.MultiheadAttention``'s
    ``in_proj_weight``; a LayerNorm's gain; a module's own parameters such as a Transformer's
    position vectors. So any model with parameters trains, a
    :class:`~gradcourse.lessons.transformers.RowTransformer` included.
    """
    loss_weight, lr, loss_scale = _mixed_precision_arguments(model, X, y, dtype, loss_scaling, loss_weight, steps,
                                                             batch_size, lr, loss_scale, growth_interval, seed, progress)
    model = copy.deepcopy(model).train()
    layers = named_layers(model)
    weights = [layer_weights(module, frozen=True) for _, module in layers]
    start = [as_one_tensor([w.detach() for w in ws]).clone() for ws in weights]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr / loss_weight)
    scaler = torch.amp.GradScaler(next(model.parameters()).device.type, init_scale=loss_scale,
                                  growth_interval=growth_interval, enabled=loss_scaling)
    trace, zeros = _mixed_precision_steps(model, X, y, optimizer, scaler, weights, dtype, loss_scaling, loss_weight,
                                          steps, batch_size, seed, progress)
    return {**trace, "layers": [name for name, _ in layers], "zero_share": (zeros / steps).tolist(),
            "moved": [_relative_change(as_one_tensor([w.detach() for w in ws]), w0) for ws, w0 in zip(weights, start)],
            "accuracy": accuracy(model, X, y), "model": model}


def _mixed_precision_arguments(model, X, y, dtype, loss_scaling, loss_weight, steps, batch_size, lr, loss_scale,
                               growth_interval, seed, progress):
    """Check :func:`train_mixed_precision`'s arguments; return ``loss_weight``, ``lr`` and ``loss_scale`` as floats."""
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a torch.nn.Module with parameters")
    _checks.features_and_labels(X, y)
    _checks.choice("dtype", dtype, PRECISIONS)
    _checks.boolean("loss_scaling", loss_scaling)
    loss_weight = _checks.number("loss_weight", loss_weight, minimum=0, strict_minimum=True)
    _checks.integer("steps", steps, minimum=1)
    _checks.integer("batch_size", batch_size, minimum=1, maximum=len(X))
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    loss_scale = _checks.number("loss_scale", loss_scale, minimum=0, strict_minimum=True)
    _checks.integer("growth_interval", growth_interval, minimum=1)
    _checks.integer("seed", seed)
    _checks.boolean("progress", progress)
    return loss_weight, lr, loss_scale


def _mixed_precision_steps(model, X, y, optimizer, scaler, weights, dtype, loss_scaling, loss_weight, steps,
                           batch_size, seed, progress):
    """The training loop of :func:`train_mixed_precision`. Returns ``{"loss", "scale", "skipped"}`` and, per layer,
    the share of zero entries in its weight gradients summed over the steps (a float64 tensor)."""
    device = next(model.parameters()).device
    autocast_dtype = LOW_PRECISION.get(dtype)
    trace = {"loss": [], "scale": [], "skipped": []}
    zeros = torch.zeros(len(weights), dtype=torch.float64)
    step, epoch = 0, 0
    with tqdm(total=steps, desc=f"{dtype}{', loss scaling' if loss_scaling else ''}", disable=not progress,
              mininterval=0.5) as bar:
        while step < steps:
            for Xb, yb in batches(X, y, batch_size, shuffle=True, seed=seed + epoch, drop_last=True):
                if step == steps:
                    break
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss = F.cross_entropy(model(Xb.to(device)), yb.to(device))
                scale = scaler.get_scale()
                scaler.scale(loss * loss_weight).backward()
                zeros += torch.tensor([_zero_share(ws) for ws in weights], dtype=torch.float64)
                scaler.step(optimizer)
                scaler.update()
                if loss_scaling and scaler.get_scale() < scale:
                    trace["skipped"].append(step)
                trace["loss"].append(loss.item())
                trace["scale"].append(float(scale))
                step += 1
                bar.update(1)
            epoch += 1
    return trace, zeros


def _zero_share(weights):
    """The share of the entries of ``weights``' gradients that are exactly 0 (a missing gradient
    counts as all zeros)."""
    grads = [torch.zeros_like(w) if w.grad is None else w.grad for w in weights]
    return (as_one_tensor(grads) == 0).double().mean().item()


def _relative_change(after, before):
    """``||after - before|| / ||before||``; for ``before = 0``: 0 if nothing moved, else inf."""
    change = torch.linalg.vector_norm(after - before)
    size = torch.linalg.vector_norm(before)
    if size == 0:
        return 0.0 if change == 0 else float("inf")
    return (change / size).item()
