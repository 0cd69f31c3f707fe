"""gradcourse.lessons.finite_differences: the central difference and how its error depends on the step."""

import math

import pytest
import torch

from gradcourse.lessons.finite_differences import central_difference, central_difference_errors


def test_the_central_difference_of_a_cubic_has_the_truncation_error_eps_squared():
    # f(t) = t^3 at t = 1: f' = 3, and (f(1 + e) - f(1 - e)) / 2e = 3 + e^2 exactly, so the error is f''' e^2 / 6
    theta = torch.tensor([1.0], dtype=torch.float64)
    for eps in (1e-1, 1e-2):
        assert central_difference(lambda t: (t ** 3).sum(), theta, 0, eps) == pytest.approx(3 + eps ** 2, rel=1e-12)
    assert torch.equal(theta, torch.tensor([1.0], dtype=torch.float64))   # left as it was


def test_the_error_is_smallest_near_the_cube_root_of_the_unit_roundoff():
    theta = torch.tensor([0.3, -0.7], dtype=torch.float64)
    exact = math.cos(0.3)   # d/dt_0 of sin(t_0) + t_1^2
    steps = [10.0 ** -k for k in range(1, 11)]
    errors = central_difference_errors(lambda t: torch.sin(t[0]) + t[1] ** 2, theta, 0, exact, steps)
    best = min(errors, key=errors.get)
    assert 1e-7 <= best <= 1e-4                                # u^(1/3) = 4.8e-6 in float64
    assert errors[1e-2] / errors[1e-3] == pytest.approx(100, rel=0.05)   # truncation ~ eps^2
    assert errors[1e-10] > 100 * errors[best]                  # rounding ~ u / eps


@pytest.mark.parametrize("call, name, value", [
    (lambda: central_difference(3, torch.zeros(2), 0, 1e-3), "f", 3),
    (lambda: central_difference(torch.sum, [0.0], 0, 1e-3), "theta", [0.0]),
    (lambda: central_difference(torch.sum, torch.zeros(2), 0, 0.0), "eps", 0.0),
    (lambda: central_difference(torch.sum, torch.zeros(2), 5, 1e-3), "index", 5),
    (lambda: central_difference(torch.sum, torch.zeros(2, 2), 0, 1e-3), "index", 0),
    (lambda: central_difference_errors(torch.sum, torch.zeros(2), 0, 0.0, []), "eps_values", []),
    (lambda: central_difference_errors(torch.sum, torch.zeros(2), 0, "x", [1e-3]), "exact", "x"),
])
def test_bad_arguments_are_refused_with_their_name(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()
