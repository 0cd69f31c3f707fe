"""``diagnose``: one monitored step of any model, read as a doctor reads a blood test.

It measures what notebooks 02-10 taught to look at -- per-layer gradient norms, gradient-to-weight
and update-to-weight ratios, saturated and dead units, non-finite values, layers no gradient reaches --
compares each with a threshold, and for every symptom found gives the evidence (the measured number
next to the threshold it crossed), the likely causes and the remedies, each with the notebook that
teaches it. The learner's model is never changed: the step runs on a copy
(:mod:`~gradcourse.core.diagnose.copies`). The checks and their thresholds are in
:mod:`~gradcourse.core.diagnose.symptoms`, the :class:`~gradcourse.core.diagnose.report.Report` in
:mod:`~gradcourse.core.diagnose.report`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .. import _checks
from ..layers import find_layers, layer_weights
from ..monitor.monitor import GradientMonitor, paused
from ..norms import group_norms
from ..losses import batch_loss, resolve_loss
from ..model_state import state_left_alone
from ..runtime import generators_restored
from .copies import copy_for_diagnosis, copy_optimizer
from .report import Report
from .symptoms import THRESHOLDS, find_symptoms

__all__ = ["diagnose"]


def diagnose(model, X, y, *, optimizer=None, loss_fn="cross_entropy", compute_loss=None, layers=None, include=None,
             thresholds=None):
    """Run one monitored forward/backward pass of ``model`` on ``(X, y)`` and report symptoms.

    Args:
        model: any ``torch.nn.Module``; it is copied (with its own hooks, without gradcourse's), so
            its parameters, buffers (BatchNorm statistics), gradients and outputs are left exactly as
            they were, and torch's random generators (CPU and CUDA) are restored after the pass, so a
            diagnosis changes no later run. A model that cannot be copied is diagnosed in place, all of
            that restored afterwards, and the learner's active GradientMonitors of it record nothing of it.
        X, y: one batch.
        optimizer: optional ``torch.optim`` optimizer of ``model``; one step of an identical
            optimizer (same hyper-parameters and state) is taken on the copy, to measure the
            update-to-weight ratios ``||dW|| / ||W||``.
        loss_fn, compute_loss: the loss, as in :func:`gradcourse.core.losses.batch_loss`
            (cross-entropy by default).
        layers, include: which layers to look at, as in :func:`gradcourse.core.layers.find_layers`.
        thresholds: overrides for :data:`THRESHOLDS`.

    Symptoms checked, each against a threshold of :data:`THRESHOLDS`:

    * no gradient: a layer whose weights' ``.grad`` is still None after the backward pass (unused by
      ``forward``, or cut off from the loss by ``detach``); the other checks skip such layers;
    * non-finite loss or gradients;
    * vanishing gradients: a layer whose gradient is exactly 0, or the ratio of the first to the last
      layer's gradient norm ``||dL/dW_1|| / ||dL/dW_L||`` below ``vanishing_ratio``; with
      ``dL/dW_l = delta_l h_{l-1}^T`` the ratio is the product of the Jacobians between the two layers
      (Hochreiter 1991; Bengio et al. 1994, "Learning long-term dependencies with gradient descent is
      difficult");
    * exploding gradients: that ratio above ``exploding_ratio``, or a layer's gradient-to-weight ratio
      ``||dL/dW_l|| / ||W_l||`` above ``exploding_grad_weight_ratio``. Both are relative: the first
      compares layers, the second a layer with its own weights, so neither depends on the layer's
      size (to first order) and the first not on the loss's scale either. The second is the update
      ratio of one SGD step at learning rate 1, the per-layer ratio LARS scales its steps by (You et
      al. 2017, "Large batch training of convolutional networks"); a loss summed over a batch of B
      instead of averaged multiplies it by B. A layer whose weights are all 0 has no such ratio;
    * saturated sigmoid/tanh units and dead units (share of the batch);
    * update ratios ``||dW|| / ||W||`` far from ~1e-3 (Karpathy's rule of thumb, CS231n).
    """
    limits = _limits(model, X, y, optimizer, layers, include, thresholds)
    if compute_loss is None and resolve_loss(loss_fn) is F.cross_entropy and not y.is_floating_point():
        loss_fn = _cross_entropy_of_labels
    patient, names, untouched = _patient(model)
    with generators_restored(), untouched:   # the pass may draw from them (dropout, ...)
        patient_layers = None if layers is None else [dict(patient.named_modules())[names[id(m)]] for m in layers]
        monitor = GradientMonitor(patient, layers=patient_layers, include=include)
        loss_value, reached, weight_norms, grad_norms = _monitored_step(monitor, patient, model, X, y, optimizer,
                                                                         loss_fn, compute_loss)
        report = _report(monitor, loss_value, grad_norms, weight_norms)
        report.symptoms = find_symptoms(report, limits, patient, X, reached)
    return report


def _limits(model, X, y, optimizer, layers, include, thresholds):
    """Check diagnose's arguments; the thresholds to use, :data:`THRESHOLDS` with ``thresholds`` over them."""
    _checks.module("model", model)
    _checks.batch(X, y)
    if thresholds is not None and not isinstance(thresholds, Mapping):
        raise ValueError(f"thresholds={_checks.describe(thresholds)} is not allowed; it must be a dict "
                         f"{{name: value}} with names from: {', '.join(repr(k) for k in THRESHOLDS)}, or None")
    limits = dict(THRESHOLDS)
    for key, value in (thresholds or {}).items():
        _checks.choice("thresholds key", key, tuple(THRESHOLDS))
        limits[key] = _checks.number(f"thresholds[{key!r}]", value, minimum=0, strict_minimum=True)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer={optimizer!r} is not allowed; it must be a torch.optim.Optimizer of the model, or None")
    if isinstance(optimizer, torch.optim.LBFGS):
        raise ValueError("optimizer=LBFGS is not allowed; its step re-evaluates the loss through a closure, so one "
                         "step says nothing about the gradient's update; pass SGD, Adam, ... or None")
    find_layers(model, layers, include)   # validates layers= and include= on the learner's model
    return limits


def _cross_entropy_of_labels(output, y):
    """``F.cross_entropy(output, y)``, with a ValueError naming ``y`` instead of torch's IndexError (or a
    device-side assert on a GPU) when a label is not one of the output's classes."""
    if y.dtype not in (torch.int64, torch.uint8):
        raise ValueError(f"y={_checks.describe(y)} is not allowed; cross-entropy takes int64 (or uint8) class labels "
                         "(y.long() converts)")
    if output.dim() >= 2:
        classes = output.shape[1]
        bad = y[((y < 0) & (y != -100)) | (y >= classes)]   # -100: cross-entropy's ignore_index
        if len(bad):
            raise ValueError(f"y={_checks.describe(y)} is not allowed: it holds the label {bad[0].item()}, and the "
                             f"model's {classes} outputs allow the labels 0 to {classes - 1}")
    return F.cross_entropy(output, y)


def _patient(model):
    """``(model to diagnose, {id(module): name} of the learner's model, the context to run in)``: a copy, or the
    model itself when it cannot be copied, then put back as it was afterwards."""
    try:
        patient, names = copy_for_diagnosis(model)
        untouched = contextlib.nullcontext()
    except Exception:   # cannot be deep-copied (torch.nn.utils.prune, old-style weight_norm): work on the model
        patient, names = model, {id(m): name for name, m in model.named_modules()}
        untouched = contextlib.ExitStack()     # put back as it was, and unseen by the learner's active monitors
        untouched.enter_context(state_left_alone(model, parameters=True))
        untouched.enter_context(paused(model))
    return patient, names, untouched


def _monitored_step(monitor, patient, model, X, y, optimizer, loss_fn, compute_loss):
    """One monitored forward and backward pass of ``patient`` (and a step of a copy of ``optimizer``):
    ``(loss, whether each layer got a gradient, weight norms before the step, gradient norms)``."""
    for p in patient.parameters():   # a model diagnosed in place may hold gradients; they are put back after
        p.grad = None
    with monitor:
        loss = batch_loss(patient, X, y, loss_fn, compute_loss)
        loss_value = loss.item()
        if math.isfinite(loss_value) and loss.requires_grad:
            loss.backward()
        weights = [layer_weights(m) for m in monitor.layers]
        reached = [any(p.grad is not None for p in ws) for ws in weights]   # None: no gradient, not NaN
        weight_norms = group_norms(weights).tolist()   # before the step changes them
        # every layer's gradient, before the step: one that the optimizer does not hold has one too
        grad_norms = monitor.series("grad_norm")[-1].tolist() if monitor.steps("grad_norm") else None
        if math.isfinite(loss_value) and optimizer is not None:
            copy_optimizer(optimizer, model, patient).step()
    grad_norms = grad_norms or [math.nan] * len(weights)   # no backward pass, or no layer got a gradient
    return loss_value, reached, weight_norms, grad_norms


def _report(monitor, loss_value, grad_norms, weight_norms):
    """The :class:`~gradcourse.core.diagnose.report.Report` of what ``monitor`` recorded, without symptoms yet."""
    update = monitor.series("update_ratio")
    saturated = monitor.series("saturated")
    dead = monitor.series("dead")
    report = Report(
        loss=loss_value, layer_names=monitor.layer_names, grad_norms=grad_norms,
        activation_names=monitor.activation_names,
        saturated=saturated[-1].tolist() if len(saturated) else [],
        dead=dead[-1].tolist() if len(dead) else [],
        update_ratios=update[-1].tolist() if len(update) else None, symptoms=[],
        grad_weight_ratios=[g / w if w > 0 else math.nan for g, w in zip(grad_norms, weight_norms)],
    )
    if monitor.activation_note:
        report.notes.append(monitor.activation_note)
    return report
