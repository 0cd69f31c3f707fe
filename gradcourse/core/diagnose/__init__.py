"""One monitored step read as a doctor would: :func:`diagnose` names vanishing, exploding, saturated or
dead layers and bad update sizes, with the evidence and the remedy. See :mod:`~gradcourse.core.diagnose.diagnose`."""

from .diagnose import NOTEBOOKS, THRESHOLDS, Report, Symptom, diagnose

__all__ = ["NOTEBOOKS", "Report", "Symptom", "THRESHOLDS", "diagnose"]
