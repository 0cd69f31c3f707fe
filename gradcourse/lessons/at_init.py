"""Measurements of fresh, seeded networks at initialization, before any step is taken.

Each function builds its networks from a seed (:func:`~gradcourse.core.models.seeded_mlp`), so a
notebook that calls it prints the same numbers on every run.
"""

from __future__ import annotations

import torch

from ..core import _checks
from ..core.models import init_linear_, seeded_mlp
from ..core.norms import norm
from ..core.probes import activation_gradient_norms, layer_gradient_norms
from ..core.runtime import set_seed

__all__ = ["DTYPES", "first_to_last_ratio", "gradient_norms", "layer_statistics", "product_condition_number",
           "scale_sweep", "std_per_layer", "WRT"]

WRT = ("weights", "activations")
"""What :func:`gradient_norms` differentiates the loss with respect to."""
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def gradient_norms(X, y, *, wrt="weights", dtype="float32", seed=0, **model_options):
    """Per-layer gradient norms of a fresh ``seeded_mlp(X, seed, **model_options)`` on ``(X, y)``,
    input side first.

    ``wrt="weights"``: ``||dL/dW_l||`` (:func:`~gradcourse.core.probes.layer_gradient_norms`);
    ``wrt="activations"``: ``||dL/dh_l||`` for every hidden block's output, the signal that
    reaches layer l (:func:`~gradcourse.core.probes.activation_gradient_norms`). ``dtype="float64"``
    keeps gradients far below float32's smallest number (about 1e-45) measurable.

    Example::

        >>> X, y = torch.randn(32, 8), torch.randint(0, 10, (32,))
        >>> len(gradient_norms(X, y, depth=4, activation="sigmoid", width=16))
        4
    """
    _checks.features_and_labels(X, y)
    _checks.choice("wrt", wrt, WRT)
    _checks.choice("dtype", dtype, tuple(DTYPES))
    model = seeded_mlp(X, seed, **model_options).to(DTYPES[dtype])
    measure = layer_gradient_norms if wrt == "weights" else activation_gradient_norms
    return measure(model, X.to(DTYPES[dtype]), y)


def first_to_last_ratio(X, y, depths, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """For each depth L, ``||dL/dh_1|| / ||dL/dh_L||``: how much of the back-propagated signal
    at the last hidden layer survives to the first, in a fresh seeded MLP of that depth."""
    _checks.features_and_labels(X, y)
    depths = list(depths)
    if not depths:
        raise ValueError("depths=[] is not allowed; give at least one depth")
    ratios = []
    for depth in depths:
        _checks.integer("depths[i]", depth, minimum=1)
        model = seeded_mlp(X, seed, width=width, depth=depth, activation=activation, init=init, init_scale=init_scale)
        norms = activation_gradient_norms(model, X, y)
        ratios.append(norms[0] / norms[-1])
    return ratios


def layer_statistics(X, y, depth=5, activation="tanh", init="default", init_scale=1.0, width=256, seed=0):
    """One forward/backward pass of a fresh seeded MLP; per hidden layer, input side first:

    * ``"activations"``: the layer outputs ``h_l`` (a tensor of shape (n, width) per layer);
    * ``"gradients"``: the back-propagated gradients ``dL/dz_l`` with respect to the layer's
      pre-activations ``z_l`` (same shape), the quantity whose histograms Glorot & Bengio (2010,
      figure 7) compare across layers and inits.
    * ``"weight_gradient_norms"``: ``||dL/dW_l||`` per layer.
    """
    _checks.features_and_labels(X, y)
    model = seeded_mlp(X, seed, width=width, depth=depth, activation=activation, init=init, init_scale=init_scale)
    outputs, pre_activations = [], []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out)) for block in model.blocks]
    handles += [block.norm.register_forward_hook(lambda m, i, out: pre_activations.append(out)) for block in model.blocks]
    weights = [layer.weight for layer in model.hidden_linears()]
    try:
        with torch.enable_grad():
            loss = torch.nn.functional.cross_entropy(model(X), y)
            grads = torch.autograd.grad(loss, pre_activations + weights)
    finally:
        for handle in handles:
            handle.remove()
    return {"activations": [h.detach() for h in outputs], "gradients": list(grads[:depth]),
            "weight_gradient_norms": [norm(g).item() for g in grads[depth:]]}


def scale_sweep(X, y, init_scales, depth=30, activation="relu", init="kaiming", width=64, seed=0):
    """``{init_scale: [||dL/dh_l|| for l = 1..depth]}``: the back-propagated signal at every hidden layer
    of fresh seeded MLPs whose init is multiplied by each gain ``init_scale`` in ``init_scales``.

    With He init and ReLU the typical per-layer factor is the gain g itself (notebook 02's
    ``rho = sqrt(n Var(w) E[f'^2])`` with ``Var(w) = 2 g^2 / n``), so the norms fall like
    ``g^(L-l)`` for g < 1 and grow like it for g > 1: g = 1 is the critical scale.
    """
    _checks.features_and_labels(X, y)
    init_scales = list(init_scales)
    if not init_scales:
        raise ValueError("init_scales=[] is not allowed; give at least one gain")
    result = {}
    for scale in init_scales:
        _checks.number("init_scales[i]", scale, minimum=0, strict_minimum=True)
        model = seeded_mlp(X, seed, width=width, depth=depth, activation=activation, init=init, init_scale=scale)
        result[scale] = activation_gradient_norms(model, X, y)
    return result


def std_per_layer(tensors):
    """The standard deviation of each tensor in a per-layer list, as floats."""
    return [torch.as_tensor(t).double().std().item() for t in tensors]


def product_condition_number(depth, width=64, init="orthogonal", seed=0):
    """Condition number ``s_max / s_min`` of the product ``W_depth ... W_1`` of square weight matrices:
    one number that summarises the spread of the product's singular values.

    A deep linear network passes a signal through this product. With Gaussian weights of variance
    1/n (``init="lecun"``) every factor is well scaled on average, yet the product's singular values
    spread apart exponentially with depth, so some directions are amplified and others all but
    erased; a product of orthogonal matrices (``init="orthogonal"``) is orthogonal, with every
    singular value 1 and condition number 1 at any depth. Saxe, McClelland & Ganguli (2014), "Exact
    solutions to the nonlinear dynamics of learning in deep linear neural networks", and Pennington,
    Schoenholz & Ganguli (2017), "Resurrecting the sigmoid in deep learning through dynamical
    isometry", study the whole spectrum of the input-output Jacobian, of which this product is the
    linear case ("dynamical isometry": every singular value near 1). Each ``width x width`` matrix is
    drawn by :func:`gradcourse.core.models.init_linear_` and the product is formed and decomposed in
    float64, whose 53-bit significand resolves singular values down to about 1e-16 of the largest: a
    result above about 1e15 only says that the smallest singular value is lost below rounding, i.e.
    the condition number is at least that large.

    Example::

        >>> product_condition_number(30, init="orthogonal") < 1.001     # float32 weights: 1 to about 1e-5
        True
    """
    _checks.integer("depth", depth, minimum=1)
    _checks.integer("width", width, minimum=1)
    set_seed(seed)
    product = torch.eye(width, dtype=torch.float64)
    for _ in range(depth):
        layer = init_linear_(torch.nn.Linear(width, width), init)
        product = layer.weight.detach().double() @ product
    singular_values = torch.linalg.svdvals(product)
    return (singular_values.max() / singular_values.min()).item()
