"""The package's layers: the core imports without the display stack, and no module reaches into
another's private names."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradcourse"
MODULES = sorted(PACKAGE.rglob("*.py"))
CORE = ["data", "models", "train", "scoring", "layers", "norms", "activation_summary", "probes", "monitor", "diagnose",
        "runtime", "monitor_rows", "step_updates", "update_step", "monitor_export", "optimizers", "history"]


@pytest.mark.parametrize("module", CORE + ["gradcourse"])
def test_the_core_imports_without_the_display_or_the_exports_libraries(module):
    # matplotlib and ipywidgets belong to the display; pandas and TensorBoard to monitor_export's functions
    name = module if module == "gradcourse" else f"gradcourse.{module}"
    code = (f"import sys, {name}\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'pandas', "
            "'tensorboard') or m.startswith('torch.utils.tensorboard'))\n"
            "print(loaded)\nassert not loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_display_is_there_on_first_use():
    code = "import sys, gradcourse as gc\nassert callable(gc.plots.plot_log_lines) and callable(gc.figures.activation_figure)\n" \
           "assert callable(gc.widgets.explorer)\n" \
           "assert 'matplotlib' in sys.modules and 'ipywidgets' in sys.modules\nfrom gradcourse import plots, widgets"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_attribute_is_an_attribute_error():
    import gradcourse
    with pytest.raises(AttributeError, match="no attribute 'plotz'"):
        gradcourse.plotz  # noqa: B018


def _private_uses(path):
    """(line, text) of every private name one module takes from another of the package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    siblings = {p.stem for p in MODULES} | {p.parent.name for p in MODULES if p.name == "__init__.py"}   # modules, subpackages
    imported_modules = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:   # from . / from .. (the package's own modules)
            for alias in node.names:
                if node.module is None:                     # from . import data, _checks (a private module is allowed)
                    imported_modules.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):            # from .train import _helper
                    found.append((node.lineno, f"from .{node.module} import {alias.name}"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported_modules
                and node.value.id in siblings and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    assert _private_uses(path) == []


def test_the_private_name_check_finds_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from . import _checks, plots\nfrom .train import _first\nplots._finish(1)\n_checks.describe(2)\n")
    assert _private_uses(sample) == [(2, "from .train import _first"), (3, "plots._finish")]
