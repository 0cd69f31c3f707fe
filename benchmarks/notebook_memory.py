"""Peak memory of each notebook's kernel, against Binder's limit.

Goal (issue "Run anywhere"): Binder gives a user at most 2 GB, so every notebook's kernel
peaks below 1.5 GB (the rest is for JupyterLab and the browser's share). Each notebook runs top
to bottom in a fresh kernel, one at a time; the peak is the kernel process's own maximum resident
set size, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read by one extra cell at the end.
Exits 1 when a notebook is over the limit or raised.

    python benchmarks/notebook_memory.py [notebooks/02_vanishing_gradients.ipynb ...]

Without arguments it runs every notebook in notebooks/, one after the other. On a shared machine
set OMP_NUM_THREADS=1 (the kernel inherits it) to spare the other users; the training results then
differ in their digits, and the notebooks' checks hold for both thread counts.

Measured on the 2-core development machine with torch's default 2 threads, nothing else running
(MB = 10^6 bytes): 00 816, 01 769, 02 862, 03 859, 04 925, 05 861, 06 894, 07 944, 08 896, 09 874,
10 979, 11 813, 12 1089. A kernel holds about 770 MB once it has imported gradcourse and loaded
MNIST; about 320 MB of that is torch's shared libraries, mapped from disk. Notebook 10, which trains ten monitored networks in one cell, peaked at
1.7-2.1 GB while GradientMonitor summed every gradient in float64: the short-lived float64 copies,
interleaved with the monitor's small records, fragmented glibc's heap (see gradcourse.monitor.norm).
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

LIMIT_MB = 1500
PEAK_RSS = "import resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"  # KiB on Linux


def measure(path):
    """Run the notebook in a fresh kernel; return (peak RSS in MB, seconds, errors)."""
    notebook = nbformat.read(path, as_version=4)
    probe = nbformat.v4.new_code_cell(PEAK_RSS)
    notebook.cells.append(probe)
    client = NotebookClient(notebook, timeout=300, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
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
    print(f"{'notebook':45} {'peak RSS':>9} {'time':>7}   (limit {LIMIT_MB} MB)")
    for path in paths:
        peak_mb, seconds, errors = measure(path)
        over = peak_mb >= LIMIT_MB
        failed |= over or bool(errors)
        print(f"{path.name:45} {peak_mb:6.0f} MB {seconds:6.1f} s" + ("   OVER THE LIMIT" if over else ""), flush=True)
        for error in errors:
            print(f"    raised {error}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
