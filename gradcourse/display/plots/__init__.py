"""Matplotlib figures for the course. Each function takes data and returns a Figure.

Figures are closed in pyplot before they are returned, so a notebook shows each
one exactly once (as the value of its cell) and no figure piles up in memory.
No function calls ``plt.show()``. The figures live in modules by what they show --
:mod:`~gradcourse.display.plots.lines` (values against layers, depths, steps in time, scales),
:mod:`~gradcourse.display.plots.training` (training runs), :mod:`~gradcourse.display.plots.monitoring`
(what a monitor records inside the network while it trains), :mod:`~gradcourse.display.plots.cliff`
(Pascanu et al.'s cliff), :mod:`~gradcourse.display.plots.propagation` (both directions of a network,
layer by layer), :mod:`~gradcourse.display.plots.spectra` (Jacobian spectra and mean-field maps),
:mod:`~gradcourse.display.plots.residual_streams` (a residual stream at initialization) and
:mod:`~gradcourse.display.plots.instabilities` (attention logits, Adam's steps) -- and are all importable
from here; :mod:`~gradcourse.display.plots.common` holds what they share, :mod:`~gradcourse.display.plots.style`
the course's look (colours, markers, fonts), :mod:`~gradcourse.display.plots.alt_text` the text alternative
every figure is shown with, and :mod:`~gradcourse.display.plots.audit` the check of what makes a figure hard
to read, which the tests run on every figure the notebooks show.
"""

from __future__ import annotations

from .alt_text import CourseFigure, describe_figure
from .audit import figure_problems
from .cliff import plot_cliff_descent, plot_cliff_section, plot_cliff_surface
from .lines import (plot_activation_and_flow, plot_activation_curves, plot_gradient_flow, plot_layer_histograms,
                    plot_log_lines, plot_loss_scale_sweep, plot_per_layer, plot_per_layer_shares,
                    plot_timestep_gradients, plot_two_per_layer)
from .monitoring import (plot_activation_stats, plot_histograms_over_steps, plot_layer_means_during_training,
                         plot_quantiles, plot_statistic_over_steps)
from .residual_streams import plot_stream_at_init, scheme_styles
from .instabilities import plot_adam_spike, plot_attention_logits, plot_over_steps, plot_update_share
from .propagation import plot_layer_panels
from .spectra import (plot_correlation_maps, plot_learning_times, plot_phase_diagram, plot_signal_propagation,
                      plot_singular_value_cdfs)
from .training import (plot_accuracy_over_steps, plot_gradient_norms, plot_history, plot_regression_history,
                       plot_training_and_layers)

__all__ = ["CourseFigure", "describe_figure", "figure_problems", "plot_accuracy_over_steps", "plot_activation_and_flow", "plot_activation_curves", "plot_activation_stats",
           "plot_adam_spike", "plot_attention_logits", "plot_cliff_descent", "plot_cliff_section",
           "plot_cliff_surface", "plot_correlation_maps", "plot_gradient_flow", "plot_gradient_norms",
           "plot_histograms_over_steps", "plot_history", "plot_layer_histograms", "plot_layer_means_during_training",
           "plot_layer_panels", "plot_learning_times", "plot_log_lines", "plot_loss_scale_sweep", "plot_over_steps",
           "plot_per_layer", "plot_per_layer_shares", "plot_phase_diagram", "plot_quantiles",
           "plot_regression_history", "plot_signal_propagation", "plot_singular_value_cdfs",
           "plot_statistic_over_steps", "plot_stream_at_init", "plot_timestep_gradients", "plot_training_and_layers",
           "plot_two_per_layer", "plot_update_share", "scheme_styles"]
