"""Triplet miners: which candidates of a batch form each anchor's triplet, chosen under
no_grad from the head's dissimilarities (FaceNet, Schroff et al. 2015; CLAIMS.md C5). The
training objective scores the chosen pairs again with gradients. "random" is the pass-through
miner: the sampled triplet as is."""

from __future__ import annotations

from typing import ClassVar

import torch

from siamese_bench.models.heads import Head
from siamese_bench.models.registry import MINERS


class Miner:
    """Picks triplets from a batch. `fields` are the batch tensors encoded as candidates, in
    order; `select` returns (anchor, positive, negative) row indices into those embeddings."""

    fields: ClassVar[tuple[str, ...]] = ("anchor", "positive", "negative")
    # True (set by seed stacking on its copy): `select_weighted` keeps every anchor, its shapes
    # independent of the data, as torch.func.vmap needs
    fixed_shapes: bool = False

    def select(
        self, head: Head, emb: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def select_weighted(
        self, head: Head, emb: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`select`'s triplets and a weight per triplet (1.0 counts, 0.0 does not), or None when
        every triplet counts: what the training step calls."""
        return (*self.select(head, emb, labels), None)


@MINERS.register("random")
class RandomMiner(Miner):
    """Pass-through: the sampled triplet (anchor i, its positive, its sampled negative)."""

    def select(self, head, emb, labels):
        b = len(emb) // 3
        i = torch.arange(b, device=emb.device)
        return i, b + i, 2 * b + i


class BatchMiner(Miner):
    """FaceNet's in-batch mining (Schroff et al. 2015; CLAIMS.md C5): every anchor against every
    anchor and positive of the batch (the sampled negatives are not used); anchors without an
    other-class candidate are dropped."""

    fields = ("anchor", "positive")

    def select(self, head, emb, labels):
        a, p, n, _ = self._mine(head, emb, labels, fixed=False)
        return a, p, n

    def select_weighted(self, head, emb, labels):
        return self._mine(head, emb, labels, fixed=self.fixed_shapes)

    @torch.no_grad()
    def _mine(self, head, emb, labels, fixed: bool):
        """Triplets of every anchor that has an other-class candidate; with `fixed`, of every
        anchor, those without one weighted 0 (same triplets, fixed shapes)."""
        b, m, dim = len(emb) // 2, len(emb), emb.shape[1]
        a = emb[:b, None, :].expand(b, m, dim).reshape(b * m, dim)  # (B M, D)
        c = emb[None, :, :].expand(b, m, dim).reshape(b * m, dim)
        d = head(a, c).dissimilarity.view(b, m)  # (B, M): anchor i against candidate j
        candidate_labels = torch.cat([labels, labels])
        same = labels[:, None] == candidate_labels[None, :]
        negative = ~same
        idx = torch.arange(b, device=emb.device)
        positive, chosen_negative = self.pick(d, same, negative, idx)
        keep = negative.any(dim=1)
        if fixed:
            return idx, positive, chosen_negative, keep.to(emb.dtype)
        return idx[keep], positive[keep], chosen_negative[keep], None

    def pick(self, d, same, negative, idx) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


@MINERS.register("batch-hard")
class BatchHardMiner(BatchMiner):
    """The hardest positive (largest d among same-class candidates other than the anchor) and
    the hardest negative (smallest d among other-class candidates)."""

    def pick(self, d, same, negative, idx):
        inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
        positive = same.clone()
        positive[idx, idx] = False  # not the anchor itself
        return torch.where(positive, d, -inf).argmax(dim=1), torch.where(negative, d, inf).argmin(dim=1)


@MINERS.register("semi-hard")
class SemiHardMiner(BatchMiner):
    """The anchor's own positive and the closest negative still farther than it (d_an > d_ap);
    where none is, the farthest negative (as TensorFlow Addons does)."""

    def pick(self, d, same, negative, idx):
        inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
        own = len(idx) + idx  # the anchor's positive sits at column B + i
        d_ap = d[idx, own]
        farther = negative & (d > d_ap[:, None])
        closest_farther = torch.where(farther, d, inf).argmin(dim=1)
        farthest = torch.where(negative, d, -inf).argmax(dim=1)
        return own, torch.where(farther.any(dim=1), closest_farther, farthest)
