"""Watch gradient flow during training: :class:`GradientMonitor` records per-layer gradient norms,
activation statistics and update-to-weight ratios at every (or every k-th) training step.

For one-shot measurements on a single batch see :mod:`gradcourse.probes`.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from . import _checks
from .layers import ForwardOrder, find_layers, layer_weights
from .norms import group_norms, joint_norms, norm
from .update_step import StepReplay

SATURATION = {"tanh": (-0.97, 0.97), "sigmoid": (0.03, 0.97)}
"""A unit counts as saturated when its output lies outside this interval (its derivative is then tiny)."""

STATS = ("grad_norm", "act_mean", "act_std", "saturated", "dead", "update_ratio")


REPLAY_BELOW = 1e-5
"""A float32 step changes each weight ``w`` by the computed ``dw`` up to a rounding error of at most
``2**-24 |w + dw|``, so the applied change ``W_after - W_before`` differs from the computed step by at
most ``6e-8 ||W||``: under 0.6% of a step whose ratio ``||dW|| / ||W||`` exceeds 1e-5. Below that, where
rounding absorbs more and more of the step, :class:`GradientMonitor` replays it in float64
(:class:`gradcourse.update_step.StepReplay`); replaying costs float64 copies of the layer, its
gradient and its optimizer state, so the layers with larger steps are differenced instead."""


ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
                      nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
                      nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink)
"""Module types whose outputs GradientMonitor summarizes as activations."""

_SATURATION_BY_TYPE = {nn.Tanh: SATURATION["tanh"], nn.Sigmoid: SATURATION["sigmoid"]}
_NAN = torch.tensor(math.nan, dtype=torch.float64)


class GradientMonitor:
    """Record per-layer statistics of any ``torch.nn.Module`` while it trains.

    Use it as a context manager (hooks are removed on exit, also after an
    exception), or pass it to :func:`gradcourse.train.fit`::

        with GradientMonitor(model) as monitor:
            fit(model, X, y, epochs=1, batch_size=64, lr=0.1)
        monitor.series("grad_norm")      # tensor (steps, layers)

    Layers (see :func:`find_layers`; ``layers=`` or ``include=`` choose others) are ordered as the
    first forward pass meets them, input side first; :attr:`layer_names` names them. For each it records

    * ``grad_norm``: ``||dL/dW||`` of the layer's weights after every backward pass;
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

    A model that applies its activations as functions (``torch.relu(x)`` in ``forward``) has no
    activation modules to hook; :attr:`activation_note` then says so and those series are empty.

    ``every=k`` samples: it records the 1st, (k+1)-th, (2k+1)-th ... training step (a forward pass
    with gradients enabled, with the backward pass and the optimizer step that follow it) and
    nothing in between, where its hooks return at once. Recording every step costs about as much
    as the step itself on a small MLP; ``every=10`` costs a tenth of that. Every statistic is
    recorded on the same steps, so :meth:`series` has one row per recorded step.
    """

    def __init__(self, model, layers=None, include=None, every=1):
        self.every = _checks.integer("every", every, minimum=1)
        self.model = model
        self._layers = find_layers(model, layers, include)   # registration order until the first forward
        self._weights = [layer_weights(m) for _, m in self._layers]
        self._weight_ids = {id(p) for weights in self._weights for p in weights}
        self._sizes = None
        self._order = list(range(len(self._layers)))
        self._activation_modules = [(name or type(m).__name__, m) for name, m in model.named_modules()
                                    if isinstance(m, ACTIVATION_MODULES)]
        self._records = {name: [[] for _ in self._layers] for name in ("grad_norm", "update_ratio")}
        self._sites = {}          # (module index, call number) -> list of (mean, std, saturated, alive) records
        self._calls = {}
        self._pending = {}
        self._handles = []
        self._order_recorder = None
        self._snapshots = None
        self._steps = None           # per layer, ||dW|| of the optimizer step about to be taken
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
        calls_per_module = {}
        for module_index, _ in self._sites:
            calls_per_module[module_index] = calls_per_module.get(module_index, 0) + 1
        return [self._activation_modules[m][0] + (f"#{k + 1}" if calls_per_module[m] > 1 else "")
                for m, k in self._sites]

    @property
    def activation_note(self):
        """None when activation statistics were recorded; otherwise why there are none."""
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
        self._flush_gradients()
        if name in self._records:
            columns = [self._records[name][i] for i in self._order]
        else:
            columns = [[_activation_stat(name, record) for record in records] for records in self._sites.values()]
        steps = min((len(values) for values in columns), default=0)
        if steps == 0:
            return torch.empty(0, len(columns), dtype=torch.float64)
        return torch.stack([torch.stack(values[:steps]).double() for values in columns], dim=1)

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
            for i, weights in enumerate(self._weights):
                for j, p in enumerate(weights):
                    self._handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(i, j)))
            for i, (_, module) in enumerate(self._activation_modules):
                self._handles.append(module.register_forward_hook(self._activation_hook(i)))
            self._handles.append(register_optimizer_step_pre_hook(self._before_step))
            self._handles.append(register_optimizer_step_post_hook(self._after_step))
        except BaseException:
            self.__exit__(None, None, None)   # nothing stays attached
            raise
        return self

    def __exit__(self, *exc_info):
        self._flush_gradients()
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
        self._flush_gradients()
        self._calls = {}
        if torch.is_grad_enabled():
            self._recording = self._training_steps % self.every == 0
            self._training_steps += 1
        if self._order == list(range(len(self._layers))) and self._order_recorder is None and not self._sites:
            self._order_recorder = ForwardOrder(self.model)

    def _forward_ends(self, module, inputs, output):
        if self._order_recorder is not None:
            index = {id(m): i for i, (_, m) in enumerate(self._layers)}
            self._order = [index[id(m)] for _, m in self._order_recorder.sort(self._layers)]
            self._order_recorder.remove()
            self._order_recorder = None

    def _grad_hook(self, i, j):
        def hook(p):
            if self._recording:
                self._pending[(i, j)] = norm(p.grad)
        return hook

    def _flush_gradients(self):
        if not self._pending:
            return
        received = [[(i, j) for j in range(len(weights)) if (i, j) in self._pending]
                    for i, weights in enumerate(self._weights)]
        totals = joint_norms([self._pending[key] for keys in received for key in keys], [len(keys) for keys in received])
        for records, total, keys in zip(self._records["grad_norm"], totals, received):
            records.append(total if keys else _NAN)   # NaN: no weight of the layer got a gradient
        self._pending = {}

    def _activation_hook(self, i):
        saturation = _SATURATION_BY_TYPE.get(type(self._activation_modules[i][1]))

        def hook(module, inputs, output):
            if not self._recording or not torch.is_grad_enabled() or not isinstance(output, torch.Tensor):
                return
            call = self._calls.get(i, 0)
            self._calls[i] = call + 1
            a = output.detach().float()
            saturated = None if saturation is None else ((a < saturation[0]) | (a > saturation[1])).sum()
            # alive: units (all positions but the batch dimension) that are nonzero for some example
            units = a.numel() // len(a) if a.dim() > 0 and len(a) else 0
            alive = torch.count_nonzero(a.reshape(len(a), -1).abs().amax(dim=0)) if units else None
            self._sites.setdefault((i, call), []).append((a.mean(), a.std() if a.numel() > 1 else _NAN, saturated, a.numel(), alive, units))
        return hook

    def _holds_our_weights(self, optimizer):
        return any(id(p) in self._weight_ids for group in optimizer.param_groups for p in group["params"])

    def _before_step(self, optimizer, args, kwargs):
        """Before a recorded step: the weights' norms; the computed step of the layers where rounding may
        absorb it (every layer at the first recorded step, then those whose last ratio was below
        :data:`REPLAY_BELOW`); for the others a copy of the weights, to difference after the step."""
        self._flush_gradients()
        if not self._recording or not self._holds_our_weights(optimizer):
            return
        self._sizes = group_norms(self._weights)
        last = torch.stack([values[-1] if values else torch.zeros((), dtype=torch.float64)
                            for values in self._records["update_ratio"]]).tolist()   # one host read, not one per layer
        replay = [i for i in range(len(self._weights)) if not last[i] > REPLAY_BELOW]
        self._steps = {}
        if replay and self.update_note is None:
            try:
                if optimizer not in self._replays:
                    self._replays[optimizer] = StepReplay(optimizer, [p for weights in self._weights for p in weights])
                norms = self._replays[optimizer].step_norms([p for i in replay for p in self._weights[i]])
                steps = joint_norms(norms, [len(self._weights[i]) for i in replay])
            except Exception as error:   # an optimizer built otherwise than torch.optim's: the applied change
                self.update_note = (f"{type(optimizer).__name__} could not be replayed in float64 "
                                    f"({type(error).__name__}: {error}); update_ratio is the applied change "
                                    f"W_after - W_before, in which float32 rounding absorbs steps below about "
                                    f"6e-8 of a weight")
            else:
                self._steps = dict(zip(replay, steps))
        if self._snapshots is None or any(b.shape != p.shape for ws, bs in zip(self._weights, self._snapshots)
                                          for p, b in zip(ws, bs)):
            self._snapshots = [[torch.empty_like(p) for p in weights] for weights in self._weights]
        differenced = [i for i in range(len(self._weights)) if i not in self._steps]
        if differenced:
            with torch.no_grad():
                torch._foreach_copy_([b for i in differenced for b in self._snapshots[i]],
                                     [p.detach() for i in differenced for p in self._weights[i]])

    def _after_step(self, optimizer, args, kwargs):
        if self._sizes is None or not self._holds_our_weights(optimizer):
            return
        differenced = [i for i in range(len(self._weights)) if i not in self._steps]
        if differenced:
            with torch.no_grad():
                torch._foreach_sub_([b for i in differenced for b in self._snapshots[i]],
                                    [p.detach() for i in differenced for p in self._weights[i]])
            self._steps.update(zip(differenced, group_norms([self._snapshots[i] for i in differenced])))
        for i, records in enumerate(self._records["update_ratio"]):
            records.append(self._steps[i] / self._sizes[i])
        self._sizes = None
        self._steps = None


def _activation_stat(name, record):
    """One statistic of one recorded activation call, as a scalar tensor (NaN where it does not apply)."""
    mean, std, saturated, count, alive, units = record
    if name == "act_mean":
        return mean
    if name == "act_std":
        return std
    if name == "saturated":
        return _NAN if saturated is None else saturated / count
    return _NAN if alive is None else 1 - alive / units     # dead
