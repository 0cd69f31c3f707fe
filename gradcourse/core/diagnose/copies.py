"""The copies :func:`~gradcourse.core.diagnose.diagnose` works on, so that the learner's model and optimizer
are left as they were: the model with the learner's own hooks but without gradcourse's
(:func:`copy_for_diagnosis`), and an identical optimizer over the copy's parameters (:func:`copy_optimizer`)."""

from __future__ import annotations

import copy

__all__ = ["copy_for_diagnosis", "copy_optimizer"]


def copy_for_diagnosis(model):
    """A deep copy of ``model`` that keeps the user's own hooks (a hook can be part of what the model
    computes) but not gradcourse's (an active GradientMonitor of ``model`` would record the diagnosis),
    and ``{id(module): name}`` of the original."""
    names = {id(m): name for name, m in model.named_modules()}
    patient = copy.deepcopy(model)
    for module in patient.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks,
                      module._backward_pre_hooks):
            for key in [key for key, hook in hooks.items() if _is_ours(hook)]:
                del hooks[key]
    for p in patient.parameters():
        p.grad = None
        hooks = getattr(p, "_post_accumulate_grad_hooks", None)
        if hooks:
            for key in [key for key, hook in hooks.items() if _is_ours(hook)]:
                del hooks[key]
    return patient, names


def _is_ours(hook):
    """Whether ``hook`` comes from gradcourse (a GradientMonitor's or a ForwardOrder's)."""
    return getattr(hook, "__module__", "").startswith("gradcourse.")


def copy_optimizer(optimizer, model, patient):
    """An optimizer of the same type, hyper-parameters and state, over the copy's parameters."""
    twin = dict(zip((id(p) for p in model.parameters()), patient.parameters()))
    groups = []
    for group in optimizer.param_groups:
        missing = [p for p in group["params"] if id(p) not in twin]
        if missing:
            raise ValueError("optimizer is not allowed: it holds parameters that are not the model's")
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": [twin[id(p)] for p in group["params"]]})
    clone = type(optimizer)(groups, **{k: v for k, v in optimizer.defaults.items() if k not in groups[0]})
    clone.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return clone
