"""How optimizers size their steps: loss scaling, Adam's ceiling on a step, and learning-rate warmup.

SGD steps by ``-lr * g``, so its step scales with the gradient. Adam (Kingma & Ba 2015)
steps by ``-lr * m_hat / (sqrt(v_hat) + eps)``, where ``m_hat`` and ``v_hat`` are bias-corrected
running means of ``g`` and ``g**2``: multiply the loss by ``s > 0`` and both ``m_hat`` and
``sqrt(v_hat)`` scale by ``s``, so the step is

    -lr * s m_hat / (s sqrt(v_hat) + eps) = -lr * m_hat / (sqrt(v_hat) + eps / s),

the unscaled step with ``eps`` replaced by ``eps / s``: unchanged wherever
``sqrt(v_hat) >> eps / s``. RMSprop (Tieleman & Hinton 2012) behaves the same way.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..core import _checks
from ..core.layers import as_one_tensor, find_layers, layer_weights, named_layers
from ..core.norms import group_norms
from ..core.train.optimizers import OPTIMIZERS, make_optimizer

__all__ = ["ADAM_EPS", "adam_ratio_ceiling", "learning_rates", "linear_warmup", "loss_scaling_steps"]


ADAM_EPS = 1e-8
"""The ``eps`` of ``torch.optim.Adam`` and ``torch.optim.RMSprop`` (their default), as built by
:func:`~gradcourse.core.train.make_optimizer`."""


def loss_scaling_steps(model, X, y, optimizer="adam", lr=1e-3, loss_scale=1e-4, steps=1):
    """Train copies of ``model`` from the same weights on the full batch ``(X, y)``, one on the
    cross-entropy loss ``L`` and one on ``loss_scale * L``, and compare what their steps did.

    Everything runs in float64 on copies (``model`` is left untouched), so that a step far
    below a weight's float32 resolution still shows. Returns a dict of per-layer lists
    (layers as in :func:`~gradcourse.core.layers.named_layers`; a layer's weights are those of
    :func:`~gradcourse.core.layers.layer_weights`, taken together as one vector, e.g. an
    ``nn.Linear``'s ``weight``, a ``torch.nn.MultiheadAttention``'s ``in_proj_weight``, a
    Transformer's position vectors):

    * ``"layers"``: the layer names;
    * ``"grad_rms"``: the root-mean-square of ``dL/dW`` at the start;
    * ``"unscaled"``, ``"scaled"``: ``||W_steps - W_0||`` after ``steps`` steps on ``L`` and on
      ``loss_scale * L``; ``"ratio"``: scaled / unscaled (NaN for a layer that did not move, such
      as the branches of a ReZero block, whose gain starts at 0);
    * ``"eps_over_scale"`` (Adam and RMSprop only, else ``None``): ``||W_steps - W_0||`` on the
      unscaled ``L`` with ``eps`` replaced by ``eps / loss_scale`` -- by the module docstring's
      algebra, the same steps as ``"scaled"``.
    * ``"predicted_ratio"`` (Adam and RMSprop with ``steps=1`` only, else ``None``): the ratio
      computed from the gradient's entries alone. The first step is exactly
      ``-lr * g / (c |g| + eps)`` per entry, with ``c = 1`` for Adam (its bias corrections make
      ``m_hat = g``, ``sqrt(v_hat) = |g|``) and ``c = sqrt(1 - alpha)`` for RMSprop (no bias
      correction), so scaling the loss by ``s`` gives
      ``||g / (c|g| + eps/s)|| / ||g / (c|g| + eps)||``: entries far above ``eps / s`` keep their
      step, entries far below it shrink by ``s``.

    For SGD and momentum one step gives ``ratio == loss_scale`` exactly (later steps start from
    different weights); for Adam and RMSprop the ratio is near 1 in layers whose gradients
    are well above ``eps / loss_scale``, and falls towards ``loss_scale`` in layers whose are below it.
    """
    _checks.module("model", model)
    _checks.features_and_labels(X, y)
    _checks.choice("optimizer", optimizer, OPTIMIZERS)
    _checks.number("lr", lr, minimum=0, strict_minimum=True)
    loss_scale = _checks.number("loss_scale", loss_scale, minimum=0, strict_minimum=True)
    _checks.integer("steps", steps, minimum=1)
    X = X.double()
    start = copy.deepcopy(model).double().train()
    grads, probe_weights = _layer_gradients(copy.deepcopy(start), X, y)
    result = {"layers": [name for name, _ in named_layers(model)],
              "grad_rms": [g.pow(2).mean().sqrt().item() for g in grads],
              "unscaled": _weight_changes(start, X, y, optimizer, lr, 1.0, ADAM_EPS, steps),
              "scaled": _weight_changes(start, X, y, optimizer, lr, loss_scale, ADAM_EPS, steps)}
    result["ratio"] = [s / u if u > 0 else float("nan") for s, u in zip(result["scaled"], result["unscaled"])]
    result["eps_over_scale"] = (_weight_changes(start, X, y, optimizer, lr, 1.0, ADAM_EPS / loss_scale, steps)
                                if optimizer in ("adam", "rmsprop") else None)
    result["predicted_ratio"] = (_predicted_ratio(grads, optimizer, lr, loss_scale, probe_weights[0])
                                 if optimizer in ("adam", "rmsprop") and steps == 1 else None)
    return result


def _layer_gradients(model, X, y):
    """Per layer of ``model``, ``dL/dW`` of the cross-entropy on ``(X, y)``, its weights taken together as one
    tensor (zeros for a weight the loss does not reach); and the flat list of those weights."""
    layer_params = [layer_weights(module, frozen=True) for _, module in named_layers(model)]
    weights = [w for ws in layer_params for w in ws]
    trainable = [w for w in weights if w.requires_grad]
    found = torch.autograd.grad(F.cross_entropy(model(X), y), trainable, allow_unused=True)
    found = dict(zip(map(id, trainable), found))
    flat_grads = [torch.zeros_like(w) if found.get(id(w)) is None else found[id(w)] for w in weights]
    grads, i = [], 0
    for ws in layer_params:
        grads.append(as_one_tensor(flat_grads[i:i + len(ws)]))
        i += len(ws)
    return grads, weights


def _predicted_ratio(grads, optimizer, lr, loss_scale, weight):
    """Per layer, ``||g / (c|g| + eps/s)|| / ||g / (c|g| + eps)||``: the first step's ratio scaled / unscaled for
    Adam (``c = 1``) or RMSprop (``c = sqrt(1 - alpha)``, ``alpha`` read from an optimizer built on ``weight``)."""
    c = 1.0 if optimizer == "adam" else (1 - make_optimizer([weight], optimizer, lr).defaults["alpha"]) ** 0.5
    return [(torch.linalg.vector_norm(g / (c * g.abs() + ADAM_EPS / loss_scale))
             / torch.linalg.vector_norm(g / (c * g.abs() + ADAM_EPS))).item() for g in grads]


def _weight_changes(model, X, y, optimizer, lr, factor, eps, steps):
    """``||W_steps - W_0||`` per layer after ``steps`` full-batch steps on ``factor * L``, on a copy."""
    model = copy.deepcopy(model)
    weights = [layer_weights(module, frozen=True) for _, module in named_layers(model)]
    before = [as_one_tensor([w.detach() for w in ws]).clone() for ws in weights]
    opt = make_optimizer(model.parameters(), optimizer, lr)
    for group in opt.param_groups:
        if "eps" in group:
            group["eps"] = eps
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        (factor * F.cross_entropy(model(X), y)).backward()
        opt.step()
    return [torch.linalg.vector_norm(as_one_tensor([w.detach() for w in ws]) - w0).item() for ws, w0 in zip(weights, before)]


def adam_ratio_ceiling(model, lr, layers=None, include=None):
    """Per layer, ``lr / rms(W)``: the update-to-weight ratio ``||dW|| / ||W||`` of a step that moves
    every weight by exactly ``lr``, the most an Adam step of learning rate ``lr`` does.

    Adam's step of one parameter, ``lr * m_hat / (sqrt(v_hat) + eps)``, is at most about ``lr``
    in size whatever the gradient's scale (Kingma & Ba 2015, section 2.1: the effective step is
    approximately bounded by the step size), so for a layer with ``n`` weights

        ||dW|| <= lr * sqrt(n),    ||dW|| / ||W|| <= lr * sqrt(n) / ||W|| = lr / rms(W).

    For PyTorch's default init, ``W ~ U(-1/sqrt(n_in), 1/sqrt(n_in))``, ``rms(W) = 1/sqrt(3 n_in)``
    and the ceiling is ``lr * sqrt(3 n_in)``: 0.059 for ``lr = 3e-3`` and ``n_in = 128``, far above
    the ~1e-3 that suits SGD. Steps whose gradient changes sign from step to step are smaller.

    ``layers`` and ``include`` choose the layers as in :func:`~gradcourse.core.layers.find_layers`
    (for a course MLP its hidden layers, as :class:`~gradcourse.core.monitor.GradientMonitor` records
    them). Returns a list of floats, one per layer, in registration order.

    Example::

        >>> model = MLP(width=128, depth=5, activation="sigmoid")
        >>> adam_ratio_ceiling(model, lr=3e-3)[1]      # about 3e-3 * sqrt(3 * 128)
        0.0587...
    """
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    weights = [layer_weights(module) for _, module in find_layers(model, layers, include)]
    sizes = [size.item() for size in group_norms(weights)]    # ||W||, as GradientMonitor divides by
    counts = [sum(p.numel() for p in ws) for ws in weights]
    return [lr * count ** 0.5 / size if size > 0 else float("inf") for count, size in zip(counts, sizes)]


def linear_warmup(steps, start_factor=0.01):
    """Learning-rate warmup for :func:`~gradcourse.core.train.fit`, as ``callbacks=[Scheduler(linear_warmup(n))]``: the learning rate
    rises linearly from ``start_factor * lr`` at the first optimizer step, by ``(1 - start_factor) *
    lr / steps`` per step, and stays at ``lr`` from step ``steps + 1`` on (the last warmup step runs at
    ``(1 - (1 - start_factor) / steps) * lr``).

    Returns ``optimizer -> torch.optim.lr_scheduler.LinearLR(optimizer, start_factor, 1.0, steps)``.
    Warmup keeps the first steps small while Adam's second-moment estimate ``v_hat`` still
    rests on a few gradients (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate
    and Beyond"), and while a large-batch SGD run leaves its chaotic start (Goyal et al. 2017,
    "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour").
    """
    steps = _checks.integer("steps", steps, minimum=1)
    start_factor = _checks.number("start_factor", start_factor, minimum=0, maximum=1, strict_minimum=True)

    def make_scheduler(optimizer):
        return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0,
                                                 total_iters=steps)
    return make_scheduler


def learning_rates(make_scheduler, lr, steps):
    """The learning rate a ``make_scheduler`` factory (such as :func:`linear_warmup`) gives at each
    of the first ``steps`` optimizer steps, starting from ``lr``, as a list of floats."""
    if not callable(make_scheduler):
        raise ValueError(f"make_scheduler={_checks.describe(make_scheduler)} is not allowed; it must be a callable "
                         "optimizer -> torch.optim.lr_scheduler.LRScheduler")
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    steps = _checks.integer("steps", steps, minimum=1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates
