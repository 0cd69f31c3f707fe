"""gradcourse.widgets: the gradient-flow figure and its ipywidgets explorer."""

import math

import ipywidgets
import pytest
from matplotlib.figure import Figure

import gradcourse
from gradcourse import MLP, layer_gradient_norms, widgets
from helpers import find_widgets, record_calls


pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_gradient_flow_figure_plots_the_measured_norms_and_bound(Xy):
    fig = widgets.gradient_flow_figure(*Xy, depth=6, activation="sigmoid", width=16, seed=3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "6 layers" in ax.get_title() and "sigmoid" in ax.get_title()
    gradcourse.set_seed(3)
    expected = layer_gradient_norms(MLP(width=16, depth=6, activation="sigmoid"), *Xy)
    measured, bound = ax.get_lines()
    assert list(measured.get_ydata()) == pytest.approx(expected, rel=1e-6)
    # the bound at layer l is the last layer's norm times (1/4)^(L - l)
    assert list(bound.get_ydata()) == pytest.approx([expected[-1] * 0.25 ** (6 - l) for l in range(1, 7)])
    assert f"{expected[0] / expected[-1]:.2e}" in ax.get_title()


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(depth=0), "depth", 0),
    (dict(depth=201), "depth", 201),
    (dict(activation="sigmod"), "activation", "sigmod"),
    (dict(init="he"), "init", "he"),
    (dict(init_scale=0), "init_scale", 0),
    (dict(width=0), "width", 0),
])
def test_gradient_flow_figure_rejects_bad_arguments(Xy, kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        widgets.gradient_flow_figure(*Xy, **kwargs)


def test_gradient_flow_figure_rejects_bad_data(Xy):
    with pytest.raises(ValueError, match=r"X=\[\[0\.0\]\]"):
        widgets.gradient_flow_figure([[0.0]], Xy[1][:1])


def test_explorer_is_a_vbox_with_a_depth_slider(Xy, capsys):
    explorer = widgets.gradient_flow_explorer(*Xy, depth=5, width=8)
    assert isinstance(explorer, ipywidgets.VBox)
    (depth,) = [s for s in find_widgets(explorer, ipywidgets.IntSlider) if s.description == "depth"]
    assert depth.value == 5
    assert any(isinstance(child, ipywidgets.Output) for child in explorer.children)
    capsys.readouterr()  # outside IPython, display() prints the figure's repr


def test_moving_the_depth_slider_redraws(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "gradient_flow_figure", "depth")
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


# ---------------------------------------------------------------- the one-unit chain

def test_chain_figure_plots_the_autograd_gradients_and_bound():
    fig = widgets.chain_figure(depth=5, weight=2.0, bias=0.5, activation="sigmoid")
    assert isinstance(fig, Figure)
    chain = gradcourse.theory.scalar_chain(5, 2.0, 0.5, x0=1.0, activation="sigmoid")
    measured, bound = fig.axes[0].get_lines()
    assert list(measured.get_ydata()) == pytest.approx([abs(g) for g in chain.gradients])
    assert list(bound.get_ydata()) == pytest.approx([(0.25 * 2.0) ** (5 - l) for l in range(5)])


def test_chain_explorer_redraws_on_change(monkeypatch, capsys):
    drawn = record_calls(monkeypatch, widgets, "chain_figure", "depth", "weight")
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


# ---------------------------------------------------------------- the explorer scaffold

def test_explorer_lays_out_the_controls_and_draws_the_figure_from_their_values():
    drawn = []

    def figure(a, b, c):
        drawn.append((a, b, c))
        return f"{a}-{b}-{c}"

    controls = {name: ipywidgets.IntSlider(value=i) for i, name in enumerate("abc")}
    box = widgets.explorer(figure, controls, [["a", "b"], "c"])
    first, second, output = box.children
    assert isinstance(first, ipywidgets.HBox) and list(first.children) == [controls["a"], controls["b"]]
    assert second is controls["c"] and isinstance(output, ipywidgets.Output)
    assert drawn[-1] == (0, 1, 2)
    controls["b"].value = 7
    assert drawn[-1] == (0, 7, 2)
    one_row = widgets.explorer(figure, controls)
    assert list(one_row.children[0].children) == list(controls.values())


@pytest.mark.parametrize("controls, rows, name", [({}, None, "controls"), ("sliders", None, "controls")])
def test_explorer_rejects_bad_controls(controls, rows, name):
    with pytest.raises(ValueError, match=f"{name}="):
        widgets.explorer(lambda **values: None, controls, rows)


def test_explorer_rejects_rows_that_do_not_place_every_control_once():
    controls = {"a": ipywidgets.IntSlider(), "b": ipywidgets.IntSlider()}
    for rows in (["a"], ["a", "a", "b"], [["a", "b", "c"]]):
        with pytest.raises(ValueError, match="rows="):
            widgets.explorer(lambda **values: None, controls, rows)
