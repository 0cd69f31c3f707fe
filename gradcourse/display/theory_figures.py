"""Figures of notebooks 14-17, the theory under the remedies and deep networks at scale: each function
computes what it shows from plain arguments (a fresh seeded network measured at initialization, or a
short training run) and draws it with :mod:`gradcourse.display.plots`. The explorers of
:mod:`gradcourse.display.widgets` redraw one of these with their controls' values; every function also
works, and is tested, without a widget. Each returns a matplotlib figure already closed in pyplot.
"""

from __future__ import annotations

import math

from ..core import _checks
from ..core.runtime import set_seed
from ..lessons.edge_of_chaos import correlations_through_depth, depth_scales, wide_network_signals
from ..lessons.instabilities import train_tiny_transformers
from ..lessons.normalization_free import ResidualMLP, predicted_gradient, predicted_second_moment, stream_at_init
from ..lessons.signal_propagation import signals_at_init
from .plots import plot_attention_logits
from .plots.common import ratio
from .plots.propagation import plot_layer_panels
from .plots.residual_streams import plot_stream_at_init, scheme_styles
from .plots.spectra import plot_signal_propagation

__all__ = ["QK_NORM_CHOICES", "attention_logit_figure", "edge_of_chaos_figure", "propagation_figure",
           "residual_stream_figure"]


def propagation_figure(X, y, depth=10, activation="sigmoid", init="default", width=128, seed=0):
    """Both directions of a fresh seeded plain MLP at once, measured in float64 on ``(X, y)`` by
    :func:`~gradcourse.lessons.signal_propagation.signals_at_init`: left, what differs between the inputs
    at each layer, in size and relative to the layer's output; right, the back-propagated ``||dL/dh_l||`` and
    the weight gradient ``||dL/dW_l||``. The title gives the geometric mean factor per layer of the
    differences going up and of ``||dL/dh_l||`` going down."""
    _checks.integer("depth", depth, minimum=2, maximum=200)
    s = signals_at_init(X, y, seed=seed, dtype="float64", depth=depth, activation=activation, init=init, width=width)

    def factor(values):
        ends = values[-1] / values[0] if values[0] > 0 and math.isfinite(values[-1]) else math.nan
        return f"×{ends ** (1 / (depth - 1)):.3g}" if math.isfinite(ends) and ends > 0 else "n/a"

    panels = {"forward: what differs between the inputs": {"difference between inputs (RMS)": s.differences,
                                                           "relative spread (difference / size)": s.spread},
              "backward: gradient norm": {"back-propagated ||dL/dh_l||": s.activation_gradients,
                                          "weight gradient ||dL/dW_l||": s.weight_gradients}}
    return plot_layer_panels(panels, title=f"{depth} layers, {activation}, init={init}; per layer: differences "
                                           f"{factor(s.differences)} going up, ||dL/dh_l|| "
                                           f"{factor(s.activation_gradients[::-1])} going down")


def residual_stream_figure(X, y, depth=32, alpha=1.0, norm=None, width=64, seed=0):
    """Build a seeded :class:`~gradcourse.lessons.normalization_free.ResidualMLP` of ``depth`` blocks whose
    branches (He init, each as large as its input) are multiplied by ``alpha`` (``norm="batch"``: with a
    BatchNorm after each branch layer) and plot, per block at initialization on ``(X, y)``, the stream's
    mean square beside ``q_0 (1 + alpha^2)^l`` (with BatchNorm ``q_0 + alpha^2 l``) and the gradient
    ``||dLoss/dx_l||`` beside ``||dLoss/dx_L|| (1 + alpha^2)^((L - l)/2)`` (without normalization)."""
    _checks.integer("depth", depth, minimum=1, maximum=200)
    alpha = _checks.number("alpha", alpha, minimum=0)
    set_seed(_checks.integer("seed", seed, minimum=0))
    stats = stream_at_init(ResidualMLP(in_features=X.shape[1], width=width, depth=depth, norm=norm, alpha=alpha), X, y)
    q, g, v = stats["second_moment"], stats["gradient"], alpha ** 2
    scheme = "BatchNorm" if norm else "plain"
    label = f"measured, {'BatchNorm' if norm else 'no normalization'}"
    law = {("q₀ + α² l" if norm else "q₀ (1 + α²)^l"): predicted_second_moment(q[0], depth, v, normalized=norm is not None)}
    gradient_law = {} if norm else {"||∂loss/∂x_L|| (1 + α²)^((L − l)/2)": predicted_gradient(g[-1], depth, v)}
    return plot_stream_at_init({label: q}, {label: g}, law, gradient_law, styles={label: scheme_styles([scheme])[scheme]},
                               title=f"{depth} blocks, branches × α = {alpha:.3g}: the stream's mean square grows "
                                     f"{ratio(q[-1], q[0]):.3g}-fold, the gradient {ratio(g[0], g[-1]):.3g}-fold")


QK_NORM_CHOICES = (("without", False), ("with", True), ("both", "both"))


def attention_logit_figure(X, y, lr=0.1, qk_norm="both", epochs=1, batch_size=64, seed=0, **model_options):
    """Train seeded :class:`~gradcourse.lessons.instabilities.TinyTransformer` s with Adam at ``lr``, without
    QK-LayerNorm, with it, or ``"both"``, and plot their largest attention logit, attention entropy and
    loss per step (Wortsman et al. 2023: attention-logit growth at high learning rates)."""
    _checks.choice("qk_norm", qk_norm, [value for _, value in QK_NORM_CHOICES])
    chosen = [False, True] if qk_norm == "both" else [qk_norm]
    variants = {f"{'with' if on else 'without'} QK-norm": dict(qk_norm=on) for on in chosen}
    runs = train_tiny_transformers(X, y, variants, progress=False, lr=lr, epochs=epochs, batch_size=batch_size,
                                   seed=seed, **model_options)
    tokens = model_options.get("tokens", 7)
    return plot_attention_logits({label: run.curves() for label, run in runs.items()}, uniform_entropy=math.log(tokens),
                                 title=f"Adam, lr = {lr:.2g}: largest attention logit "
                                       + ", ".join(f"{label} {max(run.record.max_logit):.3g}" for label, run in runs.items()))


def edge_of_chaos_figure(sigma_w=1.0, sigma_b=0.2, depth=50, width=500, seed=0):
    """A random tanh network of ``depth`` layers, ``W ~ N(0, sigma_w^2 / width)``, ``b ~ N(0, sigma_b^2)``, against
    the mean field (Poole et al. 2016; Schoenholz et al. 2017): the correlation of two input pairs (0.2 and 0.99 at
    the input) layer by layer, and the back-propagated gradient's squared norm per layer against ``chi_1^(L - l)``;
    ``chi_1``, the phase and the depth scales in the title."""
    depth = _checks.integer("depth", depth, minimum=1, maximum=200)
    scales = depth_scales(sigma_w, sigma_b)
    signals = wide_network_signals(sigma_w, sigma_b, depth, width=width, correlations=(0.2, 0.99), seed=seed)
    pairs = {f"start {c0:g}": (correlations_through_depth(c0, depth, sigma_w, sigma_b), measured)
             for c0, measured in zip((0.2, 0.99), signals["c"])}
    chi = scales["chi_1"]
    phase = "ordered" if chi < 0.995 else "chaotic" if chi > 1.005 else "at the edge of chaos"
    xi_c = r"$\infty$" if math.isinf(scales["xi_c"]) else f"{scales['xi_c']:.1f}"
    return plot_signal_propagation(pairs, ([chi ** (depth - l) for l in range(depth + 1)], signals["gradient"]),
                                   title=rf"$\sigma_w^2$ = {sigma_w ** 2:.2f}, $\sigma_b^2$ = {sigma_b ** 2:.3f}: $\chi_1$ = {chi:.3f}, "
                                         rf"{phase}; depth scales $\xi_c$ = {xi_c}, $\xi_q$ = {scales['xi_q']:.1f} layers")
