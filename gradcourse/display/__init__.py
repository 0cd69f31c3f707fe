"""What a learner sees: :mod:`~gradcourse.display.plots` (matplotlib figures drawn from numbers),
:mod:`~gradcourse.display.figures` (an experiment run, then drawn) and :mod:`~gradcourse.display.widgets`
(ipywidgets explorers). ``gradcourse.plots``, ``gradcourse.figures`` and ``gradcourse.widgets`` are these
modules, imported on first use."""
