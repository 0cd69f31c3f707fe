"""The course end to end, in live Jupyter kernels: a diverging run leaves the kernel alive, the kernels run
offline, and a notebook prints the same numbers every time it runs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import NBVAL_STDOUT

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def _run(cells, timeout=180):
    """Execute code cells in a fresh kernel; return the notebook with its outputs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True).execute()
    return nb


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def _errors(nb):
    return [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_a_diverging_fit_leaves_the_kernel_alive():
    nb = _run([
        "import math, gradcourse as gc\n"
        "gc.set_seed(0)\n"
        "X, y = gc.load_mnist(limit=512)\n"
        "model = gc.MLP(depth=20, activation='relu', init='kaiming', init_scale=2.0)\n"
        "history = gc.fit(model, X, y, epochs=2, batch_size=64, lr=0.01)",
        "print(history.diverged, history.stop_step, history.stop_layer)\n"
        "print(all(math.isfinite(v) for v in history.loss + history.grad_norm))",
        "print('alive', 1 + 1)",
    ])
    assert not _errors(nb)
    assert "Training stopped at step" in _stdout(nb.cells[0])
    diverged, step, layer = _stdout(nb.cells[1]).splitlines()[0].split(" ", 2)
    assert diverged == "True" and int(step) >= 1 and layer.startswith("hidden layer")
    assert _stdout(nb.cells[1]).splitlines()[1] == "True"
    assert _stdout(nb.cells[2]).strip() == "alive 2"


def test_the_network_guard_is_active_in_notebook_kernels():
    """conftest.py makes every kernel of this test session (nbval's included) refuse non-local
    connections and look-ups: so the nbval run of every notebook is itself the check that the
    course opens no network connection."""
    nb = _run(["import socket\n"
               "try:\n"
               "    socket.getaddrinfo('pytorch.org', 443)\n"
               "except OSError as error:\n"
               "    print('refused:', error)",
               "import gradcourse as gc\nX, y = gc.load_mnist()\nprint(len(X))"])
    assert not _errors(nb)
    assert _stdout(nb.cells[0]).startswith("refused: network access during the tests")
    assert _stdout(nb.cells[1]).strip() == "4000"


DETERMINISM = ["02_vanishing_gradients", "12_capstone_diagnose_and_fix"]


def _run_notebook_stdout(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return [_stdout(c) for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", DETERMINISM)
def test_a_notebook_prints_the_same_numbers_twice(name):
    """A fresh run prints what this session's nbval run printed (conftest records it and orders this
    test after the notebooks); run alone, without nbval, the notebook runs twice."""
    path = [p for p in NOTEBOOKS if p.stem == name][0]
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    recorded = NBVAL_STDOUT.get(name, {})
    first = [recorded[i] for i in sorted(recorded)] if len(recorded) == code_cells else _run_notebook_stdout(path)
    second = _run_notebook_stdout(path)
    assert first == second
    assert sum(len(text) for text in first) > 500  # the notebook does print its numbers
