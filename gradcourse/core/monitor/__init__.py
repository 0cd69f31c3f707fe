"""Watching training: :class:`GradientMonitor` records per-layer gradient norms, activation statistics and
update-to-weight ratios at every optimizer step, in any training loop; :func:`to_dataframe` and
:func:`to_tensorboard` take its records elsewhere. See :mod:`~gradcourse.core.monitor.monitor`."""

from .export import to_dataframe, to_tensorboard
from .monitor import STATS, GradientMonitor, paused

__all__ = ["GradientMonitor", "STATS", "paused", "to_dataframe", "to_tensorboard"]
