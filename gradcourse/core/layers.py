"""Which modules of a model are its layers, how they are named, which parameters are their weights,
and in which order a forward pass meets them: the layers :class:`~gradcourse.core.monitor.GradientMonitor`,
:func:`~gradcourse.core.probes.layer_gradient_norms` and :func:`~gradcourse.core.diagnose.diagnose` report on.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _checks

__all__ = ["as_one_tensor", "find_layers", "ForwardOrder", "layer_weights", "named_layers", "sharded_parameters"]


def layer_weights(module, frozen=False):
    """A layer's trainable weights: its own parameters except biases (all of them when it has only biases),
    including weights held by ``torch.nn.utils.parametrize`` (``weight_norm``, ``spectral_norm``, ...).
    ``frozen=True``: for a layer with no trainable parameter, the same of its frozen ones (which never move)."""
    own = list(module.named_parameters(recurse=False))
    if hasattr(module, "parametrizations"):
        own += list(module.parametrizations.named_parameters())
    weights = [p for name, p in own if "bias" not in name.split(".")[-1] and p.requires_grad]
    weights = weights or [p for _, p in own if p.requires_grad]
    if weights or not frozen:
        return weights
    return [p for name, p in own if "bias" not in name.split(".")[-1]] or [p for _, p in own]


def as_one_tensor(tensors):
    """A layer's weight tensors as one: the tensor itself when there is one, else their entries concatenated."""
    return tensors[0] if len(tensors) == 1 else torch.cat([t.reshape(-1) for t in tensors])


def find_layers(model, layers=None, include=None):
    """The layers to monitor, as ``[(name, module)]`` in the model's registration order.

    * ``layers``: an explicit list of submodules of ``model``;
    * otherwise, for a course :class:`~gradcourse.core.models.MLP`, its hidden ``nn.Linear`` layers that
      have a trainable weight;
    * otherwise every module that holds trainable parameters itself (Linear, Conv, RNN/LSTM/GRU,
      Embedding, normalization layers, attention, ...), named by its module path
      (e.g. ``"layer1.0.conv1"``; the model itself is named by its class);
    * ``include(name, module) -> bool`` filters the candidates.
    """
    _checks.module("model", model)
    names = {id(m): (name or type(m).__name__) for name, m in model.named_modules()}
    if layers is not None:
        if isinstance(layers, nn.Module) or not isinstance(layers, (list, tuple)):
            raise ValueError(f"layers={_checks.describe(layers)} is not allowed; it must be a list of submodules of "
                             "the model (for one layer: layers=[module])")
        layers = list(layers)
        for i, module in enumerate(layers):
            if id(module) not in names:
                raise ValueError(f"layers[{i}]={_checks.describe(module)} is not allowed; every entry must be "
                                 "a submodule of the model")
        found = [(names[id(m)], m) for m in layers]
    elif hasattr(model, "hidden_linears"):        # its trainable hidden layers (a frozen one gets no gradient)
        found = [(names[id(m)], m) for m in model.hidden_linears() if layer_weights(m)]
    else:
        found = [(names[id(m)], m) for _, m in model.named_modules()
                 if not isinstance(m, torch.nn.utils.parametrize.ParametrizationList)
                 and any(p.requires_grad for p in m.parameters(recurse=False))]
    if include is not None:
        if not callable(include):
            raise ValueError(f"include={include!r} is not allowed; it must be a callable (name, module) -> bool, or None")
        found = [(name, m) for name, m in found if include(name, m)]
    frozen = [name for name, m in found if not layer_weights(m)]
    if frozen:
        raise ValueError(f"layers={frozen} is not allowed: these layers have no parameter with requires_grad=True, "
                         "so they get no gradient; choose trainable layers")
    if not found:
        raise ValueError("no layer with trainable parameters to monitor; check the model, layers= and include=")
    return found


def sharded_parameters(model):
    """The names of ``model``'s parameters that are sharded across processes: FSDP2's ``DTensor``
    parameters (``torch.distributed.fsdp.fully_shard``) and FSDP1's flattened ones
    (``FullyShardedDataParallel``, whose parameters carry ``_fsdp_flattened``). A norm of one of them
    on one rank covers that rank's shard only."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:        # a torch without distributed support (or before 2.5, without this public name)
        DTensor = ()
    return [name for name, p in model.named_parameters()
            if isinstance(p, DTensor) or getattr(p, "_fsdp_flattened", False)]


def named_layers(model):
    """``(name, module)`` for each layer of ``model`` that holds parameters, input side first.

    A course :class:`~gradcourse.core.models.MLP` gives ``hidden layer 1 .. L`` and ``output layer``;
    a model with a ``named_layers()`` method gives its own list (``SequenceRegressor``: ``LSTM layer``,
    ``output layer``); any other module gives the layers of :func:`find_layers`,
    by module path, in registration order.
    """
    if callable(getattr(model, "named_layers", None)):  # a model that names its own layers (SequenceRegressor)
        return list(model.named_layers())
    if hasattr(model, "hidden_linears") and hasattr(model, "output"):
        layers = [(f"hidden layer {i + 1}", m) for i, m in enumerate(model.hidden_linears())]
        return layers + [("output layer", model.output)]
    return find_layers(model)


class ForwardOrder:
    """Records the order in which a forward pass calls the modules of a model."""

    def __init__(self, model):
        self.seen = {}
        self._handles = [m.register_forward_pre_hook(self._hook) for m in model.modules()]

    def _hook(self, module, inputs):
        self.seen.setdefault(id(module), len(self.seen))

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def sort(self, named_layers):
        """Sort ``[(name, module)]`` by first call; a module never called directly (e.g. attention's
        ``out_proj``) goes where its nearest called ancestor does."""
        positions = {name: self.seen.get(id(m)) for name, m in named_layers}

        def key(item):
            index, (name, module) = item
            position = positions[name]
            if position is None:
                ancestors = [n for n in positions if name.startswith(n + ".") and positions[n] is not None]
                position = positions[max(ancestors, key=len)] + 0.5 if ancestors else float("inf")
            return (position, index)

        return [item for _, item in sorted(enumerate(named_layers), key=key)]
