"""gradcourse.display.widgets: every explorer's controls, the redraw when one changes, and the values they reject."""

import inspect
import math
import re
from functools import partial

import ipywidgets
import matplotlib.pyplot as plt
import pytest
import torch
from helpers import find_widgets, record_calls
from matplotlib.figure import Figure

from gradcourse.display import figures, theory_figures, widgets

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
    explorer = widgets.timestep_gradient_explorer(length=10, cell="lstm", forget_bias=1.0, width=4, batch_size=8)
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


# ---------------------------------------------------------------- control specs: one range, checked and shown

@pytest.mark.parametrize("spec, value, message", [
    (widgets.Integer("depth", 2, 50), 60, "depth=60 is not allowed; it must be an integer >= 2 and <= 50"),
    (widgets.Number("weight w", -8, 8, step=0.1), 9.0, "weight=9.0 is not allowed; it must be a finite number >= -8 and <= 8"),
    (widgets.LogNumber("learning rate", 1e-5, 1.0, step=0.25), 2.0,
     "lr=2.0 is not allowed; it must be a finite number >= 1e-05 and <= 1.0"),
    (widgets.Interval("z range", -10.0, 10.0, step=0.5), (-12.0, 4.0),
     "z_range=-12.0 is not allowed; it must be a finite number >= -10.0 and <= 10.0"),
    (widgets.Menu("init", ("default", "kaiming")), "he", "init='he' is not allowed; choose one of: 'default', 'kaiming'"),
    (widgets.Buttons("blocks", (("plain", False), ("residual", True))), 1,
     "residual=1 is not allowed; choose one of: False, True"),
])
def test_a_spec_refuses_a_value_out_of_range_naming_parameter_value_and_range(spec, value, message):
    name = message.split("=")[0]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        spec.check(name, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        widgets.build({name: spec}, **{name: value})


def test_build_checks_then_builds_each_widget_with_the_spec_range():
    controls = widgets.build({"depth": widgets.Integer("depth L", 1, 40), "cell": widgets.Menu("cell", ("rnn", "lstm"))},
                             depth=3, cell="lstm")
    assert (controls["depth"].min, controls["depth"].max, controls["depth"].value) == (1, 40, 3)
    assert controls["depth"].description == "depth L" and not controls["depth"].continuous_update
    assert list(controls["cell"].options) == ["rnn", "lstm"] and controls["cell"].value == "lstm"
    with pytest.raises(ValueError, match="give one for each of"):
        widgets.build({"depth": widgets.Integer("depth", 1, 4)}, width=3)


def _explorers(X, y):
    """Each explorer with arguments that keep it small; the figure functions are stubbed by the test."""
    return {
        "gradient_flow_explorer": partial(widgets.gradient_flow_explorer, X, y),
        "chain_explorer": widgets.chain_explorer,
        "recurrent_explorer": widgets.recurrent_explorer,
        "init_explorer": partial(widgets.init_explorer, X, y),
        "activation_explorer": partial(widgets.activation_explorer, X, y),
        "precision_explorer": partial(widgets.precision_explorer, [torch.ones(3)]),
        "clipping_explorer": partial(widgets.clipping_explorer, [0.05, 0.2, 3.0], max_norm=0.3),
        "timestep_gradient_explorer": widgets.timestep_gradient_explorer,
        "residual_explorer": partial(widgets.residual_explorer, X, y),
        "normalization_explorer": partial(widgets.normalization_explorer, X, y),
        "optimizer_explorer": partial(widgets.optimizer_explorer, X, y),
        "layernorm_placement_explorer": partial(widgets.layernorm_placement_explorer, X, y),
        "propagation_explorer": partial(widgets.propagation_explorer, X, y),
        "edge_of_chaos_explorer": widgets.edge_of_chaos_explorer,
        "residual_stream_explorer": partial(widgets.residual_stream_explorer, X, y),
        "attention_logit_explorer": partial(widgets.attention_logit_explorer, X, y),
    }


def _inside_and_outside(widget):
    """Values a control's widget can show (its ends, or its options) and values just outside them."""
    if isinstance(widget, ipywidgets.FloatLogSlider):  # ends computed through log10: equal up to rounding
        low, high = widget.base ** widget.min, widget.base ** widget.max
        return [low * (1 + 1e-9), high * (1 - 1e-9)], [low * (1 - 1e-9), high * (1 + 1e-9)]
    if isinstance(widget, ipywidgets.IntSlider):
        return [widget.min, widget.max], [widget.min - 1, widget.max + 1]
    if isinstance(widget, ipywidgets.FloatSlider):
        return [widget.min, widget.max], [math.nextafter(widget.min, -math.inf), math.nextafter(widget.max, math.inf)]
    options = [option[1] if isinstance(option, tuple) else option for option in widget.options]
    return options, ["not an option"]


def test_every_explorer_accepts_exactly_what_its_controls_can_show(Xy, monkeypatch, raises_bad, capsys):
    for module in (figures, theory_figures):
        for name in dir(module):
            if name.endswith("_figure"):
                monkeypatch.setattr(module, name, lambda *args, **kwargs: "figure")
    for explorer_name, make in _explorers(*Xy).items():
        parameters = inspect.signature(getattr(widgets, explorer_name)).parameters
        box = make()
        assert box.figure == "figure" and box.controls
        for name, widget in box.controls.items():
            if name not in parameters:  # a control whose start the explorer fixes, e.g. the z range
                assert isinstance(widget, ipywidgets.FloatRangeSlider), (explorer_name, name)
                continue
            inside, outside = _inside_and_outside(widget)
            for value in inside:
                assert make(**{name: value}).controls[name].value == pytest.approx(value), (explorer_name, name)
            for value in outside:
                with raises_bad(name, value):
                    make(**{name: value})
    capsys.readouterr()
