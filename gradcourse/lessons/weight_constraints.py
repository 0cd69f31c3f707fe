"""Weight constraints: bounds on each hidden layer's weights that hold at every forward pass.

:func:`constrain_weights_` puts a max-norm (Srivastava et al. 2014), weight-norm (Salimans & Kingma
2016) or spectral-norm (Miyato et al. 2018) constraint on every hidden layer of a course model through
:mod:`torch.nn.utils.parametrize`, and :func:`weight_norms` measures what the constraint holds: each
layer's largest row norm and its spectral norm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core import _checks
from ..core.models import require_course_model
from ..core.model_state import modes_restored

__all__ = ["constrain_weights_", "CONSTRAINTS", "MaxNorm", "weight_norms"]

CONSTRAINTS = ("max_norm", "weight_norm", "spectral_norm")


class MaxNorm(nn.Module):
    """A max-norm parametrization: each row of the weight (one unit's incoming weights) is
    rescaled to norm ``max_norm`` when it is longer, ``w_i * min(1, c / ||w_i||)``.

    Srivastava et al. (2014), "Dropout", constrain ``||w_i|| <= c`` by projecting after
    every update. As a parametrization the stored parameter itself is free and the layer
    uses its projection, so the constraint holds at every forward pass.
    """

    def __init__(self, max_norm):
        super().__init__()
        self.max_norm = _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True)

    def forward(self, weight):
        norms = torch.linalg.vector_norm(weight, dim=1, keepdim=True)
        return weight * torch.clamp(self.max_norm / norms.clamp_min(1e-12), max=1.0)

    def extra_repr(self):
        return f"max_norm={self.max_norm}"


def constrain_weights_(model, constraint, max_norm=None):
    """Put one weight constraint on every hidden ``nn.Linear`` of a course model, in place.

    * ``"max_norm"``: :class:`MaxNorm` (needs ``max_norm``), through
      ``torch.nn.utils.parametrize.register_parametrization``;
    * ``"weight_norm"``: ``torch.nn.utils.parametrizations.weight_norm``, ``w_i = g_i v_i / ||v_i||``
      per row (Salimans & Kingma 2016, "Weight Normalization"): the row's length is the
      parameter ``g_i``, whatever ``v_i`` does;
    * ``"spectral_norm"``: ``torch.nn.utils.parametrizations.spectral_norm``, ``W / sigma_max(W)``
      with ``sigma_max`` estimated by power iteration (Miyato et al. 2018, "Spectral
      Normalization for Generative Adversarial Networks"): every layer's largest singular
      value is 1, so with an activation whose derivative is at most 1, no layer can enlarge
      the back-propagated gradient.

    The output layer is left free. A :class:`~gradcourse.core.monitor.GradientMonitor` of a
    constrained model records the unconstrained parameters that the optimizer updates
    (``parametrizations.weight.original``), not the constrained weight the forward pass
    computes from them; :func:`weight_norms` reports the constrained weights.
    Returns ``model``.
    """
    require_course_model(model)
    _checks.choice("constraint", constraint, CONSTRAINTS)
    if constraint == "max_norm":
        if max_norm is None:
            raise ValueError("max_norm=None is not allowed with constraint='max_norm'; give the largest row norm, e.g. 3.0")
        _checks.number("max_norm", max_norm, minimum=0, strict_minimum=True)
    elif max_norm is not None:
        raise ValueError(f"max_norm={max_norm!r} is not allowed with constraint={constraint!r}; it is for 'max_norm' only")
    for layer in model.hidden_linears():
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError("the model's weights are already constrained; build a fresh model")
        if constraint == "max_norm":
            parametrize.register_parametrization(layer, "weight", MaxNorm(max_norm))
        elif constraint == "weight_norm":
            nn.utils.parametrizations.weight_norm(layer, name="weight", dim=0)
        else:
            nn.utils.parametrizations.spectral_norm(layer, name="weight")
    return model


@torch.no_grad()
def weight_norms(model):
    """Per hidden layer, input side first: the largest row norm ``max_i ||w_i||`` and the
    spectral norm ``sigma_max(W)`` (exact, by ``torch.linalg.matrix_norm(W, ord=2)``),
    as ``{"max_row_norm": [...], "spectral_norm": [...]}``."""
    require_course_model(model)
    with modes_restored(model):   # every module gets its own mode back, a frozen (eval-mode) one included
        model.eval()  # spectral_norm runs a power iteration at every weight access in training mode
        weights = [layer.weight.detach().double() for layer in model.hidden_linears()]
    return {"max_row_norm": [torch.linalg.vector_norm(w, dim=1).max().item() for w in weights],
            "spectral_norm": [torch.linalg.matrix_norm(w, ord=2).item() for w in weights]}
