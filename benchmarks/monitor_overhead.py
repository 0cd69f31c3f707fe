"""What GradientMonitor costs: a monitored training step against a bare one.

Goals: at most 1.2x on the course MLP (issue "Measured speed"), at most 1.3x on torchvision's
resnet18 with a batch of 8 images at 64x64 (issue "any torch.nn.Module").

    python benchmarks/monitor_overhead.py [--repeats 30]
"""

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision

import gradcourse


def step_time(model, X, y, optimizer, monitored, repeats):
    """Median seconds of one zero_grad/forward/backward/step, with or without a GradientMonitor."""
    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()

    times = []
    monitor = gradcourse.GradientMonitor(model) if monitored else None
    if monitor:
        monitor.__enter__()
    try:
        for _ in range(3):
            step()
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    finally:
        if monitor:
            monitor.__exit__(None, None, None)
    return sorted(times)[len(times) // 2]


def compare(name, model, X, y, repeats, goal):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    # alternate bare and monitored runs so that drifts in machine load hit both alike
    bare, monitored = [], []
    for _ in range(3):
        bare.append(step_time(model, X, y, optimizer, False, repeats))
        monitored.append(step_time(model, X, y, optimizer, True, repeats))
    b, m = min(bare), min(monitored)
    print(f"{name:44} bare {b * 1e3:7.2f} ms   monitored {m * 1e3:7.2f} ms   ratio {m / b:.2f}x (goal <= {goal}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X, y = gradcourse.load_mnist("train", limit=64, source="bundled")
    compare("MLP(depth=10, width=128), batch 64", gradcourse.MLP(depth=10), X, y, args.repeats, 1.2)
    resnet = torchvision.models.resnet18(weights=None)
    images, labels = torch.randn(8, 3, 64, 64), torch.randint(0, 1000, (8,))
    compare("resnet18, batch of 8 images at 64x64", resnet, images, labels, args.repeats, 1.3)


if __name__ == "__main__":
    main()
