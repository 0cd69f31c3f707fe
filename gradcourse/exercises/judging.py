"""How an exercise judges an answer.

A judge is a callable ``answer -> (correct, message)``. :class:`Number` compares numbers within a
tolerance and recognises the mistakes it is given (and, for any exercise, an answer off by a power
of ten or by its sign); :class:`Entries` judges a tuple of numbers entry by entry; :class:`Choice`
compares a prediction with what an experiment, run on the spot, shows. An exercise whose answer is
a network judges its recipe, not the weights the learner's call happened to draw: :func:`redrawn` draws the
recipe from seed 0, so an answer's verdict does not depend on torch's generator; :func:`mlp_mismatch` and
:func:`per_layer_factor` then measure it on a seeded batch. None of them raises on a wrong answer: a wrong
type is a wrong answer, with a message that says what to give.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from typing import Callable, NamedTuple

import torch

from ..core import _checks
from ..core.models import MLP
from ..core.probes import activation_gradient_norms
from ..core.runtime import generators_restored

__all__ = ["as_numbers", "Choice", "Entries", "Exercise", "FormatProblem", "KINDS", "known_mistake", "measured_factor",
           "mlp_mismatch", "mlp_recipe", "normalise_choice", "Number", "number_from_text", "per_layer_factor", "redrawn",
           "redrawn_mlp", "seeded", "show"]

KINDS = ("predict", "compute", "build")
"""predict, then run: a number or a choice written before an experiment; compute or derive: a
closed form; build or fix: a few lines with the package, measured by the check."""


class Exercise(NamedTuple):
    """One exercise: its ``id`` (``"02.1"``: notebook 02, first exercise), ``kind`` (one of
    :data:`KINDS`), a one-line ``question``, the ``judge``, a ``reference`` that makes the
    reference answer, the worked ``solution`` (Markdown) and ``wrong_answers``: typical mistakes
    as ``(make_answer, words_of_the_hint)`` pairs, beside those the judge lists itself."""

    id: str
    kind: str
    question: str
    judge: Callable
    reference: Callable
    solution: str
    wrong_answers: tuple = ()

    def typical_mistakes(self):
        """Every ``(make_answer, words_of_the_hint)`` pair: the exercise's own and its judge's."""
        return tuple(self.wrong_answers) + tuple(getattr(self.judge, "mistakes", ()))


def show(value):
    """A number or a tuple of numbers as short text: ``0.000655``, ``(0.032, -0.063)``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ")"
    return f"{value:.3g}"


class FormatProblem(str):
    """A judge's message for an answer it could not read (text that is not a number, a list of the wrong
    length): :func:`~gradcourse.exercises.check` reports it as "not read", not as a wrong answer."""


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺−", "0123456789-+-")
_POWER_OF_TEN = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))\s*(?:[×x*·]\s*10\s*(?:\^|\*\*)?\s*\(?([+-]?\d+)\)?)?")


def number_from_text(text):
    """The number a learner wrote as text, or None: ``"6.55e-4"``, ``"6.55×10⁻⁴"``, ``"6.55 x 10^-4"``,
    ``"6.55*10**-4"`` all read as 0.000655. Anything else (words, a comma, two numbers) gives None."""
    plain = text.strip().translate(_SUPERSCRIPTS)
    try:
        return float(plain)
    except ValueError:
        pass
    found = _POWER_OF_TEN.fullmatch(plain)
    if found is None or found.group(2) is None:
        return None
    return float(found.group(1)) * 10.0 ** int(found.group(2))


def as_numbers(answer, count):
    """The answer as a tuple of ``count`` finite floats, or None: a real number (not a bool), a
    NumPy number, a tensor, a number written as text (:func:`number_from_text`) or a list, tuple or
    array of ``count`` of them."""
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().reshape(-1).tolist()
    elif hasattr(answer, "tolist") and not isinstance(answer, (str, bytes)):   # NumPy arrays and numbers
        answer = answer.tolist()
    values = list(answer) if isinstance(answer, (list, tuple)) else [answer]
    values = [number_from_text(v) if isinstance(v, str) else v for v in values]
    if len(values) != count or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return None
    values = tuple(float(v) for v in values)
    return values if all(math.isfinite(v) for v in values) else None


class Number:
    """Judge a number (or a tuple of numbers) against ``expected``.

    ``expected`` may be a function, called at each check: a "predict, then run" exercise runs its
    experiment there. An answer is right when every entry is within ``rel_tol`` or ``abs_tol`` of it,
    or, with ``factor``, within that factor of it (for answers that span decades, such as 5e-12).
    ``mistakes`` lists ``(wrong_value, hint)``: an answer close to a wrong value gets that hint.
    Any other answer that is the expected one times a power of ten, or with its sign flipped, is
    told so; the rest get ``hint``. ``explain`` follows "right"; ``{expected}`` in it or in a hint
    shows the expected value.
    """

    def __init__(self, expected, *, explain, hint, mistakes=(), rel_tol=0.01, abs_tol=0.0, factor=None):
        self.expected = expected
        self.count = len(expected) if isinstance(expected, tuple) else 1   # a function gives one number
        self.explain, self.hint = explain, hint
        self.rel_tol, self.abs_tol, self.factor = rel_tol, abs_tol, factor
        self.table = tuple(mistakes)
        self.mistakes = tuple((lambda value=value: value, words) for value, words in self.table)

    def _close(self, values, target):
        target = target if isinstance(target, tuple) else (target,)
        if self.factor is not None:
            return all(a * b > 0 and max(a / b, b / a) <= self.factor for a, b in zip(values, target))
        return all(math.isclose(a, b, rel_tol=self.rel_tol, abs_tol=self.abs_tol) for a, b in zip(values, target))

    def __call__(self, answer):
        values = as_numbers(answer, self.count)
        if values is None:
            wanted = "a number" if self.count == 1 else f"{self.count} numbers in a tuple, e.g. (0.1, -0.2)"
            return False, FormatProblem(f"give {wanted}, such as 0.000655 or 6.55e-4 (a format problem, not a wrong "
                                        f"answer); got {_checks.describe(answer)}.")
        expected = self.expected() if callable(self.expected) else self.expected
        words = self._verdict(values, expected if isinstance(expected, tuple) else (expected,))
        return words is None, (self.explain if words is None else words).replace("{expected}", show(expected))

    def _verdict(self, values, expected):
        """None if ``values`` is right, else the hint for it."""
        if self._close(values, expected):
            return None
        for value, words in self.table:
            if self._close(values, value):
                return words
        for power in (1, 2, 3, -1, -2, -3):
            if self._close(values, tuple(e * 10.0 ** power for e in expected)):
                return f"off by a factor of 10^{power}: your answer is {10.0 ** power:g} times the right one."
        if self._close(values, tuple(-e for e in expected)):
            return "right size, wrong sign."
        return self.hint


class Entries:
    """Judge a tuple of numbers entry by entry. ``entries`` maps each entry's name to its own
    :class:`Number` (its ``explain`` unused), so a wrong answer is told which entries are wrong,
    each with its own hint; ``explain`` follows "right"."""

    def __init__(self, entries, *, explain):
        self.names, self.judges, self.explain = tuple(entries), tuple(entries.values()), explain
        self.mistakes = tuple((lambda i=i, make=make: self._with(i, make()), f"{name}: {words}")
                              for i, (name, judge) in enumerate(entries.items()) for make, words in judge.mistakes)

    def _with(self, index, value):
        """The right answer with entry ``index`` replaced by ``value``."""
        return tuple(value if i == index else judge.expected for i, judge in enumerate(self.judges))

    def __call__(self, answer):
        values = as_numbers(answer, len(self.judges))
        if values is None:
            return False, FormatProblem(f"give {len(self.judges)} numbers in a tuple, ({', '.join(self.names)}) (a format "
                                        f"problem, not a wrong answer); got {_checks.describe(answer)}.")
        verdicts = [(name, judge(value)) for name, judge, value in zip(self.names, self.judges, values)]
        wrong = [f"{name}: {words}" for name, (correct, words) in verdicts if not correct]
        return not wrong, " ".join(wrong) if wrong else self.explain


def normalise_choice(answer):
    """A choice as its first word, lower case, without punctuation: ``"Below 1."`` -> ``"below"``."""
    if not isinstance(answer, str) or not answer.split():
        return None
    return answer.split()[0].strip(".,;:!?'\"").lower()


class Choice:
    """Judge a prediction among ``options`` against an experiment run on the spot.

    ``run()`` performs the experiment and returns ``(right_option, report)``, where ``report`` says
    what it measured; ``hints`` maps a wrong option to why it is wrong. ``mistakes`` (for the tests)
    pairs each hinted option with the hint's text.
    """

    def __init__(self, options, run, hints):
        self.options, self.run, self.hints = tuple(options), run, dict(hints)
        self.mistakes = tuple((lambda option=option: option, words) for option, words in self.hints.items())

    def __call__(self, answer):
        choice = normalise_choice(answer)
        if choice not in self.options:
            return False, f"answer with one of {', '.join(repr(o) for o in self.options)}; got {_checks.describe(answer)}."
        right, report = self.run()
        if choice == right:
            return True, report
        return False, f"{self.hints.get(choice, '')} {report}".strip()


def mlp_mismatch(model, *, activation, init, width=None, min_depth=10):
    """Why ``model`` is not the network an exercise asks for (a sentence), or None if it is: a
    :class:`~gradcourse.core.models.MLP` with this activation and init, at least ``min_depth`` hidden
    layers and, when given, hidden layers of ``width`` units."""
    if not isinstance(model, MLP):
        return f"build a gc.MLP (got {_checks.describe(model)})."
    wanted = {"activation": activation, "init": init}
    for name, value in wanted.items():
        if getattr(model, name) != value:
            return f"keep {name}={value!r} (got {name}={getattr(model, name)!r}): the exercise is about the scale."
    if len(model.blocks) < min_depth:
        return f"keep a deep network: at least {min_depth} hidden layers (got depth={len(model.blocks)})."
    if width is not None and model.output.in_features != width:
        return f"keep width={width} (got width={model.output.in_features}): the right scale depends on it."
    return None


def known_mistake(value, mistakes, rel_tol=0.02):
    """The hint of the first ``(wrong value, hint)`` of ``mistakes`` within ``rel_tol`` of ``value``, else None:
    how a built answer's setting (a gain, a bound, a learning rate) is matched to a likely mistake."""
    return next((hint for wrong, hint in mistakes if math.isclose(value, wrong, rel_tol=rel_tol)), None)


def measured_factor(model, **wanted):
    """``(rho, None)`` with rho the :func:`per_layer_factor` of ``model`` as its recipe draws it from seed 0
    (:func:`redrawn_mlp`); ``(None, why)`` when ``model`` is not the network the exercise asks for (``wanted``
    as in :func:`mlp_mismatch`)."""
    why = mlp_mismatch(model, **wanted)
    return (None, why) if why else (per_layer_factor(redrawn_mlp(model)), None)


def seeded(build, seed=0):
    """``build()`` called after ``torch.manual_seed(seed)``, torch's random generators given back as they were."""
    with generators_restored():
        torch.manual_seed(seed)
        return build()


def mlp_recipe(model):
    """The keyword arguments of :class:`~gradcourse.core.models.MLP` that build ``model`` again."""
    first = model.blocks[0]
    norm = {torch.nn.BatchNorm1d: "batch", torch.nn.LayerNorm: "layer"}.get(type(first.norm))
    residual = model.blocks[1].residual if len(model.blocks) > 1 else False   # True, False or "pre"
    return dict(in_features=first.linear.in_features, out_features=model.output.out_features,
                width=model.output.in_features, depth=len(model.blocks), activation=model.activation,
                init=model.init, init_scale=model.init_scale, norm=norm, residual=residual,
                output_scale=model.output_scale)


def _set_by_hand(mine, drawn):
    """Whether ``mine`` cannot be a draw like ``drawn``: constant (a fill), or root-mean-squares more than 10% +
    3/sqrt(n) apart (two draws of n entries differ by about 1/sqrt(2n)). A single number counts as a draw."""
    mine, drawn = mine.detach().double().reshape(-1), drawn.detach().double().reshape(-1)
    ratio = (mine.pow(2).mean().sqrt() / drawn.pow(2).mean().sqrt()).item()
    return mine.numel() > 1 and (bool((mine == mine[0]).all()) or abs(ratio - 1) > 0.1 + 3 / math.sqrt(mine.numel()))


def redrawn(model, build, seed=0, chunks=None):
    """A copy of ``model`` whose random draws are those ``build()`` (the same recipe) makes from ``seed``
    (:func:`seeded`): a check then measures the recipe, not the draw the learner's call happened to make.
    A tensor of the state (same name and shape) that ``build`` draws at random (seeds ``seed`` and ``seed + 1``
    differ) is taken from the seeded draw unless :func:`_set_by_hand` (a bias filled with 3, weights times 0.1);
    one the recipe sets (BatchNorm's gain, a forget bias) is kept, and so is a parametrization (a weight's
    ``parametrizations.weight.original`` is the recipe's ``weight``). ``chunks`` maps a tensor's name to a number
    of equal pieces along its first dimension, compared one by one (a GRU's bias holds three gates)."""
    copied, chunks = copy.deepcopy(model), chunks or {}
    first, second = (seeded(build, s).state_dict() for s in (seed, seed + 1))
    with torch.no_grad():
        for name, value in copied.state_dict().items():
            key = name.replace("parametrizations.", "").replace(".original", "")
            new, pieces = first.get(key), chunks.get(key, 1)
            if new is None or new.shape != value.shape or not value.is_floating_point():
                continue
            for mine, drawn, other in zip(value.chunk(pieces), new.chunk(pieces), second[key].chunk(pieces)):
                if not torch.equal(drawn, other) and not _set_by_hand(mine, drawn):
                    mine.copy_(drawn)
    return copied


def redrawn_mlp(model, seed=0):
    """:func:`redrawn` for a course MLP: its recipe (:func:`mlp_recipe`) drawn from ``seed``."""
    return redrawn(model, lambda: MLP(**mlp_recipe(model)), seed)


def per_layer_factor(model, samples=256, seed=0):
    """The per-layer factor ``rho = (||dL/dh_1|| / ||dL/dh_L||)^(1/(L-1))`` of a course MLP,
    measured by one forward and backward pass on ``samples`` N(0, 1) inputs with random labels
    drawn from a generator seeded with ``seed`` (torch's global generator is not used)."""
    generator = torch.Generator().manual_seed(seed)
    first = model.blocks[0].linear
    X = torch.randn(samples, first.in_features, generator=generator, dtype=first.weight.dtype)
    y = torch.randint(0, model.output.out_features, (samples,), generator=generator)
    norms = activation_gradient_norms(model, X, y)
    return (norms[0] / norms[-1]) ** (1 / (len(norms) - 1))
