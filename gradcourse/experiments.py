"""The measurements the notebooks run: seeded networks built, probed, and summarized.

Each function builds fresh networks from a seed, so a notebook that calls it
prints the same numbers on every run.
"""

from __future__ import annotations

from . import _checks
from .models import MLP
from .monitor import activation_gradient_norms, layer_gradient_norms


def gradient_flow(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """``||dL/dW_l||`` per hidden layer (input side first) of a fresh seeded MLP on ``(X, y)``."""
    from . import set_seed

    _checks.features_and_labels(X, y)
    set_seed(seed)
    model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                init=init, init_scale=init_scale)
    return layer_gradient_norms(model, X, y)


def first_to_last_ratio(X, y, depths, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """For each depth L, ``||dL/dh_1|| / ||dL/dh_L||``: how much of the back-propagated signal
    at the last hidden layer survives to the first, in a fresh seeded MLP of that depth."""
    from . import set_seed

    _checks.features_and_labels(X, y)
    depths = list(depths)
    if not depths:
        raise ValueError("depths=[] is not allowed; give at least one depth")
    ratios = []
    for depth in depths:
        _checks.integer("depths[i]", depth, minimum=1)
        set_seed(seed)
        model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                    init=init, init_scale=init_scale)
        norms = activation_gradient_norms(model, X, y)
        ratios.append(norms[0] / norms[-1])
    return ratios
