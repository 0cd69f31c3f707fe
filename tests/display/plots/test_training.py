"""gradcourse.display.plots.training: training runs (loss, accuracy, regression MSE, gradient norms, per-layer
values beside the loss), each a closed Figure; a diverged run marked where it stopped."""

import math
import re

import pytest
from matplotlib.figure import Figure

from gradcourse.display import plots
from gradcourse.core.train import History
from helpers import history_of as _history

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


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
    runs = {"sgd": _history([1.0, 0.5], [0.6, 0.7]), "adam": _history([1.0, 0.2], [0.9, 0.9], [0.85, 0.8])}
    fig = plots.plot_history(runs)
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_loss.get_lines()] == ["sgd", "adam"]
    assert [line.get_label() for line in ax_acc.get_lines()] == ["sgd (train)", "adam (train)", "adam (validation)"]
    assert plots.figure_problems(fig) == []


def test_plot_history_of_one_epoch_shows_each_runs_validation_accuracy_as_a_bar():
    runs = {"Post-LN": _history([2.3, 2.0], [0.4], [0.35]), "Pre-LN": _history([2.3, 1.5], [0.6], [0.55]),
            "diverged": _history([1e6], [], stop_step=2)}
    fig = plots.plot_history(runs, validation_label="test")
    ax_acc = fig.axes[1]
    assert [bar.get_width() for bar in ax_acc.patches] == [0.35, 0.55]
    assert [t.get_text() for t in ax_acc.get_yticklabels()] == ["Post-LN", "Pre-LN", "diverged"]
    assert ax_acc.get_xlabel() == "test accuracy after the epoch"
    assert "no accuracy (stopped in its first epoch)" in [t.get_text() for t in ax_acc.texts]
    assert plots.figure_problems(fig) == []
    tested = plots.plot_history(runs, test_accuracy={"Post-LN": 0.3, "Pre-LN": 0.5, "diverged": 0.1})
    assert [bar.get_width() for bar in tested.axes[1].patches] == [0.3, 0.5, 0.1]
    assert tested.axes[1].get_xlabel() == "test accuracy after training"
    with pytest.raises(ValueError, match="test_accuracy="):
        plots.plot_history(runs, test_accuracy={"Post-LN": 0.3})


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
        assert ax_loss.get_ylim()[1] < 1e6          # the diverged run is cut off, with a word label
        assert any("g = 2: off the scale from step 1" in text.get_text() for text in ax_loss.texts)
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


@pytest.mark.parametrize("histories", ["loss", [1.0, 2.0], {"a": None}])
def test_plot_history_rejects_non_histories(histories):
    with pytest.raises(ValueError, match="histories must be a History"):
        plots.plot_history(histories)


def _regression_history(val, loss=(0.3, 0.2, 0.1), stop_step=None):
    history = History(loss=list(loss), val_loss=list(val), train_loss=list(val))
    history.stop_step = stop_step
    return history


def test_plot_regression_history_takes_a_history_without_training_mse():
    history = History(loss=[0.3, 0.2], val_loss=[0.25, 0.2])   # fit(loss_fn="mse", score_training_set=False)
    fig = plots.plot_regression_history(history)
    assert fig.axes[1].get_ylabel() == "validation MSE"
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [0.25, 0.2]


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
