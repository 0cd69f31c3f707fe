"""One monitored step read as a doctor would: :func:`diagnose` names vanishing, exploding, saturated or
dead layers and bad update sizes, with the evidence and the remedy. See :mod:`~gradcourse.core.diagnose.diagnose`
(the pass), :mod:`~gradcourse.core.diagnose.symptoms` (the checks and their thresholds),
:mod:`~gradcourse.core.diagnose.report` (what it returns) and :mod:`~gradcourse.core.diagnose.copies`."""

from .diagnose import diagnose
from .report import Report, Symptom
from .symptoms import NOTEBOOKS, THRESHOLDS

__all__ = ["NOTEBOOKS", "Report", "Symptom", "THRESHOLDS", "diagnose"]
