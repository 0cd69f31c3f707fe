"""gradcourse.display.plots.common: what every figure shares: one style per run in every figure, styles checked,
no figure left open by a figure function that fails."""

import matplotlib.pyplot as plt
import pytest
import torch

from gradcourse.display import plots
from helpers import history_of as _history

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_styles_give_each_run_the_same_look_in_every_figure():
    from matplotlib.colors import to_hex

    styles = {"plain": {"color": "C3", "linestyle": "--"}, "residual": {"color": "C0"}, "not drawn": {"color": "k"}}
    figures = [plots.plot_log_lines([1, 2], {"residual": [2, 3], "plain": [1, 2]}, "x", "y", styles=styles),
               plots.plot_per_layer({"residual": [2.0], "plain": [1.0, 2.0]}, "y", styles=styles),
               plots.plot_gradient_flow({"residual": [2, 3], "plain": [1, 2]}, styles=styles)]
    history = plots.plot_history({"residual": _history([2.0, 1.0], [0.5, 0.6]),
                                  "plain": _history([2.0, 1.5], [0.3, 0.4], [0.2, 0.3])}, styles=styles)
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


@pytest.mark.parametrize("styles", ["C0", {"plain": "C0"}, [("plain", {})]])
def test_plots_reject_bad_styles(styles):
    with pytest.raises(ValueError, match="styles="):
        plots.plot_log_lines([1], {"plain": [1]}, "x", "y", styles=styles)
    with pytest.raises(ValueError, match="styles="):
        plots.plot_history(_history([1.0], [0.5]), styles=styles)


def test_a_figure_function_that_fails_leaves_no_figure_open(raises_bad):
    from gradcourse.core.train import History

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
