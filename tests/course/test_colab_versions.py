"""The course under Google Colab's own ipywidgets and IPython.

Colab pins its front-end packages: google-colab requires ipython==7.34.0, and Colab ships
ipywidgets 7.7.x, whose widgets it renders natively (ipywidgets 8 needs its custom widget
manager). Installing gradcourse there must not upgrade either (an upgraded IPython breaks Colab's
runtime), and the widgets and progress bars must work with both. So:

* pyproject's lower bounds admit Colab's versions, so pip leaves them in place;
* the widget tests run again in a subprocess whose import path puts Colab's ipywidgets and IPython
  in front of this environment's (a pip ``--target`` overlay, fetched from PyPI; skipped with the
  reason when PyPI cannot be reached);
* tqdm's notebook progress bar, which ``fit`` shows in a notebook, builds its widget there.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
COLAB_VERSIONS = {"ipywidgets": "7.7.1", "ipython": "7.34.0"}
# What those two import that this environment (with ipywidgets 8 and IPython 9) does not have.
THEIR_OWN_DEPENDENCIES = ["ipython-genutils==0.2.0", "decorator", "backcall", "pickleshare"]
WIDGET_TESTS = ["tests/display/test_widgets.py", "tests/display/test_figures.py"]


def test_pyproject_lower_bounds_admit_colab_versions():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirements = {canonicalize_name(r.name): r for r in map(Requirement, dependencies)}
    for name, version in COLAB_VERSIONS.items():
        requirement = requirements[name]
        assert requirement.specifier.contains(version), f"pip would replace Colab's {name} {version}: {requirement}"
        assert all(spec.operator == ">=" for spec in requirement.specifier), f"{requirement}: lower bounds only"


@pytest.fixture(scope="module")
def colab_overlay(tmp_path_factory):
    """A folder with Colab's ipywidgets and IPython, to put first on PYTHONPATH."""
    target = tmp_path_factory.mktemp("colab-overlay")
    packages = [f"{name}=={version}" for name, version in COLAB_VERSIONS.items()] + THEIR_OWN_DEPENDENCIES
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "--timeout", "15", "--retries", "1", "--no-deps", "--target", str(target), *packages],
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        pytest.skip(f"could not fetch Colab's versions from PyPI ({lines[-1]})")
    return target


def _run_with(overlay, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(overlay), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_overlay_replaces_ipywidgets_and_ipython(colab_overlay):
    result = _run_with(colab_overlay, "-c", "import ipywidgets, IPython; print(ipywidgets.__version__, IPython.__version__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [COLAB_VERSIONS["ipywidgets"], COLAB_VERSIONS["ipython"]]


def test_widget_tests_pass_under_colab_versions(colab_overlay):
    result = _run_with(colab_overlay, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                       "-W", "ignore::DeprecationWarning", *WIDGET_TESTS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_notebook_progress_bar_builds_its_widget_under_colab_versions(colab_overlay):
    script = ("import ipywidgets\nfrom tqdm.notebook import tqdm\n"
              "bar = tqdm(range(3), display=False)\nfor _ in bar:\n    pass\n"
              "assert isinstance(bar.container, ipywidgets.HBox), type(bar.container)\n"
              "print(ipywidgets.__version__, bar.n)")
    result = _run_with(colab_overlay, "-W", "ignore::DeprecationWarning", "-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [COLAB_VERSIONS["ipywidgets"], "3"]
