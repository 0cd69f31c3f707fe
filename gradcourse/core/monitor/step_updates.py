"""The size of the update one optimizer step gives each layer, ``||dW||``, as
:class:`~gradcourse.core.monitor.GradientMonitor` records it in ``update_ratio = ||dW|| / ||W||``.

A float32 step changes each weight ``w`` by the computed ``dw`` up to a rounding error of at most
``2**-24 |w + dw|``, so the applied change ``W_after - W_before`` differs from the computed step by
at most ``6e-8 ||W||``: under 0.6% of a step whose ratio exceeds :data:`REPLAY_BELOW` (1e-5). Layers
above it are differenced (a copy of the weights before the step, subtracted after it); layers below
it, where rounding absorbs more and more of the step, are replayed in float64
(:class:`gradcourse.core.monitor.update_step.StepReplay`), which costs float64 copies of the layer, its gradient
and its optimizer state.
"""

from __future__ import annotations

import weakref

import torch

from ..norms import group_norms, joint_norms
from .update_step import StepReplay, plain_sgd_rates

__all__ = ["LayerUpdates", "OptimizerSteps", "REPLAY_BELOW", "amp_scaling"]

REPLAY_BELOW = 1e-5
"""Layers whose last ``||dW|| / ||W||`` was at most this (and every layer at the first step) are replayed."""


def amp_scaling(optimizer):
    """``(grad_scale, found_inf)`` that ``torch.amp.GradScaler.step`` hands an optimizer that unscales inside
    its own step (the fused ones): the loss scale its ``.grad`` still carry, and whether they hold an inf or
    NaN (the step then changes nothing); ``(None, False)`` for any other step."""
    grad_scale, found_inf = getattr(optimizer, "grad_scale", None), getattr(optimizer, "found_inf", None)
    return grad_scale, bool(found_inf is not None and found_inf.item() > 0)


class LayerUpdates:
    """``||dW||`` of each layer of ``layers`` (lists of weights) at the steps of one optimizer, which each
    call is given (nothing here keeps the optimizer alive).

    Call :meth:`before` in the optimizer's step pre-hook and :meth:`after` in its post-hook.
    ``note`` says when the step could not be replayed and the applied change was used instead.
    """

    def __init__(self, layers):
        self.layers = [list(weights) for weights in layers]
        self.note = None
        self._replay = None
        self._snapshots = {}    # layer index -> copies of its weights before the step (differenced layers only)
        self._plan = None       # (replayed layer indices, their ||dW||, differenced layer indices)

    def before(self, optimizer, replay, grad_norms=None, closure=False, grad_scale=None):
        """Measure or prepare ``||dW||``: layers in ``replay`` (indices) are replayed, unless ``closure``
        (the step computes its own gradient, so nothing can be replayed before it) or the optimizer cannot
        be; the others are copied, to difference after the step. ``grad_norms``, one per weight of the
        replayed layers, spare plain SGD a second measurement (``||dW|| = lr ||g||``); ``grad_scale`` is the
        loss scale a fused optimizer divides by."""
        steps = None
        if replay and not closure and self.note is None:
            weights = [p for i in replay for p in self.layers[i]]
            try:
                if self._replay is None or self._replay.optimizer is not optimizer:
                    self._replay = StepReplay(optimizer, [p for layer in self.layers for p in layer])
                steps = self._replay.step_norms(weights, grad_scale=grad_scale, grad_norms=grad_norms)
                steps = joint_norms(steps, [len(self.layers[i]) for i in replay])
            except Exception as error:   # an optimizer built otherwise than torch.optim's: the applied change
                self.note = (f"{type(optimizer).__name__} could not be replayed in float64 ({type(error).__name__}: "
                             f"{error}); update_ratio is the applied change W_after - W_before, in which float32 "
                             "rounding absorbs steps below about 6e-8 of a weight")
        if closure:
            self.note = ("optimizer.step(closure) computes its gradient inside the step, so the step cannot be replayed "
                         "before it is taken: update_ratio is the applied change W_after - W_before (float32 rounding "
                         "absorbs steps below about 6e-8 of a weight), and grad_norm is the gradient of the closure's "
                         "last evaluation")
        replayed = list(replay) if steps is not None else []
        differenced = [i for i in range(len(self.layers)) if i not in set(replayed)]
        for i in differenced:
            snaps = self._snapshots.get(i)
            if snaps is None or any(s.shape != p.shape for s, p in zip(snaps, self.layers[i])):
                self._snapshots[i] = [torch.empty_like(p) for p in self.layers[i]]
        if differenced:
            with torch.no_grad():
                torch._foreach_copy_([s for i in differenced for s in self._snapshots[i]],
                                     [p.detach() for i in differenced for p in self.layers[i]])
        self._plan = (replayed, steps, differenced)

    def after(self):
        """``||dW||`` per layer, a 1-D float64 tensor, of the step just taken."""
        replayed, steps, differenced = self._plan
        self._plan = None
        if not differenced:
            return steps
        with torch.no_grad():
            torch._foreach_sub_([s for i in differenced for s in self._snapshots[i]],
                                [p.detach() for i in differenced for p in self.layers[i]])
        changes = group_norms([self._snapshots[i] for i in differenced])
        if not replayed:
            return changes
        row = torch.empty(len(self.layers), dtype=torch.float64, device=changes.device)
        row[torch.tensor(replayed, device=row.device)] = steps.to(row.device)
        row[torch.tensor(differenced, device=row.device)] = changes
        return row

class OptimizerSteps:
    """The update ratios ``||dW|| / ||W||`` of monitored layers at the steps of any optimizer holding them.

    ``layers`` lists each layer's weights (``flat``: all of them, layer by layer, the order in which weights
    are indexed here). For each optimizer it keeps which of those weights it holds
    and a :class:`LayerUpdates` of their layers; a layer whose last ratio was at most :data:`REPLAY_BELOW`
    (every layer at its first step) is replayed at its next one, and under plain SGD every layer, whose
    step ``lr ||g||`` needs only the gradient norms already measured. Optimizers are held weakly: one the
    learner drops is freed with its state.
    """

    def __init__(self, layers):
        self.layers = [list(weights) for weights in layers]
        self.flat = [p for weights in self.layers for p in weights]
        self._index = {id(p): k for k, p in enumerate(self.flat)}
        self._layer_of = [i for i, weights in enumerate(self.layers) for _ in weights]
        self._last_ratios = [0.0] * len(self.layers)
        self._held = weakref.WeakKeyDictionary()      # optimizer -> (its groups' sizes, the weight indices it holds)
        self._updates = weakref.WeakKeyDictionary()   # optimizer -> (held weights, their layers, LayerUpdates)
        self._pending = weakref.WeakKeyDictionary()   # optimizer -> (layers, ||W|| before the step)
        self.note = None

    def held(self, optimizer):
        """The indices (into the flat list of weights) of the monitored weights ``optimizer`` holds (looked up
        again when its parameter groups change in number or size)."""
        layout = tuple(len(group["params"]) for group in optimizer.param_groups)
        cached = self._held.get(optimizer)
        if cached is None or cached[0] != layout:
            ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
            cached = self._held[optimizer] = (layout, sorted(self._index[i] for i in ids if i in self._index))
        return cached[1]

    def before(self, optimizer, held, grad_norms_of, closure=False, grad_scale=None):
        """Prepare the step's measurement (its pre-hook). ``grad_norms_of(indices)`` gives the norms of the
        gradients the step uses, or None; ``closure``: the step evaluates its own gradient; ``grad_scale``:
        the loss scale a fused optimizer unscales by inside its step."""
        cached = self._updates.get(optimizer)
        if cached is None or cached[0] != held:
            layers = sorted({self._layer_of[k] for k in held})
            wanted = set(held)
            updates = LayerUpdates([[p for p in self.layers[i] if self._index[id(p)] in wanted] for i in layers])
            cached = self._updates[optimizer] = (held, layers, updates)
        _, layers, updates = cached
        if not closure and plain_sgd_rates(optimizer) is not None:    # plain SGD, lr ||g||: exact, nothing to copy
            replay = list(range(len(layers)))
        else:
            replay = [n for n, i in enumerate(layers) if not self._last_ratios[i] > REPLAY_BELOW]
        grad_norms = None if closure else grad_norms_of([self._index[id(p)] for n in replay for p in updates.layers[n]])
        self._pending[optimizer] = (layers, group_norms(updates.layers))
        updates.before(optimizer, replay, grad_norms, closure=closure, grad_scale=grad_scale)

    def after(self, optimizer):
        """``(layers, ||dW||, ||W||)`` of the step just taken (its post-hook), for the layers it held that had a
        gradient (a layer whose weights had none was not stepped), or None if no step was prepared."""
        pending = self._pending.pop(optimizer, None)
        if pending is None:
            return None
        layers, sizes = pending
        updates = self._updates[optimizer][2]
        steps = updates.after().to(sizes.device)
        self.note = self.note or updates.note
        for i, ratio in zip(layers, (steps / sizes).tolist()):
            self._last_ratios[i] = ratio
        kept = [n for n, weights in enumerate(updates.layers) if any(p.grad is not None for p in weights)]
        if len(kept) == len(layers):
            return layers, steps, sizes
        index = torch.tensor(kept, dtype=torch.long, device=steps.device)
        return [layers[n] for n in kept], steps[index], sizes[index]

    def reset(self):
        """Forget the optimizers (the monitor's hooks were removed); keep the last ratios and the note."""
        self._held = weakref.WeakKeyDictionary()
        self._updates = weakref.WeakKeyDictionary()
        self._pending = weakref.WeakKeyDictionary()
