"""gradcourse: the package behind a hands-on course on vanishing and exploding gradients.

The core, usable in any training script: :mod:`~gradcourse.data` (MNIST, batches),
:mod:`~gradcourse.models` (MLP), :mod:`~gradcourse.train` (fit), :mod:`~gradcourse.scoring`
(accuracy), :mod:`~gradcourse.monitor`
(GradientMonitor), :mod:`~gradcourse.diagnose`, :mod:`~gradcourse.runtime` (seeds, CPU threads,
device). The lessons' experiments build on it: :mod:`~gradcourse.at_init`, :mod:`~gradcourse.initialization`,
:mod:`~gradcourse.training_runs`, :mod:`~gradcourse.theory`, :mod:`~gradcourse.clipping`,
:mod:`~gradcourse.sequences`, :mod:`~gradcourse.residual`, :mod:`~gradcourse.normalization`,
:mod:`~gradcourse.batchnorm`,
:mod:`~gradcourse.optimization`, :mod:`~gradcourse.precision`. The display,
:mod:`~gradcourse.plots` (matplotlib figures from numbers), :mod:`~gradcourse.figures` (an
experiment run and drawn), :mod:`~gradcourse.widgets` (ipywidgets) and
:mod:`~gradcourse.exercises` (a learner's answers checked, solutions shown), is imported on first
use, so ``import gradcourse`` does not load matplotlib or ipywidgets.
"""

from __future__ import annotations

import importlib

from . import at_init, batchnorm, clipping, data, layers, models, monitor, normalization, norms, optimization, precision
from . import initialization, probes, residual, scoring, sequences, theory, train, training_runs, transformers
from .data import batches, load_mnist
from .diagnose import diagnose  # (the function; the module stays importable as gradcourse.diagnose)
from .models import MLP
from .monitor import GradientMonitor
from .probes import activation_gradient_norms, layer_gradient_norms
from .runtime import device, environment_report, set_seed, usable_cpus, use_cpus
from .train import History, fit

__version__ = "0.1.0"

_DISPLAY = ("plots", "figures", "widgets", "exercises")

__all__ = ["GradientMonitor", "History", "MLP", "activation_gradient_norms", "at_init", "batches", "batchnorm",
           "clipping", "data",
           "device", "diagnose", "environment_report", "fit", "initialization", "layer_gradient_norms", "layers",
           "load_mnist", "models",
           "monitor", "normalization", "norms", "optimization", "precision", "probes", "residual", "scoring", "sequences",
           "set_seed", "theory", "train", "training_runs", "transformers", "usable_cpus", "use_cpus", *_DISPLAY]


def __getattr__(name):
    """``gradcourse.plots``, ``gradcourse.figures``, ``gradcourse.widgets`` and ``gradcourse.exercises``,
    imported when first used."""
    if name in _DISPLAY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
