"""gradcourse: the package behind a hands-on course on vanishing and exploding gradients.

The core, usable in any training script: :mod:`~gradcourse.data` (MNIST, batches),
:mod:`~gradcourse.models` (MLP), :mod:`~gradcourse.train` (fit), :mod:`~gradcourse.monitor`
(GradientMonitor), :mod:`~gradcourse.diagnose`, :mod:`~gradcourse.runtime` (seeds, CPU threads,
device). The lessons' experiments build on it: :mod:`~gradcourse.experiments`,
:mod:`~gradcourse.runs`, :mod:`~gradcourse.theory`, :mod:`~gradcourse.clipping`,
:mod:`~gradcourse.sequences`, :mod:`~gradcourse.residual`, :mod:`~gradcourse.normalization`,
:mod:`~gradcourse.optimization`, :mod:`~gradcourse.precision`. The display,
:mod:`~gradcourse.plots` (matplotlib) and :mod:`~gradcourse.widgets` (ipywidgets), is imported on
first use, so ``import gradcourse`` does not load matplotlib or ipywidgets.
"""

from __future__ import annotations

import importlib

from . import clipping, data, experiments, layers, models, monitor, normalization, norms, optimization, precision
from . import probes, residual, runs, sequences, theory, train
from .data import batches, load_mnist
from .diagnose import diagnose  # (the function; the module stays importable as gradcourse.diagnose)
from .models import MLP
from .monitor import GradientMonitor
from .probes import activation_gradient_norms, layer_gradient_norms
from .runtime import device, environment_report, set_seed, usable_cpus, use_cpus
from .train import History, fit

__version__ = "0.1.0"

_DISPLAY = ("plots", "widgets")

__all__ = ["GradientMonitor", "History", "MLP", "activation_gradient_norms", "batches", "clipping", "data", "device",
           "diagnose", "environment_report", "experiments", "fit", "layer_gradient_norms", "load_mnist", "models",
           "layers", "monitor", "normalization", "norms", "optimization", "precision", "probes", "residual", "runs", "sequences", "set_seed",
           "theory", "train", "usable_cpus", "use_cpus", *_DISPLAY]


def __getattr__(name):
    """``gradcourse.plots`` and ``gradcourse.widgets``, imported when first used."""
    if name in _DISPLAY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
