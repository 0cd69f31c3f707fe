"""GradientMonitor under DistributedDataParallel: two CPU processes (gloo) each train on their half of
256 MNIST digits, and one process trains the same model on all 256. Every rank records the gradient
norms and update ratios of the whole batch; its activation statistics are those of its own half.

Run it from the repository's root: ``python docs/examples/ddp_monitor.py`` (a few seconds). The page
docs/monitor_in_your_own_loop.md shows what it prints, and tests/course/test_docs.py checks that it still does.
"""

import contextlib
import datetime
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import gradcourse
from gradcourse import GradientMonitor

WORLD_SIZE, STEPS = 2, 3


def make_model():
    torch.manual_seed(0)                       # the same weights in every process
    return nn.Sequential(nn.Linear(784, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))


def train(model, X, y, *monitored):
    """STEPS steps of SGD on (X, y), with a GradientMonitor on each module of ``monitored``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with contextlib.ExitStack() as stack:
        monitors = [stack.enter_context(GradientMonitor(module)) for module in monitored]
        for _ in range(STEPS):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
    return [{"layer_names": m.layer_names, **{name: m.series(name) for name in ("grad_norm", "update_ratio",
                                                                                  "act_mean")}} for m in monitors]


def worker(rank, init_file, out_dir):
    """One process of the two: DDP on its half of the batch, monitored on the wrapper and on its .module."""
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")   # both processes on this machine
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE,
                            timeout=datetime.timedelta(seconds=60))     # fail, rather than wait, if the other stops
    try:
        X, y = gradcourse.load_mnist("train", limit=256)
        X, y = X.chunk(WORLD_SIZE)[rank], y.chunk(WORLD_SIZE)[rank]      # this rank's 128 digits
        ddp_model = DistributedDataParallel(make_model())
        records = train(ddp_model, X, y, ddp_model, ddp_model.module)
        torch.save(records, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def show(values):
    return "".join(f"{v:<9.4g}" for v in values)


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(worker, args=(os.path.join(out_dir, "init"), out_dir), nprocs=WORLD_SIZE)
        ranks = [torch.load(os.path.join(out_dir, f"rank{rank}.pt"), weights_only=True) for rank in range(WORLD_SIZE)]
    X, y = gradcourse.load_mnist("train", limit=256)
    model = make_model()
    (one,) = train(model, X, y, model)        # one process, all 256 digits, no DDP

    print("layer_names  GradientMonitor(ddp_model)       ", ranks[0][0]["layer_names"])
    print("             GradientMonitor(ddp_model.module)", ranks[0][1]["layer_names"])
    print("             one process                      ", one["layer_names"])
    for name in ("grad_norm", "update_ratio"):
        print(f"{name:<13}{'one process, 256 digits':<30}{'rank 0, its 128':<30}rank 1, its 128")
        for step in range(STEPS):
            print(f"  step {step}     {show(one[name][step]):<30}"
                  + "".join(f"{show(ranks[rank][1][name][step]):<30}" for rank in range(WORLD_SIZE)).rstrip())
    same = [torch.allclose(r[i][name], one[name], rtol=1e-5, atol=0)
            for r in ranks for i in (0, 1) for name in ("grad_norm", "update_ratio")]
    print("every rank, both monitors, equal to one process (rtol 1e-5):", all(same))

    own = []                                  # what each rank computes before DDP averages the two halves
    for rank in range(WORLD_SIZE):
        half = make_model()
        F.cross_entropy(half(X.chunk(WORLD_SIZE)[rank]), y.chunk(WORLD_SIZE)[rank]).backward()
        own.append(show([m.weight.grad.norm() for m in half[::2]]))
    print(f"each rank's own half at step 0, before DDP's all-reduce:  rank 0 {own[0]}  rank 1 {own[1]}".rstrip())

    means = [r[1]["act_mean"] for r in ranks]
    print(f"{'act_mean':<13}{'one process, 256 digits':<30}{'rank 0, its 128':<30}{'rank 1, its 128':<30}mean of the ranks")
    for step in range(STEPS):
        print(f"  step {step}     {show(one['act_mean'][step]):<30}{show(means[0][step]):<30}{show(means[1][step]):<30}"
              f"{show((means[0][step] + means[1][step]) / 2)}".rstrip())


if __name__ == "__main__":
    main()
