"""Notebook 16's exercises (gradcourse.exercises.notebook_16), derived again from the package: Fixup's factor
for ResNet-50, the step at which a Fixup branch's first layer first gets a gradient, and Fixup built from its
ingredients. (test_checker.py runs every exercise's reference answer, typical mistakes and junk answers.)"""

import math

import pytest
import torch

from gradcourse.exercises import EXERCISES, check
from gradcourse.lessons import normalization_free as nf


def test_16_1_is_fixups_factor_for_resnet50():
    blocks = 3 + 4 + 6 + 3                        # ResNet-50's bottleneck blocks, three weight layers each
    assert math.isclose(EXERCISES["16.1"].reference(), nf.fixup_scale(blocks, branch_layers=3))
    assert check("16.1", 0.5) and check("16.1", 16 ** -0.25)
    assert not check("16.1", 0.25) and not check("16.1", 1 / math.sqrt(32))


@pytest.mark.parametrize("seed", [0, 1])
def test_16_2_a_fixup_branch_s_first_layer_waits_until_step_3(seed):
    generator = torch.Generator().manual_seed(seed)
    X, y = torch.randn(32, 12, generator=generator), torch.randint(0, 10, (32,), generator=generator)
    steps = nf.first_gradient_steps(nf.seeded_network("Fixup", seed, 3, in_features=12, width=8), X, y, lr=0.05)
    assert steps["W1"] == EXERCISES["16.2"].reference() == 3
    assert check("16.2", 3) and check("16.2", 3.0)
    assert "W2 is still 0" in check("16.2", 2).message


def test_16_3_the_reference_is_seeded_network_s_fixup_and_each_ingredient_matters():
    answer = EXERCISES["16.3"].reference()
    built = nf.seeded_network("Fixup", 0, 16)
    for name in ("norm", "alpha", "first_scale", "last_scale", "head_scale", "gamma"):
        assert getattr(answer, name) == pytest.approx(getattr(built, name)), name
    assert check("16.3", answer) and check("16.3", built)
    assert not check("16.3", nf.seeded_network("SkipInit", 0, 16))
    assert not check("16.3", nf.seeded_network("Fixup", 0, 32))       # the factor depends on the depth
    assert not check("16.3", nf.ResidualMLP(depth=16, norm="batch", alpha=1.0, first_scale=0.25, last_scale=0.0,
                                            head_scale=0.0))
