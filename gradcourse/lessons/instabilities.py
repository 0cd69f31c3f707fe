"""Instabilities of large Transformers, reproduced in a small one at a high learning rate (Wortsman et al.
2023, "Small-scale proxies for large-scale Transformer training instabilities"):

* attention-logit growth: ``z_ij = q_i . k_j / sqrt(d_h)`` grows until each query attends to one key (Dehghani
  et al. 2023, "Scaling Vision Transformers to 22 Billion Parameters"); a LayerNorm on ``q`` and ``k`` bounds
  ``|z_ij| <= max|gamma_q| max|gamma_k| sqrt(d_h)`` (Cauchy-Schwarz; ``gamma`` its gains);
* output-logit drift: cross-entropy does not see a constant added to every logit, so ``log Z = logsumexp``
  may drift; the z-loss ``1e-4 * log(Z)**2`` (Chowdhery et al. 2022, "PaLM", section 5) pulls it to 0;
* Adam (Kingma & Ba 2015): a gradient far below ``eps`` moves its weight by ``lr * g / eps``, and one large
  gradient after a run of tiny ones by up to ``lr * (1 - beta1) / sqrt(1 - beta2)`` (3.16 ``lr`` at 0.999).
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass, field
from functools import partial
from itertools import takewhile

import torch
import torch.nn.functional as F
from torch import nn

from ..core import _checks
from ..core.layers import layer_weights
from ..core.runtime import set_seed
from ..core.scoring import accuracy
from ..core.train import Callback, ClipNorm, ProgressBar, fit
from .training_runs import TrainedRun, train_each

__all__ = ["adam_spike", "adam_step_share", "gradient_rms_by_width", "InstabilityRun", "largest_adam_update",
           "logit_growth", "LogitRecorder", "PreLNBlock", "QKAttention", "spike_threshold", "steps_alike", "TinyTransformer",
           "train_tiny_transformer", "train_tiny_transformers", "ZLoss"]


class QKAttention(nn.Module):
    """Multi-head self-attention written out, ``softmax(q k^T / sqrt(d_h)) v`` (what ``F.scaled_dot_product_attention``
    computes); ``qk_norm=True`` puts a LayerNorm without bias on each head's queries and keys (Dehghani et al. 2023).
    Each forward pass records ``max_logit`` (the largest ``|z_ij|``), ``entropy`` (of each query's weights, in nats,
    averaged: ``ln(tokens)`` uniform, 0 one-hot) and ``logit_bound`` (``max|gamma_q| max|gamma_k| sqrt(d_h)``, or inf)."""

    def __init__(self, d_model, heads, qk_norm=False):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads={heads!r} is not allowed; it must divide d_model={d_model}")
        self.heads, self.head_size = heads, d_model // heads
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.q_norm = nn.LayerNorm(self.head_size, bias=False) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_size, bias=False) if qk_norm else nn.Identity()
        self.max_logit, self.entropy, self.logit_bound = math.nan, math.nan, math.inf

    def queries_keys_values(self, x):
        """``q, k, v`` of shape (n, heads, tokens, d_h), ``q`` and ``k`` after their LayerNorms."""
        n, tokens, _ = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads, self.head_size).permute(2, 0, 3, 1, 4)
        return self.q_norm(q), self.k_norm(k), v

    def attention_logits(self, x):
        """``z = q k^T / sqrt(d_h)`` of shape (n, heads, tokens, tokens), and ``v``."""
        q, k, v = self.queries_keys_values(x)
        return q @ k.transpose(-1, -2) / math.sqrt(self.head_size), v

    def forward(self, x):
        logits, v = self.attention_logits(x)
        weights = logits.softmax(dim=-1)
        with torch.no_grad():
            self.max_logit = logits.abs().max().item()
            self.entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1).mean().item()
            if isinstance(self.q_norm, nn.LayerNorm):
                gains = self.q_norm.weight.abs().max() * self.k_norm.weight.abs().max()
                self.logit_bound = (gains * math.sqrt(self.head_size)).item()
        return self.out((weights @ v).transpose(1, 2).flatten(2))


class PreLNBlock(nn.Module):
    """A Pre-LN Transformer block: ``x <- x + A(LN(x))``, then ``x <- x + FFN(LN(x))``, ``A`` a :class:`QKAttention`."""

    def __init__(self, d_model, heads, ffn, qk_norm=False):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(d_model), QKAttention(d_model, heads, qk_norm)
        self.norm2, self.linear1, self.linear2 = nn.LayerNorm(d_model), nn.Linear(d_model, ffn), nn.Linear(ffn, d_model)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.linear2(F.relu(self.linear1(self.norm2(x))))


class TinyTransformer(nn.Module):
    """A small Pre-LN Transformer (:class:`PreLNBlock` s, a final LayerNorm, the mean over the tokens, a linear
    head) that classifies an image read as ``tokens`` tokens of ``token_size`` values (an MNIST digit as 7 bands
    of 4 rows). Records ``log_z``, the batch mean of ``logsumexp`` of its logits, and over its blocks the
    largest ``max_logit`` and ``logit_bound`` and the smallest ``entropy``."""

    def __init__(self, depth=2, d_model=32, heads=2, ffn=64, qk_norm=False, tokens=7, token_size=112, classes=10):
        super().__init__()
        for name, value in dict(depth=depth, d_model=d_model, heads=heads, ffn=ffn, tokens=tokens,
                                token_size=token_size, classes=classes).items():
            _checks.integer(name, value, minimum=1)
        self.qk_norm = _checks.boolean("qk_norm", qk_norm)
        self.tokens, self.token_size = tokens, token_size
        self.embed, self.position = nn.Linear(token_size, d_model), nn.Parameter(0.02 * torch.randn(tokens, d_model))
        self.blocks = nn.ModuleList(PreLNBlock(d_model, heads, ffn, qk_norm) for _ in range(depth))
        self.final_norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, classes)
        self.log_z = math.nan

    def forward(self, X):
        if X.dim() != 2 or X.shape[1] != self.tokens * self.token_size:
            raise ValueError(f"X={_checks.describe(X)} is not allowed; it must have shape (n, "
                             f"{self.tokens * self.token_size}): {self.tokens} tokens of {self.token_size} values")
        x = self.embed(X.view(len(X), self.tokens, self.token_size)) + self.position
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.final_norm(x).mean(dim=1))
        self.log_z = logits.detach().logsumexp(dim=-1).mean().item()
        return logits

    def attention_layers(self):
        """Each block's :class:`QKAttention`, input side first."""
        return [b.attention for b in self.blocks]

    def named_layers(self):
        """``(name, module)`` of the layers with weights, input side first, in words."""
        layers = [("embedding", self.embed)]
        for i, b in enumerate(self.blocks, 1):
            layers += [(f"block {i} q, k, v", b.attention.qkv), (f"block {i} attention output", b.attention.out),
                       (f"block {i} FFN 1", b.linear1), (f"block {i} FFN 2", b.linear2)]
        return layers + [("output layer", self.head)]

    max_logit = property(lambda self: max(a.max_logit for a in self.attention_layers()))
    entropy = property(lambda self: min(a.entropy for a in self.attention_layers()))
    logit_bound = property(lambda self: max(a.logit_bound for a in self.attention_layers()))


class LogitRecorder(Callback):
    """A ``fit`` callback that keeps, after every step, what a :class:`TinyTransformer` recorded in that step's
    forward pass: ``max_logit``, ``entropy``, ``logit_bound`` and ``log_z`` (one float per step in each list)."""

    NAMES = ("max_logit", "entropy", "logit_bound", "log_z")

    def __init__(self):
        self.max_logit, self.entropy, self.logit_bound, self.log_z = [], [], [], []

    def check(self, state):
        if not isinstance(state.model, TinyTransformer):
            raise ValueError(f"model={_checks.describe(state.model)} is not allowed; LogitRecorder reads a TinyTransformer")

    def after_step(self, state):
        for name in self.NAMES:
            getattr(self, name).append(getattr(state.model, name))


class ZLoss:
    """A ``loss_fn`` for ``fit``: ``CE(logits, y) + coefficient * mean(log(Z)**2)``, ``log Z = logsumexp(logits)``, the
    z-loss of PaLM (Chowdhery et al. 2022, section 5), which pulls ``log Z`` to 0 where cross-entropy does not see it."""

    def __init__(self, coefficient=1e-4):
        self.coefficient = _checks.number("coefficient", coefficient, minimum=0)

    def __call__(self, logits, targets):
        return F.cross_entropy(logits, targets) + self.coefficient * logits.logsumexp(dim=-1).pow(2).mean()


@dataclass
class InstabilityRun(TrainedRun):
    """A ``TrainedRun`` of a :class:`TinyTransformer` (no monitor), with its :class:`LogitRecorder` as ``record``."""

    record: LogitRecorder = field(default_factory=LogitRecorder)

    def curves(self):
        """``{"max_logit", "entropy", "bound", "loss"}``: per step, as ``plot_attention_logits`` takes them."""
        return {"max_logit": self.record.max_logit, "entropy": self.record.entropy, "bound": self.record.logit_bound,
                "loss": self.history.loss}


def train_tiny_transformer(X, y, *, validation=None, lr, epochs=1, batch_size=64, seed=0, z_loss=0.0, max_norm=None,
                           **model_options):
    """Seed, build a :class:`TinyTransformer` (``model_options``) and train it with Adam at ``lr`` (torch's defaults
    otherwise); ``z_loss > 0`` trains on :class:`ZLoss`, ``max_norm`` clips the gradient's norm (``ClipNorm``).
    Returns an :class:`InstabilityRun`, scored on ``validation`` (``(X, y)``) when given."""
    if validation is not None:
        _checks.features_and_labels(*validation, x_name="validation[0]", y_name="validation[1]")
    _checks.number("z_loss", z_loss, minimum=0)
    set_seed(_checks.integer("seed", seed, minimum=0))
    model, record = TinyTransformer(**model_options), LogitRecorder()
    callbacks = [record, ProgressBar(show=False)] + ([] if max_norm is None else [ClipNorm(max_norm)])
    history = fit(model, X, y, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr, seed=seed,
                  loss_fn=ZLoss(z_loss) if z_loss else "cross_entropy", callbacks=callbacks)
    return InstabilityRun(model, history, None, None if validation is None else accuracy(model, *validation), record)


def train_tiny_transformers(X, y, variants, *, validation=None, progress=True, **shared):
    """One :func:`train_tiny_transformer` run per entry of ``variants`` (``{label: {option: value}}``), each
    with the ``shared`` options overridden by its own, under one progress bar. Returns ``{label: InstabilityRun}``."""
    return train_each(partial(train_tiny_transformer, X, y, validation=validation), variants, progress=progress,
                      what="Transformers", **shared)


def gradient_rms_by_width(X, y, widths, *, seed=0, **model_options):
    """The rms of the whole gradient (all parameters' entries) of fresh seeded :class:`TinyTransformer` s of each
    ``d_model`` in ``widths`` (``ffn = 2 d_model``), on ``(X, y)``."""
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ValueError(f"widths={_checks.describe(widths)} is not allowed; it must be a non-empty list of widths")
    found = []
    for width in widths:
        set_seed(seed)
        model = TinyTransformer(d_model=_checks.integer("widths[i]", width, minimum=2), ffn=2 * width, **model_options)
        grads = torch.autograd.grad(F.cross_entropy(model(X), y), list(model.parameters()))
        found.append(torch.cat([g.flatten() for g in grads]).pow(2).mean().sqrt().item())
    return found


def adam_step_share(model, X, y, eps_values, lr=1e-3):
    """``torch.optim.Adam``'s first step on ``(X, y)``, per ``eps`` of ``eps_values`` and per layer of a
    :class:`TinyTransformer` (weights only): ``rms(step) / lr``, taken on copies. The first step is
    ``lr * g / (|g| + eps)`` per weight (``m_hat = g``, ``sqrt(v_hat) = |g|``), so the share falls to about
    ``rms(g) / eps`` once ``eps`` is far above the gradient. Returns ``{"layers", "grad_rms", "share": {eps:
    [per layer]}, "formula": {eps: [the same from g alone]}}``."""
    if not isinstance(model, TinyTransformer):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a TinyTransformer")
    layers = model.named_layers()
    originals = [w for _, m in layers for w in layer_weights(m)]
    grads = torch.autograd.grad(F.cross_entropy(model(X), y), originals)
    result = {"layers": [name for name, _ in layers], "grad_rms": [g.pow(2).mean().sqrt().item() for g in grads],
              "share": {}, "formula": {}}
    for eps in [_checks.number("eps_values[i]", e, minimum=0, strict_minimum=True) for e in eps_values]:
        weights = [w for _, m in copy.deepcopy(model).named_layers() for w in layer_weights(m)]
        for w, g in zip(weights, grads):
            w.grad = g.clone()
        torch.optim.Adam(weights, lr=lr, eps=eps).step()
        result["share"][eps] = [((w - o).detach().pow(2).mean().sqrt() / lr).item() for w, o in zip(weights, originals)]
        result["formula"][eps] = [(g / (g.abs() + eps)).pow(2).mean().sqrt().item() for g in grads]
    return result


def largest_adam_update(beta1=0.9, beta2=0.999, step=None):
    """Adam's step, in units of ``lr``, when one gradient ``G`` follows a long run of much smaller ones (``m``,
    ``v`` about 0 before it): ``m = (1 - beta1) G``, ``v = (1 - beta2) G**2``, so ``(1 - beta1) / sqrt(1 - beta2)``.
    At optimizer step ``step`` the bias corrections multiply it by ``sqrt(1 - beta2**step) / (1 - beta1**step)``."""
    beta1, beta2 = (_checks.number(name, value, minimum=0, maximum=0.9999) for name, value in (("beta1", beta1),
                                                                                                ("beta2", beta2)))
    bound = (1 - beta1) / math.sqrt(1 - beta2)
    if step is None:
        return bound
    step = _checks.integer("step", step, minimum=1)
    return bound * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)


def adam_spike(beta2, *, beta1=0.9, quiet_steps=3000, after=40, spike=1.0, noise=1e-4, curvature=1.0, lr=1e-2, seed=0):
    """One weight ``w`` (float64) trained by ``torch.optim.Adam`` on ``L(w) = curvature * w**2 / 2``: ``quiet_steps``
    steps of gradient ``curvature * w + noise * N(0, 1)``, one of ``curvature * w + spike`` (a rare batch), ``after``
    quiet ones. Returns ``{"update": |dw| / lr, "loss": L(w), per step; "spike_step": quiet_steps + 1}``."""
    largest_adam_update(beta1, beta2)   # checks the betas
    quiet_steps = _checks.integer("quiet_steps", quiet_steps, minimum=1)
    steps = quiet_steps + 1 + _checks.integer("after", after, minimum=0)
    generator = torch.Generator().manual_seed(_checks.integer("seed", seed, minimum=0))
    kicks = _checks.number("noise", noise, minimum=0) * torch.randn(steps, generator=generator, dtype=torch.float64)
    kicks[quiet_steps] = _checks.number("spike", spike)
    curvature = _checks.number("curvature", curvature, minimum=0)
    w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=_checks.number("lr", lr, minimum=0, strict_minimum=True), betas=(beta1, beta2))
    updates, losses = [], []
    for t in range(steps):
        before = w.detach().clone()
        w.grad = curvature * before + kicks[t]
        optimizer.step()
        updates.append(((w.detach() - before).abs() / lr).item())
        losses.append(0.5 * curvature * w.detach().pow(2).item())
    return {"update": updates, "loss": losses, "spike_step": quiet_steps + 1}


def logit_growth(attention, x, factor):
    """The growth of the largest ``|z_ij|`` of a :class:`QKAttention` on ``x`` when its query and key weights and biases
    are multiplied by ``factor`` (on a copy): ``factor**2`` (``z`` is bilinear in them), about 1 with QK-LayerNorm."""
    if not isinstance(attention, QKAttention):
        raise ValueError(f"attention={_checks.describe(attention)} is not allowed; it must be a QKAttention")
    scaled, rows = copy.deepcopy(attention), 2 * attention.heads * attention.head_size
    with torch.no_grad():
        scaled.qkv.weight[:rows] *= _checks.number("factor", factor, minimum=0, strict_minimum=True)
        scaled.qkv.bias[:rows] *= factor
        return (scaled.attention_logits(x)[0].abs().max() / attention.attention_logits(x)[0].abs().max()).item()


def spike_threshold(grad_norms, factor=5.0):
    """A clipping threshold from a gradient-norm record (``History.grad_norm``): ``factor`` times its median, which,
    unlike the mean or a high quantile, the spikes do not pull up; ordinary steps pass, steps ``factor`` x larger do not."""
    try:
        norms = [float(v) for v in grad_norms if math.isfinite(float(v))]
    except (TypeError, ValueError):
        norms = []
    if not norms:
        raise ValueError(f"grad_norms={_checks.describe(grad_norms)} is not allowed; it must hold finite norms")
    return _checks.number("factor", factor, minimum=1) * statistics.median(norms)


def steps_alike(history, other):
    """How many first steps two runs' histories share exactly (same loss, same gradient norm)."""
    pairs = zip(zip(history.loss, history.grad_norm), zip(other.loss, other.grad_norm))
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], pairs))
