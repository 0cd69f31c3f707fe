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
import weakref

import torch

from ..norms import SAFE_FLOAT32_NORM, tensor_norms

__all__ = ["StepReplay", "WEIGHT_FREE_STEPS", "plain_sgd_rates", "replayed_steps"]


def replayed_steps(optimizer, params):
    """The update ``dW = step(W) - W`` that ``optimizer.step()`` is about to make to each of ``params``.

    Call it just before the step (an optimizer step pre-hook). Each parameter the optimizer holds,
    with its gradient and its entry of ``optimizer.state``, is copied to float64; an optimizer of
    the same class is built on the copies with the same parameter groups (learning rate, momentum,
    betas, weight decay, ...), and stepped once. Works for optimizers built the way ``torch.optim``'s
    are (``Optimizer(param_groups)`` and a per-parameter state dict); raises whatever the optimizer
    raises otherwise (e.g. LBFGS, whose step needs a closure). To replay one optimizer at many
    steps, keep a :class:`StepReplay`: it builds the copies once.

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
    return StepReplay(optimizer, params).steps(params)


WEIGHT_FREE_STEPS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
                     torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam, torch.optim.Rprop, torch.optim.Adadelta)
"""Optimizers whose step, without weight decay, does not depend on the weights' values: it is a function
of the gradient and the optimizer state only, so it can be replayed on weights set to zero."""


class StepReplay:
    """Replays one optimizer's next step, as :func:`replayed_steps` does, at step after step.

    The copies of the parameters, their gradients and their optimizer state, and the optimizer of the
    same class stepped on them, are built once and refilled before each replay with fused copies
    (``torch._foreach_copy_``); the copies' optimizer takes ``torch.optim``'s multi-tensor
    (``foreach``) path where the original left the choice to torch. They are rebuilt when the
    optimizer's parameter groups or the parameters' shapes change.

    :meth:`step_norms` is cheaper still for the optimizers of :data:`WEIGHT_FREE_STEPS` without weight
    decay: their step does not depend on the weights, so it replays the step on copies set to zero, in
    the weights' own precision, where nothing is absorbed (``fl(0 + dW) = dW``).

    Args:
        optimizer: a ``torch.optim.Optimizer``.
        params: the parameters that may be replayed.
    """

    def __init__(self, optimizer, params):
        self._optimizer = weakref.ref(optimizer)   # a replay does not keep the learner's optimizer alive
        self._params = list(params)
        self._copies = {}      # float64 copies of the weights (True), or zeros in their own dtype (False)

    @property
    def optimizer(self):
        """The optimizer replayed (None once the learner's program dropped it)."""
        return self._optimizer()

    def steps(self, params, grad_scale=None):
        """The step ``optimizer.step()`` is about to make to each of ``params`` (a subset of those
        given at construction), as float64 tensors; zeros for a parameter the optimizer does not hold
        or that has no gradient. The tensors are reused by the next call."""
        return self._replay(params, True, grad_scale)

    def step_norms(self, params, grad_scale=None, grad_norms=None):
        """``||dW||`` of the step ``optimizer.step()`` is about to make to each of ``params``, as a 1-D
        float64 tensor (0 for a parameter the optimizer does not hold or that has no gradient).

        Plain SGD (no momentum, no weight decay) steps by ``dW = -lr * g``, so ``||dW|| = lr ||g||``
        with nothing to replay. Other :data:`WEIGHT_FREE_STEPS` without weight decay are replayed from
        zero in the weights' precision. A float32 step entry that underflows is lost there, but entries
        below 1e-38 change a norm above :data:`gradcourse.core.norms.SAFE_FLOAT32_NORM` by a relative 1e-48 or
        less; when a norm is below it, every step is replayed in float64 from the weights instead.
        ``grad_scale``: the loss scale ``torch.amp.GradScaler`` left in the gradients of an optimizer that
        unscales inside its step (a fused one); the replay divides by it as that step does.
        ``grad_norms``: the norms of every one of ``params``' gradients as the step uses them (unscaled),
        when the caller has them already; plain SGD then measures nothing.
        """
        held = self._held()
        replayed = [id(p) in held and p.grad is not None for p in params]
        rates = plain_sgd_rates(self.optimizer)
        if rates is not None and not any(p.grad.is_sparse for p, used in zip(params, replayed) if used):
            used = [p for p, u in zip(params, replayed) if u]
            if not used:
                return torch.zeros(len(params), dtype=torch.float64)
            if grad_norms is None or len(used) != len(params):
                grad_norms = tensor_norms([p.grad for p in used])
                if grad_scale is not None:
                    grad_norms = grad_norms / grad_scale.double().to(grad_norms.device)
            steps = grad_norms * torch.tensor([rates[id(p)] for p in used], dtype=torch.float64, device=grad_norms.device)
            if len(used) == len(params):
                return steps
            return torch.zeros(len(params), dtype=torch.float64, device=steps.device).index_copy_(
                0, torch.tensor([k for k, u in enumerate(replayed) if u], device=steps.device), steps)
        if self._weight_free():
            norms = tensor_norms(self._replay(params, False, grad_scale))
            if all(value > SAFE_FLOAT32_NORM for value, used in zip(norms.tolist(), replayed) if used):
                return norms
        return tensor_norms(self.steps(params, grad_scale))

    def _held(self):
        return {id(p) for group in self.optimizer.param_groups for p in group["params"]}

    def _weight_free(self):
        return (type(self.optimizer) in WEIGHT_FREE_STEPS
                and all(group.get("weight_decay", 0) == 0 for group in self.optimizer.param_groups))

    def _replay(self, params, from_weights, grad_scale):
        copies = self._copies.get(from_weights)
        if copies is None or not copies.fits():
            copies = self._copies[from_weights] = _Copies(self.optimizer, self._params, from_weights)
        return copies.replay(params, grad_scale)


def plain_sgd_rates(optimizer):
    """``{id(p): lr}`` when ``optimizer`` is plain SGD (no momentum, no weight decay), whose step is
    ``dW = -lr * g``, else None."""
    if type(optimizer) is not torch.optim.SGD:
        return None
    rates = {}
    for group in optimizer.param_groups:
        if group.get("momentum", 0) != 0 or group.get("weight_decay", 0) != 0:
            return None
        for p in group["params"]:
            rates[id(p)] = float(group["lr"])
    return rates


class _Copies:
    """The copies one replay steps: float64 copies of the weights (``from_weights``), or zeros in the
    weights' own dtype; gradients and optimizer state in the same dtype as the copies."""

    def __init__(self, optimizer, params, from_weights):
        self._optimizer = weakref.ref(optimizer)
        self.from_weights = from_weights
        wanted = {id(p) for p in params}
        self._built_for = self._layout()
        self._twins = {}
        groups = []
        for group in optimizer.param_groups:
            members = [p for p in group["params"] if id(p) in wanted]
            for p in members:
                self._twins[id(p)] = torch.empty(p.shape, dtype=self._dtype(p), device=p.device)
            if members:
                groups.append({**_hyperparameters(group), "params": [self._twins[id(p)] for p in members]})
        self._sources = [group for group in optimizer.param_groups if any(id(p) in wanted for p in group["params"])]
        self._replay = type(optimizer)(groups) if groups else None
        self._buffers = {}         # (id(p), "grad" or a state key) -> buffer

    @property
    def optimizer(self):
        return self._optimizer()

    def _dtype(self, value):
        if not self.from_weights:
            return value.dtype
        return torch.complex128 if value.is_complex() else torch.float64

    def _layout(self):
        return [(id(p), p.shape) for group in self.optimizer.param_groups for p in group["params"]]

    def fits(self):
        return self._layout() == self._built_for

    def _buffer(self, key, value):
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != value.shape or buffer.dtype != self._dtype(value) or \
                buffer.device != value.device:
            buffer = self._buffers[key] = torch.empty(value.shape, dtype=self._dtype(value), device=value.device)
        return buffer

    def replay(self, params, grad_scale=None):
        chosen = [p for p in params if id(p) in self._twins and p.grad is not None]
        if not chosen:
            return [torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in params]
        for twin in self._twins.values():
            twin.grad = None          # the optimizer skips the copies that are not replayed
        targets, sources, grads = [], [], []
        state = {}
        for p in chosen:
            twin = self._twins[id(p)]
            if self.from_weights:
                targets.append(twin)
                sources.append(p.detach())
            grad = p.grad.detach()
            if grad.is_sparse:
                twin.grad = grad.to(self._dtype(grad), copy=True)
            else:
                twin.grad = self._buffer((id(p), "grad"), grad)
                targets.append(twin.grad)
                sources.append(grad)
            grads.append(twin.grad)
            entries = {}
            for key, value in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and (value.is_floating_point() or value.is_complex()) and not value.is_sparse:
                    entries[key] = self._buffer((id(p), key), value)
                    targets.append(entries[key])
                    sources.append(value.detach())
                elif torch.is_tensor(value):
                    entries[key] = value.detach().clone()
                else:
                    entries[key] = copy.deepcopy(value)
            if entries:
                state[twin] = entries
        for twin_group, group in zip(self._replay.param_groups, self._sources):
            twin_group.update(_hyperparameters(group))
        self._replay.state.clear()
        self._replay.state.update(state)
        twins = [self._twins[id(p)] for p in chosen]
        with torch.no_grad():
            if not self.from_weights:
                torch._foreach_zero_(twins)
            torch._foreach_copy_(targets, sources)
            if grad_scale is not None:     # unscaled, as the fused step does before it updates
                for grad in grads:
                    grad.div_(grad_scale.to(grad.device))
            self._replay.step()
            if self.from_weights:
                torch._foreach_sub_(twins, [p.detach() for p in chosen])
        return [self._twins[id(p)] if id(p) in self._twins and p.grad is not None
                else torch.zeros(p.shape, dtype=torch.float64, device=p.device) for p in params]


def _hyperparameters(group):
    """A parameter group's settings without its parameters; an unset ``foreach`` becomes True,
    the multi-tensor implementation being the faster one for a replay on many tensors, except where
    torch's multi-tensor step refuses the settings (a tensor learning rate without ``capturable``)."""
    settings = {k: v for k, v in group.items() if k != "params"}
    tensor_settings = any(torch.is_tensor(value) for value in settings.values())
    if (settings.get("foreach", False) is None and not settings.get("differentiable") and not settings.get("fused")
            and not tensor_settings):
        settings["foreach"] = True
    return settings
