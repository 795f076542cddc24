"""Sequence datasets for C5's LSTM encoder: JapaneseVowels speakers and row-sequential MNIST.

Convention: a sequence dataset is an ordinary LabelledData whose x is ONE padded float32 tensor
of shape (N, T, F + 1). Steps run along dimension 1; the LAST feature is a validity mask, 1.0
for a real step and 0.0 for padding, and the real steps come first (padding only at the end,
all-zero). Keeping the mask inside x lets the pipeline gather batches as rows x[idx] like any
image dataset, with no special cases; the "lstm" encoder (siamese_bench/models/encoders/sequence.py)
reads the lengths from the mask and packs, so padding never changes an embedding.
"""

from __future__ import annotations

import numpy as np
import torch

from siamese_bench.core.errors import missing_extra
from siamese_bench.data.base import DATASETS, LabelledData, PairedData, load_dataset

JV_MAX_LENGTH = 29  # JapaneseVowels' longest utterance (train and test: 7..29 steps)


def pad_sequences(sequences: list[np.ndarray], length: int) -> torch.Tensor:
    """Sequences of shape (L_i, F) -> (N, length, F + 1): features, zero padding at the end,
    and the mask as the last feature."""
    features = sequences[0].shape[1]
    out = torch.zeros(len(sequences), length, features + 1)
    for i, seq in enumerate(sequences):
        if not 1 <= len(seq) <= length:
            raise ValueError(f"sequence {i} has {len(seq)} steps; expected 1..{length}")
        out[i, : len(seq), :features] = torch.from_numpy(np.asarray(seq, dtype=np.float32))
        out[i, : len(seq), features] = 1.0
    return out


def standardise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean/sd of the training set's real steps (padding excluded) applied to both
    sets; padding stays 0 and the mask stays as it is."""
    mask = x_train[..., -1:] > 0.5  # (N, T, 1)
    real = x_train[..., :-1][mask.expand_as(x_train[..., :-1])].view(-1, x_train.shape[-1] - 1)  # (steps, F)
    mean, sd = real.mean(dim=0), real.std(dim=0).clamp_min(1e-8)

    def apply(x: torch.Tensor) -> torch.Tensor:
        m = x[..., -1:]
        return torch.cat([(x[..., :-1] - mean) / sd * m, m], dim=-1)

    return apply(x_train), apply(x_test)


@DATASETS.register("japanese-vowels")
def load_japanese_vowels() -> LabelledData:
    """JapaneseVowels as speaker verification: 9 speakers (labels 0..8), 12 LPC cepstrum
    channels, 7..29 steps; the official split, 270 train / 370 test. The files ship inside
    the aeon package, so this works offline."""
    try:
        import aeon
        from aeon.datasets import load_japanese_vowels as aeon_load
    except ImportError as err:
        raise missing_extra(err, "sequences", "dataset japanese-vowels") from None

    parts = {}
    for split in ("TRAIN", "TEST"):
        series, labels = aeon_load(split=split)  # list of (12, L) arrays, labels "1".."9"
        x = pad_sequences([np.asarray(s).T for s in series], JV_MAX_LENGTH)  # (N, 29, 13)
        parts[split] = (x, torch.from_numpy(np.asarray(labels).astype(np.int64) - 1))
    (x_train, y_train), (x_test, y_test) = parts["TRAIN"], parts["TEST"]
    x_train, x_test = standardise(x_train, x_test)
    return LabelledData(
        "japanese-vowels",
        "japanese-vowels",
        x_train,
        y_train,
        x_test,
        y_test,
        f"aeon {aeon.__version__}: aeon.datasets.load_japanese_vowels (bundled .ts files)",
    )


def _rows(name: str, images: LabelledData | PairedData) -> LabelledData:
    """Images (N, 1, 28, 28) -> 28 steps of 28 pixels plus an all-ones mask, (N, 28, 29)."""
    assert isinstance(images, LabelledData), "mnist and mnist-5k load class-labelled images, never pairs"

    def seq(x: torch.Tensor) -> torch.Tensor:
        rows = x.squeeze(1)  # (N, 28, 28): step = image row
        return torch.cat([rows, torch.ones(*rows.shape[:2], 1)], dim=-1)

    return LabelledData(
        name,
        f"{images.variant}-rows",
        seq(images.x_train),
        images.y_train,
        seq(images.x_test),
        images.y_test,
        f"{images.source} (rows as 28 steps of 28 pixels)",
    )


@DATASETS.register("mnist-rows")
def load_mnist_rows() -> LabelledData:
    """Row-sequential MNIST from the full set; falls back (loudly, as `mnist` does) to the
    5,000-image subset, with variant "mnist-5k-rows"."""
    return _rows("mnist-rows", load_dataset("mnist"))


@DATASETS.register("mnist-5k-rows")
def load_mnist_5k_rows() -> LabelledData:
    """Row-sequential mnist-5k (4,000 / 1,000): fast runs."""
    return _rows("mnist-5k-rows", load_dataset("mnist-5k"))
