"""gradcourse.display.plots.monitoring: a GradientMonitor's statistics at one step and over the steps, its
histograms, quantiles over the steps."""

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import MLP, GradientMonitor
from gradcourse.display import plots

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


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


def test_statistic_over_steps_draws_the_reference_line_and_names_in_words(histogram_monitor, raises_bad):
    fig = plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference=1e-3)
    reference = [line for line in fig.axes[0].get_lines() if line.get_label() == "0.001"]
    assert len(reference) == 1 and list(reference[0].get_ydata()) == [1e-3, 1e-3]
    assert fig.axes[0].get_ylabel() == "update / weight, ||ΔW|| / ||W|| (log scale)"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][0] == "layer 1 (input side)"
    assert plots.figure_problems(fig) == []
    with pytest.raises(ValueError, match="reference="):
        plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference="1e-3")
    with raises_bad("reference", -1.0):   # a log axis
        plots.plot_statistic_over_steps(histogram_monitor, "update_ratio", reference=-1.0)
    plt.close(plots.plot_statistic_over_steps(histogram_monitor, "act_mean", reference=-0.5))   # a linear one


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
