"""The step an optimizer computes, before it is rounded into the weights.

An optimizer writes ``W <- fl(W + dW)`` in the weights' own precision. In float32 an entry moves
only if its change exceeds half a unit in its last place, about ``2**-24 = 6e-8`` of the entry
(the rounding that notebook 11 teaches): a smaller change is *absorbed* and the entry keeps its
value. The difference ``W_after - W_before`` of the weights themselves is exact (Sterbenz's lemma),
but it measures the change that was applied, not the step the optimizer computed; in a layer whose
gradient has vanished the two differ by orders of magnitude, because the computed step is lost to
rounding. :func:`replayed_steps` gives the computed step: it replays the optimizer's update in
float64 on copies of the weights, their gradients and their optimizer state, with the same
hyperparameters, and leaves the optimizer, its state and the weights untouched.
"""

from __future__ import annotations

import copy

import torch


def _float64_copy(value):
    if torch.is_tensor(value):
        value = value.detach()
        return value.to(torch.float64, copy=True) if value.is_floating_point() else value.clone()
    return copy.deepcopy(value)


def replayed_steps(optimizer, params):
    """The update ``dW = step(W) - W`` that ``optimizer.step()`` is about to make to each of ``params``.

    Call it just before the step (an optimizer step pre-hook). Each parameter the optimizer holds,
    with its gradient and its entry of ``optimizer.state``, is copied to float64; an optimizer of
    the same class is built on the copies with the same parameter groups (learning rate, momentum,
    betas, weight decay, ...), and stepped once. Works for optimizers built the way ``torch.optim``'s
    are (``Optimizer(param_groups)`` and a per-parameter state dict); raises whatever the optimizer
    raises otherwise (e.g. LBFGS, whose step needs a closure).

    Args:
        optimizer: a ``torch.optim.Optimizer``.
        params: the parameters whose steps to return.

    Returns:
        A list, one float64 tensor per entry of ``params``, shaped like it: the computed step
        (zeros for a parameter the optimizer does not hold or that has no gradient).

    Example::

        >>> w = torch.nn.Parameter(torch.ones(3)); w.grad = torch.full((3,), 1e-3)
        >>> opt = torch.optim.SGD([w], lr=1e-6)
        >>> replayed_steps(opt, [w])[0]          # -lr * grad, though w + that == w in float32
        tensor([-1.0000e-09, -1.0000e-09, -1.0000e-09], dtype=torch.float64)
    """
    wanted = {id(p) for p in params}
    twins = {}
    groups = []
    for group in optimizer.param_groups:
        members = [p for p in group["params"] if id(p) in wanted]
        if not members:
            continue
        copies = []
        for p in members:
            twin = p.detach().to(torch.float64, copy=True)
            if p.grad is not None:
                twin.grad = p.grad.detach().to(torch.float64, copy=True)
            twins[id(p)] = twin
            copies.append(twin)
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": copies})
    if not groups:
        return [torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in params]
    replay = type(optimizer)(groups)
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in twins and optimizer.state.get(p):
                replay.state[twins[id(p)]] = {k: _float64_copy(v) for k, v in optimizer.state[p].items()}
    before = {key: twin.detach().clone() for key, twin in twins.items()}
    with torch.no_grad():
        replay.step()
    return [twins[id(p)].detach() - before[id(p)] if id(p) in twins
            else torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in params]
