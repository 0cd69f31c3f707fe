"""Deep residual networks without normalization: why the stream explodes, and four initializations that
tame it.

A residual stack adds a branch to its stream at every block, ``x_l = x_{l-1} + F_l(x_{l-1})``. With
branches independent of the stream, ``Var(x_l) = Var(x_{l-1}) + Var(F_l)``:

* a branch whose output scales with its input, ``Var(F_l) = v Var(x_{l-1})`` (a ReLU branch with He
  init has v = 1), multiplies the variance by ``1 + v`` per block: ``Var(x_L) = (1 + v)^L Var(x_0)``;
* a branch that normalizes its input (BatchNorm) adds a fixed ``v``: ``Var(x_L) = Var(x_0) + L v``, so
  block l's branch is about ``1/sqrt(l)`` of the stream -- De & Smith (2020), "Batch Normalization
  Biases Residual Blocks Towards the Identity Function in Deep Networks", NeurIPS.

The remedies start every branch at (or near) zero, so the stack starts as the identity:
zero-gamma (Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour": the
last BatchNorm of each block has gamma = 0), SkipInit (De & Smith 2020: a learnable scalar
``alpha = 0`` on each branch, no normalization) and Fixup (Zhang, Dauphin & Ma 2019, "Fixup
Initialization: Residual Learning Without Normalization", ICLR: the last layer of each branch and the
classifier at 0, the other branch layers He-initialized and scaled by ``L^(-1/(2m-2))``).
"""

from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..core import _checks
from ..core.monitor.monitor import GradientMonitor
from ..core.runtime import set_seed
from ..core.scoring import accuracy
from ..core.train import ProgressBar, fit
from .training_runs import TrainedRun, train_each

__all__ = ["first_gradient_steps", "fixup_scale", "PARAMETER_GROUPS", "predicted_second_moment", "predicted_gradient",
           "ResidualBlock", "ResidualMLP", "SCHEMES", "scheme_options", "seeded_network", "stream_at_init",
           "train_scheme", "train_schemes"]

SCHEMES = ("plain", "SkipInit", "Fixup", "BatchNorm", "zero-γ BatchNorm")
"""The five ways to start a deep residual MLP that the notebook compares (see :func:`scheme_options`)."""


def fixup_scale(depth, branch_layers=2):
    """Fixup's factor on the He-initialized weights inside each residual branch, ``L^(-1/(2m-2))`` for
    ``L = depth`` branches of ``m = branch_layers`` weight layers (Zhang, Dauphin & Ma 2019):
    with every branch weight scaled by c, an SGD step changes each branch by O(eta c^(2m-2)), and the
    sum of L such changes stays O(eta) when ``c^(2m-2) = 1/L``. For m = 2: ``1/sqrt(L)``."""
    depth = _checks.integer("depth", depth, minimum=1)
    branch_layers = _checks.integer("branch_layers", branch_layers, minimum=2)
    return depth ** (-1 / (2 * branch_layers - 2))


class ResidualBlock(nn.Module):
    """One residual block ``x + alpha * norm2(W2 relu(norm1(W1 x + b1)) + b2)``, two weight layers per
    branch. ``norm``: None or ``"batch"`` (a BatchNorm1d after each weight layer, as in the ResNet block
    of He et al. 2016, without the ReLU after the sum, so that the stream is an identity path).
    ``alpha``: None (no multiplier) or the initial value of a learnable scalar on the branch."""

    def __init__(self, width, norm=None, alpha=None):
        super().__init__()
        _checks.integer("width", width, minimum=1)
        _checks.choice("norm", norm, (None, "batch"))
        self.linear1, self.linear2 = nn.Linear(width, width), nn.Linear(width, width)
        self.norm1 = nn.BatchNorm1d(width) if norm else nn.Identity()
        self.norm2 = nn.BatchNorm1d(width) if norm else nn.Identity()
        alpha = None if alpha is None else _checks.number("alpha", alpha)
        self.alpha = None if alpha is None else nn.Parameter(torch.tensor(alpha))

    def branch(self, x):
        """The branch's output, multiplier included: what the block adds to the stream."""
        h = self.norm2(self.linear2(F.relu(self.norm1(self.linear1(x)))))
        return h if self.alpha is None else self.alpha * h

    def forward(self, x):
        return x + self.branch(x)


class ResidualMLP(nn.Module):
    """A deep residual MLP: ``x_0 = W_in x``, ``depth`` :class:`ResidualBlock` s, a linear classifier.

    Initialization (every bias 0): ``W_in`` and the classifier LeCun, N(0, 1/n_in); each branch's ``W1``
    He, N(0, 2/n_in), times ``first_scale``; its ``W2`` LeCun times ``last_scale``; the classifier
    times ``head_scale``; the last BatchNorm's gamma of each block ``gamma``. So each branch keeps the
    second moment of its input (``v = 1``) unless the scales say otherwise.

    Args:
        width, depth: units per layer and number of residual blocks (L).
        norm: None or ``"batch"`` (BatchNorm in every branch).
        alpha: None, or the initial value of a learnable scalar multiplier on every branch
            (SkipInit: 0; Fixup: 1).
        first_scale, last_scale, head_scale: factors on the initial ``W1``, ``W2`` and classifier
            (Fixup: ``fixup_scale(depth)``, 0, 0).
        gamma: initial gamma of each block's second BatchNorm (zero-gamma: 0); needs ``norm="batch"``.
    """

    def __init__(self, in_features=784, out_features=10, width=64, depth=32, norm=None, alpha=None,
                 first_scale=1.0, last_scale=1.0, head_scale=1.0, gamma=1.0):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features), ("width", width),
                            ("depth", depth)):
            _checks.integer(name, value, minimum=1)
        self.norm = _checks.choice("norm", norm, (None, "batch"))
        self.alpha = None if alpha is None else _checks.number("alpha", alpha)
        self.first_scale, self.last_scale, self.head_scale = (
            _checks.number(name, value, minimum=0) for name, value in
            (("first_scale", first_scale), ("last_scale", last_scale), ("head_scale", head_scale)))
        self.gamma = _checks.number("gamma", gamma)
        if norm is None and self.gamma != 1.0:
            raise ValueError(f"gamma={gamma!r} is not allowed with norm=None; gamma is a BatchNorm's scale: "
                             "set norm='batch' or leave gamma=1.0")
        self.input = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, norm, alpha) for _ in range(depth))
        self.output = nn.Linear(width, out_features)
        self._initialize()

    @torch.no_grad()
    def _initialize(self):
        for layer, nonlinearity, scale in [(self.input, "linear", 1.0), (self.output, "linear", self.head_scale)] + [
                (layer, nonlinearity, scale) for block in self.blocks for layer, nonlinearity, scale in
                ((block.linear1, "relu", self.first_scale), (block.linear2, "linear", self.last_scale))]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity=nonlinearity)
            layer.weight.mul_(scale)
            nn.init.zeros_(layer.bias)
        for block in self.blocks:
            if self.norm:
                block.norm2.weight.fill_(self.gamma)

    def forward(self, x):
        x = self.input(x)
        for block in self.blocks:
            x = block(x)
        return self.output(x)

    def extra_repr(self):
        return (f"norm={self.norm!r}, alpha={self.alpha!r}, first_scale={self.first_scale:.4g}, "
                f"last_scale={self.last_scale:g}, head_scale={self.head_scale:g}, gamma={self.gamma:g}")


def scheme_options(scheme, depth):
    """The :class:`ResidualMLP` options of one of :data:`SCHEMES` at ``depth`` blocks:

    * ``"plain"``: no normalization, no multiplier (He init makes every branch as large as its input);
    * ``"SkipInit"``: a learnable ``alpha = 0`` on every branch (De & Smith 2020);
    * ``"Fixup"``: ``alpha = 1`` (the paper's scalar multiplier), ``W1`` times ``fixup_scale(depth)``, ``W2``
      and the classifier 0 (Zhang, Dauphin & Ma 2019; the Linear layers' own biases, all 0, stand in for
      the paper's scalar biases);
    * ``"BatchNorm"``: a BatchNorm after each branch layer;
    * ``"zero-γ BatchNorm"``: the same with the second BatchNorm's gamma 0 (Goyal et al. 2017).
    """
    _checks.choice("scheme", scheme, SCHEMES)
    depth = _checks.integer("depth", depth, minimum=1)
    return {"plain": {}, "SkipInit": dict(alpha=0.0),
            "Fixup": dict(alpha=1.0, first_scale=fixup_scale(depth), last_scale=0.0, head_scale=0.0),
            "BatchNorm": dict(norm="batch"), "zero-γ BatchNorm": dict(norm="batch", gamma=0.0)}[scheme]


def seeded_network(scheme="plain", seed=0, depth=32, **model_options):
    """``set_seed(seed)``, then ``ResidualMLP(depth=depth, **scheme_options(scheme, depth), **model_options)``:
    the network a scheme and a seed name (``model_options``: ``in_features``, ``width``, ...)."""
    options = scheme_options(scheme, depth)
    clash = sorted(set(options) & set(model_options))
    if clash:
        raise ValueError(f"{clash[0]}={model_options[clash[0]]!r} is not allowed with scheme={scheme!r}, which sets it")
    set_seed(_checks.integer("seed", seed, minimum=0))
    return ResidualMLP(depth=depth, **options, **model_options)


def stream_at_init(model, X, y):
    """One forward and backward pass of a :class:`ResidualMLP` on ``(X, y)`` (cross-entropy; on a copy in
    training mode, so BatchNorm normalizes with the batch and its running statistics stay untouched).

    Returns a dict of lists, input side first: ``"second_moment"``, the mean square of the stream
    ``x_l`` for l = 0 .. L (``x_0`` the input layer's output); ``"branch_second_moment"``, the mean
    square of what block l adds, for l = 1 .. L; ``"gradient"``, ``||dLoss/dx_l||`` for l = 0 .. L; and
    floats ``"loss"`` and ``"identity_gap"``, ``max |x_L - x_0|`` (exactly 0 when every branch starts at 0).
    """
    if not isinstance(model, ResidualMLP):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a ResidualMLP")
    _checks.features_and_labels(X, y)
    model = copy.deepcopy(model).train()
    with torch.enable_grad():
        stream, branches = [model.input(X)], []
        for block in model.blocks:
            branches.append(block.branch(stream[-1]))
            stream.append(stream[-1] + branches[-1])
        for x in stream:
            x.retain_grad()
        loss = F.cross_entropy(model.output(stream[-1]), y)
        loss.backward()
    return {"second_moment": [x.detach().pow(2).mean().item() for x in stream],
            "branch_second_moment": [b.detach().pow(2).mean().item() for b in branches],
            "gradient": [x.grad.norm().item() for x in stream], "loss": loss.item(),
            "identity_gap": (stream[-1] - stream[0]).detach().abs().max().item()}


PARAMETER_GROUPS = {"classifier": "output.", "input layer": "input.", "α": ".alpha", "W2": ".linear2.",
                    "W1": ".linear1.", "γ and β": ".norm"}
"""The parameters of a :class:`ResidualMLP` in groups, each named by the part of the parameter names it matches:
``"W2"`` and ``"W1"`` are every branch's second and first Linear layer (weights and biases), ``"α"`` the branch
multipliers, ``"γ and β"`` the BatchNorm parameters."""


def first_gradient_steps(model, X, y, *, lr, steps=4):
    """On a copy of a :class:`ResidualMLP`, take ``steps`` full-batch SGD steps at ``lr`` on ``(X, y)``
    (cross-entropy) and return ``{group: step}``: the first step (1-based) at which any parameter of each
    group of :data:`PARAMETER_GROUPS` the model has got a nonzero gradient, or None if none did. A weight
    multiplied by a zero (alpha = 0, W2 = 0, a zero classifier) gets no gradient until that zero has moved."""
    if not isinstance(model, ResidualMLP):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a ResidualMLP")
    _checks.features_and_labels(X, y)
    _checks.number("lr", lr, minimum=0, strict_minimum=True)
    steps = _checks.integer("steps", steps, minimum=1, maximum=100)
    model = copy.deepcopy(model).train()
    named = dict(model.named_parameters())
    groups = {group: [p for name, p in named.items() if part in f".{name}"] for group, part in PARAMETER_GROUPS.items()}
    first = {group: None for group, params in groups.items() if params}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with torch.enable_grad():
        for step in range(1, steps + 1):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            for group in first:
                if first[group] is None and any(p.grad is not None and p.grad.abs().max() > 0 for p in groups[group]):
                    first[group] = step
            optimizer.step()
    return first


def train_scheme(X, y, *, validation, scheme="plain", seed=0, depth=32, lr, epochs, batch_size, monitor_every=1000,
                 **model_options):
    """Build :func:`seeded_network` and train it with SGD at ``lr`` through :func:`~gradcourse.core.train.fit`
    (which stops cleanly at a non-finite loss), watched by a
    :class:`~gradcourse.core.monitor.GradientMonitor` on every block's ``W2`` that records the first step
    and every ``monitor_every``-th. Returns a :class:`~gradcourse.lessons.training_runs.TrainedRun` scored
    on ``validation``."""
    _checks.features_and_labels(X, y)
    _checks.features_and_labels(*validation, x_name="validation[0]", y_name="validation[1]")
    model = seeded_network(scheme, seed, depth, in_features=X.shape[1], **model_options)
    monitor = GradientMonitor(model, layers=[block.linear2 for block in model.blocks],
                              every=_checks.integer("monitor_every", monitor_every, minimum=1))
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, validation=validation, seed=seed,
                  callbacks=[monitor, ProgressBar(show=False)])
    return TrainedRun(model, history, monitor, accuracy(model, *validation))


def train_schemes(X, y, *, validation, schemes=SCHEMES, progress=True, **shared):
    """One :func:`train_scheme` run per scheme in ``schemes`` (names from :data:`SCHEMES`), with the
    ``shared`` options, in order, as :func:`~gradcourse.lessons.training_runs.train_each` runs them (one
    progress bar; an interrupt returns the finished runs). Returns ``{scheme: TrainedRun}``."""
    if not isinstance(schemes, (list, tuple)) or not schemes or not all(s in SCHEMES for s in schemes):
        raise ValueError(f"schemes={_checks.describe(schemes)} is not allowed; it must be a non-empty list of "
                         f"names from {list(SCHEMES)}")
    return train_each(partial(train_scheme, X, y, validation=validation), {s: {"scheme": s} for s in schemes},
                      progress=progress, what="residual networks", **shared)


def predicted_second_moment(first, depth, v, normalized=False):
    """The stream's mean square at blocks 0 .. ``depth`` when every branch adds a variance independent of the
    stream's past: ``first * (1 + v)^l`` for branches that scale with their input (``v`` times its mean
    square), ``first + l v`` for normalized ones (each adds ``v``)."""
    first = _checks.number("first", first, minimum=0)
    depth = _checks.integer("depth", depth, minimum=0)
    v = _checks.number("v", v, minimum=0)
    _checks.boolean("normalized", normalized)
    return [first + l * v if normalized else first * (1 + v) ** l for l in range(depth + 1)]


def predicted_gradient(last, depth, v):
    """``||dLoss/dx_l||`` at blocks 0 .. ``depth`` when it reaches the top as ``last`` and every block's Jacobian
    ``I + dF/dx`` multiplies its square by ``1 + v`` on the way down (branches that scale with their input):
    ``last * (1 + v)^((depth - l) / 2)``."""
    last = _checks.number("last", last, minimum=0)
    depth = _checks.integer("depth", depth, minimum=0)
    v = _checks.number("v", v, minimum=0)
    return [last * (1 + v) ** ((depth - l) / 2) for l in range(depth + 1)]
