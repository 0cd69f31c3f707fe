"""Notebook 13's exercises (gradcourse.exercises.notebook_13), derived again from the package: the Pre-LN bound's
1/sqrt(L), ReZero's zero gradients at initialization and GPT-2's residual scale. (test_checker.py runs every
exercise's reference answer, typical mistakes and junk answers.)"""

import math

import torch

from gradcourse.lessons import transformers as T
from gradcourse.exercises import EXERCISES, check


def test_13_1_is_the_ratio_of_the_pre_ln_bounds():
    d = 32
    bound = lambda depth: d * math.sqrt(math.log(d) / depth)   # noqa: E731  (Xiong et al., Theorem 1, Pre-LN)
    assert math.isclose(bound(8) / bound(2), EXERCISES["13.1"].reference(), rel_tol=1e-12)
    assert check("13.1", math.sqrt(2 / 8)) and not check("13.1", 2 / 8)


def test_13_2_rezero_weights_get_no_gradient_while_alpha_does():
    torch.manual_seed(1)
    model = T.RowTransformer(depth=3, placement="rezero")
    X, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
    assert T.block_gradient_norms(model, X, y) == [0.0, 0.0, 0.0]
    alphas = torch.autograd.grad(torch.nn.functional.cross_entropy(model(X), y), [b.alpha for b in model.blocks])
    assert all(a.abs().item() > 0 for a in alphas)
    assert EXERCISES["13.2"].reference() == "none" and check("13.2", "None.")


def test_13_3_the_reference_is_gpt2s_scale_and_an_unscaled_transformer_is_not():
    answer = EXERCISES["13.3"].reference()
    assert answer.placement == "pre" and len(answer.blocks) == 8
    assert answer.residual_scale == T.gpt2_residual_scale(8) == 0.25
    assert check("13.3", answer)
    assert not check("13.3", T.RowTransformer(depth=8, placement="pre"))
