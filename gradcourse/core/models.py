"""Models of the course: a configurable multilayer perceptron.

``MLP(depth=20, activation="sigmoid")`` is the network the vanishing-gradient
notebooks study; ``init``, ``norm`` and ``residual`` switch on the remedies.
The recurrent :class:`~gradcourse.core.sequence_models.SequenceRegressor` lives in
:mod:`~gradcourse.core.sequence_models` and is importable from here too.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from . import _checks
from .runtime import set_seed
from .sequence_models import CELLS, SequenceRegressor

__all__ = ["ACTIVATIONS", "CELLS", "HiddenBlock", "INITS", "MLP", "MLP_OPTIONS", "NORMS", "PreActivationBlock",
           "RESIDUALS", "SequenceRegressor", "init_linear_", "remove_batchnorm_", "require_course_model",
           "scale_weights_", "seeded_mlp"]

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}
INITS = ("default", "normal", "lecun", "xavier", "xavier_uniform", "kaiming", "orthogonal")
NORMS = (None, "batch", "layer")


def init_linear_(layer: nn.Linear, init="default", init_scale=1.0):
    """Initialize one ``nn.Linear`` in place through :mod:`torch.nn.init`.

    ``init_scale`` multiplies the scheme's standard deviation (for ``"normal"``
    it *is* the standard deviation). With n_in = fan_in, n_out = fan_out:

    * ``"default"``: PyTorch's own ``nn.Linear`` init, W ~ U(-1/sqrt(n_in), 1/sqrt(n_in)),
      i.e. std = 1/sqrt(3 n_in), bias from the same range; weights then times ``init_scale``.
    * ``"normal"``: W ~ N(0, init_scale^2).
    * ``"lecun"``: W ~ N(0, init_scale^2 / n_in) -- LeCun et al. (1998), "Efficient BackProp";
      the fan-in form of Xavier that He et al. (2015) compare against.
    * ``"xavier"``: W ~ N(0, init_scale^2 * 2 / (n_in + n_out)) -- Glorot & Bengio (2010),
      "Understanding the difficulty of training deep feedforward neural networks".
    * ``"xavier_uniform"``: W ~ U(-a, a) with a = init_scale * sqrt(6 / (n_in + n_out)), the same
      variance as ``"xavier"``; Glorot & Bengio's "normalized initialization".
    * ``"kaiming"``: W ~ N(0, init_scale^2 * 2 / n_in) -- He et al. (2015), "Delving Deep
      into Rectifiers", the ReLU gain sqrt(2) with fan_in mode.
    * ``"orthogonal"``: W a (semi-)orthogonal matrix times ``init_scale`` -- Saxe et al. (2014),
      "Exact solutions to the nonlinear dynamics of learning in deep linear networks".

    Every scheme but ``"default"`` sets the bias to zero.
    """
    _checks.choice("init", init, INITS)
    init_scale = _checks.number("init_scale", init_scale, minimum=0, strict_minimum=True)
    if init == "default":
        layer.reset_parameters()
        with torch.no_grad():
            layer.weight.mul_(init_scale)
        return layer
    if init == "normal":
        nn.init.normal_(layer.weight, mean=0.0, std=init_scale)
    elif init == "lecun":
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="linear")
        with torch.no_grad():
            layer.weight.mul_(init_scale)
    elif init == "xavier":
        nn.init.xavier_normal_(layer.weight, gain=init_scale)
    elif init == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight, gain=init_scale)
    elif init == "kaiming":
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        with torch.no_grad():
            layer.weight.mul_(init_scale)
    else:
        nn.init.orthogonal_(layer.weight, gain=init_scale)
    nn.init.zeros_(layer.bias)
    return layer


class HiddenBlock(nn.Module):
    """One hidden layer: ``h = act(norm(W x + b))``, plus ``x`` when ``residual``.

    The normalization sits between the affine map and the nonlinearity, as in
    Ioffe & Szegedy (2015), "Batch Normalization". The residual form
    ``h = x + act(norm(W x + b))`` has Jacobian ``I + d act(...)/dx`` -- He et al.
    (2016), "Deep Residual Learning for Image Recognition".
    """

    def __init__(self, in_features, out_features, activation, norm, residual):
        super().__init__()
        if residual and in_features != out_features:
            raise ValueError(f"residual=True needs equal widths; got in_features={in_features}, "
                             f"out_features={out_features}")
        self.linear = nn.Linear(in_features, out_features)
        self.norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[norm](out_features) if norm else nn.Identity()
        self.activation = ACTIVATIONS[activation]()
        self.residual = residual

    def forward(self, x):
        h = self.activation(self.norm(self.linear(x)))
        return x + h if self.residual else h


def require_course_model(model, name="model"):
    """Return ``model`` if it is a course network with ``blocks``, ``hidden_linears()`` and
    ``hidden_activations()`` (an :class:`MLP`), else raise a ValueError that names ``name``."""
    if not isinstance(model, nn.Module) or not all(hasattr(model, a) for a in ("blocks", "hidden_linears", "hidden_activations")):
        raise ValueError(f"{name}={_checks.describe(model)} is not allowed; it must be a gradcourse "
                         "model with hidden_linears(), such as gradcourse.core.models.MLP")
    return model


class MLP(nn.Module):
    """A multilayer perceptron with ``depth`` hidden layers of ``width`` units.

    ``x -> [Linear -> norm -> activation] * depth -> Linear -> logits``.

    Args:
        in_features, out_features: input size (784 for MNIST) and number of classes.
        width: units per hidden layer.
        depth: number of hidden layers (each a :class:`HiddenBlock`).
        activation: one of ``sigmoid, tanh, relu, leaky_relu, elu, gelu, silu``.
        init: ``default, normal, lecun, xavier, xavier_uniform, kaiming, orthogonal``
            (see :func:`init_linear_`),
            applied to every Linear layer, the output layer included.
        init_scale: gain on the scheme's standard deviation (std itself for ``normal``).
        output_scale: multiplies the output layer's initial weights after ``init``. The first
            cross-entropy of ``C`` classes is about ``ln C + s**2 / 2`` for logits of small spread ``s``
            across the classes, so a small output layer (e.g. 0.1) starts the loss near ``ln C``, the
            loss of predicting every class with probability 1/C (Karpathy 2019, "A Recipe for Training
            Neural Networks": "verify loss @ init"); a large one starts confident and wrong.
        norm: ``None``, ``"batch"`` (BatchNorm1d) or ``"layer"`` (LayerNorm).
        residual: identity skips around every hidden block whose input and output
            widths match (all but the first, which maps ``in_features -> width``).
            ``True``: ``h + act(norm(W h + b))``; ``"pre"``: pre-activation blocks
            ``h + W act(norm(h)) + b`` (:class:`PreActivationBlock`); ``False``: none.

    The model is built with torch's global random generator: call
    :func:`gradcourse.set_seed` first for a reproducible network.
    """

    def __init__(self, in_features=784, out_features=10, width=128, depth=10, activation="relu",
                 init="default", init_scale=1.0, norm=None, residual=False, output_scale=1.0):
        super().__init__()
        _checks.integer("in_features", in_features, minimum=1)
        _checks.integer("out_features", out_features, minimum=1)
        _checks.integer("width", width, minimum=1)
        _checks.integer("depth", depth, minimum=1)
        _checks.choice("activation", activation, tuple(ACTIVATIONS))
        _checks.choice("init", init, INITS)
        _checks.number("init_scale", init_scale, minimum=0, strict_minimum=True)
        output_scale = _checks.number("output_scale", output_scale, minimum=0, strict_minimum=True)
        _checks.choice("norm", norm, NORMS)
        _check_residual(residual)
        self.activation = activation
        self.init = init
        self.init_scale = float(init_scale)
        self.output_scale = output_scale
        self.blocks = nn.ModuleList(
            PreActivationBlock(width, activation, norm, last=i == depth - 1) if residual == "pre" and i > 0 else
            HiddenBlock(in_features if i == 0 else width, width, activation, norm,
                        residual=residual is True and i > 0)
            for i in range(depth)
        )
        self.output = nn.Linear(width, out_features)
        for layer in [*self.hidden_linears(), self.output]:
            init_linear_(layer, init, init_scale)
        if not all(torch.isfinite(p).all() for p in self.parameters()):
            raise ValueError(f"init_scale={init_scale!r} is not allowed with init={init!r}: the initial weights "
                             "overflow float32 to inf; choose a scale that keeps them finite")
        with torch.no_grad():
            self.output.weight.mul_(output_scale)
        if not torch.isfinite(self.output.weight).all():
            raise ValueError(f"output_scale={output_scale!r} is not allowed: the output layer's initial weights "
                             "overflow float32 to inf; choose a scale that keeps them finite")

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.output(x)

    def hidden_linears(self):
        """The hidden ``nn.Linear`` layers in order, input side first (``depth`` of them)."""
        return [block.linear for block in self.blocks]

    def hidden_activations(self):
        """The activation modules of the hidden layers, input side first."""
        return [block.activation for block in self.blocks]

    def extra_repr(self):
        scale = f", output_scale={self.output_scale}" if self.output_scale != 1.0 else ""
        return f"activation={self.activation!r}, init={self.init!r}, init_scale={self.init_scale}{scale}"


MLP_OPTIONS = tuple(name for name in inspect.signature(MLP).parameters if name != "in_features")
"""The keyword arguments of :class:`MLP` besides ``in_features``."""


def seeded_mlp(X, seed=0, **model_options):
    """The network a seed names, sized for the features ``X``: ``set_seed(seed)``, then
    ``MLP(in_features=X.shape[1], **model_options)`` with ``model_options`` from :data:`MLP_OPTIONS`.

    Example::

        >>> X = torch.randn(8, 5)
        >>> torch.equal(seeded_mlp(X, 3, depth=2).output.weight, seeded_mlp(X, 3, depth=2).output.weight)
        True
    """
    if not isinstance(X, torch.Tensor) or X.dim() != 2:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D torch.Tensor (rows of features)")
    _checks.integer("seed", seed, minimum=0)
    for name in model_options:
        if name not in MLP_OPTIONS:
            raise ValueError(f"{name}={_checks.describe(model_options[name])} is not allowed; the MLP options are "
                             f"{', '.join(MLP_OPTIONS)}")
    set_seed(seed)
    return MLP(in_features=X.shape[1], **model_options)


def remove_batchnorm_(model):
    """Replace every BatchNorm layer of ``model`` by ``nn.Identity``, in place; return the model."""
    _checks.module("model", model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, nn.Identity())
    return model


@torch.no_grad()
def scale_weights_(model, factor):
    """Multiply every weight matrix or kernel (parameters with 2 or more dimensions) by ``factor``, in place."""
    _checks.module("model", model)
    factor = _checks.number("factor", factor)
    for p in model.parameters():
        if p.dim() >= 2:
            p.mul_(factor)
    return model


# ---------------------------------------------------------------- pre-activation residual blocks

RESIDUALS = (False, True, "pre")
"""``MLP(residual=...)``: no skips, skips around post-activation blocks, or pre-activation blocks."""


def _check_residual(residual):
    if not isinstance(residual, (bool, str)) or residual not in RESIDUALS:
        raise ValueError(f"residual={residual!r} is not allowed; choose one of: False, True, 'pre'")
    return residual


class PreActivationBlock(nn.Module):
    """A pre-activation residual block: ``h = x + W act(norm(x)) + b``.

    He et al. (2016b), "Identity Mappings in Deep Residual Networks", move the
    normalization and the nonlinearity in front of the weights, so nothing follows
    the addition: ``h_L = h_l + sum_{k=l}^{L-1} F_k(h_k)`` and
    ``dL/dh_l = dL/dh_L (I + d/dh_l sum_k F_k(h_k))``, with a clean identity term
    from any block to any deeper one. (The branch here has one weight layer; the
    paper's has two.) As in the paper, the last block of a network adds
    ``norm`` and the activation after its addition (``last=True``), so the output
    layer sees normalized, activated features.

    ``MLP(residual="pre")`` uses it for every hidden block after the first, which maps
    ``in_features -> width`` as a plain :class:`HiddenBlock`.
    """

    def __init__(self, features, activation, norm, last=False):
        super().__init__()
        _checks.integer("features", features, minimum=1)
        _checks.choice("activation", activation, tuple(ACTIVATIONS))
        _checks.choice("norm", norm, NORMS)
        _checks.boolean("last", last)
        make_norm = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}.get(norm)
        self.norm = make_norm(features) if make_norm else nn.Identity()
        self.activation = ACTIVATIONS[activation]()
        self.linear = nn.Linear(features, features)
        self.residual = "pre"
        self.last = last
        if last:
            self.final_norm = make_norm(features) if make_norm else nn.Identity()
            self.final_activation = ACTIVATIONS[activation]()

    def forward(self, x):
        h = x + self.linear(self.activation(self.norm(x)))
        if self.last:
            h = self.final_activation(self.final_norm(h))
        return h
