"""Shared fixtures for the gradcourse unit tests.

The tests use the bundled 5,000-digit MNIST subset only, so they run offline.
"""

import re

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere (gradcourse.plots imports it)

import pytest  # noqa: E402
import torch  # noqa: E402

import gradcourse  # noqa: E402


@pytest.fixture
def mnist_small():
    """The first 256 bundled MNIST training digits, as fresh tensors for each test."""
    return gradcourse.load_mnist("train", limit=256, source="bundled")


@pytest.fixture
def blobs():
    """An easy 3-class problem: Gaussian blobs in 20 dimensions, well separated."""
    generator = torch.Generator().manual_seed(0)
    centers = 4.0 * torch.randn(3, 20, generator=generator)
    y = torch.arange(300) % 3
    X = centers[y] + torch.randn(300, 20, generator=generator)
    return X, y


@pytest.fixture
def raises_bad():
    """``raises_bad(name, value)``: expect a ValueError whose message reads ``name=<repr of value>``.

    That is the message shape of gradcourse._checks, which every public function uses.
    """
    def expect(name, value):
        return pytest.raises(ValueError, match=re.escape(f"{name}={value!r}"))
    return expect
