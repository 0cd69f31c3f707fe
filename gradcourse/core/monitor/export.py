"""Take what a :class:`~gradcourse.core.monitor.GradientMonitor` recorded elsewhere: a tidy pandas table
(:func:`to_dataframe`) or TensorBoard's event files (:func:`to_tensorboard`).

Both read the monitor through its public API only (:meth:`~GradientMonitor.series`,
:attr:`~GradientMonitor.layer_names`, :attr:`~GradientMonitor.activation_names`,
:meth:`~GradientMonitor.histograms`, :attr:`~GradientMonitor.every`). pandas and TensorBoard are
imported when a function needs them, so importing this module loads neither.

Steps: row ``i`` of a statistic is the ``i``-th recorded training step (one optimizer step, with the
forward and backward passes before it, however many). A monitor built with ``every=k`` records the
1st, (k+1)-th, (2k+1)-th ... training step, so row ``i`` is the training step ``i * k`` (counting from 0).
"""

from __future__ import annotations

import math
import os

import torch

from .. import _checks

__all__ = ["COLUMNS", "to_dataframe", "to_tensorboard"]

COLUMNS = ("step", "layer", "statistic", "value")
"""The columns of :func:`to_dataframe`'s table (``training_step`` follows ``step`` when ``every > 1``)."""


def _monitor(monitor):
    from .monitor import GradientMonitor   # here, not above: monitor.py may import this module

    if not isinstance(monitor, GradientMonitor):
        raise ValueError(f"monitor={_checks.describe(monitor)} is not allowed; it must be a gradcourse GradientMonitor")
    return monitor


def _recorded(monitor):
    """``[(statistic, values (steps, columns) as a float64 NumPy array, column names)]`` for each statistic with
    at least one recorded row, in the order of :data:`gradcourse.core.monitor.STATS`."""
    from .monitor import STATS

    found = []
    for statistic in STATS:
        values = monitor.series(statistic).detach().to("cpu", torch.float64).numpy()
        names = monitor.layer_names if statistic in ("grad_norm", "update_ratio") else monitor.activation_names
        if values.shape[0] and values.shape[1]:
            if values.shape[1] != len(names):
                raise RuntimeError(f"{statistic} has {values.shape[1]} columns but the monitor names {len(names)}")
            found.append((statistic, values, list(names)))
    return found


def to_dataframe(monitor):
    """The monitor's records as a tidy :class:`pandas.DataFrame`: one row per (step, layer, statistic).

    Columns:

    * ``step``: the index of the recorded row (0, 1, 2, ...), as in ``monitor.series(statistic)[step]``;
    * ``training_step`` (only when the monitor was built with ``every=k``, ``k > 1``): ``step * k``, the
      training step the row was recorded at, counting from 0 (the monitor records the 1st, (k+1)-th, ...);
    * ``layer``: the layer's name (:attr:`~GradientMonitor.layer_names`) for ``grad_norm`` and
      ``update_ratio``, the activation call's name (:attr:`~GradientMonitor.activation_names`) for
      ``act_mean``, ``act_std``, ``saturated`` and ``dead``;
    * ``statistic``: one of :data:`gradcourse.core.monitor.STATS`;
    * ``value``: the recorded float64 value, NaN kept (``saturated`` is NaN for activations without two flat
      tails, every statistic of an output changed in place is NaN).

    Rows are ordered by statistic (in the order of ``STATS``), then step, then layer in forward order. A
    statistic with no recorded row is absent. Histograms (``histogram_bins=``) are not rows: take them from
    :meth:`~GradientMonitor.histograms`, or write them with :func:`to_tensorboard`.

    Example::

        table = to_dataframe(monitor)
        table[table.statistic == "grad_norm"].pivot(index="step", columns="layer", values="value")

    Raises ModuleNotFoundError (an ImportError) when pandas is not installed.
    """
    monitor = _monitor(monitor)
    try:
        import pandas as pd
    except ImportError as error:
        raise ModuleNotFoundError("to_dataframe needs pandas, which is not installed: pip install pandas "
                                  "(Google Colab has it already)", name="pandas") from error
    import numpy as np

    steps, layers, statistics, values = [], [], [], []
    for statistic, table, names in _recorded(monitor):
        rows, columns = table.shape
        steps.append(np.repeat(np.arange(rows, dtype=np.int64), columns))
        layers.append(np.tile(np.array(names, dtype=object), rows))
        statistics.append(np.full(rows * columns, statistic, dtype=object))
        values.append(table.reshape(-1))
    step = np.concatenate(steps) if steps else np.empty(0, dtype=np.int64)
    data = {"step": step}
    if monitor.every > 1:
        data["training_step"] = step * monitor.every
    data["layer"] = pd.Series(np.concatenate(layers) if layers else np.empty(0, dtype=object), dtype="str")
    data["statistic"] = pd.Series(np.concatenate(statistics) if statistics else np.empty(0, dtype=object), dtype="str")
    data["value"] = np.concatenate(values) if values else np.empty(0, dtype=np.float64)
    return pd.DataFrame(data)


def to_tensorboard(monitor, writer, *, tag_prefix="gradcourse"):
    """Write the monitor's records to TensorBoard event files.

    ``writer``: a :class:`torch.utils.tensorboard.SummaryWriter` (or any writer with its
    ``add_scalar`` and ``add_histogram_raw``), which is flushed and left open; or a directory (``str`` or
    path), for which a SummaryWriter is created and closed. Then ``tensorboard --logdir DIR`` (in a
    notebook, ``%load_ext tensorboard`` and ``%tensorboard --logdir DIR``) shows:

    * scalars ``{tag_prefix}/{statistic}/{layer}``, one per recorded row of each statistic of
      :data:`gradcourse.core.monitor.STATS` and each layer or activation call (as :func:`to_dataframe`'s rows),
      stored as float32 at ``global_step = step * monitor.every``, the training step counting from 0.
      NaN values are skipped (TensorBoard cannot draw them; :func:`to_dataframe` keeps them), so a
      statistic that never applies (``saturated`` of a ReLU) has no tag at all; infinities are written;
    * where the monitor was built with ``histogram_bins=B``, histograms ``{tag_prefix}/histogram/{activation}``
      at the same steps, written with ``add_histogram_raw``: bucket ``i`` runs from ``edges[i]`` to
      ``edges[i + 1]`` (``bucket_limits`` are the ``B`` right edges, ``min`` and ``max`` the range's ends) and
      its count is the recorded *share* of the output's entries in it, since the number of entries is not
      recorded; ``num`` is the shares' sum (1 when no entry fell outside the range), ``sum`` and
      ``sum_squares`` are estimated from the bins' midpoints. Rows that are NaN (an output changed in place)
      are skipped.

    With ``tag_prefix=""`` the tags start with the statistic. Returns the log directory (the writer's
    ``get_logdir()``; None for a writer without one).

    Raises ModuleNotFoundError (an ImportError) when a directory is given and TensorBoard is not installed.
    """
    monitor = _monitor(monitor)
    if not isinstance(tag_prefix, str):
        raise ValueError(f"tag_prefix={tag_prefix!r} is not allowed; it must be a string ('' for none)")
    is_writer = callable(getattr(writer, "add_scalar", None)) and callable(getattr(writer, "add_histogram_raw", None))
    if not is_writer and not isinstance(writer, (str, os.PathLike)):
        raise ValueError(f"writer={_checks.describe(writer)} is not allowed; it must be a "
                         "torch.utils.tensorboard.SummaryWriter or a directory (str or path)")
    if not is_writer:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ModuleNotFoundError("to_tensorboard needs TensorBoard, which is not installed: pip install tensorboard "
                                      "(Google Colab has it already)", name="tensorboard") from error
        writer = SummaryWriter(log_dir=os.fspath(writer))
    try:
        _write(monitor, writer, f"{tag_prefix}/" if tag_prefix else "")
    finally:
        if is_writer:
            flush = getattr(writer, "flush", None)
            if callable(flush):
                flush()
        else:
            writer.close()
    get_logdir = getattr(writer, "get_logdir", None)
    return get_logdir() if callable(get_logdir) else None


def _write(monitor, writer, prefix):
    """All scalars and histograms, step by step (TensorBoard reads each tag's steps in increasing order)."""
    scalars = _recorded(monitor)
    histograms = []
    if monitor.histogram_bins:
        for name, (shares, edges) in monitor.histograms().items():
            if len(shares):
                histograms.append((name, shares.detach().double().cpu().numpy(), edges.detach().double().cpu().numpy()))
    rows = max([len(values) for _, values, _ in scalars] + [len(shares) for _, shares, _ in histograms], default=0)
    for step in range(rows):
        global_step = step * monitor.every
        for statistic, values, names in scalars:
            if step < len(values):
                for name, value in zip(names, values[step].tolist()):
                    if not math.isnan(value):
                        writer.add_scalar(f"{prefix}{statistic}/{name}", value, global_step=global_step)
        for name, shares, edges in histograms:
            if step < len(shares) and not any(math.isnan(share) for share in shares[step].tolist()):
                counts = shares[step]
                middles = (edges[:-1] + edges[1:]) / 2
                writer.add_histogram_raw(f"{prefix}histogram/{name}", min=float(edges[0]), max=float(edges[-1]),
                                         num=float(counts.sum()), sum=float((counts * middles).sum()),
                                         sum_squares=float((counts * middles ** 2).sum()),
                                         bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(),
                                         global_step=global_step)
