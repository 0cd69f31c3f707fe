"""Notebooks a learner can read at 1280 px: every line of notebook code fits in
88 characters, so none runs off the right edge, and no code cell is a wall of more than
``MAX_CELL_LINES`` lines of code, so a check-yourself cell reads as a few groups of sentences.

Blank lines and comment lines do not count towards a cell's length: they separate and name the
groups of a cell and make it easier to read, not harder. A failure names the notebook, the cell (its
index in the notebook, counting from 0, markdown cells included) and the line (counting from 1).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))

MAX_LINE = 88
"""Characters per line of notebook code: black's default, and what fits at 1280 px."""

MAX_CELL_LINES = 35
"""Lines of code per code cell, blank lines and comment lines not counted."""


def code_cells(name):
    """(index, lines) of every code cell of notebook ``name``, the Colab setup cell included."""
    cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            yield index, cell.source.splitlines()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_code_line_fits_in_88_characters(name):
    too_long = [
        f"{name} cell {index} line {number}: {len(line)} characters: {line.strip()[:60]}"
        for index, lines in code_cells(name)
        for number, line in enumerate(lines, start=1)
        if len(line) > MAX_LINE
    ]
    assert not too_long, f"code lines over {MAX_LINE} characters:\n" + "\n".join(too_long)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_code_cell_is_a_wall(name):
    walls = []
    for index, lines in code_cells(name):
        code = [
            number
            for number, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if len(code) > MAX_CELL_LINES:
            walls.append(
                f"{name} cell {index}: {len(code)} lines of code; "
                f"line {code[MAX_CELL_LINES]} is the first beyond {MAX_CELL_LINES}"
            )
    assert not walls, "code cells too long to read as one:\n" + "\n".join(walls)


def test_the_checks_see_every_notebook():
    assert len(NOTEBOOKS) >= 18, NOTEBOOKS
    for name in NOTEBOOKS:
        assert list(code_cells(name)), f"{name} has no code cell"
