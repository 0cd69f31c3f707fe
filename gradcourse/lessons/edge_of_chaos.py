"""The edge of chaos: how a signal and its gradient travel through a deep random tanh network.

A wide network ``h_l = W_l x_{l-1} + b_l``, ``x_l = tanh(h_l)``, ``W_l ~ N(0, sigma_w^2 / N)``, ``b_l ~ N(0, sigma_b^2)``
is described layer by layer by a few numbers (the mean-field limit, N -> infinity): the length map and its fixed point
``q*``, the correlation map of two inputs, and ``chi_1 = sigma_w^2 E[tanh'(sqrt(q*) z)^2]``, the map's slope at
``c = 1`` and each layer's factor on a gradient's squared norm: ``chi_1 < 1`` is the ordered phase (inputs merge,
gradients vanish), ``chi_1 > 1`` the chaotic one (inputs decorrelate, gradients explode). Poole, Lahiri, Raghu,
Sohl-Dickstein & Ganguli (2016), "Exponential expressivity in deep neural networks through transient chaos";
Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), "Deep information propagation", who define the depth scales
``xi_q``, ``xi_c`` and find networks trainable up to about ``6 xi_c``. Expectations are Gauss-Hermite sums.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss
from tqdm.auto import tqdm

from ..core import _checks
from ..core.models import seeded_mlp
from ..core.scoring import accuracy
from ..core.train import EpochScores, ProgressBar, fit

__all__ = ["chi_1", "correlation_fixed_point", "correlation_map", "correlations_through_depth", "critical_line",
           "critical_sigma_w", "depth_scales", "gaussian_expectation", "length_fixed_point", "length_map",
           "MAX_POINTS", "mean_field_mlp", "phase_diagram", "quadrature_points", "trainability", "wide_network_signals"]

MAX_POINTS = 300
"""The most Gauss-Hermite nodes used (numpy's ``hermegauss`` overflows beyond about 350)."""


def quadrature_points(q):
    """Gauss-Hermite nodes enough for tanh at variances up to ``q``: ``64 + 48 q``, rounded up to a multiple of 64,
    at most :data:`MAX_POINTS`. ``tanh(sqrt(q) z)`` turns into a step as ``q`` grows, and a step is far from a
    polynomial: 64 nodes give ``E[tanh'(h)^4]`` to about 1e-7 at ``q = 1`` but only to about 3e-3 at ``q = 5.5``; this rule
    keeps the error below about 1e-5 up to ``q = 7``."""
    return int(min(MAX_POINTS, 64 * math.ceil((64 + 48 * float(np.max(q))) / 64)))


@functools.lru_cache(maxsize=16)
def _nodes(points):
    """``hermegauss(points)``, computed once per number of points."""
    return hermegauss(points)


def _tanh_slope(h):
    return 1.0 - np.tanh(h) ** 2


def _tanh_curvature(h):
    return -2.0 * np.tanh(h) * (1.0 - np.tanh(h) ** 2)


def _plain(value):
    """A float for a 0-dimensional result, the array otherwise."""
    return float(value) if np.ndim(value) == 0 else value


def _nonnegative(name, value):
    """``value`` as a float (a number) or a float array (an array of numbers), all finite and >= 0."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError(f"{name}={_checks.describe(value)} is not allowed; every entry must be a finite number >= 0")
        return array
    return _checks.number(name, value, minimum=0)


def _scales(sigma_w, sigma_b):
    """``(sigma_w, sigma_b, points)``: the scales checked, and the nodes for every variance up to the largest
    ``q*`` can reach, ``sigma_w^2 + sigma_b^2``, so that every map of one network uses one rule."""
    sigma_w, sigma_b = _nonnegative("sigma_w", sigma_w), _nonnegative("sigma_b", sigma_b)
    return sigma_w, sigma_b, quadrature_points(np.max(np.asarray(sigma_w) ** 2 + np.asarray(sigma_b) ** 2))


def gaussian_expectation(f, q=1.0, points=None):
    """``E[f(sqrt(q) z)]`` for ``z ~ N(0, 1)``, by Gauss-Hermite quadrature.

    :func:`numpy.polynomial.hermite_e.hermegauss` gives ``points`` nodes ``x_i`` and weights ``w_i`` with
    ``integral g(x) exp(-x^2 / 2) dx = sum_i w_i g(x_i)`` exactly for every polynomial ``g`` of degree up to
    ``2 points - 1``; dividing by ``sqrt(2 pi)`` turns ``exp(-x^2/2)`` into the standard normal density, so
    ``E[g(z)] ~ sum_i w_i g(x_i) / sqrt(2 pi)``. ``f`` takes a NumPy array; ``q`` may be an array of variances,
    one expectation each; ``points`` defaults to :func:`quadrature_points` of the largest.

    Example::

        >>> round(gaussian_expectation(lambda h: h ** 2, q=2.0), 12)    # E[(sqrt(2) z)^2] = 2
        2.0
    """
    if not callable(f):
        raise ValueError(f"f={_checks.describe(f)} is not allowed; it must be a function of a NumPy array")
    q = _nonnegative("q", q)
    points = quadrature_points(q) if points is None else _checks.integer("points", points, minimum=1, maximum=MAX_POINTS)
    nodes, weights = _nodes(points)
    values = f(np.sqrt(np.asarray(q))[..., None] * nodes)
    return _plain((values * weights).sum(-1) / math.sqrt(2 * math.pi))


def length_map(q, sigma_w, sigma_b):
    """One layer of the length map: ``q_l = sigma_w^2 E[tanh(sqrt(q_{l-1}) z)^2] + sigma_b^2`` (Poole et al. 2016),
    the mean squared pre-activation of layer l given that of layer l - 1."""
    q, (sigma_w, sigma_b, points) = _nonnegative("q", q), _scales(sigma_w, sigma_b)
    points = max(points, quadrature_points(q))
    return _plain(sigma_w ** 2 * gaussian_expectation(lambda h: np.tanh(h) ** 2, q, points) + sigma_b ** 2)


def length_fixed_point(sigma_w, sigma_b):
    """``q*`` with ``length_map(q*) = q*``, by bisection on ``[0, sigma_w^2 + sigma_b^2]`` (tanh^2 <= 1 bounds
    the map there). The map is concave and rises from ``sigma_b^2``, so the root is unique, except at
    ``sigma_b = 0``, where ``q = 0`` is a root too: the larger one is returned (0 when ``sigma_w <= 1``)."""
    sigma_w, sigma_b, points = _scales(sigma_w, sigma_b)
    if np.ndim(sigma_w) == np.ndim(sigma_b) == 0:   # one network, as most calls ask: solved once, then remembered
        return _fixed_length(float(sigma_w), float(sigma_b), points)
    return _fixed_length.__wrapped__(sigma_w, sigma_b, points)


@functools.lru_cache(maxsize=256)
def _fixed_length(sigma_w, sigma_b, points):
    high = (low := np.zeros(np.broadcast(sigma_w, sigma_b).shape)) + sigma_w ** 2 + sigma_b ** 2
    for _ in range(55):
        middle = (low + high) / 2
        above = sigma_w ** 2 * gaussian_expectation(lambda h: np.tanh(h) ** 2, middle, points) + sigma_b ** 2 > middle
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return _plain((low + high) / 2)


def chi_1(sigma_w, sigma_b):
    """``chi_1 = sigma_w^2 E[tanh'(sqrt(q*) z)^2]``: the mean squared singular value of one layer's Jacobian at the
    fixed point, the slope of the correlation map at c = 1 (Poole et al. 2016; Schoenholz et al. 2017)."""
    q, (sigma_w, sigma_b, points) = length_fixed_point(sigma_w, sigma_b), _scales(sigma_w, sigma_b)
    return _plain(np.asarray(sigma_w) ** 2 * gaussian_expectation(lambda h: _tanh_slope(h) ** 2, q, points))


def _pair_expectation(f, g, q, c, points):
    """``E[f(u_1) g(u_2)]`` for ``u_1, u_2`` of variance ``q`` (a number) and correlation each ``c``, by a
    two-dimensional Gauss-Hermite sum: ``u_1 = sqrt(q) z_1``, ``u_2 = sqrt(q) (c z_1 + sqrt(1 - c^2) z_2)``."""
    nodes, weights = _nodes(points)
    z1, z2, both = nodes[:, None], nodes[None, :], np.outer(weights, weights) / (2 * math.pi)
    first, scale = f(math.sqrt(q) * z1) * both, math.sqrt(q)
    return np.reshape([(first * g(scale * (r * z1 + math.sqrt(max(1 - r * r, 0.0)) * z2))).sum() for r in np.ravel(c)],
                      np.shape(c))


def _correlation_step(c, q, sigma_w, sigma_b, points):
    """The correlation map at a known fixed length ``q``: ``(sigma_w^2 E[tanh(u_1) tanh(u_2)] + sigma_b^2) / q``."""
    pair = np.asarray(sigma_w) ** 2 * _pair_expectation(np.tanh, np.tanh, q, c, points) + np.asarray(sigma_b) ** 2
    return np.where(np.asarray(q) > 1e-12, np.clip(pair / np.maximum(q, 1e-300), -1, 1), c)


def correlation_map(c, sigma_w, sigma_b):
    """One layer of the correlation map of two inputs at the fixed length ``q*`` (Poole et al. 2016):
    ``c_l = (sigma_w^2 E[tanh(u_1) tanh(u_2)] + sigma_b^2) / q*``, for one network and any array of ``c``. Where
    ``q* = 0`` (``sigma_b = 0``, ``sigma_w <= 1``) the network is linear around 0 and passes ``c`` on unchanged."""
    c = np.asarray(c, dtype=float)
    if not np.all(np.isfinite(c)) or np.any(np.abs(c) > 1):
        raise ValueError(f"c={_checks.describe(c)} is not allowed; a correlation lies in [-1, 1]")
    sigma_w, sigma_b = _checks.number("sigma_w", sigma_w, minimum=0), _checks.number("sigma_b", sigma_b, minimum=0)
    points = _scales(sigma_w, sigma_b)[2]
    return _plain(_correlation_step(c, length_fixed_point(sigma_w, sigma_b), sigma_w, sigma_b, points))


def correlations_through_depth(c0, depth, sigma_w, sigma_b):
    """``[c_0, c_1, ..., c_depth]``: the correlation map iterated ``depth`` times from ``c0``."""
    depth, q, points = _checks.integer("depth", depth, minimum=0), length_fixed_point(sigma_w, sigma_b), _scales(sigma_w, sigma_b)[2]
    correlations = [float(_checks.number("c0", c0, minimum=-1, maximum=1))]
    for _ in range(depth):
        correlations.append(float(_correlation_step(correlations[-1], q, sigma_w, sigma_b, points)))
    return correlations


def correlation_fixed_point(sigma_w, sigma_b):
    """``c*`` of one network: 1 in the ordered phase (``chi_1 <= 1``); in the chaotic phase the stable fixed point
    below 1, by bisection on ``[0, 1)`` (where ``c_map(c) - c`` changes sign from + to -)."""
    sigma_w, sigma_b = _checks.number("sigma_w", sigma_w, minimum=0), _checks.number("sigma_b", sigma_b, minimum=0)
    if chi_1(sigma_w, sigma_b) <= 1:
        return 1.0
    q, points, low, high = length_fixed_point(sigma_w, sigma_b), _scales(sigma_w, sigma_b)[2], 0.0, 1 - 1e-9
    for _ in range(24):
        middle = (low + high) / 2
        low, high = (middle, high) if _correlation_step(middle, q, sigma_w, sigma_b, points) > middle else (low, middle)
    return (low + high) / 2


def depth_scales(sigma_w, sigma_b):
    """Schoenholz et al.'s (2017) depth scales, with what they are made of:

    * ``xi_q = -1 / ln(chi_1 + sigma_w^2 E[tanh(u) tanh''(u)])``: the bracket is the length map's slope at ``q*``
      (differentiate ``E[tanh(sqrt(q) z)^2]`` in q, then Stein's lemma), ``|q_l - q*| ~ exp(-l / xi_q)``;
    * ``xi_c = -1 / ln(chi_c)``, ``chi_c = sigma_w^2 E[tanh'(u_1) tanh'(u_2)]`` at correlation ``c*``, the
      correlation map's slope at its fixed point: ``|c_l - c*| ~ exp(-l / xi_c)``; ``chi_c = chi_1`` when ordered.

    A dict of ``q_star, chi_1, c_star, chi_c, xi_q, xi_c`` (arrays for array arguments; ``inf`` where a slope >= 1)."""
    if np.ndim(sigma_w) or np.ndim(sigma_b):
        points = [depth_scales(w, b) for w, b in zip(*np.broadcast_arrays(sigma_w, sigma_b))]
        return {key: np.array([p[key] for p in points]) for key in points[0]}
    q, chi, c = length_fixed_point(sigma_w, sigma_b), chi_1(sigma_w, sigma_b), correlation_fixed_point(sigma_w, sigma_b)
    points = _scales(sigma_w, sigma_b)[2]
    slope_q = chi + sigma_w ** 2 * gaussian_expectation(lambda h: np.tanh(h) * _tanh_curvature(h), q, points)
    chi_c = sigma_w ** 2 * float(_pair_expectation(_tanh_slope, _tanh_slope, q, c, points))
    xi_q, xi_c = (-1 / math.log(s) if 0 < s < 1 else math.inf for s in (slope_q, chi_c))
    return dict(q_star=q, chi_1=chi, c_star=c, chi_c=chi_c, xi_q=xi_q, xi_c=xi_c)


def critical_line(q_stars):
    """``(sigma_w, sigma_b)`` arrays on the edge of chaos, one point per fixed length ``q*`` in ``q_stars``: from
    ``chi_1 = 1`` and the fixed-point equation, ``sigma_w^2 = 1 / E[tanh'(sqrt(q*) z)^2]`` and
    ``sigma_b^2 = q* - sigma_w^2 E[tanh(sqrt(q*) z)^2]`` (Pennington, Schoenholz & Ganguli 2017, section 2.2)."""
    q = _nonnegative("q_stars", np.asarray(q_stars, dtype=float))
    weight_variance = 1 / gaussian_expectation(lambda h: _tanh_slope(h) ** 2, q)
    bias_variance = q - weight_variance * gaussian_expectation(lambda h: np.tanh(h) ** 2, q)
    return np.sqrt(weight_variance), np.sqrt(np.clip(bias_variance, 0, None))


def phase_diagram(weight_variances, bias_variances):
    """``{"chi_1": on the grid (rows: bias variances), "critical": (sigma_w^2, sigma_b^2) of the edge, in the grid}``."""
    weights, biases = (np.asarray(v, dtype=float) for v in (weight_variances, bias_variances))
    grid_w, grid_b = np.meshgrid(np.sqrt(_nonnegative("weight_variances", weights)),
                                 np.sqrt(_nonnegative("bias_variances", biases)))
    line_w, line_b = critical_line(np.geomspace(1e-4, 7, 400))
    inside = (line_w ** 2 <= weights.max()) & (line_b ** 2 <= biases.max())
    return {"chi_1": chi_1(grid_w, grid_b), "critical": (line_w[inside] ** 2, line_b[inside] ** 2)}


def critical_sigma_w(sigma_b):
    """The ``sigma_w`` at which ``chi_1 = 1`` for this ``sigma_b`` (1 at ``sigma_b = 0``): a bisection along the
    :func:`critical_line` for the ``q*`` whose ``sigma_b`` it is (``sigma_b`` grows with ``q*`` along the line)."""
    sigma_b, low, high = _checks.number("sigma_b", sigma_b, minimum=0, maximum=2), 0.0, 8.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if critical_line([middle])[1][0] < sigma_b else (low, middle)
    return float(critical_line([(low + high) / 2])[0][0])


def wide_network_signals(sigma_w, sigma_b, depth, width=1000, correlations=(0.2, 0.99), q0=None, seed=0):
    """A measurement of what the mean-field maps predict, on one random tanh network of ``width`` units per layer.

    Inputs: a reference ``x_0 = tanh(h_0)`` with ``h_0 ~ N(0, q0 I)`` (``q0`` the fixed length ``q*`` unless
    given) and, for each ``c`` in ``correlations``, a partner whose ``h_0`` has correlation ``c`` with it. Returns
    lists over ``l = 0..depth``: ``"q"`` (the reference's mean squared pre-activation), ``"c"`` (per partner, its
    pre-activations' correlation with the reference's) and ``"gradient"`` (``||dL/dh_l||^2`` over all inputs over
    its value at the top, ``L = sum(r * x_depth)`` for a fixed random ``r``; the mean field: ``chi_1^(depth - l)``)."""
    sigma_w, sigma_b = _checks.number("sigma_w", sigma_w, minimum=0), _checks.number("sigma_b", sigma_b, minimum=0)
    depth, width = _checks.integer("depth", depth, minimum=1), _checks.integer("width", width, minimum=2)
    generator = torch.Generator().manual_seed(_checks.integer("seed", seed, minimum=0))
    q = length_fixed_point(sigma_w, sigma_b) if q0 is None else _checks.number("q0", q0, minimum=0)
    correlations = [_checks.number("correlations[i]", c, -1, 1) for c in correlations]
    z = torch.randn(1 + len(correlations), width, generator=generator, dtype=torch.float64)
    partners = [c * z[0] + math.sqrt(1 - c ** 2) * z[k] for k, c in enumerate(correlations, start=1)]
    hs, states, scale = [math.sqrt(q) * torch.stack([z[0], *partners])], [], sigma_w / math.sqrt(width)
    for _ in range(depth):   # weights drawn in float32 (fast), used in float64, drawn again on the way back
        states.append(generator.get_state())
        weight = torch.randn(width, width, generator=generator).double() * scale
        hs.append(torch.tanh(hs[-1]) @ weight.T + torch.randn(width, generator=generator, dtype=torch.float64) * sigma_b)
    delta = (1 - torch.tanh(hs[-1]) ** 2) * torch.randn(width, generator=generator, dtype=torch.float64)
    squared = [delta.pow(2).sum().item()]   # dL/dh_l by hand, top down: delta_{l-1} = tanh'(h_{l-1}) (delta_l W_l)
    for state, h in zip(reversed(states), reversed(hs[:-1])):
        weight = torch.randn(width, width, generator=generator.set_state(state)).double() * scale
        delta = (1 - torch.tanh(h) ** 2) * (delta @ weight)
        squared.insert(0, delta.pow(2).sum().item())
    return {"q": [h[0].pow(2).mean().item() for h in hs],   # q_ab / sqrt(q_a q_b) is the mean field's correlation:
            "c": [[torch.cosine_similarity(h[0], h[k], dim=0).item() for h in hs] for k in range(1, len(partners) + 1)],
            "gradient": [v / squared[-1] for v in squared]}


def mean_field_mlp(X, seed=0, *, sigma_w, sigma_b, **model_options):
    """A seeded tanh :class:`~gradcourse.core.models.MLP` (``model_options`` may change that) drawn as the mean field
    assumes: ``W ~ N(0, sigma_w^2 / n_in)`` (``init="lecun"``, ``init_scale=sigma_w``), ``b ~ N(0, sigma_b^2)``."""
    sigma_w = _checks.number("sigma_w", sigma_w, minimum=0, strict_minimum=True)
    sigma_b = _checks.number("sigma_b", sigma_b, minimum=0)
    for name in set(model_options) & {"init", "init_scale"}:
        raise ValueError(f"{name}={model_options[name]!r} is not allowed here; sigma_w sets the weights' scale")
    model = seeded_mlp(X, seed, **{"activation": "tanh", **model_options}, init="lecun", init_scale=sigma_w)
    with torch.no_grad():
        for layer in [*model.hidden_linears(), model.output]:
            layer.bias.normal_(0.0, sigma_b)
    model.sigma_w, model.sigma_b = sigma_w, sigma_b
    return model


def trainability(X, y, sigma_ws, depths, *, sigma_b, epochs, batch_size, lr, optimizer="momentum", seed=0,
                 progress=True, **model_options):
    """``{(sigma_w, depth): training accuracy}`` of a :func:`mean_field_mlp` of each, trained by ``fit``: a small
    Schoenholz et al. (2017), whose networks deeper than about ``6 xi_c`` did not train. One bar counts the runs."""
    _checks.features_and_labels(X, y)
    sigma_ws, depths = list(sigma_ws), list(depths)
    if not sigma_ws or not depths:
        raise ValueError(f"sigma_ws={sigma_ws!r}, depths={depths!r} are not allowed; give at least one of each")
    runs = [(_checks.number("sigma_ws[i]", w, minimum=0, strict_minimum=True), _checks.integer("depths[i]", d, minimum=1))
            for w in sigma_ws for d in depths]
    found = {}
    for sigma_w, depth in tqdm(runs, desc="training", disable=not _checks.boolean("progress", progress)):
        model = mean_field_mlp(X, seed, sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, **model_options)
        fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed,
            callbacks=[EpochScores(training_set=False), ProgressBar(show=False)])
        found[(sigma_w, depth)] = accuracy(model, X, y)
    return found
