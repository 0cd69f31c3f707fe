"""The hooks a :class:`~gradcourse.core.monitor.GradientMonitor` attaches (:class:`MonitorHooks`): on the
model's forward pass, on torch's optimizer steps, on each monitored weight's gradient and on each
activation module's output. They tell the monitor's
:class:`~gradcourse.core.monitor.training_steps.TrainingSteps` what happened and its
:class:`~gradcourse.core.monitor.step_updates.OptimizerSteps` when an optimizer steps."""

from __future__ import annotations

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from ..layers import ForwardOrder
from .step_updates import amp_scaling

__all__ = ["MonitorHooks"]


class MonitorHooks:
    """The hooks of one monitor on ``model``, whose ``layers`` are ``(name, module)`` pairs and whose
    ``activation_modules`` are ``(name, module)`` pairs; ``steps`` is its
    :class:`~gradcourse.core.monitor.step_updates.OptimizerSteps`, ``recorder`` its
    :class:`~gradcourse.core.monitor.training_steps.TrainingSteps`.

    :attr:`order` lists the layers' indices in forward order once a forward pass has shown it
    (registration order until then); while :attr:`pauses` is above 0 the hooks record nothing.
    """

    def __init__(self, model, layers, activation_modules, steps, recorder):
        self.model = model
        self.layers = layers
        self.activation_modules = activation_modules
        self.steps = steps
        self.recorder = recorder
        self.flat = steps.flat            # every monitored weight, layer by layer
        self.order = list(range(len(layers)))
        self.pauses = 0
        self._order_known = False     # the forward order, once a forward pass has shown it
        self._in_forward = False      # inside the model's own forward (not a recomputation in backward)
        self._handles = []
        self._step_handles = []
        self._order_recorder = None
        self._closure_step = None     # the optimizer whose step(closure) is running
        self._all_hooks = True        # whether every per-step hook is attached, or only one gradient hook
        self._no_op_step = None       # the optimizer whose step a GradScaler found inf in (a fused one skips it)

    @property
    def attached(self):
        """True while the hooks are registered."""
        return bool(self._handles)

    def attach(self):
        """Register the hooks (the caller detaches them if this raises half-way)."""
        self._handles.append(self.model.register_forward_pre_hook(_call(self, "_forward_starts")))
        self._handles.append(self.model.register_forward_hook(_call(self, "_forward_ends")))
        self._handles.append(register_optimizer_step_pre_hook(_call(self, "_before_step")))
        self._handles.append(register_optimizer_step_post_hook(_call(self, "_after_step")))
        row = self.recorder.row
        self._attach_step_hooks(all_of_them=row is None or row.recorded)

    def forget_step_under_way(self):
        """Leave the model's forward pass and any step left half-way: a re-entered monitor starts clean."""
        self._in_forward = False
        self._closure_step = self._no_op_step = None   # a step left half-way is not waited for on re-entry

    def detach(self):
        """Remove every hook."""
        self._detach_step_hooks()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._order_recorder is not None:
            self._order_recorder.remove()
            self._order_recorder = None

    def _forward_starts(self, module, inputs):
        if module is not self.model or self.pauses:
            return
        self._in_forward = True
        if torch.is_grad_enabled():
            if self._closure_step is None:     # (inside step(closure), every pass belongs to that step)
                self._next_training_step()
            self.recorder.forward_pass_begins()
        if not self._order_known and self._order_recorder is None:
            self._order_recorder = ForwardOrder(self.model)

    def _next_training_step(self):
        """Close the training step under way if this pass begins another one (see
        :meth:`TrainingSteps.next_training_step`), and open the next."""
        recording = self.recorder.next_training_step()
        if recording is not None and self.recorder.every > 1:   # the steps in between run with one gradient hook
            self._attach_step_hooks(all_of_them=recording)       # only, to see where they end

    def _attach_step_hooks(self, all_of_them=True):
        """The hooks that record a step: one per weight's gradient, one per activation module's output;
        with ``all_of_them=False`` only the gradient hook of the weight nearest the output, which tells an
        unrecorded step's backward pass and whether its gradient was discarded."""
        if self._step_handles and self._all_hooks == all_of_them:
            return
        self._detach_step_hooks()
        self._all_hooks = all_of_them
        trainable = [k for k, p in enumerate(self.flat) if p.requires_grad]   # (one frozen since: its norm is NaN)
        for k in trainable if all_of_them else trainable[-1:]:
            self._step_handles.append(self.flat[k].register_post_accumulate_grad_hook(self._grad_hook(k)))
        if all_of_them:
            for i, (_, module) in enumerate(self.activation_modules):
                self._step_handles.append(module.register_forward_hook(self._activation_hook(i)))

    def _detach_step_hooks(self):
        for handle in self._step_handles:
            handle.remove()
        self._step_handles = []

    def _forward_ends(self, module, inputs, output):
        if module is not self.model:
            return
        self._in_forward = False
        if self._order_recorder is not None:
            index = {id(m): i for i, (_, m) in enumerate(self.layers)}
            self.order = [index[id(m)] for _, m in self._order_recorder.sort(self.layers)]
            self._order_known = True
            self._order_recorder.remove()
            self._order_recorder = None

    def _grad_hook(self, k):
        weight = self.flat[k]

        def hook(p):
            if p is not weight or self.pauses:   # a deep copy's weight
                return
            self.recorder.gradient_received(k, p)
        return hook

    def _activation_hook(self, i):
        module = self.activation_modules[i][1]

        def hook(m, inputs, output):
            if m is not module or self.pauses:
                return
            self.recorder.activation_output(i, output, self._in_forward)
        return hook

    def _before_step(self, optimizer, args, kwargs):
        held = [] if self.pauses else self.steps.held(optimizer)
        if not held:
            return
        closure = _has_closure(args, kwargs)
        if closure and self._closure_step is None:   # the step evaluates the model itself: a training step begins
            if self.recorder.stepped_since_start or self.recorder.row is None:
                self._next_training_step()
            self._closure_step = optimizer
        grad_scale, found_inf = amp_scaling(optimizer)
        if found_inf:                 # a fused optimizer under GradScaler skips this step itself
            self._no_op_step = optimizer
            return
        row = self.recorder.row
        if row is not None and row.recorded:
            self.recorder.measure_gradients()
            if not closure:
                self.recorder.measure(row, held, grad_scale)     # the gradients as this step uses them
            self.steps.before(optimizer, held, row.norms_of, closure=closure, grad_scale=grad_scale)

    def _after_step(self, optimizer, args, kwargs):
        if self._closure_step is optimizer:
            self._closure_step = None
        held = [] if self.pauses else self.steps.held(optimizer)
        if not held:
            return
        if self._no_op_step is optimizer:
            self._no_op_step = None
            return
        self.recorder.optimizer_stepped(held, self.steps.after(optimizer), _has_closure(args, kwargs))


def _has_closure(args, kwargs):
    """Whether an optimizer step hook's ``args`` (the optimizer, then ``step``'s own) and ``kwargs`` pass a closure."""
    return (args[1] if len(args) > 1 else kwargs.get("closure")) is not None


def _call(hooks, method):
    """A hook that calls ``hooks.method``: a plain function, which ``copy.deepcopy`` of the model shares
    rather than copies (a bound method would copy the whole monitor with it)."""
    def hook(*args):
        return getattr(hooks, method)(*args)
    return hook
