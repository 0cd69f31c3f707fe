"""Keep the notebooks' Colab setup cell and the README's Colab and Binder badges in step with the
one place that names the course's public repository: ``[project.urls] Repository`` in pyproject.toml.

    python tools/colab_setup.py            # write the setup cell into every notebook and the badges into README.md
    python tools/colab_setup.py --check    # exit 1, saying what differs, when anything is out of step

The setup cell is every notebook's first code cell, the same text everywhere, shown collapsed: its
first line is a Colab form title (``#@title ...``, with cell metadata ``"cellView": "form"``, so
Colab shows the title and hides the code) and JupyterLab hides its source (metadata
``"jupyter": {"source_hidden": true}``) and shows that first line. On Google Colab it installs
gradcourse from the repository when it is not importable (pip keeps Colab's own torch, ipywidgets
and IPython, since gradcourse asks only for lower bounds that they meet) and enables Colab's custom
widget manager when the installed ipywidgets is 8 or later (Colab renders ipywidgets 7 natively).
Colab shows nothing of a subprocess's output, so the cell captures pip's (without pip's notice of
a newer pip): when the install fails it prints the lines that give the cause (pip's summary
``× ...``, git's ``fatal:`` and ``remote:``, pip's ``ERROR:``; pip 24, Colab's, puts git's lines in
a first block and ends with "See above for output.") and one hint: GitHub could not be reached
(when PyPI can), the runtime has no internet connection, or the repository cannot be read. Then it
raises a one-line RuntimeError, which also stops "Run all" before the next cell fails with a
puzzling ModuleNotFoundError. In JupyterLab and on Binder it does nothing visible.

Only the setup cell is written: every other cell of a notebook is kept byte for byte (the notebook
is read and written as JSON with one-space indents, as nbformat and the course's editing scripts
write it).

Until pyproject.toml names the repository there is nothing to install from and nothing to link
to, so the notebooks carry no setup cell and the README no badges; ``--check`` then verifies exactly
that. tests/course/test_colab_setup.py runs the check and executes the cell as Colab would.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"
TITLE = "Colab setup: run this cell first (in JupyterLab and on Binder it does nothing)"
MARKER = f"#@title {TITLE}"
CELL_ID = "colab-setup"
CELL_METADATA = {"cellView": "form", "jupyter": {"source_hidden": True}}
"""Colab shows a ``cellView: form`` cell as its ``#@title`` with the code hidden; JupyterLab hides a
``source_hidden`` cell's code and shows its first line."""
BADGES_START = "<!-- Colab and Binder badges: written by tools/colab_setup.py from pyproject.toml's [project.urls] -->"
BADGES_END = "<!-- end of badges -->"
BADGES_AFTER = "## The notebooks\n\n"
GITHUB = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?")

SETUP_CELL = r'''__MARKER__
import sys

if "google.colab" in sys.modules:
    import importlib.util
    import os
    import socket
    import subprocess

    url = "__URL__"
    pip = None
    if importlib.util.find_spec("gradcourse") is None:
        requirement = f"gradcourse @ git+{url}@__BRANCH__"
        print(f"Installing {requirement} (once per Colab session, about 15 s)")
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", requirement],
                             capture_output=True, text=True,
                             env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        importlib.invalidate_caches()
    if pip and pip.returncode != 0:
        # the cause, each line once: pip's summary (×), git's and pip's errors
        said = [line.strip() for line in (pip.stdout + pip.stderr).splitlines()]
        signs = ("×", "fatal:", "remote:", "ERROR:")
        cause = "\n".join(dict.fromkeys(s for s in said if s.startswith(signs)))
        print(cause)
        # and one hint, the most telling that applies
        hint = "pip could not install it (its error is above)"
        if "fatal:" in cause:
            hint = f"{url} could not be read: does it exist, is it public?"
        if "Could not resolve host" in cause or "Failed to connect" in cause:
            hint = "GitHub could not be reached (github.com); PyPI can: try again later"
        try:
            socket.getaddrinfo("pypi.org", 443)
        except OSError:
            hint = "no internet connection: connect this runtime, then rerun this cell"
        raise RuntimeError(f"gradcourse was not installed: {hint}") from None
    import ipywidgets

    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        from google.colab import output

        output.enable_custom_widget_manager()'''
"""The cell's source, with __MARKER__, __URL__ and __BRANCH__ to fill in. Every line fits in 88
characters, and it has at most 35 lines of code (blank and comment lines not counted), as every
code cell of the course."""


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
    return SETUP_CELL.replace("__MARKER__", MARKER).replace("__URL__", url).replace("__BRANCH__", BRANCH)


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


def _is_setup_cell(cell):
    source = "".join(cell.get("source", ""))
    return cell["cell_type"] == "code" and (cell.get("id") == CELL_ID or source.startswith(MARKER))


def _setup_cell_json(source):
    """The cell as nbformat writes it (keys sorted, the source one string per line)."""
    return {"cell_type": "code", "execution_count": None, "id": CELL_ID, "metadata": CELL_METADATA,
            "outputs": [], "source": source.splitlines(keepends=True)}


def _notebook_with(text, source):
    """A notebook's JSON text with its setup cell replaced by one of ``source`` (removed when None),
    inserted before the first code cell; every other cell and the notebook's metadata as they were."""
    notebook = json.loads(text)
    cells = [cell for cell in notebook["cells"] if not _is_setup_cell(cell)]
    if source is not None:
        cells.insert(_first_code_index(cells), _setup_cell_json(source))
    notebook["cells"] = cells
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _first_code_index(cells):
    return next((i for i, cell in enumerate(cells) if cell["cell_type"] == "code"), len(cells))


def _readme_with(readme, block):
    """README text with the badge block replaced by ``block`` (removed when None)."""
    pattern = re.compile(re.escape(BADGES_START) + r".*?" + re.escape(BADGES_END) + r"\n\n", re.S)
    readme = pattern.sub("", readme)
    if block is None:
        return readme
    if BADGES_AFTER not in readme:
        raise ValueError(f"README.md has no {BADGES_AFTER.strip()!r} heading to put the badges under")
    return readme.replace(BADGES_AFTER, BADGES_AFTER + block + "\n\n", 1)


def _rewrites(root):
    """``{path: function}``: for every notebook and README.md, the function that turns its text into
    what it should be."""
    found = repository(root)
    paths = _notebooks(root)
    source = setup_cell(*found) if found else None
    block = badges(*found, [p.relative_to(root).as_posix() for p in paths]) if found else None
    result = {path: lambda text: _notebook_with(text, source) for path in paths}
    result[Path(root, "README.md")] = lambda text: _readme_with(text, block)
    return result


def expected(root=ROOT):
    """``{path: text}``: what every notebook and README.md should contain."""
    return {path: rewrite(path.read_text()) for path, rewrite in _rewrites(root).items()}


def differences(root=ROOT):
    """Paths (relative to ``root``) whose content differs from :func:`expected`."""
    return [path.relative_to(root).as_posix() for path, text in expected(root).items() if path.read_text() != text]


def write(root=ROOT):
    """Bring every notebook and README.md in step; returns the paths it changed. Each file is read
    just before it is written, so that an edit saved meanwhile by another program is kept."""
    changed = []
    for path, rewrite in _rewrites(root).items():
        text = path.read_text()
        new = rewrite(text)
        if new != text:
            path.write_text(new)
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
