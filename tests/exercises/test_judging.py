"""gradcourse.exercises.judging: the judges an exercise compares an answer with (Number, Entries, Choice)."""

import numpy as np
import torch

from gradcourse.exercises import check
from gradcourse.exercises.judging import Choice, Entries, FormatProblem, Number


def test_a_number_is_judged_within_its_tolerance_and_off_by_ten_is_named():
    judge = Number(0.5, explain="yes", hint="think again", mistakes=[(0.25, "halved")])
    assert judge(0.502) == (True, "yes") and judge(np.float32(0.5))[0] and judge(torch.tensor(0.5))[0]
    assert judge(0.25) == (False, "halved")
    assert judge(5.0)[1].startswith("off by a factor of 10^1") and judge(0.05)[1].startswith("off by a factor of 10^-1")
    assert judge(-0.5) == (False, "right size, wrong sign.")
    assert judge(0.7) == (False, "think again")
    assert not judge(True)[0]


def test_a_number_written_as_text_is_read_and_unreadable_text_is_a_format_problem(capsys):
    judge = Number(6.5536e-4, explain="yes", hint="no")
    for text in ["6.55e-4", "6.55×10⁻⁴", "6.55 x 10^-4", "6.55*10**-4", " 0.000655 ", "6.55·10^(-4)"]:
        assert judge(text) == (True, "yes"), text
    assert judge("6.55e-3")[1].startswith("off by a factor of 10^1")
    for text in ["six", "0,000655", "6.55e-4 or so", ""]:
        correct, message = judge(text)
        assert not correct and isinstance(message, FormatProblem) and "format problem" in message, text
    assert not isinstance(judge(0.7)[1], FormatProblem)
    result = check("02.1", "six")
    assert result.status == "not read" and not result
    assert capsys.readouterr().out.startswith("Exercise 02.1: not read. Give a number")


def test_numbers_take_any_sequence_and_a_factor_spans_decades():
    pair = Number((0.1, -0.2), explain="yes", hint="no")
    assert pair([0.1, -0.2])[0] and pair(np.array([0.1, -0.2]))[0] and pair(torch.tensor([[0.1, -0.2]]))[0]
    assert "2 numbers" in pair(0.1)[1]
    wide = Number(5e-12, explain="yes", hint="no", factor=2.0)
    assert wide(9e-12)[0] and not wide(1.1e-11)[0] and not wide(-5e-12)[0]


def test_a_choice_reads_the_first_word_and_reports_what_ran():
    runs = []
    judge = Choice(["above", "below"], lambda: runs.append(1) or ("below", "measured 0.1."), {"above": "No."})
    assert judge("Below 1.") == (True, "measured 0.1.")
    assert judge("above") == (False, "No. measured 0.1.")
    assert not judge("sideways")[0] and not judge(0.1)[0] and len(runs) == 2   # no run for a non-option


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


def test_redrawn_takes_the_recipes_draws_and_keeps_what_was_set_by_hand():
    import gradcourse as gc
    from gradcourse.exercises.judging import mlp_recipe, redrawn_mlp, seeded

    options = dict(in_features=20, width=64, depth=3, activation="tanh", init="default", norm="batch", residual=True)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        model = gc.MLP(**options)
        with torch.no_grad():
            model.output.weight.mul_(0.1)        # rescaled by hand
            model.blocks[1].linear.bias.fill_(0.5)   # set by hand
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert mlp_recipe(model) == {**options, "out_features": 10, "init_scale": 1.0, "output_scale": 1.0}
    seed_0 = seeded(lambda: gc.MLP(**options))
    got = redrawn_mlp(model).state_dict()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # the answer is left alone
    assert torch.equal(got["blocks.0.linear.weight"], seed_0.state_dict()["blocks.0.linear.weight"])
    assert torch.equal(got["blocks.2.linear.bias"], seed_0.state_dict()["blocks.2.linear.bias"])
    assert torch.equal(got["output.weight"], before["output.weight"])
    assert torch.equal(got["blocks.1.linear.bias"], before["blocks.1.linear.bias"])
    assert torch.equal(got["blocks.0.norm.weight"], before["blocks.0.norm.weight"])


def test_redrawn_compares_a_grus_gates_one_by_one():
    import gradcourse as gc
    from gradcourse.exercises.judging import redrawn, seeded

    def gru(seed):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = gc.models.SequenceRegressor("gru", 8)
            with torch.no_grad():
                model.rnn.bias_ih_l0[8:16] = 3.0
        return model

    fresh = seeded(lambda: gc.models.SequenceRegressor("gru", 8))
    one, two = (redrawn(gru(s), lambda: gc.models.SequenceRegressor("gru", 8), chunks={"rnn.bias_ih_l0": 3})
                for s in (1, 2))
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    assert torch.equal(one.rnn.bias_ih_l0[8:16], torch.full((8,), 3.0))
    assert torch.equal(one.rnn.bias_ih_l0[:8], fresh.rnn.bias_ih_l0[:8])
