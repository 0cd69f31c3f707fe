"""plots.plot_training_and_layers, plots.plot_quantiles and the training explorers of notebooks 07, 09, 10."""

import math

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure

from gradcourse import plots, widgets
from gradcourse.train import History
from helpers import find_widgets, record_calls


pytestmark = pytest.mark.usefixtures("no_figure_left_open")


# ---------------------------------------------------------------- plot_training_and_layers

def test_training_and_layers_draws_losses_and_per_layer_values():
    histories = {"a": History(loss=[2.0, 1.0, 0.5]), "b": History(loss=[2.0, 3.0], stop_step=3, stop_layer="x")}
    fig = plots.plot_training_and_layers(histories, {"a": [1e-3, 1e-2], "b": [0.0, 1e-4]}, "ratio", hline=1e-3, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_loss, ax_layers = fig.axes
    assert list(ax_loss.get_lines()[0].get_ydata()) == [2.0, 1.0, 0.5]
    assert len(ax_loss.get_lines()) == 3  # two runs and the divergence marker
    assert ax_layers.get_yscale() == "log" and ax_loss.get_yscale() == "log"
    b_line = ax_layers.get_lines()[1]
    assert math.isnan(b_line.get_ydata()[0])  # zero cannot sit on a log axis
    assert ax_layers.get_lines()[-1].get_ydata()[0] == 1e-3  # the hline
    assert fig._suptitle.get_text() == "t"


def test_training_and_layers_accepts_a_single_run():
    fig = plots.plot_training_and_layers(History(loss=[1.0, 0.9]), [0.1, 0.2, 0.3], "grad")
    assert list(fig.axes[1].get_lines()[0].get_xdata()) == [1, 2, 3]


def test_training_and_layers_rejects_bad_input():
    with pytest.raises(ValueError, match="histories must be a History"):
        plots.plot_training_and_layers({"a": [1.0]}, [1.0], "y")
    with pytest.raises(ValueError, match="per_layer"):
        plots.plot_training_and_layers(History(loss=[1.0]), {"a": []}, "y")
    with pytest.raises(ValueError, match="ylabel=3"):
        plots.plot_training_and_layers(History(loss=[1.0]), [1.0], 3)


# ---------------------------------------------------------------- plot_quantiles

def test_quantiles_plot_one_panel_per_run_and_one_line_per_quantile():
    series = {"without": torch.tensor([[-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]]), "with": torch.zeros(3, 3)}
    fig = plots.plot_quantiles(series, title="q")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["without", "with"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]
    assert list(fig.axes[0].get_lines()[1].get_ydata()) == [0.0, -1.0]


@pytest.mark.parametrize("series", [{}, [torch.zeros(2, 3)], {"a": torch.zeros(2, 2)}, {"a": torch.zeros(0, 3)}])
def test_quantiles_plot_rejects_bad_series(series):
    with pytest.raises(ValueError, match="series"):
        plots.plot_quantiles(series)


# ---------------------------------------------------------------- explorers

def test_residual_figure_shows_loss_and_first_step_gradients(Xy):
    fig = widgets.residual_figure(*Xy, depth=4, residual="pre", width=8, epochs=1, batch_size=32)
    assert "4 layers, pre-activation" in fig._suptitle.get_text()
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == 4
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == 2


def test_residual_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "residual_figure", "depth", "residual")
    explorer = widgets.residual_explorer(*Xy, depth=3, residual=False, width=8, epochs=1)
    assert isinstance(explorer, ipywidgets.VBox)
    (buttons,) = find_widgets(explorer, ipywidgets.ToggleButtons)
    buttons.value = True
    (depth,) = find_widgets(explorer, ipywidgets.IntSlider)
    depth.value = 5
    assert drawn == [(3, False), (3, True), (5, True)]
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(depth=1), "depth", 1),
    (dict(depth=61), "depth", 61),
    (dict(residual="post"), "residual", "post"),
    (dict(residual=1), "residual", 1),
])
def test_residual_explorer_rejects_bad_arguments(Xy, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.residual_explorer(*Xy, **kwargs)


def test_normalization_figure_names_the_norm(Xy):
    fig = widgets.normalization_figure(*Xy, norm="layer", depth=2, width=8, epochs=1, batch_size=32)
    assert "norm=layer" in fig._suptitle.get_text()
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == 2


def test_normalization_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "normalization_figure", "norm", "depth")
    explorer = widgets.normalization_explorer(*Xy, norm=None, depth=2, width=8, epochs=1, batch_size=32)
    (buttons,) = find_widgets(explorer, ipywidgets.ToggleButtons)
    buttons.value = "batch"
    assert drawn == [(None, 2), ("batch", 2)]
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(norm="group"), "norm", "group"),
    (dict(depth=0), "depth", 0),
    (dict(depth=11), "depth", 11),
])
def test_normalization_explorer_rejects_bad_arguments(Xy, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.normalization_explorer(*Xy, **kwargs)


def test_optimizer_figure_shows_update_ratios_with_the_rule_of_thumb(Xy):
    fig = widgets.optimizer_figure(*Xy, "rmsprop", 1e-3, epochs=1, batch_size=32, width=8, depth=3)
    assert "rmsprop, lr=0.001" in fig._suptitle.get_text()
    lines = fig.axes[1].get_lines()
    assert len(lines[0].get_ydata()) == 3 and lines[-1].get_ydata()[0] == 1e-3


def test_optimizer_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "optimizer_figure", "optimizer", "lr")
    explorer = widgets.optimizer_explorer(*Xy, optimizer="sgd", lr=0.1, epochs=1, width=8, depth=2)
    (buttons,) = find_widgets(explorer, ipywidgets.ToggleButtons)
    buttons.value = "adam"
    (slider,) = find_widgets(explorer, ipywidgets.FloatLogSlider)
    slider.value = 1e-3
    assert [d[0] for d in drawn] == ["sgd", "adam", "adam"] and drawn[-1][1] == pytest.approx(1e-3)
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(optimizer="adamw"), "optimizer", "adamw"),
    (dict(lr=2.0), "lr", 2.0),
    (dict(lr=1e-6), "lr", 1e-6),
])
def test_optimizer_explorer_rejects_bad_arguments(Xy, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.optimizer_explorer(*Xy, **kwargs)


def test_quantiles_plot_rejects_bad_quantiles(raises_bad):
    with raises_bad("quantiles[i]", 2.0):
        plots.plot_quantiles({"a": torch.zeros(2, 2)}, quantiles=(0.5, 2.0))
