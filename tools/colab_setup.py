"""Keep the notebooks' Colab setup cell and the README's Colab and Binder badges in step with the
one place that names the course's public repository: ``[project.urls] Repository`` in pyproject.toml.

    python tools/colab_setup.py            # write the setup cell into every notebook and the badges into README.md
    python tools/colab_setup.py --check    # exit 1, saying what differs, when anything is out of step

The setup cell is every notebook's first code cell, the same text everywhere. On Google Colab it
installs gradcourse from the repository when ``import gradcourse`` fails (pip keeps Colab's own
torch, ipywidgets and IPython, since gradcourse asks only for lower bounds that they meet) and
enables Colab's custom widget manager when the installed ipywidgets is 8 or later (Colab renders
ipywidgets 7 natively). Colab shows nothing of a subprocess's output, so the cell captures pip's:
when the install fails it prints pip's last lines and one hint (the runtime has no internet
connection, or the repository cannot be read) and raises a one-line RuntimeError, which also stops
"Run all" before the next cell fails with a puzzling ModuleNotFoundError. In JupyterLab and on
Binder it does nothing visible.

Until pyproject.toml names the repository there is nothing to install from and nothing to link
to, so the notebooks carry no setup cell and the README no badges; ``--check`` then verifies exactly
that. tests/course/test_colab_setup.py runs the check and executes the cell as Colab would.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"
MARKER = "# Google Colab setup: installs gradcourse there; in JupyterLab and on Binder it does nothing."
BADGES_START = "<!-- Colab and Binder badges: written by tools/colab_setup.py from pyproject.toml's [project.urls] -->"
BADGES_END = "<!-- end of badges -->"
BADGES_AFTER = "## The notebooks\n\n"
PIP_TAIL_LINES = 8
"""How many of pip's last lines the cell prints when the install fails (Colab shows none of a
subprocess's output by itself)."""
GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?")

SETUP_CELL = '''{marker}
import sys

if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    try:
        import gradcourse  # noqa: F401
    except ImportError:
        requirement = "{requirement}"
        print(f"Installing {{requirement}} (once per Colab session, about 15 s)")
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                             capture_output=True, text=True, env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})
        if pip.returncode != 0:
            said = (pip.stdout + pip.stderr).rstrip()
            print("\\n".join(said.splitlines()[-{tail_lines}:]))
            offline = any(sign in said for sign in ("Could not resolve host", "name resolution", "Failed to connect",
                                                    "Network is unreachable", "new connection"))
            hint = ("this runtime has no internet connection: connect it, then run this cell again" if offline
                    else "{repository_url} (branch {branch}) could not be read: check that it exists and is public")
            raise RuntimeError(f"gradcourse was not installed: {{hint}}") from None
        importlib.invalidate_caches()
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        from google.colab import output

        output.enable_custom_widget_manager()'''


def repository(root=ROOT):
    """``(owner, name)`` of the GitHub repository in pyproject's ``[project.urls] Repository``,
    or None when pyproject.toml names none."""
    project = tomllib.loads((Path(root) / "pyproject.toml").read_text())["project"]
    url = project.get("urls", {}).get("Repository")
    if url is None:
        return None
    match = GITHUB.fullmatch(url)
    if match is None:
        raise ValueError(f"[project.urls] Repository={url!r} is not allowed; it must be a GitHub repository's "
                         "address, https://github.com/OWNER/NAME (Colab opens notebooks from GitHub)")
    return match.groups()


def setup_cell(owner, name):
    """The source of every notebook's first code cell."""
    url = f"https://github.com/{owner}/{name}"
    return SETUP_CELL.format(marker=MARKER, requirement=f"gradcourse @ git+{url}@{BRANCH}", repository_url=url,
                             branch=BRANCH, tail_lines=PIP_TAIL_LINES)


def colab_url(owner, name, notebook):
    """Where Colab opens ``notebook`` (a path inside the repository) from GitHub."""
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/{notebook}"


def binder_url(owner, name, notebook):
    """Where Binder builds the repository and opens ``notebook`` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{owner}/{name}/{BRANCH}?urlpath=lab/tree/{notebook}"


def badges(owner, name, notebooks):
    """The README's block: one Binder badge for the course, one Colab badge per notebook."""
    first = notebooks[0]
    lines = [BADGES_START,
             f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder_url(owner, name, first)})", "",
             "Open a notebook in Colab:", ""]
    lines += [f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
              f"({colab_url(owner, name, notebook)}) `{Path(notebook).stem}`  " for notebook in notebooks]
    lines[-1] = lines[-1].rstrip()
    return "\n".join(lines + [BADGES_END])


def _notebooks(root):
    return sorted(Path(root, "notebooks").glob("*.ipynb"))


def _without_setup_cell(notebook):
    return [cell for cell in notebook.cells if not (cell.cell_type == "code" and cell.source.startswith(MARKER))]


def _first_code_index(cells):
    return next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))


def _readme_with(readme, block):
    """README text with the badge block replaced by ``block`` (removed when None)."""
    pattern = re.compile(re.escape(BADGES_START) + r".*?" + re.escape(BADGES_END) + r"\n\n", re.S)
    readme = pattern.sub("", readme)
    if block is None:
        return readme
    if BADGES_AFTER not in readme:
        raise ValueError(f"README.md has no {BADGES_AFTER.strip()!r} heading to put the badges under")
    return readme.replace(BADGES_AFTER, BADGES_AFTER + block + "\n\n", 1)


def expected(root=ROOT):
    """``{path: text}``: what every notebook and README.md should contain."""
    found = repository(root)
    paths = _notebooks(root)
    result = {}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        cells = _without_setup_cell(notebook)
        if found:
            cell = nbformat.v4.new_code_cell(setup_cell(*found))
            cell["id"] = "colab-setup"          # a fixed id, so that writing twice changes nothing
            cells.insert(_first_code_index(cells), cell)
        notebook.cells = cells
        result[path] = nbformat.writes(notebook) + "\n"
    readme = Path(root, "README.md")
    block = badges(*found, [p.relative_to(root).as_posix() for p in paths]) if found else None
    result[readme] = _readme_with(readme.read_text(), block)
    return result


def differences(root=ROOT):
    """Paths (relative to ``root``) whose content differs from :func:`expected`."""
    return [path.relative_to(root).as_posix() for path, text in expected(root).items() if path.read_text() != text]


def write(root=ROOT):
    """Bring every notebook and README.md in step; returns the paths it changed."""
    changed = []
    for path, text in expected(root).items():
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path.relative_to(root).as_posix())
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when something is out of step")
    args = parser.parse_args(argv)
    found = repository()
    source = f"https://github.com/{found[0]}/{found[1]}" if found else "no repository in pyproject.toml's [project.urls]"
    if args.check:
        stale = differences()
        print(f"{source}: " + (f"out of step: {', '.join(stale)}" if stale else "notebooks and README in step"))
        return 1 if stale else 0
    changed = write()
    print(f"{source}: " + (f"wrote {', '.join(changed)}" if changed else "nothing to change"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
