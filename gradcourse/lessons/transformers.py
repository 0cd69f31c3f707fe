"""Where a Transformer puts its LayerNorm, and what that does to the gradients.

A Transformer block adds a sub-layer ``F`` (self-attention, then a feed-forward network) to a
residual stream ``x``. The original Transformer (Vaswani et al. 2017, "Attention Is All You
Need") normalizes *after* the sum; the Pre-LN variant (Wang et al. 2019, "Learning Deep
Transformer Models for Machine Translation"; Baevski & Auli 2019; used by GPT-2) *before* the
branch:

    Post-LN:  x_{l+1} = LN(x_l + F(x_l))         Pre-LN:  x_{l+1} = x_l + F(LN(x_l))

so the Pre-LN stream's Jacobian ``I + dF(LN(x))/dx`` keeps the identity path, while every
Post-LN gradient passes through every LayerNorm above it. Xiong et al. (2020, "On Layer
Normalization in the Transformer Architecture", ICML, Theorem 1) show that at initialization
the gradient of the last layer's feed-forward weights ``W^{2,L}`` is O(d sqrt(ln d)) for
Post-LN, whatever the depth L, and O(d sqrt(ln d / L)) for Pre-LN. ReZero (Bachlechner et al.
2020, "ReZero is All You Need: Fast Convergence at Large Depth") drops the LayerNorm and
starts every branch at zero: ``x_{l+1} = x_l + alpha_l F(x_l)``, ``alpha_l = 0``.

The model here reads an MNIST digit as a sequence of tokens, each a band of pixel rows (by default
28 tokens of one row), and is built from
``torch.nn.TransformerEncoderLayer`` (``norm_first=False`` is Post-LN, ``True`` Pre-LN); only the
ReZero block is written out, because its ``alpha`` is the point.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..core import _checks
from ..core.monitor.monitor import GradientMonitor
from .optimization import linear_warmup
from ..core.probes import layer_gradient_norms
from ..core.runtime import set_seed
from ..core.scoring import accuracy
from ..core.train import ProgressBar, Scheduler, fit
from .training_runs import TrainedRun, train_each

__all__ = ["block_by_the_formula", "block_gradient_norms", "gpt2_residual_scale", "gradient_norms_at_init",
           "growth_towards_output", "last_block_gradient_by_depth", "PLACEMENTS", "ReZeroBlock", "RowTransformer",
           "seeded_transformer", "train_transformer", "train_variants", "VARIANTS"]

PLACEMENTS = ("post", "pre", "rezero")
"""Where the normalization goes: after the residual sum (``"post"``, Vaswani et al. 2017), before
the branch (``"pre"``), or nowhere, with a zero-initialized gain on each branch (``"rezero"``)."""


class ReZeroBlock(nn.Module):
    """A Transformer encoder block without LayerNorm (Bachlechner et al. 2020):
    ``x <- x + alpha * Attention(x)``, then ``x <- x + alpha * FFN(x)``, one ``alpha`` per block,
    initialized to 0, so the block starts as the identity. Its layers are named as in
    ``torch.nn.TransformerEncoderLayer`` (``self_attn``, ``linear1``, ``linear2``)."""

    def __init__(self, d_model, heads, ffn):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, heads, dropout=0.0, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, ffn), nn.Linear(ffn, d_model)
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = x + self.alpha * self.self_attn(x, x, x, need_weights=False)[0]
        return x + self.alpha * self.linear2(F.relu(self.linear1(x)))


class RowTransformer(nn.Module):
    """A small Transformer encoder that classifies a flattened image by its rows.

    ``X`` of shape (n, tokens * token_size) is read as ``tokens`` tokens of ``token_size`` values
    (an MNIST digit: 28 rows of 28 pixels), embedded by a linear map plus a learned position
    vector, passed through ``depth`` blocks, averaged over the tokens and mapped to ``classes``
    logits. ``placement`` (:data:`PLACEMENTS`) picks the block: ``nn.TransformerEncoderLayer``
    with ``norm_first=False`` (Post-LN) or ``True`` (Pre-LN, with a final LayerNorm as in GPT-2),
    or :class:`ReZeroBlock`. No dropout, so a seed fixes the whole run.

    ``residual_scale`` multiplies, at initialization, the weights that write into the residual
    stream (attention's output projection and the FFN's second layer) of every block: GPT-2
    (Radford et al. 2019, section 2.3) scales them by 1/sqrt(N), N the number of residual layers,
    which is 2 * depth here (one attention and one FFN branch per block).
    """

    def __init__(self, depth=4, d_model=32, heads=4, ffn=64, placement="post", residual_scale=1.0,
                 tokens=28, token_size=28, classes=10):
        super().__init__()
        for name, value in (("depth", depth), ("d_model", d_model), ("heads", heads), ("ffn", ffn),
                            ("tokens", tokens), ("token_size", token_size), ("classes", classes)):
            _checks.integer(name, value, minimum=1)
        if d_model % heads:
            raise ValueError(f"heads={heads!r} is not allowed; it must divide d_model={d_model}")
        self.placement = _checks.choice("placement", placement, PLACEMENTS)
        self.residual_scale = _checks.number("residual_scale", residual_scale, minimum=0)
        self.tokens, self.token_size = tokens, token_size
        self.embed = nn.Linear(token_size, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(tokens, d_model))
        if placement == "rezero":
            self.blocks = nn.ModuleList(ReZeroBlock(d_model, heads, ffn) for _ in range(depth))
        else:
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(d_model, heads, ffn, dropout=0.0, batch_first=True,
                                           norm_first=placement == "pre") for _ in range(depth))
        self.final_norm = nn.LayerNorm(d_model) if placement == "pre" else nn.Identity()
        self.head = nn.Linear(d_model, classes)
        with torch.no_grad():
            for block in self.blocks:
                block.self_attn.out_proj.weight.mul_(self.residual_scale)
                block.linear2.weight.mul_(self.residual_scale)

    def forward(self, X):
        if X.dim() != 2 or X.shape[1] != self.tokens * self.token_size:
            raise ValueError(f"X={_checks.describe(X)} is not allowed; it must have shape (n, {self.tokens * self.token_size}):"
                             f" {self.tokens} tokens of {self.token_size} values")
        x = self.embed(X.view(len(X), self.tokens, self.token_size)) + self.position
        with sdpa_kernel(SDPBackend.MATH):   # on a CPU, for 28 tokens, several times faster than the flash kernel
            for block in self.blocks:
                x = block(x)
        return self.head(self.final_norm(x).mean(dim=1))

    def ffn_outputs(self):
        """Each block's second feed-forward layer, the ``W^{2,l}`` of Xiong et al., input side first:
        the layers to pass as ``layers=`` to a probe or a :class:`~gradcourse.core.monitor.GradientMonitor`."""
        return [block.linear2 for block in self.blocks]


def block_by_the_formula(block, x):
    """What a ``torch.nn.TransformerEncoderLayer`` (ReLU, no dropout, no mask) computes, written out
    from its submodules, with ``A(h) = self_attn(h, h, h)`` and ``FFN(h) = linear2(relu(linear1(h)))``:

        Pre-LN  (norm_first=True):   x <- x + A(norm1(x));     x <- x + FFN(norm2(x))
        Post-LN (norm_first=False):  x <- norm1(x + A(x));     x <- norm2(x + FFN(x))
    """
    if not isinstance(block, nn.TransformerEncoderLayer):
        raise ValueError(f"block={_checks.describe(block)} is not allowed; it must be a torch.nn.TransformerEncoderLayer")
    if block.activation is not F.relu:
        raise ValueError(f"block.activation={block.activation!r} is not allowed; the formula is written for F.relu "
                         "(TransformerEncoderLayer(activation=\"relu\"), its default)")
    dropouts = [m.p for m in (block.dropout, block.dropout1, block.dropout2)] + [block.self_attn.dropout]
    if block.training and any(dropouts):
        raise ValueError(f"block.dropout={max(dropouts)} in training mode is not allowed; the formula has no dropout: "
                         "build the layer with dropout=0.0 or call block.eval()")

    def attention(h):
        return block.self_attn(h, h, h, need_weights=False)[0]

    def ffn(h):
        return block.linear2(F.relu(block.linear1(h)))

    if block.norm_first:
        x = x + attention(block.norm1(x))
        return x + ffn(block.norm2(x))
    x = block.norm1(x + attention(x))
    return block.norm2(x + ffn(x))


def seeded_transformer(seed=0, **model_options):
    """``set_seed(seed)``, then ``RowTransformer(**model_options)``: the network a seed names."""
    _checks.integer("seed", seed, minimum=0)
    set_seed(seed)
    return RowTransformer(**model_options)


def gpt2_residual_scale(depth):
    """GPT-2's factor 1/sqrt(N) on the residual layers' weights at initialization (Radford et al.
    2019, "Language Models are Unsupervised Multitask Learners", section 2.3), read as N = 2 * depth
    residual layers (an attention and an FFN branch per block; the paper does not count them):
    1 / sqrt(2 * depth)."""
    return 1 / math.sqrt(2 * _checks.integer("depth", depth, minimum=1))


def block_gradient_norms(model, X, y):
    """One forward/backward on ``(X, y)``: ``||dL/dW^{2,l}||`` per block of a :class:`RowTransformer`,
    input side first, through :func:`~gradcourse.core.probes.layer_gradient_norms` (cross-entropy)."""
    if not isinstance(model, RowTransformer):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a RowTransformer")
    return layer_gradient_norms(model, X, y, layers=model.ffn_outputs())


def gradient_norms_at_init(X, y, *, seeds=(0,), **model_options):
    """Per-block gradient norms (:func:`block_gradient_norms`) of fresh seeded networks, one row
    per seed: a ``torch.float64`` tensor of shape (len(seeds), depth). ``model_options`` go to
    :class:`RowTransformer`."""
    seeds = _seed_list(seeds)
    return torch.tensor([block_gradient_norms(seeded_transformer(seed, **model_options), X, y) for seed in seeds],
                        dtype=torch.float64)


def growth_towards_output(norms):
    """The last block's gradient norm over the first block's, per row of ``norms`` (seeds x blocks):
    above 1 where the gradient grows towards the output (Xiong et al.'s picture of a deep Post-LN
    stack at initialization), below 1 where it shrinks."""
    norms = torch.as_tensor(norms, dtype=torch.float64)
    if norms.dim() != 2 or norms.shape[1] < 2:
        raise ValueError(f"norms={_checks.describe(norms)} is not allowed; it must be (seeds, blocks) with at least 2 blocks")
    if not (norms[:, 0] > 0).all():
        raise ValueError(f"norms[:, 0]={norms[:, 0].tolist()} is not allowed; the first block's gradient norm must be "
                         "positive to divide by (a ReZero stack's is 0 at initialization)")
    return norms[:, -1] / norms[:, 0]


def last_block_gradient_by_depth(X, y, depths, *, seeds=(0,), **model_options):
    """Xiong et al.'s Theorem 1 measured: ``{depth: [||dL/dW^{2,L}|| for each seed]}``, the last
    block's gradient norm of fresh networks at each depth."""
    if not isinstance(depths, (list, tuple)) or not depths:
        raise ValueError(f"depths={_checks.describe(depths)} is not allowed; it must be a non-empty list of depths")
    for depth in depths:
        _checks.integer("depths[i]", depth, minimum=1)
    return {depth: gradient_norms_at_init(X, y, seeds=seeds, depth=depth, **model_options)[:, -1].tolist()
            for depth in depths}


def _seed_list(seeds):
    if not isinstance(seeds, (list, tuple, range)) or not seeds:
        raise ValueError(f"seeds={_checks.describe(seeds)} is not allowed; it must be a non-empty list of seeds")
    return [_checks.integer("seeds[i]", seed, minimum=0) for seed in seeds]


VARIANTS = {
    "Post-LN": dict(placement="post"),
    "Post-LN + warmup": dict(placement="post", warmup=True),
    "Pre-LN": dict(placement="pre"),
    "ReZero": dict(placement="rezero"),
}
"""The four runs the notebook compares: the model options of each, and whether it warms up."""


def train_transformer(X, y, *, validation, seed=0, lr, epochs, batch_size=64, warmup=False, warmup_steps=None,
                      monitor_every=1, **model_options):
    """Seed, build a :class:`RowTransformer` (``model_options``) and train it with Adam at ``lr``.

    ``warmup=True`` raises the learning rate linearly from ``lr / 100`` over ``warmup_steps``
    steps (default: the first epoch), :func:`~gradcourse.lessons.optimization.linear_warmup`. A
    :class:`~gradcourse.core.monitor.GradientMonitor` records each block's ``W^{2,l}`` every
    ``monitor_every``-th step. Returns a :class:`~gradcourse.lessons.training_runs.TrainedRun`, scored on ``validation``.
    """
    _checks.features_and_labels(X, y)
    _checks.features_and_labels(*validation, x_name="validation[0]", y_name="validation[1]")
    _checks.boolean("warmup", warmup)
    if warmup_steps is not None and not warmup:
        raise ValueError(f"warmup_steps={warmup_steps!r} is not allowed with warmup=False; set warmup=True or leave "
                         "warmup_steps None")
    steps_per_epoch = math.ceil(len(X) / _checks.integer("batch_size", batch_size, minimum=1))
    warmup_steps = steps_per_epoch if warmup_steps is None else _checks.integer("warmup_steps", warmup_steps, minimum=1)
    model = seeded_transformer(seed, **model_options)
    monitor = GradientMonitor(model, layers=model.ffn_outputs(), every=monitor_every)
    callbacks = [monitor, ProgressBar(show=False)] + ([Scheduler(linear_warmup(warmup_steps))] if warmup else [])
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr, seed=seed,
                  callbacks=callbacks)
    return TrainedRun(model, history, monitor, accuracy(model, *validation))


def train_variants(X, y, *, validation, variants=None, progress=True, **shared):
    """One :func:`train_transformer` run per entry of ``variants``, each with the ``shared``
    options overridden by its own, as :func:`~gradcourse.lessons.training_runs.train_each` runs them.
    ``variants`` is a dict ``{label: {option: value}}``, a list of labels of :data:`VARIANTS` (e.g.
    ``["Pre-LN", "ReZero"]``), or None for all of :data:`VARIANTS`. ``progress=True`` shows one
    ``tqdm.auto`` bar over the runs. Returns ``{label: TrainedRun}``."""
    if variants is None:
        variants = VARIANTS
    elif isinstance(variants, (list, tuple)) and variants and all(label in VARIANTS for label in variants):
        variants = {label: VARIANTS[label] for label in variants}
    if not isinstance(variants, dict) or not variants or not all(isinstance(v, dict) for v in variants.values()):
        raise ValueError(f"variants={_checks.describe(variants)} is not allowed; it must be a non-empty dict "
                         f"{{label: {{option: value}}}} or a list of labels from {list(VARIANTS)}")
    return train_each(partial(train_transformer, X, y, validation=validation), variants, progress=progress,
                      what="Transformers", **shared)
