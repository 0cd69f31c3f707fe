"""What :func:`~gradcourse.core.diagnose.diagnose` returns: a :class:`Report` of the measurements of one
monitored step, with the :class:`Symptom` found in them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Report", "Symptom"]


@dataclass
class Symptom:
    """One finding: what was measured, against which threshold, why it happens, what to do."""

    name: str
    evidence: str
    threshold: str
    layers: list = field(default_factory=list)
    causes: list = field(default_factory=list)
    remedies: list = field(default_factory=list)   # (what to do, notebook) pairs


@dataclass
class Report:
    """What :func:`diagnose` found. ``print(report)`` reads it; :meth:`as_dict` gives plain data."""

    loss: float
    layer_names: list
    grad_norms: list
    activation_names: list
    saturated: list
    dead: list
    update_ratios: list | None
    symptoms: list
    notes: list = field(default_factory=list)
    grad_weight_ratios: list = field(default_factory=list)

    @property
    def healthy(self):
        """True when no symptom was found."""
        return not self.symptoms

    @property
    def symptom_names(self):
        """The names of the symptoms found, e.g. ``["vanishing gradients"]``."""
        return [s.name for s in self.symptoms]

    def as_dict(self):
        """The report as plain dicts, lists, strings and floats."""
        return asdict(self)

    def __str__(self):
        lines = [f"diagnose: loss {self.loss:.4g}, {len(self.layer_names)} layers, "
                 f"{len(self.activation_names)} activation calls"]
        if self.healthy:
            lines.append("No symptom found: gradients reach every layer at a sensible size"
                         + ("" if self.update_ratios is None else ", and one step moves each layer by a sensible share")
                         + ".")
        for i, s in enumerate(self.symptoms, start=1):
            lines.append(f"{i}. {s.name.upper()}: {s.evidence}  [threshold: {s.threshold}]")
            if s.layers:
                shown = ", ".join(s.layers[:6]) + (f", ... ({len(s.layers)} in all)" if len(s.layers) > 6 else "")
                lines.append(f"   where: {shown}")
            lines.append("   likely causes: " + "; ".join(s.causes))
            for remedy, notebook in s.remedies:
                lines.append(f"   - {remedy}  (notebook {notebook})")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    __repr__ = __str__
