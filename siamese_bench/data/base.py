"""The in-memory dataset records (labelled samples, or ready-made pairs), the dataset registry and the seeded
validation split."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from siamese_bench.core.errors import UserError
from siamese_bench.core.registry import Registry


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A short SHA-256 of the tensors' contents: names a dataset's exact data (MLflow input)."""
    digest = hashlib.sha256()
    for t in tensors:
        # the buffer itself, no copy; numpy's stubs give ndarray __buffer__ only from Python 3.12
        digest.update(t.detach().cpu().contiguous().numpy())  # type: ignore[arg-type]
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class LabelledData:
    """Class-labelled samples held as tensors, y int64 (N,): images as float32 (N, C, H, W) in
    [0, 1], or sequences as float32 (N, T, F) padded (data/sequences.py)."""

    name: str  # the name asked for, e.g. "mnist"
    variant: str  # what was actually loaded, e.g. "mnist-full" or "mnist-5k"
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str  # where it came from, for the log and MLflow tags
    # How validation is held out of the training set: "images" (a share of every class) or
    # "classes" (whole classes, so validation classes are unseen, as Omniglot's alphabets are)
    holdout: str = "images"
    # Extra scores of the trained model this dataset calls for, by name in EVALUATIONS
    # (siamese_bench/training/evaluations.py), e.g. Omniglot's one-shot runs
    evaluations: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @cached_property
    def digest(self) -> str:
        """Computed once per loaded dataset (a sweep worker trains many runs on one)."""
        return tensor_digest(self.x_train, self.y_train, self.x_test, self.y_test)

    @property
    def num_classes(self) -> int:
        return int(self.y_train.max()) + 1


@dataclass(frozen=True)
class PairTable:
    left: torch.Tensor  # (N, k) float32
    right: torch.Tensor  # (N, k)
    y: torch.Tensor  # (N,) float32, 1 = same


@dataclass(frozen=True)
class PairedData:
    """Datasets whose samples are already pairs (no class labels): C4's pre-encoded vectors."""

    name: str
    variant: str
    train: PairTable
    test: PairTable
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.left.shape[1:])

    @cached_property
    def digest(self) -> str:
        """Computed once per loaded dataset (a sweep worker trains many runs on one)."""
        return tensor_digest(
            self.train.left, self.train.right, self.train.y, self.test.left, self.test.right, self.test.y
        )


class DataUnavailable(UserError, RuntimeError):
    """A dataset copy is missing, unreadable or fails its checksum."""


# A loader takes the argument of `kind:argument` names (csv:TRAIN,TEST) or none
DATASETS: Registry[Callable[..., LabelledData | PairedData]] = Registry("dataset")


def load_dataset(name: str) -> LabelledData | PairedData:
    """`name`, or `kind:argument` for parameterised datasets such as csv:TRAIN,TEST."""
    kind, sep, argument = name.partition(":")
    return DATASETS.get(kind)(argument) if sep else DATASETS.get(name)()


def data_home() -> Path:
    """Where downloads and decoded caches go: $SIAMESE_BENCH_DATA_DIR; else, in a checkout of the
    repository, its `datasets/` folder; else (an installed package) $XDG_CACHE_HOME/siamese-bench,
    by default ~/.cache/siamese-bench."""
    env = os.environ.get("SIAMESE_BENCH_DATA_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "siamese_bench" / "data" / "base.py").is_file():
        return repo / "datasets"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "siamese-bench"


def stratified_split(y: torch.Tensor, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out) with `fraction` of every class held out."""
    keep, held = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_held = round(len(idx) * fraction)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


def class_split(y: torch.Tensor, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out) with a seeded `fraction` of the classes (at least one, never
    all) held out whole."""
    classes = torch.unique(y)
    if len(classes) < 3:
        raise ValueError(f"holding out whole classes needs at least 3 classes, got {len(classes)}")
    n_held = min(max(1, round(len(classes) * fraction)), len(classes) - 2)
    held_classes = classes[torch.randperm(len(classes), generator=generator)[:n_held]]
    held = torch.isin(y, held_classes)
    return torch.nonzero(~held).squeeze(1), torch.nonzero(held).squeeze(1)


HOLDOUTS = {"images": stratified_split, "classes": class_split}


def split_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int, holdout: str = "images"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded train/validation split, stratified ("images") or by whole classes ("classes");
    kept indices stay in their original order, which the Keras pair recipe depends on."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout {holdout!r}; valid: {', '.join(HOLDOUTS)}")
    keep, held = HOLDOUTS[holdout](y, fraction, torch.Generator().manual_seed(seed))
    return x[keep], y[keep], x[held], y[held]
