"""Reliability: bad arguments over ranges of values, no network, corrupted caches, divergence
inside a live kernel, determinism of the notebooks, and no network access during the course."""

import math
import socket
import threading
import time
from pathlib import Path

import nbformat
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nbclient import NotebookClient

import gradcourse
from conftest import NBVAL_STDOUT
from gradcourse.core import data

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
FAST = settings(max_examples=25, deadline=None)


# ---------------------------------------------------------------- bad arguments, over ranges

@FAST
@given(st.integers(max_value=0))
def test_depth_below_one_is_rejected_by_name(depth):
    with pytest.raises(ValueError, match=rf"depth={depth} is not allowed"):
        gradcourse.MLP(depth=depth)


@FAST
@given(st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf)))
def test_nonpositive_or_nonfinite_init_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="init_scale="):
        gradcourse.MLP(depth=1, init_scale=scale)


@FAST
@given(st.text(min_size=1, max_size=12).filter(lambda s: s not in gradcourse.core.models.ACTIVATIONS))
def test_unknown_activation_names_list_the_allowed_ones(name):
    with pytest.raises(ValueError, match="activation=.*choose one of: 'sigmoid'"):
        gradcourse.MLP(activation=name)


@FAST
@given(st.one_of(st.floats(max_value=0.0), st.just(math.nan)))
def test_fit_rejects_bad_learning_rates(lr):
    X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="lr="):
        gradcourse.fit(gradcourse.MLP(in_features=4, depth=1), X, y, epochs=1, batch_size=4, lr=lr, progress=False)


@FAST
@given(st.integers(max_value=0))
def test_load_mnist_and_batches_reject_nonpositive_sizes(n):
    with pytest.raises(ValueError, match=rf"limit={n} is not allowed"):
        gradcourse.load_mnist(limit=n, source="bundled")
    with pytest.raises(ValueError, match=rf"batch_size={n} is not allowed"):
        gradcourse.batches(torch.zeros(4, 2), torch.zeros(4), batch_size=n)


@FAST
@given(st.floats(min_value=-1e6, max_value=1e6).filter(lambda v: not 0 < v <= 1))
def test_diagnose_thresholds_must_be_positive(value):
    X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
    model = gradcourse.MLP(in_features=4, depth=1)
    if value <= 0:
        with pytest.raises(ValueError, match="thresholds\\['dead_share'\\]"):
            gradcourse.diagnose(model, X, y, thresholds={"dead_share": value})
    else:
        # a share is at most 1, so a threshold at or above 1 can never be crossed
        report = gradcourse.diagnose(model, X, y, thresholds={"dead_share": value})
        assert len(report.dead) == len(report.activation_names) and all(0 <= d <= 1 for d in report.dead)
        assert "dead units" not in report.symptom_names


# ---------------------------------------------------------------- no network

@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """An empty cache folder, and nothing read yet in this process."""
    monkeypatch.setattr(data, "_cache", {})
    return tmp_path


def test_the_default_source_makes_no_network_access(empty_cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    X, _ = gradcourse.load_mnist(root=empty_cache)
    assert len(X) == 4000


def test_dns_failure_of_the_full_download_is_reported_at_once(empty_cache, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="full MNIST could not be downloaded.*source='bundled'"):
        gradcourse.load_mnist(root=empty_cache, source="torchvision")
    assert time.perf_counter() - start < 5


def test_a_server_that_never_answers_is_given_up_within_the_time_bound(empty_cache, monkeypatch):
    import torchvision

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_and_stay_silent():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.getsockname()[1]}/"])
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 1.0)
    try:
        start = time.perf_counter()
        with pytest.raises(RuntimeError, match="full MNIST could not be downloaded"):
            gradcourse.load_mnist(root=empty_cache, source="torchvision")
        elapsed = time.perf_counter() - start
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
    assert accepted, "the download never reached the silent server"
    assert elapsed < 4 * data.DOWNLOAD_TIMEOUT_S + 2


# ---------------------------------------------------------------- corrupted cache

def _write_idx(path, magic_dims, payload):
    import struct

    ndim = len(magic_dims)
    path.write_bytes(bytes([0, 0, 8, 3 if ndim == 3 else 1]) + struct.pack(f">{ndim}i", *magic_dims) + payload)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_cache_is_detected_with_a_clear_message(empty_cache, damage, capsys):
    raw = empty_cache / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 6), ("t10k", 4)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", (n, 28, 28), bytes(n * 784))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", (n,), bytes(n))
    broken = raw / "train-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:1000] if damage == "truncated" else b"not an idx file at all")
    with pytest.raises(RuntimeError, match="truncated|not an MNIST IDX file") as error:
        gradcourse.load_mnist(root=empty_cache, source="torchvision")
    assert "Delete the folder" in str(error.value)
    X, _ = gradcourse.load_mnist(root=empty_cache)          # the course's digits do not depend on the cache
    assert len(X) == 4000 and capsys.readouterr().out == ""


# ---------------------------------------------------------------- kernels and notebooks

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
        "history = gc.fit(model, X, y, epochs=2, batch_size=64, lr=0.01, progress=False)",
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


# ---------------------------------------------------------------- safety

def test_the_package_never_unpickles_or_evaluates_data():
    package = Path(gradcourse.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text, path
        assert "pickle" not in text, path
        for call in ("eval(", "exec("):
            assert not any(call in line and not line.lstrip().startswith("#") and f".{call}" not in line
                           for line in text.splitlines()), (path, call)


# ---------------------------------------------------------------- errors a learner can act on (issue 16, item 9)

def _small_mlp():
    gradcourse.set_seed(0)
    return gradcourse.MLP(in_features=6, width=8, depth=2, out_features=3)


_X9, _Y9 = torch.randn(32, 6), torch.arange(32) % 3
_FIT = dict(epochs=1, batch_size=8, lr=0.1, progress=False)


@pytest.mark.parametrize("call, match", [
    (lambda: gradcourse.fit(_small_mlp(), _X9.double(), _Y9, **_FIT), r"X=<tensor shape=\(8, 6\) dtype=torch.float64>"),
    (lambda: gradcourse.fit(_small_mlp(), torch.randn(32, 5), _Y9, **_FIT), "the model cannot take X="),
    (lambda: gradcourse.fit(_small_mlp(), _X9, _Y9.int(), **_FIT), r"y\.long\(\) converts"),
    (lambda: gradcourse.fit(_small_mlp().requires_grad_(False), _X9, _Y9, **_FIT), "nothing to train"),
    (lambda: gradcourse.diagnose(_small_mlp(), _X9.double(), _Y9), "dtype=torch.float64"),
    (lambda: gradcourse.layer_gradient_norms(_small_mlp(), torch.randn(32, 5), _Y9), "the model cannot take X="),
    (lambda: gradcourse.diagnose(torch.nn.LSTM(6, 3, batch_first=True), _X9.unsqueeze(1), _Y9), "pass compute_loss="),
    (lambda: gradcourse.diagnose(_small_mlp(), _X9, _Y9, optimizer=torch.optim.LBFGS(_small_mlp().parameters())),
     "optimizer=LBFGS is not allowed"),
    (lambda: gradcourse.GradientMonitor(_small_mlp(), layers=torch.nn.Linear(2, 2)), r"layers=\[module\]"),
    (lambda: gradcourse.set_seed(2**33), "seed=8589934592"),
    (lambda: gradcourse.MLP(init_scale=1e300), r"init_scale=1e\+300 is not allowed"),
])
def test_mistakes_raise_a_value_error_that_says_what_to_change(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_refused_seed_reseeds_no_generator():
    import random

    random.seed(5)
    expected = random.random()
    random.seed(5)
    with pytest.raises(ValueError):
        gradcourse.set_seed(2**33)
    assert random.random() == expected


def test_running_out_of_memory_is_not_reported_as_a_mismatched_input():
    class Hungry(torch.nn.Linear):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        gradcourse.core.probes.run_model(Hungry(6, 3), _X9)
