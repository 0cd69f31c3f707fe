"""How long the course takes to run, each notebook in a fresh kernel as a learner runs it, with a
reference figure of the machine so that timings from two machines compare.

    python benchmarks/course_time.py                      # every notebook, alone
    python benchmarks/course_time.py --contention         # then again beside one CPU-bound process
    python benchmarks/course_time.py notebooks/07_*.ipynb # some notebooks
    python benchmarks/course_time.py --repeat 3           # each notebook three times, the fastest kept

Prints, per notebook, its time and its slowest cell; then the whole course's time, and with
``--contention`` the ratio of the course's time beside one competing CPU-bound process (a
single-threaded busy loop, as another user's job on a shared machine) to its time alone. On a
shared virtual machine one run can be 20-40% slower than the next; ``--repeat N`` runs each notebook
N times and keeps its fastest run (as ``timeit`` advises: the slower runs measure the neighbours),
printing the slowest run's time beside it.

The reference figure is the median time of one 64x128 @ 128x128 float32 matrix product on one
thread. Machines of this project's kind differ by up to 4x per core: 43 us was measured on one of
the slower ones (a Colab-class CPU). Goals on the faster ones: every notebook <= 15 s, every
cell <= 5 s, the whole course <= 100 s, so that on a 4x slower machine no notebook takes a minute
and no cell over 20 s; beside one competing process, at most 2x the time alone.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import re
import statistics
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import nbclient_wake  # noqa: E402  (a reply no longer waits for the cell's timeout)

nbclient_wake.install()

NOTEBOOK_GOAL_S = 15.0
CELL_GOAL_S = 5.0
COURSE_GOAL_S = 100.0
CONTENTION_GOAL = 2.0
PROGRESS_BAR_AFTER_S = 2.0
PROGRESS_TEXT = re.compile(r"\d+/\d+ \[")
CELL_TIMEOUT_S = 600


def reference_matmul_us(repeats=2000):
    """Median time in microseconds of one 64x128 @ 128x128 float32 product on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(64, 128), torch.randn(128, 128)
        for _ in range(200):
            a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6
    finally:
        torch.set_num_threads(threads)


def _seconds(cell):
    """A cell's execution time from the timestamps nbclient records in its metadata."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _shows_progress(cell):
    """Whether a cell's outputs hold a tqdm progress bar: its text ("12/125 [00:01<...") in a widget's
    plain-text form or on stderr."""
    texts = [str(output.get("data", {}).get("text/plain", "")) + str(output.get("text", ""))
             for output in cell.get("outputs", [])]
    return any(PROGRESS_TEXT.search(text) for text in texts)


def run_notebook(path):
    """Execute one notebook in a fresh kernel; return (seconds, [(cell index, seconds, shows a progress bar), ...])."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    cells = [(i, _seconds(cell), _shows_progress(cell)) for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code"]
    return seconds, cells


def run_course(paths, label, repeat=1):
    """Run each notebook ``repeat`` times and print its fastest run; return the sum of those."""
    print(f"\n{label}" + (f" (fastest of {repeat} runs; the slowest in brackets)" if repeat > 1 else ""))
    print(f"{'notebook':42} {'time':>7}  {'slowest cell':>14}   cells over {CELL_GOAL_S:.0f} s; "
          f"over {PROGRESS_BAR_AFTER_S:.0f} s without a progress bar")
    total, slowest = 0.0, (None, 0.0, 0.0)
    for path in paths:
        runs = [run_notebook(path) for _ in range(repeat)]
        seconds, cells = min(runs, key=lambda run: run[0])
        spread = f" ({max(run[0] for run in runs):5.1f} s)" if repeat > 1 else ""
        total += seconds
        index, worst, _ = max(cells, key=lambda c: c[1])
        over = [f"{i}: {s:.1f} s" for i, s, _ in cells if s > CELL_GOAL_S]
        silent = [f"{i}: {s:.1f} s" for i, s, bar in cells if s > PROGRESS_BAR_AFTER_S and not bar]
        flag = "" if seconds <= NOTEBOOK_GOAL_S else f"  (over {NOTEBOOK_GOAL_S:.0f} s)"
        print(f"{path.name:42} {seconds:5.1f} s{spread}  cell {index:2d} {worst:5.1f} s   {', '.join(over) or '-'}; "
              f"{', '.join(silent) or '-'}{flag}", flush=True)
        if worst > slowest[2]:
            slowest = (path.name, index, worst)
    print(f"{'all ' + str(len(paths)) + ' notebooks':42} {total:5.1f} s  (goal <= {COURSE_GOAL_S:.0f} s); "
          f"slowest cell: {slowest[0]} cell {slowest[1]}, {slowest[2]:.1f} s (goal <= {CELL_GOAL_S:.0f} s)")
    return total


def _busy_loop():
    while True:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--contention", action="store_true",
                        help="run the course a second time beside one CPU-bound process and print the ratio")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run each notebook N times and keep its fastest run (default 1)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be a positive integer, got {args.repeat}")
    paths = args.notebooks or sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

    import gradcourse

    gradcourse.use_cpus()     # as every notebook does
    print(f"reference figure: {reference_matmul_us():.1f} us per 64x128 @ 128x128 float32 product on one thread")
    print(f"torch threads in the notebooks: {gradcourse.environment_report()['CPU threads']}")
    alone = run_course(paths, "alone", args.repeat)
    print(f"reference figure after these runs: {reference_matmul_us():.1f} us")
    if args.contention:
        competitor = multiprocessing.Process(target=_busy_loop, daemon=True)
        competitor.start()
        try:
            shared = run_course(paths, "beside one CPU-bound process", args.repeat)
        finally:
            competitor.terminate()
            competitor.join()
        ratio = shared / alone
        print(f"\ncontention ratio: {shared:.1f} s / {alone:.1f} s = {ratio:.2f}x (goal <= {CONTENTION_GOAL:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
