"""What a lesson's measurement leaves alone on a learner's model: each module's own train/eval mode (a BatchNorm
the learner froze with .eval() stays frozen) and BatchNorm's running statistics. (fit's share of this is in
tests/core/train/test_loop.py, scoring's in test_scoring.py, the other lessons' with their modules in
tests/lessons/, an exercise check's in tests/exercises/test_checker.py.)"""

import pytest

from gradcourse.lessons.weight_constraints import weight_norms
from helpers import buffer_copies, frozen_batchnorm_mlp, modes, same_buffers


# ---------------------------------------------------------------- the lessons' measurements

@pytest.mark.parametrize("measure", [
    lambda model, X, y: weight_norms(model),
], ids=["weight_norms"])
def test_measurements_give_every_module_its_own_mode_back(measure, mnist_small):
    model = frozen_batchnorm_mlp()
    before, buffers = modes(model), buffer_copies(model)
    measure(model, *mnist_small)
    assert modes(model) == before
    assert same_buffers(buffers, model)
