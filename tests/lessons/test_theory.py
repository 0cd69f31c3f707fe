"""gradcourse.lessons.theory: the closed-form pieces the math notebooks check their prose against."""

import math

import pytest
import torch

import gradcourse
from gradcourse.lessons import sequences, theory
from gradcourse.core.models import ACTIVATIONS


@pytest.mark.parametrize("z", [-800.0, -30.0, -2.5, 0.0, 0.3, 4.0, 800.0])
def test_sigmoid_float_agrees_with_torch(z):
    expected = torch.sigmoid(torch.tensor(z, dtype=torch.float64)).item()
    assert theory.sigmoid(z) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_sigmoid_extremes_do_not_overflow():
    assert theory.sigmoid(-1000.0) == 0.0 and theory.sigmoid(1000.0) == 1.0
    assert theory.sigmoid(0) == 0.5


def test_sigmoid_tensor_agrees_with_torch():
    z = torch.linspace(-8, 8, 33)
    assert torch.equal(theory.sigmoid(z), torch.sigmoid(z))


def test_sigmoid_derivative_agrees_with_autograd():
    z = torch.linspace(-8, 8, 33, dtype=torch.float64, requires_grad=True)
    (autograd,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    assert torch.allclose(theory.sigmoid_derivative(z.detach()), autograd)
    floats = [theory.sigmoid_derivative(v) for v in z.detach().tolist()]
    assert floats == pytest.approx(autograd.tolist(), rel=1e-12)
    assert theory.sigmoid_derivative(0.0) == 0.25


def test_derivative_from_output_and_the_chain_product():
    assert theory.sigmoid_derivative_from_output(0.9) == pytest.approx(0.09)
    product = theory.chain_product([theory.sigmoid_derivative_from_output(0.9)] * 3)
    assert math.isclose(product, 7.29e-4, rel_tol=1e-12)
    assert not math.isclose(product, 7.29e-5, rel_tol=1e-3)  # 0.09^3, not 0.09^4 / 0.9


def test_derivative_from_output_matches_the_derivative_in_z():
    for z in (-3.0, -0.5, 0.0, 1.2):
        assert theory.sigmoid_derivative_from_output(theory.sigmoid(z)) == pytest.approx(theory.sigmoid_derivative(z))
    s = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(theory.sigmoid_derivative_from_output(s), torch.tensor([0.09, 0.25, 0.09]))


def test_chain_product_accepts_any_iterable():
    assert theory.chain_product(iter([2, 0.5, 3])) == 3.0
    assert theory.chain_product([0.25] * 4) == 0.25**4


@pytest.mark.parametrize("activation, expected", [("sigmoid", 0.25), ("tanh", 1.0), ("relu", 1.0),
                                                  ("leaky_relu", 1.0), ("elu", 1.0)])
def test_max_derivative(activation, expected):
    assert theory.max_derivative(activation) == pytest.approx(expected, rel=1e-9)


def test_max_derivative_on_a_narrower_grid():
    # on [1, 2] the sigmoid's derivative is largest at z = 1
    assert theory.max_derivative("sigmoid", low=1.0, high=2.0, points=101) == pytest.approx(theory.sigmoid_derivative(1.0))


def test_tanh_derivative_lies_in_zero_one():
    # float64 on [-5, 5]: 1 - tanh(z)^2 >= 1.8e-4 there (beyond |z| ~ 19 it rounds to 0 in float64)
    z = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    derivative = theory.activation_derivative("tanh", z)
    assert ((derivative > 0) & (derivative <= 1)).all()
    assert torch.allclose(derivative, 1 - torch.tanh(z) ** 2)
    assert derivative.max().item() == pytest.approx(1.0)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(activation):
    z = torch.tensor([-2.0, -0.7, 0.4, 1.5], dtype=torch.float64)  # away from ReLU's kink at 0
    h = 1e-6
    f = ACTIVATIONS[activation]()
    numeric = (f(z + h) - f(z - h)) / (2 * h)
    assert torch.allclose(theory.activation_derivative(activation, z), numeric, atol=1e-6)


def test_activation_derivative_does_not_touch_its_input():
    z = torch.tensor([0.5, -0.5], requires_grad=True)
    theory.activation_derivative("sigmoid", z)
    assert z.grad is None


def test_derivative_bound():
    assert theory.derivative_bound("sigmoid", 3) == 0.25**3
    assert theory.derivative_bound("tanh", 10) == pytest.approx(1.0)


@pytest.mark.parametrize("activation, weight, bias", [("sigmoid", 1.0, 0.0), ("tanh", 2.5, -0.3), ("relu", 1.1, 0.2)])
def test_scalar_chain_obeys_the_chain_rule(activation, weight, bias):
    chain = theory.scalar_chain(6, weight, bias, x0=0.7, activation=activation)
    assert len(chain.pre_activations) == len(chain.local_derivatives) == len(chain.gradients) == 6
    assert chain.pre_activations[0] == pytest.approx(weight * 0.7 + bias)
    for l in range(6):
        assert chain.gradients[l] == pytest.approx(theory.chain_product(chain.local_derivatives[l:]), rel=1e-9)


def test_scalar_chain_sigmoid_gradient_is_bounded_by_a_quarter_per_layer():
    chain = theory.scalar_chain(10, 1.0, activation="sigmoid")
    assert all(abs(g) <= 0.25 ** (10 - l) for l, g in enumerate(chain.gradients))


def test_sigmoid_network_loss_matches_a_manual_computation():
    torch.manual_seed(0)
    W1, b1, W2, b2 = torch.randn(3, 2), torch.randn(3), torch.randn(1, 3), torch.randn(1)
    x, target = torch.tensor([0.5, -1.0]), torch.tensor([1.0])
    y = torch.sigmoid(W2 @ torch.sigmoid(W1 @ x + b1) + b2)
    loss = theory.sigmoid_network_loss([W1, W2], [b1, b2], x, target)
    assert loss.item() == pytest.approx(0.5 * (y - target).pow(2).sum().item())


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call, name, value", [
    (lambda: theory.sigmoid("1"), "z", "1"),
    (lambda: theory.sigmoid(math.nan), "z", math.nan),
    (lambda: theory.sigmoid_derivative(math.inf), "z", math.inf),
    (lambda: theory.sigmoid_derivative_from_output(0), "s", 0),
    (lambda: theory.sigmoid_derivative_from_output(1.0), "s", 1.0),
    (lambda: theory.sigmoid_derivative_from_output(1.5), "s", 1.5),
    (lambda: theory.sigmoid_derivative_from_output(-0.2), "s", -0.2),
    (lambda: theory.chain_product([]), "local_derivatives", []),
    (lambda: theory.chain_product([0.5, "x"]), "local_derivatives[1]", "x"),
    (lambda: theory.chain_product([0.5, math.nan]), "local_derivatives[1]", math.nan),
    (lambda: theory.activation_derivative("sigmod", torch.zeros(2)), "activation", "sigmod"),
    (lambda: theory.activation_derivative("relu", [0.0, 1.0]), "z", [0.0, 1.0]),
    (lambda: theory.max_derivative("sigmod"), "activation", "sigmod"),
    (lambda: theory.max_derivative("sigmoid", points=0), "points", 0),
    (lambda: theory.max_derivative("sigmoid", points=1.5), "points", 1.5),
    (lambda: theory.max_derivative("sigmoid", low=math.nan), "low", math.nan),
    (lambda: theory.max_derivative("sigmoid", low=2.0, high=1.0), "high", 1.0),
    (lambda: theory.derivative_bound("sigmoid", 0), "depth", 0),
    (lambda: theory.derivative_bound("sigmoid", 2.0), "depth", 2.0),
    (lambda: theory.derivative_bound("sigmod", 3), "activation", "sigmod"),
    (lambda: theory.scalar_chain(0, 1.0), "depth", 0),
    (lambda: theory.scalar_chain(3, math.inf), "weight", math.inf),
    (lambda: theory.scalar_chain(3, 1.0, activation="step"), "activation", "step"),
])
def test_bad_arguments_are_named(call, name, value, raises_bad):
    with raises_bad(name, value):
        call()


def test_integer_tensors_are_rejected_by_activation_derivative():
    with pytest.raises(ValueError, match=r"z=<tensor shape=\(2,\) dtype=torch.int64>"):
        theory.activation_derivative("relu", torch.tensor([0, 1]))


@pytest.mark.parametrize("bad", [1.0, 0.0, math.nan])
def test_sigmoid_outputs_outside_zero_one_are_rejected_as_tensors(bad):
    with pytest.raises(ValueError, match=r"s=<tensor shape=\(2,\) dtype=torch.float32>.*strictly between 0 and 1") as info:
        theory.sigmoid_derivative_from_output(torch.tensor([0.5, bad]))
    assert str(info.value).endswith(f"holds {bad!r}")


def test_sigmoid_network_loss_rejects_mismatched_shapes():
    W, b = torch.zeros(3, 2), torch.zeros(3)
    with pytest.raises(ValueError, match="weights and biases must be non-empty"):
        theory.sigmoid_network_loss([W], [], torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"weights\[0\] has shape \(3, 2\)"):
        theory.sigmoid_network_loss([W], [b], torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"target has shape \(2,\)"):
        theory.sigmoid_network_loss([W], [b], torch.zeros(2), torch.zeros(2))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_recurrent_jacobian_norms_match_autograd(activation, sigma):
    W, U, inputs = sequences.random_recurrence(sigma, 8, width=6, seed=1)
    h0 = 0.1 * torch.ones(6, dtype=torch.float64)
    norms = theory.recurrent_jacobian_norms(W, U, inputs, h0=h0, activation=activation)
    for T in (1, 4, 8):
        J = torch.autograd.functional.jacobian(
            lambda h: theory.recurrent_final_state(W, U, inputs[:T], h, activation=activation), h0)
        assert norms[T - 1] == pytest.approx(torch.linalg.matrix_norm(J, ord=2).item(), rel=1e-10)


@pytest.mark.parametrize("activation, sigma", [("tanh", 0.9), ("sigmoid", 3.5)])
def test_below_one_over_gamma_the_norms_stay_under_the_bound(activation, sigma):
    W, U, inputs = sequences.random_recurrence(sigma, 40, seed=0)
    gamma = theory.recurrent_derivative_bound(activation)
    norms = theory.recurrent_jacobian_norms(W, U, inputs, activation=activation)
    assert all(n <= (gamma * sigma) ** T * (1 + 1e-9) for T, n in enumerate(norms, start=1))


def test_recurrent_derivative_bounds():
    assert theory.recurrent_derivative_bound("tanh") == 1.0
    assert theory.recurrent_derivative_bound("sigmoid") == 0.25


def test_recurrent_functions_reject_bad_arguments(raises_bad):
    W, U, inputs = sequences.random_recurrence(1.0, 3, width=4)
    with raises_bad("activation", "relu"):
        theory.recurrent_jacobian_norms(W, U, inputs, activation="relu")
    with raises_bad("W", [[1.0]]):
        theory.recurrent_jacobian_norms([[1.0]], U, inputs)
    with pytest.raises(ValueError, match="shapes do not fit"):
        theory.recurrent_jacobian_norms(W[:, :3], U, inputs)
    with raises_bad("sigma_max", 0):
        sequences.random_recurrence(0, 3)
    with raises_bad("steps", 0):
        sequences.random_recurrence(1.0, 0)
    with raises_bad("activation", "elu"):
        theory.recurrent_derivative_bound("elu")


def test_activation_table_ranges():
    rows = {row["name"]: row for row in theory.activation_table()}
    assert set(rows) == set(gradcourse.core.models.ACTIVATIONS)
    assert rows["sigmoid"]["d_max"] == pytest.approx(0.25) and rows["sigmoid"]["saturates_both_sides"]
    assert 0 < rows["tanh"]["d_min"] and rows["tanh"]["d_max"] == 1.0
    assert rows["relu"]["d_min"] == 0.0 and not rows["relu"]["saturates_both_sides"]
    assert rows["gelu"]["d_max"] == pytest.approx(1.1289, abs=1e-3) and rows["gelu"]["d_min"] < 0
    assert rows["silu"]["d_max"] == pytest.approx(1.0998, abs=1e-3)


def test_activation_table_rejects_bad_arguments(raises_bad):
    with raises_bad("activations[i]", "swish"):
        theory.activation_table(["swish"])
    with raises_bad("high", -20.0):
        theory.activation_table(high=-20.0)


def test_power_or_inf_returns_inf_beyond_float64_instead_of_raising():
    assert theory.power_or_inf(2.0, 10) == 1024.0
    assert theory.power_or_inf(8.0, 400) == math.inf                   # 8.0 ** 400 raises OverflowError
    assert theory.power_or_inf(-8.0, 401) == -math.inf and theory.power_or_inf(-8.0, 400) == math.inf
    assert theory.power_or_inf(0.5, 5000) == 0.0


def test_derivative_bound_beyond_float64_is_inf():
    assert theory.derivative_bound("gelu", 10_000) == math.inf          # max GELU' = 1.13, 1.13^10000 ~ 1e528


def test_recurrent_jacobian_norms_beyond_float64_are_inf_not_an_error():
    # no input keeps h = 0, so f' = 1 and dh_T/dh_0 = W^T, whose norm is 6^T: past 1.8e308 from T = 397
    W, U, inputs = sequences.random_recurrence(6.0, 400, width=8, input_scale=0.0)
    norms = theory.recurrent_jacobian_norms(W, U, inputs)
    assert all(norms[T - 1] == pytest.approx(6.0**T, rel=1e-12) for T in range(1, 396))
    assert norms[396:] == [math.inf] * 4


def test_power_or_inf_refuses_powers_that_are_not_real_numbers(raises_bad):
    from gradcourse.lessons.theory import power_or_inf
    with raises_bad("exponent", 0.5):
        power_or_inf(-2.0, 0.5)
    with raises_bad("exponent", -1.0):
        power_or_inf(0.0, -1)
    assert power_or_inf(-2.0, 3) == -8.0 and power_or_inf(-8.0, 401) == -math.inf
