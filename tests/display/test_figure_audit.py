"""What a reader of a figure stumbles on, and how the course keeps its figures clear of it:
gradcourse.display.plots.audit.figure_problems on good and bad figures, the course's look (style.py), the text
alternative every figure is shown with (alt_text.py), and the audit of every figure the notebooks show
(tests/conftest.py runs figure_problems in each nbval kernel and fails the cell that showed a bad figure)."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from gradcourse.display import plots
from gradcourse.display.plots.audit import code_name
from gradcourse.display.plots.style import KNOWN_SERIES, label_log_axes, series_style, series_styles
from helpers import history_of

pytestmark = pytest.mark.usefixtures("no_figure_left_open")

ROOT = Path(__file__).resolve().parents[2]


def _figure(width=6):
    fig, ax = plt.subplots(figsize=(width, 3))
    plt.close(fig)
    return fig, ax


@pytest.mark.parametrize("text", ["act_mean", "update_ratio (log scale)", "1: blocks.0.linear2", "net.0",
                                  "torch.nn.init", "Linear(in_features=4, out_features=2)", "sigma_max", "d_model = 32",
                                  "<gradcourse.MLP object at 0x7f3a2c>"])
def test_code_names_are_found(text):
    assert code_name(text) is not None


@pytest.mark.parametrize("text", ["mean activation", "update / weight", "||dL/dW_l|| (log scale)", "dL/dh_1", "h_l",
                                  "W_hh x 2", "σ_max(W)", r"$\sigma_w^2$ = 1.5", "4 output x0.1", "e.g. layer 3",
                                  "relu, He init", "lr=0.05", "2.5e-3", "block 1 (input side)"])
def test_words_and_math_are_not_code_names(text):
    assert code_name(text) is None


def test_series_told_apart_by_colour_alone_or_not_at_all_are_problems():
    fig, ax = _figure()
    ax.plot([1, 2], [1, 2], color="C0", label="a")
    ax.plot([1, 2], [2, 3], color="C1", label="b")                 # same solid line, other colour
    ax.plot([1, 2], [3, 4], color="C0", label="c")                 # the same look as "a"
    ax.legend()
    problems = plots.figure_problems(fig)
    assert any("'a', 'b' differ by colour alone" in p for p in problems), problems
    assert any("'a', 'c' look the same" in p for p in problems), problems


def test_bars_and_markers_told_apart_by_colour_alone_are_problems():
    fig, ax = _figure()
    ax.bar([1], [2], color="C0", label="first")
    ax.bar([2], [3], color="C1", label="second")
    ax.scatter([1], [1], color="C0", label="dots")
    ax.scatter([2], [2], color="C1", label="more dots")
    problems = plots.figure_problems(fig)
    assert any("'first', 'second' differ by colour alone" in p for p in problems), problems
    assert any("'dots', 'more dots' differ by colour alone" in p for p in problems), problems


def test_a_clear_figure_has_no_problems():
    fig, ax = _figure()
    for i, label in enumerate(["sigmoid", "tanh", "ReLU, He init"]):
        ax.plot([1, 2, 3], [i, i + 1, i], label=label, **series_style(i))
    ax.bar([4], [1], color="grey", hatch="//", label="a bar")
    ax.bar([5], [1], color="black", label="another bar")             # told apart by its hatch
    ax.set(xlabel="layer (1 = input side)", ylabel="mean activation", title="three networks")
    ax.legend(fontsize=10)
    ax.tick_params(labelsize=10)
    assert plots.figure_problems(fig) == []


def test_code_names_in_any_text_a_reader_reads_are_problems():
    fig, ax = _figure()
    image = ax.imshow([[0, 1], [1, 0]])
    fig.colorbar(image, ax=ax, label="grad_norm")
    ax.set_title("blocks.0.linear2")
    ax.set_xticks([0, 1], ["net.0", "net.1"])
    ax.plot([0, 1], [0, 1], label="act_mean")
    ax.legend()
    fig.suptitle("Linear(in_features=4, out_features=2)")
    problems = "\n".join(plots.figure_problems(fig))
    for name in ("grad_norm", "blocks.0.linear2", "net.0", "act_mean", "in_features"):
        assert f"code name {name!r}" in problems, problems


def test_text_too_small_as_displayed_is_a_problem():
    fig, ax = _figure(width=6)
    ax.set_xlabel("step", fontsize=8)
    assert "below 10 pt" in "\n".join(plots.figure_problems(fig))
    wide, ax = _figure(width=16)                   # cropped to about 13 in, shown at 11/13 of its size
    ax.set_xlabel("step", fontsize=11)
    ax.tick_params(labelsize=11)
    shown = re.search(r"shown at (\d+)%", "\n".join(plots.figure_problems(wide)))
    assert shown and int(shown.group(1)) < 90


def test_known_series_keep_one_look_in_every_figure_and_others_take_the_free_ones():
    alone = series_styles(["ReLU, He init"])
    together = series_styles(["sigmoid", "tanh", "relu", "relu, He init"])
    assert alone["ReLU, He init"] == together["relu, He init"] == series_style(3)
    mixed = series_styles(["mine", "sigmoid", "yours"])
    assert mixed["sigmoid"] == series_style(0) and mixed["mine"] == series_style(1) and mixed["yours"] == series_style(2)
    assert series_styles(["tanh"], styles={"tanh": {"color": "k"}})["tanh"]["color"] == "k"
    looks = {(s["marker"], s["linestyle"]) for s in (series_style(i) for i in range(32))}
    assert len(looks) == 32
    assert all(len(names) == len(set(names)) for names in KNOWN_SERIES.values())


def test_short_log_axes_get_at_least_three_labelled_ticks():
    fig, (left, right) = plt.subplots(1, 2)
    plt.close(fig)
    left.plot([1, 2], [2.1, 3.4])
    right.plot([1, 2], [0.75, 1.67])
    for ax in (left, right):
        ax.set_yscale("log")
    label_log_axes(fig)
    fig.draw_without_rendering()
    for ax in (left, right):
        low, high = ax.get_ylim()
        shown = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if low <= v <= high]
        assert len([s for s in shown if s]) >= 3, shown
    assert "1.5" in [t.get_text() for t in right.get_yticklabels()]


def test_every_course_figure_is_shown_with_a_text_alternative():
    fig = plots.plot_history({"Post-LN": history_of([2.3, 2.0, 1.9], [0.3, 0.4]),
                              "Pre-LN": history_of([2.3, 1.5, 1.2], [0.5, 0.6])}, title="two placements")
    assert isinstance(fig, plots.CourseFigure) and len(fig.axes) == 2      # a matplotlib Figure still
    alt = plots.describe_figure(fig)
    assert alt.startswith("Figure: two placements. Panel 1 of 2: training loss (log scale) against step; 2 series: "
                          "Post-LN; Pre-LN.")
    assert "Panel 2 of 2: accuracy against epoch" in alt
    html = fig._repr_html_()
    assert html.startswith('<img src="data:image/png;base64,') and f'alt="{alt}"' in html
    png = base64.b64decode(html.split("base64,")[1].split('"')[0])
    assert png.startswith(b"\x89PNG")
    fig.alt_text = "written by hand"
    assert 'alt="written by hand"' in fig._repr_html_()


def test_a_notebook_gets_the_png_once_as_image_and_once_in_the_html(monkeypatch):
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    shell = SimpleNamespace(display_formatter=DisplayFormatter())     # what IPython formats a cell's value with
    shell.display_formatter.formatters["image/png"].for_type(plt.Figure, lambda fig: b"another rendering")  # as inline does
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    fig = plots.plot_per_layer({"measured": [1.0, 0.5]}, "gradient norm")
    renders = []
    render = type(fig)._png
    monkeypatch.setattr(type(fig), "_png", lambda self: renders.append(1) or render(self))
    data, _ = shell.display_formatter.format(fig)
    assert len(renders) == 1 and data["image/png"] in data["text/html"]
    assert 'alt="Figure. The plot: ' in data["text/html"]
    assert shell.display_formatter.format(fig, include=["image/png"])[0].keys() == {"image/png"}


def test_math_in_titles_reads_as_plain_text():
    fig = plots.plot_per_layer({"measured": [1.0, 0.5]}, r"$\sigma_w^2$ per layer")
    assert "σ_w^2 per layer (log scale) against layer (1 = input side)" in plots.describe_figure(fig)


BAD_NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import gradcourse as gc\ngc.plots.plot_log_lines([1, 2], {'a': [1, 2], 'b': [2, 3]}, 'step', "
                   "'mean activation')"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2], label='a')\n"
                   "ax.plot([2, 1], label='b')\nax.set_ylabel('act_mean')\nax.legend()\nplt.close(fig)\nfig"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_the_notebook_audit_fails_the_cell_that_shows_a_bad_figure(tmp_path):
    notebook = tmp_path / "scratch.ipynb"
    notebook.write_text(json.dumps(BAD_NOTEBOOK))
    anchor = ROOT / "tests" / "display" / "plots" / "test_common.py"     # loads tests/conftest.py, which hooks nbval
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
                          f"{anchor}::test_plots_reject_bad_styles", str(notebook)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "1 failed" in run.stdout, run.stdout[-3000:]
    assert "::Cell 1" in run.stdout and "::Cell 0 _" not in run.stdout
    assert "'a', 'b' differ by colour alone" in run.stdout and "code name 'act_mean'" in run.stdout
