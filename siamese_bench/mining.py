"""Triplet mining on a batch (FaceNet, Schroff et al. 2015; CLAIMS.md C5): random triplets make
the task too easy, so pick hard negatives from the batch's dissimilarity matrix.

`d` is (B, M): row i holds d(anchor i, candidate j) for every candidate in the batch (the
anchors and their positives), `pos` the column of anchor i's own positive. Policies:
- "batch-hard": the hardest positive (largest d among same-class candidates other than the
  anchor itself) and the hardest negative (smallest d among other-class candidates);
- "semi-hard": the anchor's own positive and the closest negative still farther than it
  (d_an > d_ap); where none is, the farthest negative (as TensorFlow Addons does).
Anchors without any other-class candidate in the batch are dropped (`keep`).
"""

from __future__ import annotations

import torch

MINING_POLICIES = ("random", "batch-hard", "semi-hard")


def mine(d: torch.Tensor, anchor_labels: torch.Tensor, candidate_labels: torch.Tensor,
         pos: torch.Tensor, anchor_index: torch.Tensor, policy: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns d_ap (K,), d_an (K,) and keep (B,), the anchors that have a negative."""
    same = anchor_labels[:, None] == candidate_labels[None, :]  # (B, M)
    negative = ~same
    keep = negative.any(dim=1)
    inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
    if policy == "batch-hard":
        positive = same.clone()
        positive[torch.arange(len(d)), anchor_index] = False  # not the anchor itself
        d_ap = torch.where(positive, d, -inf).max(dim=1).values
        d_an = torch.where(negative, d, inf).min(dim=1).values
    elif policy == "semi-hard":
        d_ap = d.gather(1, pos[:, None]).squeeze(1)  # (B,)
        farther = negative & (d > d_ap[:, None])
        closest_farther = torch.where(farther, d, inf).min(dim=1).values
        farthest = torch.where(negative, d, -inf).max(dim=1).values
        d_an = torch.where(farther.any(dim=1), closest_farther, farthest)
    else:
        raise ValueError(f"mining policy {policy!r}; valid: {', '.join(MINING_POLICIES[1:])}")
    return d_ap[keep], d_an[keep], keep
