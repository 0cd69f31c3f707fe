"""Widget latency: from a slider change to a finished figure (computed and rendered to PNG).

Each explorer's draw function builds a fresh seeded network, measures it and returns a
Figure; the notebook then renders it to PNG. This times exactly that path for every explorer
at its default settings, moving one slider. Goal (issue "Measured speed"): at most 0.3 s.

    python benchmarks/widget_latency.py [--repeats 5]
"""

import argparse
import io
import time

import torch

import gradcourse
from gradcourse.display import figures


def latency(make_figure, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        figure = make_figure()
        figure.savefig(io.BytesIO(), format="png")
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    X, y = gradcourse.load_mnist("train", limit=256, source="bundled")
    gradients = gradcourse.lessons.at_init.layer_statistics(X, y, 10, "sigmoid", "default", width=128)["gradients"]
    cases = {
        "gradient_flow_explorer (depth 20 -> 21)": lambda: figures.gradient_flow_figure(X, y, depth=21),
        "chain_explorer (depth 10 -> 11)": lambda: figures.chain_figure(depth=11),
        "recurrent_explorer (steps 60 -> 61)": lambda: figures.recurrent_figure(steps=61),
        "init_explorer (depth 20 -> 21)": lambda: figures.init_figure(X, y, depth=21),
        "activation_explorer (depth 20 -> 21)": lambda: figures.activation_figure(X, y, depth=21),
        "precision_explorer (scale 2^0 -> 2^1)": lambda: figures.precision_figure(gradients, log2_scale=1),
    }
    print(f"median of {args.repeats}, {torch.get_num_threads()} threads; goal <= 0.3 s")
    for name, make in cases.items():
        make()  # warm-up
        print(f"{name:44} {latency(make, args.repeats):.3f} s")


if __name__ == "__main__":
    main()
