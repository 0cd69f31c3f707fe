"""``diagnose``: one monitored step of any model, read as a doctor reads a blood test.

It measures what notebooks 02-10 taught to look at -- per-layer gradient norms, gradient-to-weight
and update-to-weight ratios, saturated and dead units, non-finite values, layers no gradient reaches --
compares each with a threshold, and for every symptom found gives the evidence (the measured number
next to the threshold it crossed), the likely causes and the remedies, each with the notebook that
teaches it. The learner's model is never changed: the step runs on a copy.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from .. import _checks
from ..layers import find_layers, layer_weights
from ..monitor.monitor import GradientMonitor, paused
from ..norms import group_norms
from ..probes import batch_loss, first_nonfinite_output, resolve_loss, state_left_alone
from ..runtime import generators_restored

THRESHOLDS = {
    "vanishing_ratio": 1e-3,    # first-layer / last-layer gradient norm below this: vanishing
    "exploding_ratio": 1e3,     # ... above this: exploding
    "exploding_grad_weight_ratio": 1e2,   # any layer's ||dL/dW|| / ||W|| above this: exploding
    "saturated_share": 0.3,     # share of sigmoid/tanh outputs in the flat tails
    "dead_share": 0.4,          # share of units that output 0 for the whole batch
    "update_ratio_low": 1e-5,   # ||dW|| / ||W|| after one optimizer step, far below ~1e-3
    "update_ratio_high": 1e-1,  # ... far above ~1e-3
}
"""Default thresholds; ``diagnose(..., thresholds={...})`` overrides any of them.

Every threshold is relative. A bound on ``||dL/dW||`` alone would depend on the layer's size and the
loss's scale, so ``exploding_grad_weight_ratio`` (which takes the place of such a bound) reads the
gradient against the layer's own weights: one SGD step of learning rate ``lr`` changes a layer by
``lr * ||dL/dW|| / ||W||`` of its size, so above 100 even ``lr = 1e-3`` moves it by more than
``update_ratio_high`` (10%). An untrained ResNet-18 peaks near 10 (``conv1``); MLPs with He or Xavier
init stay below 1.
"""

NOTEBOOKS = {
    "01": "01_backprop_and_the_chain_rule", "02": "02_vanishing_gradients", "03": "03_exploding_gradients",
    "04": "04_weight_initialization", "05": "05_activation_functions", "06": "06_gradient_clipping",
    "07": "07_residual_connections", "09": "09_normalization", "10": "10_optimizers", "11": "11_mixed_precision",
}


@dataclass
class Symptom:
    """One finding: what was measured, against which threshold, why it happens, what to do."""

    name: str
    evidence: str
    threshold: str
    layers: list = field(default_factory=list)
    causes: list = field(default_factory=list)
    remedies: list = field(default_factory=list)   # (what to do, notebook) pairs


@dataclass
class Report:
    """What :func:`diagnose` found. ``print(report)`` reads it; :meth:`as_dict` gives plain data."""

    loss: float
    layer_names: list
    grad_norms: list
    activation_names: list
    saturated: list
    dead: list
    update_ratios: list | None
    symptoms: list
    notes: list = field(default_factory=list)
    grad_weight_ratios: list = field(default_factory=list)

    @property
    def healthy(self):
        """True when no symptom was found."""
        return not self.symptoms

    @property
    def symptom_names(self):
        """The names of the symptoms found, e.g. ``["vanishing gradients"]``."""
        return [s.name for s in self.symptoms]

    def as_dict(self):
        """The report as plain dicts, lists, strings and floats."""
        return asdict(self)

    def __str__(self):
        lines = [f"diagnose: loss {self.loss:.4g}, {len(self.layer_names)} layers, "
                 f"{len(self.activation_names)} activation calls"]
        if self.healthy:
            lines.append("No symptom found: gradients reach every layer at a sensible size"
                         + ("" if self.update_ratios is None else ", and one step moves each layer by a sensible share")
                         + ".")
        for i, s in enumerate(self.symptoms, start=1):
            lines.append(f"{i}. {s.name.upper()}: {s.evidence}  [threshold: {s.threshold}]")
            if s.layers:
                shown = ", ".join(s.layers[:6]) + (f", ... ({len(s.layers)} in all)" if len(s.layers) > 6 else "")
                lines.append(f"   where: {shown}")
            lines.append("   likely causes: " + "; ".join(s.causes))
            for remedy, notebook in s.remedies:
                lines.append(f"   - {remedy}  (notebook {notebook})")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    __repr__ = __str__


def diagnose(model, X, y, *, optimizer=None, loss_fn=None, compute_loss=None, layers=None, include=None,
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
        loss_fn, compute_loss: the loss, as in :func:`gradcourse.core.probes.batch_loss`
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
    if compute_loss is None and resolve_loss(loss_fn) is F.cross_entropy and not y.is_floating_point():
        loss_fn = _cross_entropy_of_labels

    try:
        patient, names = _copy_for_diagnosis(model)
        untouched = contextlib.nullcontext()
    except Exception:   # cannot be deep-copied (torch.nn.utils.prune, old-style weight_norm): work on the model
        patient, names = model, {id(m): name for name, m in model.named_modules()}
        untouched = contextlib.ExitStack()     # put back as it was, and unseen by the learner's active monitors
        untouched.enter_context(state_left_alone(model, parameters=True))
        untouched.enter_context(paused(model))
    with generators_restored(), untouched:   # the pass may draw from them (dropout, ...)
        patient_layers = None if layers is None else [dict(patient.named_modules())[names[id(m)]] for m in layers]
        monitor = GradientMonitor(patient, layers=patient_layers, include=include)
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
                _copy_optimizer(optimizer, model, patient).step()
        grad_norms = grad_norms or [math.nan] * len(weights)   # no backward pass, or no layer got a gradient
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
        report.symptoms = _find_symptoms(report, limits, patient, X, reached)
    return report


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


# --- the checks ------------------------------------------------------------------

def _find_symptoms(r, limits, patient, X, reached):
    if not math.isfinite(r.loss):
        return [Symptom(
            "non-finite loss", f"the loss is {r.loss}", "the loss must be finite", _first_nonfinite(patient, X),
            ["weights or activations so large that they overflow (too large an init scale or learning rate)",
             "a log or division of zero in a hand-written loss", "fp16 overflow"],
            [("lower the init scale (He/Xavier) or the learning rate", NOTEBOOKS["04"]),
             ("clip the gradient norm", NOTEBOOKS["06"]),
             ("use a library loss (log-sum-exp inside) and loss scaling in fp16", NOTEBOOKS["11"])])]
    symptoms = []
    unused = [n for n, got in zip(r.layer_names, reached) if not got]
    if unused:
        symptoms.append(Symptom(
            "no gradient",
            f"{_layers(unused)} got no gradient: {_their(unused)} weights' .grad is still None after the backward pass "
            "(the gradient norm reads NaN); the checks below leave them out",
            ".grad is None", unused,
            ["the layer is not used by forward, or its output never reaches the loss (an unused head or branch)",
             "the path to the loss is cut: .detach(), .data or torch.no_grad() between the layer and the loss"],
            [("use the layer in forward, and keep .detach(), .data and torch.no_grad() off its path to the loss: "
              "backpropagation reaches only what computed the loss", NOTEBOOKS["01"]),
             ("if it is unused on purpose, freeze it (requires_grad_(False)) or leave it out with layers= or "
              "include=", NOTEBOOKS["01"])]))
    names = [n for n, got in zip(r.layer_names, reached) if got]
    norms = [g for g, got in zip(r.grad_norms, reached) if got]
    bad = [(n, g) for n, g in zip(names, norms) if not math.isfinite(g)]
    if bad:
        return symptoms + [Symptom(
            "non-finite gradients",
            f"{_layers(bad)} {_have(bad)} NaN or infinite gradients (norm {bad[0][1]} at {bad[0][0]})",
            "gradients must be finite", [n for n, _ in bad],
            ["exploding gradients that overflowed", "a non-differentiable point hit exactly (e.g. sqrt(0))"],
            [("clip the gradient norm", NOTEBOOKS["06"]), ("lower the init scale or learning rate", NOTEBOOKS["03"])])]
    zero = [n for n, g in zip(names, norms) if g == 0]
    if zero:
        symptoms.append(Symptom(
            "vanishing gradients",
            f"the gradient norm is exactly 0 at {len(zero)} of {len(names)} layers: no signal reaches them, the "
            "extreme of vanishing", "||dL/dW|| = 0", zero,
            ["zero weights in a layer above (a constant init of 0, a zero-initialized output layer): it passes back "
             "W^T delta = 0", "every unit of a ReLU layer dead for the whole batch: f'(z) = 0 stops the gradient",
             "a gradient so small that float32 or fp16 rounds it to 0"],
            [("initialize with random weights scaled to the layer: He for ReLU, Xavier for tanh and sigmoid",
              NOTEBOOKS["04"]),
             ("use LeakyReLU or ELU, whose derivative is never 0", NOTEBOOKS["05"]),
             ("in fp16, scale the loss", NOTEBOOKS["11"])]))
    elif len(norms) >= 2:
        ratio = norms[0] / norms[-1]
        if ratio < limits["vanishing_ratio"]:
            symptoms.append(Symptom(
                "vanishing gradients",
                f"the first layer's gradient norm is {ratio:.1e} times the last layer's "
                f"({norms[0]:.2e} at {names[0]}, {norms[-1]:.2e} at {names[-1]})",
                f"ratio < {limits['vanishing_ratio']:g}",
                [n for n, g in zip(names, norms) if g < limits["vanishing_ratio"] * norms[-1]],
                ["saturating activations (sigmoid: derivative at most 1/4)", "weights too small for the depth",
                 "a deep stack without skip connections or normalization"],
                [("use ReLU-family activations", NOTEBOOKS["05"]),
                 ("initialize for the activation: He for ReLU, Xavier for tanh", NOTEBOOKS["04"]),
                 ("add residual connections", NOTEBOOKS["07"]), ("add BatchNorm or LayerNorm", NOTEBOOKS["09"]),
                 ("an adaptive optimizer (Adam) rescales small gradients", NOTEBOOKS["10"])]))
        elif ratio > limits["exploding_ratio"]:
            symptoms.append(_exploding(f"the first layer's gradient norm is {ratio:.1e} times the last layer's",
                                       f"ratio > {limits['exploding_ratio']:g}", names[:1]))
    limit = limits["exploding_grad_weight_ratio"]
    high = [(n, q) for n, q, got in zip(r.layer_names, r.grad_weight_ratios, reached) if got and q > limit]
    if high and not any(s.name == "exploding gradients" for s in symptoms):
        name, worst = max(high, key=lambda item: item[1])
        symptoms.append(_exploding(
            f"{len(high)} of {len(names)} layers have a gradient norm more than {limit:g} times their weights' norm "
            f"(largest {worst:.1e} at {name}: one SGD step at lr 0.001 would change that layer by {worst * 1e-3:.2g} "
            "times its size)", f"||dL/dW|| / ||W|| > {limit:g}", [n for n, _ in high]))
    saturated = [(n, s) for n, s in zip(r.activation_names, r.saturated) if s > limits["saturated_share"]]
    if saturated:
        symptoms.append(Symptom(
            "saturated units",
            f"{_layers(saturated, 'sigmoid/tanh layer')} {_have(saturated)} more than {limits['saturated_share']:.0%} of "
            f"{_their(saturated)} outputs in the flat tails (worst {max(s for _, s in saturated):.0%})",
            f"share > {limits['saturated_share']:.0%}", [n for n, _ in saturated],
            ["weights or inputs too large, pushing pre-activations into the tails", "inputs not standardized"],
            [("initialize with Xavier (std sqrt(2/(n_in+n_out)))", NOTEBOOKS["04"]),
             ("standardize the inputs; add BatchNorm before the activation", NOTEBOOKS["09"]),
             ("use a non-saturating activation", NOTEBOOKS["05"])]))
    dead = [(n, d) for n, d in zip(r.activation_names, r.dead) if d > limits["dead_share"]]
    if dead:
        symptoms.append(Symptom(
            "dead units",
            f"{_layers(dead, 'activation layer')} {_have(dead)} more than {limits['dead_share']:.0%} of {_their(dead)} units "
            f"at exactly 0 for the whole batch (worst {max(d for _, d in dead):.0%})",
            f"share > {limits['dead_share']:.0%}", [n for n, _ in dead],
            ["a too-large learning-rate step pushed biases/weights negative", "weights too small, biases dominate"],
            [("use LeakyReLU or ELU", NOTEBOOKS["05"]), ("lower the learning rate, use warmup", NOTEBOOKS["10"]),
             ("He initialization", NOTEBOOKS["04"])]))
    if r.update_ratios is not None:
        updates = [(n, u) for n, u, got in zip(r.layer_names, r.update_ratios, reached) if got]
        slow = [(n, u) for n, u in updates if u < limits["update_ratio_low"]]
        fast = [(n, u) for n, u in updates if u > limits["update_ratio_high"]]
        if slow:
            symptoms.append(Symptom(
                "updates too small",
                f"one step changes {_layers(slow)} by less than {limits['update_ratio_low']:g} of their size "
                f"(smallest {min(u for _, u in slow):.1e}; around 1e-3 is healthy)",
                f"||dW||/||W|| < {limits['update_ratio_low']:g}", [n for n, _ in slow],
                ["learning rate too small", "vanishing gradients in those layers"],
                [("raise the learning rate, or use Adam, which rescales each parameter's step", NOTEBOOKS["10"]),
                 ("fix the vanishing gradient first", NOTEBOOKS["02"])]))
        if fast:
            symptoms.append(Symptom(
                "updates too large",
                f"one step changes {_layers(fast)} by more than {limits['update_ratio_high']:g} of their size "
                f"(largest {max(u for _, u in fast):.1e}; around 1e-3 is healthy)",
                f"||dW||/||W|| > {limits['update_ratio_high']:g}", [n for n, _ in fast],
                ["learning rate too large", "exploding gradients in those layers"],
                [("lower the learning rate; warm it up", NOTEBOOKS["10"]), ("clip the gradient norm", NOTEBOOKS["06"])]))
    return symptoms


def _layers(items, noun="layer"):
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _have(items):
    return "has" if len(items) == 1 else "have"


def _their(items):
    return "its" if len(items) == 1 else "their"


def _exploding(evidence, threshold, layers):
    return Symptom(
        "exploding gradients", evidence, threshold, layers,
        ["weights too large for the depth (per-layer gain above 1)", "a recurrent matrix with singular values above 1/gamma",
         "no normalization"],
        [("lower the init scale: He for ReLU, Xavier for tanh", NOTEBOOKS["04"]),
         ("clip the gradient norm", NOTEBOOKS["06"]), ("add BatchNorm or LayerNorm", NOTEBOOKS["09"]),
         ("see how the product of Jacobians grows", NOTEBOOKS["03"])])


# --- copies ----------------------------------------------------------------------

def _copy_for_diagnosis(model):
    """A deep copy of ``model`` that keeps the user's own hooks (a hook can be part of what the model
    computes) but not gradcourse's (an active GradientMonitor of ``model`` would record the diagnosis),
    and ``{id(module): name}`` of the original."""
    names = {id(m): name for name, m in model.named_modules()}
    patient = copy.deepcopy(model)
    for module in patient.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks,
                      module._backward_pre_hooks):
            for key in [key for key, hook in hooks.items() if _is_ours(hook)]:
                del hooks[key]
    for p in patient.parameters():
        p.grad = None
        hooks = getattr(p, "_post_accumulate_grad_hooks", None)
        if hooks:
            for key in [key for key, hook in hooks.items() if _is_ours(hook)]:
                del hooks[key]
    return patient, names


def _is_ours(hook):
    """Whether ``hook`` comes from gradcourse (a GradientMonitor's or a ForwardOrder's)."""
    return getattr(hook, "__module__", "").startswith("gradcourse.")


def _copy_optimizer(optimizer, model, patient):
    """An optimizer of the same type, hyper-parameters and state, over the copy's parameters."""
    twin = dict(zip((id(p) for p in model.parameters()), patient.parameters()))
    groups = []
    for group in optimizer.param_groups:
        missing = [p for p in group["params"] if id(p) not in twin]
        if missing:
            raise ValueError("optimizer is not allowed: it holds parameters that are not the model's")
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": [twin[id(p)] for p in group["params"]]})
    clone = type(optimizer)(groups, **{k: v for k, v in optimizer.defaults.items() if k not in groups[0]})
    clone.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return clone


@torch.no_grad()
def _first_nonfinite(patient, X):
    return [first_nonfinite_output(patient, X)]
