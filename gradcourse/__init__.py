"""gradcourse: the package behind a hands-on course on vanishing and exploding gradients.

Three layers, each a subpackage, whose imports run downwards only:

* :mod:`gradcourse.core` -- what a learner keeps using on their own networks: data, models, ``fit``,
  ``GradientMonitor``, ``diagnose``, seeds and threads. ``import gradcourse`` loads the core only, so
  it needs neither matplotlib nor ipywidgets; its main names are re-exported here.
* :mod:`gradcourse.lessons` -- the notebooks' experiments, one module per idea, built on the core.
* :mod:`gradcourse.display` -- figures and widgets; and :mod:`gradcourse.exercises`, the checked exercises.

A lesson or display module is an attribute of ``gradcourse`` imported on first use: ``gc.clipping`` is
:mod:`gradcourse.lessons.clipping`, ``gc.plots`` is :mod:`gradcourse.display.plots`.
"""

from __future__ import annotations

import importlib
import importlib.util

from .core import data, models, runtime, scoring
from .core.data import batches, load_mnist
from .core.diagnose import diagnose
from .core.models import MLP
from .core.monitor import GradientMonitor
from .core.probes import activation_gradient_norms, layer_gradient_norms
from .core.runtime import device, environment_report, set_seed, usable_cpus, use_cpus
from .core.train import (Callback, ClipNorm, ClipValue, EpochScores, History, NormalizeGradient, ProgressBar, Scheduler,
                         fit)

__version__ = "0.1.0"

LESSONS = ("at_init", "batchnorm", "cliff", "clipping", "dynamical_isometry", "edge_of_chaos", "finite_differences",
           "imbalance", "initialization", "instabilities", "normalization", "normalization_free", "optimization",
           "precision", "residual", "sequences", "signal_propagation", "theory", "training_runs", "transformers",
           "weight_constraints")
"""The modules of :mod:`gradcourse.lessons`, reachable as ``gradcourse.<name>``."""
DISPLAY = ("controls", "figures", "plots", "theory_figures", "widgets")
"""The modules of :mod:`gradcourse.display`, reachable as ``gradcourse.<name>``."""

__all__ = ["Callback", "ClipNorm", "ClipValue", "EpochScores", "GradientMonitor", "History", "MLP", "NormalizeGradient",
           "ProgressBar", "Scheduler", "activation_gradient_norms", "batches", "data", "device", "diagnose",
           "environment_report", "fit", "layer_gradient_norms", "load_mnist", "models", "runtime", "scoring", "set_seed",
           "usable_cpus", "use_cpus"]


def __getattr__(name):
    """A lesson, display or exercises module, imported when first used."""
    if name in LESSONS:
        module = importlib.import_module(f".lessons.{name}", __name__)
    elif name in DISPLAY:
        module = importlib.import_module(f".display.{name}", __name__)
    elif name in ("exercises", "lessons", "display"):
        module = importlib.import_module(f".{name}", __name__)
    elif importlib.util.find_spec(f"{__name__}.core.{name}") is not None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; it is the core module "
                             f"{__name__}.core.{name}: import {__name__}.core.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module
    return module


def __dir__():
    return sorted({*globals(), *LESSONS, *DISPLAY, "exercises", "lessons", "display"})
