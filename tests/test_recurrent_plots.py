"""Plots and widgets of notebooks 06 and 08: gradients through time, regression histories,
gradient-norm traces, the cliff, and their explorers."""

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import clipping, plots, widgets
from gradcourse.data import adding_problem
from gradcourse.models import SequenceRegressor
from gradcourse.sequences import timestep_gradient_norms
from gradcourse.train import History
from helpers import find_widgets, record_calls


pytestmark = pytest.mark.usefixtures("no_figure_left_open")


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
    assert (plain.get_color(), plain.get_linestyle()) == ("grey", "--")   # the default look of a reference
    assert (styled.get_color(), styled.get_linestyle()) == ("tab:green", ":")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["lstm", "0.5^(T-t)", "0.7^(T-t)"]


def _history(val, loss=(0.3, 0.2, 0.1), stop_step=None):
    history = History(loss=list(loss), val_loss=list(val), train_loss=list(val))
    history.stop_step = stop_step
    return history


def test_plot_regression_history_shows_steps_epochs_and_the_baseline():
    fig = plots.plot_regression_history({"rnn": _history([0.17, 0.17]), "lstm": _history([0.1, 0.01])},
                                        baseline=1 / 6, title="adding")
    ax_step, ax_epoch = fig.axes
    assert ax_step.get_yscale() == ax_epoch.get_yscale() == "log"
    assert ax_epoch.get_ylabel() == "validation MSE"
    lines = ax_epoch.get_lines()
    assert list(lines[1].get_ydata()) == [0.1, 0.01]
    assert any(list(line.get_ydata()) == [1 / 6, 1 / 6] for line in lines)  # the baseline
    assert fig._suptitle.get_text() == "adding"


def test_plot_regression_history_marks_divergence_and_uses_training_mse_without_validation():
    history = History(loss=[0.3, 0.2], train_loss=[0.25])
    history.stop_step = 3
    fig = plots.plot_regression_history(history)
    assert fig.axes[1].get_ylabel() == "training MSE"
    assert any(line.get_marker() == "x" for line in fig.axes[0].get_lines())


def test_plot_regression_history_rejects_bad_input():
    with pytest.raises(ValueError, match="histories must be a History"):
        plots.plot_regression_history({"a": [0.1]})
    with pytest.raises(ValueError, match="baseline=-1"):
        plots.plot_regression_history(_history([0.1]), baseline=-1)


def test_plot_gradient_norms_marks_the_steps_above_the_threshold():
    norms = [0.1, 0.2, 5.0, 0.15, 9.0]
    fig = plots.plot_gradient_norms(norms, threshold=1.0)
    ax_trace, ax_hist = fig.axes
    assert ax_trace.get_yscale() == "log" and ax_hist.get_xscale() == "log"
    clipped = [line for line in ax_trace.get_lines() if line.get_label() == "above the threshold"][0]
    assert list(clipped.get_xdata()) == [3, 5] and list(clipped.get_ydata()) == [5.0, 9.0]
    assert "40% of 5 steps above the threshold" in fig._suptitle.get_text()
    assert plots.plot_gradient_norms(norms).axes[0].get_lines()[0].get_ydata().tolist() == norms
    median = [line for line in ax_hist.get_lines() if line.get_label().startswith("median")][0]
    assert median.get_xdata()[0] == 0.2
    fig = plots.plot_gradient_norms([0.4, 0.1, 0.3, 0.2])  # an even count: torch's median, the lower middle value
    median = [line for line in fig.axes[1].get_lines() if line.get_label().startswith("median")][0]
    assert median.get_xdata()[0] == 0.2


@pytest.mark.parametrize("norms, threshold, match", [
    ({"a": [1.0]}, None, "not a dict"),
    ([0.0, -1.0], None, "no positive finite value"),
    ([1.0], 0.0, "threshold=0.0"),
])
def test_plot_gradient_norms_rejects_bad_input(norms, threshold, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_gradient_norms(norms, threshold)


@pytest.fixture(scope="module")
def surface():
    return clipping.cliff_surface((3.0, 7.0), (-4.0, -1.0), points=31)


def test_plot_cliff_surface_draws_the_loss_and_the_wall(surface):
    fig = plots.plot_cliff_surface(surface)
    ax = fig.axes[0]
    (wall,) = ax.get_lines()
    w = wall.get_xdata()
    assert w[0] == pytest.approx(1 / (0.6224593 * (1 - 0.6224593)), rel=1e-5)  # where w sigma'(x0) = 1
    assert wall.get_ydata()[-1] == pytest.approx(clipping.cliff_wall(w[-1]))
    assert ax.get_xlim() == (3.0, 7.0)


def test_plot_cliff_section_and_descent(surface):
    fig = plots.plot_cliff_section(clipping.cliff_slice(6.0, points=20))
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    starts = clipping.start_grid((3.0, 7.0), (-4.0, -1.0), 3)
    runs = {"free": clipping.cliff_descent(starts, 0.05, 20), "clipped": clipping.cliff_descent(starts, 0.05, 20, 10.0)}
    fig = plots.plot_cliff_descent(surface, runs, huge_step=1.0)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title().startswith("clipped: 0 of 9 runs")
    assert len(fig.axes[0].get_lines()) == 9 + 1  # one path per run and the start dots


@pytest.mark.parametrize("call, match", [
    (lambda s: plots.plot_cliff_surface("s"), "surface='s'"),
    (lambda s: plots.plot_cliff_section(s), "section="),
    (lambda s: plots.plot_cliff_descent(s, {}), "runs={}"),
    (lambda s: plots.plot_cliff_descent(s, {"a": clipping.cliff_descent(torch.ones(1, 2), 0.1, 1)}, huge_step=0),
     "huge_step=0"),
])
def test_cliff_plots_reject_bad_input(surface, call, match):
    with pytest.raises(ValueError, match=match):
        call(surface)


# ---------------------------------------------------------------- widgets

def test_clipping_explorer_redraws_with_the_threshold(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "clipping_figure", "threshold")
    explorer = widgets.clipping_explorer([0.05, 0.2, 3.0, 0.1], threshold=0.3)
    (slider,) = find_widgets(explorer, ipywidgets.FloatLogSlider)
    assert (slider.min, slider.max) == (-2, 1) and slider.value == pytest.approx(0.3)
    slider.value = 1.0
    assert drawn == [pytest.approx(0.3), 1.0]
    capsys.readouterr()


def test_clipping_explorer_keeps_the_figure_it_drew(capsys):
    explorer = widgets.clipping_explorer([0.05, 0.2, 3.0, 0.1], threshold=0.3)
    assert "25% of 4 steps" in explorer.figure.get_suptitle()
    (slider,) = find_widgets(explorer, ipywidgets.FloatLogSlider)
    slider.value = 0.08
    assert "75% of 4 steps" in explorer.figure.get_suptitle() and "c = 0.08" in explorer.figure.get_suptitle()
    capsys.readouterr()


def test_clipping_figure_counts_the_share():
    fig = widgets.clipping_figure([0.1, 0.2, 5.0, 0.15], 1.0)
    assert "25% of 4 steps" in fig._suptitle.get_text()


@pytest.mark.parametrize("norms, threshold, match", [
    ([0.05, 3.0], 100.0, "threshold=100.0"),
    ([0.0], 1.0, "no positive finite value"),
])
def test_clipping_explorer_rejects_bad_input(norms, threshold, match):
    with pytest.raises(ValueError, match=match):
        widgets.clipping_explorer(norms, threshold)


def test_timestep_gradient_figure_plots_a_fresh_network():
    fig = widgets.timestep_gradient_figure(length=12, cell="gru", hidden=8, batch=16, seed=2)
    X, y = adding_problem(16, 12, seed=2)
    gradcourse.set_seed(2)
    expected = timestep_gradient_norms(SequenceRegressor("gru", 8), X, y)
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx(expected, rel=1e-6)
    assert "gru, T = 12" in fig.axes[0].get_title()


def test_timestep_gradient_explorer_redraws_on_change(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "timestep_gradient_figure", "length", "cell", "forget_bias")
    explorer = widgets.timestep_gradient_explorer(length=10, cell="lstm", forget_bias=1.0, hidden=4, batch=8)
    assert isinstance(explorer, ipywidgets.VBox)
    (length,) = find_widgets(explorer, ipywidgets.IntSlider)
    (cell,) = find_widgets(explorer, ipywidgets.Dropdown)
    length.value = 20
    cell.value = "rnn"
    assert drawn == [(10, "lstm", 1.0), (20, "lstm", 1.0), (20, "rnn", 1.0)]
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(length=4), "length", 4),
    (dict(length=201), "length", 201),
    (dict(cell="transformer"), "cell", "transformer"),
    (dict(forget_bias=5.0), "forget_bias", 5.0),
])
def test_timestep_gradient_explorer_rejects_values_its_controls_cannot_show(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.timestep_gradient_explorer(**kwargs)
