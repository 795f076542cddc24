"""Losses, all written against the head convention (lower dissimilarity = more alike) and the
label convention y = 1 same, y = 0 different.

A loss returns per-sample values; the base class reduces them and reports the fraction of
active samples (loss > 0), since margin losses go silently to zero once every pair or triplet
in a batch meets the margin.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from siamese_bench.models.heads import HeadOutput
from siamese_bench.models.registry import LOSSES


class LossValue(NamedTuple):
    loss: torch.Tensor  # scalar mean over the batch
    active_fraction: torch.Tensor  # scalar in [0, 1]


class Loss(nn.Module):
    """Base class. Pair losses (PairLoss) read a head's output and y; the triplet loss reads
    d(a, p) and d(a, n); training.objective picks the objective from which one a loss is."""

    uses_margin: ClassVar[bool] = False
    needs_logit: ClassVar[bool] = False

    def __init__(self, margin: float | None = None) -> None:
        super().__init__()
        if self.uses_margin:
            if margin is None or not margin > 0:
                raise ValueError(f"margin must be positive, got {margin}")
        self.margin = margin

    @staticmethod
    def reduce(per_sample: torch.Tensor, weight: torch.Tensor | None = None) -> LossValue:
        """The batch mean; with `weight` (1.0 counts, 0.0 does not) the mean over what counts."""
        if weight is None:
            return LossValue(per_sample.mean(), (per_sample > 0).float().mean())
        return LossValue(weighted_mean(per_sample, weight), weighted_mean((per_sample > 0).float(), weight))


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The mean of `values` where `weight` is 1.0 (0.0 when none is): fixed shapes for vmap."""
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


class PairLoss(Loss):
    def per_sample(self, out: HeadOutput, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, out: HeadOutput, y: torch.Tensor) -> LossValue:
        return self.reduce(self.per_sample(out, y.to(out.dissimilarity.dtype)))


@LOSSES.register("contrastive")
class ContrastiveLoss(PairLoss):
    """Hadsell, Chopra, LeCun 2006 with y = 1 for same: y d^2 + (1 - y) max(m - d, 0)^2."""

    uses_margin = True

    def per_sample(self, out: HeadOutput, y: torch.Tensor) -> torch.Tensor:
        d = out.dissimilarity
        assert self.margin is not None, "uses_margin: checked in __init__"
        return y * d.pow(2) + (1 - y) * F.relu(self.margin - d).pow(2)


@LOSSES.register("bce")
class BCELoss(PairLoss):
    """Binary cross-entropy on the head's logit of P(same) (numerically stable form)."""

    needs_logit = True

    def per_sample(self, out: HeadOutput, y: torch.Tensor) -> torch.Tensor:
        assert out.logit is not None, "checked by check_compatible"
        return F.binary_cross_entropy_with_logits(out.logit, y, reduction="none")


@LOSSES.register("bce-sigmoid")
class SigmoidBCELoss(PairLoss):
    """C4's "sigmoid + BCE": cross-entropy on the probability itself, clipped to
    [1e-7, 1 - 1e-7] as Keras does, instead of the stable form on the logit (`bce`). Kept to
    measure the advice "use a linear output with BCE from logits"."""

    needs_logit = True
    eps = 1e-7  # Keras' epsilon

    def per_sample(self, out: HeadOutput, y: torch.Tensor) -> torch.Tensor:
        p = (1 - out.dissimilarity).clamp(self.eps, 1 - self.eps)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


@LOSSES.register("triplet")
class TripletLoss(Loss):
    """FaceNet: max(d(a,p)^2 - d(a,n)^2 + alpha, 0); `squared=False` uses plain distances."""

    uses_margin = True

    def __init__(self, margin: float | None = None, squared: bool = True) -> None:
        super().__init__(margin)
        self.squared = squared

    def forward(self, d_ap: torch.Tensor, d_an: torch.Tensor, weight: torch.Tensor | None = None) -> LossValue:
        if self.squared:
            d_ap, d_an = d_ap.pow(2), d_an.pow(2)
        assert self.margin is not None, "uses_margin: checked in __init__"
        return self.reduce(F.relu(d_ap - d_an + self.margin), weight)


def check_compatible(head_name: str, loss_name: str) -> None:
    """Refuse head/loss pairs that cannot work, naming the ones that can."""
    from siamese_bench.models.registry import HEADS

    loss_cls, head_cls = LOSSES.get(loss_name), HEADS.get(head_name)
    if loss_cls.needs_logit and not head_cls.has_logit:
        ok = [n for n in HEADS.names() if HEADS.get(n).has_logit]
        raise ValueError(
            f"loss {loss_name!r} needs a head that outputs a logit, and head {head_name!r} "
            f"outputs a distance; heads that work with it: {', '.join(ok)}"
        )
