"""gradcourse.core.monitor.monitor: the GradientMonitor's recorded statistics. (The one-shot gradient norms
per layer are tested in tests/core/test_probes.py.)"""

import math

import pytest
import torch
import torch.nn.functional as F

import gradcourse
from gradcourse import GradientMonitor, ProgressBar
from helpers import mlp_32x4 as _model


def test_non_modules_are_rejected():
    with pytest.raises(ValueError, match=r"model='mlp' is not allowed"):
        GradientMonitor("mlp")


def _train_steps(model, X, y, steps=3, lr=0.1):
    """A hand-written SGD loop; returns the weight-gradient norms after each backward pass."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    grad_norms = []
    for step in range(steps):
        rows = slice(64 * step, 64 * (step + 1))
        optimizer.zero_grad()
        F.cross_entropy(model(X[rows]), y[rows]).backward()
        grad_norms.append([layer.weight.grad.norm().item() for layer in model.hidden_linears()])
        optimizer.step()
    return grad_norms


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_monitor_records_every_statistic_per_step_and_layer(activation, mnist_small):
    model = _model(activation=activation)
    with GradientMonitor(model) as monitor:
        assert monitor.active
        manual = _train_steps(model, *mnist_small, steps=3)
    assert not monitor.active
    for name in ("grad_norm", "act_mean", "act_std", "saturated", "dead", "update_ratio"):
        assert monitor.series(name).shape == (3, 4), name
        assert monitor.steps(name) == 3
    assert monitor.series("grad_norm").flatten().tolist() == pytest.approx(torch.tensor(manual).flatten().tolist(), rel=1e-5)
    saturated = monitor.series("saturated")
    if activation == "relu":
        assert torch.isnan(saturated).all()
    else:
        assert ((saturated >= 0) & (saturated <= 1)).all()
    dead = monitor.series("dead")
    assert ((dead >= 0) & (dead <= 1)).all()
    assert (monitor.series("update_ratio") > 0).all()


@pytest.mark.parametrize("every", [1, 3, 7])
def test_every_k_records_the_first_step_and_every_kth_after_it(every, mnist_small):
    model = _model()
    with GradientMonitor(model, every=every) as sampled:
        manual = _train_steps(model, *mnist_small, steps=7)
    recorded = list(range(0, 7, every))                   # steps 0, k, 2k, ...
    for name in ("grad_norm", "act_mean", "dead", "update_ratio"):
        assert sampled.steps(name) == len(recorded), name
    expected = torch.tensor(manual)[recorded].flatten().tolist()
    assert sampled.series("grad_norm").flatten().tolist() == pytest.approx(expected, rel=1e-5)


def test_every_k_leaves_the_training_unchanged(mnist_small):
    losses = []
    for every in (1, 5):
        model = _model()
        with GradientMonitor(model, every=every):
            losses.append(gradcourse.fit(model, *mnist_small, epochs=1, batch_size=32, lr=0.1, callbacks=[ProgressBar(show=False)]).loss)
    assert losses[0] == losses[1]


def test_every_k_runs_the_steps_in_between_without_per_step_hooks(mnist_small):
    X, y = mnist_small
    model = _model()
    activation, weight = model.blocks[0].activation, model.blocks[0].linear.weight
    attached = []
    activation.register_forward_pre_hook(lambda m, i: attached.append((len(m._forward_hooks),
                                                                        len(weight._post_accumulate_grad_hooks or {}))))
    with GradientMonitor(model, every=3):
        _train_steps(model, X, y, steps=4)
    assert attached == [(1, 1), (0, 0), (0, 0), (1, 1)]        # steps 0 and 3 are recorded
    assert not activation._forward_hooks and not weight._post_accumulate_grad_hooks


@pytest.mark.parametrize("every", [0, -1, 2.5, "10", True])
def test_every_must_be_a_positive_integer(every, raises_bad):
    with raises_bad("every", every):
        GradientMonitor(_model(), every=every)


@pytest.mark.parametrize("stack_limit", [2 ** 20, 0], ids=["stacked", "one_by_one"])
def test_activation_statistics_match_a_manual_forward(stack_limit, mnist_small, monkeypatch):
    # outputs of one shape are summarized together; above STACK_LIMIT entries one by one: same numbers
    monkeypatch.setattr(gradcourse.core.monitor.rows, "STACK_LIMIT", stack_limit)
    X, _ = mnist_small
    model = _model(activation="tanh")
    with GradientMonitor(model) as monitor:
        model(X)
    h, means, stds, saturated = X, [], [], []
    with torch.no_grad():
        for block in model.blocks:
            h = block(h)
            means.append(h.mean().item())
            stds.append(h.std().item())
            saturated.append((h.abs() > 0.97).float().mean().item())
    assert monitor.series("act_mean")[0].tolist() == pytest.approx(means, rel=1e-5, abs=1e-7)
    assert monitor.series("act_std")[0].tolist() == pytest.approx(stds, rel=1e-5)
    assert monitor.series("saturated")[0].tolist() == pytest.approx(saturated)


def test_an_activation_output_changed_in_place_later_is_reported_not_misread():
    # GELU's backward needs its input, not its output, so forward may legally scale the output in place
    class ScaledGelu(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.act = torch.nn.Linear(4, 6), torch.nn.GELU()

        def forward(self, x):
            return self.act(self.linear(x)).mul_(2.0)

    model = ScaledGelu()
    with GradientMonitor(model) as monitor:
        model(torch.randn(8, 4)).sum().backward()
    assert math.isnan(monitor.series("act_mean")[0, 0].item())
    assert "changed in place" in monitor.activation_note


def test_grad_norm_is_the_gradient_the_step_used_after_clipping(mnist_small):
    # measured when backward ends, and again at the step because clip_grad_norm_ rescaled the gradients in place
    X, y = mnist_small
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(X), y).backward()
        before = [torch.linalg.vector_norm(layer.weight.grad).item() for layer in monitor.layers]
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)
        clipped = [torch.linalg.vector_norm(layer.weight.grad).item() for layer in monitor.layers]
        optimizer.step()
    assert monitor.series("grad_norm")[0].tolist() == pytest.approx(clipped, rel=1e-5)
    assert max(before) > 1e-2 and max(clipped) < 1.01e-3      # so clipping did change the gradients


def test_mean_averages_over_steps(mnist_small):
    model = _model()
    with GradientMonitor(model) as monitor:
        _train_steps(model, *mnist_small, steps=3)
    assert monitor.mean("grad_norm") == pytest.approx(monitor.series("grad_norm").mean(dim=0).tolist())


def test_update_ratio_equals_the_relative_weight_change(mnist_small):
    X, y = mnist_small
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    with GradientMonitor(model) as monitor:
        for _ in range(2):  # the second step includes momentum
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
            optimizer.step()
            expected = [((layer.weight.detach() - w).norm() / w.norm()).item()
                        for layer, w in zip(model.hidden_linears(), before)]
            assert monitor.series("update_ratio")[-1].tolist() == pytest.approx(expected, rel=1e-4)
    assert monitor.steps("update_ratio") == 2


def test_optimizers_of_other_models_are_ignored(mnist_small):
    X, y = mnist_small
    model, other = _model(), _model()
    optimizer = torch.optim.SGD(other.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        F.cross_entropy(other(X), y).backward()
        optimizer.step()
    assert monitor.steps("update_ratio") == 0
    assert monitor.steps("grad_norm") == 0


def test_evaluation_without_gradients_is_not_recorded(mnist_small):
    X, _ = mnist_small
    model = _model()
    with GradientMonitor(model) as monitor:
        with torch.no_grad():
            model(X)
        assert monitor.steps("act_mean") == 0
        model(X)
    assert monitor.steps("act_mean") == 1


def _assert_hooks_removed(model, monitor, X, y):
    assert not monitor.active
    assert all(not activation._forward_hooks for activation in model.hidden_activations())
    assert all(not layer.weight._post_accumulate_grad_hooks for layer in model.hidden_linears())
    counts = {name: monitor.steps(name) for name in ("grad_norm", "act_mean", "update_ratio")}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(X), y).backward()
    optimizer.step()
    assert {name: monitor.steps(name) for name in counts} == counts


def test_hooks_are_removed_on_exit(mnist_small):
    model = _model()
    with GradientMonitor(model) as monitor:
        _train_steps(model, *mnist_small, steps=1)
    assert monitor.steps("grad_norm") == 1
    _assert_hooks_removed(model, monitor, *mnist_small)


def test_hooks_are_removed_after_an_exception(mnist_small):
    model = _model()
    with pytest.raises(ZeroDivisionError):
        with GradientMonitor(model) as monitor:
            _train_steps(model, *mnist_small, steps=1)
            1 / 0
    _assert_hooks_removed(model, monitor, *mnist_small)


def test_monitor_cannot_be_entered_twice():
    monitor = GradientMonitor(_model())
    with monitor:
        with pytest.raises(RuntimeError, match="already active"):
            monitor.__enter__()
    assert not monitor.active


def test_series_before_any_record_is_empty_with_one_column_per_layer():
    monitor = GradientMonitor(_model(depth=5))
    assert monitor.series("grad_norm").shape == (0, 5)
    assert monitor.layer_names == [f"blocks.{i}.linear" for i in range(5)]
    assert "5 layers" in repr(monitor) and "inactive" in repr(monitor)


def test_series_rejects_unknown_statistics(raises_bad):
    with raises_bad("name", "bogus"):
        GradientMonitor(_model()).series("bogus")


def test_sigmoid_with_huge_init_saturates(mnist_small):
    # Measured at depth 5, width 64: N(0, 25) weights saturate 0.89-0.98 of units per layer;
    # the default init saturates none.
    X, _ = mnist_small
    for init_scale, check in ((5.0, lambda share: share > 0.8), (1.0, lambda share: share < 0.05)):
        model = _model(depth=5, width=64, activation="sigmoid", init="normal" if init_scale > 1 else "default",
                       init_scale=init_scale)
        with GradientMonitor(model) as monitor:
            model(X)
        assert all(check(share) for share in monitor.mean("saturated")), (init_scale, monitor.mean("saturated"))


def test_relu_with_a_big_negative_bias_is_dead(mnist_small):
    X, _ = mnist_small
    model = _model(activation="relu")
    with torch.no_grad():
        for layer in model.hidden_linears():
            layer.bias.fill_(-100.0)
    with GradientMonitor(model) as monitor:
        model(X)
    assert monitor.mean("dead") == [1.0] * 4
    healthy = _model(activation="relu", init="kaiming")
    with GradientMonitor(healthy) as monitor:
        healthy(X)
    assert all(share < 0.5 for share in monitor.mean("dead"))


def test_update_ratio_is_the_computed_step_even_where_float32_absorbs_it(mnist_small):
    """lr * ||g|| / ||W|| for plain SGD, though the weights do not move at all in float32."""
    X, y = mnist_small
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-12)
    with GradientMonitor(model) as monitor:
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        before = [layer.weight.detach().clone() for layer in model.hidden_linears()]
        expected = [1e-12 * layer.weight.grad.double().norm().item() / layer.weight.double().norm().item()
                    for layer in model.hidden_linears()]
        optimizer.step()
    assert all(torch.equal(layer.weight, w) for layer, w in zip(model.hidden_linears(), before))   # absorbed
    assert monitor.series("update_ratio")[-1].tolist() == pytest.approx(expected, rel=1e-6)
    assert monitor.update_note is None


def test_update_ratio_falls_back_to_the_applied_change_and_says_so(mnist_small):
    X, y = mnist_small
    model = _model()

    class Scaling(torch.optim.Optimizer):     # not built like torch.optim's (Optimizer(param_groups)): no replay
        def __init__(self, params, factor):
            super().__init__(params, {})
            self.factor = factor

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.mul_(self.factor)

    optimizer = Scaling(model.parameters(), 0.5)
    with GradientMonitor(model) as monitor:
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    assert "Scaling could not be replayed" in monitor.update_note
    assert monitor.series("update_ratio")[0].tolist() == pytest.approx([0.5] * 4, rel=1e-6)


def test_a_layer_frozen_after_the_monitor_was_built_records_nan():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    monitor = GradientMonitor(model)
    model[2].weight.requires_grad_(False)   # frozen after the monitor was built, as when fine-tuning
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with monitor:
        torch.nn.functional.cross_entropy(model(torch.randn(5, 4)), torch.zeros(5, dtype=torch.long)).backward()
        optimizer.step()
    grad, update = monitor.series("grad_norm")[0], monitor.series("update_ratio")[0]
    assert grad[0] > 0 and update[0] > 0
    assert math.isnan(grad[1]) and math.isnan(update[1])
    assert not monitor.active and not model._forward_hooks and not model._forward_pre_hooks


def test_histograms_over_steps_match_torch_histc(mnist_small):
    X, y = mnist_small
    model = _model(activation="tanh")
    with GradientMonitor(model, histogram_bins=10) as monitor:
        _train_steps(model, X, y, steps=2)
        h, expected = X[:64], []            # the third step's batch at its weights (no_grad: not recorded)
        with torch.no_grad():
            for block in model.blocks:
                h = block(h)
                expected.append((torch.histc(h, 10, -1, 1) / h.numel()).tolist())
        _train_steps(model, X, y, steps=1)
    histograms = monitor.histograms()
    assert list(histograms) == monitor.activation_names
    for (shares, edges), shares_by_hand in zip(histograms.values(), expected):
        assert shares.shape == (3, 10) and torch.allclose(edges, torch.linspace(-1, 1, 11, dtype=torch.float64))
        assert shares[-1].tolist() == pytest.approx(shares_by_hand)


def test_histograms_need_bins_and_a_valid_range(raises_bad):
    with pytest.raises(ValueError, match="histogram_bins=0"):
        GradientMonitor(_model()).histograms()
    with raises_bad("histogram_range", (1, -1)):
        GradientMonitor(_model(), histogram_bins=4, histogram_range=(1, -1))
    with raises_bad("histogram_bins", -1):
        GradientMonitor(_model(), histogram_bins=-1)
    monitor = GradientMonitor(_model(), histogram_bins=4, histogram_range=(0, 2))
    with monitor:
        _model()(torch.randn(5, 784))       # another model: nothing recorded
    assert monitor.histograms() == {}
