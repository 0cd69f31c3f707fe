"""Training: :func:`fit`, a short loop whose optional behaviours are callbacks, and the
:class:`History` it returns. See :mod:`~gradcourse.core.train.loop`,
:mod:`~gradcourse.core.train.history` and :mod:`~gradcourse.core.train.optimizers`."""

from .history import History
from .loop import SEEDS, check_fit, fit
from .optimizers import OPTIMIZERS, make_optimizer

__all__ = ["History", "OPTIMIZERS", "SEEDS", "check_fit", "fit", "make_optimizer"]
