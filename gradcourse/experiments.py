"""The measurements the notebooks run: seeded networks built, probed, and summarized.

Each function builds fresh networks from a seed, so a notebook that calls it
prints the same numbers on every run.
"""

from __future__ import annotations

import torch

from . import _checks
from .models import MLP, init_linear_, require_course_model
from .norms import norm
from .probes import activation_gradient_norms, layer_gradient_norms
from .runtime import set_seed
from .theory import activation_derivative


def gradient_flow(X, y, depth=20, activation="sigmoid", init="default", init_scale=1.0, width=64, seed=0):
    """``||dL/dW_l||`` per hidden layer (input side first) of a fresh seeded MLP on ``(X, y)``."""
    _checks.features_and_labels(X, y)
    set_seed(seed)
    model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                init=init, init_scale=init_scale)
    return layer_gradient_norms(model, X, y)


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
        set_seed(seed)
        model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                    init=init, init_scale=init_scale)
        norms = activation_gradient_norms(model, X, y)
        ratios.append(norms[0] / norms[-1])
    return ratios


@torch.no_grad()
def unit_activity(model, X):
    """Per hidden layer of a course MLP: which units still pass a gradient on the inputs ``X``.

    Returns ``{"inactive": [...], "no_gradient": [...], "no_gradient_units": [...]}``, one entry per
    layer (input side first): ``inactive`` is the share of units whose pre-activation ``z`` is
    negative for every row of ``X``; ``no_gradient`` the share whose derivative ``f'(z)`` is exactly 0
    for every row, and ``no_gradient_units`` the boolean mask of those units. A ReLU unit
    that is inactive everywhere is *dead*: no gradient reaches its weights, so no step moves them;
    only a change in the layers below it can bring it back.
    A LeakyReLU unit there still has ``f' = 0.01``, an ELU unit ``f' = exp(z)`` (Maas et al. 2013;
    Clevert et al. 2016).
    """
    require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D torch.Tensor")
    pre_activations = []
    handles = [block.norm.register_forward_hook(lambda m, i, out: pre_activations.append(out)) for block in model.blocks]
    was_training = model.training
    model.eval()
    try:
        model(X)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    inactive, masks = [], []
    for z in pre_activations:
        inactive.append((z < 0).all(dim=0).float().mean().item())
        masks.append((activation_derivative(model.activation, z) == 0).all(dim=0))
    return {"inactive": inactive, "no_gradient": [m.float().mean().item() for m in masks], "no_gradient_units": masks}


def layer_statistics(X, y, depth=5, activation="tanh", init="default", init_scale=1.0, width=256, seed=0):
    """One forward/backward pass of a fresh seeded MLP; per hidden layer, input side first:

    * ``"activations"``: the layer outputs ``h_l`` (a tensor of shape (n, width) per layer);
    * ``"gradients"``: the back-propagated gradients ``dL/dz_l`` with respect to the layer's
      pre-activations ``z_l`` (same shape), the quantity whose histograms Glorot & Bengio (2010,
      figure 7) compare across layers and inits.
    * ``"weight_gradient_norms"``: ``||dL/dW_l||`` per layer.
    """
    _checks.features_and_labels(X, y)
    set_seed(seed)
    model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                init=init, init_scale=init_scale)
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


def scale_sweep(X, y, scales, depth=30, activation="relu", init="kaiming", width=64, seed=0):
    """``{scale: [||dL/dh_l|| for l = 1..depth]}``: the back-propagated signal at every hidden layer
    of fresh seeded MLPs whose init is multiplied by each gain in ``scales``.

    With He init and ReLU the typical per-layer factor is the gain g itself (notebook 02's
    ``rho = sqrt(n Var(w) E[f'^2])`` with ``Var(w) = 2 g^2 / n``), so the norms fall like
    ``g^(L-l)`` for g < 1 and grow like it for g > 1: g = 1 is the critical scale.
    """
    _checks.features_and_labels(X, y)
    scales = list(scales)
    if not scales:
        raise ValueError("scales=[] is not allowed; give at least one gain")
    result = {}
    for scale in scales:
        _checks.number("scales[i]", scale, minimum=0, strict_minimum=True)
        set_seed(seed)
        model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation,
                    init=init, init_scale=scale)
        result[scale] = activation_gradient_norms(model, X, y)
    return result


def random_recurrence(sigma_max, steps, width=32, input_size=4, input_scale=0.1, seed=0):
    """A seeded recurrence for :func:`gradcourse.theory.recurrent_jacobian_norms`: returns ``(W, U, inputs)``.

    ``W`` is a random orthogonal matrix (QR of a Gaussian matrix) times ``sigma_max``, so every
    singular value of W equals ``sigma_max``; ``U`` has N(0, input_scale^2) entries; the
    ``steps`` inputs are N(0, 1). All float64.
    """
    _checks.number("sigma_max", sigma_max, minimum=0, strict_minimum=True)
    _checks.integer("steps", steps, minimum=1)
    _checks.integer("width", width, minimum=1)
    _checks.integer("input_size", input_size, minimum=1)
    _checks.number("input_scale", input_scale, minimum=0)
    _checks.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(width, width, generator=g, dtype=torch.float64))
    U = input_scale * torch.randn(width, input_size, generator=g, dtype=torch.float64)
    inputs = torch.randn(steps, input_size, generator=g, dtype=torch.float64)
    return sigma_max * Q, U, inputs


def std_per_layer(tensors):
    """The standard deviation of each tensor in a per-layer list, as floats."""
    return [torch.as_tensor(t).double().std().item() for t in tensors]


def dying_units_experiment(X, y, activation="relu", bias_shift=2.0, lr=0.05, warmup_epochs=1, recovery_epochs=3,
                           depth=4, width=128, batch_size=64, seed=0, progress=True):
    """Kill units on purpose and see whether training brings them back.

    A fresh seeded MLP (He init) trains for ``warmup_epochs``; then every hidden bias is lowered by
    ``bias_shift`` -- what one too-large SGD step that pushes the biases down does -- so that many
    pre-activations are negative on every input; then it trains again at ``lr`` for
    ``recovery_epochs`` under a :class:`~gradcourse.monitor.GradientMonitor`.

    Returns ``{"activity": {stage: unit_activity(...)}, "accuracy": {stage: float},
    "hidden_weights_changed": [bool per layer], "monitor": GradientMonitor}`` with stages
    ``"before"``, ``"after_shift"``, ``"after_recovery"``. A ReLU unit whose pre-activation is
    negative on every input gets exactly zero gradient, so if a whole layer dies no hidden weight
    changes at all; LeakyReLU (slope 0.01) and ELU (slope ``exp(z)``) still pass a gradient.
    ``progress=True`` shows the two trainings' progress bars.
    """
    from .monitor import GradientMonitor
    from .train import accuracy, fit

    _checks.features_and_labels(X, y)
    _checks.number("bias_shift", bias_shift)
    _checks.integer("warmup_epochs", warmup_epochs, minimum=1)
    _checks.integer("recovery_epochs", recovery_epochs, minimum=1)
    _checks.boolean("progress", progress)
    set_seed(seed)
    model = MLP(in_features=X.shape[1], width=width, depth=depth, activation=activation, init="kaiming")
    activity, acc = {}, {}

    def measure(stage):
        activity[stage] = unit_activity(model, X)
        acc[stage] = accuracy(model, X, y)

    fit(model, X, y, epochs=warmup_epochs, batch_size=batch_size, lr=lr, progress=progress, seed=seed)
    measure("before")
    with torch.no_grad():
        for layer in model.hidden_linears():
            layer.bias.sub_(bias_shift)
    measure("after_shift")
    weights_before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
    monitor = GradientMonitor(model)
    fit(model, X, y, epochs=recovery_epochs, batch_size=batch_size, lr=lr, monitor=monitor, progress=progress, seed=seed + 1)
    measure("after_recovery")
    changed = [not torch.equal(before, layer.weight.detach()) for before, layer in zip(weights_before, model.hidden_linears())]
    return {"activity": activity, "accuracy": acc, "hidden_weights_changed": changed, "monitor": monitor}


def train_and_diagnose(X, y, validation, *, lr, epochs=3, batch_size=64, probe=256, seed=0, output_scale=1.0, **mlp):
    """Build a fresh seeded ``MLP(**mlp)``, diagnose it on the first ``probe`` rows with an SGD
    optimizer at ``lr``, then train it with :func:`gradcourse.fit`.

    ``output_scale`` multiplies the output layer's initial weights. The logits are
    ``z = W_out h``; for logits of spread ``s`` across the classes the first cross-entropy is
    about ``ln C + s**2 / 2`` when ``s`` is small (second-order expansion of log-sum-exp around
    equal logits), so a small output layer (e.g. 0.1) starts the loss at ``ln C``, the loss of a
    network that predicts every class with probability 1/C (Karpathy 2019, "A Recipe for
    Training Neural Networks": "init well", "verify loss @ init").

    Returns ``{"report": Report, "history": History, "accuracy": the last validation accuracy,
    or None when training diverged before finishing an epoch}``.
    """
    from .diagnose import diagnose
    from .train import fit

    _checks.features_and_labels(X, y)
    _checks.integer("probe", probe, minimum=1)
    output_scale = _checks.number("output_scale", output_scale, minimum=0, strict_minimum=True)
    set_seed(seed)
    model = MLP(in_features=X.shape[1], **mlp)
    with torch.no_grad():
        model.output.weight.mul_(output_scale)
    report = diagnose(model, X[:probe], y[:probe], optimizer=torch.optim.SGD(model.parameters(), lr=lr))
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, lr=lr, validation=validation, seed=seed)
    return {"report": report, "history": history,
            "accuracy": history.val_accuracy[-1] if history.val_accuracy else None}


def product_condition_number(depth, width=64, init="orthogonal", seed=0):
    """Condition number ``s_max / s_min`` of the product ``W_depth ... W_1`` of square weight matrices.

    Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear dynamics of learning in deep
    linear neural networks": a deep linear network passes a signal through this product. With
    Gaussian weights of variance 1/n (``init="lecun"``) every factor is well scaled on average, yet
    the product's singular values spread apart exponentially with depth, so some directions are
    amplified and others all but erased; a product of orthogonal matrices (``init="orthogonal"``)
    is orthogonal, with every singular value 1 and condition number 1 at any depth ("dynamical
    isometry"). Each ``width x width`` matrix is drawn by :func:`gradcourse.models.init_linear_`
    and the product is formed and decomposed in float64, whose 53-bit significand resolves singular
    values down to about 1e-16 of the largest: a result above about 1e15 only says that the smallest
    singular value is lost below rounding, i.e. the condition number is at least that large.

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
