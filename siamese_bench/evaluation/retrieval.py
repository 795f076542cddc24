"""Retrieval metrics of test embeddings, as the metric-learning literature reports them
(Musgrave, Belongie & Lim, "A Metric Learning Reality Check", ECCV 2020).

Every labelled test item queries all the others, ranked by Euclidean distance between the
encoder's embeddings (not the head: a learned head over all N^2 pairs would cost N^2 head
calls; for distance heads the two coincide up to L1 vs L2). With R the number of other items
sharing the query's label:
- precision@1: the nearest neighbour shares the label;
- R-precision: the share of the R nearest that share the label;
- MAP@R: mean average precision over the R nearest, (1/R) sum_{i<=R} P(i) * rel(i), which,
  unlike R-precision, rewards putting the correct ones first.
Each is averaged over queries with R >= 1.
"""

from __future__ import annotations

import torch

MAX_ITEMS = 5000  # a fixed random subset of larger test sets keeps this to seconds on a CPU
CHUNK = 512  # queries per distance block


def sample_index(n: int, max_items: int = MAX_ITEMS, seed: int = 0) -> torch.Tensor:
    """The items that query each other: all of them, or a fixed random `max_items` of a larger
    set (the same subset for every run on the same data), chosen before anything is encoded."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_items]


@torch.no_grad()
def retrieval_metrics(embeddings: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """precision@1, R-precision and MAP@R of `embeddings` (N, D) labelled `labels` (N,), every
    item querying all the others (subsample with sample_index first)."""
    emb, lab = embeddings.detach().float().cpu().flatten(1), labels.detach().cpu().long().flatten()
    counts = torch.bincount(lab - lab.min())[lab - lab.min()] - 1  # R per query: others with its label
    r_max = int(counts.max()) if len(counts) else 0
    if r_max == 0:
        return {}
    hits_1 = r_prec = map_r = 0.0
    queries = 0
    positions = torch.arange(1, r_max + 1, dtype=torch.float32)  # 1..R_max
    for start in range(0, len(emb), CHUNK):
        q = slice(start, start + CHUNK)
        d = torch.cdist(emb[q], emb)  # (C, N)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")  # not itself
        nearest = d.topk(r_max, dim=1, largest=False).indices  # (C, R_max), nearest first
        rel = (lab[nearest] == lab[q, None]).float()
        r = counts[q].float()
        within = positions[None, :] <= r[:, None]  # only the first R of each query count
        valid = r > 0
        rel_r = rel * within
        precision_at_i = torch.cumsum(rel_r, dim=1) / positions[None, :]
        hits_1 += float(rel[valid, 0].sum())
        r_prec += float((rel_r.sum(1)[valid] / r[valid]).sum())
        map_r += float(((precision_at_i * rel_r).sum(1)[valid] / r[valid]).sum())
        queries += int(valid.sum())
    if queries == 0:
        return {}
    return {
        "retrieval/precision_at_1": hits_1 / queries,
        "retrieval/r_precision": r_prec / queries,
        "retrieval/map_at_r": map_r / queries,
    }
