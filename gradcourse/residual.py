"""Residual networks: what the identity path does to the forward and backward signal.

A residual block computes ``h_{k+1} = h_k + F_k(h_k)``. Its Jacobian is
``I + dF_k/dh_k``, so from block l to block L

    h_L = h_l + sum_{k=l}^{L-1} F_k(h_k),
    dLoss/dh_l = dLoss/dh_L * prod_{k=l}^{L-1} (I + dF_k/dh_k)
               = dLoss/dh_L + dLoss/dh_L * (terms that pass through at least one branch),

He et al. (2016a), "Deep Residual Learning for Image Recognition"; (2016b), "Identity
Mappings in Deep Residual Networks". The first term reaches every layer unchanged.
"""

from __future__ import annotations

import torch

from . import _checks
from .monitor import _require_course_model


@torch.no_grad()
def stream_statistics(model, X):
    """Mean and standard deviation of every hidden block's output on ``X`` (one forward pass
    in training mode, on a copy, so BatchNorm's running statistics are left untouched),
    input side first, as ``{"mean": [...], "std": [...]}``.

    In a residual network the block outputs are the residual stream ``h_k``; a branch whose
    last operation is a ReLU adds only non-negative values, so the stream's mean grows with
    every block.
    """
    import copy

    _require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X={_checks._describe(X)} is not allowed; it must be a 2-D floating-point torch.Tensor (n, features)")
    model = copy.deepcopy(model).train()
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out)) for block in model.blocks]
    try:
        model(X)
    finally:
        for handle in handles:
            handle.remove()
    return {"mean": [h.mean().item() for h in outputs], "std": [h.std().item() for h in outputs]}
