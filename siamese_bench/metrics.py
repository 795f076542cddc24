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
    """The cut t maximising accuracy of the rule "same when d < t" (midpoint between scores)."""
    d_sorted, order = torch.sort(d.float())
    y_sorted = y.float()[order]
    # Predict "same" for the first k sorted pairs, k = 0..N: correct = same among them plus
    # different among the rest.
    same_below = torch.cat([torch.zeros(1), torch.cumsum(y_sorted, 0)])  # (N+1,)
    diff_below = torch.arange(len(d) + 1, dtype=torch.float32) - same_below
    correct = same_below + ((1 - y_sorted).sum() - diff_below)
    k = int(torch.argmax(correct))
    padded = torch.cat([d_sorted[:1] - 1e-6, d_sorted, d_sorted[-1:] + 1e-6])  # (N+2,)
    return float((padded[k] + padded[k + 1]) / 2)


def accuracy_at(d: torch.Tensor, y: torch.Tensor, threshold: float) -> float:
    return float(binary_accuracy((d < threshold).long(), y.long()))


def pair_metrics(d: torch.Tensor, y: torch.Tensor, tuned_threshold: float | None = None) -> dict[str, float]:
    """acc (fixed rule), auc, and acc_tuned at `tuned_threshold` (own best cut when None)."""
    d, y = d.detach().float().cpu(), y.detach().cpu()
    if tuned_threshold is None:
        tuned_threshold = best_threshold(d, y)
    finite = torch.isfinite(d).all()
    # torchmetrics squashes scores outside [0, 1] with a sigmoid, which ties every distance
    # above ~100; ranks of -d in (0, 1] keep the order and the ties for any real d.
    score = torch.from_numpy(rankdata(-d.double().numpy()) / len(d))
    auc = float(binary_auroc(score, y.long())) if finite and 0 < y.sum() < len(y) else float("nan")
    return {
        "acc": accuracy_at(d, y, FIXED_THRESHOLD),
        "auc": auc,
        "acc_tuned": accuracy_at(d, y, tuned_threshold),
        "threshold": tuned_threshold,
    }
