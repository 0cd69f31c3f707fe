"""What GradientMonitor costs: a monitored training step against a bare one.

Four ratios, each against its goal: recording every step, at most 1.3x on the course MLP and 1.15x
on torchvision's resnet18 with a batch of 8 images at 64x64; recording every 10th step
(``GradientMonitor(every=10)``), at most 1.05x on both. Bare and monitored samples take turns, so a
drift in the machine's load hits them alike; torch uses the notebooks' thread count (``use_cpus``).

    python benchmarks/monitor_overhead.py [--repeats 90]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

import gradcourse


def compare(name, model, X, y, repeats, goals):
    """Print the bare step time and, for each ``{every: goal}``, the monitored one and its ratio.

    A sample is ten zero_grad/forward/backward/step calls (so that ``every=10`` records exactly one of
    them), bare or inside one of the ``GradientMonitor(model, every=every)``; the configurations take
    turns sample by sample, so that a change in the machine's load hits all of them alike, and each
    is summarized by its median sample."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def ten_steps():
        start = time.perf_counter()
        for _ in range(10):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
        return (time.perf_counter() - start) / 10

    monitors = {None: None, **{every: gradcourse.GradientMonitor(model, every=every) for every in goals}}
    times = {every: [] for every in monitors}
    for round_ in range(repeats + 3):
        for every, monitor in monitors.items():
            if monitor:
                monitor.__enter__()
            try:
                seconds = ten_steps()
            finally:
                if monitor:
                    monitor.__exit__(None, None, None)
            if round_ >= 3:                      # the first rounds warm up
                times[every].append(seconds)
    bare = statistics.median(times[None])
    print(f"{name}: bare step {bare * 1e3:.2f} ms")
    for every, goal in goals.items():
        monitored = statistics.median(times[every])
        ratio = monitored / bare
        verdict = "met" if ratio <= goal else "missed"
        print(f"  every={every:<3} monitored {monitored * 1e3:7.2f} ms   ratio {ratio:.2f}x   "
              f"goal <= {goal}x: {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=90, help="samples per configuration")
    args = parser.parse_args()
    torch.manual_seed(0)
    gradcourse.use_cpus()                  # as every notebook does: half the CPUs this process may use
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X, y = gradcourse.load_mnist("train", limit=64, source="bundled")
    compare("MLP(depth=10, width=128), batch 64", gradcourse.MLP(depth=10), X, y, args.repeats, {1: 1.3, 10: 1.05})
    resnet = torchvision.models.resnet18(weights=None)
    images, labels = torch.randn(8, 3, 64, 64), torch.randint(0, 1000, (8,))
    compare("resnet18, batch of 8 images at 64x64", resnet, images, labels, args.repeats, {1: 1.15, 10: 1.05})


if __name__ == "__main__":
    main()
