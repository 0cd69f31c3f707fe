"""gradcourse.display.plots.plot_layer_means_during_training: each layer's mean activation over the steps the
monitor recorded, beside the run's loss per step (Glorot & Bengio's Figure 2)."""

import math

import matplotlib.pyplot as plt
import pytest

import gradcourse
from gradcourse import MLP, GradientMonitor
from gradcourse.display import plots

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


@pytest.fixture
def sigmoid_run(mnist_small):
    gradcourse.set_seed(0)
    model = MLP(width=16, depth=3, activation="sigmoid")
    monitor = GradientMonitor(model, every=3)
    history = gradcourse.fit(model, *mnist_small, epochs=1, batch_size=32, lr=0.5,
                             callbacks=[monitor, gradcourse.ProgressBar(show=False)])
    return monitor, history


def test_one_line_per_layer_at_the_recorded_steps_beside_the_loss(sigmoid_run):
    monitor, history = sigmoid_run
    fig = plots.plot_layer_means_during_training(monitor, history, loss_reference=(math.log(10), "ln 10"), title="t")
    means, losses = fig.axes[0].get_lines(), fig.axes[1].get_lines()
    assert [line.get_label() for line in means] == ["layer 1 (input side)", "layer 2", "layer 3 (top)"]
    recorded = monitor.series("act_mean")
    assert list(means[2].get_xdata()) == [1, 4, 7]                       # 8 steps, every 3rd from the first
    assert list(means[2].get_ydata()) == pytest.approx(recorded[:, 2].tolist())
    assert list(losses[0].get_ydata()) == pytest.approx(history.loss) and len(history.loss) == 8
    assert list(losses[1].get_ydata()) == [math.log(10)] * 2 and losses[1].get_label() == "ln 10"
    assert len({line.get_color() for line in means}) == 3 and len({line.get_marker() for line in means}) == 3
    assert "act_mean" not in fig.axes[0].get_ylabel()


def test_bad_input_is_refused(sigmoid_run, raises_bad):
    monitor, history = sigmoid_run
    with raises_bad("monitor", "monitor"):
        plots.plot_layer_means_during_training("monitor", history)
    with pytest.raises(ValueError, match="history="):
        plots.plot_layer_means_during_training(monitor, [])
    with pytest.raises(ValueError, match="loss_reference="):
        plots.plot_layer_means_during_training(monitor, history, loss_reference=2.3)
    gradcourse.set_seed(0)
    with pytest.raises(ValueError, match="recorded no activation"):
        plots.plot_layer_means_during_training(GradientMonitor(MLP(width=4, depth=2)), history)
    assert not plt.get_fignums()
