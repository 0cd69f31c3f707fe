"""What :class:`~gradcourse.core.monitor.GradientMonitor` holds for one training step while it is under way
(:class:`Row`), and the steps it has recorded (:class:`Rows`)."""

from __future__ import annotations

import math

import torch

from .activation_summary import SATURATION_BY_TYPE, histogram_range, histograms, statistics
from ..norms import joint_norms

__all__ = ["Row", "Rows", "STACK_LIMIT"]

STACK_LIMIT = 2 ** 20
"""Activation outputs of one shape with at most this many entries each are stacked and summarized in
one pass; larger ones, where the operations' own cost dominates, one by one without a copy."""


class Row:
    """One training step under way: the gradient tensor each monitored weight received in the last
    backward pass (to tell whether ``zero_grad`` discarded it since), the norm measured of it, the size
    of each layer's update and weights at the optimizer steps taken, and the activation summaries of the
    forward pass its first backward pass went through. An unrecorded step (``recorded=False``, between
    the steps ``every=k`` records) keeps only what tells where it ends."""

    def __init__(self, weights, recorded=True):
        self.recorded = recorded
        self.norms = None             # 1-D float64 tensor, one entry per weight (NaN where not measured)
        self.refs = [None] * weights  # (gradient tensor, its version) received by each weight
        self.has = [False] * weights  # whether norms holds the norm of that gradient
        self.used = [False] * weights  # whether it was measured at the step of an optimizer holding the weight
        self.update_squares = None    # per layer, sum of ||dW||**2 over the optimizer steps that moved it
        self.size_squares = None      # per layer, sum of ||W||**2 of the weights those steps held
        self.stepped = 0              # optimizer steps taken in this training step
        self.backward_seen = False    # whether a backward pass reached the monitored weights
        self.sites = {}               # (module index, call number) -> (mean, std, saturated, dead)
        self.histograms = {}          # (module index, call number) -> shares per bin
        self._calls = {}

    # --- gradients ---------------------------------------------------------------
    def received(self, k, grad):
        """Weight ``k`` holds ``grad`` after a backward pass (not measured yet)."""
        self.refs[k] = (grad, grad._version)
        self.has[k] = self.used[k] = False
        self.backward_seen = True

    def measured(self, keys, grads, norms, at_step=False):
        """Record the norms of the gradients ``grads`` of weights ``keys`` (``at_step``: as an optimizer step uses them)."""
        if len(keys) == len(self.refs) and keys == list(range(len(self.refs))):
            self.norms = norms
        else:
            if self.norms is None:
                self.norms = torch.full((len(self.refs),), math.nan, dtype=torch.float64, device=norms.device)
            index = torch.tensor(keys, dtype=torch.long, device=norms.device)
            self.norms = self.norms.to(norms.device).index_copy(0, index, norms)
        for k, grad in zip(keys, grads):
            self.refs[k] = None if at_step else (grad, grad._version)   # a used gradient need not be kept alive
            self.has[k] = True
            self.used[k] = self.used[k] or at_step

    def to_measure(self, weights):
        """The weights whose gradient was received but not measured, and still there."""
        return [k for k, p in enumerate(weights) if p.grad is not None and self.refs[k] is not None and not self.has[k]]

    def norms_of(self, keys):
        """The measured norms of ``keys``, a 1-D tensor (None if one was not measured)."""
        if self.norms is None or not all(self.has[k] for k in keys):
            return None
        if len(keys) == len(self.refs):
            return self.norms
        return self.norms[torch.tensor(keys, dtype=torch.long, device=self.norms.device)]

    def discarded(self, weights):
        """True when the received gradients were thrown away without a step: a weight's ``.grad`` is gone or
        another tensor (``zero_grad()``), or every gradient changed in place since is all zeros
        (``zero_grad(set_to_none=False)``). One changed otherwise (clipped, all-reduced) still accumulates."""
        changed = []
        for k, ref in enumerate(self.refs):
            if ref is None:
                continue
            grad = weights[k].grad
            if grad is not ref[0]:
                return True
            if grad._version != ref[1]:
                changed.append(grad)
        return bool(changed) and not any(bool(g.any()) for g in changed)

    def accumulating(self, weights):
        """True after a backward pass whose gradients are all still in place: the next one adds to them."""
        return self.backward_seen and not self.stepped and not self.discarded(weights)

    def stepped_layers(self, layers, steps, sizes, count):
        """Record one optimizer's step of ``layers`` (of ``count``): ``||dW||`` and ``||W||`` of the weights it
        holds in each; a layer split between optimizers adds up its parts, ``||dW||**2`` and ``||W||**2``."""
        self.stepped += 1
        if not layers:
            return
        if self.update_squares is None:
            self.update_squares = torch.zeros(count, dtype=torch.float64, device=steps.device)
            self.size_squares = torch.zeros(count, dtype=torch.float64, device=steps.device)
        index = torch.tensor(layers, dtype=torch.long, device=steps.device)
        self.update_squares.index_add_(0, index, steps.to(self.update_squares.device).square())
        self.size_squares.index_add_(0, index, sizes.to(self.size_squares.device).square())

    def clear_activations(self):
        """Forget the activations summarized so far: a later forward pass replaces them."""
        self.sites, self.histograms, self._calls = {}, {}, {}

    # --- activations -------------------------------------------------------------
    def called(self, module_index):
        """Whether the activation module was recorded in this step already."""
        return module_index in self._calls

    def calls(self, module_index):
        """The call number of this call of an activation module in the forward pass (0, 1, ...)."""
        call = self._calls.get(module_index, 0)
        self._calls[module_index] = call + 1
        return call

    def summarize(self, outputs, modules, bins, value_range):
        """Mean, std, saturated and dead share (and histograms over ``bins``) of each ``(site, output,
        version)``: outputs of one shape and kind are stacked and summarized together, a few tensor
        operations in all. Returns how many outputs were changed in place since (recorded as NaN)."""
        groups, changed = {}, 0
        for site, a, version in outputs:
            if a._version != version:
                changed += 1
                self.sites[site] = torch.full((4,), math.nan, dtype=torch.float64, device=a.device)
                if bins:
                    self.histograms[site] = torch.full((bins,), math.nan, dtype=torch.float64, device=a.device)
                continue
            module_type = type(modules[site[0]][1])
            key = (a.shape, a.dtype, a.device, module_type, id(a) if a.numel() > STACK_LIMIT else None)
            groups.setdefault(key, []).append((site, a))
        for (_, _, _, module_type, _), members in groups.items():
            stacked = torch.stack([a for _, a in members]) if len(members) > 1 else members[0][1].unsqueeze(0)
            for (site, _), record in zip(members, statistics(stacked, SATURATION_BY_TYPE.get(module_type)).unbind()):
                self.sites[site] = record
            if bins:
                low, high = value_range or histogram_range(modules[members[0][0][0]][1])
                for (site, _), shares in zip(members, histograms(stacked, low, high, bins).unbind()):
                    self.histograms[site] = shares
        return changed

    def finish(self, sizes, with_updates):
        """The step as recorded: ``(grad_norm row or None, update_ratio row or None, sites, histograms)``.
        ``sizes``: how many weights each layer has. A layer none of whose weights got a gradient has norm NaN, and so has, in a step an optimizer took,
        a layer whose gradient no optimizer step used; a layer no optimizer step moved has ratio NaN.
        ``with_updates`` (in a loop that steps an optimizer) gives every step both rows, NaN-filled."""
        present = [h and u for h, u in zip(self.has, self.used)] if self.stepped else self.has
        grad_row = None
        if self.norms is not None and all(present):
            grad_row = joint_norms(self.norms, sizes)
        elif self.norms is not None and any(present):
            mask = torch.tensor(present, device=self.norms.device)
            totals = joint_norms(torch.where(mask, self.norms, torch.zeros_like(self.norms)), sizes)
            grad_row = torch.where(joint_norms(mask.double(), sizes) > 0, totals, torch.full_like(totals, math.nan))
        elif with_updates:
            grad_row = torch.full((len(sizes),), math.nan, dtype=torch.float64)
        update_row = None
        if self.update_squares is not None:     # 0 / 0, NaN, where no step moved the layer
            update_row = (self.update_squares / self.size_squares).sqrt()
        elif with_updates:
            update_row = torch.full((len(sizes),), math.nan, dtype=torch.float64)
        return grad_row, update_row, self.sites, self.histograms


class Rows:
    """The recorded training steps: per statistic, one entry per step that recorded it."""

    def __init__(self):
        self.grad_norm = []
        self.update_ratio = []
        self.sites = {}          # (module index, call number) -> records, in forward order
        self.histograms = {}

    def append(self, finished):
        grad_row, update_row, sites, histograms_ = finished
        if grad_row is not None:
            self.grad_norm.append(grad_row)
        if update_row is not None:
            self.update_ratio.append(update_row)
        for site, record in sites.items():
            self.sites.setdefault(site, []).append(record)
        for site, shares in histograms_.items():
            self.histograms.setdefault(site, []).append(shares)

    def with_row(self, finished):
        """These rows and ``finished`` after them, leaving these alone."""
        view = Rows()
        view.grad_norm, view.update_ratio = list(self.grad_norm), list(self.update_ratio)
        view.sites = {site: list(records) for site, records in self.sites.items()}
        view.histograms = {site: list(shares) for site, shares in self.histograms.items()}
        view.append(finished)
        return view

    def activation_series(self, column):
        """One activation statistic (column 0..3 of the records) as a (steps, calls) float64 tensor."""
        steps = min((len(records) for records in self.sites.values()), default=0)
        if steps == 0:
            return torch.empty(0, len(self.sites), dtype=torch.float64)
        return torch.stack([torch.stack(records[:steps])[:, column] for records in self.sites.values()], dim=1)
