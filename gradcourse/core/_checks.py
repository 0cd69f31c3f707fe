"""Argument checks shared by every public function.

Each check raises ``ValueError`` with one message shape: the parameter's name,
the value it got, and what is allowed, e.g.
``activation='sigmod' is not allowed; choose one of: 'sigmoid', 'tanh', ...``.
"""

from __future__ import annotations

import math
import numbers

from torch import nn

__all__ = ["batch", "boolean", "choice", "describe", "features_and_labels", "inputs_and_targets", "integer", "interval",
           "module", "number"]


def choice(name, value, allowed):
    """Return ``value`` if it is one of ``allowed``, else raise ValueError."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not allowed; choose one of: {options}")
    return value


def integer(name, value, minimum=None, maximum=None):
    """Return ``value`` as int if it is an integer within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer{_range(minimum, maximum)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer{_range(minimum, maximum)}")
    return int(value)


def number(name, value, minimum=None, maximum=None, strict_minimum=False):
    """Return ``value`` as float if it is a finite real number within the bounds.

    ``strict_minimum=True`` excludes the minimum itself (``value > minimum``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not allowed; it must be a finite number{_range(minimum, maximum, strict_minimum)}")
    too_small = minimum is not None and (value <= minimum if strict_minimum else value < minimum)
    too_large = maximum is not None and value > maximum
    if too_small or too_large:
        raise ValueError(f"{name}={value!r} is not allowed; it must be a finite number{_range(minimum, maximum, strict_minimum)}")
    return float(value)


def module(name, value):
    """Return ``value`` if it is a ``torch.nn.Module``."""
    if not isinstance(value, nn.Module):
        raise ValueError(f"{name}={describe(value)} is not allowed; it must be a torch.nn.Module")
    return value


def boolean(name, value):
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is not allowed; it must be True or False")
    return value


def interval(name, value):
    """Return ``value`` as ``(low, high)`` floats if it is two finite numbers with ``low < high``."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2 or any(isinstance(v, bool) for v in value)
            or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in value) or not value[0] < value[1]):
        raise ValueError(f"{name}={value!r} is not allowed; it must be (low, high), two finite numbers with low < high")
    return float(value[0]), float(value[1])


def _range(minimum, maximum, strict_minimum=False):
    low = "" if minimum is None else (f" > {minimum}" if strict_minimum else f" >= {minimum}")
    high = "" if maximum is None else f" <= {maximum}"
    if low and high:
        return f"{low} and{high}"
    return low or high


def features_and_labels(X, y, x_name="X", y_name="y"):
    """Check a classification batch: X a 2-D float tensor, y a 1-D integer tensor of equal length."""
    import torch

    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"{x_name}={describe(X)} is not allowed; it must be a 2-D floating-point torch.Tensor (n, features)")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype not in (torch.int64, torch.uint8):
        raise ValueError(f"{y_name}={describe(y)} is not allowed; it must be a 1-D int64 torch.Tensor of class labels "
                         f"(cross-entropy takes int64 or uint8; {y_name}.long() converts)")
    if len(X) != len(y):
        raise ValueError(f"{y_name} has {len(y)} labels but {x_name} has {len(X)} rows; they must match")
    if len(X) == 0:
        raise ValueError(f"{x_name} is empty; it needs at least one row")
    return X, y


def describe(value):
    """A short text for ``value`` in an error message: a tensor's shape and dtype, else its repr
    (or its type name when the repr is 60 characters or more)."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"<tensor shape={tuple(value.shape)} dtype={value.dtype}>"
    return repr(value) if len(repr(value)) < 60 else f"<{type(value).__name__}>"


def batch(X, y, x_name="X", y_name="y"):
    """Check a batch for any model: X and y non-empty torch.Tensors with the same first dimension."""
    import torch

    if not isinstance(X, torch.Tensor) or X.dim() == 0 or len(X) == 0:
        raise ValueError(f"{x_name}={describe(X)} is not allowed; it must be a non-empty torch.Tensor (batch first)")
    if not isinstance(y, torch.Tensor) or y.dim() == 0:
        raise ValueError(f"{y_name}={describe(y)} is not allowed; it must be a torch.Tensor (batch first)")
    if len(X) != len(y):
        raise ValueError(f"{y_name} has {len(y)} rows but {x_name} has {len(X)}; they must match")
    return X, y


def inputs_and_targets(X, y, x_name="X", y_name="y"):
    """Check a regression batch: X a floating-point tensor of at least 2 dimensions (n, ...),
    e.g. (n, T, features) sequences, and y a 1-D floating-point tensor of targets of equal length."""
    import torch

    if not isinstance(X, torch.Tensor) or X.dim() < 2 or not X.is_floating_point():
        raise ValueError(f"{x_name}={describe(X)} is not allowed; it must be a floating-point torch.Tensor "
                         "of at least 2 dimensions (n, ...), e.g. (n, T, features) sequences")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or not y.is_floating_point():
        raise ValueError(f"{y_name}={describe(y)} is not allowed; it must be a 1-D floating-point torch.Tensor of targets")
    if len(X) != len(y):
        raise ValueError(f"{y_name} has {len(y)} targets but {x_name} has {len(X)} rows; they must match")
    if len(X) == 0:
        raise ValueError(f"{x_name} is empty; it needs at least one row")
    return X, y
