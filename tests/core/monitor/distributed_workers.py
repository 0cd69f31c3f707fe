"""What tests/core/monitor/test_monitor_distributed.py runs, in the test process and in the processes it starts.

The processes are started with the ``spawn`` method, which imports the function they run by module
name: it lives here, in a plain module on ``sys.path`` (tests/, as for tests/helpers.py; a spawned
process gets its parent's ``sys.path``), rather than in the test module.
"""

import datetime
import os
import sys
import traceback
import warnings

import torch
from torch import nn

STEPS = 3
LR = 0.1
BATCH = 16
WORLD_SIZE = 2
TIMEOUT = datetime.timedelta(seconds=60)   # every wait on the store or a collective fails after this


def make_model():
    """The model every process builds: the same weights everywhere (seed 0), the caller's RNG untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


def make_batch():
    """The fixed batch of 16 examples; rank ``r`` of two trains on ``halves(X, y)[r]``."""
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(BATCH, 20, generator=generator)
    y = torch.randint(0, 10, (BATCH,), generator=generator)
    return X, y


def half(X, y, rank):
    """Rank ``rank``'s half of the batch: examples ``8 rank .. 8 rank + 7``."""
    size = len(X) // WORLD_SIZE
    return X[rank * size:(rank + 1) * size], y[rank * size:(rank + 1) * size]


def linears(model):
    """The model's Linear layers, input side first (the layers GradientMonitor finds in it)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def weight_grad_norms(model):
    """``||dL/dW||`` of each Linear's weight as it is now, float32 norms as float64 (as the monitor records them)."""
    return torch.stack([m.weight.grad.detach().norm().double() for m in linears(model)])


def train(model, monitored, X, y, steps=STEPS):
    """``steps`` SGD steps (lr 0.1, mean cross-entropy) on ``(X, y)`` with a GradientMonitor on ``monitored``.

    Returns what the monitor recorded, the gradient norms the optimizer really used (read right
    before each ``step()``, after DDP's all-reduce), and the weights before each step."""
    from gradcourse import GradientMonitor

    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    used, snapshots = [], []
    with GradientMonitor(monitored) as monitor:
        for _ in range(steps):
            snapshots.append({k: v.detach().clone() for k, v in plain(model).state_dict().items()})
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            used.append(weight_grad_norms(model))
            optimizer.step()
    return {
        "grad_norm": monitor.series("grad_norm"),
        "update_ratio": monitor.series("update_ratio"),
        "act_mean": monitor.series("act_mean"),
        "layer_names": list(monitor.layer_names),
        "activation_names": list(monitor.activation_names),
        "used_grad_norm": torch.stack(used),
        "snapshots": snapshots,
    }


def plain(model):
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)


def _refusal(build):
    """Build a sharded model and a GradientMonitor on it (entered and left without a forward pass,
    so nothing is measured and no hook can stay behind): ``("built", None)`` if the monitor took it,
    ``(exception type, message)`` if it refused, ``("cannot build", traceback)`` if the model could not be built."""
    from gradcourse import GradientMonitor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build()
    except Exception:
        return ("cannot build", traceback.format_exc())
    try:
        with GradientMonitor(model):
            pass
    except Exception as error:
        return (type(error).__name__, str(error))
    return ("built", None)


def build_fsdp1(use_orig_params):
    from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy

    return FullyShardedDataParallel(make_model(), sharding_strategy=ShardingStrategy.FULL_SHARD,
                                    use_orig_params=use_orig_params, device_id=torch.device("cpu"))


def build_fully_shard(world_size):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world_size,))
    model = make_model()
    for layer in linears(model):
        fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


REFUSALS = {
    "FullyShardedDataParallel(use_orig_params=False)": lambda world_size: build_fsdp1(False),
    "FullyShardedDataParallel(use_orig_params=True)": lambda world_size: build_fsdp1(True),
    "fully_shard": build_fully_shard,
}


def ddp_worker(rank, port, out_dir):
    """One of the two processes: DDP training with a GradientMonitor on the wrapper and on its
    ``.module``, then GradientMonitor on FSDP models sharded over the two processes. Saves what it
    found to ``out_dir/rank<rank>.pt``."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")   # both processes on this machine: the loopback device
    store = dist.TCPStore("127.0.0.1", port, WORLD_SIZE, is_master=False, timeout=TIMEOUT)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD_SIZE, timeout=TIMEOUT)
    try:
        X, y = half(*make_batch(), rank)
        result = {}
        for target in ("ddp", "module"):
            model = DistributedDataParallel(make_model())
            record = train(model, model if target == "ddp" else model.module, X, y)
            del record["snapshots"]
            result[target] = record
        result["refusals"] = {name: _refusal(lambda: build(WORLD_SIZE)) for name, build in REFUSALS.items()}
        dist.barrier()
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
