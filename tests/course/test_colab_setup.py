"""tools/colab_setup.py: the notebooks' Colab setup cell and the README's badges come from the one
repository address in pyproject.toml, and the cell does on Colab what it says and nothing elsewhere."""

import json
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import ipywidgets
import nbformat
import pytest

from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
colab_setup = load_script("tools/colab_setup.py")

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
            assert first_code.metadata == colab_setup.CELL_METADATA, path.name
        else:
            assert not any(cell.source.startswith(colab_setup.MARKER) for cell in cells), path.name
    assert (colab_setup.BADGES_START in (ROOT / "README.md").read_text()) == bool(found)


def test_the_cell_is_shown_collapsed_under_its_title_and_its_lines_fit_the_notebook():
    """Colab shows a cell whose first line is ``#@title TITLE`` and whose metadata has
    ``cellView: form`` as a form: the title, code hidden; JupyterLab hides a ``source_hidden``
    cell's code and shows its first line. Every line fits the course's 88 characters, and the cell
    has at most the 35 lines of code of any of the course's cells."""
    cell = colab_setup.setup_cell("sample-owner", "sample-course")
    assert cell.splitlines()[0] == f"#@title {colab_setup.TITLE}"
    assert colab_setup.TITLE.startswith("Colab setup: run this cell first")
    assert colab_setup.CELL_METADATA == {"cellView": "form", "jupyter": {"source_hidden": True}}
    lines = colab_setup.setup_cell("gradcourse", "gradcourse").splitlines()
    assert max(len(line) for line in lines) <= 88, max(lines, key=len)
    assert len([line for line in lines if line.strip() and not line.lstrip().startswith("#")]) <= 35
    compile(cell, "<setup cell>", "exec")


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
    assert 'url = "https://github.com/sample-owner/sample-course"' in cell
    assert 'requirement = f"gradcourse @ git+{url}@main"' in cell
    for name, old in before.items():
        new = nbformat.read(course_copy / "notebooks" / name, as_version=4)
        nbformat.validate(new)
        first_code = next(i for i, c in enumerate(new.cells) if c.cell_type == "code")
        assert new.cells[first_code].source == cell
        assert new.cells[first_code].metadata == colab_setup.CELL_METADATA
        others = [c.source for c in old.cells if c.get("id") != colab_setup.CELL_ID]
        assert [c.source for c in new.cells[:first_code] + new.cells[first_code + 1:]] == others
        assert new.metadata == old.metadata                                # the kernelspec stays
    assert colab_setup.write(course_copy) == [] and colab_setup.differences(course_copy) == []


def _setup_cell_text(notebook_text):
    """The setup cell's lines in a notebook's JSON text: from its opening brace to its closing one."""
    lines = notebook_text.splitlines(keepends=True)
    at = lines.index(f'   "id": "{colab_setup.CELL_ID}",\n')
    start = max(i for i in range(at) if lines[i] == "  {\n")
    end = next(i for i in range(at, len(lines)) if lines[i].startswith("  }"))
    return "".join(lines[start:end + 1])


def test_write_changes_the_setup_cell_only_and_keeps_every_other_byte(course_copy):
    """The other cells stay byte for byte, and the check passes after a notebook is edited and saved
    as the course's scripts save it (json.dump, indent 1, keys in their order) or as nbformat does."""
    paths = sorted((course_copy / "notebooks").glob("*.ipynb"))
    before = {path: path.read_text() for path in paths}
    colab_setup.write(course_copy)
    for path in paths:
        old, new = before[path], path.read_text()
        assert new.replace(_setup_cell_text(new), "") == old.replace(_setup_cell_text(old), ""), path.name
    edited, saved = paths[0], paths[1]
    notebook = json.loads(edited.read_text())
    notebook["cells"][-1]["source"] = ["# edited by a script\n", "x = 1"]
    edited.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    nbformat.write(nbformat.read(saved, as_version=4), saved)
    assert colab_setup.differences(course_copy) == []


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
    """A stand-in for Colab: google.colab (with output.enable_custom_widget_manager) imported,
    subprocess.run recorded instead of run (pip's install makes gradcourse importable again), and
    socket.getaddrinfo answering whether pypi.org's address can be found (``outcome.online``)."""
    enable = _Calls()
    output = types.SimpleNamespace(enable_custom_widget_manager=enable)
    package = types.ModuleType("google.colab")
    package.output = output
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    pip, probes = [], []

    outcome = types.SimpleNamespace(returncode=0, stdout="", stderr="", online=True)

    def run(command, **kwargs):
        pip.append((command, kwargs))
        if outcome.returncode == 0:
            sys.modules.pop("gradcourse", None)    # installed: the next import finds the package
        return subprocess.CompletedProcess(command, outcome.returncode, outcome.stdout, outcome.stderr)

    def resolve(host, port):
        probes.append((host, port))
        if not outcome.online:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.80", port))]
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return types.SimpleNamespace(pip=pip, probes=probes, enable=enable, outcome=outcome)


def _execute_setup_cell(owner="sample-owner", name="sample-course"):
    exec(compile(colab_setup.setup_cell(owner, name), "<setup cell>", "exec"), {})


def test_outside_colab_the_cell_does_nothing_visible(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = _Calls()
    monkeypatch.setattr(subprocess, "run", calls)
    monkeypatch.setattr(socket, "getaddrinfo", calls)
    _execute_setup_cell()
    assert calls == [] and capsys.readouterr() == ("", "")


def test_on_colab_without_gradcourse_the_cell_installs_it_and_upgrades_nothing(colab, monkeypatch, capsys):
    import gradcourse

    monkeypatch.setitem(sys.modules, "gradcourse", None)      # import gradcourse raises ImportError
    _execute_setup_cell()
    [(command, kwargs)] = colab.pip
    assert command == [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       "gradcourse @ git+https://github.com/sample-owner/sample-course@main"]
    assert kwargs["capture_output"] and kwargs["text"] and kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"
    assert "check" not in kwargs                                 # a failure is reported by the cell itself
    assert capsys.readouterr().out == f"Installing {command[-1]} (once per Colab session, about 15 s)\n"
    assert not any(option.startswith(("-U", "--upgrade", "--force")) for option in command)
    assert colab.probes == []                                    # the network is probed only after a failure
    sys.modules["gradcourse"] = gradcourse


def test_on_colab_with_gradcourse_the_cell_installs_nothing(colab):
    _execute_setup_cell()
    assert colab.pip == []


@pytest.mark.parametrize("version, enabled", [("7.7.1", False), ("8.1.5", True)])
def test_on_colab_the_custom_widget_manager_is_enabled_for_ipywidgets_8_only(colab, monkeypatch, version, enabled):
    monkeypatch.setattr(ipywidgets, "__version__", version)
    _execute_setup_cell()
    assert colab.enable == ([((), {})] if enabled else [])


# What pip printed (all on stderr, stdout empty) when ``pip install --quiet "gradcourse @
# git+https://github.com/gradcourse/gradcourse@main"`` failed, captured from pip 24.1.2 (Colab's) and
# pip 26.3 in a fresh venv, with GIT_TERMINAL_PROMPT=0 and no pip configuration, on a machine that
# reaches PyPI but cannot resolve github.com. pip 24 prints the subprocess's output in a first block,
# then a summary that ends "See above for output." and its notice of a newer pip; pip 26 prints one
# block and an ERROR: line.
PIP24_GITHUB_UNREACHABLE = """\
  error: subprocess-exited-with-error
  
  × git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-wdvx16tu/gradcourse_6dedae099a564dfebf165ccb4367459b did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/gradcourse/gradcourse/': Could not resolve host: github.com
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-wdvx16tu/gradcourse_6dedae099a564dfebf165ccb4367459b did not run successfully.
│ exit code: 128
╰─> See above for output.

note: This error originates from a subprocess, and is likely not a problem with pip.

[notice] A new release of pip is available: 24.1.2 -> 26.3
[notice] To update, run: /tmp/pip24/bin/python -m pip install --upgrade pip
"""
PIP26_GITHUB_UNREACHABLE = """\
  error: subprocess-exited-with-error
  
  × git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-itf1kl3d/gradcourse_99cbdbefd1af430e8fa26613656f2879 did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/gradcourse/gradcourse/': Could not resolve host: github.com
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
ERROR: Failed to build 'gradcourse' when git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-itf1kl3d/gradcourse_99cbdbefd1af430e8fa26613656f2879
"""
# The same pips against a local HTTP server standing in for GitHub (its address replaced by
# https://github.com here): a 404 with GitHub's text/plain body "Repository not found." (a repository
# that does not exist), and a 401 asking for credentials (a private repository).
PIP24_NOT_FOUND = """\
  error: subprocess-exited-with-error
  
  × git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-nbpwshk1/gradcourse_adc4e418c26d45aebd030a6156bd9cf5 did not run successfully.
  │ exit code: 128
  ╰─> [2 lines of output]
      remote: Repository not found.
      fatal: repository 'https://github.com/gradcourse/gradcourse/' not found
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-nbpwshk1/gradcourse_adc4e418c26d45aebd030a6156bd9cf5 did not run successfully.
│ exit code: 128
╰─> See above for output.

note: This error originates from a subprocess, and is likely not a problem with pip.

[notice] A new release of pip is available: 24.1.2 -> 26.3
[notice] To update, run: /tmp/pip24/bin/python -m pip install --upgrade pip
"""
PIP26_NOT_FOUND = """\
  error: subprocess-exited-with-error
  
  × git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-fpc3px4y/gradcourse_25169c985d074052a7dce759c82c3f94 did not run successfully.
  │ exit code: 128
  ╰─> [2 lines of output]
      remote: Repository not found.
      fatal: repository 'https://github.com/gradcourse/gradcourse/' not found
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
ERROR: Failed to build 'gradcourse' when git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-fpc3px4y/gradcourse_25169c985d074052a7dce759c82c3f94
"""
PIP24_PRIVATE = """\
  error: subprocess-exited-with-error
  
  × git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-8svd8lke/gradcourse_b7258c95ec7448bc9c6a7b4f775dc817 did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: could not read Username for 'https://github.com': terminal prompts disabled
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-8svd8lke/gradcourse_b7258c95ec7448bc9c6a7b4f775dc817 did not run successfully.
│ exit code: 128
╰─> See above for output.

note: This error originates from a subprocess, and is likely not a problem with pip.

[notice] A new release of pip is available: 24.1.2 -> 26.3
[notice] To update, run: /tmp/pip24/bin/python -m pip install --upgrade pip
"""
# pip 24.1.2 when the repository was cloned but a build dependency could not be installed (a
# repository whose pyproject asks for setuptools>=999; the list of versions shortened here).
PIP24_BUILD_DEPENDENCY = """\
  error: subprocess-exited-with-error
  
  × pip subprocess to install build dependencies did not run successfully.
  │ exit code: 1
  ╰─> [6 lines of output]
      ERROR: Ignored the following yanked versions: 51.1.0.post20201221, 59.1.0, 60.3.0, 69.3.0, 69.4.0, 71.0.1, 72.0.0, 75.9.0, 80.3.0, 80.7.0
      ERROR: Could not find a version that satisfies the requirement setuptools>=999 (from versions: 0.6b1, 0.6b2, 84.2.0, 84.2.1)
      ERROR: No matching distribution found for setuptools>=999
      
      [notice] A new release of pip is available: 24.1.2 -> 26.3
      [notice] To update, run: /tmp/pip24/bin/python -m pip install --upgrade pip
      [end of output]
  
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× pip subprocess to install build dependencies did not run successfully.
│ exit code: 1
╰─> See above for output.

note: This error originates from a subprocess, and is likely not a problem with pip.

[notice] A new release of pip is available: 24.1.2 -> 26.3
[notice] To update, run: /tmp/pip24/bin/python -m pip install --upgrade pip
"""

URL = "https://github.com/gradcourse/gradcourse"
CLONE = "× git clone --filter=blob:none --quiet https://github.com/gradcourse/gradcourse /tmp/pip-install-"
UNREACHABLE = "fatal: unable to access 'https://github.com/gradcourse/gradcourse/': Could not resolve host: github.com"
NOT_FOUND = ["remote: Repository not found.", "fatal: repository 'https://github.com/gradcourse/gradcourse/' not found"]
FAILED_TO_BUILD = "ERROR: Failed to build 'gradcourse' when git clone "
GITHUB_UNREACHABLE = "GitHub could not be reached (github.com); PyPI can: try again later"
OFFLINE = "no internet connection: connect this runtime, then rerun this cell"
UNREADABLE = f"{URL} could not be read: does it exist, is it public?"


@pytest.mark.parametrize("said, online, hint, cause", [
    (PIP24_GITHUB_UNREACHABLE, True, GITHUB_UNREACHABLE, [CLONE, UNREACHABLE]),
    (PIP26_GITHUB_UNREACHABLE, True, GITHUB_UNREACHABLE, [CLONE, UNREACHABLE, FAILED_TO_BUILD]),
    (PIP24_GITHUB_UNREACHABLE, False, OFFLINE, [CLONE, UNREACHABLE]),
    (PIP26_GITHUB_UNREACHABLE, False, OFFLINE, [CLONE, UNREACHABLE, FAILED_TO_BUILD]),
    (PIP24_NOT_FOUND, True, UNREADABLE, [CLONE, *NOT_FOUND]),
    (PIP26_NOT_FOUND, True, UNREADABLE, [CLONE, *NOT_FOUND, FAILED_TO_BUILD]),
    (PIP24_PRIVATE, True, UNREADABLE, [CLONE, "fatal: could not read Username for 'https://github.com': "
                                              "terminal prompts disabled"]),
    (PIP24_BUILD_DEPENDENCY, True, "pip could not install it (its error is above)",
     ["× pip subprocess to install build dependencies did not run successfully.",
      "ERROR: Ignored the following yanked versions: ", "ERROR: Could not find a version that satisfies the ",
      "ERROR: No matching distribution found for setuptools>=999"]),
], ids=["pip24-github-unreachable", "pip26-github-unreachable", "pip24-offline", "pip26-offline",
        "pip24-not-found", "pip26-not-found", "pip24-private", "pip24-build-dependency"])
def test_on_colab_a_failed_install_shows_the_cause_and_one_hint_then_stops(colab, monkeypatch, capsys,
                                                                          said, online, hint, cause):
    """Whatever pip's format, the cell prints the lines that say what failed (pip's summary, git's
    fatal:/remote:, pip's ERROR:), each once, none of pip's notices or boilerplate, then raises."""
    import gradcourse

    monkeypatch.setitem(sys.modules, "gradcourse", None)
    colab.outcome.returncode, colab.outcome.stderr, colab.outcome.online = 1, said, online
    with pytest.raises(RuntimeError) as raised:
        _execute_setup_cell("gradcourse", "gradcourse")
    assert str(raised.value) == f"gradcourse was not installed: {hint}"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__    # a short error, not a chain
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"Installing gradcourse @ git+{URL}@main (once per Colab session, about 15 s)"
    assert len(printed[1:]) == len(cause) and all(line.startswith(start) for line, start in zip(printed[1:], cause))
    assert not any(word in line for line in printed for word in ("[notice]", "See above", "note:"))
    assert colab.probes == [("pypi.org", 443)]
    assert colab.enable == []                                                    # nothing after the failure
    sys.modules["gradcourse"] = gradcourse


@pytest.mark.parametrize("online, hint", [(False, OFFLINE), (True, GITHUB_UNREACHABLE)], ids=["offline", "github-unreachable"])
def test_on_colab_a_failed_install_raises_in_a_real_kernel_and_stops_run_all(tmp_path, online, hint):
    """The failure path in a real IPython kernel with a stand-in google.colab, pip 24.1.2's real
    output and PyPI reachable or not: the cell prints the cause and fails with the short error, and
    nbclient (as Run All) executes nothing after it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    stand_in = ("import socket, subprocess, sys, types\n"
                "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
                "sys.modules['gradcourse'] = None\n"
                "def _pip(command, **kwargs):\n"
                f"    return subprocess.CompletedProcess(command, 1, '', {PIP24_GITHUB_UNREACHABLE!r})\n"
                "def _resolve(host, port):\n"
                f"    if not {online}:\n"
                "        raise socket.gaierror(-3, 'Temporary failure in name resolution')\n"
                "    return [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('203.0.113.80', port))]\n"
                "subprocess.run, socket.getaddrinfo = _pip, _resolve")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(stand_in),
                                               nbformat.v4.new_code_cell(colab_setup.setup_cell("gradcourse",
                                                                                                "gradcourse")),
                                               nbformat.v4.new_code_cell("print('next cell ran')")])
    with pytest.raises(CellExecutionError) as raised:
        NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    assert raised.value.ename == "RuntimeError"
    assert raised.value.evalue == f"gradcourse was not installed: {hint}"
    printed = "".join(output.get("text", "") for output in notebook.cells[1].outputs
                      if output.output_type == "stream")
    assert "Could not resolve host: github.com" in printed and "[notice]" not in printed
    assert notebook.cells[2].outputs == []
