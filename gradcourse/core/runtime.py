"""Seeds, CPU threads, the compute device and subnormal flushing: the settings that make a run repeat
and fit its machine.

torch starts one compute thread per core it counts, and every parallel operation waits for the
slowest of them. Two things make that wait long. A process may be allowed fewer CPUs than the
cores it sees: a container's CPU quota (cgroup ``cpu.max``, as on Binder and Kubernetes) or an
affinity mask (``taskset``). And on a shared machine (Colab, a laptop running a browser, a server
with other users) another process takes a core away from one of the threads for milliseconds at
a time. Measured on a 2-core machine with the course's models (MLPs of 64-256 units, batches of
64-256), a training step took 1.0-1.35x as long on one thread as on two when nothing else ran,
and two threads took 4-5x as long as one when a single other CPU-bound process ran beside them.
:func:`use_cpus` therefore gives torch half the CPUs the process may use, at least one; every
notebook calls it once.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from . import _checks

__all__ = ["CGROUP_ROOT", "cpu_quota", "device", "device_of", "environment_report", "flush_denormals",
           "generators_restored", "set_seed", "usable_cpus", "use_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_threads_reason = "torch's default"


def set_seed(seed=0):
    """Seed Python's, NumPy's and torch's random generators so a run repeats exactly."""
    _checks.integer("seed", seed, minimum=0, maximum=2**32 - 1)   # NumPy's range, checked before any generator is reseeded
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def generators_restored():
    """A context that gives torch's random generators back as they were on leaving it: the CPU's
    and every CUDA device's (``torch.random.fork_rng``), so a pass inside it that draws random numbers
    (dropout, ...) changes no later run."""
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    return torch.random.fork_rng(devices=cuda_devices)


def device():
    """``torch.device("cuda")`` when a GPU is available, else ``torch.device("cpu")``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_quota(cgroup_root=CGROUP_ROOT):
    """The CPUs this process's cgroup may use per period, ``quota / period`` (e.g. 1.5), or None
    when there is no quota. Reads cgroup v2's ``cpu.max`` ("max 100000" means none), else cgroup v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (a quota of -1 means none), under
    ``cgroup_root``: inside a container (Binder, Kubernetes, Docker) that is the container's own group.

    A quota or period that is not a positive integer (0, negative, unreadable text) gives no
    usable quota: ``cpu.max`` then falls back to the cgroup v1 files, and those to None, so that
    :func:`usable_cpus` counts cores and the affinity mask only."""
    root = Path(cgroup_root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        quota, period = int(quota), int(period)
        if quota > 0 and period > 0:
            return quota / period
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
    """Set torch's intra-op thread count and return it.

    Args:
        threads: a positive int to choose the count yourself; None (default) for half the CPUs
            this process may use, ``max(1, usable_cpus()[0] // 2)``, which leaves room for the rest
            of the machine (see the module docstring). For a large model on a machine of your
            own, ``use_cpus(usable_cpus()[0])`` uses them all.
    """
    global _threads_reason
    if threads is None:
        usable, reason = usable_cpus()
        threads = max(1, usable // 2)
        _threads_reason = f"half the usable CPUs: {reason}"
    else:
        _checks.integer("threads", threads, minimum=1)
        _threads_reason = "chosen with use_cpus(threads)"
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


def device_of(model):
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@contextlib.contextmanager
def flush_denormals():
    """Flush subnormal floats to zero while training (``torch.set_flush_denormal``), then stop.

    A vanishing gradient passes through subnormal values (below 1.2e-38 in float32) on its way to
    zero, and CPUs compute with subnormals 10 to 100 times slower: a deep sigmoid network can
    take seconds per step. GPU kernels commonly flush them too. Values that small cannot change
    a weight, so training is unaffected; measurements outside :func:`fit` keep full range.
    The setting the caller had is restored afterwards, on as well as off.
    """
    was_on = _flushing_denormals()
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported and not was_on:
            torch.set_flush_denormal(False)


def _flushing_denormals():
    """Whether this thread flushes subnormal floats to zero now (torch has a setter but no getter):
    a subnormal float32 times 1.5 is 0 exactly when it does."""
    return (torch.full((1,), 1e-39) * 1.5).item() == 0.0
