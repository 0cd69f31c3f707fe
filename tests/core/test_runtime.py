"""gradcourse.core.runtime: seeds and the device, the CPUs a process may use (cgroup quota, affinity mask, cores)
and the thread count the notebooks set from them."""

import os
import random

import numpy as np
import pytest
import torch

import gradcourse
from gradcourse.core import runtime


def test_set_seed_repeats_every_generator():
    draws = []
    for _ in range(2):
        assert gradcourse.set_seed(7) == 7
        draws.append((np.random.rand(), torch.rand(3).tolist(), random.random()))
    assert draws[0] == draws[1]


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_set_seed_rejects_bad_seeds(seed, raises_bad):
    with raises_bad("seed", seed):
        gradcourse.set_seed(seed)


def test_device_is_a_torch_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert gradcourse.device() == torch.device(expected)


def test_a_refused_seed_reseeds_no_generator():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    with pytest.raises(ValueError):
        gradcourse.set_seed(2**33)
    assert random.random() == expected


@pytest.fixture
def threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("cpu_max, expected", [("max 100000\n", None), ("150000 100000\n", 1.5),
                                               ("200000 100000\n", 2.0), ("50000 100000\n", 0.5)])
def test_cgroup_v2_quota(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert runtime.cpu_quota(tmp_path) == expected


@pytest.mark.parametrize("quota, expected", [("-1", None), ("300000", 3.0)])
def test_cgroup_v1_quota(tmp_path, quota, expected):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert runtime.cpu_quota(tmp_path) == expected


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert runtime.cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("garbage")
    assert runtime.cpu_quota(tmp_path) is None


def test_usable_cpus_is_the_smallest_limit_and_a_fractional_quota_rounds_down(tmp_path):
    cores = os.cpu_count()
    affinity = len(os.sched_getaffinity(0))
    n, reason = runtime.usable_cpus(tmp_path)
    assert n == min(cores, affinity) and f"cores {cores}" in reason and "quota" not in reason
    (tmp_path / "cpu.max").write_text("150000 100000")
    n, reason = runtime.usable_cpus(tmp_path)
    assert n == 1 and "cgroup quota 1.5" in reason
    (tmp_path / "cpu.max").write_text("10000 100000")          # a tenth of a CPU still gets one thread
    assert runtime.usable_cpus(tmp_path)[0] == 1


def test_use_cpus_gives_torch_half_the_usable_cpus_and_says_why(threads_restored):
    usable = runtime.usable_cpus()[0]
    assert gradcourse.use_cpus() == max(1, usable // 2) == torch.get_num_threads()
    assert gradcourse.environment_report()["CPU threads"].startswith(f"{torch.get_num_threads()} (half the usable CPUs")
    assert gradcourse.use_cpus(1) == 1 == torch.get_num_threads()
    assert "chosen with use_cpus(threads)" in gradcourse.environment_report()["CPU threads"]


@pytest.mark.parametrize("threads", [0, -2, 1.5, "2", True])
def test_use_cpus_rejects_bad_thread_counts(threads, raises_bad, threads_restored):
    with raises_bad("threads", threads):
        gradcourse.use_cpus(threads)


def test_importing_gradcourse_leaves_torchs_threads_alone():
    import subprocess
    import sys

    code = "import torch; n = torch.get_num_threads(); import gradcourse; print(n == torch.get_num_threads())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"


def test_environment_report_names_versions_device_and_threads():
    report = gradcourse.environment_report()
    assert set(report) == {"python", "torch", "torchvision", "ipywidgets", "matplotlib", "gradcourse", "device",
                           "CPU threads"}
    assert report["torch"] == torch.__version__ and report["gradcourse"] == gradcourse.__version__


@pytest.mark.parametrize("cpu_max", ["100000 0\n", "0 100000\n", "-50000 100000\n", "100000 -1\n", "150000\n",
                                     "1.5 100000\n", ""])
def test_a_zero_negative_or_malformed_cpu_max_is_no_usable_quota(tmp_path, cpu_max):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert runtime.cpu_quota(tmp_path) is None
    n, reason = runtime.usable_cpus(tmp_path)                    # falls back to the cores and the affinity mask
    assert n == min(os.cpu_count(), len(os.sched_getaffinity(0))) and "quota" not in reason


def test_a_zero_cpu_max_falls_back_to_the_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("100000 0\n")
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("0\n")
    assert runtime.cpu_quota(tmp_path) is None
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("50000\n")
    assert runtime.cpu_quota(tmp_path) == 2.0
