"""Notebook 01's exercises (gradcourse.exercises.notebook_01), derived again: the error signal delta_3 and the
sigmoid chain's value are autograd's."""

import math

import torch

import gradcourse as gc
from gradcourse.exercises import EXERCISES, check


def test_01_1_the_error_signal_is_autograds():
    y3 = torch.tensor([0.2, 0.7], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    z3 = torch.logit(y3).requires_grad_(True)
    (delta3,) = torch.autograd.grad(0.5 * ((torch.sigmoid(z3) - t) ** 2).sum(), z3)
    assert check("01.1", delta3)
    assert torch.allclose(delta3, torch.tensor(EXERCISES["01.1"].reference(), dtype=torch.float64))


def test_01_2_the_chain_value_is_autograds():
    chain = gc.theory.scalar_chain(depth=10, weight=2.0, bias=-1.0, x0=0.5, activation="sigmoid")
    assert all(z == 0 for z in chain.pre_activations)
    assert math.isclose(chain.gradients[0], EXERCISES["01.2"].reference(), rel_tol=1e-12)
