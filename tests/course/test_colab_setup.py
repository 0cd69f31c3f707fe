"""tools/colab_setup.py: the notebooks' Colab setup cell and the README's badges come from the one
repository address in pyproject.toml, and the cell does on Colab what it says and nothing elsewhere."""

import importlib.util
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import ipywidgets
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("colab_setup", ROOT / "tools" / "colab_setup.py")
colab_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab_setup)

# A repository address for the tests of the tool itself, written only into temporary copies.
SAMPLE_URL = "https://github.com/sample-owner/sample-course"


def test_the_course_is_in_step_with_pyproject():
    """With a repository in pyproject.toml: every notebook starts with the same setup cell and the
    README has the badges. Without one: no notebook has the cell and the README has no badges."""
    assert colab_setup.differences() == []
    found = colab_setup.repository()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        first_code = next(cell for cell in cells if cell.cell_type == "code")
        if found:
            assert first_code.source == colab_setup.setup_cell(*found), path.name
        else:
            assert not any(cell.source.startswith(colab_setup.MARKER) for cell in cells), path.name
    assert (colab_setup.BADGES_START in (ROOT / "README.md").read_text()) == bool(found)


@pytest.fixture
def course_copy(tmp_path):
    """pyproject.toml, README.md and the notebooks, copied, with SAMPLE_URL as the repository."""
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    pyproject = (ROOT / "pyproject.toml").read_text()
    if colab_setup.repository() is not None:
        pyproject = pyproject.replace(f"https://github.com/{'/'.join(colab_setup.repository())}", SAMPLE_URL)
    elif "[project.urls]\n" in pyproject:
        pyproject = pyproject.replace("[project.urls]\n", f'[project.urls]\nRepository = "{SAMPLE_URL}"\n', 1)
    else:
        pyproject = pyproject.replace("\n[project.optional-dependencies]",
                                      f'\n[project.urls]\nRepository = "{SAMPLE_URL}"\n\n[project.optional-dependencies]', 1)
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def test_write_puts_the_same_cell_first_in_every_notebook(course_copy):
    before = {p.name: nbformat.read(p, as_version=4) for p in (course_copy / "notebooks").glob("*.ipynb")}
    assert colab_setup.repository(course_copy) == ("sample-owner", "sample-course")
    assert len(colab_setup.write(course_copy)) == len(before) + 1          # every notebook and the README
    cell = colab_setup.setup_cell("sample-owner", "sample-course")
    assert '"gradcourse @ git+https://github.com/sample-owner/sample-course@main"' in cell
    for name, old in before.items():
        new = nbformat.read(course_copy / "notebooks" / name, as_version=4)
        nbformat.validate(new)
        first_code = next(i for i, c in enumerate(new.cells) if c.cell_type == "code")
        assert new.cells[first_code].source == cell
        others = [c.source for c in old.cells if not c.source.startswith(colab_setup.MARKER)]
        assert [c.source for c in new.cells[:first_code] + new.cells[first_code + 1:]] == others
        assert new.metadata == old.metadata                                # the kernelspec stays
    assert colab_setup.write(course_copy) == [] and colab_setup.differences(course_copy) == []


def test_write_puts_one_binder_badge_and_a_colab_badge_per_notebook_in_the_readme(course_copy):
    colab_setup.write(course_copy)
    readme = (course_copy / "README.md").read_text()
    assert readme.count("https://mybinder.org/badge_logo.svg") == 1
    assert ("https://mybinder.org/v2/gh/sample-owner/sample-course/main"
            "?urlpath=lab/tree/notebooks/00_start_here.ipynb") in readme
    for path in sorted((course_copy / "notebooks").glob("*.ipynb")):
        link = f"https://colab.research.google.com/github/sample-owner/sample-course/blob/main/notebooks/{path.name}"
        assert readme.count(f"({link})") == 1, path.name
    assert readme.index(colab_setup.BADGES_START) > readme.index("## The notebooks")


def test_removing_the_repository_removes_cells_and_badges(course_copy):
    colab_setup.write(course_copy)
    pyproject = course_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'Repository = "{SAMPLE_URL}"\n', ""))
    colab_setup.write(course_copy)
    without_badges = colab_setup._readme_with((ROOT / "README.md").read_text(), None)
    assert (course_copy / "README.md").read_text() == without_badges
    for path in (course_copy / "notebooks").glob("*.ipynb"):
        assert colab_setup.MARKER not in path.read_text()


def test_the_check_command_reports_what_is_out_of_step(course_copy):
    command = [sys.executable, str(ROOT / "tools" / "colab_setup.py"), "--check"]
    copy_of_tool = course_copy / "tools" / "colab_setup.py"
    copy_of_tool.parent.mkdir()
    shutil.copy(ROOT / "tools" / "colab_setup.py", copy_of_tool)
    command[1] = str(copy_of_tool)
    stale = subprocess.run(command, capture_output=True, text=True)
    assert stale.returncode == 1 and "out of step: notebooks/00_start_here.ipynb" in stale.stdout
    subprocess.run([sys.executable, str(copy_of_tool)], check=True, capture_output=True)
    fresh = subprocess.run(command, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stdout
    assert fresh.stdout.startswith(SAMPLE_URL)


@pytest.mark.parametrize("url", ["https://gitlab.com/owner/course", "github.com/owner/course", "https://github.com/owner"])
def test_only_a_github_repository_is_accepted(course_copy, url):
    pyproject = course_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(SAMPLE_URL, url))
    with pytest.raises(ValueError, match=r"Repository='.*' is not allowed; it must be .*https://github.com/OWNER/NAME"):
        colab_setup.repository(course_copy)


# ---------------------------------------------------------------- the cell, executed

class _Calls(list):
    def __call__(self, *args, **kwargs):
        self.append((args, kwargs))


@pytest.fixture
def colab(monkeypatch):
    """A stand-in for Colab: google.colab (with output.enable_custom_widget_manager) imported, and
    subprocess.run recorded instead of run; pip's install makes gradcourse importable again."""
    enable = _Calls()
    output = types.SimpleNamespace(enable_custom_widget_manager=enable)
    package = types.ModuleType("google.colab")
    package.output = output
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    pip = []

    outcome = types.SimpleNamespace(returncode=0, stdout="", stderr="")

    def run(command, **kwargs):
        pip.append((command, kwargs))
        if outcome.returncode == 0:
            sys.modules.pop("gradcourse", None)    # installed: the next import finds the package
        return subprocess.CompletedProcess(command, outcome.returncode, outcome.stdout, outcome.stderr)
    monkeypatch.setattr(subprocess, "run", run)
    return types.SimpleNamespace(pip=pip, enable=enable, outcome=outcome)


def _execute_setup_cell():
    exec(compile(colab_setup.setup_cell("sample-owner", "sample-course"), "<setup cell>", "exec"), {})


def test_outside_colab_the_cell_does_nothing_visible(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = _Calls()
    monkeypatch.setattr(subprocess, "run", calls)
    _execute_setup_cell()
    assert calls == [] and capsys.readouterr() == ("", "")


def test_on_colab_without_gradcourse_the_cell_installs_it_and_upgrades_nothing(colab, monkeypatch, capsys):
    import gradcourse

    monkeypatch.setitem(sys.modules, "gradcourse", None)      # import gradcourse raises ImportError
    _execute_setup_cell()
    [(command, kwargs)] = colab.pip
    assert command == [sys.executable, "-m", "pip", "install", "--quiet",
                       "gradcourse @ git+https://github.com/sample-owner/sample-course@main"]
    assert kwargs["capture_output"] and kwargs["text"] and kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"
    assert "check" not in kwargs                                 # a failure is reported by the cell itself
    assert capsys.readouterr().out == f"Installing {command[-1]} (once per Colab session, about 15 s)\n"
    assert not any(option.startswith(("-U", "--upgrade", "--force")) for option in command)
    sys.modules["gradcourse"] = gradcourse


def test_on_colab_with_gradcourse_the_cell_installs_nothing(colab):
    _execute_setup_cell()
    assert colab.pip == []


@pytest.mark.parametrize("version, enabled", [("7.7.1", False), ("8.1.5", True)])
def test_on_colab_the_custom_widget_manager_is_enabled_for_ipywidgets_8_only(colab, monkeypatch, version, enabled):
    monkeypatch.setattr(ipywidgets, "__version__", version)
    _execute_setup_cell()
    assert colab.enable == ([((), {})] if enabled else [])


# What pip printed when the install failed, as seen on a machine without internet access (the first)
# and as git reports a repository that does not exist or is private (the second).
PIP_OFFLINE = """  error: subprocess-exited-with-error
  × git clone --filter=blob:none --quiet https://github.com/sample-owner/sample-course /tmp/pip-install-1/gradcourse did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/sample-owner/sample-course/': Could not resolve host: github.com
      [end of output]
  note: This error originates from a subprocess, and is likely not a problem with pip.
ERROR: Failed to build 'gradcourse' when git clone --filter=blob:none --quiet https://github.com/sample-owner/sample-course /tmp/pip-install-1/gradcourse"""
PIP_NOT_FOUND = """  error: subprocess-exited-with-error
  × git clone --filter=blob:none --quiet https://github.com/sample-owner/sample-course /tmp/pip-install-2/gradcourse did not run successfully.
  │ exit code: 128
  ╰─> [2 lines of output]
      remote: Repository not found.
      fatal: repository 'https://github.com/sample-owner/sample-course/' not found
      [end of output]
ERROR: Failed to build 'gradcourse' when git clone --filter=blob:none --quiet https://github.com/sample-owner/sample-course /tmp/pip-install-2/gradcourse"""


@pytest.mark.parametrize("said, hint", [
    (PIP_OFFLINE, "this runtime has no internet connection: connect it, then run this cell again"),
    (PIP_NOT_FOUND, "https://github.com/sample-owner/sample-course (branch main) could not be read"),
])
def test_on_colab_a_failed_install_shows_pips_last_lines_and_one_hint_then_stops(colab, monkeypatch, capsys,
                                                                                said, hint):
    import gradcourse

    monkeypatch.setitem(sys.modules, "gradcourse", None)
    colab.outcome.returncode, colab.outcome.stderr = 1, said
    with pytest.raises(RuntimeError, match=re.escape(f"gradcourse was not installed: {hint}")) as raised:
        _execute_setup_cell()
    assert raised.value.__cause__ is None and raised.value.__suppress_context__    # a short error, not a chain
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Installing ")
    assert printed[1:] == said.splitlines()[-colab_setup.PIP_TAIL_LINES:]
    assert colab.enable == []                                                    # nothing after the failure
    sys.modules["gradcourse"] = gradcourse


def test_on_colab_a_failed_install_raises_in_a_real_kernel_and_stops_run_all(tmp_path):
    """The failure path in a real IPython kernel with a stand-in google.colab and pip's real output:
    the cell fails with the short error, and nbclient (as Run All) executes nothing after it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    stand_in = ("import sys, types, subprocess\n"
                "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
                "sys.modules['gradcourse'] = None\n"
                "def _pip(command, **kwargs):\n"
                f"    return subprocess.CompletedProcess(command, 1, '', {PIP_OFFLINE!r})\n"
                "subprocess.run = _pip")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(stand_in),
                                               nbformat.v4.new_code_cell(colab_setup.setup_cell("sample-owner",
                                                                                                "sample-course")),
                                               nbformat.v4.new_code_cell("print('next cell ran')")])
    with pytest.raises(CellExecutionError) as raised:
        NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    assert raised.value.ename == "RuntimeError"
    assert raised.value.evalue.startswith("gradcourse was not installed: this runtime has no internet connection")
    outputs = [output.get("text", "") for output in notebook.cells[1].outputs if output.output_type == "stream"]
    assert "Could not resolve host: github.com" in "".join(outputs)
    assert notebook.cells[2].outputs == []
