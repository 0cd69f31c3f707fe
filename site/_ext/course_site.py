"""What the course's website shows that JupyterLab does not need: a Sphinx extension of site/_config.yml.

The pages are the notebooks themselves. When Sphinx reads a notebook (its ``source-read`` event, before
MyST-NB executes and renders it), this extension changes what it read, in memory only, never the file:

* the Colab setup cell (the code cell that tests ``"google.colab" in sys.modules``, written by
  tools/colab_setup.py) gets the tag ``remove-cell``: it runs, as everywhere, and does not appear;
* each exercise cell (``gc.exercises.check("NN.k", answer)``) keeps its code, loses its output (the
  check needs a kernel: it only says "not answered yet" here) and is followed by the exercise's worked
  solution, from the package (``gradcourse.exercises``), in a collapsed block (sphinx-design's
  dropdown, an HTML ``<details>``);
* each explorer (``gc.widgets.<name>(...)``) is followed by a line that says its controls move in Colab,
  Binder or JupyterLab: the page shows the explorer in the state it was saved in at the build.

A cell that already carries a MyST-NB tag keeps it. Only Markdown cells are added, so the executed
notebooks cached by MyST-NB (keyed on the code cells) stay valid.

For the API reference it adds the directive ``gradcourse-modules``, which documents every public module of
a subpackage (a new module needs no list edited), reads the docstrings in Napoleon's Google style (but a
constant's docstring as prose, and a Returns section without a type), and documents a class's own members
only, not those that matplotlib or torch define. Each notebook page's source link opens the notebook
rendered on GitHub (the theme adds ``?plain=1``, which shows its JSON).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import nbformat
from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util.nodes import nested_parse_with_titles

__all__ = ["CourseDocstring", "EXERCISE", "notebook_for_site", "setup", "WIDGET", "WIDGET_NOTE"]

COLAB_TEST = '"google.colab" in sys.modules'
EXERCISE = re.compile(r'gc\.exercises\.check\(\s*"(\d\d\.\d+)"')
WIDGET = re.compile(r"\bgc\.widgets\.\w+\(")
WIDGET_NOTE = ("This explorer shows the state it was saved in when the site was built: its controls move in "
               "Colab, Binder or JupyterLab (the launch buttons at the top of the page open this notebook there).")
SKIPPED_MODULES = re.compile(r"(^|\.)(_\w+|notebook_\d\d)$")
"""Modules left out of the API reference: private ones, and the exercises' answers (one per notebook)."""


def _tag(cell, tag):
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def _solution_cell(exercise_id):
    from gradcourse.exercises import EXERCISES

    found = EXERCISES[exercise_id]
    text = f"::::{{dropdown}} Worked solution: exercise {found.id}\n{found.solution.strip()}\n::::"
    return nbformat.v4.new_markdown_cell(text, id=f"site-solution-{found.id.replace('.', '-')}")


def notebook_for_site(text):
    """The notebook ``text`` (JSON) as the site shows it: see the module docstring."""
    notebook = nbformat.reads(text, as_version=4)
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        if COLAB_TEST in cell.source:
            _tag(cell, "remove-cell")
        exercise = EXERCISE.search(cell.source)
        if exercise:
            _tag(cell, "remove-output")
            cells.append(_solution_cell(exercise.group(1)))
        if WIDGET.search(cell.source):
            cells.append(nbformat.v4.new_markdown_cell(f":::{{note}}\n{WIDGET_NOTE}\n:::",
                                                       id=f"site-widget-note-{len(cells)}"))
    notebook.cells = cells
    return nbformat.writes(notebook)


def _read_notebook(app, docname, source):
    if app.env.doc2path(docname).endswith(".ipynb"):
        source[0] = notebook_for_site(source[0])


def _notebook_source_link(app, pagename, templatename, context, doctree):
    """GitHub shows a notebook rendered without ``?plain=1``, as JSON with it."""
    for button in context.get("header_buttons", []):
        for inner in button.get("buttons", [button]):
            if inner.get("label") == "source-file-button" and inner["url"].endswith(".ipynb?plain=1"):
                inner["url"] = inner["url"].removesuffix("?plain=1")


class CourseDocstring(GoogleDocstring):
    """Google style as the package writes it: a Returns section is prose, with no type before a colon
    (Napoleon would make ``X`` of "``X``: float32 tensor ...; ``y``: ..." the return type)."""

    def _consume_returns_section(self, preprocess_types=False):
        lines = self._dedent(self._consume_to_next_section())
        return [("", "", self.__class__(lines, self._config).lines())] if lines else []


def _google_sections(app, what, name, obj, options, lines):
    """Napoleon's Google-style sections (Args, Returns, Raises) for functions, classes and modules. A
    constant's, attribute's or property's docstring is prose: Napoleon would read its "MSE of ...: the
    variance of ..." as "type: description"."""
    if what not in ("data", "attribute", "property"):
        lines[:] = CourseDocstring(lines, app.config, app, what, name, obj, options).lines()


def _not_the_packages_own(app, what, name, obj, skip, options):
    """Skip a member that another library defined (a ``matplotlib.figure.Figure`` subclass inherits
    ``set``, whose docstring matplotlib writes in its own reST roles): the reference documents
    ``gradcourse``'s code."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and not module.startswith("gradcourse") and what in ("class", "exception"):
        return True
    return None


class ModulesDirective(Directive):
    """``.. gradcourse-modules:: gradcourse.core``: a section per public module of the package, in name
    order, each with its docstring and the members its ``__all__`` lists (a package's ``__init__`` with
    its docstring only: what it re-exports is documented where it is defined)."""

    required_arguments = 1

    def run(self):
        package = importlib.import_module(self.arguments[0])
        names = [package.__name__] + sorted(
            info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
            if not SKIPPED_MODULES.search(info.name))
        lines = []
        for name in names:
            is_package = hasattr(importlib.import_module(name), "__path__")
            lines += [name, "-" * len(name), "", f".. automodule:: {name}"]
            lines += ["", ""] if is_package else ["   :members:", "", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=f"gradcourse-modules {package.__name__}"),
                                 container)
        return container.children


def _install_nbclient_wake():
    """MyST-NB executes the notebooks through jupyter-cache and nbclient, in this process: give
    nbclient tools/nbclient_wake.py's fix, or an explorer's cell can wait for its timeout."""
    path = Path(__file__).resolve().parents[2] / "tools" / "nbclient_wake.py"
    spec = importlib.util.spec_from_file_location("nbclient_wake", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install()


def setup(app):
    _install_nbclient_wake()
    app.connect("source-read", _read_notebook)
    app.connect("html-page-context", _notebook_source_link, priority=600)
    app.add_directive("gradcourse-modules", ModulesDirective)
    app.setup_extension("sphinx.ext.napoleon")    # its settings; its own pass is off in _config.yml
    app.connect("autodoc-process-docstring", _google_sections)
    app.connect("autodoc-skip-member", _not_the_packages_own)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
