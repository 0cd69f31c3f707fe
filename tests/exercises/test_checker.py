"""gradcourse.exercises.checker: ``check`` and ``solution`` over every exercise of the course. Every reference
answer passes its check, every typical mistake gets its own hint, no answer ever raises, a check runs only
its own small experiment and leaves torch and the answer as it found them, and the notebooks ask the
exercises the package holds. (Each notebook's answers, derived again, are in test_exercises_NN.py; the
judges in test_judging.py.)"""

import ast
import builtins
import collections
import contextlib
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from IPython.core.formatters import DisplayFormatter
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check, solution
from gradcourse.exercises.judging import KINDS

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
def test_a_typical_mistake_gets_its_own_hint_and_the_check_leaves_torch_alone(exercise_id, index, capsys):
    """(A reference answer's check is watched more closely below; a wrong answer takes other paths.)"""
    make_answer, words = EXERCISES[exercise_id].typical_mistakes()[index]
    answer = make_answer()
    state, threads, grad_mode = torch.get_rng_state(), torch.get_num_threads(), torch.is_grad_enabled()
    result = check(exercise_id, answer)
    assert not result and result.status == "wrong"
    assert words in result.message
    assert words[1:] in capsys.readouterr().out   # printed with its first letter in capitals
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads and torch.is_grad_enabled() == grad_mode


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
    assert result.status in ("wrong", "not read") and not result and result.message
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


# ---------------------------------------------------------------- what a check runs, and what it leaves alone

WORK = {
    # The most a check may run, as (outermost module forward passes, backward passes, optimizer steps):
    # a check is a measurement of the answer, not a training run. Any exercise not listed runs nothing.
    "01.3": (20, 11, 0),   # a 10-layer one-unit tanh chain and its gradients by autograd
    "03.2": (1, 1, 0),     # per_layer_factor: one forward and backward pass on 256 seeded inputs
    "04.3": (1, 1, 0),
    "05.3": (1, 1, 0),
    "09.3": (2, 1, 0),     # per_layer_factor, and the max-norm parametrization run to read layer 1's weight
    "04.4": (1, 0, 0),     # first_loss: one forward pass on the 256 probe digits
    "07.2": (1, 0, 0),     # the residual stream's statistics, one forward pass per network
    "07.3": (2, 0, 0),
    "08.3": (51, 1, 0),    # timestep_gradient_norms: 50 steps of the recurrent cell and the output layer, one backward
    "08.4": (51, 1, 0),
    "09.1": (1, 0, 0),     # one BatchNorm1d on a batch of three
    "10.2": (1, 1, 1),     # one Adam step of the notebook's SIGMOID_NET
    "10.3": (0, 0, 2),     # two Adam steps of a one-entry parameter
    "11.2": (1, 1, 0),
    "11.3": (0, 12, 12),   # GradScaler's 12-step trace of the notebook's cell
    "12.1": (2, 0, 0),
    "12.3": (101, 101, 101),  # diagnose's one step and the 100 SGD steps the statement names
    "13.2": (2, 2, 0),     # ReZero's gradients at init: block_gradient_norms and dL/dalpha
    "14.2": (1, 1, 0),     # one forward and backward pass of the depth-30 net the statement names
    "14.3": (2, 1, 0),     # the learner's recipe rebuilt with seed 0 and measured in both directions
}


def _learners_04_4_network():
    """A learner's answer to 04.4 whose forward pass draws random numbers (a Dropout after the first
    activation) and updates running statistics (BatchNorm)."""
    gc.set_seed(0)
    model = gc.MLP(depth=3, width=128, activation="relu", init="kaiming", output_scale=0.1, norm="batch")
    model.blocks[0].activation = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))
    return model


ANSWERS = [pytest.param(i, EXERCISES[i].reference, id=i) for i in IDS]
ANSWERS += [pytest.param("04.4", _learners_04_4_network, id="04.4-dropout-and-batchnorm")]


@contextlib.contextmanager
def _work_counted():
    """Count what runs inside: forward passes of outermost modules (a module called inside another's forward
    is part of that pass), backward passes (Tensor.backward and torch.autograd.grad) and optimizer steps."""
    counts = collections.Counter()
    depth = [0]

    def enter(module, inputs):
        counts["forward"] += depth[0] == 0
        depth[0] += 1

    def leave(module, inputs, output):
        depth[0] -= 1

    def counted(function):
        def run(*args, **kwargs):
            counts["backward"] += 1
            return function(*args, **kwargs)
        return run

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave, always_call=True),
               register_optimizer_step_post_hook(lambda optimizer, args, kwargs: counts.update(["steps"]))]
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.autograd, "backward", counted(torch.autograd.backward))   # what Tensor.backward calls
            patch.setattr(torch.autograd, "grad", counted(torch.autograd.grad))
            yield counts
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("exercise_id, make_answer", ANSWERS)
def test_a_check_runs_only_its_small_experiment_and_leaves_torch_and_the_answer_alone(exercise_id, make_answer):
    answer = make_answer()
    module = answer if isinstance(answer, torch.nn.Module) else torch.nn.Module()
    parameters, buffers = [p.detach().clone() for p in module.parameters()], [b.clone() for b in module.buffers()]
    modes = [m.training for m in module.modules()]
    generators = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    threads, grad_mode = torch.get_num_threads(), torch.is_grad_enabled()
    with _work_counted() as counts:
        assert check(exercise_id, answer)
    most = dict(zip(("forward", "backward", "steps"), WORK.get(exercise_id, (0, 0, 0))))
    assert all(counts[kind] <= most[kind] for kind in most), (dict(counts), most)
    assert torch.equal(torch.get_rng_state(), generators[0]) and random.getstate() == generators[1]
    assert np.array_equal(np.random.get_state()[1], generators[2])
    assert torch.get_num_threads() == threads and torch.is_grad_enabled() == grad_mode
    assert all(torch.equal(p, q) and q.grad is None for p, q in zip(parameters, module.parameters()))
    assert all(torch.equal(b, c) for b, c in zip(buffers, module.buffers()))
    assert [m.training for m in module.modules()] == modes


@pytest.mark.parametrize("exercise_id", sorted(WORK))
def test_a_check_that_runs_something_gives_the_same_verdict_twice(exercise_id, capsys):
    answer = EXERCISES[exercise_id].reference()
    check(exercise_id, answer)
    first = capsys.readouterr().out
    check(exercise_id, answer)
    assert capsys.readouterr().out == first


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
    assert asked == mine and 2 <= len(mine) <= 5
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


def test_the_exercise_modules_stay_small():
    package = ROOT / "gradcourse"
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
