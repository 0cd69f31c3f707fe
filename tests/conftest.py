"""Shared fixtures for the gradcourse unit tests.

The tests use the bundled 5,000-digit MNIST subset only, so they run offline.
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere (gradcourse.display.plots imports it)

import pytest  # noqa: E402
import torch  # noqa: E402

import gradcourse  # noqa: E402
from helpers import load_script  # noqa: E402

# The tests that run notebooks through nbclient (test_wheel, test_reliability, test_colab_setup)
# use tools/nbclient_wake.py's fix: without it a cell that draws into an explorer's Output widget
# can leave its reply unread until the cell's timeout (see that module).
load_script("tools/nbclient_wake.py").install()

# No network in the tests: the course's notebooks (run by nbval) and every other kernel started
# by this session get an IPython startup file that makes any connection or name look-up outside
# the loopback interface raise. Unit tests that need a
# network failure simulate it themselves (tests/core/test_data.py).
NETWORK_GUARD = """
import socket as _socket
_connect, _getaddrinfo = _socket.socket.connect, _socket.getaddrinfo
def _is_local(host):
    return isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1", ""))
def _refuse(what):
    raise OSError(f"network access during the tests: {what} (the course must run offline)")
def _guarded_connect(self, address):
    if self.family in (_socket.AF_INET, _socket.AF_INET6) and not _is_local(address[0]):
        _refuse(f"connect to {address}")
    return _connect(self, address)
def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        _refuse(f"look-up of {host}")
    return _getaddrinfo(host, *args, **kwargs)
_socket.socket.connect, _socket.getaddrinfo = _guarded_connect, _guarded_getaddrinfo
"""
# Every figure a notebook shows (a cell's value, display(fig), an explorer's first draw in its widget
# Output) is checked by gradcourse.display.plots.audit.figure_problems in the kernel, as IPython formats
# it; what it finds is appended to the file FIGURE_AUDIT names, and _FigureAudit fails the nbval cell
# that showed it. GRADCOURSE_FIGURE_DIR=<folder> also saves each figure's PNG there, to look at, with
# its text alternative beside it (figure-01.png, figure-01.alt.txt, ...).
FIGURE_AUDIT = """
import json as _json, os as _os
def _audit_figures(format):
    def audited(obj, *args, **kwargs):
        data = format(obj, *args, **kwargs)
        from matplotlib.figure import Figure
        if isinstance(obj, Figure) and _os.environ.get("GRADCOURSE_FIGURE_AUDIT"):
            from gradcourse.display.plots.audit import figure_problems
            problems = figure_problems(obj)
            folder = _os.environ.get("GRADCOURSE_FIGURE_DIR")
            png = data[0].get("image/png") if data else None
            if folder and png:
                _os.makedirs(folder, exist_ok=True)
                count = len([n for n in _os.listdir(folder) if n.endswith(".png")]) + 1
                name = _os.path.join(folder, f"figure-{count:02d}.png")
                with open(name, "wb") as file:
                    file.write(png if isinstance(png, bytes) else __import__("base64").b64decode(png))
                from gradcourse.display.plots.alt_text import describe_figure
                with open(name[:-4] + ".alt.txt", "w") as file:
                    file.write(describe_figure(obj) + "\\n")
            with open(_os.environ["GRADCOURSE_FIGURE_AUDIT"], "a") as file:
                file.write(_json.dumps({"problems": problems}) + "\\n")
        return data
    return audited
get_ipython().display_formatter.format = _audit_figures(get_ipython().display_formatter.format)
"""
_ipython_dir = Path(tempfile.mkdtemp(prefix="gradcourse-ipython-"))
(_ipython_dir / "profile_default" / "startup").mkdir(parents=True)
(_ipython_dir / "profile_default" / "startup" / "00-no-network.py").write_text(NETWORK_GUARD)
(_ipython_dir / "profile_default" / "startup" / "01-figure-audit.py").write_text(FIGURE_AUDIT)
os.environ["IPYTHONDIR"] = str(_ipython_dir)
os.environ["GRADCOURSE_FIGURE_AUDIT"] = str(_ipython_dir / "figure-audit.jsonl")


NBVAL_STDOUT = {}
"""What each notebook's cells printed in this session's nbval run: {notebook stem: {cell number: stdout}}.
test_reliability's determinism check reruns a notebook once and compares with it."""


def pytest_collection_modifyitems(session, config, items):
    """Run the determinism checks after nbval has run the notebooks they compare with."""
    last = [item for item in items if item.name.startswith("test_a_notebook_prints_the_same_numbers_twice")]
    items[:] = [item for item in items if item not in last] + last


class _NbvalRecorder:
    """Records what nbval's cells print. A plugin of its own, since a conftest's per-test hooks
    apply only to the tests below its folder, and nbval's cells are in notebooks/."""

    @staticmethod
    def pytest_runtest_makereport(item, call):
        outputs = getattr(item, "test_outputs", None)
        if call.when == "call" and outputs is not None and hasattr(item, "cell_num"):
            text = "".join(o.get("text", "") for o in outputs
                           if o.get("output_type") == "stream" and o.get("name") == "stdout")
            NBVAL_STDOUT.setdefault(Path(str(item.fspath)).stem, {})[item.cell_num] = text


class _FigureAudit:
    """Fails an nbval cell whose figures figure_problems found fault with, naming what it found
    (FIGURE_AUDIT writes it, one line per figure shown, while the cell runs)."""

    def __init__(self, path):
        self.path, self.read = Path(path), 0

    def new_records(self):
        if not self.path.exists():
            return []
        with self.path.open() as file:
            file.seek(self.read)
            text = file.read()
        self.read += len(text.encode())
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if not hasattr(item, "cell_num"):
            return
        if call.when == "setup":      # what kernels showed before this cell (another test's) is not its own
            self.new_records()
        if call.when != "call":
            return
        problems = [p for record in self.new_records() for p in record["problems"]]
        if problems and report.passed:
            report.outcome = "failed"
            report.longrepr = (f"{len(problems)} problem(s) in the figures this cell shows "
                               "(gradcourse.display.plots.audit.figure_problems):\n  " + "\n  ".join(problems))


def pytest_configure(config):
    config.pluginmanager.register(_NbvalRecorder(), "gradcourse-nbval-recorder")
    config.pluginmanager.register(_FigureAudit(os.environ["GRADCOURSE_FIGURE_AUDIT"]), "gradcourse-figure-audit")


def pytest_sessionfinish(session, exitstatus):
    """Remove the temporary IPython profile once every kernel of the session has stopped."""
    shutil.rmtree(_ipython_dir, ignore_errors=True)


@pytest.fixture
def mnist_small():
    """The first 256 bundled MNIST training digits, as fresh tensors for each test."""
    return gradcourse.load_mnist("train", limit=256, source="bundled")


@pytest.fixture
def blobs():
    """An easy 3-class problem: Gaussian blobs in 20 dimensions, well separated."""
    generator = torch.Generator().manual_seed(0)
    centers = 4.0 * torch.randn(3, 20, generator=generator)
    y = torch.arange(300) % 3
    X = centers[y] + torch.randn(300, 20, generator=generator)
    return X, y


@pytest.fixture
def raises_bad():
    """``raises_bad(name, value)``: expect a ValueError whose message reads ``name=<repr of value>``.

    That is the message shape of gradcourse.core._checks, which every public function uses.
    """
    def expect(name, value):
        return pytest.raises(ValueError, match=re.escape(f"{name}={value!r}"))
    return expect


@pytest.fixture
def Xy(mnist_small):
    """The first 64 bundled digits."""
    return mnist_small[0][:64], mnist_small[1][:64]


@pytest.fixture
def no_figure_left_open():
    """Fail a test that leaves pyplot with more figures than it found
    (modules opt in with ``pytestmark = pytest.mark.usefixtures("no_figure_left_open")``)."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


@pytest.fixture
def resnet():
    """(model, X, y): a seeded ResNet-18 and a batch of four images with labels (helpers.resnet18_batch)."""
    from helpers import resnet18_batch
    return resnet18_batch()


@pytest.fixture
def transformer():
    """(model, X, y): a seeded two-layer Transformer encoder and a batch (helpers.transformer_batch)."""
    from helpers import transformer_batch
    return transformer_batch()
