"""gradcourse.display.figures: each figure computed from plain arguments and drawn, without a widget."""

import io
import math
import warnings

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse import MLP, layer_gradient_norms
from gradcourse.display import figures, widgets
from gradcourse.core.data import adding_problem
from gradcourse.core.models import SequenceRegressor
from gradcourse.lessons.sequences import timestep_gradient_norms

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


def test_gradient_flow_figure_plots_the_measured_norms_and_bound(Xy):
    fig = figures.gradient_flow_figure(*Xy, depth=6, activation="sigmoid", width=16, seed=3)
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
        figures.gradient_flow_figure(*Xy, **kwargs)


def test_gradient_flow_figure_rejects_bad_data(Xy):
    with pytest.raises(ValueError, match=r"X=\[\[0\.0\]\]"):
        figures.gradient_flow_figure([[0.0]], Xy[1][:1])


def test_chain_figure_plots_the_autograd_gradients_and_bound():
    fig = figures.chain_figure(depth=5, weight=2.0, bias=0.5, activation="sigmoid")
    assert isinstance(fig, Figure)
    chain = gradcourse.lessons.theory.scalar_chain(5, 2.0, 0.5, x0=1.0, activation="sigmoid")
    measured, bound = fig.axes[0].get_lines()
    assert list(measured.get_ydata()) == pytest.approx([abs(g) for g in chain.gradients])
    assert list(bound.get_ydata()) == pytest.approx([(0.25 * 2.0) ** (5 - l) for l in range(5)])


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


def test_residual_figure_shows_loss_and_first_step_gradients(Xy):
    fig = figures.residual_figure(*Xy, depth=4, residual="pre", width=8, epochs=1, batch_size=32)
    assert "4 layers, pre-activation" in fig._suptitle.get_text()
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == 4
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == 2


def test_normalization_figure_names_the_norm(Xy):
    fig = figures.normalization_figure(*Xy, norm="layer", depth=2, width=8, epochs=1, batch_size=32)
    assert "norm=layer" in fig._suptitle.get_text()
    assert len(fig.axes[1].get_lines()[0].get_ydata()) == 2


def test_optimizer_figure_shows_update_ratios_with_the_rule_of_thumb(Xy):
    fig = figures.optimizer_figure(*Xy, "rmsprop", 1e-3, epochs=1, batch_size=32, width=8, depth=3)
    assert "rmsprop, lr=0.001" in fig._suptitle.get_text()
    lines = fig.axes[1].get_lines()
    assert len(lines[0].get_ydata()) == 3 and lines[-1].get_ydata()[0] == 1e-3


def test_clipping_figure_counts_the_share():
    fig = figures.clipping_figure([0.1, 0.2, 5.0, 0.15], 1.0)
    assert "25% of 4 steps" in fig._suptitle.get_text()


def test_timestep_gradient_figure_plots_a_fresh_network():
    fig = figures.timestep_gradient_figure(length=12, cell="gru", width=8, batch_size=16, seed=2)
    X, y = adding_problem(16, 12, seed=2)
    gradcourse.set_seed(2)
    expected = timestep_gradient_norms(SequenceRegressor("gru", 8), X, y)
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == pytest.approx(expected, rel=1e-6)
    assert "gru, T = 12" in fig.axes[0].get_title()


def test_residual_figure_trains_the_chosen_activation(Xy, monkeypatch):

    seen = {}
    real = figures.train_mlp

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(figures, "train_mlp", recording)
    fig = figures.residual_figure(*Xy, depth=3, residual=True, width=8, epochs=1, batch_size=32, activation="tanh")
    assert seen["activation"] == "tanh"
    assert fig._suptitle.get_text().startswith("3 layers, residual, tanh, norm=batch")


def test_precision_figure_and_explorer():
    grads = [torch.full((10,), 1e-9), torch.full((10,), 1e-3)]
    fig = figures.precision_figure(grads, log2_scale=0)
    assert isinstance(fig, Figure)
    flushed_line = fig.axes[0].get_lines()[0]
    assert list(flushed_line.get_ydata()) == [1.0, 0.0]
    assert widgets.precision_explorer(grads).__class__.__name__ == "VBox"


def test_precision_figure_and_explorer_reject_bad_arguments(raises_bad):
    with raises_bad("log2_scale", 41):
        figures.precision_figure([torch.ones(2)], log2_scale=41)
    with pytest.raises(ValueError, match="gradients"):
        widgets.precision_explorer([])


def test_activation_curves_figure_draws_each_function_and_its_derivative():
    fig = figures.activation_curves_figure(("sigmoid", "relu"), low=-2.0, high=2.0)
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
def test_activation_curves_figure_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        figures.activation_curves_figure(**kwargs)


def test_the_activation_figure_of_all_zero_inputs_draws(Xy):
    X, y = Xy
    fig = figures.activation_figure(torch.zeros_like(X), y, depth=3, width=8)   # every gradient 0: ratio nan
    assert "nan" in fig.axes[1].get_title()


def _drawn_without_warnings(make):
    """Build a figure and render it with every warning an error (matplotlib warns where a log axis overflows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = make()
        fig.savefig(io.BytesIO(), format="png")
    return fig


def test_recurrent_figure_draws_values_up_to_float64s_largest():
    fig = _drawn_without_warnings(lambda: figures.recurrent_figure(6, steps=1000, width=16))
    ax = fig.axes[0]
    measured, bound = (list(line.get_ydata()) for line in ax.get_lines())
    assert all(0 < v < math.inf for v in measured) and measured[-1] > 1e100      # tanh keeps these in range
    assert bound[395] == pytest.approx(6.0**396) and all(math.isnan(v) for v in bound[396:])   # 6^397 > 1.8e308
    low, high = ax.get_ylim()
    assert 0 < low <= 6.0 and 6.0**396 <= high <= 1.8e308 and ax.get_xlim()[1] >= 1000
    assert "beyond float64's range" in ax.get_title()
    no_input = _drawn_without_warnings(lambda: figures.recurrent_figure(6, steps=1000, width=16, input_scale=0.0))
    assert "at T=1000: inf" in no_input.axes[0].get_title()


def test_chain_figure_draws_values_up_to_float64s_largest():
    fig = _drawn_without_warnings(lambda: figures.chain_figure(depth=400, weight=8, activation="relu"))
    ax = fig.axes[0]
    measured, bound = (list(line.get_ydata()) for line in ax.get_lines())
    # |dy_L/dy_l| = 8^(400 - l), beyond 1.8e308 for 400 - l >= 342
    assert all(math.isnan(v) for v in measured[:59]) and measured[59] == pytest.approx(8.0**341)
    assert measured[59:] == pytest.approx(bound[59:]) and all(math.isnan(v) for v in bound[:59])
    assert 8.0**341 <= ax.get_ylim()[1] <= 1.8e308 and ax.get_xlim()[0] <= 0
    assert "|dy_L/dy_0| = inf" in ax.get_title() and "beyond float64's range" in ax.get_title()


@pytest.mark.parametrize("activation", list(gradcourse.core.models.ACTIVATIONS))
def test_chain_figure_draws_at_every_corner_of_its_widget_sliders(activation):
    for weight in (-8.0, 8.0):
        for bias in (-4.0, 4.0):
            fig = _drawn_without_warnings(lambda: figures.chain_figure(40, weight, bias, activation))
            assert "beyond float64's range" not in fig.axes[0].get_title()


@pytest.mark.parametrize("sigma_max, activation", [(0.1, "sigmoid"), (0.1, "tanh"), (6.0, "tanh"), (6.0, "sigmoid")])
def test_recurrent_figure_draws_at_the_corners_of_its_widget_sliders(sigma_max, activation):
    fig = _drawn_without_warnings(lambda: figures.recurrent_figure(sigma_max, steps=200, activation=activation))
    assert "beyond float64's range" not in fig.axes[0].get_title()
