"""Helpers shared by the test modules (tests/ is on sys.path under pytest's default import mode)."""


def find_widgets(widget, kind):
    """All descendants of ``widget`` (itself included) of type ``kind``."""
    found = [widget] if isinstance(widget, kind) else []
    for child in getattr(widget, "children", ()):
        found += find_widgets(child, kind)
    return found
