"""gradcourse.display.plots.spectra (notebook 15's figures), the edge-of-chaos figure and its explorer: what each
draws, that it leaves no figure open, and the inputs it refuses."""

import ipywidgets
import numpy as np
import pytest
import torch
from helpers import find_widgets
from matplotlib.figure import Figure

from gradcourse.display import plots, theory_figures, widgets

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_the_singular_value_cdfs_draw_one_panel_per_kind_and_one_line_per_depth():
    spectra = {"a": {1: torch.ones(8), 4: torch.linspace(0, 2, 8)}, "b": {1: torch.ones(8), 4: torch.ones(8)},
               "c": {1: torch.ones(8), 4: torch.ones(8)}}
    fig = plots.plot_singular_value_cdfs(spectra, title="t")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert isinstance(fig, Figure) and len(visible) == 3 and [ax.get_title() for ax in visible] == ["a", "b", "c"]
    lines = visible[0].get_lines()
    assert len(lines) == 2 and lines[0].get_linestyle() != lines[1].get_linestyle()
    assert min(lines[1].get_xdata()) == pytest.approx(1e-4)   # a zero singular value drawn at the floor


def test_the_learning_times_mark_the_runs_that_never_reached_the_threshold():
    fig = plots.plot_learning_times([1, 2, 4], {"orthogonal": [1, 3, 5], "Gaussian": [1, 9, None]}, 50)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "Gaussian: not reached in 50 steps" in labels and "step budget" in labels
    missed = [line for line in fig.axes[0].get_lines() if line.get_label() == "Gaussian: not reached in 50 steps"][0]
    assert list(missed.get_xdata()) == [4] and list(missed.get_ydata()) == [50]


def test_the_correlation_maps_draw_maps_and_both_theory_and_measurement():
    c = np.linspace(0, 1, 11)
    fig = plots.plot_correlation_maps(c, {"x": c ** 2}, {"x": ([0.5, 0.6], [0.5, 0.62])})
    assert len(fig.axes[0].get_lines()) == 2 and len(fig.axes[1].get_lines()) == 2


def test_the_phase_diagram_draws_chi_1_the_edge_and_the_trained_networks():
    w, b = np.linspace(0.5, 4, 5), np.linspace(0, 0.5, 3)
    scales = dict(sigma_w2=w, xi_c=np.ones(5), xi_q=np.ones(5), sigma_b2=0.05)
    fig = plots.plot_phase_diagram(w, b, np.ones((3, 5)), ([1, 2], [0, 0.2]), scales, {(1.0, 10): 0.9, (1.0, 30): 0.1})
    phase, depth = fig.axes[0], fig.axes[1]
    assert any(line.get_label().startswith("edge of chaos") for line in phase.get_lines())
    trained = [line for line in depth.get_lines() if list(line.get_xdata()) == [1.0]]
    assert sorted(line.get_ydata()[0] for line in trained) == [10, 30]
    assert {line.get_markerfacecolor() == "none" for line in trained} == {True, False}


@pytest.mark.parametrize("call, match", [
    (lambda: plots.plot_singular_value_cdfs({}), "spectra="),
    (lambda: plots.plot_learning_times([1, 2], {"a": [1]}, 10), "times="),
    (lambda: plots.plot_correlation_maps([0, 1], {"a": [1]}, {"a": ([1], [1])}), "maps="),
    (lambda: plots.plot_phase_diagram([1, 2], [0], np.ones((2, 2)), ([1], [0]), {}, {}), "chi has shape"),
    (lambda: plots.plot_signal_propagation({}, ([1], [1])), "correlations="),
])
def test_bad_inputs_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_edge_of_chaos_figure_names_the_phase_and_compares_with_the_mean_field():
    fig = theory_figures.edge_of_chaos_figure(sigma_w=2.5, sigma_b=0.2, depth=8, width=64)
    assert "chaotic" in fig.texts[0].get_text() and len(fig.axes[0].get_lines()) == 4
    ordered = theory_figures.edge_of_chaos_figure(sigma_w=0.8, sigma_b=0.2, depth=8, width=64)
    assert "ordered" in ordered.texts[0].get_text()
    theory = ordered.axes[1].get_lines()[0].get_ydata()
    assert theory[-1] == 1 and theory[0] < 1e-2   # chi_1^(L - l): vanishing towards the input


def test_the_explorer_redraws_when_a_slider_moves_and_refuses_what_its_sliders_cannot_show(capsys, raises_bad):
    box = widgets.edge_of_chaos_explorer(sigma_w=1.0, sigma_b=0.2, depth=6, width=32)
    (depth,) = [s for s in find_widgets(box, ipywidgets.IntSlider) if s.description == "depth"]
    first = box.figure
    depth.value = 7
    assert box.figure is not first and len(box.figure.axes[0].get_lines()[0].get_xdata()) == 8
    with raises_bad("sigma_w", 3.5):
        widgets.edge_of_chaos_explorer(sigma_w=3.5)
    with raises_bad("depth", 2):
        widgets.edge_of_chaos_explorer(depth=2)
    capsys.readouterr()
