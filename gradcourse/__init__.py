"""gradcourse: the package behind a hands-on course on vanishing and exploding gradients.

Modules: :mod:`~gradcourse.data` (MNIST, batches), :mod:`~gradcourse.models` (MLP),
:mod:`~gradcourse.train` (fit), :mod:`~gradcourse.monitor` (GradientMonitor),
:mod:`~gradcourse.plots`, :mod:`~gradcourse.widgets`, :mod:`~gradcourse.theory`.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from . import _checks

__version__ = "0.1.0"


def set_seed(seed=0):
    """Seed Python's, NumPy's and torch's random generators so a run repeats exactly."""
    _checks.integer("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def device():
    """``torch.device("cuda")`` when a GPU is available, else ``torch.device("cpu")``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment_report():
    """The versions and compute device of this session, as ``{name: value}``."""
    import platform

    import ipywidgets
    import matplotlib
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "ipywidgets": ipywidgets.__version__,
        "matplotlib": matplotlib.__version__,
        "gradcourse": __version__,
        "device": str(device()),
        "CPU threads": torch.get_num_threads(),
    }


from . import data, experiments, models, monitor, plots, precision, theory, train, widgets  # noqa: E402  (after set_seed, which widgets use)
from .data import batches, load_mnist  # noqa: E402
from .diagnose import diagnose  # noqa: E402  (the function; the module stays importable as gradcourse.diagnose)
from .models import MLP  # noqa: E402
from .monitor import GradientMonitor, activation_gradient_norms, layer_gradient_norms  # noqa: E402
from .train import History, fit  # noqa: E402
from . import clipping, sequences  # noqa: E402  (gradient clipping and the cliff; recurrent gradients through time: notebooks 06, 08)
from . import normalization, optimization, residual, runs  # noqa: E402  (notebooks 07, 09, 10)
