"""Watch gradient flow during training: :class:`GradientMonitor` records per-layer gradient norms,
activation statistics and update-to-weight ratios at every (or every k-th) training step, in the
course's :func:`~gradcourse.core.train.fit` or in any loop a learner writes.

The monitor attaches :mod:`~gradcourse.core.monitor.hooks`, which cut what they see into the training steps
of :mod:`~gradcourse.core.monitor.training_steps`. For one-shot measurements on a single batch see
:mod:`gradcourse.core.probes`.
"""

from __future__ import annotations

import collections
import contextlib
import weakref

import torch

from .. import _checks
from ..layers import find_layers, layer_weights, sharded_parameters
from .activation_summary import ACTIVATION_MODULES, histogram_range
from .hooks import MonitorHooks
from .step_updates import OptimizerSteps
from .training_steps import TrainingSteps

__all__ = ["GradientMonitor", "STATS", "paused"]

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
        weights = [layer_weights(m) for _, m in self._layers]
        self._steps = OptimizerSteps(weights)    # the update ratios at each optimizer's steps
        self._activation_modules = [(name or type(m).__name__, m) for name, m in model.named_modules()
                                    if isinstance(m, ACTIVATION_MODULES)]
        self._recorder = TrainingSteps(self._steps.flat, [len(w) for w in weights], self._activation_modules,
                                       self.every, self.histogram_bins, self.histogram_range)
        self._hooks = MonitorHooks(model, self._layers, self._activation_modules, self._steps, self._recorder)

    # --- what was recorded ---------------------------------------------------
    @property
    def active(self):
        """True while the hooks are registered."""
        return self._hooks.attached

    @property
    def layer_names(self):
        """Names of the monitored layers, in forward order (after the first forward pass)."""
        return [self._layers[i][0] for i in self._hooks.order]

    @property
    def layers(self):
        """The monitored layer modules, in forward order."""
        return [self._layers[i][1] for i in self._hooks.order]

    @property
    def skipped_steps(self):
        """Training steps whose gradient no optimizer step used (``GradScaler`` skipped it, ``zero_grad`` discarded it)."""
        return self._recorder.skipped_steps

    @property
    def update_note(self):
        """None when every ``update_ratio`` is the step the optimizer computed; otherwise why it is not."""
        return self._steps.note

    @property
    def activation_names(self):
        """Names of the activation calls seen, in forward order."""
        sites = self._recorder.current().sites
        calls_per_module = collections.Counter(module_index for module_index, _ in sites)
        return [self._activation_modules[m][0] + (f"#{k + 1}" if calls_per_module[m] > 1 else "") for m, k in sites]

    @property
    def activation_note(self):
        """None when activation statistics were recorded; otherwise why there are none or some are NaN."""
        self._recorder.summarize_activations()
        if self._recorder.changed_outputs:
            return (f"{self._recorder.changed_outputs} activation outputs were changed in place after their module returned "
                    "them (by an in-place operation later in forward, e.g. Dropout(inplace=True)); their statistics "
                    "are NaN")
        if self._recorder.current().sites:
            return None
        if not self._activation_modules:
            return ("this model has no activation modules (it applies its activations as functions, e.g. "
                    "torch.relu in forward), so GradientMonitor cannot see them: no activation statistics")
        return "no forward pass with gradients enabled has been recorded yet"

    def series(self, name):
        """The recorded values of one statistic as a float64 tensor of shape (steps, columns):
        one column per layer for grad_norm and update_ratio, per activation call otherwise."""
        _checks.choice("name", name, STATS)
        rows = self._recorder.current()
        if name in ("grad_norm", "update_ratio"):
            values = getattr(rows, name)
            if not values:
                return torch.empty(0, len(self._layers), dtype=torch.float64)
            return torch.stack(values)[:, self._hooks.order]
        return rows.activation_series(STATS.index(name) - 1)    # act_mean, act_std, saturated, dead -> 0..3

    def histograms(self):
        """``{activation name: (shares, edges)}`` with ``histogram_bins=B``: ``shares (steps, B)``, the share of
        the entries in each bin per recorded step (none for entries outside the range), and the ``B + 1`` edges."""
        if not self.histogram_bins:
            raise ValueError("histogram_bins=0: this GradientMonitor records no histograms; build it with "
                             "histogram_bins=40 (say) to record them")
        rows = self._recorder.current()
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

    def to_tensorboard(self, writer, *, tag_prefix="gradcourse"):
        """Write the records to TensorBoard: see :func:`gradcourse.core.monitor.export.to_tensorboard`."""
        from .export import to_tensorboard
        return to_tensorboard(self, writer, tag_prefix=tag_prefix)

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return (f"GradientMonitor({len(self._layers)} layers, {len(self.activation_names)} activation calls, {state}, "
                f"{self.steps('grad_norm')} steps recorded with gradients, {self.steps('update_ratio')} with updates)")

    # --- hooks -----------------------------------------------------------------
    def __enter__(self):
        if self.active:
            raise RuntimeError("this GradientMonitor is already active")
        try:
            self._hooks.attach()
        except BaseException:
            self.__exit__(None, None, None)   # nothing stays attached
            raise
        _ACTIVE.add(self)
        return self

    def __exit__(self, *exc_info):
        _ACTIVE.discard(self)
        self._hooks.forget_step_under_way()
        try:
            self._recorder.measure_gradients()
            self._recorder.end_training_step()
        finally:                      # nothing stays attached, whatever the last measurement raised
            self._hooks.detach()
            self._steps.reset()
        return False


@contextlib.contextmanager
def paused(model):
    """Within this block, no active :class:`GradientMonitor` of ``model`` (or of a module of it) records
    anything: for a pass that is not part of training, such as :func:`gradcourse.core.diagnose.diagnose` run in place."""
    _checks.module("model", model)
    modules = {id(m) for m in model.modules()}
    monitors = [m for m in list(_ACTIVE) if id(m.model) in modules or any(x is model for x in m.model.modules())]
    for monitor in monitors:
        monitor._hooks.pauses += 1
    try:
        yield
    finally:
        for monitor in monitors:
            monitor._hooks.pauses -= 1

