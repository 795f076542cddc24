"""20-way one-shot classification scored on runs of K candidates (K1: Lake's 20 official
Omniglot runs, data/omniglot_runs.py). A test image is classified as the training image with
the lowest dissimilarity; 20 runs x 20 test images = 400 trials. The same scoring on raw
pixels (Euclidean nearest neighbour) is the baseline.

Scoring takes any dissimilarity callable, a trained model's or the pixels', and any run with
`name`, `train`, `test` and `answer` (OneShotTask): evaluation imports no model and no data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

Dissimilarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (P, ...) x (P, ...) -> (P,)


class OneShotTask(Protocol):
    """Read-only members, so frozen dataclasses (data/omniglot_runs.py's OneShotRun) fit."""

    @property
    def name(self) -> str: ...

    @property
    def train(self) -> torch.Tensor: ...  # (K, 1, S, S) one image per class

    @property
    def test(self) -> torch.Tensor: ...  # (Q, 1, S, S)

    @property
    def answer(self) -> torch.Tensor: ...  # (Q,) index into train of each test image's class


@dataclass(frozen=True)
class OneShotResult:
    per_run: dict[str, float]  # run name -> accuracy
    correct: int
    trials: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.trials

    def metrics(self, prefix: str = "oneshot/") -> dict[str, float]:
        return {
            f"{prefix}acc": self.accuracy,
            f"{prefix}trials": float(self.trials),
            **{f"{prefix}{name}": acc for name, acc in self.per_run.items()},
        }


def score(runs: Sequence[OneShotTask], dissimilarity: Dissimilarity) -> OneShotResult:
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


def oneshot_metrics(runs: Sequence[OneShotTask], dissimilarity: Dissimilarity) -> dict[str, float]:
    """The model's and the pixel baseline's one-shot accuracy, as MLflow metrics."""
    return {**score(runs, dissimilarity).metrics(), **score(runs, pixel_distance).metrics("oneshot_pixels/")}
