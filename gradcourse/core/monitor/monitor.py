"""Watch gradient flow during training: :class:`GradientMonitor` records per-layer gradient norms,
activation statistics and update-to-weight ratios at every (or every k-th) training step, in the
course's :func:`~gradcourse.core.train.fit` or in any loop a learner writes.

For one-shot measurements on a single batch see :mod:`gradcourse.core.probes`.
"""

from __future__ import annotations

import collections
import contextlib
import weakref

import torch
from torch.autograd import Variable
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from .. import _checks
from .activation_summary import ACTIVATION_MODULES, histogram_range
from ..layers import ForwardOrder, find_layers, layer_weights, sharded_parameters
from .rows import Row, Rows
from ..norms import tensor_norms
from .step_updates import OptimizerSteps, amp_scaling

STATS = ("grad_norm", "act_mean", "act_std", "saturated", "dead", "update_ratio")

_ACTIVE = weakref.WeakSet()      # the monitors whose hooks are attached, for paused()


class GradientMonitor:
    """Record per-layer statistics of any ``torch.nn.Module`` while it trains.

    Use it as a context manager (hooks are removed on exit, also after an
    exception), or pass it to :func:`gradcourse.core.train.fit`::

        with GradientMonitor(model) as monitor:
            fit(model, X, y, epochs=1, batch_size=64, lr=0.1)
        monitor.series("grad_norm")      # tensor (steps, layers)

    Layers (see :func:`find_layers`; ``layers=`` or ``include=`` choose others) are ordered as the
    first forward pass meets them, input side first; :attr:`layer_names` names them; frozen layers are
    left out. A row is one training step: in a loop that steps an optimizer, one optimizer step with
    the forward and backward passes before it (before any step, as when probing gradients, one backward
    pass). For each layer:

    * ``grad_norm``: ``||dL/dW||`` of the layer's weights as the optimizer that holds them used it, measured
      at its step (all of them in one fused call): summed over gradient accumulation, unscaled by
      ``GradScaler``, all-reduced by DistributedDataParallel, clipped (the norm before clipping is what
      ``clip_grad_norm_`` returns, kept by ``fit`` in ``History.grad_norm``);
    * ``update_ratio``: ``||dW|| / ||W||`` of the step that optimizer computed; NaN for a layer no optimizer
      stepped. Where float32 rounding may absorb it the step is replayed in float64, elsewhere the weights
      are differenced (:mod:`gradcourse.core.monitor.step_updates`); :attr:`update_note` says when the applied change had
      to be used (an optimizer that cannot be replayed, ``step(closure)``). Karpathy's rule of thumb puts
      healthy values near 1e-3.

    In a loop that steps, every row has both (NaN where no gradient was used or no weight moved), and a
    training step whose gradient no optimizer step used (``GradScaler`` skipped it for inf/NaN gradients,
    or ``zero_grad`` discarded it) has none; :attr:`skipped_steps` counts them. Before the first step a row
    holds the gradient as backward left it (with a ``GradScaler``'s loss scale still in it); at the first
    step those rows are counted as skipped and give way to the stepped ones.

    Activations: every activation *module* the forward pass calls (ReLU, Tanh, Sigmoid, GELU, ...;
    one entry per call, named by module path with ``#k`` for a module called k times), in the forward
    pass with gradients enabled that the training step's first backward pass went through (evaluation
    under ``no_grad`` is skipped; with gradient accumulation, the first micro-batch's; a pass with
    gradients enabled but no backward after it is replaced by the next), in :attr:`activation_names`:

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

    Several processes: under ``DistributedDataParallel`` every rank records the same ``grad_norm`` and
    ``update_ratio``, those of the all-reduced gradient, and activation statistics of its own share of the
    batch. Sharded parameters (FSDP) are refused: a layer's norm would need a reduction across ranks.
    A ``copy.deepcopy`` of the model carries the hooks, which record nothing of the copy.

    ``every=k`` samples: it records the 1st, (k+1)-th, (2k+1)-th ... training step and nothing in
    between, which runs without its per-step hooks. Every statistic is recorded on the same steps, so
    :meth:`series` has one row per recorded step. What it costs: ``benchmarks/monitor_overhead.py``.

    ``histogram_bins=B`` also records, per activation call and recorded step, a histogram of its
    outputs over ``B`` bins of ``histogram_range`` (by default the output range of a bounded activation;
    see :meth:`histograms`): how the distribution moves over training, as fastai's ``ActivationStats``
    and Karpathy's saturation plots show it (``gradcourse.display.plots.plot_histograms_over_steps``).
    :meth:`to_dataframe` and :meth:`to_tensorboard` take the records elsewhere.
    """

    def __init__(self, model, layers=None, include=None, every=1, histogram_bins=0, histogram_range=None):
        self.every = _checks.integer("every", every, minimum=1)
        self.histogram_bins = _checks.integer("histogram_bins", histogram_bins, minimum=0)
        self.histogram_range = None if histogram_range is None else _checks.interval("histogram_range", histogram_range)
        _checks.module("model", model)
        if isinstance(model, torch.jit.ScriptModule):
            raise ValueError(f"model={type(model).__name__} (a TorchScript module, torch.jit.script) is not allowed; "
                             "hooks cannot be attached to it: build the GradientMonitor on the model before scripting")
        sharded = sharded_parameters(model)
        if sharded:
            raise ValueError(f"model is not allowed: its parameters {sharded[:3]} are sharded across processes (FSDP), "
                             "so a layer's gradient norm would need a reduction across ranks; monitor the model "
                             "without sharding, or under DistributedDataParallel")
        self.model = model
        self._layers = find_layers(model, layers, include)   # registration order until the first forward
        self._weights = [layer_weights(m) for _, m in self._layers]
        self._steps = OptimizerSteps(self._weights)    # the update ratios at each optimizer's steps
        self._flat = self._steps.flat                  # every monitored weight, layer by layer
        self._sizes = [len(weights) for weights in self._weights]
        self._order = list(range(len(self._layers)))
        self._order_known = False     # the forward order, once a forward pass has shown it
        self._in_forward = False      # inside the model's own forward (not a recomputation in backward)
        self._activation_modules = [(name or type(m).__name__, m) for name, m in model.named_modules()
                                    if isinstance(m, ACTIVATION_MODULES)]
        self._rows = Rows()           # the training steps recorded in a loop that steps an optimizer
        self._probe_rows = Rows()     # the backward passes recorded before any optimizer step
        self._row = None              # the training step under way (a Row, recorded or not)
        self._stepped_ever = False
        self._stepped_since_start = False   # an optimizer step of our weights since the current training step began
        self.skipped_steps = 0
        self._received = {}           # weight index -> .grad of this backward pass, to measure when it ends
        self._outputs = []            # (site, output, its version) of the current forward pass
        self._changed_outputs = 0
        self._handles = []
        self._step_handles = []
        self._order_recorder = None
        self._closure_step = None     # the optimizer whose step(closure) is running
        self._paused = 0
        self._training_steps = 0
        self._all_hooks = True        # whether every per-step hook is attached, or only one gradient hook
        self._no_op_step = None       # the optimizer whose step a GradScaler found inf in (a fused one skips it)

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
    def update_note(self):
        """None when every ``update_ratio`` is the step the optimizer computed; otherwise why it is not."""
        return self._steps.note

    @property
    def activation_names(self):
        """Names of the activation calls seen, in forward order."""
        sites = self._current().sites
        calls_per_module = collections.Counter(module_index for module_index, _ in sites)
        return [self._activation_modules[m][0] + (f"#{k + 1}" if calls_per_module[m] > 1 else "") for m, k in sites]

    @property
    def activation_note(self):
        """None when activation statistics were recorded; otherwise why there are none or some are NaN."""
        self._summarize_activations()
        if self._changed_outputs:
            return (f"{self._changed_outputs} activation outputs were changed in place after their module returned "
                    "them (by an in-place operation later in forward, e.g. Dropout(inplace=True)); their statistics "
                    "are NaN")
        if self._current().sites:
            return None
        if not self._activation_modules:
            return ("this model has no activation modules (it applies its activations as functions, e.g. "
                    "torch.relu in forward), so GradientMonitor cannot see them: no activation statistics")
        return "no forward pass with gradients enabled has been recorded yet"

    def series(self, name):
        """The recorded values of one statistic as a float64 tensor of shape (steps, columns):
        one column per layer for grad_norm and update_ratio, per activation call otherwise."""
        _checks.choice("name", name, STATS)
        rows = self._current()
        if name in ("grad_norm", "update_ratio"):
            values = getattr(rows, name)
            if not values:
                return torch.empty(0, len(self._layers), dtype=torch.float64)
            return torch.stack(values)[:, self._order]
        return rows.activation_series(STATS.index(name) - 1)    # act_mean, act_std, saturated, dead -> 0..3

    def histograms(self):
        """``{activation name: (shares, edges)}`` with ``histogram_bins=B``: ``shares (steps, B)``, the share of
        the entries in each bin per recorded step (none for entries outside the range), and the ``B + 1`` edges."""
        if not self.histogram_bins:
            raise ValueError("histogram_bins=0: this GradientMonitor records no histograms; build it with "
                             "histogram_bins=40 (say) to record them")
        rows = self._current()
        result = {}
        for name, site in zip(self.activation_names, rows.sites):
            low, high = self.histogram_range or histogram_range(self._activation_modules[site[0]][1])
            shares = rows.histograms.get(site, [])
            result[name] = (torch.stack(shares) if shares else torch.empty(0, self.histogram_bins, dtype=torch.float64),
                            torch.linspace(low, high, self.histogram_bins + 1, dtype=torch.float64))
        return result

    def mean(self, name):
        """Per-column mean over the recorded steps of one statistic (NaN entries left out), as a list of floats."""
        return self.series(name).nanmean(dim=0).tolist()

    def steps(self, name="grad_norm"):
        """How many steps of one statistic have been recorded."""
        return len(self.series(name))

    def to_dataframe(self):
        """The records as a pandas DataFrame, one row per (step, layer, statistic): see
        :func:`gradcourse.core.monitor.export.to_dataframe`."""
        from .export import to_dataframe
        return to_dataframe(self)

    def to_tensorboard(self, writer, **options):
        """Write the records to TensorBoard: see :func:`gradcourse.core.monitor.export.to_tensorboard`."""
        from .export import to_tensorboard
        return to_tensorboard(self, writer, **options)

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return (f"GradientMonitor({len(self._layers)} layers, {len(self.activation_names)} activation calls, {state}, "
                f"{self.steps('grad_norm')} steps recorded with gradients, {self.steps('update_ratio')} with updates)")

    def _current(self):
        """The rows recorded so far, with the training step under way where it has something to show."""
        self._summarize_activations()
        self._measure_gradients()
        row = self._row
        rows = self._destination(row) if row is not None else None
        if rows is None:
            return self._rows if self._stepped_ever else self._probe_rows
        self._measure(row)
        return rows.with_row(row.finish(self._sizes, self._stepped_ever))

    # --- hooks -----------------------------------------------------------------
    def __enter__(self):
        if self.active:
            raise RuntimeError("this GradientMonitor is already active")
        try:
            self._handles.append(self.model.register_forward_pre_hook(_call(self, "_forward_starts")))
            self._handles.append(self.model.register_forward_hook(_call(self, "_forward_ends")))
            self._handles.append(register_optimizer_step_pre_hook(_call(self, "_before_step")))
            self._handles.append(register_optimizer_step_post_hook(_call(self, "_after_step")))
            self._attach_step_hooks(all_of_them=self._row is None or self._row.recorded)
        except BaseException:
            self.__exit__(None, None, None)   # nothing stays attached
            raise
        _ACTIVE.add(self)
        return self

    def __exit__(self, *exc_info):
        _ACTIVE.discard(self)
        self._in_forward = False
        self._closure_step = self._no_op_step = None   # a step left half-way is not waited for on re-entry
        try:
            self._measure_gradients()
            self._end_training_step()
        finally:                      # nothing stays attached, whatever the last measurement raised
            self._detach_step_hooks()
            for handle in self._handles:
                handle.remove()
            self._handles = []
            if self._order_recorder is not None:
                self._order_recorder.remove()
                self._order_recorder = None
            self._steps.reset()
        return False

    def _forward_starts(self, module, inputs):
        if module is not self.model or self._paused:
            return
        self._in_forward = True
        if torch.is_grad_enabled():
            if self._closure_step is None:     # (inside step(closure), every pass belongs to that step)
                self._training_step_boundary()
            row = self._row
            if row is not None and row.recorded and not row.backward_seen:   # the pass its first backward goes through
                self._outputs = []
                row.clear_activations()
        if not self._order_known and self._order_recorder is None:
            self._order_recorder = ForwardOrder(self.model)

    def _training_step_boundary(self):
        """Close the training step under way if this forward pass begins another one, and open the next.
        A step goes on while its gradients are being accumulated (in place since the last backward pass) and,
        in a loop that steps an optimizer, until the optimizer steps."""
        row = self._row
        if row is not None and not self._stepped_since_start:
            if row.accumulating(self._flat) or (self._stepped_ever and not row.backward_seen):
                return
        self._end_training_step()
        recording = self._training_steps % self.every == 0
        self._training_steps += 1
        self._stepped_since_start = False
        self._row = Row(len(self._flat), recorded=recording)
        if self.every > 1:        # the steps in between run with one gradient hook only, to see where they end
            self._attach_step_hooks(all_of_them=recording)

    def _destination(self, row):
        """Where a finished training step goes: the rows of a loop that steps an optimizer, the probe rows
        before any step, or nowhere (None): an unrecorded step, a backward pass whose gradient no step used,
        a forward pass alone in a loop that steps."""
        if not row.recorded:
            return None
        if row.stepped:
            return self._rows
        if not self._stepped_ever:
            return self._probe_rows if (row.backward_seen or row.sites) else None
        # a gradient still in place (the last step, stopped before its update) is shown
        return self._rows if row.backward_seen and not row.discarded(self._flat) else None

    def _end_training_step(self):
        """Store the training step under way where :meth:`_destination` says; count a skipped one."""
        self._summarize_activations()
        row, self._row = self._row, None
        if row is None:
            return
        rows = self._destination(row)
        if rows is None:
            self.skipped_steps += self._stepped_ever and row.backward_seen and not row.stepped
            return
        self._measure(row)
        rows.append(row.finish(self._sizes, self._stepped_ever))

    def _attach_step_hooks(self, all_of_them=True):
        """The hooks that record a step: one per weight's gradient, one per activation module's output;
        with ``all_of_them=False`` only the gradient hook of the weight nearest the output, which tells an
        unrecorded step's backward pass and whether its gradient was discarded."""
        if self._step_handles and self._all_hooks == all_of_them:
            return
        self._detach_step_hooks()
        self._all_hooks = all_of_them
        trainable = [k for k, p in enumerate(self._flat) if p.requires_grad]   # (one frozen since: its norm is NaN)
        for k in trainable if all_of_them else trainable[-1:]:
            self._step_handles.append(self._flat[k].register_post_accumulate_grad_hook(self._grad_hook(k)))
        if all_of_them:
            for i, (_, module) in enumerate(self._activation_modules):
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
            index = {id(m): i for i, (_, m) in enumerate(self._layers)}
            self._order = [index[id(m)] for _, m in self._order_recorder.sort(self._layers)]
            self._order_known = True
            self._order_recorder.remove()
            self._order_recorder = None

    def _grad_hook(self, k):
        weight = self._flat[k]

        def hook(p):
            row = self._row
            if p is not weight or self._paused or row is None:   # a deep copy's weight, or outside a step
                return
            row.received(k, p.grad)
            if not row.recorded or self._stepped_ever:     # measured at the optimizer step, as the step uses it
                return
            if not self._received:
                try:        # before any step, measure every gradient of this backward pass at once, when it ends
                    Variable._execution_engine.queue_callback(self._measure_gradients)
                except RuntimeError:   # not inside autograd's engine: measured at the next read
                    pass
            self._received[k] = p.grad
        return hook

    def _measure_gradients(self):
        """The norms of the gradients this backward pass accumulated, in one fused call."""
        if self._received and self._row is not None and self._row.recorded:
            self._row.measured(list(self._received), list(self._received.values()), tensor_norms(list(self._received.values())))
        self._received = {}

    def _measure(self, row, held=None, grad_scale=None):
        """Measure in one fused call the gradients an optimizer step holding the weights ``held`` is about to
        use, as they are now (accumulated, all-reduced, clipped; divided by the ``grad_scale`` a fused
        optimizer unscales by inside its step); without ``held``, those received and not measured yet, in a
        step no optimizer took (one taken records only what its steps used)."""
        if held is None:
            chosen = [] if row.stepped else row.to_measure(self._flat)
        else:
            chosen = [k for k in held if self._flat[k].grad is not None]
        if chosen:
            grads = [self._flat[k].grad for k in chosen]
            norms = tensor_norms(grads)
            if grad_scale is not None:
                norms = norms / grad_scale.double().to(norms.device)
            row.measured(chosen, grads, norms, at_step=held is not None)

    def _activation_hook(self, i):
        module = self._activation_modules[i][1]

        def hook(m, inputs, output):
            row = self._row
            if (m is not module or self._paused or row is None or not row.recorded or not torch.is_grad_enabled()
                    or not isinstance(output, torch.Tensor)):
                return
            # in the model's forward, only until the step's first backward pass; outside it (a recomputation
            # in backward, a submodule run on its own) only a module this step has not recorded yet
            if row.backward_seen if self._in_forward else row.called(i):
                return
            a = output.detach()
            self._outputs.append(((i, row.calls(i)), a, a._version))
        return hook

    def _summarize_activations(self):
        """Mean, std, saturated and dead share of each activation output of the last forward pass."""
        if self._outputs:
            outputs, self._outputs = self._outputs, []
            if self._row is not None:
                self._changed_outputs += self._row.summarize(outputs, self._activation_modules, self.histogram_bins,
                                                             self.histogram_range)

    def _before_step(self, optimizer, args, kwargs):
        held = [] if self._paused else self._steps.held(optimizer)
        if not held:
            return
        closure = _has_closure(args, kwargs)
        if closure and self._closure_step is None:   # the step evaluates the model itself: a training step begins
            if self._stepped_since_start or self._row is None:
                self._training_step_boundary()
            self._closure_step = optimizer
        grad_scale, found_inf = amp_scaling(optimizer)
        if found_inf:                 # a fused optimizer under GradScaler skips this step itself
            self._no_op_step = optimizer
            return
        row = self._row
        if row is not None and row.recorded:
            self._measure_gradients()
            if not closure:
                self._measure(row, held, grad_scale)     # the gradients as this step uses them
            self._steps.before(optimizer, held, row.norms_of, closure=closure, grad_scale=grad_scale)

    def _after_step(self, optimizer, args, kwargs):
        if self._closure_step is optimizer:
            self._closure_step = None
        held = [] if self._paused else self._steps.held(optimizer)
        if not held:
            return
        if self._no_op_step is optimizer:
            self._no_op_step = None
            return
        row = self._row
        measured = self._steps.after(optimizer)
        if row is not None and row.recorded and measured is not None:
            self._measure_gradients()
            if _has_closure(args, kwargs):
                self._measure(row, held)       # step(closure): the gradient of its last evaluation
            row.stepped_layers(*measured, len(self._layers))
        elif row is not None:
            row.stepped += 1
        self._stepped_since_start = True
        self._note_first_step()

    def _note_first_step(self):
        """At the first optimizer step, the backward passes recorded before it were passes no step used."""
        if not self._stepped_ever:
            self._stepped_ever = True
            self.skipped_steps += len(self._probe_rows.grad_norm)


@contextlib.contextmanager
def paused(model):
    """Within this block, no active :class:`GradientMonitor` of ``model`` (or of a module of it) records
    anything: for a pass that is not part of training, such as :func:`gradcourse.core.diagnose.diagnose` run in place."""
    _checks.module("model", model)
    modules = {id(m) for m in model.modules()}
    monitors = [m for m in list(_ACTIVE) if id(m.model) in modules or any(x is model for x in m.model.modules())]
    for monitor in monitors:
        monitor._paused += 1
    try:
        yield
    finally:
        for monitor in monitors:
            monitor._paused -= 1


def _has_closure(args, kwargs):
    """Whether an optimizer step hook's ``args`` (the optimizer, then ``step``'s own) and ``kwargs`` pass a closure."""
    return (args[1] if len(args) > 1 else kwargs.get("closure")) is not None


def _call(monitor, method):
    """A hook that calls ``monitor.method``: a plain function, which ``copy.deepcopy`` of the model shares
    rather than copies (a bound method would copy the whole monitor with it)."""
    def hook(*args):
        return getattr(monitor, method)(*args)
    return hook
