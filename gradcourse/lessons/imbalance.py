"""The first loss when the classes are imbalanced: the entropy of the class prior, and an output bias
at the log prior.

A classifier whose logits start equal predicts the uniform distribution, so its first cross-entropy
is ``ln C`` whatever the classes' frequencies ``p_k``. The best prediction that ignores the input is the
prior itself, whose cross-entropy is the prior's entropy ``H(p) = -sum_k p_k ln p_k < ln C``: an output
bias ``b_k = ln p_k`` (plus any constant, which softmax ignores) starts the network there, and spares
its first steps the work of learning the bias (Karpathy 2019, "A Recipe for Training Neural Networks",
"init well"; Lin et al. 2017, "Focal Loss for Dense Object Detection", start their classifier's
rare class at a prior probability of 0.01 in the same way).
"""

from __future__ import annotations

import torch

from ..core import _checks

__all__ = ["class_prior", "prior_bias_", "skewed_subset"]


def skewed_subset(X, y, imbalance=20.0, seed=0):
    """A resample of the labelled set ``(X, y)`` in which class ``k`` of ``C`` keeps
    ``round(n_min * imbalance ** (-k / (C - 1)))`` of its examples, drawn at random: ``n_min`` (the
    smallest class's count) of class 0, down to ``n_min / imbalance`` of class ``C - 1``, the counts
    falling geometrically in between; the rows come back shuffled. ``imbalance=1`` keeps ``n_min`` of
    every class. The counts depend on ``imbalance`` only, the examples drawn on ``seed``.

    Example::

        >>> X, y = torch.randn(40, 3), torch.arange(4).repeat(10)
        >>> torch.bincount(skewed_subset(X, y, imbalance=10)[1]).tolist()
        [10, 5, 2, 1]
    """
    _checks.features_and_labels(X, y)
    imbalance = _checks.number("imbalance", imbalance, minimum=1)
    seed = _checks.integer("seed", seed, minimum=0)
    classes = int(y.max()) + 1
    counts = torch.bincount(y.long(), minlength=classes)
    if classes < 2 or counts.min() == 0:
        raise ValueError(f"y={_checks.describe(y)} is not allowed; it must hold labels 0..C-1 with C >= 2 and "
                         f"every class present (counts {counts.tolist()})")
    smallest = int(counts.min())
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for k in range(classes):
        rows = (y == k).nonzero().squeeze(1)
        keep = max(1, round(smallest * imbalance ** (-k / (classes - 1))))
        kept.append(rows[torch.randperm(len(rows), generator=generator)[:keep]])
    kept = torch.cat(kept)
    kept = kept[torch.randperm(len(kept), generator=generator)]
    return X[kept], y[kept]


def class_prior(y, classes=None):
    """The share of each class among the labels ``y``: ``p_k = n_k / n`` for ``k = 0 .. classes - 1``
    (``classes`` defaults to the largest label plus one), a float64 tensor summing to 1."""
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) == 0 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"y={_checks.describe(y)} is not allowed; it must be a non-empty 1-D tensor of integer "
                         "class labels")
    if y.min() < 0:
        raise ValueError(f"y holds the label {int(y.min())}, which is not allowed; labels run from 0 to classes - 1")
    classes = int(y.max()) + 1 if classes is None else _checks.integer("classes", classes, minimum=int(y.max()) + 1)
    return torch.bincount(y.long(), minlength=classes).double() / len(y)


@torch.no_grad()
def prior_bias_(model, prior):
    """Set the output layer's bias of ``model`` (a course MLP, or any model with an ``output``
    ``nn.Linear``) to ``b_k = ln p_k``, in place, and return ``model``.

    ``softmax(b)_k = p_k / sum_j p_j = p_k``: with otherwise equal logits the network starts by
    predicting the class prior, and its expected first cross-entropy on data with that prior is the
    prior's entropy ``H(p) = -sum_k p_k ln p_k`` instead of ``ln C``.
    """
    _checks.module("model", model)
    output = getattr(model, "output", None)
    if not isinstance(output, torch.nn.Linear) or output.bias is None:
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must have an output nn.Linear layer "
                         "with a bias, as gc.MLP has (model.output)")
    prior = torch.as_tensor(prior, dtype=torch.float64) if isinstance(prior, (list, tuple)) else prior
    if (not isinstance(prior, torch.Tensor) or prior.shape != output.bias.shape or not prior.is_floating_point()
            or not torch.isfinite(prior).all() or (prior <= 0).any() or abs(prior.sum().item() - 1) > 1e-6):
        raise ValueError(f"prior={_checks.describe(prior)} is not allowed; it must hold {output.out_features} "
                         "positive class shares summing to 1 (class_prior(y) gives them)")
    output.bias.copy_(prior.log())
    return model
