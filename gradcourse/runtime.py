"""Seeds, CPU threads and the compute device: the settings that make a run repeat and fit its machine.

torch starts one compute thread per core it counts, but a process may be allowed fewer: a
container's CPU quota (cgroup ``cpu.max``, as on Binder and Kubernetes) or an affinity mask
(``taskset``) gives it a share of the machine that torch does not see. Threads beyond that share
wait for one another at every parallel operation, and a run slows down by far more than the share
suggests. :func:`use_cpus` sets torch's thread count to what the process may really use;
``import gradcourse`` calls it once.
"""

from __future__ import annotations

import math
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from . import _checks

CGROUP_ROOT = Path("/sys/fs/cgroup")
_threads_reason = "torch's default"


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


def cpu_quota(cgroup_root=CGROUP_ROOT):
    """The CPUs this process's cgroup may use per period, ``quota / period`` (e.g. 1.5), or None
    when there is no quota. Reads cgroup v2's ``cpu.max`` ("max 100000" means none), else cgroup v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (a quota of -1 means none)."""
    root = Path(cgroup_root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(cgroup_root=CGROUP_ROOT):
    """``(n, reason)``: how many CPUs this process may really keep busy, and why.

    ``n = max(1, min(cores, CPUs in the affinity mask, floor(cgroup quota)))``: a quota of 1.5 CPUs
    gives 1, since a second thread would be paused for part of every period.
    """
    cores = os.cpu_count() or 1
    limits = {"cores": cores}
    if hasattr(os, "sched_getaffinity"):
        limits["affinity mask"] = len(os.sched_getaffinity(0))
    quota = cpu_quota(cgroup_root)
    if quota is not None:
        limits["cgroup quota"] = max(1, math.floor(quota))
    n = max(1, min(limits.values()))
    reason = ", ".join(f"{name} {value:g}" if name != "cgroup quota" else f"cgroup quota {quota:g}"
                       for name, value in limits.items())
    return n, reason


def use_cpus(threads=None):
    """Set torch's intra-op thread count, by default to :func:`usable_cpus`; returns the count.

    Args:
        threads: a positive int to choose the count yourself, or None for the usable CPUs.
    """
    global _threads_reason
    if threads is None:
        threads, reason = usable_cpus()
        _threads_reason = f"usable CPUs: {reason}"
    else:
        _checks.integer("threads", threads, minimum=1)
        _threads_reason = "set by use_cpus(threads)"
    torch.set_num_threads(threads)
    return threads


def environment_report():
    """The versions, compute device and CPU threads of this session, as ``{name: value}``."""
    import importlib.metadata

    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "ipywidgets": version("ipywidgets"),
        "matplotlib": version("matplotlib"),
        "gradcourse": version("gradcourse"),
        "device": str(device()),
        "CPU threads": f"{torch.get_num_threads()} ({_threads_reason})",
    }
