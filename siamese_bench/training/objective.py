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

from siamese_bench.evaluation.metrics import FIXED_THRESHOLD
from siamese_bench.models.heads import Head, HeadOutput
from siamese_bench.models.losses import Loss, PairLoss, weighted_mean
from siamese_bench.models.miners import Miner
from siamese_bench.models.registry import LOSSES, MINERS
from siamese_bench.training.samplers import PairIndex, TripletIndex, pair_stream, triplets

Batch = dict[str, torch.Tensor]
Encoder = Callable[[torch.Tensor], torch.Tensor]


class StepResult(NamedTuple):
    loss: torch.Tensor  # scalar, with gradients
    stats: torch.Tensor  # (len(Objective.stat_names),) detached, averaged over the epoch by the caller
    size: int  # samples in the batch (the weight of its stats)


# -- objectives ----------------------------------------------------------------------------------


class Objective:
    """What training optimises, built once from the config's loss."""

    needs_classes: ClassVar[bool] = False  # triplets need class labels; ready-made pairs have none
    monitor: ClassVar[tuple[str, str]] = ("val/loss", "min")  # (metric, mode) for early stopping
    accuracy_key: ClassVar[str] = "train/acc"

    @property
    def stat_names(self) -> tuple[str, ...]:
        """What StepResult.stats holds, in order (one stacked tensor: cheaper than a dict per step)."""
        return ("train/loss", self.accuracy_key, "train/active_fraction")

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
        stats = torch.stack([value.loss.detach(), correct.detach(), value.active_fraction.detach()])
        return StepResult(value.loss, stats, len(x1))

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
        a, p, n, weight = self.miner.select_weighted(head, emb.detach(), batch["label"])
        d_ap, d_an = head(emb[a], emb[p]).dissimilarity, head(emb[a], emb[n]).dissimilarity
        ordered = (d_ap < d_an).float()  # triplets ordered right
        if weight is None:
            value, order = self.loss(d_ap, d_an), ordered.mean()
        else:  # a stacked miner's fixed-shape triplets: those weighted 0 do not count
            value, order = self.loss(d_ap, d_an, weight=weight), weighted_mean(ordered, weight)
        stats = torch.stack([value.loss.detach(), order.detach(), value.active_fraction.detach()])
        return StepResult(value.loss, stats, len(batch["anchor"]))

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
