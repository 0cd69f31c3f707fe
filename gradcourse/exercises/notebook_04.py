"""Exercises of notebook 04, weight initialization."""

from __future__ import annotations

import math

from ..core.data import load_mnist
from ..lessons.initialization import first_loss
from ..core.models import MLP
from .judging import Entries, Exercise, Number, measured_factor, mlp_mismatch, redrawn_mlp

__all__ = ["EXERCISES"]

_HE_STD = Number(
    math.sqrt(2 / 256),
    explain="He: Var(w) = 2 / n_in with n_in = 256, std = sqrt(2/256) = 0.0884.",
    hint="He init keeps the forward signal of a ReLU layer: Var(w) = 2 / fan_in; the std is its square root.",
    mistakes=[(math.sqrt(1 / 256), "forgot that ReLU halves the second moment: He doubles LeCun's 1 / n_in to 2 / n_in."),
              (math.sqrt(2 / 128), "used fan-out (128 outputs); He's std takes fan-in, the 256 inputs."),
              (2 / 256, "2 / 256 is the variance; the std is its square root."),
              (2 / 128, "2 / 128 is a variance, and with fan-out: He's std is sqrt(2 / fan_in)."),
              (math.sqrt(2 / (256 + 128)), "that is Xavier's std, for tanh; ReLU needs He's sqrt(2 / fan_in)."),
              (math.sqrt(6 / 256), "that is the bound a of He's uniform variant (a = sqrt(3) * std); the question asks "
                                   "for the std.")])

_UNIFORM_LOSS = Number(
    math.log(10),
    explain="a network whose output ignores its input can at best predict the class frequencies, 1/10 each: "
            "loss -ln(1/10) = ln 10 = 2.303.",
    hint="what cross-entropy does a network give that predicts every one of the ten classes with probability 1/10?",
    mistakes=[(0.0, "a loss of 0 means perfect predictions; this network barely changes its first 29 layers."),
              (math.log2(10), "PyTorch's cross-entropy uses the natural logarithm: ln 10, not log2 10."),
              (1.0, "PyTorch's cross-entropy uses the natural logarithm: ln 10, not log10 10."),
              (0.1, "0.1 is chance accuracy; the question asks for the loss."),
              (0.9, "0.9 is chance error rate; the question asks for the loss."),
              (10.0, "the loss of a uniform guess over 10 classes is ln 10, not 10.")])

_PRIOR = (0.8, 0.1, 0.1)
_PRIOR_ENTROPY = -sum(p * math.log(p) for p in _PRIOR)
_FIRST_LOSSES = Entries({
    "equal logits": Number(
        math.log(3), explain="",
        hint="equal logits give every class the same probability: what does each example then cost?",
        mistakes=[(_PRIOR_ENTROPY, "that is H(p), the loss when the network predicts the prior; equal logits predict "
                                   "1/3 for every class whatever the prior, so every example costs -ln(1/3) = ln 3."),
                  (1 / 3, "1/3 is the probability each class gets; the loss is -ln(1/3) = ln 3."),
                  (math.log2(3), "PyTorch's cross-entropy uses the natural logarithm: ln 3, not log2 3."),
                  (math.log10(3), "PyTorch's cross-entropy uses the natural logarithm: ln 3, not log10 3."),
                  (math.log(10), "ln 10 is for ten classes; this classifier has three.")]),
    "bias ln p": Number(
        _PRIOR_ENTROPY, explain="",
        hint="softmax(ln p) = p: an example of class k costs -ln p_k, and a share p_k of the examples are of class k.",
        mistakes=[(math.log(3), "ln 3 is the loss of equal logits; with b_k = ln p_k the network predicts p itself, "
                                "and its mean loss is the entropy H(p) = -sum p_k ln p_k."),
                  (_PRIOR_ENTROPY / math.log(2), "that is H(p) in bits (log2); PyTorch's cross-entropy uses the "
                                                 "natural logarithm."),
                  (_PRIOR_ENTROPY / math.log(10), "that is H(p) with log10; PyTorch's cross-entropy uses the natural "
                                                  "logarithm."),
                  (-math.log(0.8), "-ln 0.8 is what one example of class 0 costs; the classes 1 and 2 (a fifth of the "
                                   "examples) cost -ln 0.1 each: average over all, sum p_k (-ln p_k)."),
                  (math.log(3) - _PRIOR_ENTROPY, "ln 3 - H(p) is what the bias saves (the KL divergence of p from the "
                                                 "uniform distribution); the question asks for the loss itself."),
                  (sum(p * p for p in _PRIOR), "sum p_k^2 is the chance that two draws agree, not a cross-entropy."),
                  (0.0, "a loss of 0 needs perfect predictions; a bias ignores the input and can at best predict "
                        "the class frequencies.")]),
}, explain="equal logits cost ln 3 = 1.099 whatever the prior; the bias b_k = ln p_k predicts the prior, whose "
           "cross-entropy is its entropy H(p) = 0.639: 0.460 less, the drop the first steps would otherwise spend "
           "learning the bias.")


def _orthogonal_relu(model):
    rho, why = measured_factor(model, activation="relu", init="orthogonal")
    if why:
        return False, why
    measured = f"Measured per-layer factor (your settings, weights drawn with seed 0): {rho:.3f}."
    if abs(rho - 1) <= 0.05:
        return True, f"{measured} An orthogonal layer keeps the norm, ReLU halves its square: gain sqrt(2) puts it back."
    if math.isclose(model.init_scale, 1.0, rel_tol=0.02):
        return False, (f"{measured} Forgot that ReLU halves the second moment: orthogonal W keeps ||x||, but ReLU "
                       "zeroes about half of the entries, so rho = g / sqrt(2).")
    if math.isclose(model.init_scale, 2.0, rel_tol=0.02):
        return False, (f"{measured} The gain multiplies the singular values, like a std: 2 doubles the second moment "
                       "twice over. Undo ReLU's factor 1/2 on the second moment, not on the norm.")
    direction = "too large: lower init_scale" if rho > 1 else "too small: raise init_scale"
    return False, f"{measured} The gain is {direction}; with ReLU, rho = g / sqrt(2)."


def _first_loss_at_ln_10(model):
    why = mlp_mismatch(model, activation="relu", init="kaiming", min_depth=2)
    if why:
        return False, why
    if not math.isclose(model.init_scale, 1.0, rel_tol=1e-6):
        return False, (f"keep init_scale=1 (got {model.init_scale:g}): shrinking every layer also shrinks the signal "
                       "and the gradient in the hidden layers; shrink only the last layer.")
    X, y = load_mnist("train", limit=256)
    loss = first_loss(redrawn_mlp(model), X, y)
    measured = (f"First loss on the 256 probe digits (your settings, weights drawn with seed 0): {loss:.3f} "
                f"(ln 10 = {math.log(10):.3f}).")
    if abs(loss / math.log(10) - 1) <= 0.05:
        return True, (f"{measured} Small logits give every class about 1/10: loss ln 10 + s^2/2 for logits of "
                      "spread s, and the hidden layers keep He init's steady signal.")
    if loss > math.log(10):
        return False, (f"{measured} A confident start: the logits spread too far (loss about ln 10 + s^2/2). "
                       "Shrink the output layer's initial weights with output_scale.")
    return False, f"{measured} Below ln 10 before any training is luck, not a good init: check the network."


def _first_loss_mlp(output_scale, init_scale=1.0):
    return lambda: MLP(depth=3, width=128, activation="relu", init="kaiming", init_scale=init_scale,
                       output_scale=output_scale)


def _orthogonal_mlp(init_scale):
    return lambda: MLP(depth=30, width=64, activation="relu", init="orthogonal", init_scale=init_scale)


EXERCISES = [
    Exercise("04.1", "compute",
             "A ReLU layer nn.Linear(256, 128) (256 inputs, 128 outputs): what standard deviation does He init "
             "give its weights?",
             _HE_STD, lambda: math.sqrt(2 / 256), r"""
He et al. keep the second moment of a ReLU layer's output: $\mathrm{Var}(z_l) = \tfrac12\, n_{in} \mathrm{Var}(w)\, \mathrm{Var}(z_{l-1})$,
steady when $\mathrm{Var}(w) = 2/n_{in}$. Here $n_{in} = 256$ (fan-in: the inputs; `nn.Linear(256, 128).weight` has shape
$128 \times 256$), so
$$\mathrm{std} = \sqrt{2/256} = \sqrt2/16 \approx 0.0884 .$$
Check: `torch.nn.init.kaiming_normal_(torch.empty(128, 256), nonlinearity="relu").std()`, or
`torch.nn.init.calculate_gain("relu") / math.sqrt(256)`.
"""),
    Exercise("04.2", "predict",
             "Before the next cell trains them: predict the training loss at which the 30-layer ReLU network with "
             "std sqrt(1/n) stays.",
             _UNIFORM_LOSS, lambda: math.log(10), r"""
With std $\sqrt{1/n}$ each ReLU layer halves the second moment: the signal reaching the output, and the gradient
reaching the first layers, shrink by $\sqrt2$ per layer, $2^{-29/2} \approx 4\times10^{-5}$ over the network. The
logits hardly depend on the input, so the best the network can do is learn the output bias, which matches the
class frequencies: about $1/10$ for each of the ten balanced classes. Cross-entropy (natural log) is then
$$-\ln\tfrac{1}{10} = \ln 10 \approx 2.303 .$$
Watch for it below: the fan-in Xavier run's loss stays within 0.01 of $\ln 10$.
"""),
    Exercise("04.3", "build",
             "Build a 30-layer ReLU MLP of width 64 with init='orthogonal' whose backward signal keeps its size: "
             "a per-layer factor within 5% of 1.",
             _orthogonal_relu, _orthogonal_mlp(math.sqrt(2)), r"""
An orthogonal $W$ (times a gain $g$) multiplies every norm by exactly $g$. ReLU then zeroes about half of the
entries, so it halves the squared norm, of the signal going up and of the gradient going down:
$\lVert \partial L/\partial h_{l-1}\rVert^2 \approx g^2 \cdot \tfrac12\, \lVert \partial L/\partial h_l\rVert^2$. The factor is
$\rho = g/\sqrt2$, and $\rho = 1$ needs $g = \sqrt2$, PyTorch's `torch.nn.init.calculate_gain("relu")`:
```python
answer = gc.MLP(depth=30, width=64, activation="relu", init="orthogonal",
                init_scale=math.sqrt(2))
```
It is He's argument again, with orthogonal matrices in place of Gaussian ones.
""", ((_orthogonal_mlp(1.0), "halves the second moment"), (_orthogonal_mlp(2.0), "multiplies the singular values"))),
    Exercise("04.4", "build",
             "Build a ReLU MLP with He init (init='kaiming', init_scale=1) whose first loss on the probe digits is "
             "within 5% of ln 10.",
             _first_loss_at_ln_10, _first_loss_mlp(0.1), r"""
Before any training a network should not prefer any class: each of the ten gets probability about $1/10$ and the
cross-entropy is $-\ln\tfrac1{10} = \ln 10 \approx 2.303$. For logits $z$ of small spread $s$ across the classes,
a second-order expansion of $\log\sum_k e^{z_k}$ gives a loss of about $\ln 10 + s^2/2$. He init keeps the hidden
layers' signal steady, and its output layer passes that signal on at full size: logits of spread above 1, a loss
well above $\ln 10$. Shrink only the output layer, so the hidden layers keep their steady signal:
```python
answer = gc.MLP(depth=3, width=128, activation="relu", init="kaiming", output_scale=0.1)
```
Shrinking every layer (`init_scale=0.1`) also puts the loss at $\ln 10$, but with a signal that shrinks tenfold per
layer: the vanishing gradient of notebook 02.
""", ((_first_loss_mlp(1.0), "confident start"), (_first_loss_mlp(1.0, init_scale=0.1), "keep init_scale=1"))),
    Exercise("04.5", "compute",
             "Three classes with prior p = (0.8, 0.1, 0.1): the expected first loss (a) with equal logits, (b) with "
             "the output bias at b_k = ln p_k.",
             _FIRST_LOSSES, lambda: (math.log(3), _PRIOR_ENTROPY), r"""
**(a) Equal logits.** Softmax gives each of the three classes probability $1/3$, so every example costs
$-\ln\tfrac13 = \ln 3 \approx 1.099$, whatever its class: the mean is $\ln 3$ for any prior.

**(b) Bias at the log prior.** $\mathrm{softmax}(b)_k = p_k / \sum_j p_j = p_k$: the network predicts the prior. An
example of class $k$ costs $-\ln p_k$, and a share $p_k$ of the examples are of class $k$, so
$$\mathbb{E}[\text{loss}] = -\sum_k p_k \ln p_k = H(p) = -(0.8\ln 0.8 + 2\cdot 0.1 \ln 0.1) = 0.179 + 0.461 = 0.639 .$$
The bias saves $\ln 3 - H(p) = 0.460$, the KL divergence of $p$ from the uniform distribution: the drop that the
first steps of training would otherwise spend learning the bias. Check:
`torch.distributions.Categorical(probs=torch.tensor([0.8, 0.1, 0.1])).entropy()`.
```python
answer = (math.log(3), -(0.8 * math.log(0.8) + 2 * 0.1 * math.log(0.1)))
```
"""),
]
