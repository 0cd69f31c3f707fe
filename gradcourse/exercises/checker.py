"""``check(exercise_id, answer)`` and ``solution(exercise_id)``: what a notebook's exercise cells call.

``check`` prints a verdict (right; wrong, with a hint for the likely mistake; not read, for an answer in a
form the exercise cannot read, such as words where a number is asked; or not answered yet)
and returns a :class:`Result`. It never raises on an answer, whatever it is, so a notebook runs
top to bottom with its exercises unanswered; only an unknown exercise id raises a ValueError.
``solution`` shows the worked solution as Markdown (plain text outside a notebook).
"""

from __future__ import annotations

from ..core import _checks
from .judging import FormatProblem
from . import notebook_01, notebook_02, notebook_03, notebook_04, notebook_05, notebook_06, notebook_07, notebook_08
from . import notebook_09, notebook_10, notebook_11, notebook_12, notebook_13, notebook_14, notebook_15, notebook_16
from . import notebook_17

__all__ = ["check", "exercise", "EXERCISES", "Result", "show_markdown", "solution", "UNANSWERED"]

EXERCISES = {exercise.id: exercise for module in (notebook_01, notebook_02, notebook_03, notebook_04, notebook_05,
                                                   notebook_06, notebook_07, notebook_08, notebook_09, notebook_10,
                                                   notebook_11, notebook_12, notebook_13, notebook_14, notebook_15,
                                                   notebook_16, notebook_17)
             for exercise in module.EXERCISES}
"""Every exercise of the course by id, ``"02.1"`` being notebook 02's first."""

UNANSWERED = (None, Ellipsis)


class Result:
    """What :func:`check` found: ``exercise`` (the id), ``status`` (``"right"``, ``"wrong"``, ``"not read"``
    (an answer in a form the exercise cannot read, such as text where a number is asked) or ``"not answered"``) and ``message``. True when right, so a test can ``assert check(...)``.

    ``check`` has printed the verdict already, so in a notebook the Result shows nothing more.
    """

    def __init__(self, exercise, status, message):
        self.exercise, self.status, self.message = exercise, status, message

    @property
    def correct(self):
        """True when the answer is right."""
        return self.status == "right"

    def __bool__(self):
        return self.correct

    def __str__(self):
        status = "not answered yet" if self.status == "not answered" else self.status
        return f"Exercise {self.exercise}: {status}. {self.message[:1].upper()}{self.message[1:]}".rstrip()

    def __repr__(self):
        return f"Result(exercise={self.exercise!r}, status={self.status!r})"

    def _ipython_display_(self):
        """Nothing: :func:`check` printed the verdict (IPython would otherwise add the repr)."""


def exercise(exercise_id):
    """The :class:`~gradcourse.exercises.judging.Exercise` with this id, e.g. ``"02.1"``."""
    return EXERCISES[_checks.choice("exercise_id", exercise_id, tuple(EXERCISES))]


def check(exercise_id, answer):
    """Judge ``answer`` to exercise ``exercise_id``, print the verdict and return a :class:`Result`.

    ``answer`` is whatever the exercise asks for: a number, a tuple of numbers, a word such as
    ``"below"``, or a network. ``...`` or None means not answered yet. An answer that makes the
    judge fail (a network that cannot run, say) is reported as wrong, with the error, not raised.
    """
    found = exercise(exercise_id)
    if any(answer is placeholder for placeholder in UNANSWERED):
        result = Result(found.id, "not answered", "Replace ... with your answer and run the cell again.")
    else:
        try:
            correct, message = found.judge(answer)
        except Exception as error:   # a learner's answer must not crash the kernel
            correct, message = False, f"checking this answer failed with {type(error).__name__}: {error}"
        status = "right" if correct else "not read" if isinstance(message, FormatProblem) else "wrong"
        if not correct:
            message += f' Try again, or see gc.exercises.solution("{found.id}").'
        result = Result(found.id, status, message)
    print(result)
    return result


def solution(exercise_id):
    """Show the worked solution of exercise ``exercise_id``: Markdown in a notebook, text elsewhere."""
    found = exercise(exercise_id)
    text = f"**Exercise {found.id}: worked solution.** {found.question}\n\n{found.solution.strip()}\n"
    show_markdown(text)


def show_markdown(text):
    """Display Markdown through IPython when it runs (JupyterLab, Colab, Binder), else print it."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
    else:
        display({"text/markdown": text, "text/plain": text}, raw=True)
