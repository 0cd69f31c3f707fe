"""gradcourse.core.monitor.export: a GradientMonitor's records as a tidy pandas table and as TensorBoard event
files, read back and compared with ``monitor.series`` and ``monitor.histograms``."""

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

import gradcourse
from gradcourse import GradientMonitor
from gradcourse.core.monitor.monitor import STATS
from gradcourse.core.monitor.export import to_dataframe, to_tensorboard

LAYER_STATS = ("grad_norm", "update_ratio")


def _model(*middle):
    gradcourse.set_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(), *middle, nn.Linear(8, 8),
                         nn.Tanh(), nn.Linear(8, 3))


def _train(model, steps, optimizer_steps=True, **monitor_options):
    """``steps`` training steps of a small classification batch under a GradientMonitor."""
    generator = torch.Generator().manual_seed(1)
    X, y = torch.randn(32, 6, generator=generator), torch.randint(0, 3, (32,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with GradientMonitor(model, **monitor_options) as monitor:
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            if optimizer_steps:
                optimizer.step()
    return monitor


def _names(monitor, statistic):
    return monitor.layer_names if statistic in LAYER_STATS else monitor.activation_names


@pytest.fixture(scope="module")
def every_step():
    return _train(_model(), steps=4)


@pytest.fixture(scope="module")
def every_second_step():
    return _train(_model(), steps=5, every=2, histogram_bins=8)


# ---------------------------------------------------------------- to_dataframe

def test_the_table_holds_every_recorded_value(every_step):
    monitor = every_step
    table = to_dataframe(monitor)
    assert list(table.columns) == ["step", "layer", "statistic", "value"]
    assert list(table.statistic.unique()) == list(STATS)
    assert len(table) == sum(monitor.series(s).numel() for s in STATS) == 4 * (2 * 4 + 4 * 3)
    for statistic in STATS:
        rows = table[table.statistic == statistic]
        wide = rows.pivot(index="step", columns="layer", values="value")[_names(monitor, statistic)]
        assert list(wide.index) == list(range(4))
        np.testing.assert_array_equal(wide.to_numpy(), monitor.series(statistic).numpy())   # NaN where NaN
    assert table.value.dtype == np.float64 and table.step.dtype == np.int64


def test_nan_values_stay_in_the_table(every_step):
    table = to_dataframe(every_step)
    saturated = table[table.statistic == "saturated"]
    assert saturated[saturated.layer == "1"].value.isna().all()       # a ReLU has no two flat tails
    assert saturated[saturated.layer == "3"].value.notna().all()      # a Sigmoid has


def test_every_k_gives_the_training_step(every_second_step):
    monitor = every_second_step
    table = to_dataframe(monitor)
    assert list(table.columns) == ["step", "training_step", "layer", "statistic", "value"]
    for statistic in STATS:                 # steps 1, 3, 5 of five are recorded: rows 0, 1, 2
        rows = table[table.statistic == statistic]
        assert sorted(rows.step.unique()) == [0, 1, 2]
        assert (rows.training_step == 2 * rows.step).all()
        assert len(rows) == 3 * len(_names(monitor, statistic))
        wide = rows.pivot(index="step", columns="layer", values="value")[_names(monitor, statistic)]
        np.testing.assert_array_equal(wide.to_numpy(), monitor.series(statistic).numpy())


def test_statistics_without_rows_are_absent():
    monitor = _train(_model(), steps=2, optimizer_steps=False)       # backward passes, no optimizer step
    table = to_dataframe(monitor)
    assert "update_ratio" not in set(table.statistic)
    assert set(table.statistic) == set(STATS) - {"update_ratio"}
    bare = _train(nn.Sequential(nn.Linear(6, 3)), steps=2)           # no activation modules
    assert set(to_dataframe(bare).statistic) == set(LAYER_STATS)


def test_an_unused_monitor_gives_an_empty_table():
    table = to_dataframe(GradientMonitor(_model()))
    assert len(table) == 0 and list(table.columns) == ["step", "layer", "statistic", "value"]


def test_to_dataframe_says_how_to_install_pandas(every_step, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install pandas.*Colab"):
        to_dataframe(every_step)


# ---------------------------------------------------------------- to_tensorboard

def _read(log_dir):
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.SCALARS: 0,
                                                                              event_accumulator.HISTOGRAMS: 0})
    events.Reload()
    return events


def test_tensorboard_holds_the_same_scalars_at_the_training_steps(every_second_step, tmp_path):
    monitor = every_second_step
    assert to_tensorboard(monitor, tmp_path) == str(tmp_path)
    events = _read(tmp_path)
    expected_tags = set()
    for statistic in STATS:
        values = monitor.series(statistic)
        for column, name in enumerate(_names(monitor, statistic)):
            tag = f"gradcourse/{statistic}/{name}"
            recorded = [(2 * row, value) for row, value in enumerate(values[:, column].tolist()) if not math.isnan(value)]
            if not recorded:                   # the ReLU's saturated share: NaN throughout, so no tag
                assert statistic == "saturated" and name == "1"
                continue
            expected_tags.add(tag)
            read = events.Scalars(tag)
            assert [event.step for event in read] == [step for step, _ in recorded] == [0, 2, 4]
            assert [event.value for event in read] == pytest.approx([v for _, v in recorded], rel=1e-6, abs=1e-30)
    assert set(events.Tags()["scalars"]) == expected_tags


def test_tensorboard_holds_the_histograms(every_second_step, tmp_path):
    monitor = every_second_step
    to_tensorboard(monitor, tmp_path, tag_prefix="run1")
    events = _read(tmp_path)
    recorded = monitor.histograms()
    assert set(events.Tags()["histograms"]) == {f"run1/histogram/{name}" for name in monitor.activation_names}
    for name, (shares, edges) in recorded.items():
        read = events.Histograms(f"run1/histogram/{name}")
        assert [event.step for event in read] == [0, 2, 4]
        for event, row in zip(read, shares.tolist()):
            histogram = event.histogram_value
            assert histogram.bucket == pytest.approx(row, abs=1e-12)
            assert histogram.bucket_limit == pytest.approx(edges[1:].tolist())
            assert (histogram.min, histogram.max) == pytest.approx((edges[0].item(), edges[-1].item()))
            assert histogram.num == pytest.approx(sum(row))


def test_nan_values_and_histograms_are_skipped(tmp_path):
    # Dropout(inplace=True) changes the GELU's output after it returned it: its statistics are NaN
    gradcourse.set_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Dropout(0.5, inplace=True), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 3))
    monitor = _train(model, steps=2, histogram_bins=4)
    assert monitor.activation_names == ["1", "4"] and monitor.series("act_mean")[:, 0].isnan().all()
    assert monitor.histograms()["1"][0].isnan().all()
    to_tensorboard(monitor, tmp_path)
    tags = _read(tmp_path).Tags()
    assert not any(tag.endswith("/1") for tag in tags["scalars"] + tags["histograms"])
    assert {"gradcourse/grad_norm/0", "gradcourse/update_ratio/3", "gradcourse/act_mean/4"} <= set(tags["scalars"])
    assert tags["histograms"] == ["gradcourse/histogram/4"]


def test_a_given_writer_is_flushed_and_left_open(every_step, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    assert to_tensorboard(every_step, writer, tag_prefix="") == str(tmp_path)
    assert _read(tmp_path).Scalars("grad_norm/0")[0].value == pytest.approx(every_step.series("grad_norm")[0, 0].item())
    writer.add_scalar("loss", 1.0, global_step=0)        # still open
    writer.close()
    assert "loss" in _read(tmp_path).Tags()["scalars"]


def test_to_tensorboard_says_how_to_install_tensorboard(every_step, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        to_tensorboard(every_step, tmp_path)


@pytest.mark.parametrize("call, message", [
    (lambda m: to_dataframe("monitor"), "monitor='monitor' is not allowed"),
    (lambda m: to_tensorboard(object(), "runs"), "monitor=.* is not allowed"),
    (lambda m: to_tensorboard(m, 3), "writer=3 is not allowed"),
    (lambda m: to_tensorboard(m, "runs", tag_prefix=None), "tag_prefix=None is not allowed"),
])
def test_bad_arguments_are_value_errors(every_step, call, message):
    with pytest.raises(ValueError, match=message):
        call(every_step)
