"""Recurrent models of the course (notebooks 06 and 08): :class:`SequenceRegressor`, a one-layer RNN, LSTM or
GRU that reads a sequence and predicts one number.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _checks

__all__ = ["CELLS", "SequenceRegressor"]

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceRegressor(nn.Module):
    """A one-layer recurrent network that reads a sequence and predicts one number.

    ``x_1 .. x_T -> h_1 .. h_T`` through :class:`torch.nn.RNN` (tanh), :class:`torch.nn.LSTM` or
    :class:`torch.nn.GRU`, then ``y_hat = w^T h_T + b``. Input shape ``(n, T, in_features)``,
    output shape ``(n,)``.

    * ``"rnn"``: ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)`` (Elman 1990).
    * ``"lstm"``: gates ``i, f, o = sigma(...)``, candidate ``g = tanh(...)``,
      ``c_t = f_t * c_{t-1} + i_t * g_t``, ``h_t = o_t * tanh(c_t)`` -- Hochreiter & Schmidhuber
      (1997), with the forget gate of Gers, Schmidhuber & Cummins (2000).
    * ``"gru"``: ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}`` -- Cho et al. (2014).

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        width: units in the recurrent layer (its hidden state's size).
        in_features: features per time step (2 for :func:`~gradcourse.core.data.adding_problem`).
        forget_bias: LSTM only. ``None`` keeps PyTorch's default init, where the forget gate's
            bias is U(-1/sqrt(width), 1/sqrt(width)) like every other bias; a number sets the
            forget-gate slice of ``bias_ih_l0`` (PyTorch's gate order is i, f, g, o, so the slice is
            ``[width:2*width]``) to it and that slice of ``bias_hh_l0`` to 0, so the gate starts at
            about ``sigma(forget_bias)``. Jozefowicz, Zaremba & Sutskever (2015), "An Empirical
            Exploration of Recurrent Network Architectures", recommend 1.
        recurrent_scale: multiplies the recurrent weights ``W_hh`` (all gates) after PyTorch's
            default init, U(-1/sqrt(width), 1/sqrt(width)); above 1 it makes the backward
            signal grow through time instead of shrinking (notebook 08).

    Weights are drawn by PyTorch's default init from torch's global generator: call
    :func:`gradcourse.set_seed` first for a reproducible network.
    """

    def __init__(self, cell="lstm", width=32, in_features=2, forget_bias=None, recurrent_scale=1.0):
        super().__init__()
        _checks.choice("cell", cell, tuple(CELLS))
        _checks.integer("width", width, minimum=1)
        _checks.integer("in_features", in_features, minimum=1)
        if forget_bias is not None:
            if cell != "lstm":
                raise ValueError(f"forget_bias={forget_bias!r} is not allowed with cell={cell!r}; "
                                 "only an LSTM has a forget gate (leave it None)")
            forget_bias = _checks.number("forget_bias", forget_bias)
        recurrent_scale = _checks.number("recurrent_scale", recurrent_scale, minimum=0, strict_minimum=True)
        self.cell = cell
        self.width = width
        self.forget_bias = forget_bias
        self.recurrent_scale = recurrent_scale
        self.rnn = CELLS[cell](in_features, width, batch_first=True)
        self.output = nn.Linear(width, 1)
        if forget_bias is not None:
            with torch.no_grad():
                self.rnn.bias_ih_l0[width:2 * width].fill_(forget_bias)
                self.rnn.bias_hh_l0[width:2 * width].zero_()
        if recurrent_scale != 1.0:
            with torch.no_grad():
                self.rnn.weight_hh_l0.mul_(recurrent_scale)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.output(out[:, -1]).squeeze(-1)

    def named_layers(self):
        """``(name, module)`` of the recurrent layer and the output layer, named as in
        :func:`gradcourse.core.train.fit`'s messages (e.g. "first non-finite values at LSTM layer")."""
        return [(f"{self.cell.upper()} layer", self.rnn), ("output layer", self.output)]

    def extra_repr(self):
        return (f"cell={self.cell!r}, width={self.width}, forget_bias={self.forget_bias}, "
                f"recurrent_scale={self.recurrent_scale}")
