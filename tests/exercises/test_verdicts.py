"""The same answer gets the same verdict, whatever the state of torch's generator: a build exercise judges the
recipe the learner wrote, not the weights their call happened to draw (gradcourse.exercises.judging.redrawn).
For every build exercise, its reference answer, its first typical mistake and the answers whose verdict used to
depend on the draw are built anew after five different seeds, as a learner's cell would build them, and checked
under a sixth state of the generator: the verdict and the message must be the same every time. About 20 s of
CPU time on one thread (38 s on a 2-core machine loaded three times over), half of it 12.3's 100 training steps."""

import contextlib
import io
import math

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check

BUILD = sorted(i for i, exercise in EXERCISES.items() if exercise.kind == "build")
SEEDS = range(5)


def _gru(update_bias):
    def make():
        model = gc.models.SequenceRegressor("gru", 32)
        with torch.no_grad():
            model.rnn.bias_ih_l0[32:64] = update_bias
            model.rnn.bias_hh_l0[32:64] = 0.0
        return model
    return make


def _mlp(**options):
    return lambda: gc.MLP(**options)


# Answers near a check's tolerance, whose verdict would change from one draw to the next if a check measured the
# learner's draw rather than the recipe (over seeds 0-6: 03.2 at 0.131 and 0.119, 05.3 at gain 1.1 and 1.3, 12.3
# with Xavier, BatchNorm and output_scale 0.1, right in 3 of 7 draws), and a hand-set GRU bias near 08.4's goal.
BORDERLINE = [
    ("03.2", _mlp(depth=20, width=128, activation="relu", init="normal", init_scale=0.131)),
    ("03.2", _mlp(depth=20, width=128, activation="relu", init="normal", init_scale=0.119)),
    ("05.3", _mlp(depth=30, width=64, activation="tanh", init="xavier", init_scale=1.1)),
    ("05.3", _mlp(depth=30, width=64, activation="tanh", init="xavier", init_scale=1.3)),
    ("08.4", _gru(2.0)),
    ("12.3", _mlp(depth=8, width=128, activation="sigmoid", init="xavier", norm="batch", output_scale=0.1)),
]
ANSWERS = ([pytest.param(i, EXERCISES[i].reference, id=f"{i}-reference") for i in BUILD]
           + [pytest.param(i, EXERCISES[i].typical_mistakes()[0][0], id=f"{i}-mistake") for i in BUILD]
           + [pytest.param(i, make, id=f"{i}-borderline-{k}") for k, (i, make) in enumerate(BORDERLINE)])


def _verdict(exercise_id, make_answer, seed):
    torch.manual_seed(seed)            # the state the learner's cell builds the answer in
    answer = make_answer()
    torch.manual_seed(1000 + seed)     # and another one when the check runs
    with contextlib.redirect_stdout(io.StringIO()):
        result = check(exercise_id, answer)
    return result.status, result.message


@pytest.mark.parametrize("exercise_id, make_answer", ANSWERS)
def test_a_build_exercise_gives_the_same_verdict_whatever_the_generator(exercise_id, make_answer):
    with torch.random.fork_rng():
        verdicts = {_verdict(exercise_id, make_answer, seed) for seed in SEEDS}
    assert len(verdicts) == 1, verdicts


def test_a_weight_set_by_hand_is_judged_as_set():
    """04.4's output layer shrunk by hand, not through output_scale, is the same network: the check keeps it."""
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = gc.MLP(depth=3, width=128, activation="relu", init="kaiming")
        with torch.no_grad():
            model.output.weight.mul_(0.1)
        assert check("04.4", model)
        assert not check("04.4", gc.MLP(depth=3, width=128, activation="relu", init="kaiming"))
    assert math.isclose(EXERCISES["04.4"].reference().output_scale, 0.1)
