"""gradcourse: the package behind a hands-on course on vanishing and exploding gradients.

Modules: :mod:`~gradcourse.data` (MNIST, batches), :mod:`~gradcourse.models` (MLP),
:mod:`~gradcourse.train` (fit), :mod:`~gradcourse.monitor` (GradientMonitor),
:mod:`~gradcourse.plots`, :mod:`~gradcourse.widgets`, :mod:`~gradcourse.theory`;
:mod:`~gradcourse.runtime` (seeds, CPU threads, device).
"""

from __future__ import annotations

from .runtime import device, environment_report, set_seed, usable_cpus, use_cpus

__version__ = "0.1.0"

from . import data, experiments, models, monitor, plots, precision, theory, train, widgets
from .data import batches, load_mnist
from .diagnose import diagnose  # (the function; the module stays importable as gradcourse.diagnose)
from .models import MLP
from .monitor import GradientMonitor, activation_gradient_norms, layer_gradient_norms
from .train import History, fit
from . import clipping, sequences  # (gradient clipping and the cliff; recurrent gradients through time: notebooks 06, 08)
from . import normalization, optimization, residual, runs  # (notebooks 07, 09, 10)
