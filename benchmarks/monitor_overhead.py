"""What GradientMonitor costs: a monitored training step against a bare one.

Four ratios, each against its goal: recording every step, at most 1.3x on the course MLP and 1.15x
on torchvision's resnet18 with a batch of 8 images at 64x64; recording every 10th step
(``GradientMonitor(every=10)``), at most 1.05x on both. Bare and monitored runs alternate, so a
drift in the machine's load hits both alike.

    python benchmarks/monitor_overhead.py [--repeats 30]
"""

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision

import gradcourse


def step_time(model, X, y, optimizer, every, repeats):
    """Median seconds of one zero_grad/forward/backward/step, bare (``every=None``) or under a
    ``GradientMonitor(model, every=every)``."""
    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()

    times = []
    monitor = gradcourse.GradientMonitor(model, every=every) if every else None
    if monitor:
        monitor.__enter__()
    try:
        for _ in range(3):
            step()
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(10):   # ten steps a sample, so that every=10 records exactly one of them
                step()
            times.append((time.perf_counter() - start) / 10)
    finally:
        if monitor:
            monitor.__exit__(None, None, None)
    return sorted(times)[len(times) // 2]


def compare(name, model, X, y, repeats, goals):
    """Print the bare step time and, for each ``{every: goal}``, the monitored one and its ratio."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    times = {None: [], **{every: [] for every in goals}}
    for _ in range(3):
        for every in times:
            times[every].append(step_time(model, X, y, optimizer, every, repeats))
    bare = min(times[None])
    print(f"{name}: bare step {bare * 1e3:.2f} ms")
    for every, goal in goals.items():
        ratio = min(times[every]) / bare
        verdict = "met" if ratio <= goal else "missed"
        print(f"  every={every:<3} monitored {min(times[every]) * 1e3:7.2f} ms   ratio {ratio:.2f}x   "
              f"goal <= {goal}x: {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X, y = gradcourse.load_mnist("train", limit=64, source="bundled")
    compare("MLP(depth=10, width=128), batch 64", gradcourse.MLP(depth=10), X, y, args.repeats, {1: 1.3, 10: 1.05})
    resnet = torchvision.models.resnet18(weights=None)
    images, labels = torch.randn(8, 3, 64, 64), torch.randint(0, 1000, (8,))
    compare("resnet18, batch of 8 images at 64x64", resnet, images, labels, args.repeats, {1: 1.15, 10: 1.05})


if __name__ == "__main__":
    main()
