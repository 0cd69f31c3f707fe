"""Notebook 13's exercises (gradcourse.exercises.notebook_13), derived again from the package: the Pre-LN bound's
1/sqrt(L), ReZero's zero gradients at initialization and the residual scale at which 16 branches add one branch's
variance. (test_checker.py runs every exercise's reference answer, typical mistakes and junk answers.)"""

import math

import pytest
import torch

import gradcourse as gc
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


def test_13_3_one_quarter_makes_the_16_branches_add_one_branchs_variance():
    answer = EXERCISES["13.3"].reference()
    assert answer.placement == "pre" and len(answer.blocks) == 8
    assert answer.residual_scale == T.gpt2_residual_scale(8) == 0.25
    assert check("13.3", answer)
    assert not check("13.3", T.RowTransformer(depth=8, placement="pre"))
    counting_blocks = check("13.3", T.RowTransformer(depth=8, placement="pre", residual_scale=1 / math.sqrt(8)))
    assert not counting_blocks and "two branches" in counting_blocks.message and "does not say" in counting_blocks.message


def _stream_and_branches(model, X):
    """What the 16 branches of a Pre-LN RowTransformer add to the stream, and each branch's output."""
    with torch.no_grad():
        x = model.embed(X.view(len(X), 28, 28)) + model.position
        start, branches = x, []
        for block in model.blocks:
            h = block.norm1(x)
            branches.append(block.self_attn(h, h, h, need_weights=False)[0])
            x = x + branches[-1]
            branches.append(block.linear2(torch.relu(block.linear1(block.norm2(x)))))
            x = x + branches[-1]
    return x - start, branches


@pytest.mark.parametrize("seed", range(3))
def test_13_3_the_variances_of_the_branches_add_as_the_solution_says(seed):
    """The claim 13.3 rests on, measured: at residual_scale 1/4 the sum of the 16 branches has about the variance
    of one unscaled branch (the mean over the 16 of the same network at scale 1), at 1/sqrt(8) about twice it."""
    X, _ = gc.load_mnist("train", limit=128)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unscaled = T.RowTransformer(depth=8, placement="pre")
    one_branch = sum(b.var().item() for b in _stream_and_branches(unscaled, X)[1]) / 16
    ratios = {}
    for scale in (1 / 4, 1 / math.sqrt(8)):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = T.RowTransformer(depth=8, placement="pre", residual_scale=scale)
        ratios[scale] = _stream_and_branches(model, X)[0].var().item() / one_branch
    assert 0.7 < ratios[1 / 4] < 1.4 and 1.4 * ratios[1 / 4] < ratios[1 / math.sqrt(8)] < 2.6
