"""Residual networks: what the identity path does to the forward and backward signal.

A residual block computes ``h_k = h_{k-1} + F_k(h_{k-1})``. Its Jacobian, in the course's
notation ``J_k = dh_k/dh_{k-1}``, is ``I + dF_k/dh_{k-1}``, so from block l to block L::

    h_L = h_l + sum_{k=l+1}^{L} F_k(h_{k-1}),
    dLoss/dh_l = J_{l+1}^T ... J_L^T dLoss/dh_L
               = dLoss/dh_L + (terms that pass through at least one branch),

He et al. (2016a), "Deep Residual Learning for Image Recognition"; (2016b), "Identity
Mappings in Deep Residual Networks". The first term reaches every layer unchanged.
"""

from __future__ import annotations

import torch

from ..core import _checks
from ..core.models import require_course_model

__all__ = ["HE_2016_IMAGENET_TOP1_ERROR", "he_2016_table", "KIND_COLORS", "line_styles", "stream_statistics"]


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

    require_course_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a 2-D floating-point torch.Tensor (n, features)")
    model = copy.deepcopy(model).train()
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, out: outputs.append(out)) for block in model.blocks]
    try:
        model(X)
    finally:
        for handle in handles:
            handle.remove()
    return {"mean": [h.mean().item() for h in outputs], "std": [h.std().item() for h in outputs]}


KIND_COLORS = {"plain": "C0", "residual": "C1", "pre-activation": "C2"}
"""The colour of each network kind in the figures of notebook 07 (matplotlib's colour cycle)."""

HE_2016_IMAGENET_TOP1_ERROR = {"plain-18": 27.94, "plain-34": 28.54, "ResNet-18": 27.88, "ResNet-34": 25.03}
"""Top-1 error (%, 10-crop testing) on the ImageNet validation set, He et al. (2016a), Table 2.
The paper gives its training errors only as curves (Fig. 1 and 6 for CIFAR-10, Fig. 4 for
ImageNet): the deeper plain network's lies above the shallower one's throughout training, the
deeper ResNet's below the shallower ResNet's."""


def line_styles(labels, linestyles=None):
    """``{label: {"color": ..., "linestyle": ...}}`` for figure labels that start with a network kind
    (``"plain"``, ``"residual"``, ``"pre-activation"``): the kind's colour from :data:`KIND_COLORS`,
    solid lines unless ``linestyles`` (``{label: linestyle}``) says otherwise. Pass the result as
    ``styles=`` to :mod:`gradcourse.display.plots` so that one kind keeps one colour in every figure.
    """
    labels = list(labels)
    linestyles = {} if linestyles is None else linestyles
    if not isinstance(linestyles, dict) or not set(linestyles) <= set(labels):
        raise ValueError(f"linestyles={_checks.describe(linestyles)} is not allowed; it must be None or a dict "
                         f"{{label: linestyle}} whose labels are among {labels}")
    styles = {}
    for label in labels:
        kinds = [kind for kind in KIND_COLORS if isinstance(label, str) and label.startswith(kind)]
        if not kinds:
            raise ValueError(f"labels={_checks.describe(labels)} is not allowed; {label!r} starts with none of "
                             f"{', '.join(KIND_COLORS)}, and each label must start with one")
        styles[label] = {"color": KIND_COLORS[kinds[0]], "linestyle": linestyles.get(label, "-")}
    return styles


def he_2016_table(train_error, shallow, deep):
    """He et al.'s (2016a) measure of the degradation problem beside ours, as printable text.

    ``train_error``: ``{(residual, depth): training error}`` with ``residual`` False (plain) or
    True, measured at the depths ``shallow < deep`` (ours: MNIST MLPs; theirs: CIFAR-10 networks
    of 20 and 56 layers, ImageNet networks of 18 and 34 layers).
    """
    _checks.integer("shallow", shallow, minimum=1)
    _checks.integer("deep", deep, minimum=shallow + 1)
    needed = [(False, shallow), (False, deep), (True, deep)]
    if not isinstance(train_error, dict) or not all(key in train_error for key in needed):
        raise ValueError(f"train_error={_checks.describe(train_error)} is not allowed; it must be a dict with "
                         f"the keys {needed}")
    he = HE_2016_IMAGENET_TOP1_ERROR
    ours = [100 * train_error[key] for key in needed]
    return "\n".join([
        f"{'':46}{'shallow plain':>15}{'deep plain':>12}{'deep residual':>15}",
        f"{'He et al., CIFAR-10 (20 / 56 layers, Fig. 1)':46}"
        "   training error: plain-56's curve above plain-20's throughout (no numbers given)",
        f"{'He et al., ImageNet (18 / 34 layers, Tab. 2)':46}{he['plain-18']:14.2f}%{he['plain-34']:11.2f}%"
        f"{he['ResNet-34']:14.2f}%   (top-1 validation error)",
        f"{f'ours, MNIST ({shallow} / {deep} layers)':46}" + "".join(
            f"{e:{w}.2f}%" for e, w in zip(ours, (14, 11, 14))) + "   (training error)",
    ])
