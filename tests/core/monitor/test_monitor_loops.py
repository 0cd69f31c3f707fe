"""GradientMonitor in the training loops learners write after the course: every number it records is
the one the optimizer used (AMP's GradScaler, gradient accumulation, several optimizers, closures),
and only the monitored model's own passes are recorded."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradcourse import MLP, GradientMonitor, layer_gradient_norms

SIZES = [(20, 32), (32, 32), (32, 32), (32, 10)]


def _net(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in SIZES:
        layers += [nn.Linear(n_in, n_out, dtype=dtype), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def _data(n=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 20, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def _weight_grad_norms(model):
    return [torch.linalg.vector_norm(m.weight.grad).item() for m in model if isinstance(m, nn.Linear)]


def _weight_changes(model, before):
    return [((m.weight.detach() - w).norm() / w.norm()).item()
            for m, w in zip([m for m in model if isinstance(m, nn.Linear)], before)]


def _weights(model):
    return [m.weight.detach().clone() for m in model if isinstance(m, nn.Linear)]


def _closure(optimizer, model, X, y, evaluations=None):
    """The closure ``optimizer.step(closure)`` calls: zero the gradients, one loss, its gradient."""
    def closure():
        if evaluations is not None:
            evaluations[-1] += 1
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        return loss
    return closure


def test_grad_scaler_records_the_unscaled_gradient_the_optimizer_used():
    X, y = _data()
    reference, model = _net(), _net()
    F.cross_entropy(reference(X), y).backward()
    expected = _weight_grad_norms(reference)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    with GradientMonitor(model) as monitor:
        scaler.scale(F.cross_entropy(model(X), y)).backward()
        scaler.step(optimizer)
        scaler.update()
    assert monitor.series("grad_norm")[0].tolist() == pytest.approx(expected, rel=1e-5)
    assert monitor.steps("update_ratio") == 1


def test_a_step_the_grad_scaler_skips_has_no_row_and_is_counted():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    with GradientMonitor(model) as monitor:
        for step in range(3):
            optimizer.zero_grad()
            scaler.scale(F.cross_entropy(model(X), y)).backward()
            if step == 1:
                model[0].weight.grad[0, 0] = math.inf       # an overflow: the scaler skips this step
            scaler.step(optimizer)
            scaler.update()
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == 2
    assert monitor.skipped_steps == 1
    assert torch.isfinite(monitor.series("grad_norm")).all()


@pytest.mark.parametrize("every", [1, 2])
def test_gradient_accumulation_records_one_row_per_optimizer_step(every):
    X, y = _data(32)
    model, reference = _net(), _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    expected = []
    with GradientMonitor(model, every=every) as monitor:
        for step in range(4):
            optimizer.zero_grad()
            for half in (slice(0, 8), slice(8, 16)):          # two micro-batches per step
                (F.cross_entropy(model(X[half]), y[half]) / 2).backward()
            optimizer.step()
            reference_optimizer.zero_grad()
            F.cross_entropy(reference(X[:16]), y[:16]).backward()
            expected.append(_weight_grad_norms(reference))
            reference_optimizer.step()
    recorded = list(range(0, 4, every))
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == monitor.steps("act_mean") == len(recorded)
    assert monitor.series("grad_norm").flatten().tolist() == pytest.approx(
        torch.tensor([expected[s] for s in recorded]).flatten().tolist(), rel=1e-4)
    assert (monitor.series("update_ratio") > 0).all()


def test_two_optimizers_each_give_the_rows_of_the_layers_they_hold():
    X, y = _data()
    model = _net()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    first = torch.optim.SGD([p for m in linears[:2] for p in m.parameters()], lr=0.1)
    second = torch.optim.Adam([p for m in linears[2:] for p in m.parameters()], lr=1e-3)
    with GradientMonitor(model) as monitor:
        for _ in range(2):
            first.zero_grad(), second.zero_grad()
            F.cross_entropy(model(X), y).backward()
            before = _weights(model)
            first.step()
            second.step()
    expected = _weight_changes(model, before)
    ratios = monitor.series("update_ratio")
    assert ratios.shape == (2, 4) and (ratios > 0).all()
    assert ratios[-1].tolist() == pytest.approx(expected, rel=1e-4)
    assert monitor.steps("grad_norm") == 2


def test_an_sgd_step_with_a_closure_records_the_step_it_took():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    closure = _closure(optimizer, model, X, y)
    with GradientMonitor(model) as monitor:
        for _ in range(3):
            before = _weights(model)
            optimizer.step(closure)
            expected_ratio = _weight_changes(model, before)
            expected_grad = _weight_grad_norms(model)
            assert monitor.series("update_ratio")[-1].tolist() == pytest.approx(expected_ratio, rel=1e-4)
            assert monitor.series("grad_norm")[-1].tolist() == pytest.approx(expected_grad, rel=1e-5)
    assert monitor.steps("update_ratio") == monitor.steps("grad_norm") == 3
    assert "step(closure)" in monitor.update_note


def test_a_deep_copy_of_the_monitored_model_records_nothing():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
        twin = copy.deepcopy(model)          # carries the monitor's hooks
        twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
        for _ in range(2):
            F.cross_entropy(twin(X[:5]), y[:5]).backward()
            twin_optimizer.step()
    assert monitor.series("act_mean").shape == (1, 3)
    assert monitor.activation_names == ["1", "3", "5"]
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == 1


def test_complex_parameters_count_their_imaginary_part():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, dtype=torch.cfloat), nn.Linear(5, 3, dtype=torch.cfloat))
    X = torch.randn(8, 6, dtype=torch.cfloat)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with GradientMonitor(model) as monitor:
        model(X).abs().square().mean().backward()
        expected = [torch.linalg.vector_norm(m.weight.grad).item() for m in model]
        before = [m.weight.detach().clone() for m in model]
        optimizer.step()
        steps = [((m.weight.detach() - w).norm() / w.norm()).item() for m, w in zip(model, before)]
    assert monitor.series("grad_norm")[0].tolist() == pytest.approx(expected, rel=1e-5)
    assert monitor.series("update_ratio")[0].tolist() == pytest.approx(steps, rel=1e-3)
    assert monitor.update_note is None


@pytest.mark.parametrize("foreach", [None, False])
def test_adam_with_a_tensor_learning_rate_is_replayed(foreach):
    X, y = _data()
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=torch.tensor(1e-3), foreach=foreach)
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(X), y).backward()
        before = _weights(model)
        optimizer.step()
    assert monitor.update_note is None
    assert monitor.series("update_ratio")[0].tolist() == pytest.approx(_weight_changes(model, before), rel=1e-3)


def test_a_backward_pass_without_a_step_is_a_row_before_any_step():
    X, y = _data()
    model = _net()
    with GradientMonitor(model) as monitor:
        for _ in range(3):                       # probing gradients: backward, read, zero
            model.zero_grad()
            F.cross_entropy(model(X), y).backward()
    assert monitor.steps("grad_norm") == 3 and monitor.steps("update_ratio") == 0
    assert monitor.skipped_steps == 0


def test_an_mlp_with_a_frozen_hidden_layer_is_monitored_on_its_trainable_layers():
    from gradcourse.core.diagnose import diagnose

    X, y = _data()
    model = MLP(depth=3, width=16, activation="tanh", in_features=20)
    model.hidden_linears()[1].requires_grad_(False)
    assert GradientMonitor(model).layer_names == ["blocks.0.linear", "blocks.2.linear"]
    assert len(layer_gradient_norms(model, X, y)) == 2
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    report = diagnose(model, X, y, optimizer=optimizer)
    assert report.layer_names == ["blocks.0.linear", "blocks.2.linear"] and len(report.update_ratios) == 2
    with pytest.raises(ValueError, match=r"layers=\['blocks.1.linear'\] is not allowed.*no parameter with requires_grad"):
        GradientMonitor(model, layers=model.hidden_linears())


def test_a_torchscript_model_is_refused_with_a_reason():
    scripted = torch.jit.script(_net())
    with pytest.raises(ValueError, match="TorchScript"):
        GradientMonitor(scripted)


def test_diagnose_in_place_leaves_the_learners_active_monitor_alone():
    from torch.nn.utils import prune

    from gradcourse.core.diagnose import diagnose

    X, y = _data()
    model = _net()
    prune.l1_unstructured(model[6], "weight", 0.5)           # a pruned model cannot be deep-copied
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model, layers=[model[0], model[2]]) as monitor:
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
        before = {name: monitor.series(name).clone() for name in ("grad_norm", "update_ratio", "act_mean")}
        report = diagnose(model, X, y, optimizer=optimizer)
        after = {name: monitor.series(name) for name in before}
    assert report.layer_names and report.update_ratios is not None
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert monitor.steps("update_ratio") == 1


def test_an_lbfgs_step_records_the_applied_change_and_says_so():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.1, max_iter=1)
    closure = _closure(optimizer, model, X, y)
    with GradientMonitor(model) as monitor:
        closure()                               # a pass of the learner's own before the step: the same row
        before = _weights(model)
        optimizer.step(closure)
    assert "step(closure)" in monitor.update_note and "applied change" in monitor.update_note
    assert monitor.steps("update_ratio") == monitor.steps("grad_norm") == monitor.steps("act_mean") == 1
    assert monitor.series("update_ratio")[0].tolist() == pytest.approx(_weight_changes(model, before), rel=1e-5)
    assert any(not torch.equal(w, v) for w, v in zip(_weights(model), before))


def test_a_closure_that_runs_the_model_many_times_records_its_first_pass():
    X, y = _data(32)
    model = _net()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=20, line_search_fn="strong_wolfe")
    evaluations = []
    closure = _closure(optimizer, model, X, y, evaluations)
    with GradientMonitor(model) as monitor:
        for _ in range(3):
            evaluations.append(0)
            optimizer.step(closure)
    assert max(evaluations) > 1
    assert monitor.activation_names == ["1", "3", "5"]
    assert monitor.steps("act_mean") == monitor.steps("grad_norm") == monitor.steps("update_ratio") == 3


def test_a_layer_no_optimizer_stepped_reads_nan_in_both_statistics():
    X, y = _data()
    model = _net()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    body = torch.optim.SGD([p for m in linears[:3] for p in m.parameters()], lr=0.1)
    head = torch.optim.SGD(linears[3].parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        for step in range(2):
            body.zero_grad(), head.zero_grad()
            F.cross_entropy(model(X), y).backward()
            body.step()
            if step == 0:                      # the head steps every other step only
                head.step()
    grad, update = monitor.series("grad_norm"), monitor.series("update_ratio")
    assert torch.isfinite(grad[0]).all() and torch.isfinite(update[0]).all()
    assert torch.isfinite(grad[1, :3]).all() and math.isnan(grad[1, 3]) and math.isnan(update[1, 3])


class _Checkpointed(nn.Module):
    """A block recomputed in backward (torch.utils.checkpoint): with ``use_reentrant=True`` its forward runs
    under no_grad and only the recomputation has gradients; without, the forward has them."""

    def __init__(self, reentrant):
        super().__init__()
        torch.manual_seed(0)
        self.reentrant = reentrant
        self.stem = nn.Linear(20, 20)
        self.block = nn.Sequential(nn.Linear(20, 32), nn.Tanh())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(torch.utils.checkpoint.checkpoint(self.block, self.stem(x), use_reentrant=self.reentrant))


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_checkpointed_block_is_recorded_once_per_step(reentrant):
    X, y = _data()
    model = _Checkpointed(reentrant)
    with torch.no_grad():                   # the block's activations at the first step's weights
        first = torch.tanh(model.block[0](model.stem(X))).mean().item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        for _ in range(2):
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
            model.block(model.stem(X))          # a submodule called on its own (features to look at): not a step
    assert monitor.activation_names == ["block.1"]
    assert monitor.steps("act_mean") == monitor.steps("grad_norm") == 2
    assert monitor.series("act_mean")[0, 0].item() == pytest.approx(first, rel=1e-5)


def test_diagnose_with_an_optimizer_of_some_layers_reads_every_layers_gradient():
    from gradcourse.core.diagnose import diagnose

    X, y = _data()
    model = _net()
    report = diagnose(model, X, y, optimizer=torch.optim.SGD(model[6].parameters(), lr=0.1))
    assert all(math.isfinite(g) and g > 0 for g in report.grad_norms)
    assert "non-finite gradients" not in report.symptom_names
    assert [math.isnan(u) for u in report.update_ratios] == [True, True, True, False]


def test_a_fused_optimizer_under_grad_scaler_records_unscaled_gradients_and_skips_what_it_skips():
    X, y = _data()
    reference, model = _net(), _net()
    F.cross_entropy(reference(X), y).backward()
    expected = _weight_grad_norms(reference)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)   # unscales inside its own step
    scaler = torch.amp.GradScaler("cpu")
    with GradientMonitor(model) as monitor:
        for step in range(3):
            optimizer.zero_grad()
            scaler.scale(F.cross_entropy(model(X), y)).backward()
            if step == 1:
                model[0].weight.grad[0, 0] = math.inf      # the fused step finds it and changes nothing
            before = _weights(model)
            scaler.step(optimizer)
            scaler.update()
            if step == 2:
                moved = _weight_changes(model, before)
    assert monitor.series("grad_norm")[0].tolist() == pytest.approx(expected, rel=1e-5)
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == 2 and monitor.skipped_steps == 1
    assert monitor.series("update_ratio")[-1].tolist() == pytest.approx(moved, rel=1e-3)


@pytest.mark.parametrize("every", [1, 2])
def test_gradients_changed_in_place_between_micro_batches_still_accumulate(every):
    X, y = _data(32)
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model, every=every) as monitor:
        for _ in range(4):
            optimizer.zero_grad()
            for half in (slice(0, 8), slice(8, 16)):
                (F.cross_entropy(model(X[half]), y[half]) / 2).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)   # to log the norm: x1.0 in place
            optimizer.step()
    assert monitor.steps("grad_norm") == monitor.steps("update_ratio") == monitor.steps("act_mean") == 4 // every
    assert monitor.skipped_steps == 0


def test_an_optimizer_the_learner_drops_is_freed():
    import gc
    import weakref

    X, y = _data()
    model = _net()
    with GradientMonitor(model) as monitor:
        dropped = []
        for lr in (1e-3, 1e-2):                   # a learning-rate sweep inside one monitor
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
            optimizer.zero_grad()
            dropped.append(weakref.ref(optimizer))
            del optimizer
        gc.collect()
        assert all(ref() is None for ref in dropped)
    assert monitor.steps("update_ratio") == 2


def test_a_step_without_gradients_keeps_the_two_series_aligned():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with GradientMonitor(model) as monitor:
        for step in range(3):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X), y)
            if step != 1:                             # step 1: the optimizer steps with no gradient at all
                loss.backward()
            optimizer.step()
    grad, update = monitor.series("grad_norm"), monitor.series("update_ratio")
    assert grad.shape == update.shape == (3, 4)
    assert torch.isnan(grad[1]).all() and torch.isnan(update[1]).all()
    assert torch.isfinite(grad[2]).all() and torch.isfinite(update[2]).all()


def test_a_forward_pass_with_gradients_outside_training_does_not_replace_the_steps_activations():
    X, y = _data()
    model = _net()
    X_eval = 10 * torch.randn(64, 20)                  # saturates the tanh units, unlike the training batch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        for _ in range(3):
            model(X_eval)                              # a look at other data, gradients left on, no backward
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
        model(X_eval)
    with torch.no_grad():
        first = torch.tanh(_net()[0](X)).mean().item()
    assert monitor.steps("act_mean") == monitor.steps("grad_norm") == 3
    assert monitor.series("act_mean")[0, 0].item() == pytest.approx(first, rel=1e-5)


def test_a_layer_split_between_two_optimizers_adds_up_its_parts():
    torch.manual_seed(0)
    model = nn.RNN(6, 8, batch_first=True)
    X = torch.randn(4, 5, 6)
    first = torch.optim.SGD([model.weight_ih_l0], lr=0.1)
    second = torch.optim.Adam([model.weight_hh_l0], lr=1e-2)
    with GradientMonitor(model) as monitor:
        model(X)[0].square().mean().backward()
        before = torch.cat([model.weight_ih_l0.detach().flatten(), model.weight_hh_l0.detach().flatten()])
        first.step()
        second.step()
    after = torch.cat([model.weight_ih_l0.detach().flatten(), model.weight_hh_l0.detach().flatten()])
    expected = ((after - before).double().norm() / before.double().norm()).item()
    assert monitor.series("update_ratio")[0, 0].item() == pytest.approx(expected, rel=1e-4)


def test_every_k_counts_a_step_the_grad_scaler_skips_between_recorded_steps():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    norms = []
    with GradientMonitor(model, every=2) as monitor:
        for step in range(6):
            optimizer.zero_grad()
            scaler.scale(F.cross_entropy(model(X), y)).backward()
            if step == 1:
                model[0].weight.grad[0, 0] = math.inf     # skipped, in a step every=2 does not record
            scaler.unscale_(optimizer)
            norms.append(_weight_grad_norms(model))
            scaler.step(optimizer)
            scaler.update()
    assert monitor.skipped_steps == 1
    assert monitor.series("grad_norm").flatten().tolist() == pytest.approx(
        torch.tensor([norms[s] for s in (0, 2, 4)]).flatten().tolist(), rel=1e-5)


def test_a_layer_frozen_during_training_reads_nan_in_both_series():
    X, y = _data()
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        for step in range(2):
            if step == 1:
                model[2].requires_grad_(False)
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
    grad, update = monitor.series("grad_norm")[1], monitor.series("update_ratio")[1]
    assert math.isnan(grad[1]) and math.isnan(update[1])
    assert torch.isfinite(grad[[0, 2, 3]]).all() and torch.isfinite(update[[0, 2, 3]]).all()
