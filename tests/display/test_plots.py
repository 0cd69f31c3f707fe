"""gradcourse.display.plots: each function returns a closed Figure; log axes tolerate zeros and NaN."""

import math
import re

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import MLP, GradientMonitor
from gradcourse.lessons import clipping
from gradcourse.display import plots
from gradcourse.display.plots import plot_layer_histograms, plot_two_per_layer
from gradcourse.core.train.loop import History

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


def test_references_are_dashed_grey_and_hline_is_drawn():
    fig = plots.plot_per_layer({"measured": [1.0, 0.5]}, "ratio", references={"bound": [1.0, 0.25]}, hline=1e-3)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["bound"].get_linestyle() == "--" and lines["bound"].get_color() == "grey"
    assert list(lines["bound"].get_ydata()) == [1.0, 0.25]
    assert list(lines["0.001"].get_ydata()) == [1e-3, 1e-3]


@pytest.mark.parametrize("values", [[], {"a": []}, "abc", {"a": ["x", 1.0]}, 3.0])
def test_per_layer_plots_reject_bad_values(values):
    with pytest.raises(ValueError, match="values"):
        plots.plot_gradient_flow(values)


def test_empty_values_message_names_the_run():
    with pytest.raises(ValueError, match="values for 'relu' is empty"):
        plots.plot_gradient_flow({"relu": []})


# ---------------------------------------------------------------- plot_history

def _history(losses, train, val=(), stop_step=None):
    history = History(loss=list(losses), grad_norm=[1.0] * len(losses), train_accuracy=list(train),
                      val_accuracy=list(val))
    if stop_step is not None:
        history.stop_step, history.stop_layer = stop_step, "hidden layer 2"
    return history


def test_plot_history_draws_loss_and_accuracy():
    fig = plots.plot_history(_history([2.0, 1.0, 0.5, 0.4], [0.5, 0.8], [0.4, 0.7]), title="run")
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_yscale() == "log"
    assert list(ax_loss.get_lines()[0].get_ydata()) == [2.0, 1.0, 0.5, 0.4]
    assert [list(line.get_ydata()) for line in ax_acc.get_lines()] == [[0.5, 0.8], [0.4, 0.7]]
    assert fig._suptitle.get_text() == "run"


def test_plot_history_marks_divergence_with_an_x():
    fig = plots.plot_history(_history([2.0, 3.0], [], stop_step=3))
    markers = [line for line in fig.axes[0].get_lines() if line.get_marker() == "x"]
    assert len(markers) == 1
    assert list(markers[0].get_xdata()) == [3] and list(markers[0].get_ydata()) == [3.0]


def test_plot_history_marks_divergence_at_the_first_step():
    fig = plots.plot_history(_history([], [], stop_step=1))
    markers = [line for line in fig.axes[0].get_lines() if line.get_marker() == "x"]
    assert list(markers[0].get_xdata()) == [1]


def test_plot_history_dict_gives_one_loss_line_per_run():
    runs = {"sgd": _history([1.0, 0.5], [0.6]), "adam": _history([1.0, 0.2], [0.9], [0.85])}
    fig = plots.plot_history(runs)
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_loss.get_lines()] == ["sgd", "adam"]
    assert [line.get_label() for line in ax_acc.get_lines()] == ["sgd (train)", "adam (train)", "adam (validation)"]


def test_plot_history_legend_outside_keeps_equal_runs_visible(raises_bad):
    runs = {"a": _history([2.3, 2.3], [0.1, 0.1], [0.1, 0.1]), "b": _history([2.3, 2.3], [0.1, 0.1], [0.1, 0.1])}
    fig = plots.plot_history(runs, legend="outside")
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_legend() is None
    legend = ax_acc.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "accuracy: train", "accuracy: validation"]
    assert legend.get_bbox_to_anchor().x0 >= ax_acc.get_window_extent().x1   # beside the axes, not on them
    a_train, a_val, b_train, b_val = ax_acc.get_lines()
    assert a_train.get_marker() != b_train.get_marker() and a_train.get_markersize() > b_train.get_markersize()
    assert a_train.get_markerfacecolor() == "none" and a_val.get_linestyle() == "--"
    assert [line.get_marker() for line in ax_loss.get_lines()] == [a_train.get_marker(), b_train.get_marker()]
    with raises_bad("legend", "right"):
        plots.plot_history(runs, legend="right")


def test_plot_history_draws_no_accuracy_for_a_run_that_stopped_in_its_first_epoch():
    runs = {"g = 1": _history([2.3, 2.0, 1.5], [0.5, 0.7]), "g = 2": _history([1e6], [], stop_step=2)}
    for legend in ("inside", "outside"):
        fig = plots.plot_history(runs, legend=legend)
        ax_loss, ax_acc = fig.axes
        assert [line.get_label() for line in ax_acc.get_lines()] == ["g = 1 (train)"]
        if legend == "inside":
            assert [text.get_text() for text in ax_acc.get_legend().get_texts()] == ["g = 1 (train)"]
        one_point = [line for line in ax_loss.get_lines() if line.get_label() == "g = 2"][0]
        assert one_point.get_marker() not in (None, "None", "", " ")   # a single loss value stays visible


def test_plot_history_draws_validation_alone_when_fit_did_not_score_the_training_set():
    runs = {"scored": _history([2.0, 1.0], [0.5, 0.8], [0.4, 0.7]), "validation only": _history([2.0, 1.5], [], [0.3, 0.6])}
    ax_loss, ax_acc = plots.plot_history(runs).axes
    assert [line.get_label() for line in ax_acc.get_lines()] == ["scored (train)", "scored (validation)",
                                                                   "validation only (validation)"]
    assert list(ax_acc.get_lines()[-1].get_ydata()) == [0.3, 0.6]


def test_plot_regression_history_takes_a_history_without_training_mse():
    history = History(loss=[0.3, 0.2], val_loss=[0.25, 0.2])   # fit(loss_fn="mse", score_training_set=False)
    fig = plots.plot_regression_history(history)
    assert fig.axes[1].get_ylabel() == "validation MSE"
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [0.25, 0.2]


@pytest.mark.parametrize("histories", ["loss", [1.0, 2.0], {"a": None}])
def test_plot_history_rejects_non_histories(histories):
    with pytest.raises(ValueError, match="histories must be a History"):
        plots.plot_history(histories)


# ---------------------------------------------------------------- plot_activation_stats

@pytest.fixture
def recorded_monitor(mnist_small):
    gradcourse.set_seed(0)
    model = MLP(width=16, depth=3, activation="sigmoid")
    with GradientMonitor(model) as monitor:
        model(mnist_small[0])
        model(mnist_small[0][:10])
    return monitor


@pytest.mark.parametrize("step", [0, -1])
def test_plot_activation_stats_shows_the_chosen_step(recorded_monitor, step):
    fig = plots.plot_activation_stats(recorded_monitor, step=step, title="stats")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    mean_line = fig.axes[0].get_lines()[0]
    assert list(mean_line.get_ydata()) == pytest.approx(recorded_monitor.series("act_mean")[step].tolist())
    saturated = list(fig.axes[1].get_lines()[0].get_ydata())
    assert saturated == pytest.approx(recorded_monitor.series("saturated")[step].tolist())
    dead = list(fig.axes[2].get_lines()[0].get_ydata())
    assert dead == pytest.approx(recorded_monitor.series("dead")[step].tolist())


def test_the_two_recorded_steps_differ(recorded_monitor):
    # keeps the step test above meaningful: step 0 and step -1 are different rows
    assert not torch.equal(recorded_monitor.series("act_mean")[0], recorded_monitor.series("act_mean")[-1])


def test_plot_activation_stats_rejects_bad_input(recorded_monitor, raises_bad):
    with raises_bad("step", 2):
        plots.plot_activation_stats(recorded_monitor, step=2)
    with raises_bad("step", -3):
        plots.plot_activation_stats(recorded_monitor, step=-3)
    with raises_bad("monitor", "monitor"):
        plots.plot_activation_stats("monitor")
    gradcourse.set_seed(0)
    with pytest.raises(ValueError, match="no forward pass"):
        plots.plot_activation_stats(GradientMonitor(MLP(width=4, depth=2)))


# ---------------------------------------------------------------- plot_log_lines, plot_activation_curves

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


def test_accuracy_over_steps_draws_one_line_per_run():
    fig = plots.plot_accuracy_over_steps({"a": ([0, 10, 20], [0.1, 0.5, 0.8]), "b": ([0, 10], [0.1, 0.9])}, title="T")
    a, b = fig.axes[0].get_lines()
    assert list(a.get_xdata()) == [0, 10, 20] and list(b.get_ydata()) == [0.1, 0.9]
    assert fig.axes[0].get_xlabel() == "training step"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b"]


@pytest.mark.parametrize("curves", [{}, {"a": ([0, 1], [0.5])}, {"a": [0, 1]}])
def test_accuracy_over_steps_rejects_bad_curves(curves):
    with pytest.raises(ValueError, match="curves"):
        plots.plot_accuracy_over_steps(curves)


def test_styles_give_each_run_the_same_look_in_every_figure():
    from matplotlib.colors import to_hex

    styles = {"plain": {"color": "C3", "linestyle": "--"}, "residual": {"color": "C0"}, "not drawn": {"color": "k"}}
    figures = [plots.plot_log_lines([1, 2], {"residual": [2, 3], "plain": [1, 2]}, "x", "y", styles=styles),
               plots.plot_per_layer({"residual": [2.0], "plain": [1.0, 2.0]}, "y", styles=styles),
               plots.plot_gradient_flow({"residual": [2, 3], "plain": [1, 2]}, styles=styles)]
    history = plots.plot_history({"residual": _history([2.0, 1.0], [0.5]), "plain": _history([2.0, 1.5], [0.3], [0.2])},
                                 styles=styles)
    figures += [history, plots.plot_history({"plain": _history([2.0, 1.5], [0.3])}, legend="outside", styles=styles)]
    for fig in figures:
        lines = {line.get_label().removesuffix(" (train)"): line for ax in fig.axes[:2] for line in ax.get_lines()}
        assert to_hex(lines["plain"].get_color()) == to_hex("C3") and lines["plain"].get_linestyle() == "--"
        if "residual" in lines:
            assert to_hex(lines["residual"].get_color()) == to_hex("C0") and lines["residual"].get_linestyle() == "-"
    ax_loss, ax_acc = history.axes
    assert [to_hex(line.get_color()) for line in ax_loss.get_lines()] == [to_hex("C0"), to_hex("C3")]
    validation = ax_acc.get_lines()[-1]
    assert validation.get_label() == "plain (validation)" and to_hex(validation.get_color()) == to_hex("C3")


def test_without_styles_runs_take_the_colour_cycle():
    from matplotlib.colors import to_hex

    fig = plots.plot_log_lines([1, 2], {"a": [1, 2], "b": [2, 3]}, "x", "y")
    assert [to_hex(line.get_color()) for line in fig.axes[0].get_lines()] == [to_hex("C0"), to_hex("C1")]


@pytest.mark.parametrize("styles", ["C0", {"plain": "C0"}, [("plain", {})]])
def test_plots_reject_bad_styles(styles):
    with pytest.raises(ValueError, match="styles="):
        plots.plot_log_lines([1], {"plain": [1]}, "x", "y", styles=styles)
    with pytest.raises(ValueError, match="styles="):
        plots.plot_history(_history([1.0], [0.5]), styles=styles)


# ---------------------------------------------------------------- plot_activation_and_flow

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


def _regression_history(val, loss=(0.3, 0.2, 0.1), stop_step=None):
    history = History(loss=list(loss), val_loss=list(val), train_loss=list(val))
    history.stop_step = stop_step
    return history


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
    for bad in ("x", -1.0, math.nan):   # the right panel is a log axis
        with pytest.raises(ValueError, match=re.escape(f"hline={bad!r} is not allowed")):
            plots.plot_training_and_layers(histories, {"a": [1e-3]}, "ratio", hline=bad)


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


def test_quantiles_plot_rejects_bad_quantiles(raises_bad):
    with raises_bad("quantiles[i]", 2.0):
        plots.plot_quantiles({"a": torch.zeros(2, 2)}, quantiles=(0.5, 2.0))


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


def test_plot_regression_history_shows_steps_epochs_and_the_baseline():
    fig = plots.plot_regression_history({"rnn": _regression_history([0.17, 0.17]), "lstm": _regression_history([0.1, 0.01])},
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
        plots.plot_regression_history(_regression_history([0.1]), baseline=-1)


def test_plot_gradient_norms_marks_the_steps_above_the_threshold():
    norms = [0.1, 0.2, 5.0, 0.15, 9.0]
    fig = plots.plot_gradient_norms(norms, max_norm=1.0)
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


@pytest.mark.parametrize("norms, max_norm, match", [
    ({"a": [1.0]}, None, "not a dict"),
    ([0.0, -1.0], None, "no positive finite value"),
    ([1.0], 0.0, "max_norm=0.0"),
])
def test_plot_gradient_norms_rejects_bad_input(norms, max_norm, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_gradient_norms(norms, max_norm)


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


def test_a_figure_function_that_fails_leaves_no_figure_open(raises_bad):
    from gradcourse.core.train.loop import History

    before = plt.get_fignums()
    uneven = History(loss=[1.0, 0.5], train_accuracy=[0.5, 0.6], val_accuracy=[0.4])
    with pytest.raises(ValueError, match="2 train_accuracy entries but 1 val_accuracy"):
        plots.plot_history(uneven)
    with pytest.raises(ValueError, match="finite"):
        plots.plot_layer_histograms({"a": [torch.zeros(5)]})

    @plots.common.closes_on_error
    def half_drawn():
        plt.subplots()
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError):
        half_drawn()
    assert plt.get_fignums() == before


def test_a_zero_last_gradient_gives_a_nan_ratio_not_a_crash():
    fig = plots.plot_activation_and_flow([0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0])
    assert "first/last = nan" in fig.axes[1].get_title()


# ---------------------------------------------------------------- statistics over training time

@pytest.fixture
def histogram_monitor(mnist_small):
    gradcourse.set_seed(0)
    model = MLP(width=16, depth=3, activation="tanh")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model, histogram_bins=12) as monitor:
        for step in range(4):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(mnist_small[0]), mnist_small[1]).backward()
            optimizer.step()
    return monitor


def test_histograms_over_steps_draw_one_image_per_activation(histogram_monitor):
    histograms = histogram_monitor.histograms()
    fig = plots.plot_histograms_over_steps(histograms, title="tanh net", columns=2)
    images = [image for ax in fig.axes for image in ax.get_images()]
    assert len(images) == 3 and not plt.get_fignums()
    shares, edges = histograms[histogram_monitor.activation_names[0]]
    assert images[0].get_array().shape == (12, 4)                   # bins up, steps across
    assert images[0].get_array().data == pytest.approx(shares.T.numpy())
    assert images[0].get_extent() == pytest.approx([0, 4, -1, 1])


@pytest.mark.parametrize("bad", [{}, "monitor", {"a": (torch.ones(3, 4), torch.ones(4))}, {"a": (torch.ones(0, 4), torch.ones(5))}])
def test_histograms_over_steps_reject_what_is_not_a_monitors_histograms(bad):
    with pytest.raises(ValueError, match="histograms"):
        plots.plot_histograms_over_steps(bad)
    assert not plt.get_fignums()


def test_statistic_over_steps_draws_the_reference_line(histogram_monitor, raises_bad):
    fig = plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference=1e-3)
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [1e-3, 1e-3]
    with pytest.raises(ValueError, match="reference="):
        plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference="1e-3")
    with raises_bad("reference", -1.0):   # a log axis
        plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference=-1.0)
    plt.close(plots.plot_statistic_over_steps(histogram_monitor, "act_mean", reference=-0.5))   # a linear one
