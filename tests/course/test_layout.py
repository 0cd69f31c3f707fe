"""The package's layers as the file tree shows them: core, lessons, display (and exercises). Imports run
down the layers only, ``import gradcourse`` loads the core alone, and no module reaches into another's
private names."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import gradcourse

PACKAGE = Path(__file__).resolve().parents[2] / "gradcourse"
MODULES = sorted(PACKAGE.rglob("*.py"))
LAYERS = ("core", "lessons", "display", "exercises")
ALLOWED = {"core": {"core"}, "lessons": {"core", "lessons"}, "display": {"core", "lessons", "display"},
           "exercises": {"core", "lessons", "exercises"}}
"""Which layers each layer may import from: the core only itself, the lessons the core, and so on down."""


def _dotted(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(dotted):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _imported(path):
    """(line, dotted name) of every module of the package that the module at ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _dotted(path) if path.name == "__init__.py" else _dotted(path).rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "gradcourse":
                found += [(node.lineno, f"{target}.{a.name}" if node.module is None else target) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "gradcourse"]
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(_dotted(p))],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path):
    layer = _layer(_dotted(path))
    wrong = [(line, name) for line, name in _imported(path) if _layer(name) not in ALLOWED[layer]]
    assert wrong == [], f"{layer} may import from {sorted(ALLOWED[layer])} only"


def test_the_top_level_imports_only_the_core():
    top = PACKAGE / "__init__.py"
    assert {_layer(name) for _, name in _imported(top)} <= {"core"}


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_import_gradcourse_loads_the_core_and_nothing_of_the_display_or_the_exports():
    # matplotlib and ipywidgets belong to the display; pandas and TensorBoard to the monitor's export functions
    out = _run("import sys, gradcourse\n"
               "print(sorted(m for m in sys.modules if m.startswith('gradcourse')))\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'pandas', "
               "'tensorboard') or m.startswith('torch.utils.tensorboard')))")
    ours, others = (eval(line) for line in out.splitlines())
    assert ours and all(m == "gradcourse" or m.startswith("gradcourse.core") for m in ours), ours
    assert others == []


@pytest.mark.parametrize("path", [p for p in MODULES if _layer(_dotted(p)) == "core"],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_core_module_imports_without_the_display(path):
    out = _run(f"import sys, {_dotted(path)}\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'pandas')"
               " or (m.startswith('gradcourse.') and not m.startswith('gradcourse.core'))))")
    assert out.strip() == "[]"


def test_lessons_and_the_display_are_there_on_first_use():
    _run("import sys, gradcourse as gc\n"
         "assert gc.clipping is sys.modules['gradcourse.lessons.clipping']\n"
         "assert callable(gc.plots.plot_log_lines) and callable(gc.figures.activation_figure)\n"
         "assert callable(gc.widgets.explorer) and callable(gc.exercises.check)\n"
         "assert 'matplotlib' in sys.modules and 'ipywidgets' in sys.modules\n"
         "from gradcourse import plots, widgets, transformers\n"
         "assert transformers is sys.modules['gradcourse.lessons.transformers']\n"
         "assert {'clipping', 'plots', 'exercises'} <= set(dir(gc))")


def test_every_lesson_and_display_module_is_listed():
    import gradcourse
    lessons = {p.stem for p in (PACKAGE / "lessons").glob("*.py") if p.stem != "__init__"}
    display = {p.stem for p in (PACKAGE / "display").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert set(gradcourse.LESSONS) == lessons
    assert set(gradcourse.DISPLAY) == display - {"__init__"}


def test_an_unknown_attribute_is_an_attribute_error():
    import gradcourse
    with pytest.raises(AttributeError, match="no attribute 'plotz'"):
        gradcourse.plotz  # noqa: B018


def _private_uses(path):
    """(line, text) of every private name one module takes from another of the package (a private module,
    such as ``_checks``, may be imported: its names are the package's shared helpers)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported_modules = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level >= 1 or (node.module or "").startswith("gradcourse")):
            for alias in node.names:
                if node.module is None or _is_module(path, node, alias.name):
                    imported_modules.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):            # from .train import _helper
                    found.append((node.lineno, f"from {'.' * node.level}{node.module} import {alias.name}"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported_modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def _is_module(path, node, name):
    """True when ``from <node.module> import name`` imports a module or subpackage of the package."""
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
    else:
        base = PACKAGE.parent
    folder = base.joinpath(*(node.module or "").split(".")) if node.module else base
    return (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    assert _private_uses(path) == []


def test_the_private_name_check_finds_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from . import _checks, plots\nfrom .train import _first\nplots._finish(1)\n_checks.describe(2)\n")
    assert _private_uses(sample) == [(2, "from .train import _first"), (3, "plots._finish")]


LIMITS = {"module lines": 300, "function lines": 60}
"""Small modules with one job: no module over 300 lines, no function over 60 (docstrings count)."""


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text()
    assert len(source.splitlines()) <= LIMITS["module lines"]
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LIMITS["function lines"]]
    assert long == []


def _public_definitions(tree):
    """The names a module defines at its top level without a leading underscore."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def _declared_all(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py" or p.parent == PACKAGE
                                  or _declared_all(ast.parse(p.read_text())) is not None
                                  or any(isinstance(n, ast.ImportFrom) for n in ast.parse(p.read_text()).body)],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_lists_its_public_names_in_all(path):
    tree = ast.parse(path.read_text())
    declared = _declared_all(tree)
    assert declared is not None, "no __all__"
    assert len(declared) == len(set(declared)), "a name listed twice"
    module = __import__(_dotted(path), fromlist=["_"])
    assert [name for name in declared if not hasattr(module, name)] == []
    if path.name != "__init__.py":   # a subpackage's __init__ re-exports; a module lists what it defines
        assert sorted(_public_definitions(tree) - set(declared)) == []


def test_fit_has_at_most_eight_options_of_its_own():
    import inspect

    from gradcourse import fit
    options = [name for name in inspect.signature(fit).parameters if name not in ("model", "X", "y")]
    assert len(options) <= 8, options
    assert "callbacks" in options


def test_the_package_never_unpickles_or_evaluates_data():
    package = Path(gradcourse.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 20                                 # every subpackage's modules, not the top level's alone
    for path in modules:
        text = path.read_text()
        assert "weights_only=False" not in text, path
        assert "pickle" not in text, path
        for call in ("eval(", "exec("):
            assert not any(call in line and not line.lstrip().startswith("#") and f".{call}" not in line
                           for line in text.splitlines()), (path, call)
