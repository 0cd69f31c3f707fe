"""Notebook 06's exercises (gradcourse.exercises.notebook_06), derived again: the cosine after value clipping, the
reference clip function against clip_grad_norm_, and the gradient on the cliff's wall."""

import pytest
import torch

import gradcourse as gc
from gradcourse.exercises import check
from helpers import reference


def test_06_1_the_cosine_after_value_clipping_is_the_packages():
    g = torch.tensor([1.0, 10.0], dtype=torch.float64)
    clipped = gc.clipping.clipped_copy(g, clip_value=1.0)[0]
    assert torch.equal(clipped, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert gc.clipping.cosine(g, clipped) == pytest.approx(reference("06.1"), rel=1e-12)
    assert gc.clipping.cosine(g, gc.clipping.clipped_copy(g, max_norm=1.0)) == pytest.approx(1.0)


def test_06_2_the_reference_function_is_clip_grad_norm():
    generator = torch.Generator().manual_seed(1)
    gradients = [torch.randn(3, 7, generator=generator), torch.randn(2, generator=generator) * 10]
    for max_norm in (0.5, 1e3):
        mine = reference("06.2")(gradients, max_norm)
        torch_s = gc.clipping.clipped_copy(gradients, max_norm=max_norm)
        assert all(torch.allclose(a, b, rtol=1e-5) for a, b in zip(mine, torch_s))


def test_06_2_a_function_that_raises_or_returns_junk_is_told_so():
    def raises(gradients, max_norm):
        raise ZeroDivisionError("boom")

    assert "raised ZeroDivisionError: boom" in check("06.2", raises).message
    assert "one clipped tensor per input tensor" in check("06.2", lambda g, c: torch.cat([t.flatten() for t in g])).message
    assert "returns norm" in check("06.2", lambda g, c: [2 * t for t in g]).message
    assert check("06.2", lambda g, c: (t * min(1.0, c / gc.clipping.global_norm(g)) for t in g))   # a generator


def test_06_3_the_closed_form_on_the_wall_is_autograds():
    w = 5.0
    _, grad_w, grad_b = gc.cliff.cliff_loss_and_gradient(w, gc.cliff.cliff_wall(w))
    assert grad_b.item() == pytest.approx(reference("06.3"), rel=1e-6)
    s = gc.theory.sigmoid(0.5)
    lam = w * s * (1 - s)
    assert reference("06.3") == pytest.approx(2 * (0.5 - 0.7) * (lam ** 50 - 1) / (lam - 1), rel=1e-12)
    assert check("06.3", grad_b.item()) and not check("06.3", grad_w.item())
