"""The path through the course: from 00, each notebook's "Next" link leads to the next one, through
every notebook in `notebooks/`, and 00's course map and the README's table list every notebook."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
NEXT_LINK = re.compile(r"\*\*Next:\*\*[^\n]*?\]\(([^)\s]+\.ipynb)\)")


def markdown(name):
    cells = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
    return "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")


def next_link(name):
    """The notebook the last cell's "**Next:**" line links to first."""
    last = nbformat.read(ROOT / "notebooks" / name, as_version=4).cells[-1]
    found = NEXT_LINK.search(last.source)
    return found.group(1) if found else None


def test_next_links_walk_the_whole_course_in_order():
    walked, here = [], NOTEBOOKS[0]
    while here not in walked:
        assert here in NOTEBOOKS, f"{walked[-1]}'s Next link points to {here}, which is not a notebook"
        walked.append(here)
        here = next_link(here)
        assert here is not None, f"{walked[-1]} ends without a '**Next:**' link"
    assert walked == NOTEBOOKS, f"the Next links walk {walked}"
    assert here == NOTEBOOKS[0], f"the last notebook's Next link should lead back to {NOTEBOOKS[0]}, not {here}"


def test_the_course_map_and_the_readme_list_every_notebook():
    course_map = markdown(NOTEBOOKS[0])
    readme = (ROOT / "README.md").read_text()
    for name in NOTEBOOKS[1:]:
        assert f"]({name})" in course_map, f"00's course map does not link {name}"
        assert f"](notebooks/{name})" in readme, f"the README's table does not link {name}"
