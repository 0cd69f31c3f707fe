"""Helpers shared by the test modules (tests/ is on sys.path under pytest's default import mode)."""

import inspect


def find_widgets(widget, kind):
    """All descendants of ``widget`` (itself included) of type ``kind``."""
    found = [widget] if isinstance(widget, kind) else []
    for child in getattr(widget, "children", ()):
        found += find_widgets(child, kind)
    return found


def record_calls(monkeypatch, module, name, *arguments):
    """Replace ``module.name`` by a wrapper that calls it and records the named ``arguments`` of each
    call (bound by the function's signature, defaults included): one value per call when one name
    is given, a tuple otherwise. Returns the list of records."""
    original = getattr(module, name)
    signature = inspect.signature(original)
    calls = []

    def recording(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = tuple(bound.arguments[argument] for argument in arguments)
        calls.append(values[0] if len(values) == 1 else values)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls
