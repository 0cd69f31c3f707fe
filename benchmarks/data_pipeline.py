"""Epoch time of three ways to feed the same MLP the same MNIST digits.

1. the classic pipeline: ``torchvision.datasets.MNIST`` (reading IDX files) with
   ``transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`` applied per sample,
   and a ``DataLoader`` with batch size 64;
2. ``gradcourse.core.data.batches`` over the in-memory tensors of ``load_mnist``;
3. the limit: iterating over batch tensors built before the clock starts (the model's own compute).

Goals (issue "Measured speed"): (2) at least 8x faster than (1), and within 1.1x of (3).
The digits are the bundled 4,000-digit training subset, written as IDX files so that
torchvision's own MNIST class reads them, offline.

    python benchmarks/data_pipeline.py [--epochs 3]
"""

import argparse
import struct
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

import gradcourse


def write_idx(root, images, labels):
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, len(images), 28, 28) + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, len(labels)) + labels.to(torch.uint8).numpy().tobytes())


def epoch_seconds(model, optimizer, batches, epochs):
    """Best of ``epochs`` epochs of SGD over ``batches()``, an iterable factory."""
    best = float("inf")
    for _ in range(epochs):
        start = time.perf_counter()
        for X, y in batches():
            optimizer.zero_grad()
            F.cross_entropy(model(X.reshape(len(X), -1)), y).backward()
            optimizer.step()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    X, y = gradcourse.load_mnist("train", source="bundled")
    images = torch.round((X * gradcourse.core.data.MNIST_STD + gradcourse.core.data.MNIST_MEAN) * 255).to(torch.uint8).reshape(-1, 28, 28)
    gradcourse.set_seed(0)
    model = gradcourse.MLP(depth=3, width=128)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with tempfile.TemporaryDirectory() as root:
        write_idx(root, images, y)
        dataset = torchvision.datasets.MNIST(root, train=True, download=False, transform=transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((gradcourse.core.data.MNIST_MEAN,), (gradcourse.core.data.MNIST_STD,))]))
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
        classic = epoch_seconds(model, optimizer, lambda: loader, args.epochs)
    ours = epoch_seconds(model, optimizer, lambda: gradcourse.batches(X, y, 64, seed=0), args.epochs)
    prebuilt_batches = list(gradcourse.batches(X, y, 64, seed=0))
    prebuilt = epoch_seconds(model, optimizer, lambda: prebuilt_batches, args.epochs)
    print(f"{len(X)} digits, MLP(depth=3, width=128), batch 64, best of {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    print(f"classic per-sample pipeline:   {classic * 1e3:8.1f} ms/epoch")
    print(f"gradcourse.core.data.batches:       {ours * 1e3:8.1f} ms/epoch   {classic / ours:5.1f}x faster (goal >= 8x)")
    print(f"pre-built batches (the limit): {prebuilt * 1e3:8.1f} ms/epoch   batches/limit = {ours / prebuilt:.2f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
