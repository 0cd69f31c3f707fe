"""Normalization layers: what they measure, what they guarantee.

* :class:`PreactivationQuantiles` records the distribution of a hidden activation's input
  while a network trains, and :class:`AccuracyOverSteps` its test accuracy every few steps
  (Ioffe & Szegedy 2015, Figure 1).
* :func:`scale_invariance` checks that BatchNorm makes a layer's loss invariant to the scale
  of its weights, so that the gradient at ``a W`` is ``1/a`` times the gradient at ``W``.
* :func:`norm_statistics` measures what a layer's BatchNorm or LayerNorm does to its
  pre-activations: zero mean and unit variance per unit or per example, and how much an
  example's output depends on the rest of the batch.

Constraints on the weights themselves (max-norm, weight norm, spectral norm) are
:mod:`gradcourse.lessons.weight_constraints`.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..core import _checks
from ..core.models import require_course_model
from ..core.scoring import accuracy

__all__ = ["AccuracyOverSteps", "norm_statistics", "PreactivationQuantiles", "scale_invariance"]


class _SingleHook:
    """A context manager holding one forward hook, registered by ``_register()`` on entry and removed on exit."""

    _handle = None

    @property
    def active(self):
        """True while the hook is registered."""
        return self._handle is not None

    def __enter__(self):
        if self.active:
            raise RuntimeError(f"this {type(self).__name__} is already active")
        self._handle = self._register()
        return self

    def __exit__(self, *exc_info):
        if self._handle is not None:
            self._handle.remove()
        self._handle = None
        return False


class PreactivationQuantiles(_SingleHook):
    """Record quantiles of the input of one hidden activation at every training forward pass.

    For an :class:`~gradcourse.core.models.MLP` the input of hidden layer l's activation is
    ``norm(W_l h_{l-1} + b_l)``: the pre-activation, after the normalization when there is
    one. Ioffe & Szegedy (2015), "Batch Normalization", Figure 1(b, c), follow the 15th,
    50th and 85th percentiles, over the batch, of the input of one typical sigmoid of the
    last hidden layer over training: ``unit=j`` records that unit's input over the batch,
    ``unit=None`` the inputs of all the layer's units together.

    Use it as a context manager around training (the hook is removed on exit)::

        with PreactivationQuantiles(model, layer=-1) as recorder:
            fit(model, X, y, ...)
        recorder.series()    # tensor (forward passes, len(quantiles))

    Forward passes without gradients (evaluation under ``torch.no_grad``) are skipped,
    as in :class:`~gradcourse.core.monitor.GradientMonitor`.
    """

    def __init__(self, model, layer=-1, quantiles=(0.15, 0.5, 0.85), unit=None):
        require_course_model(model)
        activations = list(model.hidden_activations())
        _checks.integer("layer", layer, minimum=-len(activations), maximum=len(activations) - 1)
        if unit is not None:
            width = model.hidden_linears()[layer].out_features
            _checks.integer("unit", unit, minimum=0, maximum=width - 1)
        quantiles = tuple(quantiles) if isinstance(quantiles, (list, tuple)) else quantiles
        if not isinstance(quantiles, tuple) or not quantiles:
            raise ValueError(f"quantiles={quantiles!r} is not allowed; it must be a non-empty list of numbers in [0, 1]")
        for q in quantiles:
            _checks.number("quantiles[i]", q, minimum=0, maximum=1)
        self.model = model
        self.layer = layer
        self.unit = unit
        self.quantiles = quantiles
        self._module = activations[layer]
        self._q = torch.tensor(quantiles, dtype=torch.float64)
        self._records = []
        self._handle = None

    def _register(self):
        return self._module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        if torch.is_grad_enabled():
            values = inputs[0].detach().double()
            values = values.flatten() if self.unit is None else values[:, self.unit]
            self._records.append(torch.quantile(values, self._q))

    def series(self):
        """The recorded quantiles, a float64 tensor of shape (forward passes, len(quantiles))."""
        if not self._records:
            return torch.empty(0, len(self.quantiles), dtype=torch.float64)
        return torch.stack(self._records)

    def drift(self):
        """How far the median moved from the first recorded pass to the last, in units of the
        first pass's spread (highest minus lowest recorded quantile): ``|m_T - m_0| / (q_hi - q_lo)_0``.

        The median is the recorded quantile nearest 0.5.
        """
        series = self.series()
        if len(series) < 2:
            raise ValueError("drift needs at least two recorded forward passes; train the model inside the recorder")
        median = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))
        spread = (series[0].max() - series[0].min()).item()
        if spread == 0:
            raise ValueError("the first recorded pass has zero spread; record at least two different quantiles")
        return abs(series[-1, median] - series[0, median]).item() / spread

    def spread_ratio(self):
        """How much the distribution widened from the first recorded pass to the last: the
        spread (highest minus lowest recorded quantile) of the last pass over that of the first."""
        series = self.series()
        if len(series) < 2:
            raise ValueError("spread_ratio needs at least two recorded forward passes; train the model inside the recorder")
        spread = (series[0].max() - series[0].min()).item()
        if spread == 0:
            raise ValueError("the first recorded pass has zero spread; record at least two different quantiles")
        return (series[-1].max() - series[-1].min()).item() / spread

    def __repr__(self):
        state = "active" if self.active else "inactive"
        unit = "" if self.unit is None else f", unit={self.unit}"
        return (f"PreactivationQuantiles(layer={self.layer}{unit}, quantiles={self.quantiles}, {state}, "
                f"{len(self._records)} passes)")


class AccuracyOverSteps(_SingleHook):
    """Record a model's accuracy on held-out data every ``every`` training steps.

    Ioffe & Szegedy (2015), "Batch Normalization", Figure 1(a), plot the test accuracy of the
    MNIST network with and without BatchNorm against the number of training steps. A forward
    hook counts the training forward passes (those with gradients enabled, one per step of
    :func:`~gradcourse.core.train.fit`); before pass ``k * every + 1`` runs its step, the model is
    scored on ``(X, y)`` in evaluation mode (BatchNorm with its running statistics, as at test
    time) under ``torch.no_grad``, and put back in training mode. Leaving the context scores
    the trained model once more::

        with AccuracyOverSteps(model, X_test, y_test, every=10) as accuracy:
            fit(model, X, y, ...)
        accuracy.steps, accuracy.accuracy      # [0, 10, 20, ..., steps], [fractions]
        accuracy.steps_to(0.8)                 # first recorded step at or above 80%, or None
    """

    def __init__(self, model, X, y, every=10):
        require_course_model(model)
        _checks.features_and_labels(X, y)
        self.every = _checks.integer("every", every, minimum=1)
        self.model = model
        self.X, self.y = X, y
        self.steps, self.accuracy = [], []
        self._passes = 0
        self._handle = None

    def _score(self, step):
        self.steps.append(step)
        self.accuracy.append(accuracy(self.model, self.X, self.y))

    def _hook(self, module, inputs, output):
        if torch.is_grad_enabled() and module.training:
            if self._passes % self.every == 0:
                self._score(self._passes)
            self._passes += 1

    def _register(self):
        return self.model.register_forward_hook(self._hook)

    def __exit__(self, *exc_info):
        super().__exit__(*exc_info)
        if self._passes and (not self.steps or self.steps[-1] != self._passes):
            self._score(self._passes)
        return False

    def at(self, step):
        """The accuracy recorded at the last recorded step at or before ``step``."""
        _checks.integer("step", step, minimum=0)
        if not self.steps:
            raise ValueError("nothing recorded yet; train the model inside the recorder")
        return next(a for s, a in zip(reversed(self.steps), reversed(self.accuracy)) if s <= step)

    def steps_to(self, target):
        """The first recorded step whose accuracy is at least ``target``, or ``None`` if none is."""
        _checks.number("target", target, minimum=0, maximum=1)
        return next((s for s, a in zip(self.steps, self.accuracy) if a >= target), None)

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return f"AccuracyOverSteps(every={self.every}, {state}, {len(self.steps)} scores)"


def scale_invariance(model, X, y, layer=0, weight_factor=2.0):
    """Multiply hidden layer ``layer``'s weight matrix by ``weight_factor`` (a below) and compare the loss and
    its gradient with respect to that weight, before and after, in training mode.

    When the layer is followed by BatchNorm, ``BN(a W x + b) = BN(W x)`` for ``a > 0`` (the
    batch mean removes ``b``, the batch standard deviation removes ``a``, up to BatchNorm's
    ``eps``), so ``L(a W) = L(W)``. Differentiating gives ``a grad L(a W) = grad L(W)``:
    the gradient at ``a W`` is ``1/a`` times the gradient at ``W``, and, from
    ``d/da L(a W) = 0`` at ``a = 1``, ``<W, grad L(W)> = 0``.

    Works on copies in float64 (``model`` and its BatchNorm statistics are left untouched).
    Returns a dict: ``loss``, ``loss_scaled``, ``grad`` and ``grad_scaled`` (tensors),
    ``grad_ratio`` = ``||grad_scaled|| / ||grad||``, ``max_deviation`` =
    ``max |weight_factor * grad_scaled - grad| / max |grad|``, and ``cosine_weight_grad``, the
    cosine between ``W`` and ``grad L(W)``.
    """
    require_course_model(model)
    _checks.features_and_labels(X, y)
    depth = len(model.hidden_linears())
    _checks.integer("layer", layer, minimum=-depth, maximum=depth - 1)
    weight_factor = _checks.number("weight_factor", weight_factor, minimum=0, strict_minimum=True)
    results = {}
    for label, factor in (("", 1.0), ("_scaled", weight_factor)):
        copy_ = copy.deepcopy(model).double().train()
        weight = copy_.hidden_linears()[layer].weight
        with torch.no_grad():
            weight.mul_(factor)
        loss = F.cross_entropy(copy_(X.double()), y)
        (grad,) = torch.autograd.grad(loss, weight)
        results["loss" + label] = loss.item()
        results["grad" + label] = grad
        if label == "":
            w = weight.detach().flatten()
            results["cosine_weight_grad"] = (torch.dot(w, grad.flatten()) / (w.norm() * grad.norm())).item()
    grad, grad_scaled = results["grad"], results["grad_scaled"]
    results["grad_ratio"] = (grad_scaled.norm() / grad.norm()).item()
    results["max_deviation"] = ((weight_factor * grad_scaled - grad).abs().max() / grad.abs().max()).item()
    return results


@torch.no_grad()
def norm_statistics(model, X, layer=0, subset=8):
    """What hidden layer ``layer``'s normalization does to ``z = W x + b`` on the batch ``X``, in
    training mode, on a copy of ``model`` (its running statistics are left untouched).

    With ``y = norm(z)`` of shape (examples, units), returns the largest deviations

    * ``"unit_mean"``, ``"unit_std"``: ``max_j |mean_i y_ij|`` and ``max_j |std_i y_ij - 1|``,
      over the batch for each unit (BatchNorm makes both ~0);
    * ``"example_mean"``, ``"example_std"``: the same over the units of each example
      (LayerNorm makes both ~0);
    * ``"batch_dependence"``: ``max |norm(z[:subset]) - norm(z)[:subset]|``, how much the first
      ``subset`` examples' outputs change when they are normalized without the rest of the batch.

    Standard deviations are the biased ones that the normalizations divide by; BatchNorm's and
    LayerNorm's ``eps`` (1e-5) makes them ``1 / sqrt(1 + eps / var)``, slightly below 1. The
    learned scale and shift are at their initial values 1 and 0 for a fresh model.
    """
    require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D floating-point torch.Tensor (n, features)")
    depth = len(model.blocks)
    _checks.integer("layer", layer, minimum=-depth, maximum=depth - 1)
    _checks.integer("subset", subset, minimum=2, maximum=max(2, len(X) - 1))
    if len(X) <= subset:
        raise ValueError(f"X has {len(X)} rows; it needs more than subset={subset}")
    block = copy.deepcopy(model.blocks[layer]).train()
    if not hasattr(block, "linear") or not hasattr(block, "norm"):
        raise ValueError(f"layer={layer} is not allowed; it must index a block with a linear layer and a norm")
    inputs = X
    for earlier in model.blocks[:layer % depth]:
        inputs = copy.deepcopy(earlier).train()(inputs)
    z = block.linear(inputs)
    y = block.norm(z)
    alone = block.norm(z[:subset])
    return {"unit_mean": y.mean(dim=0).abs().max().item(),
            "unit_std": (y.std(dim=0, correction=0) - 1).abs().max().item(),
            "example_mean": y.mean(dim=1).abs().max().item(),
            "example_std": (y.std(dim=1, correction=0) - 1).abs().max().item(),
            "batch_dependence": (alone - y[:subset]).abs().max().item()}
