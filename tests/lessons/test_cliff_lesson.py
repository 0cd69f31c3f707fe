"""gradcourse.lessons.cliff: Pascanu et al.'s cliff, its wall, and gradient descent on it with and without clipping."""

import math

import pytest
import torch

from gradcourse.lessons import cliff
from gradcourse.lessons.cliff import (cliff_descent, cliff_loss_and_gradient, cliff_slice, cliff_surface, cliff_wall,
                                      start_grid, wall_gradient)


def test_cliff_loss_follows_the_recurrence_and_the_chain_rule():
    w, b, T = 2.5, -0.8, 7
    x = 0.5
    for _ in range(T):
        x = w / (1 + math.exp(-x)) + b
    loss, grad_w, grad_b = cliff_loss_and_gradient(w, b, steps=T)
    assert loss.item() == pytest.approx((x - 0.7) ** 2, rel=1e-12)
    # central finite differences in float64
    h = 1e-6
    fd_w = (cliff_loss_and_gradient(w + h, b, T)[0] - cliff_loss_and_gradient(w - h, b, T)[0]).item() / (2 * h)
    fd_b = (cliff_loss_and_gradient(w, b + h, T)[0] - cliff_loss_and_gradient(w, b - h, T)[0]).item() / (2 * h)
    assert grad_w.item() == pytest.approx(fd_w, rel=1e-6) and grad_b.item() == pytest.approx(fd_b, rel=1e-6)


def test_on_the_wall_x0_is_a_fixed_point_and_the_gradient_has_its_closed_form():
    for w in (5.0, 6.0, 7.5):
        b = cliff_wall(w)
        loss, grad_w, grad_b = cliff_loss_and_gradient(w, b)
        assert loss.item() == pytest.approx((0.5 - 0.7) ** 2, rel=1e-9)  # x_T = x_0
        expected_w, expected_b = wall_gradient(w)
        assert grad_b.item() == pytest.approx(expected_b, rel=1e-6)
        assert grad_w.item() == pytest.approx(expected_w, rel=1e-6)
    assert abs(wall_gradient(6.0)[1]) > 1e7  # lambda = 6 sigma'(0.5) = 1.41, lambda^50 = 3e7


def test_wall_gradient_for_lambda_one_is_the_sum_of_ones():
    s = 1 / (1 + math.exp(-0.5))
    w = 1 / (s * (1 - s))
    assert wall_gradient(w, steps=10)[1] == pytest.approx(2 * (0.5 - 0.7) * 10, rel=1e-9)


def test_cliff_surface_grid_and_a_slice_across_the_wall():
    surface = cliff_surface((4.5, 7.0), (-4.0, -1.0), points=41, steps=30)
    assert surface.loss.shape == surface.grad_norm.shape == (41, 41)
    assert surface.w[0] == 4.5 and surface.b[-1] == -1.0
    section = cliff_slice(6.0, smallest=1e-9, largest=1.0, points=50)
    assert section.offsets.shape == (100,) and (section.offsets[:50] < 0).all() and (section.offsets[50:] > 0).all()
    near = section.grad_norm[(section.offsets.abs() < 1e-7)]
    far = section.grad_norm[(section.offsets.abs() > 1e-2)]
    assert near.min() > 1e4 * far.max()  # the wall: a gradient 10^4 times larger within 1e-7 of it


def test_a_slice_gives_loss_and_gradient_at_the_nearest_sampled_offset(raises_bad):
    section = cliff_slice(6.0, smallest=1e-9, largest=1.0, points=50)
    for offset in (-1e-3, 1e-8, 0.5):
        nearest = (section.offsets - offset).abs().argmin()
        assert section.at(offset) == (section.loss[nearest].item(), section.grad_norm[nearest].item())
    assert section.at(-1e-3)[0] > 5 * section.at(1e-3)[0]            # the loss steps down across the wall
    with raises_bad("offset", "near"):
        section.at("near")


def test_start_grid_covers_the_ranges():
    starts = start_grid((1.0, 3.0), (-2.0, 0.0), 3)
    assert starts.shape == (9, 2)
    assert set(starts[:, 0].tolist()) == {1.0, 2.0, 3.0} and set(starts[:, 1].tolist()) == {-2.0, -1.0, 0.0}


def test_cliff_descent_without_clipping_is_plain_gradient_descent():
    starts = torch.tensor([[3.0, -2.0], [6.0, -3.0]], dtype=torch.float64)
    run = cliff_descent(starts, lr=0.01, iterations=3)
    assert run.paths.shape == (2, 4, 2) and run.losses.shape == (2, 4) and run.step_lengths.shape == (2, 3)
    theta = starts.clone()
    for k in range(3):
        loss, gw, gb = cliff_loss_and_gradient(theta[:, 0], theta[:, 1])
        assert torch.allclose(run.losses[:, k], loss)
        theta = theta - 0.01 * torch.stack([gw, gb], dim=1)
        assert torch.allclose(run.paths[:, k + 1], theta)
    assert torch.allclose(run.distance_travelled(), (run.paths[:, -1] - starts).norm(dim=1))
    assert torch.equal(run.final_loss(), run.losses[:, -1])


def test_cliff_descent_clipping_matches_clip_grad_norm_per_run():
    starts = start_grid((4.0, 7.0), (-4.0, -1.0), 3)
    run = cliff_descent(starts, lr=0.05, iterations=4, max_norm=2.0)
    for i, start in enumerate(starts):
        theta = start.clone().requires_grad_(True)
        for k in range(4):
            theta.grad = None
            w, b = theta[0], theta[1]
            x = torch.tensor(0.5, dtype=torch.float64)
            for _ in range(50):
                x = w * torch.sigmoid(x) + b
            ((x - 0.7) ** 2).backward()
            torch.nn.utils.clip_grad_norm_([theta], 2.0)
            with torch.no_grad():
                theta -= 0.05 * theta.grad
            assert torch.allclose(run.paths[i, k + 1], theta.detach(), rtol=1e-9, atol=1e-12)
    assert run.largest_step().max().item() <= 0.05 * 2.0 + 1e-9


def test_clipping_bounds_the_steps_that_the_wall_makes_huge():
    starts = start_grid((2.0, 7.0), (-4.0, -1.0), 6)
    free = cliff_descent(starts, lr=0.05, iterations=60)
    clipped = cliff_descent(starts, lr=0.05, iterations=60, max_norm=10.0)
    assert free.huge_steps(1.0).sum() > 0 and clipped.huge_steps(1.0).sum() == 0
    assert free.grad_norms.max() > 1.0 / 0.05  # a step longer than 1 needs lr * ||g|| > 1
    assert (free.grad_norms[:, 0] == clipped.grad_norms[:, 0]).all()  # norms are recorded before clipping


def test_a_run_that_reaches_non_finite_values_stops_moving():
    starts = torch.tensor([[1e308, 0.0]], dtype=torch.float64)
    run = cliff_descent(starts, lr=0.1, iterations=2)
    assert (run.step_lengths == 0).all() and torch.equal(run.paths[0, -1], starts[0])


@pytest.mark.parametrize("call, match", [
    (lambda: cliff_loss_and_gradient(1.0, 0.0, steps=0), "steps=0"),
    (lambda: cliff_loss_and_gradient(torch.ones(2), torch.ones(3)), "they must match"),
    (lambda: cliff_loss_and_gradient(1.0, 0.0, x0=math.nan), "x0=nan"),
    (lambda: cliff_surface(points=1), "points=1"),
    (lambda: cliff_surface(w_range=(3.0, 1.0)), r"w_range\[1\]=3.0|w_range\[1\]=1.0"),
    (lambda: cliff_surface(b_range=5), "b_range=5"),
    (lambda: cliff_slice(6.0, smallest=0.0), "smallest=0.0"),
    (lambda: cliff_slice(6.0, smallest=1.0, largest=0.5), "largest=0.5"),
    (lambda: start_grid((1, 2), (0, 1), 0), "per_side=0"),
    (lambda: cliff_descent(torch.ones(3), 0.1, 5), "starts="),
    (lambda: cliff_descent(torch.ones(3, 2), 0.0, 5), "lr=0.0"),
    (lambda: cliff_descent(torch.ones(3, 2), 0.1, 0), "iterations=0"),
    (lambda: cliff_descent(torch.ones(3, 2), 0.1, 5, max_norm=-1.0), "max_norm=-1.0"),
    (lambda: cliff_wall("w"), "w='w'"),
    (lambda: wall_gradient(6.0, steps=0), "steps=0"),
])
def test_cliff_functions_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_huge_steps_rejects_a_bad_length():
    run = cliff_descent(torch.ones(1, 2), 0.1, 1)
    with pytest.raises(ValueError, match="length=0"):
        run.huge_steps(0)


def test_unstable_weight_is_where_the_fixed_point_stops_attracting():
    w = cliff.unstable_weight(0.5)
    assert w == pytest.approx(4.26, abs=0.005)
    s = torch.sigmoid(torch.tensor(0.5, dtype=torch.float64)).item()
    assert w * s * (1 - s) == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError, match="x0"):
        cliff.unstable_weight(float("nan"))


def test_wall_gradient_beyond_float64_is_a_signed_inf():
    assert wall_gradient(6.0, steps=2063)[1] == pytest.approx(-6.96e307, rel=1e-3)    # still in range
    assert wall_gradient(6.0, steps=10_000) == (-math.inf, -math.inf)                # lambda^T overflows
    assert wall_gradient(-6.0, steps=10_000) == (math.inf, math.inf)                 # lambda = -1.41, T even
    assert wall_gradient(-6.0, steps=10_001) == (-math.inf, -math.inf)
    assert wall_gradient(6.0, steps=10_000, target=0.5) == (0.0, 0.0)                # x_T = target: no gradient


def test_the_cliff_is_unrolled_for_50_steps():
    assert cliff.CLIFF_STEPS == 50
