"""20-way one-shot classification on Lake's 20 official Omniglot runs (K1).

Each run holds 20 training images (one per character) and 20 test images; class_labels.txt
names the training image each test image belongs to. A test image is classified as the
training image with the lowest dissimilarity; 20 runs x 20 test images = 400 trials. The
same scoring on raw pixels (Euclidean nearest neighbour) is the baseline.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from siamese_bench.data.omniglot import OmniglotUnavailable, decode_png, download_archive, find_archive, to_float
from siamese_bench.errors import UserError

RUNS_ARCHIVE = "all_runs.zip"
Dissimilarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (P, ...) x (P, ...) -> (P,)


@dataclass(frozen=True)
class OneShotRun:
    name: str
    train: torch.Tensor  # (K, 1, S, S) one image per class
    test: torch.Tensor  # (Q, 1, S, S)
    answer: torch.Tensor  # (Q,) index into train of each test image's class


@dataclass(frozen=True)
class OneShotResult:
    per_run: dict[str, float]  # run name -> accuracy
    correct: int
    trials: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.trials

    def metrics(self, prefix: str = "oneshot/") -> dict[str, float]:
        return {f"{prefix}acc": self.accuracy, f"{prefix}trials": float(self.trials),
                **{f"{prefix}{name}": acc for name, acc in self.per_run.items()}}


class OneShotFormatError(UserError, ValueError):
    """A runs archive that does not follow Lake's layout."""


def load_runs(path: Path | str, size: int) -> list[OneShotRun]:
    """Every runNN/ of the archive, images inverted and resized as the omniglot datasets are."""
    try:
        return _read_runs(path, size)
    except (zipfile.BadZipFile, OSError) as err:
        raise OneShotFormatError(f"{path}: unreadable ({err})") from None


def _read_runs(path: Path | str, size: int) -> list[OneShotRun]:
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        keys = sorted(n for n in names if n.endswith("class_labels.txt"))
        if not keys:
            raise OneShotFormatError(f"{path}: no <run>/class_labels.txt inside")
        runs = []
        for key in keys:
            run = key.rsplit("/", 1)[0]
            pairs = [line.split() for line in archive.read(key).decode().splitlines() if line.strip()]
            if not pairs or any(len(p) != 2 for p in pairs):
                raise OneShotFormatError(f"{path}: {key}: expected lines '<test image> <training image>'")
            train_names = sorted({p[1] for p in pairs})
            missing = [n for p in pairs for n in p if n not in names]
            if missing:
                raise OneShotFormatError(f"{path}: {key} names {missing[0]}, which the archive lacks")

            def images(members: list[str]) -> torch.Tensor:
                return to_float(torch.from_numpy(np.stack([decode_png(archive.read(m)) for m in members])), size)

            answer = torch.tensor([train_names.index(p[1]) for p in pairs])
            runs.append(OneShotRun(run, images(train_names), images([p[0] for p in pairs]), answer))
    return runs


def official_runs(size: int) -> list[OneShotRun]:
    """The 20 official runs from the first verified all_runs.zip (see data.omniglot), else from
    a download of Lake's copy; OmniglotUnavailable naming every place tried."""
    try:
        path = find_archive(RUNS_ARCHIVE)
    except OmniglotUnavailable as err:
        try:
            path = download_archive(RUNS_ARCHIVE)
        except Exception as download_err:  # noqa: BLE001  (any download failure: report both)
            raise OmniglotUnavailable(f"{err}; download: {type(download_err).__name__}: {download_err}") from None
    return load_runs(path, size)


def score(runs: list[OneShotRun], dissimilarity: Dissimilarity) -> OneShotResult:
    """Every test image against every training image of its run; argmin is the guess."""
    per_run, correct, trials = {}, 0, 0
    for run in runs:
        q, k = len(run.test), len(run.train)
        d = dissimilarity(run.test.repeat_interleave(k, dim=0), run.train.repeat(q, 1, 1, 1)).view(q, k)
        hits = int((d.argmin(dim=1) == run.answer).sum())
        per_run[run.name] = hits / q
        correct, trials = correct + hits, trials + q
    return OneShotResult(per_run, correct, trials)


def pixel_distance(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """The baseline: Euclidean distance between raw pixel vectors."""
    return (x1 - x2).flatten(1).norm(dim=1)


def model_dissimilarity(module: torch.nn.Module, batch_size: int = 1024) -> Dissimilarity:
    """A trained SiameseModule's ranking of pairs (HeadOutput.ranking: the head's dissimilarity,
    or -logit for probabilistic heads so that saturated probabilities do not tie), in eval
    mode, batched, without gradients."""

    @torch.no_grad()
    def dissimilarity(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        module.eval()
        device = next(module.parameters()).device
        parts = [module.compare(x1[i:i + batch_size].to(device), x2[i:i + batch_size].to(device)).ranking
                 for i in range(0, len(x1), batch_size)]
        return torch.cat(parts).cpu()

    return dissimilarity


def oneshot_metrics(module: torch.nn.Module, size: int) -> dict[str, float]:
    """The model's and the pixel baseline's one-shot accuracy, as MLflow metrics; empty (with
    the reason raised) when the runs archive is unavailable."""
    runs = official_runs(size)
    return {**score(runs, model_dissimilarity(module)).metrics(),
            **score(runs, pixel_distance).metrics("oneshot_pixels/")}


__all__ = ["OmniglotUnavailable", "OneShotResult", "OneShotRun", "load_runs", "official_runs",
           "oneshot_metrics", "pixel_distance", "score"]
