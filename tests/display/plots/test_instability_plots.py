"""gradcourse.display.plots.instabilities, with notebook 17's figure and explorer: the attention logits, entropy and
loss per step, a quantity per step on a linear axis, Adam's first step against eps and Adam around one large
gradient, each a closed Figure; and the explorer that trains and redraws on a change of its controls."""

import math

import ipywidgets
import pytest
from matplotlib.figure import Figure

from gradcourse.display import plots, theory_figures, widgets
from helpers import find_widgets, record_calls

pytestmark = pytest.mark.usefixtures("no_figure_left_open")

RUN = {"max_logit": [1.0, 10.0, 100.0], "entropy": [1.9, 1.0, 0.1], "loss": [2.3, 2.0, 1.8]}


def test_the_attention_figure_draws_three_panels_and_the_bound_of_a_qk_norm_run():
    fig = plots.plot_attention_logits({"without": RUN, "with": RUN | {"bound": [4.0, 5.0, 6.0]},
                                       "no bound": RUN | {"bound": [math.inf] * 3}}, uniform_entropy=math.log(7),
                                      title="runs")
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "runs"
    logits, entropy, loss = fig.axes
    assert logits.get_yscale() == "log" and logits.get_ylabel().startswith("largest |attention logit|")
    assert len(logits.get_lines()) == 4                       # three runs and one finite bound
    assert any(list(line.get_ydata()) == [math.log(7)] * 2 for line in entropy.get_lines())
    assert list(loss.get_lines()[0].get_ydata()) == [2.3, 2.0, 1.8]


def test_the_attention_figure_refuses_runs_without_their_series():
    with pytest.raises(ValueError, match="runs"):
        plots.plot_attention_logits({})
    with pytest.raises(ValueError, match=r"runs\['a'\]"):
        plots.plot_attention_logits({"a": {"max_logit": [1.0]}})


def test_a_quantity_over_steps_on_a_linear_axis_with_a_reference_line():
    fig = plots.plot_over_steps({"a": [2.0, -1.0, 0.5], "b": [0.0, 0.1, 0.2]}, "log Z", hline=0.0, hline_label="0")
    (ax,) = fig.axes
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "log Z" and len(ax.get_lines()) == 3


def test_the_update_share_figure_is_log_log_with_one_line_per_layer():
    fig = plots.plot_update_share([1e-8, 1e-4, 1.0], {"a": [1.0, 0.9, 0.01], "b": [1.0, 0.5, 0.001]},
                                  {"a": 1e-2, "b": 1e-3})
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="grad_rms"):
        plots.plot_update_share([1e-8], {"a": [1.0]}, {"b": 1.0})
    with pytest.raises(ValueError, match="share"):
        plots.plot_update_share([1e-8, 1e-4], {"a": [1.0]}, {"a": 1.0})


def test_the_adam_spike_figure_starts_before_the_spike_and_draws_the_bounds():
    run = {"update": [0.1] * 30 + [3.0, 1.0], "loss": [1e-6] * 30 + [1e-3, 1e-2]}
    fig = plots.plot_adam_spike({"β2 = 0.999": run}, bounds={"β2 = 0.999": 3.16}, spike_step=31, before=5)
    update, loss = fig.axes
    assert list(update.get_lines()[0].get_xdata()) == list(range(26, 33))
    assert any(list(line.get_ydata()) == [3.16, 3.16] for line in update.get_lines())
    assert loss.get_yscale() == "log"


def test_the_attention_logit_figure_trains_and_draws(mnist_small):
    X, y = mnist_small
    fig = theory_figures.attention_logit_figure(X[:64], y[:64], lr=0.1, qk_norm=True, batch_size=32, depth=1, d_model=8,
                                         ffn=16)
    assert isinstance(fig, Figure) and "with QK-norm" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="qk_norm='on'"):
        theory_figures.attention_logit_figure(X[:64], y[:64], qk_norm="on")


def test_the_explorer_redraws_when_a_control_moves(mnist_small, monkeypatch, capsys):
    X, y = mnist_small
    drawn = record_calls(monkeypatch, theory_figures, "attention_logit_figure", "lr", "qk_norm")
    explorer = widgets.attention_logit_explorer(X[:64], y[:64], lr=0.1, qk_norm="both", batch_size=32, depth=1,
                                                d_model=8, ffn=16)
    assert isinstance(explorer, ipywidgets.VBox)
    (buttons,) = find_widgets(explorer, ipywidgets.ToggleButtons)
    buttons.value = False
    assert drawn == [(0.1, "both"), (0.1, False)]
    capsys.readouterr()
    with pytest.raises(ValueError, match="lr=2.0"):
        widgets.attention_logit_explorer(X[:64], y[:64], lr=2.0)
