"""gradcourse.display.plots.cliff: Pascanu et al.'s cliff, its section and gradient descent on it."""

import pytest
import torch

from gradcourse.lessons import cliff
from gradcourse.display import plots

pytestmark = pytest.mark.usefixtures("no_figure_left_open")


@pytest.fixture(scope="module")
def surface():
    return cliff.cliff_surface((3.0, 7.0), (-4.0, -1.0), points=31)


def test_plot_cliff_surface_draws_the_loss_and_the_wall(surface):
    fig = plots.plot_cliff_surface(surface)
    ax = fig.axes[0]
    (wall,) = ax.get_lines()
    w = wall.get_xdata()
    assert w[0] == pytest.approx(1 / (0.6224593 * (1 - 0.6224593)), rel=1e-5)  # where w sigma'(x0) = 1
    assert wall.get_ydata()[-1] == pytest.approx(cliff.cliff_wall(w[-1]))
    assert ax.get_xlim() == (3.0, 7.0)


def test_plot_cliff_section_and_descent(surface):
    fig = plots.plot_cliff_section(cliff.cliff_slice(6.0, points=20))
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    starts = cliff.start_grid((3.0, 7.0), (-4.0, -1.0), 3)
    runs = {"free": cliff.cliff_descent(starts, 0.05, 20), "clipped": cliff.cliff_descent(starts, 0.05, 20, 10.0)}
    fig = plots.plot_cliff_descent(surface, runs, huge_step=1.0)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title().startswith("clipped: 0 of 9 runs")
    assert len(fig.axes[0].get_lines()) == 9 + 1  # one path per run and the start dots


@pytest.mark.parametrize("call, match", [
    (lambda s: plots.plot_cliff_surface("s"), "surface='s'"),
    (lambda s: plots.plot_cliff_section(s), "section="),
    (lambda s: plots.plot_cliff_descent(s, {}), "runs={}"),
    (lambda s: plots.plot_cliff_descent(s, {"a": cliff.cliff_descent(torch.ones(1, 2), 0.1, 1)}, huge_step=0),
     "huge_step=0"),
])
def test_cliff_plots_reject_bad_input(surface, call, match):
    with pytest.raises(ValueError, match=match):
        call(surface)
