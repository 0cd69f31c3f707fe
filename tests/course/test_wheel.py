"""The course as Colab runs it: the package installed from a built wheel, and a notebook alone in a
folder (on Colab it runs by itself in /content, with no repository checkout beside it). Two
notebooks run that way; every notebook's code is checked for paths into the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALONE = ["00_start_here", "11_mixed_precision"]   # one with MNIST and a widget, one with precision traces
PROBE = ("import json, os, gradcourse\n"
         "print(json.dumps({'package': gradcourse.__file__, 'cwd': os.getcwd(), 'files': sorted(os.listdir())}))")
# Code that would reach into the repository: a relative path upwards, the repository's folders, or
# a file opened or listed by path.
REPOSITORY_PATHS = re.compile(r"\.\./|['\"](?:notebooks|gradcourse|tests|benchmarks|tools)/|\bopen\(|\bPath\(|"
                              r"\bos\.listdir|\bglob\(")


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    """A folder holding gradcourse installed from a wheel built from this checkout (no dependencies:
    they are this environment's)."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(build / "dist"), str(ROOT)], check=True, capture_output=True)
    [wheel] = (build / "dist").glob("gradcourse-*.whl")
    site = build / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    assert not (site / "notebooks").exists() and (site / "gradcourse" / "__init__.py").is_file()
    return site


@pytest.mark.parametrize("name", ALONE)
def test_a_notebook_runs_alone_in_a_folder_with_the_package_from_a_wheel(name, wheel_site, tmp_path, monkeypatch):
    [path] = [p for p in NOTEBOOKS if p.stem == name]
    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    notebook = nbformat.read(folder / path.name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    monkeypatch.setenv("PYTHONPATH", str(wheel_site))      # the kernel imports the wheel's gradcourse first
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    probe = json.loads(notebook.cells[-1].outputs[-1]["text"])
    assert Path(probe["package"]).is_relative_to(wheel_site), probe["package"]
    assert Path(probe["cwd"]) == folder and probe["files"] == [path.name]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_reads_a_file_of_the_repository(path):
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "code":
            found = REPOSITORY_PATHS.search(cell.source)
            assert found is None, f"{path.name} cell {index}: {found.group()!r} in {cell.source[:200]!r}"


def test_the_wheel_carries_the_package_and_nothing_of_the_checkout(wheel_site):
    installed = {p.relative_to(wheel_site).parts[0] for p in wheel_site.rglob("*") if p.is_file()}
    assert installed <= {"gradcourse", *(p.name for p in wheel_site.glob("gradcourse-*.dist-info"))}, installed
    assert os.path.getsize(wheel_site / "gradcourse" / "core" / "data.py") > 0


def test_the_wheel_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    package = ROOT / "gradcourse"
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in package.rglob("__init__.py")}
    assert found == listed
