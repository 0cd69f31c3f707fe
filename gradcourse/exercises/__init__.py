"""Exercises in the notebooks, checked on the spot, with worked solutions to compare against.

Each notebook from 01 on asks a few questions where an idea was just taught, of three kinds:
*predict, then run* (a number or a choice written before an experiment), *compute or derive* (a closed
form) and *build or fix* (a network made with the package, which the check measures). In a notebook::

    answer = ...                          # your answer
    gc.exercises.check("02.1", answer)    # prints right, wrong with a hint, not read, or not answered yet
    gc.exercises.solution("02.1")         # shows the worked solution

The answers live here, in :mod:`~gradcourse.exercises.notebook_01` and the other notebooks' modules;
:mod:`~gradcourse.exercises.judging` holds the ways an answer is judged.
"""

from .checker import EXERCISES, Result, check, exercise, solution

__all__ = ["EXERCISES", "Result", "check", "exercise", "solution"]
