"""gradcourse.core.model_state: passes that leave a model as they found it: each module's own train/eval mode
given back, parameters, their .grad tensors, buffers and torch's random generator put back, and a model on the
'meta' device refused."""

import pytest
import torch
from torch import nn

from gradcourse.core.model_state import modes_restored, refuse_meta, state_left_alone


def test_modes_restored_gives_each_module_its_own_mode_back_after_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout()).train()
    model[1].eval()                                                # a BatchNorm the learner froze
    with pytest.raises(RuntimeError, match="boom"):
        with modes_restored(model):
            model.eval()
            raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_state_left_alone_puts_back_parameters_their_grad_tensors_buffers_modes_and_the_generator():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    model(torch.randn(8, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    saved = [(p.detach().clone(), p.grad.clone()) for p in model.parameters()]
    buffers, generator = [b.clone() for b in model.buffers()], torch.get_rng_state()
    with state_left_alone(model, parameters=True):
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        model(torch.randn(8, 3)).sum().backward()   # draws random numbers, accumulates into .grad, moves BatchNorm
        optimizer.step()
        model.eval()
    assert torch.equal(torch.get_rng_state(), generator)
    assert all(p.grad is grad for p, grad in zip(model.parameters(), grads))   # the learner's own .grad tensors
    assert all(torch.equal(p, value) and torch.equal(p.grad, grad) for p, (value, grad) in zip(model.parameters(), saved))
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers))
    assert all(m.training for m in model.modules())


def test_refuse_meta_refuses_a_model_that_holds_no_values():
    assert refuse_meta(nn.Linear(2, 2)) is None
    with pytest.raises(ValueError, match="on the 'meta' device"):
        refuse_meta(nn.Linear(2, 2, device="meta"))
