"""Gradients through time in recurrent networks: how much of the loss's gradient reaches step t.

A recurrent layer applies the same cell at every step, ``h_t = cell(x_t, h_{t-1})``, so
backpropagation through time multiplies one Jacobian per step:

    dL/dh_t = (dh_{t+1}/dh_t)^T dL/dh_{t+1} = (prod_{s=t+1}^{T} dh_s/dh_{s-1})^T dL/dh_T .

For the vanilla RNN ``h_s = tanh(W_ih x_s + W_hh h_{s-1} + b)`` each factor is
``diag(1 - h_s^2) W_hh``; since ``0 < tanh' <= 1``, ``||dL/dh_t|| <= ||W_hh||_2^(T-t) ||dL/dh_T||``,
so the gradient vanishes geometrically when W_hh's largest singular value is below 1 -- Pascanu,
Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks", section 2.1.

The LSTM's cell state adds a path ``c_s = f_s * c_{s-1} + i_s * g_s`` whose Jacobian along the
direct route is just ``diag(f_s)``: with forget gates near 1 the error flows back almost unchanged,
the "constant error carousel" of Hochreiter & Schmidhuber (1997), "Long Short-Term Memory".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core import _checks
from ..core.monitor.activation_summary import SATURATION
from ..core.models import SequenceRegressor
from ..core.norms import norm

__all__ = ["first_step_below", "gate_saturation", "latching_trials", "lstm_gates", "random_recurrence",
           "timestep_gradient_norms", "unrolled_states", "WRT"]

WRT = ("hidden", "input")


def _require_sequence_model(model):
    if not isinstance(model, SequenceRegressor):
        raise ValueError(f"model={_checks.describe(model)} is not allowed; it must be a "
                         "gradcourse.core.models.SequenceRegressor")
    return model


def _check_sequences(model, X, y):
    _checks.inputs_and_targets(X, y)
    if X.dim() != 3 or X.shape[2] != model.rnn.input_size:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must have shape (n, T, {model.rnn.input_size})")


def unrolled_states(model, X):
    """Run ``model``'s recurrent layer one step at a time and return its states and prediction.

    Returns ``(hidden, cell, prediction)``: ``hidden[t-1]`` is ``h_t`` of shape (n, width) for
    ``t = 1..T``, ``cell[t-1]`` is the LSTM's ``c_t`` (``cell`` is None for the RNN and GRU), and
    ``prediction = w^T h_T + b`` of shape (n,). Each step calls the model's own ``nn.RNN`` /
    ``nn.LSTM`` / ``nn.GRU`` on a length-1 sequence with the previous state, so the states are
    the very tensors the next step reads: gradients with respect to them are the full
    backpropagation-through-time gradients. The prediction equals ``model(X)``.
    """
    _require_sequence_model(model)
    if not isinstance(X, torch.Tensor) or X.dim() != 3 or not X.is_floating_point() \
            or X.shape[2] != model.rnn.input_size or X.shape[1] == 0:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a floating-point torch.Tensor "
                         f"of shape (n, T, {model.rnn.input_size}) with T >= 1")
    lstm = model.cell == "lstm"
    hidden, cell = [], []
    for t in range(X.shape[1]):
        if not hidden:
            state = None
        elif lstm:
            state = (hidden[-1].unsqueeze(0), cell[-1].unsqueeze(0))
        else:
            state = hidden[-1].unsqueeze(0)
        _, new = model.rnn(X[:, t:t + 1], state)
        if lstm:
            hidden.append(new[0][0])
            cell.append(new[1][0])
        else:
            hidden.append(new[0])
    prediction = model.output(hidden[-1]).squeeze(-1)
    return hidden, (cell if lstm else None), prediction


def timestep_gradient_norms(model, X, y, wrt="hidden"):
    """``||dL/dh_t||`` for every time step ``t = 1..T`` of a batch, with ``L`` the batch's mean squared error.

    Args:
        model: a :class:`~gradcourse.core.models.SequenceRegressor` (any of ``rnn``, ``lstm``, ``gru``).
        X, y: sequences of shape (n, T, in_features) and targets of shape (n,).
        wrt: ``"hidden"``: the hidden state ``h_t``; ``"input"``: the input ``x_t``.

    Returns:
        A list of T floats, entry ``t - 1`` for step t: the Frobenius norm (in float64, see
        :func:`gradcourse.core.norms.norm`) of the gradient with respect to that step's (n, ·) tensor.

    For ``h_t`` the layer is unrolled step by step (:func:`unrolled_states`), so each norm
    includes every path from step t to the loss:
    ``dL/dh_t = (prod_{s>t} dh_s/dh_{s-1})^T dL/dh_T`` for the RNN (see the module docstring).
    For the LSTM, whose state is the pair ``(h_t, c_t)``, it is the gradient with respect to
    ``h_t`` with ``c_t`` held fixed; the cell-state path from step t + 1 on still counts, since
    ``h_t`` feeds the gates that write ``c_{t+1}``. Uses :func:`torch.autograd.grad`, so the
    model's ``.grad`` fields are left untouched.
    """
    _require_sequence_model(model)
    _checks.choice("wrt", wrt, WRT)
    _check_sequences(model, X, y)
    with torch.enable_grad():
        if wrt == "input":
            X = X.detach().clone().requires_grad_(True)
            loss = F.mse_loss(model(X), y)
            (grad,) = torch.autograd.grad(loss, X)
            return [norm(grad[:, t]).item() for t in range(X.shape[1])]
        hidden, _, prediction = unrolled_states(model, X)
        loss = F.mse_loss(prediction, y)
        grads = torch.autograd.grad(loss, hidden)
    return [norm(g).item() for g in grads]


def lstm_gates(model, X):
    """The LSTM's gates at every step, computed by hand from its weights.

    PyTorch's ``nn.LSTM`` (gate order i, f, g, o in its weight matrices) computes, for each step,

        i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
        f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)       candidate
        o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
        c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t),   h_0 = c_0 = 0.

    Returns a dict of tensors of shape (n, T, width): ``"input"``, ``"forget"``, ``"candidate"``,
    ``"output"``, ``"cell"`` and ``"hidden"``; its ``"hidden"`` equals ``model.rnn(X)[0]``
    (checked in the tests), which is what makes these the gates the library uses.
    """
    _require_sequence_model(model)
    if model.cell != "lstm":
        raise ValueError(f"model has cell={model.cell!r}; lstm_gates needs an LSTM (cell='lstm')")
    if not isinstance(X, torch.Tensor) or X.dim() != 3 or not X.is_floating_point() or X.shape[2] != model.rnn.input_size:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be a floating-point torch.Tensor "
                         f"of shape (n, T, {model.rnn.input_size})")
    rnn = model.rnn
    n, T, H = X.shape[0], X.shape[1], rnn.hidden_size
    h = X.new_zeros(n, H)
    c = X.new_zeros(n, H)
    out = {name: [] for name in ("input", "forget", "candidate", "output", "cell", "hidden")}
    with torch.no_grad():
        for t in range(T):
            z = X[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
            i, f, g, o = z.split(H, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip(out, (i, f, g, o, c, h)):
                out[name].append(value)
    return {name: torch.stack(values, dim=1) for name, values in out.items()}


def gate_saturation(model, X):
    """Share of the LSTM's sigmoid gate values outside (0.03, 0.97), per gate, over a batch.

    A saturated gate has ``sigma' < 0.03``: it passes almost no gradient to its weights, and a
    forget gate stuck at 0 or 1 no longer depends on the input. Returns
    ``{"input": share, "forget": share, "output": share}`` (floats in [0, 1]); the interval is
    :data:`gradcourse.core.monitor.activation_summary.SATURATION` ``["sigmoid"]``, the one the GradientMonitor uses.
    """
    low, high = SATURATION["sigmoid"]
    gates = lstm_gates(model, X)
    return {name: ((gates[name] < low) | (gates[name] > high)).double().mean().item()
            for name in ("input", "forget", "output")}


def first_step_below(losses, level, window=20):
    """The first training step at which the loss, averaged over the last ``window`` steps, is below ``level``.

    ``losses`` holds one value per step (e.g. ``History.loss``); step ``k`` (1-based) is
    ``mean(losses[k - window : k]) < level`` with ``k >= window``. Returns that ``k``, or None when
    the running mean never gets below ``level``. With ``level`` at a fraction of the baseline
    (half of the adding problem's 1/6, say) it marks when a recurrent network leaves the plateau
    on which it predicts a constant. A single batch is too noisy for that, hence the window.
    """
    if isinstance(losses, torch.Tensor):
        losses = losses.tolist()
    if not isinstance(losses, (list, tuple)) or not all(isinstance(v, (int, float)) for v in losses):
        raise ValueError(f"losses={_checks.describe(losses)} is not allowed; it must be a list of numbers "
                         "(one per step, e.g. History.loss)")
    level = _checks.number("level", level)
    window = _checks.integer("window", window, minimum=1)
    total = 0.0
    for k, value in enumerate(losses, start=1):
        total += value
        if k > window:
            total -= losses[k - window - 1]
        if k >= window and total / window < level:
            return k
    return None


def latching_trials(lengths, trials=100, latched_steps=3, noise=0.2, sequences=10, steps=150, lr=1.0,
                    target=0.8, tolerance=0.4, seed=0, progress=True):
    """Bengio, Simard & Frasconi's (1994, section IV) minimal latching task, trained by gradient descent.

    One tanh unit ``h_t = tanh(w h_{t-1} + u_t)`` from ``h_0 = 0`` must carry one bit, the class,
    from its first ``latched_steps`` inputs to step ``T``: for ``t <= latched_steps`` the inputs
    ``u_t`` are trainable, one set per class; after that they are Gaussian noise of std
    ``noise``. The targets are ``h_T = +target`` (class 1) and ``-target`` (class 2), with squared
    error over ``sequences`` noisy sequences per class. Latching needs ``w > 1`` (two stable
    states); staying latched through noise needs ``|tanh'| * w < 1`` near those states, which is
    exactly where ``dh_T/du_t`` vanishes for large ``T - t``: the trade-off the paper proves.

    ``trials`` independent units (``w ~ N(1, 0.1^2)``, ``u ~ N(0, 0.1^2)``, from a generator seeded
    by ``seed`` and the length) are trained for each length with ``steps`` full-batch SGD steps of
    rate ``lr``, all in one float64 batch (the shorter sequences are padded at the front with zero
    input, which leaves ``h = 0``, so a length gives the same result alone or with others). A trial
    *converges* when every training sequence ends within ``tolerance`` of its target: the
    paper's "density of training convergence". ``progress=True`` shows a ``tqdm.auto`` bar over the
    steps.

    Returns ``{T: {"converged": share of trials, "first_gradient": median |dL/du_1| at the first
    step, "final_loss": median loss at the end}}``.
    """
    lengths = list(lengths)
    if not lengths:
        raise ValueError("lengths=[] is not allowed; give at least one sequence length")
    latched_steps = _checks.integer("latched_steps", latched_steps, minimum=1)
    for length in lengths:
        _checks.integer("lengths[i]", length, minimum=latched_steps + 1)
    trials = _checks.integer("trials", trials, minimum=1)
    noise = _checks.number("noise", noise, minimum=0)
    sequences = _checks.integer("sequences", sequences, minimum=1)
    steps = _checks.integer("steps", steps, minimum=1)
    lr = _checks.number("lr", lr, minimum=0, strict_minimum=True)
    target = _checks.number("target", target, minimum=0, maximum=0.99, strict_minimum=True)   # tanh never reaches 1
    tolerance = _checks.number("tolerance", tolerance, minimum=0, strict_minimum=True)
    seed = _checks.integer("seed", seed, minimum=0)
    _checks.boolean("progress", progress)
    w, u, inputs, latched, where = _latching_units(lengths, trials, latched_steps, noise, sequences, seed)
    goal = torch.tensor([target, -target], dtype=torch.float64)[None, :, None]
    h, loss, first_gradient = _latching_descent(w, u, inputs, latched, where, goal, steps, lr, progress)
    converged = ((h - goal).abs() < tolerance).all(dim=2).all(dim=1)
    parts = {length: slice(i * trials, (i + 1) * trials) for i, length in enumerate(lengths)}
    return {length: {"converged": converged[part].double().mean().item(),
                     "first_gradient": first_gradient[part].median().item(),
                     "final_loss": loss[part].median().item()} for length, part in parts.items()}


def _latching_units(lengths, trials, latched_steps, noise, sequences, seed):
    """The units of :func:`latching_trials`, ``trials`` per length: ``w`` and ``u`` (requiring gradients), the noise
    ``inputs`` (units, 2, sequences, T_max; zero where padded or latched), the mask ``latched`` (units, T_max) of the
    steps that read a trainable input and ``where`` (units, 2, T_max), the index into ``u`` each of them reads."""
    longest, units = max(lengths), trials * len(lengths)
    w, u, inputs = [], [], torch.zeros(units, 2, sequences, longest, dtype=torch.float64)
    for i, length in enumerate(lengths):   # each length draws from its own generator: adding a length changes no other
        g = torch.Generator().manual_seed(seed * 10_007 + length)
        w.append(1 + 0.1 * torch.randn(trials, 1, 1, generator=g, dtype=torch.float64))
        u.append(0.1 * torch.randn(trials, 2, latched_steps, generator=g, dtype=torch.float64))
        inputs[i * trials:(i + 1) * trials, :, :, longest - length + latched_steps:] = noise * torch.randn(
            trials, 2, sequences, length - latched_steps, generator=g, dtype=torch.float64)
    starts = torch.tensor([longest - length for length in lengths]).repeat_interleave(trials)
    offset = torch.arange(longest)[None, :] - starts[:, None]               # step index within each sequence
    latched = (offset >= 0) & (offset < latched_steps)                       # where the trainable inputs go
    where = offset.clamp(0, latched_steps - 1)[:, None, :].expand(units, 2, longest)
    return torch.cat(w).requires_grad_(), torch.cat(u).requires_grad_(), inputs, latched, where


def _latching_descent(w, u, inputs, latched, where, goal, steps, lr, progress):
    """``steps`` full-batch SGD steps on each unit's ``mean((h_T - goal)^2)``; returns the last forward pass's
    ``h_T`` and losses, and each unit's mean ``|dL/du_1|`` at the first step, all detached."""
    units, sequences = inputs.shape[0], inputs.shape[2]
    optimizer = torch.optim.SGD([w, u], lr=lr)
    first_gradient = None
    for _ in tqdm(range(steps), desc=f"{units} latching trials", disable=not progress, mininterval=0.5):
        x = torch.where(latched[:, None, None, :], torch.gather(u, 2, where)[:, :, None, :], inputs)
        h = torch.zeros(units, 2, sequences, dtype=torch.float64)
        for x_t in x.unbind(-1):                 # unbind: one backward for all steps, not one zero-filled copy per step
            h = torch.tanh(w * h + x_t)
        loss = ((h - goal) ** 2).mean(dim=(1, 2))
        optimizer.zero_grad()
        loss.sum().backward()
        if first_gradient is None:
            first_gradient = u.grad[:, :, 0].abs().mean(dim=1).detach()
        optimizer.step()
    return h.detach(), loss.detach(), first_gradient


def random_recurrence(sigma_max, steps, width=32, in_features=4, input_scale=0.1, seed=0):
    """A seeded recurrence for :func:`gradcourse.lessons.theory.recurrent_jacobian_norms`: returns ``(W, U, inputs)``.

    ``W`` is a random orthogonal matrix (QR of a Gaussian matrix) times ``sigma_max``, so every
    singular value of W equals ``sigma_max``; ``U`` has N(0, input_scale^2) entries; the
    ``steps`` inputs are N(0, 1). All float64.
    """
    _checks.number("sigma_max", sigma_max, minimum=0, strict_minimum=True)
    _checks.integer("steps", steps, minimum=1)
    _checks.integer("width", width, minimum=1)
    _checks.integer("in_features", in_features, minimum=1)
    _checks.number("input_scale", input_scale, minimum=0)
    _checks.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(width, width, generator=g, dtype=torch.float64))
    U = input_scale * torch.randn(width, in_features, generator=g, dtype=torch.float64)
    inputs = torch.randn(steps, in_features, generator=g, dtype=torch.float64)
    return sigma_max * Q, U, inputs
