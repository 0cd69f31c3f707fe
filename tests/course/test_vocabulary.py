"""One name per concept everywhere (DESIGN.md): every public signature of the package uses the chosen
name of a concept, never one of the synonyms it replaced, and the two scales that once shared a name
(a weight gain and a loss scale) each keep to their own places.

The signatures are read, not parsed: every module under ``gradcourse/`` is imported (core, lessons,
display, exercises) and every public function, every public class's ``__init__`` (or a named tuple's
``__new__``) and every public method defined in that module is walked with :func:`inspect.signature`.
"""

import importlib
import inspect
import pkgutil

import pytest

import gradcourse

CHOSEN = {
    "loss_fn": ("criterion", "loss_function", "loss_func", "objective"),
    "max_norm": ("clip_norm", "max_grad_norm", "grad_clip", "norm_threshold"),
    "clip_value": ("max_value", "value_threshold", "max_abs", "clip_threshold"),
    "loss_scale": ("scale_factor", "loss_scale_factor", "loss_multiplier"),
    "init_scale": ("gain", "init_gain", "weight_gain", "weight_scale"),
    "init_scales": ("scales", "gains"),
    "validation": ("X_test", "y_test", "X_val", "y_val", "X_valid", "y_valid", "val", "val_data",
                   "validation_data", "test_data", "eval_data"),
    "width": ("hidden", "hidden_size", "hidden_dim", "n_hidden", "num_hidden"),
    "in_features": ("input_size", "input_dim", "n_inputs", "n_features", "num_features"),
    "model_options": ("mlp", "mlp_options", "model_kwargs", "net_options"),
    "fit_options": ("fit_kwargs", "train_options", "training_options"),
    "seed": ("random_state", "random_seed", "rng_seed", "manual_seed"),
    "lr": ("learning_rate", "step_size", "eta"),
    "batch_size": ("batch", "bs", "minibatch_size", "mini_batch_size"),
    "epochs": ("n_epochs", "num_epochs", "max_epochs"),
    "depth": ("n_layers", "num_layers"),
    "tolerance": ("tol",),
    "dtype": ("precision",),
    "wrt": ("signal", "with_respect_to"),
    "writer": ("writer_or_log_dir",),
}
"""Each chosen name, with the synonyms it replaces. ``loss`` is not among ``loss_fn``'s: a parameter
named ``loss`` holds loss values (``History.loss``), a different concept."""

VAGUE_KEYWORDS = ("options", "kwargs", "kw")
"""Names a ``**`` parameter may not have: it says whose options it carries (``**model_options`` for a
model's constructor, ``**fit_options`` for ``fit``, ``**shared`` for the options every configuration
shares)."""

REPLACED = {synonym: chosen for chosen, synonyms in CHOSEN.items() for synonym in synonyms}

INIT_SCALE_PLACES = {
    "init_linear_": "draws one layer's weights",
    "MLP.__init__": "builds the MLP",
    "first_to_last_ratio": "builds seeded MLPs",
    "layer_statistics": "builds a seeded MLP",
    "scale_sweep": "builds seeded MLPs, one per init_scale in init_scales",
    "signal_std": "draws a deep network's weights, as MLP(init='lecun', init_scale=g) would",
    "mean_field": "the same network's weights, in the infinite-width limit",
    "gradient_flow_figure": "builds a seeded MLP",
    "normalization_figure": "builds and trains a seeded MLP",
    "gradient_flow_explorer": "builds a seeded MLP per redraw",
    "normalization_explorer": "builds and trains a seeded MLP per redraw",
}
"""Where ``init_scale`` (or ``init_scales``) may name a parameter: the gain on a network's initial weights,
in the functions and classes that build those weights. Keys are qualified names within their module."""

LOSS_SCALE_PLACES = {
    "flushed_and_overflowed": "multiplies values by the loss scale before a cast",
    "grad_scaler_trace": "GradScaler's starting loss scale",
    "train_mixed_precision": "GradScaler's starting loss scale",
    "loss_scaling_steps": "multiplies the loss by the loss scale",
}
"""Where ``loss_scale`` may name a parameter: the factor the loss (so every gradient) is multiplied by."""

LAYERS = ("core", "lessons", "display", "exercises")


def _modules():
    """Every module of the package, imported."""
    names = ["gradcourse"] + [info.name for info in pkgutil.walk_packages(gradcourse.__path__, "gradcourse.",
                                                                          onerror=_raise)]
    return [importlib.import_module(name) for name in names]


def _raise(name):
    raise ImportError(f"cannot import {name}")


def _callables(module):
    """``(qualified name, function)`` of every public function, class constructor and public method
    defined in ``module``."""
    found = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            found.append((name, obj))
        elif inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__new__"):
                    continue
                function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                if inspect.isfunction(function):
                    found.append((f"{name}.{attr}", function))
    return found


def _parameters():
    """``(module name, qualified name, parameter)`` for every parameter of every public signature."""
    found = []
    for module in _modules():
        for qualname, function in _callables(module):
            try:
                signature = inspect.signature(function)
            except (TypeError, ValueError):
                continue
            found += [(module.__name__, qualname, p) for p in signature.parameters.values()
                      if p.name not in ("self", "cls")]
    return found


PARAMETERS = _parameters()


def _layer(module_name):
    parts = module_name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "gradcourse"


def test_the_walk_sees_every_layer():
    seen = {_layer(module) for module, _, _ in PARAMETERS}
    assert set(LAYERS) <= seen
    assert len({(module, qualname) for module, qualname, _ in PARAMETERS}) > 300


def test_no_chosen_name_is_also_a_synonym():
    assert not set(CHOSEN) & set(REPLACED)
    assert len(REPLACED) == sum(len(synonyms) for synonyms in CHOSEN.values()), "a synonym listed twice"


@pytest.mark.parametrize("layer", ("gradcourse",) + LAYERS)
def test_no_parameter_is_named_with_a_replaced_synonym(layer):
    wrong = []
    for module, qualname, p in PARAMETERS:
        if _layer(module) != layer:
            continue
        if p.name in REPLACED:
            wrong.append(f"{module}.{qualname}({p.name}): use {REPLACED[p.name]}")
        elif p.kind is inspect.Parameter.VAR_KEYWORD and p.name in VAGUE_KEYWORDS:
            wrong.append(f"{module}.{qualname}(**{p.name}): name whose options these are, e.g. **model_options "
                         "or **fit_options")
    assert not wrong, f"{len(wrong)} parameter(s) named with a replaced synonym:\n" + "\n".join(wrong)


@pytest.mark.parametrize("names, places", [(("init_scale", "init_scales"), INIT_SCALE_PLACES),
                                           (("loss_scale",), LOSS_SCALE_PLACES)])
def test_each_scale_keeps_to_its_own_places(names, places):
    """``init_scale`` is a weight gain and ``loss_scale`` a loss scale: each appears only in the signatures
    listed for it, and every place listed still has it (so the lists do not go stale)."""
    found = {qualname: f"{module}.{qualname}({p.name})" for module, qualname, p in PARAMETERS if p.name in names}
    outside = sorted(where for qualname, where in found.items() if qualname not in places)
    assert not outside, f"{' / '.join(names)} outside its places ({', '.join(places)}):\n" + "\n".join(outside)
    stale = sorted(set(places) - set(found))
    assert not stale, f"listed for {' / '.join(names)} but no longer taking it: {stale}"
