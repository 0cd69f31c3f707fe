"""gradcourse.core.losses: the loss named by loss_fn, the loss of one batch, running a model on a batch, the
checks that its output can be scored, and the shape-strict mean squared error."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradcourse.core.losses import batch_loss, check_output, mse_loss, resolve_loss, run_model


def test_resolve_loss_gives_cross_entropy_by_default_mse_by_name_and_a_callable_as_it_is():
    mine = nn.MSELoss()
    assert resolve_loss() is resolve_loss("cross_entropy") is F.cross_entropy
    assert resolve_loss("mse") is mse_loss and resolve_loss(mine) is mine
    for bad in (3, None):
        with pytest.raises(ValueError, match=rf"loss_fn={bad} is not allowed; it must be 'cross_entropy', 'mse' or a "
                                             "callable"):
            resolve_loss(bad)


def test_mse_means_the_same_everywhere_and_never_broadcasts():
    """``loss_fn="mse"`` is shape-strict in a probe as in fit: outputs (n, 1) against targets (n,) are refused."""
    model, X, y = nn.Linear(4, 1), torch.randn(6, 4), torch.randn(6)
    with pytest.raises(ValueError, match=r"the model returned shape \(6, 1\)"):
        batch_loss(model, X, y, loss_fn="mse")
    squeezed = nn.Sequential(model, nn.Flatten(0))
    assert torch.equal(batch_loss(squeezed, X, y, loss_fn="mse"), F.mse_loss(squeezed(X), y))


def test_batch_loss_scores_the_output_or_calls_compute_loss():
    torch.manual_seed(0)
    model, X, y = nn.Linear(4, 3), torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert torch.equal(batch_loss(model, X, y), F.cross_entropy(model(X), y))
    assert torch.equal(batch_loss(model, X, y, compute_loss=lambda m, X, y: m(X).sum()), model(X).sum())
    with pytest.raises(ValueError, match="integer class labels"):
        batch_loss(model, X, y.float())

    class TwoOutputs(nn.Linear):
        def forward(self, x):
            return super().forward(x), x

    with pytest.raises(ValueError, match="not a tensor of outputs; pass compute_loss="):
        batch_loss(TwoOutputs(4, 3), X, y)


def test_running_out_of_memory_is_not_reported_as_a_mismatched_input():
    class Hungry(torch.nn.Linear):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run_model(Hungry(6, 3), torch.randn(32, 6))


def test_check_output_passes_one_tensor_of_logits_and_refuses_what_cannot_be_scored():
    logits = torch.zeros(4, 3)
    assert check_output(logits, 4) is logits
    assert check_output(torch.zeros(4), 4, loss_fn="mse").shape == (4,)
    with pytest.raises(ValueError, match="model is not allowed: it returned <tuple>; it must return one tensor"):
        check_output((logits, logits), 4)
    with pytest.raises(ValueError, match=r"outputs of shape \(4,\);.*\(batch, classes\) = \(4, classes\)"):
        check_output(torch.zeros(4), 4)
    with pytest.raises(ValueError, match=r"\(batch, classes\) = \(5, classes\)"):
        check_output(logits, 5)


def test_mse_loss_is_torchs_and_refuses_to_broadcast():
    output, target = torch.randn(5), torch.randn(5)
    assert torch.equal(mse_loss(output, target), F.mse_loss(output, target))
    assert torch.equal(mse_loss(output, target, reduction="sum"), F.mse_loss(output, target, reduction="sum"))
    with pytest.raises(ValueError, match=r"the targets' shape \(5,\); the model returned shape \(5, 1\)"):
        mse_loss(output.unsqueeze(1), target)
