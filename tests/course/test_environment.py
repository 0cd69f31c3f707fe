"""environment.yml (conda, Binder) installs what pyproject.toml declares for a learner: the same
packages with the same lower bounds, with the lab and test extras (nbval included), nothing missing
on either side, and not the browser test's extra; postBuild installs the package itself (not a pip
entry in environment.yml, which would defeat Binder's cache)."""

import os
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# conda-forge's name for a PyPI package where the two differ.
CONDA_NAMES = {"pytorch-cpu": "torch"}
LEARNER_EXTRAS = ("lab", "test")


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_requirements():
    """{PyPI name: specifier} of environment.yml, less python itself and pip (postBuild's tool)."""
    found = {}
    for entry in environment()["dependencies"]:
        assert isinstance(entry, str), f"environment.yml: {entry!r} (a pip section; postBuild installs the package)"
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry).groups()
        if name not in ("python", "pip"):
            found[canonicalize_name(CONDA_NAMES.get(name, name))] = SpecifierSet(spec)
    return found


def pyproject_requirements():
    """{name: specifier} of pyproject's dependencies and of the learners' extras."""
    project = pyproject()
    extras = project["optional-dependencies"]
    lines = project["dependencies"] + [line for name in LEARNER_EXTRAS for line in extras[name]]
    return {canonicalize_name(r.name): r.specifier for r in map(Requirement, lines)}


def test_environment_matches_pyproject():
    conda, pip = conda_requirements(), pyproject_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml, missing from environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml, missing from pyproject.toml"
    assert {name: str(spec) for name, spec in conda.items() if spec != pip[name]} == {}, \
        "bounds differ from pyproject.toml's"


def test_ipykernel_skips_only_the_releases_that_can_leave_a_request_unread():
    """ipykernel 7.0-7.3 send each shell reply raw on the socket their ZMQStream reads requests from;
    the send clears the socket's edge-triggered wake-up, so a request arriving meanwhile can sit
    unread, kernel and client both idle (ipython/ipykernel#1529, fixed in 7.4.0). Both environments
    skip those releases and no others: no cap at 7, which made Binder downgrade its image's ipykernel."""
    for bounds in (pyproject_requirements()["ipykernel"], conda_requirements()["ipykernel"]):
        assert [v for v in ("6.0.0", "6.17.1", "6.31.0", "7.4.0", "7.10.2", "8.0.0") if not bounds.contains(v)] == []
        assert [v for v in ("5.5.6", "7.0.1", "7.1.0", "7.2.0", "7.3.0", "7.3.2") if bounds.contains(v)] == []


def test_environment_is_cpu_only_from_conda_forge_with_an_exact_python():
    """repo2docker takes the Python version only from python=X.Y; with a range it logs "Python version
    unspecified" and upgrades Python inside its base image."""
    env = environment()
    names = [re.match(r"[A-Za-z0-9_.-]+", entry).group() for entry in env["dependencies"]]
    assert env["channels"] == ["conda-forge"]
    assert "pytorch-cpu" in names and "pytorch" not in names
    [python] = [entry for entry in env["dependencies"] if entry.startswith("python")]
    version = re.fullmatch(r"python=(3\.\d+)", python)
    assert version, f"environment.yml: {python!r} must be an exact python=3.X"
    assert SpecifierSet(pyproject()["requires-python"]).contains(version.group(1) + ".0")


def test_the_browser_tests_dependencies_stay_out_of_the_learners_environment():
    browser = [canonicalize_name(Requirement(line).name) for line in pyproject()["optional-dependencies"]["browser"]]
    assert browser == ["playwright"]
    assert "playwright" not in conda_requirements() and "nbval" in conda_requirements()


def test_postbuild_installs_the_package_without_dependencies():
    script = ROOT / "postBuild"
    lines = [line.strip() for line in script.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines == ["set -e", "pip install --no-deps -e ."]
    assert os.access(script, os.X_OK), "postBuild must be executable"
