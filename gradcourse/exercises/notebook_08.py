"""Exercises of notebook 08, LSTM and gated RNNs."""

from __future__ import annotations

import math

import torch

from ..core import _checks
from ..core.data import adding_problem
from ..core.models import SequenceRegressor
from ..core.runtime import generators_restored
from ..lessons.sequences import lstm_gates, timestep_gradient_norms
from .judging import Choice, Exercise, Number, redrawn

__all__ = ["EXERCISES"]

_MEAN_BASELINE = Number(
    1 / 24,
    explain="the mean m = (u_a + u_b) / 2 has mean 1/2 and variance (1/12 + 1/12) / 4 = 1/24, so the best constant, "
            "1/2, scores MSE 1/24 = 0.0417.",
    hint="the best constant is the target's mean, and it scores the target's variance; Var(c X) = c^2 Var(X).",
    mistakes=[(1 / 6, "1/6 is the variance of the sum; halving the target divides its variance by 2^2 = 4."),
              (1 / 12, "halving the target divides the variance by 4, not 2: Var((u_a + u_b) / 2) = (2/12) / 4. "
                       "(1/12 is also the variance of one U[0, 1] value.)"),
              (1 / 48, "the two values add their variances: Var(u_a + u_b) = 2/12, then / 4 for the halving."),
              (0.25, "0.25 = (1/2)^2 is the square of the best constant; the MSE it scores is the target's variance.")])

_STEPS = 49
_GATE = 0.01 ** (1 / _STEPS)
_BIAS = math.log(_GATE / (1 - _GATE))
_FORGET_BIAS = Number(
    _BIAS,
    explain=f"the direct path keeps f^49 = 0.01 when f = 0.01^(1/49) = {_GATE:.4f}, and sigma(b_f) = f gives "
            f"b_f = ln(f / (1 - f)) = {_BIAS:.3f}: more than twice Jozefowicz et al.'s 1, which keeps only 0.73^49 = 2e-7.",
    hint="solve f^49 = 0.01 for the gate value f, then sigma(b_f) = f for the bias: b_f = ln(f / (1 - f)).",
    mistakes=[(_GATE, f"{_GATE:.4f} is the gate value f; the bias is its logit, b_f = ln(f / (1 - f))."),
              (math.log(_GATE), "ln f is not the bias: sigma(b) = f gives b = ln(f / (1 - f))."),
              (math.log(0.99 / 0.01), "0.01 is what must survive all 49 steps, f^49 = 0.01, not what each step may lose."),
              (1.0, "forget bias 1 keeps only 0.73^49 = 2e-7 along the direct path."),
              (-math.log(1 - _GATE), "sigma(b) = 1 / (1 + e^-b) = f gives b = ln(f / (1 - f)), not -ln(1 - f).")])

_SEED, _LENGTH, _HIDDEN, _VAL_SIZE, _PROBE = 0, 50, 32, 1000, 256


def _probe():
    """Notebook 08's probe batch: the first 256 validation sequences of length 50."""
    X, y = adding_problem(_VAL_SIZE, _LENGTH, seed=_SEED + 1)
    return X[:_PROBE], y[:_PROBE]


def _ratio(model, X, y):
    norms = timestep_gradient_norms(model, X, y)
    return norms[0] / norms[-1]


def _lstm_against_direct_path():
    X, y = _probe()
    with generators_restored():
        torch.manual_seed(_SEED)
        model = SequenceRegressor("lstm", _HIDDEN, forget_bias=1.0)
    ratio = _ratio(model, X, y)
    gate = lstm_gates(model, X)["forget"].mean().item()
    direct = gate ** (_LENGTH - 1)
    report = (f"Measured (seed {_SEED}): ||dL/dh_1|| / ||dL/dh_{_LENGTH}|| = {ratio:.2g}, against the direct path's "
              f"{gate:.3f}^{_LENGTH - 1} = {direct:.2g}: {ratio / direct:.0f} times more. The paths through h_(t-1) "
              "into the gates add to the carousel.")
    return ("above" if ratio > direct else "below"), report


_ABOVE_DIRECT = Choice(["above", "below"], _lstm_against_direct_path, {
    "below": "the direct path is one of the routes the gradient takes from h_T back to h_1; the others, through "
             "h_(t-1) into the gates, add to it rather than cancel it here."})

_MAX_BIAS = math.log(0.99 / 0.01)   # update gate 0.99


def _gate_biases(model):
    """The mean bias of each GRU gate (PyTorch's order r, z, n), bias_ih + bias_hh."""
    total = (model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0).detach()
    return dict(zip("rzn", total.view(3, -1).mean(dim=1).tolist()))


def _redrawn_gru(model):
    """The learner's GRU with its random draws made by a fresh one of the same recipe from seed 0 (the gate
    biases set by hand kept as they are): :func:`~gradcourse.exercises.judging.redrawn`."""
    def build():
        return SequenceRegressor("gru", model.width, in_features=model.rnn.input_size,
                                 recurrent_scale=model.recurrent_scale)
    return redrawn(model, build, chunks={"rnn.bias_ih_l0": 3, "rnn.bias_hh_l0": 3})


def _gru_passes(model):
    if not isinstance(model, SequenceRegressor) or model.cell != "gru":
        return False, f'give a GRU: fresh("gru") with its update-gate bias raised (got {_checks.describe(model)}).'
    model = _redrawn_gru(model)   # the weights you did not set, drawn from seed 0: a copy
    bias = _gate_biases(model)
    if bias["z"] > _MAX_BIAS:
        return False, (f"update-gate bias {bias['z']:.3g}: the gate sits above 0.99, so the state takes in less than 1% "
                       f"of each new input, and sigma'(b) < 0.01 leaves the gate almost unable to learn. Keep it "
                       f"below ln(0.99 / 0.01) = {_MAX_BIAS:.2f}.")
    X, y = _probe()
    ratio = _ratio(model, X, y)
    measured = (f"Measured ||dL/dh_1|| / ||dL/dh_{_LENGTH}|| = {ratio:.2g} (update-gate bias {bias['z']:.3g}; the "
                "other weights drawn with seed 0).")
    if ratio >= 0.01:
        return True, (f"{measured} With z near 1, h_t = (1 - z) n_t + z h_(t-1) mostly keeps h_(t-1): the GRU's own "
                      "carousel.")
    if bias["z"] < -0.5:
        return False, (f"{measured} h_t = (1 - z_t) n_t + z_t h_(t-1): the state is kept when z is near 1, so raise "
                       "the update gate's bias, do not lower it.")
    if max(bias["r"], bias["n"]) > 0.5:
        gate = "reset gate's" if bias["r"] > bias["n"] else "candidate's"
        return False, (f"{measured} You raised the {gate} bias. PyTorch orders a GRU's gates r, z, n: the update "
                       "gate is the slice [H:2*H].")
    return False, (f"{measured} Not yet: the direct path keeps about sigma(b)^49 of the gradient; raise the "
                   "update gate's bias further.")


def _gru(update_bias, gate_slice=1):
    def build():
        model = SequenceRegressor("gru", _HIDDEN)
        with torch.no_grad():
            model.rnn.bias_ih_l0[gate_slice * _HIDDEN:(gate_slice + 1) * _HIDDEN] = update_bias
            model.rnn.bias_hh_l0[gate_slice * _HIDDEN:(gate_slice + 1) * _HIDDEN] = 0.0
        return model
    return build


EXERCISES = [
    Exercise("08.1", "compute",
             "Pascanu et al.'s variant of the adding problem asks for the mean (u_a + u_b) / 2 of the two marked values. "
             "What MSE does the best constant prediction score there?",
             _MEAN_BASELINE, lambda: 1 / 24, r"""
The best constant is the target's mean, and its MSE is the target's variance. For $m = (u_a + u_b)/2$:
$$\mathbb{E}[m] = \tfrac12, \qquad \mathrm{Var}(m) = \tfrac14\,\mathrm{Var}(u_a + u_b) = \tfrac14\Big(\tfrac1{12} + \tfrac1{12}\Big) = \tfrac1{24} \approx 0.0417 .$$
Halving the target quarters the baseline (1/6 for the sum): scores on the two variants differ by a factor of 4.
Check on the data: `((y_val / 2 - 0.5) ** 2).mean()`.
"""),
    Exercise("08.2", "compute",
             "Along the direct path the gradient crossing 49 steps is multiplied by f^49, with f about sigma(b_f). "
             "What forget bias b_f keeps 1% of it (f^49 = 0.01)?",
             _FORGET_BIAS, lambda: _BIAS, r"""
First the gate: $f^{49} = 0.01$ gives $f = 0.01^{1/49} = e^{\ln(0.01)/49} = e^{-0.0940} \approx 0.9103$. Then the bias:
$\sigma(b_f) = f$ inverts to the logit,
$$b_f = \ln\frac{f}{1 - f} = \ln\frac{0.9103}{0.0897} \approx 2.32 .$$
Check: `gc.theory.sigmoid(2.32) ** 49` is about 0.01, and a fresh
`gc.models.SequenceRegressor("lstm", HIDDEN, forget_bias=2.32)` has mean forget gate about 0.91. The notebook's
$b_f = 1$ keeps $0.73^{49} \approx 2\times10^{-7}$. A larger bias keeps more, but the gate's own derivative
$\sigma'(b_f)$ shrinks (0.082 at 2.32, 0.20 at 1), and with it how fast the gate can learn to forget.
"""),
    Exercise("08.3", "predict",
             "At initialization, will the LSTM with forget bias 1 pass a ratio ||dL/dh_1|| / ||dL/dh_T|| 'above' or "
             "'below' its direct-path prediction f^49?",
             _ABOVE_DIRECT, lambda: "above", r"""
**Above.** $\partial L/\partial h_1$ sums every path from $h_T$ back to $h_1$: the direct one along the cell state,
$\prod_t \mathrm{diag}(f_t)$, and the paths that leave it through $h_{t-1}$ into the gates and the candidate. The
other paths do not cancel the direct one here; they add to it, and the measured ratio lies well above $\bar f^{49}$ (the
notebook's check asserts at least the direct path, for both forget biases):
```python
m = fresh("lstm", forget_bias=1.0)
norms = gc.sequences.timestep_gradient_norms(m, X_probe, y_probe)
norms[0] / norms[-1], gc.sequences.lstm_gates(m, X_probe)["forget"].mean().item() ** 49
```
The direct path is a floor, not the whole story; after training (section 4) it is the path that carries the memory.
"""),
    Exercise("08.4", "build",
             "Raise the update-gate bias of a fresh GRU so that it passes at least 1% of the gradient from T = 50 back to "
             "t = 1 at initialization (update gate below 0.99).",
             _gru_passes, _gru(3.0), r"""
A GRU keeps its state through the update gate, $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$: its direct path
multiplies by $z_t$ at each step, as the LSTM's does by $f_t$. PyTorch orders a GRU's gates $r, z, n$ in its weights
and biases, so the update gate is the slice `[H:2*H]`. Exercise 08.2's bias, about 2.3, keeps 1% along the
direct path; 3 leaves a margin:
```python
answer = fresh("gru")
with torch.no_grad():
    answer.rnn.bias_ih_l0[HIDDEN:2 * HIDDEN] = 3.0
    answer.rnn.bias_hh_l0[HIDDEN:2 * HIDDEN] = 0.0
```
The ratio goes from below $10^{-8}$ to about 0.1. Not too far: above $\ln(0.99/0.01) \approx 4.6$ the gate stays
above 0.99, the state takes in less than 1% of each new input, and $\sigma'(b) < 0.01$ leaves the gate almost
unable to learn.
""", ((_gru(3.0, gate_slice=0), "the update gate is the slice [H:2*H]"),
      (_gru(3.0, gate_slice=2), "the update gate is the slice [H:2*H]"),
      (_gru(-3.0), "do not lower it"), (_gru(1.0), "raise the update gate's bias further"),
      (_gru(8.0), "almost unable to learn"))),
]
