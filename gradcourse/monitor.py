"""Measure gradient flow: per-layer gradient norms, activation statistics, update ratios.

For a network ``x -> h_1 -> ... -> h_L -> logits`` with ``h_l = f(W_l h_{l-1} + b_l)``,
backpropagation gives ``dL/dW_l = delta_l h_{l-1}^T`` with
``delta_l = diag(f'(z_l)) W_{l+1}^T delta_{l+1}``: a product of Jacobians that can
shrink (vanish) or grow (explode) geometrically with depth. These tools measure it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from . import _checks

SATURATION = {"tanh": (-0.97, 0.97), "sigmoid": (0.03, 0.97)}
"""A unit counts as saturated when its output lies outside this interval (its derivative is then tiny)."""

STATS = ("grad_norm", "act_mean", "act_std", "saturated", "dead", "update_ratio")


def norm(tensor):
    """The Frobenius norm, computed in float64.

    In float32, ``sqrt(sum(g**2))`` underflows to exactly 0 once the entries fall
    below about 1e-23 (their squares are below float32's smallest subnormal,
    1.4e-45), which is precisely the regime a vanishing-gradient course measures.
    """
    return torch.linalg.vector_norm(tensor.detach().double())


def _require_course_model(model, name="model"):
    if not isinstance(model, nn.Module) or not all(hasattr(model, a) for a in ("blocks", "hidden_linears", "hidden_activations")):
        raise ValueError(f"{name}={_checks._describe(model)} is not allowed; it must be a gradcourse "
                         "model with hidden_linears(), such as gradcourse.models.MLP")
    return model


def layer_gradient_norms(model, X, y):
    """One forward/backward with cross-entropy; return ``||dL/dW_l||`` per hidden layer.

    The Frobenius norm of each hidden ``nn.Linear`` weight's gradient, input side
    first, as a list of floats. Uses :func:`torch.autograd.grad`, so the model's
    ``.grad`` fields are left untouched.
    """
    _require_course_model(model)
    _checks.features_and_labels(X, y)
    weights = [layer.weight for layer in model.hidden_linears()]
    with torch.enable_grad():
        loss = F.cross_entropy(model(X), y)
        grads = torch.autograd.grad(loss, weights)
    return [norm(g).item() for g in grads]


def activation_gradient_norms(model, X, y):
    """Return ``||dL/dh_l||`` for the output ``h_l`` of every hidden layer, input side first.

    This is the back-propagated signal itself (the ``delta`` that reaches layer l),
    before it is multiplied by the layer's input to give the weight gradient.
    """
    _require_course_model(model)
    _checks.features_and_labels(X, y)
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out)) for block in model.blocks]
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(X), y)
            grads = torch.autograd.grad(loss, outputs)
    finally:
        for handle in handles:
            handle.remove()
    return [norm(g).item() for g in grads]


class GradientMonitor:
    """Record per-layer statistics of a course model while it trains.

    Use it as a context manager (hooks are removed on exit, also after an
    exception), or pass it to :func:`gradcourse.train.fit`::

        with GradientMonitor(model) as monitor:
            fit(model, X, y, epochs=1, batch_size=64, lr=0.1)
        monitor.series("grad_norm")      # tensor (steps, layers)

    For each hidden layer l (input side first) it records:

    * ``grad_norm``: ``||dL/dW_l||`` after every backward pass;
    * ``act_mean``, ``act_std``: mean and standard deviation of the layer's activations,
      at every forward pass with gradients enabled (so evaluation under ``no_grad`` is skipped);
    * ``saturated``: share of activations outside (0.03, 0.97) for sigmoid and
      (-0.97, 0.97) for tanh, where the derivative is below about 0.03 or 0.06
      (NaN for activations that do not saturate on both sides);
    * ``dead``: share of units whose output is exactly zero for the whole batch
      (a dead ReLU passes no gradient);
    * ``update_ratio``: ``||W_after - W_before|| / ||W_before||`` each time an optimizer
      holding the weight steps. Karpathy's rule of thumb puts healthy values near 1e-3.
    """

    def __init__(self, model):
        _require_course_model(model)
        self.model = model
        self.layers = list(model.hidden_linears())
        self.activations = list(model.hidden_activations())
        self.layer_names = [f"layer {i + 1}" for i in range(len(self.layers))]
        self._saturation = SATURATION.get(getattr(model, "activation", None))
        self._records = {name: [[] for _ in self.layers] for name in STATS}
        self._handles = []
        self._snapshots = None

    @property
    def active(self):
        """True while the hooks are registered."""
        return bool(self._handles)

    def __enter__(self):
        if self.active:
            raise RuntimeError("this GradientMonitor is already active")
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.weight.register_post_accumulate_grad_hook(self._grad_hook(i)))
        for i, activation in enumerate(self.activations):
            self._handles.append(activation.register_forward_hook(self._activation_hook(i)))
        self._handles.append(register_optimizer_step_pre_hook(self._before_step))
        self._handles.append(register_optimizer_step_post_hook(self._after_step))
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._snapshots = None
        return False

    def series(self, name):
        """The recorded values of one statistic as a tensor of shape (steps, layers)."""
        _checks.choice("name", name, STATS)
        per_layer = self._records[name]
        steps = min(len(values) for values in per_layer)
        if steps == 0:
            return torch.empty(0, len(per_layer))
        return torch.stack([torch.stack(values[:steps]).double() for values in per_layer], dim=1)

    def mean(self, name):
        """Per-layer mean over the recorded steps of one statistic, as a list of floats."""
        return self.series(name).mean(dim=0).tolist()

    def steps(self, name="grad_norm"):
        """How many steps of one statistic have been recorded."""
        return len(self.series(name))

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return (f"GradientMonitor({len(self.layers)} layers, {state}, "
                f"{self.steps('grad_norm')} backward passes, {self.steps('update_ratio')} optimizer steps)")

    # hooks -----------------------------------------------------------------
    def _grad_hook(self, i):
        def hook(weight):
            self._records["grad_norm"][i].append(norm(weight.grad))
        return hook

    def _activation_hook(self, i):
        def hook(module, inputs, output):
            if not torch.is_grad_enabled():
                return
            a = output.detach()
            self._records["act_mean"][i].append(a.mean())
            self._records["act_std"][i].append(a.std())
            if self._saturation is None:
                self._records["saturated"][i].append(torch.tensor(float("nan")))
            else:
                low, high = self._saturation
                self._records["saturated"][i].append(((a < low) | (a > high)).float().mean())
            self._records["dead"][i].append((a.reshape(len(a), -1) == 0).all(dim=0).float().mean())
        return hook

    def _holds_our_weights(self, optimizer):
        ours = {id(layer.weight) for layer in self.layers}
        return any(id(p) in ours for group in optimizer.param_groups for p in group["params"])

    def _before_step(self, optimizer, args, kwargs):
        if self._holds_our_weights(optimizer):
            self._snapshots = [layer.weight.detach().clone() for layer in self.layers]

    def _after_step(self, optimizer, args, kwargs):
        if self._snapshots is None or not self._holds_our_weights(optimizer):
            return
        for i, (layer, before) in enumerate(zip(self.layers, self._snapshots)):
            ratio = norm(layer.weight.detach() - before) / norm(before)
            self._records["update_ratio"][i].append(ratio)
        self._snapshots = None
