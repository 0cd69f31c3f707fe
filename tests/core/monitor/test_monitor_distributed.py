"""GradientMonitor with several processes: DistributedDataParallel and sharded models.

Under ``DistributedDataParallel`` every rank computes the gradient of its own share of the batch,
and DDP's all-reduce (run at the end of the backward pass) replaces it by the average over the
ranks before the optimizer steps. With equal shares and a mean loss that average is the gradient of
the whole batch, so each rank's optimizer uses exactly the gradient a single process training on
the whole batch would use, and every rank's GradientMonitor must record that: the same ``grad_norm``
and ``update_ratio`` on every rank, equal (to float32 rounding) to one process on the whole batch.

Activation statistics are different: the forward pass is not synchronized, so each rank's
``act_mean``, ``act_std``, ``saturated`` and ``dead`` describe the activations of *its own share*
of the batch (here 8 of 16 examples) at the shared weights. They differ between ranks; for equal
shares the whole batch's ``act_mean`` is the mean of the ranks' (``act_std``, ``saturated`` and
``dead`` do not combine that simply: a unit dead on one rank's share may be alive on the other's).

A sharded model (FSDP: ``FullyShardedDataParallel`` or ``fully_shard``) keeps only a slice of each
weight and of its gradient on each rank, so a per-layer norm would need a reduction across ranks:
GradientMonitor refuses it with a ValueError that says so.

The DDP tests start two CPU processes (gloo backend, loopback) once for the module; the FSDP tests
build one-process groups in the test process and destroy them afterwards.
"""

import time

import pytest
import torch
import torch.distributed as dist

import distributed_workers as workers
from gradcourse import GradientMonitor

pytestmark = [
    pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed"),
    pytest.mark.skipif(dist.is_available() and not dist.is_gloo_available(),
                       reason="this torch build has no gloo backend for CPU processes"),
]

RTOL = 1e-5            # float32 rounding: the ranks' average of two half-batch gradients against the whole batch's
ATOL = 1e-9            # norms and ratios here are 1e-3 .. 1
ACT_ATOL = 1e-7        # a mean of activations can be near 0; float32 means of 256 entries of size ~0.5 are off by ~1e-8
JOIN_TIMEOUT = 150      # seconds for both processes together (about 5 s on two idle cores; a bound on failures only)
TARGETS = ["ddp", "module"]   # GradientMonitor(ddp_model), GradientMonitor(ddp_model.module)


# --- the runs ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two DDP processes recorded: ``[rank 0's, rank 1's]`` (see workers.ddp_worker)."""
    import torch.multiprocessing as mp

    out_dir = tmp_path_factory.mktemp("ddp")
    # The test process holds the store; the workers connect to its port (chosen by the system: no race
    # for a free port). Every wait on it, and every collective, times out after workers.TIMEOUT.
    store = dist.TCPStore("127.0.0.1", 0, workers.WORLD_SIZE, is_master=True, timeout=workers.TIMEOUT,
                          wait_for_workers=False)
    context = mp.start_processes(workers.ddp_worker, args=(store.port, str(out_dir)), nprocs=workers.WORLD_SIZE,
                                 join=False, start_method="spawn")
    deadline = time.monotonic() + JOIN_TIMEOUT
    try:
        while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):   # raises if a worker raised
            if time.monotonic() > deadline:
                pytest.fail(f"the two DDP processes did not finish within {JOIN_TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
        del store
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=True) for rank in range(workers.WORLD_SIZE)]


@pytest.fixture(scope="module")
def single():
    """One process, no DDP, training the same model on the whole batch of 16 examples."""
    model = workers.make_model()
    return workers.train(model, model, *workers.make_batch())


def at_weights(snapshots, X, y):
    """At each step's weights (of the whole-batch run): the act_mean a GradientMonitor records for a
    training step on ``(X, y)`` alone (lr 0: the weights stay), and the gradient norms of ``(X, y)`` alone
    (what one rank computes before DDP's all-reduce)."""
    model = workers.make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    means, grads = [], []
    for state in snapshots:
        model.load_state_dict(state)
        with GradientMonitor(model) as monitor:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
        means.append(monitor.series("act_mean")[0])
        grads.append(workers.weight_grad_norms(model))
    return torch.stack(means), torch.stack(grads)


def close(a, b, atol=ATOL):
    return a.shape == b.shape and torch.allclose(a, b, rtol=RTOL, atol=atol)


# --- DistributedDataParallel ---------------------------------------------------------------------
def test_ddp_steps_every_rank_with_the_whole_batch_gradient(ranks, single):
    """The set-up itself, whatever the monitor records: the gradients each rank's optimizer steps with
    (read right before ``step()``, after DDP's all-reduce) are the whole batch's, on both ranks."""
    for rank, result in enumerate(ranks):
        for target in TARGETS:
            assert close(result[target]["used_grad_norm"], single["used_grad_norm"]), (rank, target)


@pytest.mark.parametrize("target", TARGETS)
def test_every_rank_records_the_gradient_norms_of_the_whole_batch(ranks, single, target):
    X, y = workers.make_batch()
    local = [at_weights(single["snapshots"], *workers.half(X, y, rank))[1] for rank in range(workers.WORLD_SIZE)]
    for rank, result in enumerate(ranks):
        recorded = result[target]["grad_norm"]
        assert close(recorded, single["grad_norm"]), (
            f"rank {rank}, GradientMonitor({'ddp_model' if target == 'ddp' else 'ddp_model.module'}) recorded "
            f"grad_norm\n{recorded}\nthe optimizer used (whole batch, after DDP's all-reduce)\n{single['grad_norm']}\n"
            f"this rank's own half-batch gradient before the all-reduce\n{local[rank]}")
    assert close(ranks[0][target]["grad_norm"], ranks[1][target]["grad_norm"])


@pytest.mark.parametrize("target", TARGETS)
def test_every_rank_records_the_update_ratios_of_the_whole_batch(ranks, single, target):
    for rank, result in enumerate(ranks):
        assert close(result[target]["update_ratio"], single["update_ratio"]), (
            rank, result[target]["update_ratio"], single["update_ratio"])
    assert close(ranks[0][target]["update_ratio"], ranks[1][target]["update_ratio"])


def test_layer_names_under_ddp(ranks, single):
    """``GradientMonitor(ddp_model.module)`` names the layers as without DDP; ``GradientMonitor(ddp_model)``
    sees them under DDP's ``module.`` (either form, or the prefix removed, is accepted for the wrapper)."""
    assert single["layer_names"] == ["0", "2", "4"]
    for result in ranks:
        assert result["module"]["layer_names"] == single["layer_names"]
        assert result["module"]["activation_names"] == single["activation_names"]
        assert [name.removeprefix("module.") for name in result["ddp"]["layer_names"]] == single["layer_names"]
        assert [name.removeprefix("module.") for name in result["ddp"]["activation_names"]] == single["activation_names"]


@pytest.mark.parametrize("target", TARGETS)
def test_activation_statistics_are_each_ranks_own_half_batch(ranks, single, target):
    """Rank r's act_mean at step k is that of its half of the batch at the step's (shared) weights;
    the two ranks' differ, and their mean is the whole batch's."""
    X, y = workers.make_batch()
    for rank, result in enumerate(ranks):
        own_half = at_weights(single["snapshots"], *workers.half(X, y, rank))[0]
        assert close(result[target]["act_mean"], own_half, ACT_ATOL), (rank, result[target]["act_mean"], own_half)
    first, second = ranks[0][target]["act_mean"], ranks[1][target]["act_mean"]
    assert not torch.allclose(first, second, rtol=1e-3)
    assert close((first + second) / 2, single["act_mean"], ACT_ATOL)


# --- sharded models (FSDP) -----------------------------------------------------------------------
@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of this process alone (world size 1), destroyed after the test."""
    if dist.is_initialized():
        pytest.skip("a default process group is already initialized in this test process")
    dist.init_process_group("gloo", init_method=(tmp_path / "store").as_uri(), rank=0, world_size=1,
                            timeout=workers.TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def require(module, name):
    """``module.name``, or skip where this torch has no such API (``fully_shard`` and ``torch.distributed.tensor``
    are public from torch 2.6 and 2.5; the course supports torch 2.1 and later)."""
    found = getattr(pytest.importorskip(module), name, None)
    if found is None:
        pytest.skip(f"this torch ({torch.__version__}) has no {module}.{name}")
    return found


def expect_refusal(model, match="shard"):
    """GradientMonitor refuses ``model`` (when built, or at the latest when entered: no forward pass
    runs, so nothing is measured and no hook can stay behind if it does not refuse)."""
    with pytest.raises(ValueError, match=match):
        with GradientMonitor(model):
            pass


def test_fully_shard_is_refused(one_process_group):
    """FSDP2: ``fully_shard`` replaces every parameter by a DTensor sharded on dim 0 (``Shard(0)``),
    on a one-process mesh too."""
    require("torch.distributed.fsdp", "fully_shard")
    DTensor = require("torch.distributed.tensor", "DTensor")
    model = workers.build_fully_shard(world_size=1)
    assert all(isinstance(p, DTensor) for p in model.parameters())
    expect_refusal(model)


def test_a_sharded_dtensor_weight_is_refused(one_process_group):
    """Any weight that is a DTensor sharded over a device mesh (as FSDP2 and tensor parallelism make them)."""
    init_device_mesh = require("torch.distributed.device_mesh", "init_device_mesh")
    distribute_tensor = require("torch.distributed.tensor", "distribute_tensor")
    Shard = require("torch.distributed.tensor", "Shard")
    model = workers.make_model()
    mesh = init_device_mesh("cpu", (1,))
    model[2].weight = torch.nn.Parameter(distribute_tensor(model[2].weight.detach(), mesh, [Shard(0)]))
    assert isinstance(model[2].weight, require("torch.distributed.tensor", "DTensor"))
    expect_refusal(model)


@pytest.mark.filterwarnings("ignore:FSDP is switching to use `NO_SHARD`:UserWarning")
@pytest.mark.parametrize("use_orig_params", [False, True])
def test_fully_sharded_data_parallel_is_refused(one_process_group, use_orig_params):
    """FSDP1 (``FullyShardedDataParallel``). With one process it falls back to NO_SHARD, yet the monitor
    cannot work on it either: with ``use_orig_params=False`` the only parameter is one FlatParameter
    (all weights and biases of the model, one "layer"); with ``use_orig_params=True`` FSDP sets the
    layers' ``.grad`` after the backward pass without accumulating into them, so no gradient is seen."""
    model = workers.build_fsdp1(use_orig_params)
    expect_refusal(model, match="FSDP")


@pytest.mark.parametrize("name", list(workers.REFUSALS))
def test_models_sharded_across_two_processes_are_refused(ranks, name):
    """The same models sharded over the two DDP processes (FULL_SHARD for FSDP1, really sharded here)."""
    for rank, result in enumerate(ranks):
        outcome, detail = result["refusals"][name]
        if outcome == "cannot build":
            pytest.skip(f"{name} could not be built on CPU with two gloo processes:\n{detail}")
        assert outcome == "ValueError" and "shard" in detail.lower(), (rank, outcome, detail)
