"""Execution time of every notebook, each in a fresh kernel, as a learner runs it.

Goals (issue "Measured speed"): each under 45 s, all together under 5 minutes on a 2-core CPU.

    python benchmarks/course_time.py [notebooks/NN_name.ipynb ...]
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main():
    paths = [Path(p) for p in sys.argv[1:]] or sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
    total = 0.0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{path.name:42} {seconds:6.1f} s{'' if seconds < 45 else '   OVER 45 s'}", flush=True)
    print(f"{'all ' + str(len(paths)) + ' notebooks':42} {total:6.1f} s   (goal: each < 45 s, all < 300 s)")


if __name__ == "__main__":
    main()
