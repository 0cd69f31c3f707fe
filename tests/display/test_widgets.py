"""gradcourse.display.widgets: every explorer's controls, the redraw when one changes, and the values they reject."""

import math

import ipywidgets
import matplotlib.pyplot as plt
import pytest
from helpers import find_widgets, record_calls
from matplotlib.figure import Figure

from gradcourse.display import figures, widgets

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_explorer_is_a_vbox_with_a_depth_slider(Xy, capsys):
    explorer = widgets.gradient_flow_explorer(*Xy, depth=5, width=8)
    assert isinstance(explorer, ipywidgets.VBox)
    (depth,) = [s for s in find_widgets(explorer, ipywidgets.IntSlider) if s.description == "depth"]
    assert depth.value == 5
    assert any(isinstance(child, ipywidgets.Output) for child in explorer.children)
    capsys.readouterr()  # outside IPython, display() prints the figure's repr


def test_moving_the_depth_slider_redraws(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "gradient_flow_figure", "depth")
    explorer = widgets.gradient_flow_explorer(*Xy, depth=4, width=8)
    assert drawn == [4]  # drawn once on creation
    (depth,) = [s for s in find_widgets(explorer, ipywidgets.IntSlider) if s.description == "depth"]
    depth.value = 3
    assert drawn == [4, 3]
    assert "Figure" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(activation="sigmod"), "activation", "sigmod"),
    (dict(init="he"), "init", "he"),
    (dict(width=0), "width", 0),
])
def test_explorer_rejects_bad_arguments(Xy, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.gradient_flow_explorer(*Xy, **kwargs)


def test_explorer_rejects_bad_data(Xy):
    with pytest.raises(ValueError, match="y has 3 labels but X has 64 rows"):
        widgets.gradient_flow_explorer(Xy[0], Xy[1][:3])


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(depth=1), "depth", 1),
    (dict(depth=100), "depth", 100),
    (dict(depth=2.5), "depth", 2.5),
    (dict(init_scale=0.0), "init_scale", 0.0),
    (dict(init_scale=100.0), "init_scale", 100.0),
])
def test_explorer_rejects_values_its_sliders_cannot_show(Xy, kwargs, name, value, raises_bad):
    # ipywidgets would silently clamp these to the slider's range (depth 2-50, scale 0.1-10)
    with raises_bad(name, value):
        widgets.gradient_flow_explorer(*Xy, **kwargs)


def test_chain_explorer_redraws_on_change(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "chain_figure", "depth", "weight")
    explorer = widgets.chain_explorer(depth=4, weight=1.5)
    assert isinstance(explorer, ipywidgets.VBox)
    (depth,) = [s for s in find_widgets(explorer, ipywidgets.IntSlider) if s.description.startswith("depth")]
    depth.value = 7
    assert drawn == [(4, 1.5), (7, 1.5)]
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(depth=0), "depth", 0),
    (dict(depth=41), "depth", 41),
    (dict(weight=9.0), "weight", 9.0),
    (dict(weight=math.nan), "weight", math.nan),
    (dict(bias=-5.0), "bias", -5.0),
    (dict(activation="sigmod"), "activation", "sigmod"),
])
def test_chain_explorer_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.chain_explorer(**kwargs)


@pytest.mark.parametrize("controls, rows, name", [({}, None, "controls"), ("sliders", None, "controls")])
def test_explorer_rejects_bad_controls(controls, rows, name):
    with pytest.raises(ValueError, match=f"{name}="):
        widgets.explorer(lambda **values: None, controls, rows)


def test_explorer_rejects_rows_that_do_not_place_every_control_once():
    controls = {"a": ipywidgets.IntSlider(), "b": ipywidgets.IntSlider()}
    for rows in (["a"], ["a", "a", "b"], [["a", "b", "c"]]):
        with pytest.raises(ValueError, match="rows="):
            widgets.explorer(lambda **values: None, controls, rows)


def test_new_figures_and_explorers(mnist_small):
    X, y = mnist_small
    assert "σ_max(W) = 0.9" in figures.recurrent_figure(0.9, steps=10).axes[0].get_title()
    assert isinstance(figures.init_figure(X, y, depth=3, width=16), Figure)
    assert "gelu" in figures.activation_figure(X, y, "gelu", depth=3, width=16).axes[0].get_title()
    before = plt.get_fignums()
    for explorer in (widgets.recurrent_explorer(steps=10), widgets.init_explorer(X, y, depth=3, width=16),
                     widgets.activation_explorer(X, y, depth=3, width=16)):
        assert explorer.__class__.__name__ == "VBox"
    assert plt.get_fignums() == before


def test_new_explorers_reject_values_outside_their_sliders(mnist_small, raises_bad):
    X, y = mnist_small
    with raises_bad("sigma_max", 7.0):
        widgets.recurrent_explorer(sigma_max=7.0)
    with raises_bad("depth", 1):
        widgets.init_explorer(X, y, depth=1)
    with raises_bad("init", "he"):
        widgets.activation_explorer(X, y, init="he")


def test_residual_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "residual_figure", "depth", "residual")
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


def test_normalization_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "normalization_figure", "norm", "depth")
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


def test_optimizer_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "optimizer_figure", "optimizer", "lr")
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


def test_clipping_explorer_redraws_with_the_threshold(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "clipping_figure", "max_norm")
    explorer = widgets.clipping_explorer([0.05, 0.2, 3.0, 0.1], max_norm=0.3)
    (slider,) = find_widgets(explorer, ipywidgets.FloatLogSlider)
    assert (slider.min, slider.max) == (-2, 1) and slider.value == pytest.approx(0.3)
    slider.value = 1.0
    assert drawn == [pytest.approx(0.3), 1.0]
    capsys.readouterr()


def test_clipping_explorer_keeps_the_figure_it_drew(capsys):
    explorer = widgets.clipping_explorer([0.05, 0.2, 3.0, 0.1], max_norm=0.3)
    assert "25% of 4 steps" in explorer.figure.get_suptitle()
    (slider,) = find_widgets(explorer, ipywidgets.FloatLogSlider)
    slider.value = 0.08
    assert "75% of 4 steps" in explorer.figure.get_suptitle() and "c = 0.08" in explorer.figure.get_suptitle()
    capsys.readouterr()


@pytest.mark.parametrize("norms, max_norm, match", [
    ([0.05, 3.0], 100.0, "max_norm=100.0"),
    ([0.0], 1.0, "no positive finite value"),
])
def test_clipping_explorer_rejects_bad_input(norms, max_norm, match):
    with pytest.raises(ValueError, match=match):
        widgets.clipping_explorer(norms, max_norm)


def test_timestep_gradient_explorer_redraws_on_change(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, figures, "timestep_gradient_figure", "length", "cell", "forget_bias")
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


def test_residual_explorer_rejects_an_unknown_activation(Xy, raises_bad):
    from gradcourse.display import widgets

    with raises_bad("activation", "relu6"):
        widgets.residual_explorer(*Xy, depth=3, activation="relu6")
