"""gradcourse.lessons.precision: casting losses, accumulation in low precision, GradScaler's trace,
the scale sweep and the mixed-precision training loop."""

import math

import pytest
import torch
from matplotlib.figure import Figure

import gradcourse
from gradcourse.display import plots
from gradcourse.lessons import precision
from gradcourse.lessons.transformers import RowTransformer


def _tiny_net(seed=0):
    gradcourse.set_seed(seed)
    return gradcourse.MLP(depth=2, width=16, activation="tanh", init="xavier")


def test_flushed_and_overflowed_count_underflow_and_overflow():
    values = torch.tensor([2.0**-26, 2.0**-20, 1.0, 1e5, 0.0])   # the 0 is not counted
    assert precision.flushed_and_overflowed(values) == {"flushed": 0.25, "overflowed": 0.25}
    assert precision.flushed_and_overflowed(values, loss_scale=2.0**8) == {"flushed": 0.0, "overflowed": 0.25}
    assert precision.flushed_and_overflowed(values, "bfloat16") == {"flushed": 0.0, "overflowed": 0.0}
    assert precision.flushed_and_overflowed(torch.zeros(3)) == {"flushed": 0.0, "overflowed": 0.0}


def test_accumulate_loses_small_steps_in_float16_only():
    assert precision.accumulate(1.0, -1e-4, 1000, "float16") == 1.0
    assert precision.accumulate(1.0, -1e-4, 1000, "float32") == pytest.approx(0.9, abs=1e-4)
    assert precision.accumulate(1.0, -1e-3, 10, "float16") < 1.0  # a step above half the spacing survives


def test_spacing_matches_finfo():
    assert precision.spacing(1.0) == torch.finfo(torch.float16).eps
    assert precision.spacing(1.0, "bfloat16") == torch.finfo(torch.bfloat16).eps
    assert precision.spacing(0.0) == 2.0**-24  # the smallest subnormal


def test_grad_scaler_trace_backs_off_and_grows():
    trace = precision.grad_scaler_trace(steps=10, overflow_steps=(2, 3), loss_scale=1024.0, growth_interval=3)
    assert [row["skipped"] for row in trace] == [False, False, True, True] + [False] * 6
    scales = [row["scale"] for row in trace]
    assert scales[:5] == [1024.0, 1024.0, 1024.0, 512.0, 256.0] and scales[7] == 512.0
    assert all(math.isfinite(row["weight"]) for row in trace)


def test_bad_arguments(raises_bad):
    with raises_bad("dtype", "float8"):
        precision.flushed_and_overflowed(torch.ones(2), "float8")
    with raises_bad("loss_scale", 0):
        precision.flushed_and_overflowed(torch.ones(2), loss_scale=0)
    with raises_bad("values", [1.0]):
        precision.flushed_and_overflowed([1.0])
    with raises_bad("count", -1):
        precision.accumulate(count=-1)
    with raises_bad("growth_interval", 0):
        precision.grad_scaler_trace(growth_interval=0)
    with raises_bad("gradients", []):
        precision.cast_sweep([])
    with raises_bad("log2_scales[i]", 0.5):
        precision.cast_sweep([torch.ones(2)], [0.5])
    with raises_bad("accumulate", "float64"):
        precision.dot_product(torch.ones(2), torch.ones(2), accumulate="float64")
    with raises_bad("a", [1.0]):
        precision.dot_product([1.0], torch.ones(1))
    with pytest.raises(ValueError, match="they must match"):
        precision.dot_product(torch.ones(2), torch.ones(3))
    model = gradcourse.MLP(depth=1, width=4)
    X, y = torch.zeros(8, 784), torch.zeros(8, dtype=torch.long)
    with raises_bad("dtype", "float8"):
        precision.train_mixed_precision(model, X, y, dtype="float8")
    with raises_bad("loss_weight", 0):
        precision.train_mixed_precision(model, X, y, loss_weight=0)
    with raises_bad("loss_scaling", 1):
        precision.train_mixed_precision(model, X, y, loss_scaling=1)
    with raises_bad("batch_size", 9):
        precision.train_mixed_precision(model, X, y, batch_size=9)
    with raises_bad("model", "net"):
        precision.train_mixed_precision("net", X, y)
    with pytest.raises(ValueError, match="entries but log2_scales has"):
        plots.plot_loss_scale_sweep([0, 1], {"a": [0.0]}, {})


def test_cast_sweep_finds_the_window_between_underflow_and_overflow():
    sweep = precision.cast_sweep([torch.tensor([2.0**-30, 2.0**-10]), torch.tensor([1.0])], range(0, 20))
    assert sweep["log2_scales"] == list(range(20))
    assert sweep["flushed"][0][:7] == [0.5] * 6 + [0.0]      # 2^-30 * 2^5 = 2^-25 still rounds to 0
    assert sweep["overflowed"][1][15:17] == [0.0, 1.0]        # 2^16 = 65536 is past 65504
    assert sweep["largest_safe"] == 15 == math.floor(math.log2(65520 / 1.0))
    assert sweep["smallest_complete"] == 6
    assert precision.cast_sweep([torch.tensor([1.0])], [20])["largest_safe"] is None
    assert precision.cast_sweep([torch.tensor([1.0])], [0], "bfloat16")["flushed"] == [[0.0]]
    figure = plots.plot_loss_scale_sweep(sweep["log2_scales"], {"layer 1": sweep["flushed"][0]},
                                         {"overflowed": sweep["overflowed"][1]}, limits={"65504": 15.9})
    assert isinstance(figure, Figure) and len(figure.axes[0].get_lines()) == 3


def test_dot_product_stalls_in_float16_accumulation_only():
    a = torch.full((4096,), 0.1)
    assert precision.dot_product(a, a, "float16") == 32.0                     # half of 32's spacing 2^-5 exceeds 0.01
    assert precision.dot_product(a, a, "float32") == pytest.approx(40.96, abs=0.05)
    assert precision.dot_product(a[:10], a[:10], "float16") == pytest.approx(0.1, rel=1e-3)  # a short sum is fine


def test_loss_weight_is_the_same_training_in_float32(mnist_small):
    X, y = mnist_small
    model = _tiny_net()
    before = [p.detach().clone() for p in model.parameters()]
    plain = precision.train_mixed_precision(model, X, y, dtype="float32", loss_scaling=False, steps=6, batch_size=32)
    weighted = precision.train_mixed_precision(model, X, y, dtype="float32", loss_scaling=False, steps=6,
                                               batch_size=32, loss_weight=2.0**-18)
    assert plain["loss"] == weighted["loss"] and plain["loss"][-1] < plain["loss"][0]
    assert all(torch.equal(p, q) for p, q in zip(plain["model"].parameters(), weighted["model"].parameters()))
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))   # the model itself is untouched
    assert plain["layers"] == ["hidden layer 1", "hidden layer 2", "output layer"] and 0 <= plain["accuracy"] <= 1


def test_float16_gradients_below_2_to_the_minus_25_flush_and_scaling_rescues_them(mnist_small):
    X, y = mnist_small
    model = _tiny_net()
    options = dict(steps=8, batch_size=32, loss_weight=2.0**-20)   # |dL/dlogit| <= 2^-20 / 2^5 = 2^-25
    reference = precision.train_mixed_precision(model, X, y, dtype="float32", loss_scaling=False, **options)
    unscaled = precision.train_mixed_precision(model, X, y, dtype="float16", loss_scaling=False, **options)
    scaled = precision.train_mixed_precision(model, X, y, dtype="float16", loss_scaling=True, growth_interval=3, **options)
    assert unscaled["zero_share"] == [1.0, 1.0, 1.0] and unscaled["moved"] == [0.0, 0.0, 0.0]
    assert max(scaled["zero_share"]) < 0.01 and all(m > 0 for m in scaled["moved"])
    assert scaled["loss"][-1] == pytest.approx(reference["loss"][-1], rel=0.02)
    assert scaled["scale"][:4] == [2.0**16] * 3 + [2.0**17] and scaled["skipped"] == []   # doubled after 3 clean steps
    assert unscaled["scale"] == [1.0] * 8
    bf16 = precision.train_mixed_precision(model, X, y, dtype="bfloat16", loss_scaling=False, **options)
    assert max(bf16["zero_share"]) < 0.01 and bf16["loss"][-1] == pytest.approx(reference["loss"][-1], rel=0.02)


def test_grad_scaler_skips_an_overflowing_step_and_halves_its_scale(mnist_small):
    X, y = mnist_small
    model = _tiny_net()
    run = precision.train_mixed_precision(model, X, y, dtype="float16", steps=30, batch_size=32, loss_scale=2.0**40)
    skipped = run["skipped"]
    assert skipped == list(range(len(skipped))) and 0 < len(skipped) < 30   # backs off until the gradients fit
    assert run["scale"][:len(skipped) + 1] == [2.0 ** (40 - k) for k in range(len(skipped) + 1)]
    assert run["loss"][-1] < run["loss"][0]                                   # then it trains
    one = precision.train_mixed_precision(model, X, y, dtype="float16", steps=1, batch_size=32, loss_scale=2.0**40)
    assert one["skipped"] == [0] and one["moved"] == [0.0, 0.0, 0.0]          # a skipped step leaves the weights alone


def _row_transformer(placement="post"):
    """A small RowTransformer reading a digit as 7 tokens of 4 pixel rows, as notebook 13 does."""
    gradcourse.set_seed(0)
    return RowTransformer(depth=2, d_model=16, heads=2, ffn=32, tokens=7, token_size=112, placement=placement)


def test_train_mixed_precision_trains_a_row_transformer(mnist_small):
    X, y = mnist_small
    model = _row_transformer()
    before = [p.detach().clone() for p in model.parameters()]
    run = precision.train_mixed_precision(model, X, y, dtype="float16", steps=4, batch_size=64, lr=0.1)
    assert "blocks.0.self_attn" in run["layers"] and run["layers"][-1] == "head"
    assert len(run["zero_share"]) == len(run["moved"]) == len(run["layers"])
    assert max(run["zero_share"]) < 0.01 and all(0 < m < math.inf for m in run["moved"])
    assert run["skipped"] == [] and run["loss"][-1] < run["loss"][0]
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))   # the model itself is untouched
    flushed = precision.train_mixed_precision(model, X, y, dtype="float16", loss_scaling=False, steps=2,
                                              batch_size=64, loss_weight=2.0**-20)   # |dL/dlogit| <= 2^-26
    assert flushed["zero_share"] == [1.0] * len(flushed["layers"]) and flushed["moved"] == [0.0] * len(flushed["layers"])


def test_train_mixed_precision_reports_a_weight_that_starts_at_zero_as_moved_infinitely(mnist_small):
    X, y = mnist_small
    run = precision.train_mixed_precision(_row_transformer("rezero"), X, y, dtype="float32", loss_scaling=False,
                                          steps=2, batch_size=64)
    moved = dict(zip(run["layers"], run["moved"]))
    assert moved["blocks.0"] == math.inf                       # the ReZero gain alpha, 0 at initialization
    assert all(0 <= m < math.inf for name, m in moved.items() if name not in ("blocks.0", "blocks.1"))


def test_a_frozen_layer_is_reported_as_unmoved(mnist_small):
    X, y = mnist_small
    model = _tiny_net()
    model.hidden_linears()[0].requires_grad_(False)
    run = precision.train_mixed_precision(model, X, y, dtype="float32", loss_scaling=False, steps=2, batch_size=32)
    assert run["zero_share"][0] == 1.0 and run["moved"][0] == 0.0 and all(m > 0 for m in run["moved"][1:])
