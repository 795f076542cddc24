"""Verification metrics on dissimilarities (lower = more alike), y = 1 same.

Three numbers per split: accuracy at the sources' fixed rule (same when d < 0.5; comparable
with the sources), ROC AUC (threshold-free), and accuracy at a threshold chosen on validation
data (what a fair comparison of heads with different scales needs).
"""

from __future__ import annotations

import torch
from scipy.stats import rankdata
from torchmetrics.functional.classification import binary_accuracy, binary_auroc

FIXED_THRESHOLD = 0.5


def best_threshold(d: torch.Tensor, y: torch.Tensor) -> float:
    """The cut t maximising accuracy of the rule "same when d < t". Only cuts between distinct
    values can be made (tied distances fall on one side together), so only those are scored,
    in float64: a cut is the midpoint of two neighbouring distinct values, or just below the
    smallest / just above the largest (everything "different" / everything "same")."""
    values, inverse = torch.unique(d.detach().double().cpu(), sorted=True, return_inverse=True)  # (U,)
    y64 = y.detach().double().cpu().flatten()
    same = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse.flatten(), y64)  # per value
    diff = torch.bincount(inverse.flatten(), minlength=len(values)).double() - same
    # cut after the first k distinct values, k = 0..U: same below it plus different above it
    zero = torch.zeros(1, dtype=torch.float64)
    correct = torch.cat([zero, torch.cumsum(same, 0)]) + (diff.sum() - torch.cat([zero, torch.cumsum(diff, 0)]))
    k = int(torch.argmax(correct))
    if k == 0:
        return float(torch.nextafter(values[0], torch.tensor(-torch.inf, dtype=torch.float64)))
    if k == len(values):
        return float(torch.nextafter(values[-1], torch.tensor(torch.inf, dtype=torch.float64)))
    return float((values[k - 1] + values[k]) / 2)


def accuracy_at(d: torch.Tensor, y: torch.Tensor, threshold: float) -> float:
    """Accuracy of "same when d < threshold", compared in float64 (a float32 comparison would
    round a cut placed just beside a large distance onto it)."""
    return float(binary_accuracy((d.detach().double().cpu() < threshold).long(), y.detach().cpu().long()))


def pair_metrics(
    d: torch.Tensor, y: torch.Tensor, tuned_threshold: float | None = None, ranking: torch.Tensor | None = None
) -> dict[str, float]:
    """acc (fixed rule d < 0.5), auc, and acc_tuned at `tuned_threshold` (own best cut when None).

    AUC and the tuned cut use `ranking` (lower = more alike) when given: a probabilistic head's
    -logit, which keeps the order that d = sigmoid(-logit) loses to float32 ties at saturation.
    The tuned threshold is then a cut on that ranking, chosen on validation the same way."""
    d, y = d.detach().float().cpu(), y.detach().cpu()
    rank = d if ranking is None else ranking.detach().float().cpu()
    if tuned_threshold is None:
        tuned_threshold = best_threshold(rank, y)
    finite = torch.isfinite(rank).all()
    # torchmetrics squashes scores outside [0, 1] with a sigmoid, which ties every distance
    # above ~100; ranks of -d in (0, 1] keep the order and the ties for any real d.
    score = torch.from_numpy(rankdata(-rank.double().numpy()) / len(rank))
    auc = float(binary_auroc(score, y.long())) if finite and 0 < y.sum() < len(y) else float("nan")
    return {
        "acc": accuracy_at(d, y, FIXED_THRESHOLD),
        "auc": auc,
        "acc_tuned": accuracy_at(rank, y, tuned_threshold),
        "threshold": tuned_threshold,
    }
