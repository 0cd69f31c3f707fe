"""What a training run measured: :class:`History`, as :func:`~gradcourse.core.train.fit` returns it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """What :func:`fit` measured.

    ``loss`` and ``grad_norm`` hold one float per optimizer step (``grad_norm`` is the
    global gradient norm before any clipping); ``train_accuracy`` and ``val_accuracy``
    one per finished epoch (``train_accuracy`` stays empty with ``EpochScores(training_set=False)``).
    When training diverged, ``stop_step`` (1-based), ``stop_layer`` and ``stop_message`` say where;
    no non-finite value is recorded.

    With ``loss_fn="mse"`` (regression) there is no accuracy: ``train_loss`` and ``val_loss``
    hold the mean squared error over the whole training and validation set after each epoch
    (``train_loss`` stays empty with ``EpochScores(training_set=False)``).
    ``clipped`` holds one bool per step: True when a :class:`ClipNorm` or :class:`ClipValue` callback was given and the
    gradient exceeded it (so clipping changed it); :attr:`clipped_share` is their share.
    ``max_norm`` and ``clip_value`` are the thresholds the run used.
    ``interrupted`` is True when an interrupt (Jupyter's stop button) ended the run early.
    """

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    stop_step: int | None = None
    stop_layer: str | None = None
    stop_message: str | None = None
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    clipped: list = field(default_factory=list)
    max_norm: float | None = None
    clip_value: float | None = None
    interrupted: bool = False

    @property
    def clipped_share(self):
        """Share of the optimizer steps whose gradient was clipped (0.0 without clipping or steps)."""
        return sum(self.clipped) / len(self.clipped) if self.clipped else 0.0

    @property
    def diverged(self):
        """True when training stopped on a non-finite loss or gradient."""
        return self.stop_step is not None

    @property
    def steps(self):
        """Number of completed optimizer steps."""
        return len(self.loss)

    def __repr__(self):
        parts = [f"steps={self.steps}"]
        if self.loss:
            parts.append(f"final loss={self.loss[-1]:.4f}")
        if self.train_accuracy:
            parts.append(f"train accuracy={self.train_accuracy[-1]:.3f}")
        if self.val_accuracy:
            parts.append(f"val accuracy={self.val_accuracy[-1]:.3f}")
        if self.val_loss:
            parts.append(f"val loss={self.val_loss[-1]:.4f}")
        if self.max_norm is not None or self.clip_value is not None:
            parts.append(f"clipped {self.clipped_share:.0%} of steps")
        if self.diverged:
            parts.append(f"diverged at step {self.stop_step} ({self.stop_layer})")
        if self.interrupted:
            parts.append("interrupted")
        return f"History({', '.join(parts)})"
