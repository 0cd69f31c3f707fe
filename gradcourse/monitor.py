"""Watch gradient flow during training: :class:`GradientMonitor` records per-layer gradient norms,
activation statistics and update-to-weight ratios at every (or every k-th) training step.

For one-shot measurements on a single batch see :mod:`gradcourse.probes`.
"""

from __future__ import annotations

import collections
import math
import weakref

import torch
from torch.autograd import Variable
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from . import _checks
from .activation_summary import ACTIVATION_MODULES, SATURATION_BY_TYPE, histogram_range, histograms, statistics
from .layers import ForwardOrder, find_layers, layer_weights
from .norms import group_norms, joint_norms, tensor_norms
from .update_step import StepReplay

STATS = ("grad_norm", "act_mean", "act_std", "saturated", "dead", "update_ratio")


REPLAY_BELOW = 1e-5
"""A float32 step changes each weight ``w`` by the computed ``dw`` up to a rounding error of at most
``2**-24 |w + dw|``, so the applied change ``W_after - W_before`` differs from the computed step by at
most ``6e-8 ||W||``: under 0.6% of a step whose ratio ``||dW|| / ||W||`` exceeds 1e-5. Below that, where
rounding absorbs more and more of the step, :class:`GradientMonitor` replays it in float64
(:class:`gradcourse.update_step.StepReplay`); replaying costs float64 copies of the layer, its
gradient and its optimizer state, so the layers with larger steps are differenced instead."""


STACK_LIMIT = 2 ** 20
"""Activation outputs of one shape with at most this many entries each are stacked and summarized in
one pass; larger ones, where the operations' own cost dominates, one by one without a copy."""


class GradientMonitor:
    """Record per-layer statistics of any ``torch.nn.Module`` while it trains.

    Use it as a context manager (hooks are removed on exit, also after an
    exception), or pass it to :func:`gradcourse.train.fit`::

        with GradientMonitor(model) as monitor:
            fit(model, X, y, epochs=1, batch_size=64, lr=0.1)
        monitor.series("grad_norm")      # tensor (steps, layers)

    Layers (see :func:`find_layers`; ``layers=`` or ``include=`` choose others) are ordered as the
    first forward pass meets them, input side first; :attr:`layer_names` names them. For each it records

    * ``grad_norm``: ``||dL/dW||`` of the layer's weights after every backward pass, measured when the
      backward pass ends (before any clipping rescales the gradients), all layers in one fused call;
    * ``update_ratio``: ``||dW|| / ||W||`` each time an optimizer holding the weights steps, where
      ``dW`` is the step the optimizer computed. In float32 a change below about 6e-8 of a weight is
      absorbed by rounding, so the weights' difference ``W_after - W_before`` is used only where it is
      within 0.6% of the step (ratios above :data:`REPLAY_BELOW`, 1e-5); at the first recorded step and
      in layers with smaller ratios the step is replayed in float64 (see
      :class:`gradcourse.update_step.StepReplay`). For an optimizer that cannot be replayed the
      difference is used throughout and :attr:`update_note` says so.
      Karpathy's rule of thumb puts healthy values near 1e-3.

    Activations: every activation *module* the forward pass calls (ReLU, Tanh, Sigmoid, GELU, ...;
    one entry per call, named by module path with ``#k`` for a module called k times), at every
    forward pass with gradients enabled (evaluation under ``no_grad`` is skipped), in
    :attr:`activation_names`:

    * ``act_mean``, ``act_std``: mean and standard deviation of the activations;
    * ``saturated``: share of outputs outside (0.03, 0.97) for Sigmoid and (-0.97, 0.97) for Tanh,
      where the derivative is below about 0.03 or 0.06 (NaN for activations without two flat tails);
    * ``dead``: share of units (all positions but the batch dimension) whose output is exactly zero
      for the whole batch: a dead ReLU passes no gradient.

    The outputs are summarized after the pass (outputs of one shape together, in a few tensor
    operations); an output that the forward pass changes in place after its module returned it
    (``Dropout(inplace=True)`` after a GELU, say) gets NaN statistics and :attr:`activation_note` says so.

    A model that applies its activations as functions (``torch.relu(x)`` in ``forward``) has no
    activation modules to hook; :attr:`activation_note` then says so and those series are empty.

    ``every=k`` samples: it records the 1st, (k+1)-th, (2k+1)-th ... training step (a forward pass
    with gradients enabled, with the backward pass and the optimizer step that follow it) and
    nothing in between, which runs without its per-step hooks. Every statistic is recorded on the same
    steps, so :meth:`series` has one row per recorded step. What it costs: ``benchmarks/monitor_overhead.py``.

    ``histogram_bins=B`` also records, per activation call and recorded step, a histogram of its
    outputs over ``B`` bins of ``histogram_range`` (by default the output range of a bounded activation;
    see :meth:`histograms`): how the distribution moves over training, as fastai's ``ActivationStats``
    and Karpathy's saturation plots show it (``gradcourse.plots.plot_histograms_over_steps``).
    """

    def __init__(self, model, layers=None, include=None, every=1, histogram_bins=0, histogram_range=None):
        self.every = _checks.integer("every", every, minimum=1)
        self.histogram_bins = _checks.integer("histogram_bins", histogram_bins, minimum=0)
        self.histogram_range = None if histogram_range is None else _checks.interval("histogram_range", histogram_range)
        self._histograms = {}     # (module index, call number) -> per recorded step, the shares per bin
        self.model = model
        self._layers = find_layers(model, layers, include)   # registration order until the first forward
        self._weights = [layer_weights(m) for _, m in self._layers]
        self._weight_ids = {id(p) for weights in self._weights for p in weights}
        self._weight_keys = [(i, j) for i, weights in enumerate(self._weights) for j in range(len(weights))]
        self._sizes = None
        self._order = list(range(len(self._layers)))
        self._activation_modules = [(name or type(m).__name__, m) for name, m in model.named_modules()
                                    if isinstance(m, ACTIVATION_MODULES)]
        self._records = {"grad_norm": [], "update_ratio": []}   # per recorded step, a float64 value per layer
        self._sites = {}          # (module index, call number) -> per recorded step, (mean, std, saturated, dead)
        self._calls = {}
        self._outputs = []        # (site, output, its version) of the current forward pass, summarized at the flush
        self._changed_outputs = 0  # outputs changed in place after their module returned them
        self._received = {}       # (layer, weight) -> .grad, during a backward pass
        self._pending = {}        # (layer, weight) -> ||.grad|| of the last backward pass, until the flush
        self._handles = []
        self._step_handles = []   # the per-step hooks, attached only for the recorded steps
        self._order_recorder = None
        self._snapshots = None
        self._replayed = None        # the layers whose step is replayed, their ||dW||, the layers differenced
        self._replays = weakref.WeakKeyDictionary()   # optimizer -> StepReplay of the monitored weights
        self.update_note = None
        self._training_steps = 0     # forward passes with gradients enabled, since the monitor was built
        self._recording = True       # whether the current training step is one that is recorded

    # --- what was recorded ---------------------------------------------------
    @property
    def active(self):
        """True while the hooks are registered."""
        return bool(self._handles)

    @property
    def layer_names(self):
        """Names of the monitored layers, in forward order (after the first forward pass)."""
        return [self._layers[i][0] for i in self._order]

    @property
    def layers(self):
        """The monitored layer modules, in forward order."""
        return [self._layers[i][1] for i in self._order]

    @property
    def activation_names(self):
        """Names of the activation calls seen, in forward order."""
        calls_per_module = collections.Counter(module_index for module_index, _ in self._sites)
        return [self._activation_modules[m][0] + (f"#{k + 1}" if calls_per_module[m] > 1 else "")
                for m, k in self._sites]

    @property
    def activation_note(self):
        """None when activation statistics were recorded; otherwise why there are none or some are NaN."""
        self._flush()
        if self._changed_outputs:
            return (f"{self._changed_outputs} activation outputs were changed in place after their module returned "
                    "them (by an in-place operation later in forward, e.g. Dropout(inplace=True)); their statistics "
                    "are NaN")
        if self._sites:
            return None
        if not self._activation_modules:
            return ("this model has no activation modules (it applies its activations as functions, e.g. "
                    "torch.relu in forward), so GradientMonitor cannot see them: no activation statistics")
        return "no forward pass with gradients enabled has been recorded yet"

    def series(self, name):
        """The recorded values of one statistic as a float64 tensor of shape (steps, columns):
        one column per layer for grad_norm and update_ratio, per activation call otherwise."""
        _checks.choice("name", name, STATS)
        self._flush()
        if name in self._records:
            rows = self._records[name]
            if not rows:
                return torch.empty(0, len(self._layers), dtype=torch.float64)
            return torch.stack(rows)[:, self._order]
        column = STATS.index(name) - 1       # act_mean, act_std, saturated, dead -> 0..3
        steps = min((len(records) for records in self._sites.values()), default=0)
        if steps == 0:
            return torch.empty(0, len(self._sites), dtype=torch.float64)
        return torch.stack([torch.stack(records[:steps])[:, column] for records in self._sites.values()], dim=1)

    def histograms(self):
        """``{activation name: (shares, edges)}`` with ``histogram_bins=B``: ``shares (steps, B)``, the share of
        the entries in each bin per recorded step (none for entries outside the range), and the ``B + 1`` edges."""
        if not self.histogram_bins:
            raise ValueError("histogram_bins=0: this GradientMonitor records no histograms; build it with "
                             "histogram_bins=40 (say) to record them")
        self._flush()
        result = {}
        for name, (site, records) in zip(self.activation_names, self._sites.items()):
            low, high = self.histogram_range or histogram_range(self._activation_modules[site[0]][1])
            shares = self._histograms.get(site, [])
            result[name] = (torch.stack(shares) if shares else torch.empty(0, self.histogram_bins, dtype=torch.float64),
                            torch.linspace(low, high, self.histogram_bins + 1, dtype=torch.float64))
        return result

    def mean(self, name):
        """Per-column mean over the recorded steps of one statistic, as a list of floats."""
        return self.series(name).mean(dim=0).tolist()

    def steps(self, name="grad_norm"):
        """How many steps of one statistic have been recorded."""
        return len(self.series(name))

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return (f"GradientMonitor({len(self._layers)} layers, {len(self._sites)} activation calls, {state}, "
                f"{self.steps('grad_norm')} backward passes, {self.steps('update_ratio')} optimizer steps)")

    # --- hooks -----------------------------------------------------------------
    def __enter__(self):
        if self.active:
            raise RuntimeError("this GradientMonitor is already active")
        frozen = [name for (name, _), weights in zip(self._layers, self._weights) if any(not p.requires_grad for p in weights)]
        if frozen:
            raise ValueError(f"layers {frozen} have weights with requires_grad=False (frozen after this GradientMonitor "
                             "was built), so they get no gradient to record; build the monitor after freezing, "
                             "or choose the trainable layers with layers= or include=")
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._forward_starts))
            self._handles.append(self.model.register_forward_hook(self._forward_ends))
            self._handles.append(register_optimizer_step_pre_hook(self._before_step))
            self._handles.append(register_optimizer_step_post_hook(self._after_step))
            self._attach_step_hooks()
        except BaseException:
            self.__exit__(None, None, None)   # nothing stays attached
            raise
        return self

    def __exit__(self, *exc_info):
        self._flush()
        self._detach_step_hooks()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._order_recorder is not None:
            self._order_recorder.remove()
            self._order_recorder = None
        self._snapshots = None
        self._replays = weakref.WeakKeyDictionary()
        return False

    def _forward_starts(self, module, inputs):
        self._flush()
        self._calls = {}
        if torch.is_grad_enabled():
            self._recording = self._training_steps % self.every == 0
            self._training_steps += 1
            if self.every > 1:        # the steps in between run without the per-step hooks, at full speed
                self._attach_step_hooks() if self._recording else self._detach_step_hooks()
        if self._order == list(range(len(self._layers))) and self._order_recorder is None and not self._sites:
            self._order_recorder = ForwardOrder(self.model)

    def _attach_step_hooks(self):
        """The hooks that record a step: one per weight's gradient, one per activation module's output."""
        if self._step_handles:
            return
        for i, weights in enumerate(self._weights):
            for j, p in enumerate(weights):
                if p.requires_grad:   # (one frozen since __enter__ gets no gradient: its layer's norm is NaN)
                    self._step_handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(i, j)))
        for i, (_, module) in enumerate(self._activation_modules):
            self._step_handles.append(module.register_forward_hook(self._activation_hook(i)))

    def _detach_step_hooks(self):
        for handle in self._step_handles:
            handle.remove()
        self._step_handles = []

    def _forward_ends(self, module, inputs, output):
        if self._order_recorder is not None:
            index = {id(m): i for i, (_, m) in enumerate(self._layers)}
            self._order = [index[id(m)] for _, m in self._order_recorder.sort(self._layers)]
            self._order_recorder.remove()
            self._order_recorder = None

    def _grad_hook(self, i, j):
        def hook(p):
            if self._recording:
                if not self._received:
                    try:        # measure every gradient of this backward pass at once, when it ends
                        Variable._execution_engine.queue_callback(self._measure_gradients)
                    except RuntimeError:   # not inside autograd's engine: measured at the next flush
                        pass
                self._received[(i, j)] = p.grad
        return hook

    def _measure_gradients(self):
        """The norms of the gradients this backward pass accumulated, in one fused call."""
        if self._received:
            keys = list(self._received)
            self._pending.update(zip(keys, tensor_norms([self._received[key] for key in keys]).unbind()))
            self._received = {}

    def _flush(self):
        """Turn what the hooks collected since the last flush into one recorded row per statistic."""
        self._measure_gradients()
        if self._outputs:
            self._summarize_activations()
        if not self._pending:
            return
        keys = [(i, j) for i, weights in enumerate(self._weights) for j in range(len(weights)) if (i, j) in self._pending]
        if len(keys) == len(self._weight_keys):          # every weight got a gradient: the usual case
            row = joint_norms(torch.stack([self._pending[key] for key in keys]), [len(ws) for ws in self._weights])
        else:                                           # NaN: no weight of the layer got a gradient
            received = [[self._pending[(i, j)] for j in range(len(ws)) if (i, j) in self._pending]
                        for i, ws in enumerate(self._weights)]
            totals = joint_norms([value for values in received for value in values], [len(v) for v in received])
            row = torch.where(torch.tensor([bool(v) for v in received], device=totals.device), totals,
                              torch.full_like(totals, math.nan))
        self._records["grad_norm"].append(row)
        self._pending = {}

    def _activation_hook(self, i):
        def hook(module, inputs, output):
            if not self._recording or not torch.is_grad_enabled() or not isinstance(output, torch.Tensor):
                return
            call = self._calls.get(i, 0)
            self._calls[i] = call + 1
            a = output.detach()
            self._outputs.append(((i, call), a, a._version))
        return hook

    def _summarize_activations(self):
        """Mean, std, saturated and dead share of each activation output of the last forward pass:
        outputs of one shape and kind are stacked and summarized together, a few tensor operations in all."""
        groups = {}
        for site, a, version in self._outputs:
            if a._version != version:
                self._changed_outputs += 1
                self._sites.setdefault(site, []).append(torch.full((4,), math.nan, dtype=torch.float64, device=a.device))
                if self.histogram_bins:
                    self._histograms.setdefault(site, []).append(
                        torch.full((self.histogram_bins,), math.nan, dtype=torch.float64, device=a.device))
                continue
            module_type = type(self._activation_modules[site[0]][1])
            # outputs with more than STACK_LIMIT entries are summarized one by one, never copied together
            key = (a.shape, a.dtype, a.device, module_type, id(a) if a.numel() > STACK_LIMIT else None)
            groups.setdefault(key, []).append((site, a))
        for (_, _, _, module_type, _), members in groups.items():
            outputs = torch.stack([a for _, a in members]) if len(members) > 1 else members[0][1].unsqueeze(0)
            for (site, _), record in zip(members, statistics(outputs, SATURATION_BY_TYPE.get(module_type)).unbind()):
                self._sites.setdefault(site, []).append(record)
            if self.histogram_bins:
                low, high = self.histogram_range or histogram_range(self._activation_modules[members[0][0][0]][1])
                for (site, _), shares in zip(members, histograms(outputs, low, high, self.histogram_bins).unbind()):
                    self._histograms.setdefault(site, []).append(shares)
        self._outputs = []

    def _holds_our_weights(self, optimizer):
        return any(id(p) in self._weight_ids for group in optimizer.param_groups for p in group["params"])

    def _before_step(self, optimizer, args, kwargs):
        """Before a recorded step: the weights' norms; the computed step of the layers where rounding may
        absorb it (every layer at the first recorded step, then those whose last ratio was below
        :data:`REPLAY_BELOW`); for the others a copy of the weights, to difference after the step."""
        self._flush()
        if not self._recording or not self._holds_our_weights(optimizer):
            return
        self._sizes = group_norms(self._weights)
        ratios = self._records["update_ratio"]
        last = ratios[-1].tolist() if ratios else [0.0] * len(self._weights)   # one host read, not one per layer
        replay = [i for i in range(len(self._weights)) if not last[i] > REPLAY_BELOW]
        self._replayed = ([], None)
        if replay and self.update_note is None:
            try:
                if optimizer not in self._replays:
                    self._replays[optimizer] = StepReplay(optimizer, [p for weights in self._weights for p in weights])
                norms = self._replays[optimizer].step_norms([p for i in replay for p in self._weights[i]])
                self._replayed = (replay, joint_norms(norms, [len(self._weights[i]) for i in replay]))
            except Exception as error:   # an optimizer built otherwise than torch.optim's: the applied change
                self.update_note = (f"{type(optimizer).__name__} could not be replayed in float64 ({type(error).__name__}: "
                                    f"{error}); update_ratio is the applied change W_after - W_before, in which float32 "
                                    "rounding absorbs steps below about 6e-8 of a weight")
        if self._snapshots is None or any(b.shape != p.shape for ws, bs in zip(self._weights, self._snapshots)
                                          for p, b in zip(ws, bs)):
            self._snapshots = [[torch.empty_like(p) for p in weights] for weights in self._weights]
        differenced = [i for i in range(len(self._weights)) if i not in set(self._replayed[0])]
        self._replayed += (differenced,)
        if differenced:
            with torch.no_grad():
                torch._foreach_copy_([b for i in differenced for b in self._snapshots[i]],
                                     [p.detach() for i in differenced for p in self._weights[i]])

    def _after_step(self, optimizer, args, kwargs):
        if self._sizes is None or not self._holds_our_weights(optimizer):
            return
        replay, steps, differenced = self._replayed
        if differenced:
            with torch.no_grad():
                torch._foreach_sub_([b for i in differenced for b in self._snapshots[i]],
                                    [p.detach() for i in differenced for p in self._weights[i]])
            changes = group_norms([self._snapshots[i] for i in differenced])
            if replay:
                row = torch.empty(len(self._weights), dtype=torch.float64, device=changes.device)
                row[torch.tensor(replay, device=row.device)] = steps.to(row.device)
                row[torch.tensor(differenced, device=row.device)] = changes
                steps = row
            else:
                steps = changes
        self._records["update_ratio"].append(steps.to(self._sizes.device) / self._sizes)
        self._sizes = None
        self._replayed = None
