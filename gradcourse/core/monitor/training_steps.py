"""The training steps a :class:`~gradcourse.core.monitor.GradientMonitor` records (:class:`TrainingSteps`):
where one begins and ends, the gradient norms and activation outputs measured in it, and where a finished
one goes. The monitor's hooks (:mod:`~gradcourse.core.monitor.hooks`) tell it what happened."""

from __future__ import annotations

import torch
from torch.autograd import Variable

from ..norms import tensor_norms
from .rows import Row, Rows

__all__ = ["TrainingSteps"]


class TrainingSteps:
    """The rows recorded so far and the training step under way (a :class:`~gradcourse.core.monitor.rows.Row`,
    recorded or not).

    ``flat``: every monitored weight, layer by layer; ``sizes``: how many weights each layer has;
    ``activation_modules``: ``(name, module)`` of each activation module; ``every``, ``histogram_bins`` and
    ``histogram_range`` as in :class:`~gradcourse.core.monitor.GradientMonitor`.
    """

    def __init__(self, flat, sizes, activation_modules, every=1, histogram_bins=0, histogram_range=None):
        self.flat = flat
        self.sizes = sizes
        self.activation_modules = activation_modules
        self.every = every
        self.histogram_bins = histogram_bins
        self.histogram_range = histogram_range
        self.rows = Rows()            # the training steps recorded in a loop that steps an optimizer
        self.probe_rows = Rows()      # the backward passes recorded before any optimizer step
        self.row = None               # the training step under way (a Row, recorded or not)
        self.stepped_ever = False
        self.stepped_since_start = False   # an optimizer step of our weights since the current training step began
        self.skipped_steps = 0
        self.changed_outputs = 0
        self._received = {}           # weight index -> .grad of this backward pass, to measure when it ends
        self._outputs = []            # (site, output, its version) of the current forward pass
        self._training_steps = 0

    def current(self):
        """The rows recorded so far, with the training step under way where it has something to show."""
        self.summarize_activations()
        self.measure_gradients()
        row = self.row
        rows = self._destination(row) if row is not None else None
        if rows is None:
            return self.rows if self.stepped_ever else self.probe_rows
        self.measure(row)
        return rows.with_row(row.finish(self.sizes, self.stepped_ever))

    def next_training_step(self):
        """Close the training step under way if this forward pass begins another one, and open the next.
        A step goes on while its gradients are being accumulated (in place since the last backward pass) and,
        in a loop that steps an optimizer, until the optimizer steps. Returns None when the step goes on,
        else whether the new one is recorded."""
        row = self.row
        if row is not None and not self.stepped_since_start:
            if row.accumulating(self.flat) or (self.stepped_ever and not row.backward_seen):
                return None
        self.end_training_step()
        recording = self._training_steps % self.every == 0
        self._training_steps += 1
        self.stepped_since_start = False
        self.row = Row(len(self.flat), recorded=recording)
        return recording

    def _destination(self, row):
        """Where a finished training step goes: the rows of a loop that steps an optimizer, the probe rows
        before any step, or nowhere (None): an unrecorded step, a backward pass whose gradient no step used,
        a forward pass alone in a loop that steps."""
        if not row.recorded:
            return None
        if row.stepped:
            return self.rows
        if not self.stepped_ever:
            return self.probe_rows if (row.backward_seen or row.sites) else None
        # a gradient still in place (the last step, stopped before its update) is shown
        return self.rows if row.backward_seen and not row.discarded(self.flat) else None

    def end_training_step(self):
        """Store the training step under way where :meth:`_destination` says; count a skipped one."""
        self.summarize_activations()
        row, self.row = self.row, None
        if row is None:
            return
        rows = self._destination(row)
        if rows is None:
            self.skipped_steps += self.stepped_ever and row.backward_seen and not row.stepped
            return
        self.measure(row)
        rows.append(row.finish(self.sizes, self.stepped_ever))

    def gradient_received(self, k, weight):
        """Weight ``k`` (``weight``) has accumulated its gradient of a backward pass."""
        row = self.row
        if row is None:                        # outside a step
            return
        row.received(k, weight.grad)
        if not row.recorded or self.stepped_ever:     # measured at the optimizer step, as the step uses it
            return
        if not self._received:
            try:        # before any step, measure every gradient of this backward pass at once, when it ends
                Variable._execution_engine.queue_callback(self.measure_gradients)
            except RuntimeError:   # not inside autograd's engine: measured at the next read
                pass
        self._received[k] = weight.grad

    def measure_gradients(self):
        """The norms of the gradients this backward pass accumulated, in one fused call."""
        if self._received and self.row is not None and self.row.recorded:
            self.row.measured(list(self._received), list(self._received.values()), tensor_norms(list(self._received.values())))
        self._received = {}

    def measure(self, row, held=None, grad_scale=None):
        """Measure in one fused call the gradients an optimizer step holding the weights ``held`` is about to
        use, as they are now (accumulated, all-reduced, clipped; divided by the ``grad_scale`` a fused
        optimizer unscales by inside its step); without ``held``, those received and not measured yet, in a
        step no optimizer took (one taken records only what its steps used)."""
        if held is None:
            chosen = [] if row.stepped else row.to_measure(self.flat)
        else:
            chosen = [k for k in held if self.flat[k].grad is not None]
        if chosen:
            grads = [self.flat[k].grad for k in chosen]
            norms = tensor_norms(grads)
            if grad_scale is not None:
                norms = norms / grad_scale.double().to(norms.device)
            row.measured(chosen, grads, norms, at_step=held is not None)

    def forward_pass_begins(self):
        """A forward pass with gradients enabled begins: before the step's first backward pass, it replaces
        the activations recorded so far (the pass its first backward goes through is the one recorded)."""
        row = self.row
        if row is not None and row.recorded and not row.backward_seen:
            self._outputs = []
            row.clear_activations()

    def activation_output(self, i, output, in_forward):
        """Activation module ``i`` returned ``output``, in the model's own forward pass (``in_forward``) or
        outside it; kept to be summarized after the pass."""
        row = self.row
        if row is None or not row.recorded or not torch.is_grad_enabled() or not isinstance(output, torch.Tensor):
            return
        # in the model's forward, only until the step's first backward pass; outside it (a recomputation
        # in backward, a submodule run on its own) only a module this step has not recorded yet
        if row.backward_seen if in_forward else row.called(i):
            return
        a = output.detach()
        self._outputs.append(((i, row.calls(i)), a, a._version))

    def summarize_activations(self):
        """Mean, std, saturated and dead share of each activation output of the last forward pass."""
        if self._outputs:
            outputs, self._outputs = self._outputs, []
            if self.row is not None:
                self.changed_outputs += self.row.summarize(outputs, self.activation_modules, self.histogram_bins,
                                                           self.histogram_range)

    def optimizer_stepped(self, held, measured, closure):
        """An optimizer holding the weights ``held`` stepped; ``measured``: ``(layers, ||dW||, ||W||)`` of its
        step, or None; ``closure``: it was ``step(closure)``."""
        row = self.row
        if row is not None and row.recorded and measured is not None:
            self.measure_gradients()
            if closure:
                self.measure(row, held)       # step(closure): the gradient of its last evaluation
            row.stepped_layers(*measured, len(self.sizes))
        elif row is not None:
            row.stepped += 1
        self.stepped_since_start = True
        self._note_first_step()

    def _note_first_step(self):
        """At the first optimizer step, the backward passes recorded before it were passes no step used."""
        if not self.stepped_ever:
            self.stepped_ever = True
            self.skipped_steps += len(self.probe_rows.grad_norm)
