"""The exercises of notebooks 05-08: each answer derived again from torch and the package, each
check that runs something quick and seeded, and the Entries judge they use."""

import math
import time

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check
from gradcourse.exercises.judging import Entries, Number

RUNS_SOMETHING = ["05.3", "06.2", "07.2", "07.3", "08.3", "08.4"]


def reference(exercise_id):
    return EXERCISES[exercise_id].reference()


@pytest.fixture
def one_thread():
    """torch on one thread, as gc.use_cpus() sets it in a notebook on a 2-core machine, for timing."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("exercise_id", RUNS_SOMETHING)
def test_a_check_that_runs_something_is_quick_and_leaves_torch_alone(exercise_id, one_thread):
    answer = reference(exercise_id)
    parameters = [p.detach().clone() for p in answer.parameters()] if isinstance(answer, torch.nn.Module) else []
    check(exercise_id, answer)   # the first call may load MNIST
    rng = torch.get_rng_state()
    start = time.perf_counter()
    assert check(exercise_id, answer)
    assert time.perf_counter() - start < 5   # a guard against a check that trains; 0.1 s or less on an idle CPU
    assert torch.equal(torch.get_rng_state(), rng)
    if parameters:
        assert all(torch.equal(p, q) and q.grad is None for p, q in zip(parameters, answer.parameters()))


# ---------------------------------------------------------------- notebook 05

def test_05_1_the_derivatives_at_minus_2_are_autograds():
    z = torch.tensor([-2.0], dtype=torch.float64)
    by_autograd = tuple(gc.theory.activation_derivative(name, z).item() for name in ("relu", "leaky_relu", "elu"))
    assert by_autograd == pytest.approx(reference("05.1"), rel=1e-9, abs=1e-12)
    assert check("05.1", by_autograd)


def test_05_2_relu_halves_both_second_moments_of_a_sample():
    z = 2 * torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    forward = torch.relu(z).pow(2).mean().item()
    backward = gc.theory.activation_derivative("relu", z).pow(2).mean().item()
    assert z.var().item() == pytest.approx(4, rel=0.01)
    assert (forward, backward) == pytest.approx(reference("05.2"), rel=0.01)
    variance = torch.relu(z).var().item()
    assert not check("05.2", (variance, backward)) and variance == pytest.approx(2 - 2 / math.pi, rel=0.01)


def test_05_3_the_critical_tanh_gain_is_measured_on_the_notebooks_digits():
    X, y = gc.load_mnist("train", limit=256)
    ratio = {g: gc.at_init.first_to_last_ratio(X, y, [30], "tanh", "xavier", init_scale=g, width=64, seed=0)[0]
             for g in (1.0, 1.2, math.sqrt(2), 5 / 3)}
    factor = {g: r ** (1 / 29) for g, r in ratio.items()}
    assert abs(factor[1.2] - 1) < 0.025 and factor[1.0] < 0.95
    assert factor[math.sqrt(2)] > 1.03 and ratio[5 / 3] > 10   # 5/3 explodes by the notebook's measure
    assert math.isclose(gc.theory.activation_derivative("tanh", torch.zeros(1)).item(), 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_05_3_the_reference_gain_passes_whatever_the_networks_seed(seed):
    torch.manual_seed(seed)
    assert check("05.3", reference("05.3"))


# ---------------------------------------------------------------- notebook 06

def test_06_1_the_cosine_after_value_clipping_is_the_packages():
    g = torch.tensor([1.0, 10.0], dtype=torch.float64)
    clipped = gc.clipping.clipped_copy(g, max_value=1.0)[0]
    assert torch.equal(clipped, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert gc.clipping.cosine(g, clipped) == pytest.approx(reference("06.1"), rel=1e-12)
    assert gc.clipping.cosine(g, gc.clipping.clipped_copy(g, max_norm=1.0)) == pytest.approx(1.0)


def test_06_2_the_reference_function_is_clip_grad_norm():
    generator = torch.Generator().manual_seed(1)
    gradients = [torch.randn(3, 7, generator=generator), torch.randn(2, generator=generator) * 10]
    for max_norm in (0.5, 1e3):
        mine = reference("06.2")(gradients, max_norm)
        torch_s = gc.clipping.clipped_copy(gradients, max_norm=max_norm)
        assert all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(mine, torch_s))


def test_06_2_a_function_that_raises_or_returns_junk_is_told_so():
    def raises(gradients, max_norm):
        raise ZeroDivisionError("boom")

    assert "raised ZeroDivisionError: boom" in check("06.2", raises).message
    assert "one clipped tensor per input tensor" in check("06.2", lambda g, c: torch.cat([t.flatten() for t in g])).message
    assert "returns norm" in check("06.2", lambda g, c: [2 * t for t in g]).message
    assert check("06.2", lambda g, c: (t * min(1.0, c / gc.clipping.global_norm(g)) for t in g))   # a generator


def test_06_3_the_closed_form_on_the_wall_is_autograds():
    w = 5.0
    _, grad_w, grad_b = gc.clipping.cliff_loss_and_gradient(w, gc.clipping.cliff_wall(w))
    assert grad_b.item() == pytest.approx(reference("06.3"), rel=1e-6)
    s = gc.theory.sigmoid(0.5)
    lam = w * s * (1 - s)
    assert reference("06.3") == pytest.approx(2 * (0.5 - 0.7) * (lam ** 50 - 1) / (lam - 1), rel=1e-12)
    assert check("06.3", grad_b.item()) and not check("06.3", grad_w.item())


# ---------------------------------------------------------------- notebook 07

def test_07_1_ten_residual_blocks_by_autograd():
    assert gc.theory.sigmoid_derivative(0.0) == 0.25
    h0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    h = h0
    for _ in range(10):
        h = h + 0.25 * h
    (by_autograd,) = torch.autograd.grad(h, h0)
    assert by_autograd.item() == pytest.approx(reference("07.1"), rel=1e-12)


def test_07_1_the_block_jacobian_is_identity_plus_branch():
    torch.manual_seed(0)
    block = gc.MLP(in_features=4, width=4, depth=2, activation="sigmoid", residual=True).blocks[1]
    x = torch.randn(4)
    jacobian = torch.func.jacrev(block)(x)
    branch = torch.diag(gc.theory.sigmoid_derivative(block.linear(x))) @ block.linear.weight
    assert torch.allclose(jacobian, torch.eye(4) + branch, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_07_2_ten_blocks_add_about_ten_relu_means(seed):
    torch.manual_seed(seed)
    model = gc.MLP(width=64, depth=50, activation="relu", init="kaiming", norm="batch", residual=True)
    X, _ = gc.load_mnist("train", limit=256)
    means = gc.residual.stream_statistics(model, X)["mean"]
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.relu(z).mean().item() == pytest.approx(1 / math.sqrt(2 * math.pi), rel=0.01)
    assert means[9] == pytest.approx(reference("07.2"), rel=0.05)
    assert means[48] > 10


def test_07_3_tanh_stops_the_drift_and_the_others_do_not():
    for seed in range(2):
        torch.manual_seed(seed)
        assert check("07.3", reference("07.3"))
    for activation in ("relu", "elu"):
        torch.manual_seed(0)
        model = gc.MLP(width=64, depth=50, activation=activation, init="kaiming", norm="batch", residual=True)
        assert not check("07.3", model)
    pre = gc.MLP(width=64, depth=50, activation="relu", init="kaiming", norm="batch", residual="pre")
    assert "pre-activation" in check("07.3", pre).message
    assert "keep the network" in check("07.3", gc.MLP(width=64, depth=50, activation="tanh", norm="batch")).message


# ---------------------------------------------------------------- notebook 08

def test_08_1_the_best_constant_for_the_mean_scores_a_quarter_of_the_sum():
    _, y = gc.data.adding_problem(200_000, 10, seed=0)
    mean_target = y.double() / 2
    assert mean_target.mean().item() == pytest.approx(0.5, abs=0.005)
    assert ((mean_target - 0.5) ** 2).mean().item() == pytest.approx(reference("08.1"), rel=0.02)
    assert reference("08.1") == pytest.approx(gc.data.ADDING_BASELINE_MSE / 4)


def test_08_2_the_forget_bias_keeps_one_percent_along_the_direct_path():
    bias = reference("08.2")
    assert gc.theory.sigmoid(bias) ** 49 == pytest.approx(0.01, rel=1e-9)
    X, y = gc.data.adding_problem(1000, 50, seed=1)
    torch.manual_seed(0)
    model = gc.models.SequenceRegressor("lstm", 32, forget_bias=bias)
    forget = gc.sequences.lstm_gates(model, X[:256])["forget"].mean().item()
    assert forget == pytest.approx(gc.theory.sigmoid(bias), abs=0.02)
    norms = gc.sequences.timestep_gradient_norms(model, X[:256], y[:256])
    assert norms[0] / norms[-1] > 0.01   # the other paths add to the direct path's 1%


@pytest.mark.parametrize("seed", range(3))
def test_08_3_the_lstm_passes_more_than_its_direct_path(seed):
    X, y = gc.data.adding_problem(1000, 50, seed=1)
    torch.manual_seed(seed)
    model = gc.models.SequenceRegressor("lstm", 32, forget_bias=1.0)
    norms = gc.sequences.timestep_gradient_norms(model, X[:256], y[:256])
    forget = gc.sequences.lstm_gates(model, X[:256])["forget"].mean().item()
    assert norms[0] / norms[-1] > forget ** 49
    assert reference("08.3") == "above"


def test_08_4_the_update_gate_is_the_second_slice_of_a_gru():
    torch.manual_seed(0)
    model = gc.models.SequenceRegressor("gru", 8)
    with torch.no_grad():
        model.rnn.bias_ih_l0[8:16] = 50.0   # z = 1: h_t = h_(t-1) = h_0 = 0 at every step
    X, _ = gc.data.adding_problem(4, 10, seed=0)
    hidden, _ = model.rnn(X)
    assert torch.equal(hidden, torch.zeros_like(hidden))


@pytest.mark.parametrize("seed", range(5))
def test_08_4_the_bias_of_exercise_08_2_is_enough_for_the_gru(seed):
    torch.manual_seed(seed)
    model = gc.models.SequenceRegressor("gru", 32)
    default = check("08.4", model)
    with torch.no_grad():
        model.rnn.bias_ih_l0[32:64] = reference("08.2")
        model.rnn.bias_hh_l0[32:64] = 0.0
    assert not default and check("08.4", model)


# ---------------------------------------------------------------- the Entries judge

def test_entries_names_each_wrong_entry_with_its_own_hint():
    judge = Entries({"a": Number(1.0, explain="", hint="a is one", mistakes=[(2.0, "doubled a")]),
                     "b": Number(0.5, explain="", hint="b is a half")}, explain="both right")
    assert judge((1.0, 0.5)) == (True, "both right")
    assert judge([2.0, 0.5]) == (False, "a: doubled a")
    assert judge(torch.tensor([1.0, 0.7])) == (False, "b: b is a half")
    assert judge((10.0, -0.5)) == (False, "a: off by a factor of 10^1: your answer is 10 times the right one. "
                                          "b: right size, wrong sign.")
    correct, message = judge(1.0)
    assert not correct and "2 numbers in a tuple, (a, b)" in message
    assert [make() for make, _ in judge.mistakes] == [(2.0, 0.5)]
