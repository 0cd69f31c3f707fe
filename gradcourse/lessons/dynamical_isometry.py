"""Dynamical isometry: the whole spectrum of a deep network's input-output Jacobian, not just its mean.

For ``x_l = phi(h_l)``, ``h_l = W_l x_{l-1} + b_l`` (``l = 1..L``), the Jacobian of the last layer's output with
respect to the input is ``J = D_L W_L ... D_1 W_1`` with ``D_l = diag(phi'(h_l))``. At the edge of chaos the mean
squared singular value of every factor is ``chi = 1``, so the mean of ``s^2`` over J's singular values stays about 1 at
any depth; their spread need not. Pennington, Schoenholz & Ganguli (2017), "Resurrecting the sigmoid in deep learning
through dynamical isometry: theory and practice", compute it: at ``chi = 1`` the variance of the ``s^2`` is
``L (mu_2 / mu_1^2 - 1 - s_1)`` with ``mu_k = E[phi'(h)^(2k)]``, ``h ~ N(0, q*)``, and ``s_1 = -1`` for Gaussian,
``0`` for orthogonal weights. Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear dynamics of learning
in deep linear neural networks", show what the spread costs: deep linear networks learn in a number of steps that
hardly grows with depth from orthogonal weights, and in ever more steps from scaled Gaussian ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core import _checks
from ..core.runtime import set_seed
from .edge_of_chaos import critical_line, gaussian_expectation
from .initialization import steps_to_loss

__all__ = ["ACTIVATIONS", "critical_configurations", "input_output_jacobian", "jacobian_by_hand",
           "jacobian_spectra", "learning_time", "learning_times", "LR_FACTORS", "random_layers", "spectrum_summary",
           "spectrum_variance", "WEIGHTS"]

ACTIVATIONS = {
    "linear": (lambda h: h, lambda h: torch.ones_like(h)),
    "relu": (torch.relu, lambda h: (h > 0).to(h.dtype)),
    "tanh": (torch.tanh, lambda h: 1 - torch.tanh(h) ** 2),
}
"""Each activation with its derivative, as torch functions: ``{name: (phi, phi')}``."""
WEIGHTS = ("gaussian", "orthogonal")
LR_FACTORS = tuple(2 ** (-k / 2) for k in range(8))
"""The learning rates :func:`learning_time` tries at once, as ``c / depth`` for each ``c`` here (1 down to 0.09)."""


def random_layers(depth, width, *, weights, sigma_w, sigma_b=0.0, seed=0):
    """``[(W_l, b_l)]`` for ``l = 1..depth``, float64, drawn after ``set_seed(seed)``: ``W_l ~ N(0, sigma_w^2 / width)``
    (``weights="gaussian"``, :func:`torch.nn.init.normal_`) or ``sigma_w`` times a random orthogonal matrix
    (``"orthogonal"``, :func:`torch.nn.init.orthogonal_`), and ``b_l ~ N(0, sigma_b^2)``."""
    depth, width = _checks.integer("depth", depth, minimum=1), _checks.integer("width", width, minimum=1)
    _checks.choice("weights", weights, WEIGHTS)
    sigma_w = _checks.number("sigma_w", sigma_w, minimum=0)
    sigma_b = _checks.number("sigma_b", sigma_b, minimum=0)
    set_seed(seed)
    layers = []
    for _ in range(depth):
        weight = torch.empty(width, width, dtype=torch.float64)
        if weights == "gaussian":
            torch.nn.init.normal_(weight, std=sigma_w / math.sqrt(width))
        else:
            torch.nn.init.orthogonal_(weight, gain=sigma_w)
        layers.append((weight, torch.randn(width, dtype=torch.float64) * sigma_b))
    return layers


def _forward(layers, activation):
    phi = ACTIVATIONS[_checks.choice("activation", activation, tuple(ACTIVATIONS))][0]

    def network(x):
        for weight, bias in layers:
            x = phi(weight @ x + bias)
        return x
    return network


def input_output_jacobian(layers, x, activation):
    """``J = d x_L / d x_0`` of the network ``layers`` (as :func:`random_layers` gives) at the input ``x``
    (a vector), by :func:`torch.autograd.functional.jacobian`: one backward pass per output."""
    return torch.autograd.functional.jacobian(_forward(layers, activation), x)


def jacobian_by_hand(layers, x, activation):
    """The same Jacobian by the chain rule, ``J = D_L W_L ... D_1 W_1`` with ``D_l = diag(phi'(h_l))``: one forward
    pass that multiplies the running product by each layer's ``W_l`` and then scales its rows by ``phi'(h_l)``."""
    phi, slope = ACTIVATIONS[_checks.choice("activation", activation, tuple(ACTIVATIONS))]
    product = torch.eye(len(x), dtype=x.dtype)
    for weight, bias in layers:
        h = weight @ x + bias
        product = slope(h)[:, None] * (weight @ product)
        x = phi(h)
    return product


def critical_configurations(q_star=1 / 64):
    """Six networks at the edge of chaos (mean squared singular value 1 per layer), by activation and weights:
    linear with ``sigma_w = 1``; ReLU with ``sigma_w = sqrt 2`` (He et al.'s scale); tanh at the point of the
    critical line whose fixed length is ``q_star`` (:func:`~gradcourse.lessons.edge_of_chaos.critical_line`):
    ``{name: options for jacobian_spectra}``."""
    q_star = _checks.number("q_star", q_star, minimum=0, strict_minimum=True, maximum=10)
    sigma_w, sigma_b = (float(v[0]) for v in critical_line([q_star]))
    scales = {"linear": dict(sigma_w=1.0, sigma_b=0.0, q_star=1.0), "ReLU": dict(sigma_w=math.sqrt(2), sigma_b=0.0,
                                                                              q_star=1.0),
              "tanh": dict(sigma_w=sigma_w, sigma_b=sigma_b, q_star=q_star)}
    return {f"{name}, {'Gaussian' if weights == 'gaussian' else weights}": dict(activation=name.lower(), weights=weights, **scale)
            for name, scale in scales.items() for weights in WEIGHTS}


def jacobian_spectra(configurations, depths, width=128, seed=0):
    """``{name: {depth: singular values of J}}`` for each configuration (``activation, weights, sigma_w, sigma_b,
    q_star``, as :func:`critical_configurations` gives) and depth, each at one input ``x_0 = phi(h_0)``,
    ``h_0 ~ N(0, q_star I)``, so that every layer's pre-activations start at the fixed length. J by
    :func:`jacobian_by_hand`; singular values by :func:`torch.linalg.svdvals`, largest first."""
    if not isinstance(configurations, dict) or not configurations:
        raise ValueError(f"configurations={_checks.describe(configurations)} is not allowed; it must be a non-empty dict")
    depths = [_checks.integer("depths[i]", d, minimum=1) for d in depths]
    spectra = {}
    for name, options in configurations.items():
        options = dict(options)
        activation, q_star = options.pop("activation"), options.pop("q_star", 1.0)
        spectra[name] = {}
        for depth in depths:
            layers = random_layers(depth, width, seed=seed, **options)
            x = ACTIVATIONS[activation][0](math.sqrt(q_star) * torch.randn(width, dtype=torch.float64))
            spectra[name][depth] = torch.linalg.svdvals(jacobian_by_hand(layers, x, activation))
    return spectra


def spectrum_summary(singular_values, near=2.0):
    """What a spectrum says: ``mean_s2`` (the mean of ``s^2``, ``chi^L`` on average), ``median_s2``, ``var_s2``,
    ``largest_s2``, ``smallest_s`` and ``share_near_1``, the share of singular values within a factor ``near``
    of 1 (all of them under dynamical isometry)."""
    s = torch.as_tensor(singular_values, dtype=torch.float64).reshape(-1)
    if s.numel() == 0 or not torch.isfinite(s).all():
        raise ValueError(f"singular_values={_checks.describe(singular_values)} is not allowed; give finite numbers")
    near = _checks.number("near", near, minimum=1, strict_minimum=True)
    s2 = s ** 2
    return {"mean_s2": s2.mean().item(), "median_s2": s2.median().item(), "var_s2": s2.var(unbiased=False).item(),
            "largest_s2": s2.max().item(), "smallest_s": s.min().item(),
            "share_near_1": ((s > 1 / near) & (s < near)).double().mean().item()}


_SLOPES = {"linear": lambda h: np.ones_like(h), "relu": lambda h: (h > 0).astype(float),
           "tanh": lambda h: 1 - np.tanh(h) ** 2}


def spectrum_variance(depth, *, activation, weights, q_star=1.0):
    """Pennington et al.'s (2017) variance of J J^T's eigenvalues (the ``s^2``) for a network at ``chi = 1`` in the
    wide limit: ``L (mu_2 / mu_1^2 - 1 - s_1)``, ``mu_k = E[phi'(h)^(2k)]`` for ``h ~ N(0, q_star)`` (Gauss-Hermite),
    ``s_1 = -1`` for Gaussian weights and ``0`` for orthogonal ones. Linear: ``L`` or 0; ReLU (``mu_1 = mu_2 = 1/2``):
    ``2L`` or ``L``; tanh: close to ``L`` or to 0 when ``q_star`` is small."""
    depth = _checks.integer("depth", depth, minimum=1)
    slope = _SLOPES[_checks.choice("activation", activation, tuple(_SLOPES))]
    s_1 = {"gaussian": -1.0, "orthogonal": 0.0}[_checks.choice("weights", weights, WEIGHTS)]
    q_star = _checks.number("q_star", q_star, minimum=0, strict_minimum=True)
    mu_1 = gaussian_expectation(lambda h: slope(h) ** 2, q_star)
    mu_2 = gaussian_expectation(lambda h: slope(h) ** 4, q_star)
    spread = mu_2 / mu_1 ** 2 - 1   # >= 0 (Jensen); within 1e-12 of 0 it is rounding
    return depth * ((spread if spread > 1e-12 else 0.0) - s_1)


def _linear_task(in_features, out_features, seed):
    """The target map ``A = U diag(s) V^T`` with singular values ``s`` evenly from 2 down to 1."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(out_features, out_features, generator=generator, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(in_features, out_features, generator=generator, dtype=torch.float64))[0]
    return u @ torch.diag(torch.linspace(2.0, 1.0, out_features, dtype=torch.float64)) @ v.T


def learning_time(depth, *, weights, width=16, in_features=16, out_features=4, max_steps=300, level=0.01, seed=0):
    """Saxe et al.'s (2014) learning time of a deep linear network: full-batch gradient descent on
    ``E = 1/2 ||A - W_L ... W_1||_F^2`` (their squared error for whitened inputs, ``Sigma_11 = I``, with target
    map ``A``), started from ``weights`` (scaled Gaussian ``N(0, 1/n_in)`` or random orthogonal, each layer
    ``n_in -> n_out``: ``in_features -> width -> ... -> out_features``), with every learning rate
    ``c / depth`` of :data:`LR_FACTORS` run side by side (a batch of copies). Returns ``(steps, lr)``: the
    fewest steps after which ``E`` is below ``level`` times its value at the zero map, ``1/2 ||A||^2``
    (:func:`~gradcourse.lessons.initialization.steps_to_loss`), and the rate that took them; ``(None, None)``
    if no rate got there in ``max_steps``. Saxe et al. likewise chose the best rate for each depth."""
    depth = _checks.integer("depth", depth, minimum=1, maximum=200)
    _checks.choice("weights", weights, WEIGHTS)
    sizes = [_checks.integer("in_features", in_features, minimum=1)] + [_checks.integer("width", width, minimum=1)] * (
        depth - 1) + [_checks.integer("out_features", out_features, minimum=1)]
    max_steps = _checks.integer("max_steps", max_steps, minimum=1)
    level = _checks.number("level", level, minimum=0, strict_minimum=True)
    target = _linear_task(in_features, out_features, seed)
    set_seed(seed)
    rates = torch.tensor(LR_FACTORS, dtype=torch.float64).view(-1, 1, 1) / depth
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        weight = torch.empty(n_out, n_in, dtype=torch.float64)
        if weights == "orthogonal":
            torch.nn.init.orthogonal_(weight)
        else:
            torch.nn.init.normal_(weight, std=n_in ** -0.5)
        layers.append(weight.expand(len(LR_FACTORS), -1, -1).clone().requires_grad_())
    scale, losses = 0.5 * target.pow(2).sum(), []
    for _ in range(max_steps):
        with torch.enable_grad():
            product = layers[0]
            for weight in layers[1:]:
                product = weight @ product
            loss = 0.5 * (target - product).pow(2).sum((1, 2))
            losses.append((loss.detach() / scale).tolist())
            if min(losses[-1]) < level:
                break
            grads = torch.autograd.grad(loss.sum(), layers)
        with torch.no_grad():
            for weight, grad in zip(layers, grads):
                weight -= rates * grad
    return _fastest(losses, level, rates.view(-1).tolist())


def _fastest(losses, level, rates):
    """``(steps, lr)`` of the run that first had a loss below ``level``, or ``(None, None)``."""
    best = (None, None)
    for run, lr in enumerate(rates):
        curve = [row[run] for row in losses]
        finite = curve[:next((i for i, v in enumerate(curve) if not math.isfinite(v)), len(curve))]
        steps = steps_to_loss(finite, level, window=1) if finite else None   # counts the loss at the start
        steps = None if steps is None else steps - 1
        if steps is not None and (best[0] is None or steps < best[0]):
            best = (steps, lr)
    return best


def learning_times(depths, weights=WEIGHTS, **task):
    """``{weights: [steps to the level for each depth, None where not reached]}`` by :func:`learning_time`
    (``task``: its other options)."""
    depths = list(depths)
    if not depths:
        raise ValueError("depths=[] is not allowed; give at least one depth")
    return {w: [learning_time(depth, weights=w, **task)[0] for depth in depths] for w in weights}
