"""gradcourse.core.data: load_mnist (bundled; torchvision's files, local, corrupted or downloaded over a network
that fails) and batches, the adding problem, and the digits as images for image models."""

import gzip
import hashlib
import re
import socket
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gradcourse
from gradcourse.core import data
from gradcourse.core.data import ADDING_BASELINE_MSE, adding_problem

MEAN, STD = 0.1307, 0.3081


def _standardized(pixels_uint8):
    """The documented standardization, computed independently in float64."""
    return (np.asarray(pixels_uint8, dtype=np.float64).reshape(len(pixels_uint8), -1) / 255 - MEAN) / STD


def _pixels(X):
    """Invert the standardization: the uint8 grey levels behind standardized rows."""
    return ((X.double() * STD + MEAN) * 255).round().to(torch.uint8).numpy()


def _row_hashes(pixels_uint8):
    return [hashlib.sha1(row.tobytes()).hexdigest() for row in np.ascontiguousarray(pixels_uint8)]


@pytest.fixture(scope="module")
def bundled_file():
    """The bundled CSV read independently of gradcourse: (5000, 784) pixels and 5000 labels."""
    with gzip.open(data.bundled_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1]


# ---------------------------------------------------------------- bundled source

@pytest.fixture(scope="module")
def bundled():
    return {split: gradcourse.load_mnist(split, source="bundled") for split in ("train", "test")}


def test_bundled_shapes_and_dtypes(bundled):
    (X, y), (Xt, yt) = bundled["train"], bundled["test"]
    assert X.shape == (4000, 784) and y.shape == (4000,)
    assert Xt.shape == (1000, 784) and yt.shape == (1000,)
    assert X.dtype == Xt.dtype == torch.float32
    assert y.dtype == yt.dtype == torch.int64


def test_bundled_split_is_stratified_400_and_100_per_class(bundled):
    assert torch.bincount(bundled["train"][1], minlength=10).tolist() == [400] * 10
    assert torch.bincount(bundled["test"][1], minlength=10).tolist() == [100] * 10


def test_bundled_pixels_follow_the_standardization_formula(bundled):
    X = bundled["train"][0].double()
    pixels = (X * STD + MEAN) * 255  # invert x = (p/255 - mean)/std
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)  # whole grey levels
    assert pixels.min().round() == 0 and pixels.max().round() == 255


def test_bundled_train_set_is_standardized(bundled):
    # The constants are the full 60,000-digit training set's; a 4,000-digit sample's
    # mean differs from it by a few standard errors (about 0.002 here), its std similarly.
    X = bundled["train"][0]
    assert abs(X.mean().item()) < 0.05
    assert abs(X.std().item() - 1) < 0.05


def test_bundled_train_and_test_are_disjoint_and_cover_the_file(bundled, bundled_file):
    images, _ = bundled_file
    assert images.shape == (5000, 784)
    file_hashes = _row_hashes(images)
    assert len(set(file_hashes)) == 5000  # the file holds no duplicate image, so hashes identify rows
    train = set(_row_hashes(_pixels(bundled["train"][0])))
    test = set(_row_hashes(_pixels(bundled["test"][0])))
    assert len(train) == 4000 and len(test) == 1000
    assert not train & test
    assert train | test == set(file_hashes)


@pytest.mark.parametrize("split", ["train", "test"])
def test_bundled_labels_match_the_file(bundled, bundled_file, split):
    images, labels = bundled_file
    label_of = dict(zip(_row_hashes(images), labels.tolist()))
    X, y = bundled[split]
    assert [label_of[h] for h in _row_hashes(_pixels(X))] == y.tolist()


def test_load_is_deterministic_and_returns_copies():
    X1, y1 = gradcourse.load_mnist("test", source="bundled")
    X1.fill_(0.0)
    y1.fill_(-1)
    X2, y2 = gradcourse.load_mnist("test", source="bundled")
    X3, y3 = gradcourse.load_mnist("test", source="bundled")
    assert torch.equal(X2, X3) and torch.equal(y2, y3)
    assert not (X2 == 0).all() and (y2 >= 0).all()


def test_limit_keeps_the_first_examples(bundled):
    X, y = gradcourse.load_mnist("train", limit=10, source="bundled")
    assert torch.equal(X, bundled["train"][0][:10]) and torch.equal(y, bundled["train"][1][:10])
    X_all, _ = gradcourse.load_mnist("train", limit=10**6, source="bundled")
    assert len(X_all) == 4000


def test_second_load_comes_from_memory(monkeypatch):
    """The digits are read from disk once per process; how fast that is, benchmarks/load_mnist_speed.py measures."""
    first = gradcourse.load_mnist("train", source="bundled")

    def no_second_read(split):
        raise AssertionError(f"the {split} digits were read from disk again")

    monkeypatch.setattr(data, "_read_bundled", no_second_read)
    second = gradcourse.load_mnist("train", source="bundled")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(split="val"), "split", "val"),
    (dict(limit=0), "limit", 0),
    (dict(limit=-5), "limit", -5),
    (dict(limit=2.5), "limit", 2.5),
    (dict(limit=True), "limit", True),
    (dict(source="web"), "source", "web"),
    (dict(root=3), "root", 3),
])
def test_load_mnist_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        gradcourse.load_mnist(**kwargs)


@settings(max_examples=25, deadline=None)
@given(st.integers(max_value=0))
def test_load_mnist_and_batches_reject_nonpositive_sizes(n):
    with pytest.raises(ValueError, match=rf"limit={n} is not allowed"):
        gradcourse.load_mnist(limit=n, source="bundled")
    with pytest.raises(ValueError, match=rf"batch_size={n} is not allowed"):
        gradcourse.batches(torch.zeros(4, 2), torch.zeros(4), batch_size=n)


# ---------------------------------------------------------------- torchvision source, offline

def _write_idx(raw, prefix, images, labels):
    n = len(images)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.fixture
def idx_root(tmp_path, monkeypatch):
    """A root holding small, valid MNIST IDX files (6 train, 4 test digits); downloads forbidden."""
    rng = np.random.default_rng(0)
    written = {}
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, prefix, n in (("train", "train", 6), ("test", "t10k", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_idx(raw, prefix, images, labels)
        written[split] = (images, labels)

    def no_download(root):
        raise AssertionError("the IDX files are present; nothing should be downloaded")

    monkeypatch.setattr(data, "_download_torchvision", no_download)
    return tmp_path, written


@pytest.mark.parametrize("split", ["train", "test"])
def test_torchvision_source_reads_local_idx_files(idx_root, split):
    root, written = idx_root
    images, labels = written[split]
    X, y = gradcourse.load_mnist(split, source="torchvision", root=root)
    assert X.dtype == torch.float32 and X.shape == (len(images), 784)
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    np.testing.assert_allclose(X.numpy(), _standardized(images), rtol=0, atol=1e-5)


def test_a_root_under_home_is_expanded_as_torchvision_expands_it(idx_root, monkeypatch):
    root, written = idx_root
    monkeypatch.setenv("HOME", str(root.parent))
    X, _ = gradcourse.load_mnist("test", source="torchvision", root=f"~/{root.name}")
    assert len(X) == len(written["test"][0])
    monkeypatch.setenv("GRADCOURSE_DATA", f"~/{root.name}")
    assert data.default_root() == root
    assert len(gradcourse.load_mnist("train", source="torchvision")[0]) == len(written["train"][0])


def test_the_default_is_the_bundled_subset_even_when_torchvision_files_are_present(idx_root, monkeypatch, capsys):
    root, _ = idx_root
    monkeypatch.setenv("GRADCOURSE_DATA", str(root))
    for split in ("train", "test"):
        X, y = gradcourse.load_mnist(split)
        X_bundled, y_bundled = gradcourse.load_mnist(split, source="bundled")
        assert torch.equal(X, X_bundled) and torch.equal(y, y_bundled)
    assert capsys.readouterr().out == ""


def test_a_failed_download_of_full_mnist_says_what_to_do(tmp_path, monkeypatch):
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(torchvision.datasets, "MNIST", no_network)
    with pytest.raises(RuntimeError, match=r"full MNIST could not be downloaded into .*no network in this test.*"
                                           r"source='bundled'"):
        gradcourse.load_mnist("train", source="torchvision", root=tmp_path)


def test_unreadable_torchvision_files_raise_a_helpful_error(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for names in data._RAW_FILES.values():
        for name in names:
            (raw / name).write_bytes(b"not an idx file")
    monkeypatch.setattr(data, "_cache", {})
    with pytest.raises(RuntimeError, match=re.escape("source='bundled'")):
        gradcourse.load_mnist("train", source="torchvision", root=tmp_path)


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADCOURSE_DATA", str(tmp_path))
    assert data.default_root() == tmp_path


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_cache_is_detected_with_a_clear_message(tmp_path, monkeypatch, damage, capsys):
    monkeypatch.setattr(data, "_cache", {})
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(raw, prefix, np.zeros((n, 28, 28), np.uint8), np.zeros(n, np.uint8))
    broken = raw / "train-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:1000] if damage == "truncated" else b"not an idx file at all")
    with pytest.raises(RuntimeError, match="truncated|not an MNIST IDX file") as error:
        gradcourse.load_mnist(root=tmp_path, source="torchvision")
    assert "Delete the folder" in str(error.value)
    X, _ = gradcourse.load_mnist(root=tmp_path)            # the course's digits do not depend on the cache
    assert len(X) == 4000 and capsys.readouterr().out == ""


# ---------------------------------------------------------------- no network, or a network that fails

@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """An empty cache folder, and nothing read yet in this process."""
    monkeypatch.setattr(data, "_cache", {})
    return tmp_path


def test_the_default_source_makes_no_network_access(empty_cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    X, _ = gradcourse.load_mnist(root=empty_cache)
    assert len(X) == 4000


def test_dns_failure_of_the_full_download_is_reported_at_once(empty_cache, monkeypatch):
    import torchvision

    lookups = []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(RuntimeError, match="full MNIST could not be downloaded.*source='bundled'"):
        gradcourse.load_mnist(root=empty_cache, source="torchvision")
    assert 1 <= len(lookups) <= len(torchvision.datasets.MNIST.mirrors)   # each mirror looked up once, no retries


def test_a_server_that_never_answers_is_given_up_within_the_time_bound(empty_cache, monkeypatch):
    """Each connection waits DOWNLOAD_TIMEOUT_S at most, and each mirror gets one: the download gives up
    within (mirrors x DOWNLOAD_TIMEOUT_S) plus the work between them."""
    import torchvision

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_and_stay_silent():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    connect, timeouts = socket.socket.connect, []

    def connect_recording_the_timeout(self, address):
        timeouts.append(self.gettimeout())
        return connect(self, address)

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    mirrors = [f"http://127.0.0.1:{server.getsockname()[1]}/"]
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", mirrors)
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 1.0)
    monkeypatch.setattr(socket.socket, "connect", connect_recording_the_timeout)
    default_timeout = socket.getdefaulttimeout()
    try:
        with pytest.raises(RuntimeError, match="full MNIST could not be downloaded .*timed out"):
            gradcourse.load_mnist(root=empty_cache, source="torchvision")
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
    assert accepted, "the download never reached the silent server"
    assert 1 <= len(timeouts) <= len(mirrors) and all(t == data.DOWNLOAD_TIMEOUT_S for t in timeouts)
    assert socket.getdefaulttimeout() == default_timeout    # the bound applied to the download only


# ---------------------------------------------------------------- batches

def _toy(n=10):
    return torch.arange(n, dtype=torch.float32).reshape(n, 1), torch.arange(n)


def test_batches_cover_every_index_exactly_once():
    X, y = _toy(10)
    seen = [int(v) for _, yb in gradcourse.batches(X, y, batch_size=3, seed=1) for v in yb]
    assert sorted(seen) == list(range(10))


def test_batches_keep_rows_and_labels_together():
    X, y = _toy(10)
    for Xb, yb in gradcourse.batches(X, y, batch_size=4, seed=2):
        assert torch.equal(Xb[:, 0].long(), yb)


def test_batch_sizes_with_a_smaller_last_batch():
    X, y = _toy(10)
    assert [len(yb) for _, yb in gradcourse.batches(X, y, batch_size=4)] == [4, 4, 2]
    assert [len(yb) for _, yb in gradcourse.batches(X, y, batch_size=20)] == [10]


def test_shuffle_is_deterministic_per_seed_and_differs_between_seeds():
    X, y = _toy(50)

    def order(seed):
        return torch.cat([yb for _, yb in gradcourse.batches(X, y, batch_size=8, seed=seed)]).tolist()

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert order(0) != list(range(50))


def test_no_shuffle_keeps_the_order():
    X, y = _toy(10)
    batches = list(gradcourse.batches(X, y, batch_size=4, shuffle=False))
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(batch_size=0), "batch_size", 0),
    (dict(batch_size=2.0), "batch_size", 2.0),
    (dict(batch_size=4, shuffle=1), "shuffle", 1),
    (dict(batch_size=4, seed=0.5), "seed", 0.5),
])
def test_batches_reject_bad_arguments(kwargs, name, value, raises_bad):
    X, y = _toy(10)
    with raises_bad(name, value):
        gradcourse.batches(X, y, **kwargs)  # raised at the call, not at the first next()


def test_batches_reject_mismatched_or_non_tensor_data():
    X, y = _toy(10)
    with pytest.raises(ValueError, match=re.escape("<tensor shape=(10, 1)")) as info:
        gradcourse.batches(X, y[:9], batch_size=4)
    assert "same first dimension" in str(info.value) and "<tensor shape=(9,)" in str(info.value)
    with pytest.raises(ValueError, match="same first dimension"):
        gradcourse.batches(X.tolist(), y, batch_size=4)


# ---------------------------------------------------------------- the same digits online and offline

SAME_DIGITS = """
import hashlib, json, gradcourse as gc
digests = {{split: hashlib.sha1(gc.load_mnist(split)[0].numpy().tobytes()).hexdigest() for split in ("train", "test")}}
full = len(gc.load_mnist("train", source="torchvision")[0]) if {full!r} else None
print(json.dumps({{"digests": digests, "full": full}}))
"""


def _digits_in_a_fresh_process(data_root, full):
    import json
    import os

    env = {**os.environ, "GRADCOURSE_DATA": str(data_root)}
    run = subprocess.run([sys.executable, "-c", SAME_DIGITS.format(full=full)], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_course_trains_on_the_same_digits_whether_or_not_full_mnist_is_on_the_machine(tmp_path):
    """A full-size MNIST (60,000 + 10,000 digits, random pixels) in the cache that torchvision reads
    changes nothing for load_mnist's default, which every notebook uses; it is there for source='torchvision'."""
    raw = tmp_path / "with" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        _write_idx(raw, prefix, rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
                   rng.integers(0, 10, size=n, dtype=np.uint8))
    with_full = _digits_in_a_fresh_process(tmp_path / "with", full=True)
    without = _digits_in_a_fresh_process(tmp_path / "without", full=False)
    assert with_full["full"] == 60_000                       # torchvision's files were present and readable
    assert with_full["digests"] == without["digests"]


def test_no_notebook_chooses_a_source_of_its_own():
    from pathlib import Path

    import nbformat

    for path in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            calls = re.findall(r"load_mnist\([^)]*\)", cell.source) if cell.cell_type == "code" else []
            assert not any("source" in call for call in calls), (path.name, calls)


def test_adding_problem_shapes_markers_and_targets():
    X, y = adding_problem(500, 20, seed=3)
    assert X.shape == (500, 20, 2) and y.shape == (500,)
    assert X.dtype == y.dtype == torch.float32
    values, markers = X[..., 0], X[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :10].sum(dim=1) == 1).all() and (markers[:, 10:].sum(dim=1) == 1).all()  # one per half
    assert torch.allclose(y, (values * markers).sum(dim=1))


def test_adding_problem_is_seeded():
    first, second, other = adding_problem(50, 10, seed=1), adding_problem(50, 10, seed=1), adding_problem(50, 10, seed=2)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def test_adding_problem_odd_length_puts_the_second_marker_in_the_longer_half():
    X, _ = adding_problem(2000, 5, seed=0)
    first, second = X[:, :2, 1].sum(dim=1), X[:, 2:, 1].sum(dim=1)
    assert (first == 1).all() and (second == 1).all()


def test_predicting_one_scores_the_baseline():
    _, y = adding_problem(200_000, 4, seed=0)
    assert ADDING_BASELINE_MSE == 1 / 6
    assert ((y - 1) ** 2).mean().item() == pytest.approx(1 / 6, rel=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.005)


@pytest.mark.parametrize("kwargs, name, value", [
    (dict(n=0, length=10), "n", 0),
    (dict(n=10, length=1), "length", 1),
    (dict(n=10, length=10.0), "length", 10.0),
    (dict(n=10, length=10, seed=-1), "seed", -1),
])
def test_adding_problem_rejects_bad_arguments(kwargs, name, value, raises_bad):
    with raises_bad(name, value):
        adding_problem(**kwargs)


def _write_raw(raw, prefix, images, labels, height=28, width=28):
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(images), height, width)
                                                      + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


@pytest.mark.parametrize("images, labels, size, match", [
    (np.zeros((10, 28, 28), np.uint8), np.zeros(7, np.uint8), 28, "holds 7 labels for 10 images"),
    (np.zeros((10, 10, 10), np.uint8), np.zeros(10, np.uint8), 10, r"images of shape \(10, 10\), not 28 x 28"),
    (np.zeros((10, 28, 28), np.uint8), np.full(10, 200, np.uint8), 28, "holds the label 200; MNIST's are 0-9"),
])
def test_consistent_but_wrong_files_are_refused_with_what_is_wrong(idx_root, images, labels, size, match):
    root, _ = idx_root
    _write_raw(root / "MNIST" / "raw", "t10k", images, labels, size, size)
    data._cache.clear()
    with pytest.raises(RuntimeError, match=match):
        gradcourse.load_mnist("test", source="torchvision", root=root)


def test_a_legacy_processed_file_does_not_override_the_checked_raw_files(idx_root):
    root, written = idx_root
    processed = root / "MNIST" / "processed"
    processed.mkdir()
    for name in ("training.pt", "test.pt"):   # torchvision's old layout, which it would read instead
        torch.save((torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64)), processed / name)
    data._cache.clear()
    _, y = gradcourse.load_mnist("test", source="torchvision", root=root)
    assert y.tolist() == written["test"][1].tolist()


@pytest.mark.parametrize("split, prefix", [("train", "train"), ("test", "t10k")])
def test_files_with_a_valid_header_and_no_digits_are_refused_with_what_to_do(idx_root, split, prefix):
    root, _ = idx_root
    raw = root / "MNIST" / "raw"
    _write_raw(raw, prefix, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    data._cache.clear()
    image_file = re.escape(str(raw / f"{prefix}-images-idx3-ubyte"))
    with pytest.raises(RuntimeError, match=rf"{image_file} holds 0 images .*Delete the folder .* to download it again"):
        gradcourse.load_mnist(split, source="torchvision", root=root)
    with pytest.raises(RuntimeError, match="holds 0 images"):
        gradcourse.load_mnist(split, limit=5, source="torchvision", root=root)


# ---------------------------------------------------------------- the digits as images for image models

def test_mnist_images_for_image_models(mnist_small, raises_bad):
    X, _ = mnist_small
    images = gradcourse.core.data.mnist_images(X[:4], size=32, channels=3)
    assert images.shape == (4, 3, 32, 32)
    assert torch.equal(images[:, 0], images[:, 2])
    same_size = gradcourse.core.data.mnist_images(X[:2], size=28, channels=1)
    assert torch.allclose(same_size.reshape(2, 784), X[:2], atol=1e-6)
    with raises_bad("size", 4):
        gradcourse.core.data.mnist_images(X, size=4)
    with raises_bad("factor", float("inf")):
        gradcourse.core.models.scale_weights_(nn.Linear(2, 2), float("inf"))
    with raises_bad("model", "resnet"):
        gradcourse.core.models.remove_batchnorm_("resnet")
