"""The notebooks' exercises: every reference answer passes its check, every typical mistake gets
its own hint, no answer ever raises, and the closed-form answers agree with the package and torch."""

import ast
import builtins
import json
import math
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from IPython.core.formatters import DisplayFormatter

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check, solution
from gradcourse.exercises.judging import KINDS, Choice, Number

ROOT = Path(__file__).resolve().parents[2]
IDS = sorted(EXERCISES)
MISTAKES = [(i, k) for i in IDS for k in range(len(EXERCISES[i].typical_mistakes()))]
JUNK = ["abc", "", True, object(), [1.0, 2.0, 3.0], float("nan"), float("inf"), torch.nn.Linear(2, 2),
        gc.MLP(in_features=4, width=8, depth=2), {"answer": 1}, -1e300]


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_answer_is_right(exercise_id, capsys):
    result = check(exercise_id, EXERCISES[exercise_id].reference())
    assert result.correct and result.status == "right" and bool(result)
    assert capsys.readouterr().out.startswith(f"Exercise {exercise_id}: right.")


@pytest.mark.parametrize("exercise_id, index", MISTAKES)
def test_a_typical_mistake_gets_its_own_hint(exercise_id, index, capsys):
    make_answer, words = EXERCISES[exercise_id].typical_mistakes()[index]
    result = check(exercise_id, make_answer())
    assert not result and result.status == "wrong"
    assert words in result.message
    assert words[1:] in capsys.readouterr().out   # printed with its first letter in capitals


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_exercise_recognises_mistakes_and_has_a_solution(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert exercise.kind in KINDS and exercise.question.strip() and exercise.solution.strip()
    hints = [words for _, words in exercise.typical_mistakes()]
    assert hints and all(words.strip() for words in hints)


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize("placeholder", [..., None])
def test_an_unanswered_exercise_says_so_and_does_not_raise(exercise_id, placeholder, capsys):
    result = check(exercise_id, placeholder)
    assert not result and result.status == "not answered"
    assert capsys.readouterr().out.startswith(f"Exercise {exercise_id}: not answered yet.")


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize("junk", JUNK, ids=lambda j: type(j).__name__)
def test_any_other_answer_is_wrong_and_never_raises(exercise_id, junk):
    result = check(exercise_id, junk)
    assert result.status == "wrong" and result.message
    assert f'gc.exercises.solution("{exercise_id}")' in result.message


def test_an_answer_that_fails_inside_the_check_is_reported_not_raised():
    model = gc.MLP(depth=20, width=128, activation="relu", init="normal", init_scale=math.sqrt(2 / 128))

    def broken(x):
        raise RuntimeError("this forward pass fails")

    model.forward = broken
    result = check("03.2", model)
    assert result.status == "wrong" and "RuntimeError: this forward pass fails" in result.message


@pytest.mark.parametrize("call", [check, solution], ids=["check", "solution"])
@pytest.mark.parametrize("bad", ["02.9", "2.1", 2.1, None, "02"])
def test_an_unknown_exercise_id_is_a_value_error_that_lists_the_ids(call, bad, raises_bad):
    args = (bad, 1.0) if call is check else (bad,)
    with raises_bad("exercise_id", bad) as error:
        call(*args)
    assert "'01.1'" in str(error.value) and "'04.3'" in str(error.value)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_solution_prints_as_text_outside_a_notebook(exercise_id, capsys):
    assert solution(exercise_id) is None
    out = capsys.readouterr().out
    assert out.startswith(f"**Exercise {exercise_id}: worked solution.**")
    assert EXERCISES[exercise_id].solution.strip() in out


def test_in_a_notebook_the_result_adds_nothing_to_what_check_printed(capsys):
    result = check("02.1", 0.16 ** 4)
    assert DisplayFormatter().format(result) == ({}, {})
    assert repr(result) == "Result(exercise='02.1', status='right')"
    assert capsys.readouterr().out.count("Exercise 02.1") == 1


@pytest.mark.parametrize("exercise_id", ["01.3", "03.2", "03.3", "04.3", "04.4"])
def test_a_check_that_runs_something_is_quick_and_leaves_torch_alone(exercise_id):
    answer = EXERCISES[exercise_id].reference()
    parameters = [p.detach().clone() for p in answer.parameters()] if isinstance(answer, torch.nn.Module) else []
    rng = torch.get_rng_state()
    start = time.perf_counter()
    assert check(exercise_id, answer)
    assert time.perf_counter() - start < 5   # a guard against a check that trains; about 0.1 s here
    assert torch.equal(torch.get_rng_state(), rng)
    if parameters:
        assert all(torch.equal(p, q) and q.grad is None for p, q in zip(parameters, answer.parameters()))


# ---------------------------------------------------------------- the answers, derived again

def test_01_1_the_error_signal_is_autograds():
    y3 = torch.tensor([0.2, 0.7], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    z3 = torch.logit(y3).requires_grad_(True)
    (delta3,) = torch.autograd.grad(0.5 * ((torch.sigmoid(z3) - t) ** 2).sum(), z3)
    assert check("01.1", delta3)
    assert torch.allclose(delta3, torch.tensor(EXERCISES["01.1"].reference(), dtype=torch.float64))


def test_01_2_the_chain_value_is_autograds():
    chain = gc.theory.scalar_chain(depth=10, weight=2.0, bias=-1.0, x0=0.5, activation="sigmoid")
    assert all(z == 0 for z in chain.pre_activations)
    assert math.isclose(chain.gradients[0], EXERCISES["01.2"].reference(), rel_tol=1e-12)


def test_02_1_and_02_2_follow_from_the_package():
    local = gc.theory.sigmoid_derivative_from_output(0.8)
    assert math.isclose(gc.theory.chain_product([local] * 4), EXERCISES["02.1"].reference(), rel_tol=1e-12)
    symmetric = torch.linspace(-1, 1, 200_000, dtype=torch.float64)   # no point at 0: half of them positive
    relu_second_moment = gc.theory.activation_derivative("relu", symmetric).pow(2).mean().item()
    assert relu_second_moment == 0.5
    with torch.random.fork_rng():
        torch.manual_seed(0)
        n_var_w = 1024 * gc.models.init_linear_(torch.nn.Linear(1024, 1024), "default").weight.var().item()
    rho = math.sqrt(n_var_w * relu_second_moment)   # n Var(w) = 1/3 for PyTorch's default
    assert math.isclose(rho ** 29, EXERCISES["02.2"].reference(), rel_tol=0.1)


def test_02_3_the_step_is_absorbed_in_float32_but_not_in_float64():
    w32, w64 = torch.tensor(0.25), torch.tensor(0.25, dtype=torch.float64)
    assert ((w32 - 0.05 * 1e-9) - w32).item() == EXERCISES["02.3"].reference() == 0.0
    assert ((w64 - 0.05 * 1e-9) - w64).item() != 0.0


def test_03_1_the_sweep_measures_the_predicted_ratio():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(256, 784, generator=g), torch.randint(0, 10, (256,), generator=g)
    norms = gc.at_init.scale_sweep(X, y, [1.25], depth=30, width=64)[1.25]
    measured = norms[0] / norms[-1]
    assert EXERCISES["03.1"].reference() / 3 < measured < EXERCISES["03.1"].reference() * 3, measured


def test_04_1_the_he_std_is_torchs():
    assert math.isclose(EXERCISES["04.1"].reference(), torch.nn.init.calculate_gain("relu") / math.sqrt(256))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        layer = gc.models.init_linear_(torch.nn.Linear(256, 128), "kaiming")
    assert layer.weight.shape == (128, 256)   # fan-in 256: the columns
    assert abs(layer.weight.std().item() / EXERCISES["04.1"].reference() - 1) < 0.03


def test_04_2_a_uniform_guess_costs_ln_10():
    loss = torch.nn.functional.cross_entropy(torch.zeros(10, 10), torch.arange(10)).item()
    assert math.isclose(loss, EXERCISES["04.2"].reference(), rel_tol=1e-6)


def test_04_4_a_small_output_layer_starts_at_ln_10_for_any_seed():
    X, y = gc.load_mnist("train", limit=256)
    for seed in range(5):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = gc.MLP(depth=3, width=128, activation="relu", init="kaiming", output_scale=0.1)
        assert abs(gc.initialization.first_loss(model, X, y) / math.log(10) - 1) < 0.05
        assert check("04.4", model)
    logits = torch.zeros(256, 10)
    assert math.isclose(torch.nn.functional.cross_entropy(logits, y).item(), math.log(10), rel_tol=1e-6)


# ---------------------------------------------------------------- the judges

def test_a_number_is_judged_within_its_tolerance_and_off_by_ten_is_named():
    judge = Number(0.5, explain="yes", hint="think again", mistakes=[(0.25, "halved")])
    assert judge(0.502) == (True, "yes") and judge(np.float32(0.5))[0] and judge(torch.tensor(0.5))[0]
    assert judge(0.25) == (False, "halved")
    assert judge(5.0)[1].startswith("off by a factor of 10^1") and judge(0.05)[1].startswith("off by a factor of 10^-1")
    assert judge(-0.5) == (False, "right size, wrong sign.")
    assert judge(0.7) == (False, "think again")
    assert not judge(True)[0] and not judge("0.5")[0]


def test_numbers_take_any_sequence_and_a_factor_spans_decades():
    pair = Number((0.1, -0.2), explain="yes", hint="no")
    assert pair([0.1, -0.2])[0] and pair(np.array([0.1, -0.2]))[0] and pair(torch.tensor([[0.1, -0.2]]))[0]
    assert "2 numbers" in pair(0.1)[1]
    wide = Number(5e-12, explain="yes", hint="no", factor=2.0)
    assert wide(9e-12)[0] and not wide(1.1e-11)[0] and not wide(-5e-12)[0]


def test_a_choice_reads_the_first_word_and_reports_what_ran():
    runs = []
    judge = Choice(["above", "below"], lambda: runs.append(1) or ("below", "measured 0.1."), {"above": "No."})
    assert judge("Below 1.") == (True, "measured 0.1.")
    assert judge("above") == (False, "No. measured 0.1.")
    assert not judge("sideways")[0] and not judge(0.1)[0] and len(runs) == 2   # no run for a non-option


# ---------------------------------------------------------------- the notebooks and the package

NOTEBOOK_CHECK = re.compile(r'gc\.exercises\.check\("(\d\d\.\d)", answer\)')


def _cells(number):
    [path] = (ROOT / "notebooks").glob(f"{number}_*.ipynb")
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("number", [f"{k:02d}" for k in range(1, 14)])
def test_each_notebook_asks_two_to_four_exercises_in_order_and_leaves_them_unanswered(number):
    cells = _cells(number)
    asked = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        for exercise_id in NOTEBOOK_CHECK.findall(source):
            asked.append(exercise_id)
            assert cell["cell_type"] == "code" and re.search(r"^answer = \.\.\.", source, re.M), source
            assert f'gc.exercises.solution("{exercise_id}")' in source
            statement = "".join(cells[i - 1]["source"])
            assert cells[i - 1]["cell_type"] == "markdown" and f"Exercise {exercise_id}" in statement
    mine = sorted(i for i in IDS if i.startswith(number))
    assert asked == mine and 2 <= len(mine) <= 4
    assert mine == [f"{number}.{k}" for k in range(1, len(mine) + 1)]


def test_the_course_has_every_kind_of_exercise():
    assert {exercise.kind for exercise in EXERCISES.values()} == set(KINDS)


def test_the_exercises_load_neither_matplotlib_nor_ipywidgets():
    code = ("import sys, gradcourse as gc\nassert 'gradcourse.exercises' not in sys.modules\n"
            "gc.exercises.check('01.3', 'below')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets'))\n"
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_lists_every_subpackage_and_the_exercise_modules_stay_small():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    package = ROOT / "gradcourse"
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in package.rglob("__init__.py")}
    assert found == listed
    for path in (package / "exercises").glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name


def test_the_readme_counts_each_notebooks_exercises():
    rows = re.findall(r"^\| (\d\d) \| \[.*\| ([0-9–]+) \|$", (ROOT / "README.md").read_text(), re.M)
    assert len(rows) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    for number, count in rows:
        assert (0 if count == "–" else int(count)) == sum(i.startswith(f"{number}.") for i in IDS), number
    total = re.search(r"Notebooks 01–\d\d ask (\d+) exercises", (ROOT / "README.md").read_text())
    assert total and int(total.group(1)) == len(IDS)


def _names_bound(tree):
    """Every name a piece of code binds: assignments, imports, function and class names, loop targets,
    function parameters and comprehension variables."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return bound


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_a_solution_uses_only_names_its_notebook_defines(exercise_id):
    """A learner pastes a worked solution into the notebook: every name its code reads must be bound by
    the notebook's code cells (``gc``, ``torch``, the parameters, earlier results) or by the solution itself."""
    blocks = re.findall(r"```python\n(.*?)```", EXERCISES[exercise_id].solution, re.S)
    notebook = next((ROOT / "notebooks").glob(exercise_id.split(".")[0] + "_*.ipynb"))
    cells = json.loads(notebook.read_text())["cells"]
    notebook_code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    known = _names_bound(ast.parse(notebook_code)) | set(dir(builtins))
    for block in blocks:
        tree = ast.parse(block)
        read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        missing = read - known - _names_bound(tree)
        assert not missing, f"solution of {exercise_id} uses {sorted(missing)}, which {notebook.name} never defines"
