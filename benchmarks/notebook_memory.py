"""Peak memory of each notebook's kernel, against Binder's guarantee.

Goal: mybinder.org guarantees a user 1 GB of memory and restarts the kernel past 2 GB (its user
guidelines), so every notebook's kernel peaks below 1 GB. Each notebook runs top to bottom in a
fresh kernel, one at a time; the peak is the kernel process's own maximum resident set size, read
by one extra cell at the end: ``VmHWM`` in ``/proc/self/status`` on Linux. Not ``ru_maxrss``: Linux
carries a process's ``ru_maxrss`` over ``fork`` and ``exec``, so a kernel started by a large process
(pytest, after a thousand tests, at 1.9 GB) reports its parent's size. Elsewhere the probe falls back
to ``ru_maxrss`` (KiB on Linux and the BSDs, bytes on macOS). Exits 1 when a
notebook is over the limit or raised.

    python benchmarks/notebook_memory.py [notebooks/02_vanishing_gradients.ipynb ...]

Without arguments it runs every notebook in notebooks/, one after the other. It first prints the
peak of a kernel that only imports torch, and one that imports gradcourse: most of a notebook's
peak is torch's own libraries, and their size depends on the build. pip's torch for Linux x86-64
is a CUDA build whose import alone peaked at 684 MB on the development machine; the CPU build
(conda-forge's pytorch-cpu, which Binder installs from environment.yml, or pip's +cpu wheels)
peaked at 213 MB there (torch 2.13.0+cpu). The limit applies to the estimate for a CPU build,
the peak measured here less this build's torch import plus the CPU build's; the raw peak is
printed beside it.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import nbclient_wake  # noqa: E402  (a reply no longer waits for the cell's timeout)

nbclient_wake.install()

LIMIT_MB = 1000
CPU_BUILD_TORCH_MB = 213
"""Peak RSS in MB of a Python process that only imports torch's CPU build (2.13.0+cpu), measured on
the development machine; Binder's conda-forge pytorch-cpu is a CPU build too."""
PEAK_RSS = """\
import os, resource, sys
if os.path.exists("/proc/self/status"):
    with open("/proc/self/status") as status:
        print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(peak // 1024 if sys.platform == "darwin" else peak)
"""
"""A cell that prints the kernel's own peak resident set size in KiB."""


def binder_estimate(peak_mb, torch_mb):
    """A notebook's peak on a CPU build of torch: its peak here, less this build's torch import,
    plus the CPU build's (:data:`CPU_BUILD_TORCH_MB`)."""
    return peak_mb - torch_mb + CPU_BUILD_TORCH_MB


def measure(path):
    """Run the notebook in a fresh kernel; return (peak RSS in MB, seconds, errors)."""
    return measure_notebook(nbformat.read(path, as_version=4), path.parent)


def measure_code(code):
    """Peak RSS in MB of a fresh kernel that runs ``code`` only."""
    return measure_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), Path.cwd())[0]


def measure_notebook(notebook, folder):
    probe = nbformat.v4.new_code_cell(PEAK_RSS)
    notebook.cells.append(probe)
    client = NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = [f"cell {i}: {output.ename}: {output.evalue}" for i, cell in enumerate(notebook.cells)
              for output in cell.get("outputs", []) if output.output_type == "error"]
    peak_kib = int(probe.outputs[-1]["text"].split()[-1])
    return peak_kib * 1024 / 1e6, seconds, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

    failed = False
    torch_mb = measure_code("import torch")
    print(f"{'a kernel that imports torch':45} {torch_mb:6.0f} MB")
    print(f"{'a kernel that imports gradcourse':45} {measure_code('import gradcourse'):6.0f} MB")
    print(f"{'notebook':45} {'peak RSS':>9} {'with a CPU torch':>17} {'time':>7}   (limit {LIMIT_MB} MB, "
          f"on a CPU build of torch)")
    for path in paths:
        peak_mb, seconds, errors = measure(path)
        estimate = binder_estimate(peak_mb, torch_mb)
        over = estimate >= LIMIT_MB
        failed |= over or bool(errors)
        print(f"{path.name:45} {peak_mb:6.0f} MB {estimate:13.0f} MB {seconds:6.1f} s" + ("   OVER THE LIMIT" if over else ""),
              flush=True)
        for error in errors:
            print(f"    raised {error}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
