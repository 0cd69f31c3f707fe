"""gradcourse.display.plots.propagation and the explorer built on it: per-layer panels side by side, one look
per series across panels, and the values they refuse."""

import ipywidgets
import pytest
from helpers import find_widgets, record_calls

from gradcourse.display import plots, theory_figures, widgets
from gradcourse.display.plots.common import OKABE_ITO

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_plot_layer_panels_keeps_one_look_per_series():
    fig = plots.plot_layer_panels({"forward": {"a": [1.0, 0.1, 0.01], "b": [1.0, 1.0, 1.0]},
                                   "backward": {"b": [2.0, 2.0], "c": [1e-3, 1e-2]}},
                                  references={"forward": {"slope": [1.0, 0.1, 0.01]}},
                                  hlines={"backward": (1e-3, "rule")}, title="t", order=["c"])
    left, right = fig.axes
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    colour = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colour["c"] == OKABE_ITO[0] and colour["a"] == OKABE_ITO[1] and colour["b"] == OKABE_ITO[2]
    markers = {line.get_label(): line.get_marker() for line in left.get_lines()}
    assert markers["a"] != markers["b"]
    assert [line.get_label() for line in right.get_lines()] == ["b", "c", "rule"]
    assert left.get_ylabel() == "forward" and fig._suptitle.get_text() == "t"


@pytest.mark.parametrize("kwargs, match", [
    (dict(panels={}), "panels={}"),
    (dict(panels={"a": {"x": []}}), "is empty"),
    (dict(panels={"a": {"x": [1.0]}}, references={"b": {"r": [1.0]}}), "references for"),
    (dict(panels={"a": {"x": [1.0]}}, hlines={"a": (0, "zero")}), r"hlines\['a'\]\[0\]=0"),
    (dict(panels={"a": {"x": [1.0]}}, hlines={"a": 1.0}), r"hlines\['a'\]=1.0"),
    (dict(panels={"a": {"x": [1.0]}}, order="x"), "order='x'"),
])
def test_plot_layer_panels_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_layer_panels(**kwargs)


def test_propagation_figure_titles_both_factors(Xy):
    fig = theory_figures.propagation_figure(*Xy, depth=4, width=16)
    assert len(fig.axes) == 2 and "going up" in fig._suptitle.get_text() and "going down" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="depth=1"):
        theory_figures.propagation_figure(*Xy, depth=1)


def test_propagation_explorer_redraws_on_change(Xy, monkeypatch, capsys):
    drawn = record_calls(monkeypatch, theory_figures, "propagation_figure", "depth", "activation")
    explorer = widgets.propagation_explorer(*Xy, depth=4, width=8)
    (depth,) = [s for s in find_widgets(explorer, ipywidgets.IntSlider) if s.description == "depth"]
    depth.value = 3
    assert drawn == [(4, "sigmoid"), (3, "sigmoid")]
    capsys.readouterr()
    with pytest.raises(ValueError, match="activation='sigmod'"):
        widgets.propagation_explorer(*Xy, activation="sigmod")
