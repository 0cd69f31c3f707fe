"""gradcourse.plots: each function returns a closed Figure; log axes tolerate zeros and NaN."""

import math

import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import MLP, GradientMonitor, plots
from gradcourse.train import History


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
    fig.canvas.draw()
    assert isinstance(fig, Figure)


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


# ---------------------------------------------------------------- plot_log_lines, plot_activations

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


def test_plot_activations_draws_each_function_and_its_derivative():
    fig = plots.plot_activations(("sigmoid", "relu"), low=-2.0, high=2.0)
    ax_f, ax_d = fig.axes
    sigmoid_f, relu_f = ax_f.get_lines()[:2]
    sigmoid_d = ax_d.get_lines()[0]
    z = torch.tensor(sigmoid_f.get_xdata())
    assert z[0].item() == -2.0 and z[-1].item() == 2.0
    assert torch.allclose(torch.tensor(sigmoid_f.get_ydata()), torch.sigmoid(z), atol=1e-6)
    assert torch.allclose(torch.tensor(relu_f.get_ydata()), torch.relu(z))
    assert max(sigmoid_d.get_ydata()) == pytest.approx(0.25, abs=1e-3)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(activations=["sigmod"]), "activations[i]", "sigmod"),
    (dict(low=math.nan), "low", math.nan),
    (dict(low=1.0, high=1.0), "high", 1.0),
])
def test_plot_activations_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        plots.plot_activations(**kwargs)


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
