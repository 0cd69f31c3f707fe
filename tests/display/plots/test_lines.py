"""gradcourse.display.plots.lines: values against layers, depths and time steps on log axes that tolerate zeros and NaN;
activation curves, histograms per layer."""

import math

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from gradcourse.display import plots
from gradcourse.display.plots import plot_layer_histograms, plot_two_per_layer

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_plot_per_layer_returns_a_log_scale_figure():
    fig = plots.plot_per_layer([1e-3, 1e-2, 1e-1], "norm", title="T")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "T" and ax.get_ylabel() == "norm"
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == [1e-3, 1e-2, 1e-1]


def test_log_plot_hides_values_it_cannot_show():
    fig = plots.plot_per_layer([1.0, 0.0, math.nan, -2.0, math.inf, 1e-30], "norm")
    y = list(fig.axes[0].get_lines()[0].get_ydata())
    assert y[0] == 1.0 and y[5] == 1e-30
    assert all(math.isnan(v) for v in y[1:5])
    fig.canvas.draw()  # renders without error


def test_all_zero_values_still_draw():
    fig = plots.plot_gradient_flow([0.0, 0.0, 0.0])
    fig.canvas.draw()  # a log axis with nothing it can show still renders
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert all(math.isnan(v) for v in ax.get_lines()[0].get_ydata())  # no zero drawn at a made-up height


def test_dict_of_runs_gives_one_labelled_line_per_run():
    runs = {"sigmoid": [1e-9, 1e-5, 1e-1], "relu": [0.5, 0.7, 1.0], "tanh": [1e-3, 1e-2, 1e-1]}
    fig = plots.plot_gradient_flow(runs)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == list(runs)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(runs)


def test_tensors_and_lists_of_tensors_are_accepted():
    fig = plots.plot_gradient_flow(torch.tensor([1.0, 2.0]))
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [1.0, 2.0]


def test_references_are_dark_grey_each_in_its_own_line_style_and_hline_is_drawn():
    fig = plots.plot_per_layer({"measured": [1.0, 0.5]}, "ratio", references={"bound": [1.0, 0.25], "other": [1, 1]},
                               hline=1e-3)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["bound"].get_linestyle() == "--" and lines["bound"].get_color() == "0.3"
    assert lines["other"].get_linestyle() == ":" and lines["other"].get_color() == "0.3"
    assert list(lines["bound"].get_ydata()) == [1.0, 0.25]
    assert list(lines["0.001"].get_ydata()) == [1e-3, 1e-3]


@pytest.mark.parametrize("values", [[], {"a": []}, "abc", {"a": ["x", 1.0]}, 3.0])
def test_per_layer_plots_reject_bad_values(values):
    with pytest.raises(ValueError, match="values"):
        plots.plot_gradient_flow(values)


def test_empty_values_message_names_the_run():
    with pytest.raises(ValueError, match="values for 'relu' is empty"):
        plots.plot_gradient_flow({"relu": []})


def test_plot_log_lines_uses_the_given_x():
    fig = plots.plot_log_lines([2, 4, 8], {"ratio": [1e-1, 1e-3, 1e-6]}, "depth", "first/last")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [2, 4, 8] and list(line.get_ydata()) == [1e-1, 1e-3, 1e-6]
    assert fig.axes[0].get_xlabel() == "depth" and fig.axes[0].get_yscale() == "log"


def test_plot_log_lines_can_put_the_legend_beside_the_axes(raises_bad):
    lines = {f"run {i}": [1.0, 0.1 * (i + 1), 0.01] for i in range(8)}
    fig = plots.plot_log_lines([1, 2, 3], lines, "T", "norm", legend="outside")
    ax = fig.axes[0]
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1
    with raises_bad("legend", "left"):
        plots.plot_log_lines([1, 2, 3], lines, "T", "norm", legend="left")


def test_plot_log_lines_rejects_lengths_that_do_not_match_x():
    with pytest.raises(ValueError, match="values for 'a' has 2 entries but x has 3"):
        plots.plot_log_lines([1, 2, 3], {"a": [1.0, 2.0]}, "x", "y")
    with pytest.raises(ValueError, match="values for 'bound' has 1 entries but x has 2"):
        plots.plot_log_lines([1, 2], [1.0, 2.0], "x", "y", references={"bound": [1.0]})


def test_plot_activation_curves_draws_each_function_and_its_derivative():
    z = torch.linspace(-1, 1, 5)
    fig = plots.plot_activation_curves(z, {"a": z, "b": 2 * z}, {"a": torch.ones(5), "b": 2 * torch.ones(5)})
    ax_f, ax_d = fig.axes
    assert [line.get_label() for line in ax_f.get_lines()[:2]] == ["a", "b"]
    assert list(ax_d.get_lines()[1].get_ydata()) == [2.0] * 5


def test_plot_activation_curves_rejects_mismatched_curves():
    z = torch.linspace(-1, 1, 5)
    with pytest.raises(ValueError, match="same names"):
        plots.plot_activation_curves(z, {"a": z}, {"b": z})
    with pytest.raises(ValueError, match="'a' have 5 and 4 points"):
        plots.plot_activation_curves(z, {"a": z}, {"a": z[:4]})


def test_runs_of_different_depths_are_drawn_side_by_side():
    fig = plots.plot_gradient_flow({"depth 3": [1e-3, 1e-2, 1e-1], "depth 5": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]},
                                   references={"bound": [1.0, 1.0]})
    shallow, deep, bound = fig.axes[0].get_lines()
    assert list(deep.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(shallow.get_ydata())[:3] == [1e-3, 1e-2, 1e-1]
    assert all(math.isnan(v) for v in list(shallow.get_ydata())[3:])  # nothing drawn past its last layer
    assert list(bound.get_ydata())[:2] == [1.0, 1.0]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["depth 3", "depth 5", "bound"]


def test_without_styles_runs_take_okabe_ito_colours_and_markers_in_turn():
    from matplotlib.colors import to_hex

    fig = plots.plot_log_lines([1, 2], {"a": [1, 2], "b": [2, 3]}, "x", "y")
    lines = fig.axes[0].get_lines()
    assert [to_hex(line.get_color()) for line in lines] == [c.lower() for c in plots.common.OKABE_ITO[:2]]
    assert [line.get_marker() for line in lines] == list(plots.common.RUN_MARKERS[:2])


def test_plot_activation_and_flow_draws_f_and_its_derivative_beside_the_flow():
    z = torch.linspace(-3, 3, 7)
    fig = plots.plot_activation_and_flow(z, torch.tanh(z), 1 - torch.tanh(z) ** 2, [1e-3, 1e-2, 1.0],
                                         title="tanh", flow_title="3 layers")
    ax_f, ax_g = fig.axes
    assert [line.get_label() for line in ax_f.get_lines()[:2]] == ["f(z)", "f'(z)"]
    assert ax_g.get_yscale() == "log" and list(ax_g.get_lines()[0].get_ydata()) == [1e-3, 1e-2, 1.0]
    assert ax_g.get_title() == "3 layers: first/last = 1.00e-03"


def test_plot_activation_and_flow_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        plots.plot_activation_and_flow([0, 1], [0, 1, 2], [1, 1], [1.0])
    with pytest.raises(ValueError, match="norms"):
        plots.plot_activation_and_flow([0, 1], [0, 1], [1, 1], [])


def test_a_zero_last_gradient_gives_a_nan_ratio_not_a_crash():
    fig = plots.plot_activation_and_flow([0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0])
    assert "first/last = nan" in fig.axes[1].get_title()


def test_layer_histograms_one_line_per_layer():
    tensors = [torch.randn(500) * s for s in (1.0, 0.5, 0.25)]
    before = plt.get_fignums()
    fig = plot_layer_histograms({"a": tensors, "b": tensors}, title="t")
    assert isinstance(fig, Figure) and plt.get_fignums() == before
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]


def test_layer_histograms_reject_bad_input():
    with pytest.raises(ValueError, match="per_layer"):
        plot_layer_histograms({})
    with pytest.raises(ValueError, match="finite"):
        plot_layer_histograms({"a": [torch.zeros(4)]})
    with pytest.raises(ValueError, match="non-empty tensors"):
        plot_layer_histograms({"a": []})


def test_two_per_layer_draws_both_panels():
    fig = plot_two_per_layer({"x": [1, 0.5]}, {"x": [2, 4], "y": [1, 1]}, "left", "right")
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 2]
    assert fig.axes[0].get_ylabel() == "left"


def test_plot_timestep_gradients_draws_one_log_line_per_cell():
    fig = plots.plot_timestep_gradients({"rnn": [1e-9, 1e-3, 1.0], "lstm": [1e-2, 1e-1, 1.0]}, title="T")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_yscale() == "log" and ax.get_title() == "T"
    rnn, lstm = ax.get_lines()
    assert list(rnn.get_xdata()) == [1, 2, 3] and list(lstm.get_ydata()) == [1e-2, 1e-1, 1.0]
    assert "time step" in ax.get_xlabel()


def test_plot_timestep_gradients_styles_runs_and_references():
    fig = plots.plot_timestep_gradients({"lstm": [1e-2, 1e-1, 1.0]}, styles={"lstm": {"color": "tab:green"}},
                                        references={"0.5^(T-t)": [0.25, 0.5, 1.0], "0.7^(T-t)": [0.49, 0.7, 1.0]},
                                        reference_styles={"0.7^(T-t)": {"color": "tab:green", "linestyle": ":"}})
    run, plain, styled = fig.axes[0].get_lines()
    assert run.get_color() == "tab:green"
    assert (plain.get_color(), plain.get_linestyle()) == ("0.3", "--")   # the default look of a reference
    assert (styled.get_color(), styled.get_linestyle()) == ("tab:green", ":")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["lstm", "0.5^(T-t)", "0.7^(T-t)"]
