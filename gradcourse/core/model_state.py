"""Passes that leave a model as they found it: every module's train/eval mode given back
(:func:`modes_restored`), buffers, random generators and optionally parameters and gradients put back
(:func:`state_left_alone`), and models without values refused (:func:`refuse_meta`)."""

from __future__ import annotations

import contextlib

import torch

from .runtime import generators_restored

__all__ = ["modes_restored", "refuse_meta", "state_left_alone"]


def refuse_meta(model):
    """Refuse a model with parameters or buffers on the ``meta`` device: they have a shape but no values."""
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise ValueError("model is not allowed: it has parameters or buffers on the 'meta' device, which hold no "
                         "values; it must be on a real device: build it there, or call model.to_empty(device='cpu') "
                         "and initialize its weights first")


@contextlib.contextmanager
def modes_restored(model):
    """A context that gives every module of ``model`` its own train/eval mode back on leaving it (after
    an error or an interrupt too), so a submodule that was in eval mode inside a model in train mode
    (a frozen BatchNorm) is in eval mode again. Modes are put back with ``module.train(mode)``, parents
    before their children."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            if module.training != training:
                module.train(training)


@contextlib.contextmanager
def state_left_alone(model, parameters=False):
    """Run a pass without leaving a trace on ``model`` or torch: its buffers (BatchNorm's running
    statistics, ...) and torch's random generators (dropout) are put back afterwards; with
    ``parameters=True`` also its parameters, their ``.grad`` fields and its train/eval mode (for a
    pass that takes an optimizer step on a model that cannot be copied)."""
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    params = [(p, p.detach().clone(), p.grad, None if p.grad is None else p.grad.detach().clone())
              for p in model.parameters()] if parameters else []
    modes = [(m, m.training) for m in model.modules()] if parameters else []
    with generators_restored():
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
                for param, saved, grad, values in params:
                    param.copy_(saved)
                    if grad is not None:      # the same tensor (a learner's loop may hold it), its values back
                        grad.copy_(values)
                    param.grad = grad
            for module, training in modes:
                module.training = training
