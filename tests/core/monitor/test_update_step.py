"""gradcourse.core.monitor.update_step: the step an optimizer computes, replayed in float64 before float32 rounds it."""

import pytest
import torch

from gradcourse.core.monitor.update_step import WEIGHT_FREE_STEPS, StepReplay, replayed_steps

OPTIMIZERS = [(torch.optim.SGD, {"lr": 0.1}),
              (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
              (torch.optim.Adam, {"lr": 1e-3}), (torch.optim.AdamW, {"lr": 1e-3, "amsgrad": True}),
              (torch.optim.RMSprop, {"lr": 1e-2, "momentum": 0.5}), (torch.optim.Adagrad, {}),
              (torch.optim.NAdam, {}), (torch.optim.RAdam, {}), (torch.optim.Adamax, {}), (torch.optim.ASGD, {}),
              (torch.optim.Rprop, {}), (torch.optim.Adadelta, {})]


def _parameters(dtype=torch.float64):
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(7, 5, dtype=dtype)), torch.nn.Parameter(torch.randn(5, dtype=dtype)),
            torch.nn.Parameter(torch.randn(3, 2, dtype=dtype))]


def _set_gradients(params, step):
    for p in params:
        p.grad = torch.randn_like(p)
    if step == 1:
        params[2].grad = None            # skipped at this step, as by an unused branch


@pytest.mark.parametrize("optimizer_class, settings", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_replayed_steps_are_the_steps_the_optimizer_then_takes(optimizer_class, settings):
    # in float64 the optimizer's own step is not rounded away, so it is the reference (the replay takes
    # torch's multi-tensor implementation, which orders NAdam's arithmetic otherwise: rtol 1e-7)
    params = _parameters()
    optimizer = optimizer_class(params, **settings)
    replay = StepReplay(optimizer, params)
    for step in range(4):
        _set_gradients(params, step)
        fresh = [s.clone() for s in replayed_steps(optimizer, params)]
        kept = [s.clone() for s in replay.steps(params)]
        before = [p.detach().clone() for p in params]
        optimizer.step()
        taken = [p.detach() - b for p, b in zip(params, before)]
        for a, b, c in zip(fresh, kept, taken):
            assert torch.allclose(a, c, rtol=1e-7, atol=1e-12) and torch.allclose(b, c, rtol=1e-7, atol=1e-12)
        if step == 1:
            assert not kept[2].any() and not taken[2].any()


def test_a_replay_leaves_the_weights_gradients_and_optimizer_state_alone():
    params = _parameters(torch.float32)
    optimizer = torch.optim.Adam(params, lr=1e-3)
    _set_gradients(params, 0)
    optimizer.step()
    saved = ([p.detach().clone() for p in params], [p.grad.clone() for p in params],
             {k: v.clone() for k, v in optimizer.state[params[0]].items()})
    StepReplay(optimizer, params).steps(params)
    assert all(torch.equal(p, w) and torch.equal(p.grad, g) for p, w, g in zip(params, saved[0], saved[1]))
    assert all(torch.equal(optimizer.state[params[0]][k], v) for k, v in saved[2].items())


def test_the_replay_sees_what_float32_rounding_absorbs():
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.full((3,), 1e-3)
    optimizer = torch.optim.SGD([w], lr=1e-6)
    assert replayed_steps(optimizer, [w])[0].tolist() == pytest.approx([-1e-9] * 3, rel=1e-6)
    optimizer.step()
    assert w.tolist() == [1.0, 1.0, 1.0]      # the float32 weights did not move


def test_a_kept_replay_follows_new_parameter_groups_shapes_and_learning_rates():
    params = _parameters()
    optimizer = torch.optim.SGD(params[:2], lr=0.1)
    replay = StepReplay(optimizer, params)
    _set_gradients(params, 0)
    assert torch.equal(replay.steps(params)[2], torch.zeros(3, 2, dtype=torch.float64))   # not held yet
    optimizer.add_param_group({"params": [params[2]], "lr": 0.5})
    optimizer.param_groups[0]["lr"] = 0.01                                              # a scheduler's change
    steps = replay.steps(params)
    assert torch.allclose(steps[0], -0.01 * params[0].grad) and torch.allclose(steps[2], -0.5 * params[2].grad)
    params[1].data = torch.randn(9, dtype=torch.float64)      # a parameter resized in place
    params[1].grad = torch.ones(9, dtype=torch.float64)
    assert torch.allclose(replay.steps(params)[1], torch.full((9,), -0.01, dtype=torch.float64))


def test_an_optimizer_that_needs_a_closure_cannot_be_replayed():
    params = _parameters()
    _set_gradients(params, 0)
    with pytest.raises(Exception):
        replayed_steps(torch.optim.LBFGS(params), params)


@pytest.mark.parametrize("optimizer_class", WEIGHT_FREE_STEPS, ids=lambda c: c.__name__)
def test_without_weight_decay_these_optimizers_take_a_step_that_ignores_the_weights(optimizer_class):
    params = _parameters()
    optimizer = optimizer_class(params, **({} if optimizer_class is torch.optim.Rprop else {"weight_decay": 0}))
    _set_gradients(params, 0)
    optimizer.step()                        # some optimizer state
    _set_gradients(params, 0)
    first = [s.clone() for s in replayed_steps(optimizer, params)]
    with torch.no_grad():
        for p in params:
            p.mul_(-7.0).add_(3.0)
    # (float64 rounding of (W + dW) - W: about 1e-16 |W|)
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-14) for a, b in zip(first, replayed_steps(optimizer, params)))


@pytest.mark.parametrize("optimizer_class, settings", OPTIMIZERS + [(torch.optim.AdamW, {"weight_decay": 0.0})],
                         ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("lr_factor", [1.0, 1e-30])
def test_step_norms_are_the_norms_of_the_float64_steps(optimizer_class, settings, lr_factor):
    # lr_factor 1e-30: steps too small for float32 (their norms below 1e-14), replayed in float64 instead
    params = [torch.nn.Parameter(p.detach().float()) for p in _parameters()]
    settings = {**settings, "lr": settings.get("lr", 1e-2) * lr_factor}
    optimizer = optimizer_class(params, **settings)
    replay = StepReplay(optimizer, params)
    for step in range(3):
        _set_gradients(params, step)
        expected = [torch.linalg.vector_norm(s).item() for s in replayed_steps(optimizer, params)]
        if optimizer_class is torch.optim.SGD and not settings.get("momentum"):
            # plain SGD: ||dW|| = lr ||g||, exact even where float64 weights absorb the step (lr 1e-31 here)
            expected = [settings["lr"] * torch.linalg.vector_norm(p.grad.double()).item() if p.grad is not None else 0.0
                        for p in params]
        assert [n.item() for n in replay.step_norms(params)] == pytest.approx(expected, rel=1e-5, abs=0)
        optimizer.step()


def test_plain_sgd_step_norms_need_no_replay_and_skip_parameters_without_gradients():
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))]
    optimizer = torch.optim.SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:], "lr": 1e-20}])
    params[0].grad, params[2].grad = torch.full((4, 3), 2.0), torch.full((2,), 1e-20)
    replay = StepReplay(optimizer, params)
    norms = replay.step_norms(params)
    assert norms.tolist() == pytest.approx([0.5 * 2.0 * 12 ** 0.5, 0.0, 1e-40 * 2 ** 0.5], rel=1e-6)
    assert replay._copies == {}          # nothing was copied or replayed
