"""Watching training: :class:`GradientMonitor` records per-layer gradient norms, activation statistics and
update-to-weight ratios at every optimizer step, in any training loop; :func:`to_dataframe` and
:func:`to_tensorboard` take its records elsewhere. See :mod:`~gradcourse.core.monitor.monitor`; behind it,
:mod:`~gradcourse.core.monitor.hooks` (what it attaches), :mod:`~gradcourse.core.monitor.training_steps` and
:mod:`~gradcourse.core.monitor.rows` (the steps recorded), :mod:`~gradcourse.core.monitor.activation_summary`,
:mod:`~gradcourse.core.monitor.step_updates` and :mod:`~gradcourse.core.monitor.update_step` (``||dW||``)."""

from .export import to_dataframe, to_tensorboard
from .monitor import STATS, GradientMonitor, paused

__all__ = ["GradientMonitor", "STATS", "paused", "to_dataframe", "to_tensorboard"]
