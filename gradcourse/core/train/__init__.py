"""Training: :func:`fit`, a short loop whose optional behaviours are callbacks, and the
:class:`History` it returns. See :mod:`~gradcourse.core.train.loop`,
:mod:`~gradcourse.core.train.history` and :mod:`~gradcourse.core.train.optimizers`."""

from .history import History
from .callbacks import Callback, ClipNorm, ClipValue, EpochScores, FitState, NormalizeGradient, ProgressBar, Scheduler
from .loop import SEEDS, check_fit, fit
from .optimizers import OPTIMIZERS, make_optimizer

__all__ = ["Callback", "ClipNorm", "ClipValue", "EpochScores", "FitState", "History", "NormalizeGradient", "OPTIMIZERS",
           "ProgressBar", "SEEDS", "Scheduler", "check_fit", "fit", "make_optimizer"]
