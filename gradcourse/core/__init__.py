"""The core: what a learner keeps using on their own networks, importable without matplotlib or ipywidgets.

:mod:`~gradcourse.core.runtime` (seeds, CPU threads, device), :mod:`~gradcourse.core.data` (MNIST, batches,
the adding problem), :mod:`~gradcourse.core.models` (the course MLP), :mod:`~gradcourse.core.sequence_models`
(RNN, LSTM, GRU regressors), :mod:`~gradcourse.core.layers` (which modules are a model's layers),
:mod:`~gradcourse.core.norms` (norms that neither underflow nor overflow), :mod:`~gradcourse.core.losses`
(the loss by name), :mod:`~gradcourse.core.model_state` (a pass that leaves a model as it was),
:mod:`~gradcourse.core.probes` (per-layer gradient norms of one batch), :mod:`~gradcourse.core.scoring`
(accuracy, mean squared error), :mod:`~gradcourse.core.train` (``fit`` and its callbacks),
:mod:`~gradcourse.core.monitor` (``GradientMonitor``) and :mod:`~gradcourse.core.diagnose`.
Modules here import only each other and torch; lessons and display build on them.
"""
