"""gradcourse.lessons.imbalance: a skewed resample, the class prior, and the output bias at the log prior,
checked against closed forms (ln C, the prior's entropy) and torch.distributions."""

import math

import pytest
import torch

import gradcourse
from gradcourse import MLP
from gradcourse.lessons import imbalance
from gradcourse.lessons.initialization import first_loss


def test_skewed_subset_keeps_geometric_counts_and_rows_of_the_original():
    X, y = torch.randn(400, 5), torch.arange(10).repeat(40)
    Xs, ys = imbalance.skewed_subset(X, y, imbalance=20, seed=3)
    expected = [round(40 * 20 ** (-k / 9)) for k in range(10)]
    assert torch.bincount(ys).tolist() == expected and expected[0] == 40 and expected[-1] == 2
    rows = {tuple(row.tolist()): label for row, label in zip(X, y.tolist())}
    assert all(rows[tuple(row.tolist())] == label for row, label in zip(Xs, ys.tolist()))
    assert len({tuple(row.tolist()) for row in Xs}) == len(Xs)                 # no row drawn twice
    assert torch.bincount(imbalance.skewed_subset(X, y, imbalance=1)[1]).tolist() == [40] * 10


def test_skewed_subset_draws_its_examples_from_the_seed_and_its_counts_from_the_imbalance():
    X, y = torch.randn(400, 5), torch.arange(10).repeat(40)
    a, b, c = (imbalance.skewed_subset(X, y, imbalance=5, seed=s) for s in (0, 0, 1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and torch.equal(torch.bincount(a[1]), torch.bincount(c[1]))


def test_class_prior_is_the_share_of_each_class():
    prior = imbalance.class_prior(torch.tensor([0, 0, 0, 1, 2, 2]), classes=4)
    assert prior.tolist() == pytest.approx([0.5, 1 / 6, 1 / 3, 0.0]) and prior.dtype == torch.float64
    assert imbalance.class_prior(torch.tensor([1, 1])).tolist() == [0.0, 1.0]


def test_log_prior_bias_predicts_the_prior_and_starts_at_its_entropy():
    gradcourse.set_seed(0)
    X = torch.randn(2000, 6)
    y = torch.distributions.Categorical(probs=torch.tensor([0.6, 0.25, 0.1, 0.05])).sample((2000,))
    prior = imbalance.class_prior(y)
    entropy = torch.distributions.Categorical(probs=prior).entropy().item()
    assert entropy == pytest.approx(-(prior * prior.log()).sum().item(), rel=1e-12)
    gradcourse.set_seed(1)
    model = MLP(in_features=6, out_features=4, width=8, depth=2, init="kaiming", output_scale=1e-4)   # equal logits
    assert first_loss(model, X, y) == pytest.approx(math.log(4), abs=1e-3)             # whatever the prior
    assert imbalance.prior_bias_(model, prior) is model
    assert torch.softmax(model.output.bias, 0).tolist() == pytest.approx(prior.tolist(), abs=1e-6)
    assert first_loss(model, X, y) == pytest.approx(entropy, abs=1e-3) and entropy < math.log(4) - 0.2
    assert imbalance.prior_bias_(model, [0.25] * 4).output.bias.tolist() == pytest.approx([math.log(0.25)] * 4)


def test_bad_arguments_are_refused_by_name(raises_bad):
    X, y = torch.randn(20, 3), torch.arange(4).repeat(5)
    with raises_bad("imbalance", 0.5):
        imbalance.skewed_subset(X, y, imbalance=0.5)
    with raises_bad("seed", -1):
        imbalance.skewed_subset(X, y, seed=-1)
    with pytest.raises(ValueError, match="every class present"):
        imbalance.skewed_subset(X, torch.tensor([0, 2] * 10))
    with pytest.raises(ValueError, match="y=.*integer class labels"):
        imbalance.class_prior(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="label -1"):
        imbalance.class_prior(torch.tensor([-1, 1]))
    with raises_bad("classes", 1):
        imbalance.class_prior(torch.tensor([0, 1]), classes=1)
    model = MLP(in_features=3, out_features=4, width=5, depth=1)
    for prior in ([0.5, 0.5], [0.5, 0.5, 0.0, 0.0], [0.4, 0.4, 0.4, 0.4], "uniform"):
        with pytest.raises(ValueError, match="prior=.*positive class shares summing to 1"):
            imbalance.prior_bias_(model, prior)
    with pytest.raises(ValueError, match="model=.*output nn.Linear"):
        imbalance.prior_bias_(torch.nn.Linear(3, 4), [0.25] * 4)
    with raises_bad("model", "net"):
        imbalance.prior_bias_("net", [0.25] * 4)
