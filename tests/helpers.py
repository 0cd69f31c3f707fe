"""Helpers shared by the test modules (tests/ is on sys.path under pytest's default import mode)."""

import contextlib
import importlib.util
import inspect
from pathlib import Path

import torch
from hypothesis import settings
from torch import nn

import gradcourse
from gradcourse.core.sequence_models import SequenceRegressor

ROOT = Path(__file__).resolve().parents[1]


def load_script(path):
    """The module of a script of the repository that is not a package (``path`` relative to the root,
    e.g. ``"tools/colab_setup.py"``), loaded from its file."""
    path = ROOT / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAST = settings(max_examples=25, deadline=None)
"""Hypothesis settings of the property tests over ranges of bad values: 25 examples, no deadline."""


def find_widgets(widget, kind):
    """All descendants of ``widget`` (itself included) of type ``kind``."""
    found = [widget] if isinstance(widget, kind) else []
    for child in getattr(widget, "children", ()):
        found += find_widgets(child, kind)
    return found


def record_calls(monkeypatch, module, name, *arguments):
    """Replace ``module.name`` by a wrapper that calls it and records the named ``arguments`` of each
    call (bound by the function's signature, defaults included): one value per call when one name
    is given, a tuple otherwise. Returns the list of records."""
    original = getattr(module, name)
    signature = inspect.signature(original)
    calls = []

    def recording(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = tuple(bound.arguments[argument] for argument in arguments)
        calls.append(values[0] if len(values) == 1 else values)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


# ---------------------------------------------------------------- models and answers

def reference(exercise_id):
    """The reference answer of exercise ``exercise_id`` (e.g. ``"05.1"``), made afresh."""
    from gradcourse.exercises import EXERCISES

    return EXERCISES[exercise_id].reference()


def seeded_mlp(seed, **options):
    """``gradcourse.MLP(**options)`` drawn after ``torch.manual_seed(seed)``, torch's generators left as they were."""
    with gradcourse.runtime.generators_restored():
        torch.manual_seed(seed)
        return gradcourse.MLP(**options)


def mlp_32x4(**options):
    """``gradcourse.MLP`` of width 32 and depth 4 (``options`` override them, and add others), built after ``set_seed(0)``."""
    gradcourse.set_seed(0)
    return gradcourse.MLP(**{"width": 32, "depth": 4, **options})


def sequence_regressor(cell="lstm", **options):
    """A ``SequenceRegressor(cell)`` of width 8 (``options`` override it, and add others), built after ``set_seed(0)``."""
    gradcourse.set_seed(0)
    return SequenceRegressor(cell, **{"width": 8, **options})


def batchnorm_mlp(depth=2):
    """A course MLP seeded with ``set_seed(0)``, with BatchNorm after each hidden layer (width 16, ReLU, He init)."""
    gradcourse.set_seed(0)
    return gradcourse.MLP(width=16, depth=depth, activation="relu", init="kaiming", norm="batch")


def frozen_batchnorm_mlp(depth=2):
    """:func:`batchnorm_mlp` in train mode, whose first BatchNorm the learner froze with ``.eval()``."""
    model = batchnorm_mlp(depth).train()
    model.blocks[0].norm.eval()
    return model


def resnet18_batch():
    """A seeded torchvision ResNet-18 for 10 classes, a batch of four 32 x 32 images and their labels."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])


def transformer_batch():
    """A seeded two-layer ``nn.TransformerEncoder`` (d_model 16), a batch of 4 sequences of 10 tokens and
    real-valued targets of the same shape."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    return model, torch.randn(4, 10, 16), torch.randn(4, 10, 16)


# ---------------------------------------------------------------- a model's state

def modes(model):
    """``{name: module.training}`` for every module of ``model``."""
    return {name: module.training for name, module in model.named_modules()}


def buffer_copies(module):
    """``{name: a copy of the buffer}`` for every buffer of ``module`` (BatchNorm's running statistics, ...)."""
    return {name: buffer.clone() for name, buffer in module.named_buffers()}


def same_buffers(before, module):
    """True when every buffer of ``module`` equals its copy in ``before`` (from :func:`buffer_copies`)."""
    return all(torch.equal(before[name], buffer) for name, buffer in module.named_buffers())


# ---------------------------------------------------------------- a training run's History

def history_of(losses, train, val=(), stop_step=None):
    """A :class:`~gradcourse.core.train.History` of these losses and per-epoch accuracies (gradient norms 1),
    stopped at ``stop_step`` in "hidden layer 2" when given: what the figures of runs draw."""
    from gradcourse.core.train import History

    history = History(loss=list(losses), grad_norm=[1.0] * len(losses), train_accuracy=list(train),
                      val_accuracy=list(val))
    if stop_step is not None:
        history.stop_step, history.stop_layer = stop_step, "hidden layer 2"
    return history


def measure_keeps_modes_and_buffers(measure, X, y):
    """Run ``measure(model, X, y)`` on an MLP whose BatchNorm the learner froze; assert every module keeps
    its own train/eval mode and BatchNorm its running statistics."""
    model = frozen_batchnorm_mlp()
    before, buffers = modes(model), buffer_copies(model)
    measure(model, X, y)
    assert modes(model) == before
    assert same_buffers(buffers, model)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (apt-get install chromium; .ci/run installs it): Playwright's own browser download
does not work offline."""

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def headless_chromium(sync_api):
    """:data:`CHROMIUM`, headless, launched through Playwright's ``sync_api``; closed on leaving."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
