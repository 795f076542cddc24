"""Training objectives: what one optimizer step computes, chosen once from the loss.

An objective builds the training sampler (pairs or triplets), computes a batch's loss and
training statistics, evaluates a pair loss on validation pairs where it has one, and names
the metric early stopping watches. The LightningModule and the training setup call these and
never branch on the kind of loss.

Triplet objectives take a miner (MINERS): it picks, under no_grad, which candidates of a batch
form each anchor's triplet; the chosen pairs are then scored again with gradients, so only
they enter the backward pass. "random" is the pass-through miner: the sampled triplet as is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import torch

from siamese_bench.heads import Head, HeadOutput
from siamese_bench.losses import LOSSES, Loss, PairLoss
from siamese_bench.registry import Registry
from siamese_bench.samplers import PairIndex, TripletIndex, keras_pairs, triplets

FIXED_THRESHOLD = 0.5  # the sources' rule: "same" when d < 0.5 (see metrics.py)

Batch = dict[str, torch.Tensor]
Encoder = Callable[[torch.Tensor], torch.Tensor]


class StepResult(NamedTuple):
    loss: torch.Tensor  # scalar, with gradients
    stats: dict[str, torch.Tensor]  # detached scalars, averaged over the epoch by the caller
    size: int  # samples in the batch (the weight of its stats)


# -- miners --------------------------------------------------------------------------------------


class Miner:
    """Picks triplets from a batch. `fields` are the batch tensors encoded as candidates, in
    order; `select` returns (anchor, positive, negative) row indices into those embeddings."""

    fields: ClassVar[tuple[str, ...]] = ("anchor", "positive", "negative")

    def select(self, head: Head, emb: torch.Tensor, labels: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError


MINERS: Registry[type[Miner]] = Registry("miner")


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

    @torch.no_grad()
    def select(self, head, emb, labels):
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
        return idx[keep], positive[keep], chosen_negative[keep]

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


# -- objectives ----------------------------------------------------------------------------------


class Objective:
    """What training optimises, built once from the config's loss."""

    needs_classes: ClassVar[bool] = False  # triplets need class labels; ready-made pairs have none
    monitor: ClassVar[tuple[str, str]] = ("val/loss", "min")  # (metric, mode) for early stopping
    accuracy_key: ClassVar[str] = "train/acc"

    def __init__(self, loss: Loss) -> None:
        self.loss = loss

    def sampler(self, y: torch.Tensor, seed: int, negatives: str) -> Callable[[int], PairIndex | TripletIndex]:
        """The training set of an epoch, from the seed (stream 0 of the seed's pair streams)."""
        raise NotImplementedError

    def step(self, encoder: Encoder, head: Head, batch: Batch) -> StepResult:
        raise NotImplementedError

    def eval_loss(self, out: HeadOutput, y: torch.Tensor) -> torch.Tensor | None:
        """The loss on validation or test pairs, where the objective has one."""
        return None

    @property
    def collapse_margin(self) -> float | None:
        """A margin whose value the training loss sticks to when embeddings collapse."""
        return None


def pair_stream(y: torch.Tensor, seed: int, stream: int) -> Callable[[int], PairIndex]:
    """Keras-recipe pairs of `y` for each epoch, from (seed, stream, epoch)."""
    return lambda epoch: keras_pairs(y, torch.Generator().manual_seed(seed * 1000 + stream + epoch))


class PairObjective(Objective):
    """Pairs with y = 1 same; the loss reads the head's output (distance or logit)."""

    def sampler(self, y, seed, negatives):
        return pair_stream(y, seed, 0)

    def step(self, encoder, head, batch):
        x1, x2 = batch["x1"], batch["x2"]
        emb = encoder(torch.cat([x1, x2]))  # one encoder pass over both sides
        out = head(*emb.split(len(x1)))
        value = self.loss(out, batch["y"])
        correct = ((out.dissimilarity < FIXED_THRESHOLD).float() == batch["y"]).float().mean()
        return StepResult(value.loss, {"train/loss": value.loss.detach(), self.accuracy_key: correct.detach(),
                                       "train/active_fraction": value.active_fraction.detach()}, len(x1))

    def eval_loss(self, out, y):
        return self.loss(out, y).loss


class TripletObjective(Objective):
    """Triplets (anchor, positive, negative), chosen by a miner; d(a, p) against d(a, n)."""

    needs_classes = True
    monitor = ("val/auc", "max")  # no pair loss to watch on validation pairs
    accuracy_key = "train/triplet_order_acc"

    def __init__(self, loss: Loss, miner: Miner) -> None:
        super().__init__(loss)
        self.miner = miner

    def sampler(self, y, seed, negatives):
        return lambda epoch: triplets(y, torch.Generator().manual_seed(seed * 1000 + epoch), negatives)

    def step(self, encoder, head, batch):
        emb = encoder(torch.cat([batch[f] for f in self.miner.fields]))
        a, p, n = self.miner.select(head, emb.detach(), batch["label"])
        d_ap, d_an = head(emb[a], emb[p]).dissimilarity, head(emb[a], emb[n]).dissimilarity
        value = self.loss(d_ap, d_an)
        order = (d_ap < d_an).float().mean()  # triplets ordered right
        return StepResult(value.loss, {"train/loss": value.loss.detach(), self.accuracy_key: order.detach(),
                                       "train/active_fraction": value.active_fraction.detach()},
                          len(batch["anchor"]))

    @property
    def collapse_margin(self) -> float | None:
        return self.loss.margin


def build_objective(loss: Loss, mining: str = "random") -> Objective:
    """The objective a loss needs: pair losses train on pairs, the others on mined triplets."""
    if isinstance(loss, PairLoss):
        if mining != "random":
            raise ValueError(f"mining {mining!r} needs a triplet loss")
        return PairObjective(loss)
    return TripletObjective(loss, MINERS.get(mining)())


def objective_class(loss_name: str) -> type[Objective]:
    """The objective class of a registered loss, without building it (config validation)."""
    return PairObjective if issubclass(LOSSES.get(loss_name), PairLoss) else TripletObjective
