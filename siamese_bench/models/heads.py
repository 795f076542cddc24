"""Heads: how a pair of embeddings becomes a dissimilarity.

The one convention that lets every head work with every loss: a head returns a
dissimilarity d(a, b) >= 0, where LOWER MEANS MORE ALIKE (abs-diff-linear, C4's learned
linear distance, is the one head that may go below 0).
- Distance heads (euclidean, l1) return the distance itself.
- Probabilistic heads compute a logit z with p = sigmoid(z) = P(same) and return
  d = 1 - p (= sigmoid(-z)), plus the logit. Contrastive loss on such a head is exactly C2's
  "inverted" loss y * max(1 - p, 0)^2 + (1 - y) * p^2 (contrastive on d = 1 - p, m = 1);
  BCE uses the logit; triplet loss compares d(a, p) with d(a, n).
The sources' fixed decision rule is the same for both kinds: "same" when d < 0.5
(distance below 0.5, or probability above 0.5).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from siamese_bench.models.registry import HEADS

KERAS_EPSILON = 1e-7  # Keras' K.epsilon(), used inside the square root of C1's distance


class HeadOutput(NamedTuple):
    dissimilarity: torch.Tensor  # (B,), lower = more alike
    logit: torch.Tensor | None  # (B,) logit of P(same), probabilistic heads only

    @property
    def ranking(self) -> torch.Tensor:
        """What to rank pairs by (lower = more alike): -logit for probabilistic heads, exact in
        float32 where d = sigmoid(-z) saturates to exactly 0 or 1 (|z| above ~17) and ties."""
        return -self.logit if self.logit is not None else self.dissimilarity


class Head(nn.Module):
    """Base class: maps embeddings a, b of shape (B, D) to a HeadOutput."""

    has_logit: ClassVar[bool] = False
    may_be_negative: ClassVar[bool] = False
    # d(a, b) == d(b, a) for every pair? The C3 account predicts that a head learns sameness
    # only through a symmetric (even) feature; tests/models/test_heads.py checks what each head states.
    symmetric: ClassVar[bool] = False  # only a learned linear "distance" (C4) breaks d >= 0

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Keras' euclidean_distance: sqrt(max(sum((a - b)^2), eps)), finite gradient at a == b."""
    return torch.sqrt((a - b).pow(2).sum(dim=1).clamp_min(KERAS_EPSILON))


@HEADS.register("euclidean")
class EuclideanHead(Head):
    """C1: d = sqrt(max(sum((a - b)^2), eps)), Keras' euclidean_distance."""

    symmetric = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        return HeadOutput(euclidean(a, b), None)


@HEADS.register("l1")
class L1Head(Head):
    """C4's advice: Manhattan distance, said to beat L2 in high dimensions."""

    symmetric = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        return HeadOutput((a - b).abs().sum(dim=1), None)


@HEADS.register("cosine-distance")
class CosineDistanceHead(Head):
    """d = 1 - cos(a, b) in [0, 2]: the Euclidean distance of L2-normalised embeddings, squared
    and halved (FaceNet trains on the unit sphere). No parameters, so a distance loss applies."""

    symmetric = True

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        return HeadOutput(1 - F.cosine_similarity(a, b, dim=1, eps=1e-8), None)


@HEADS.register("abs-diff-linear")
class AbsDiffLinearHead(Head):
    """C4's final variant: |a - b| -> Dense(1, linear), used directly as a learned distance
    (no sigmoid); trained with contrastive loss in the source. Unlike every other head its
    output can be negative."""

    symmetric = True

    may_be_negative = True

    def __init__(self, embedding_dim: int) -> None:
        super().__init__(embedding_dim)
        self.out = nn.Linear(embedding_dim, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        return HeadOutput(self.out((a - b).abs()).squeeze(-1), None)


class ProbabilisticHead(Head):
    """A pair feature vector followed by an output network ending in one logit.

    Subclasses define `pair_features` (and `feature_dim` when it is not D); `hidden` adds
    Dense(relu) layers between the features and the output unit.
    """

    has_logit = True
    hidden: ClassVar[tuple[int, ...]] = ()

    def __init__(self, embedding_dim: int) -> None:
        super().__init__(embedding_dim)
        layers: list[nn.Module] = []
        width = self.feature_dim(embedding_dim)
        for units in self.hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, 1))
        self.out = nn.Sequential(*layers)

    def feature_dim(self, embedding_dim: int) -> int:
        return embedding_dim

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        logit = self.out(self.pair_features(a, b)).squeeze(-1)  # (B, F) -> (B,)
        return HeadOutput(torch.sigmoid(-logit), logit)  # 1 - sigmoid(z) == sigmoid(-z)


@HEADS.register("subtract-dense")
class SubtractDenseHead(ProbabilisticHead):
    """C2: a - b -> Dense(1, sigmoid). The logit is odd under swapping a and b."""

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


@HEADS.register("abs-diff-dense")
class AbsDiffDenseHead(ProbabilisticHead):
    """Koch et al. 2015: |a - b| -> weighted sigmoid; symmetric in (a, b)."""

    symmetric = True

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs()


@HEADS.register("square-diff-dense")
class SquareDiffDenseHead(ProbabilisticHead):
    """C3's sharper account: a square of the difference is symmetric, so it should learn."""

    symmetric = True

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2)


@HEADS.register("one-minus-diff-dense")
class OneMinusDiffDenseHead(ProbabilisticHead):
    """C3 answer's first transform, 1 - (a - b). Still affine in a - b, so still odd up to
    the bias: the sharper account predicts it fails like subtract-dense."""

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1.0 - (a - b)


@HEADS.register("reciprocal-dense")
class ReciprocalDenseHead(ProbabilisticHead):
    """C3 answer's second transform: a reciprocal of the difference, then normalised.

    1 / x is made finite as x / (x^2 + eps); the result is L2-normalised per pair. Both steps
    keep the feature odd in (a - b), so the sharper account predicts failure here too.
    """

    eps: ClassVar[float] = 1e-3

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = a - b
        return F.normalize(diff / (diff.pow(2) + self.eps), dim=1)


@HEADS.register("concat-dense")
class ConcatDenseHead(ProbabilisticHead):
    """C5: [a, b] -> Dense(1, sigmoid). Order-dependent; no built-in notion of sameness."""

    def feature_dim(self, embedding_dim: int) -> int:
        return 2 * embedding_dim

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1)  # (B, 2D)


@HEADS.register("subtract-mlp")
class SubtractMLPHead(SubtractDenseHead):
    """C3's fix: hidden Dense(relu) layers after the subtraction break the oddness."""

    hidden = (128, 128)


@HEADS.register("distance-bn-dense")
class DistanceBNDenseHead(ProbabilisticHead):
    """C6's pairwise model: Euclidean distance -> BatchNorm -> Dense(1, sigmoid). A learned
    monotone rescaling of the distance, so it can only be as good as the distance itself."""

    symmetric = True

    def __init__(self, embedding_dim: int) -> None:
        super().__init__(embedding_dim)
        self.norm = nn.BatchNorm1d(1)

    def feature_dim(self, embedding_dim: int) -> int:
        return 1

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.norm(euclidean(a, b).unsqueeze(1))  # (B, 1)


@HEADS.register("sbert")
class SBERTHead(ProbabilisticHead):
    """SBERT's classification head (Reimers & Gurevych 2019): [u, v, |u - v|] -> Dense(1). Not
    symmetric under swapping the pair (u and v keep their places), but it carries the
    symmetric |u - v| that the C3 account says a head needs to learn sameness."""

    symmetric = False

    def feature_dim(self, embedding_dim: int) -> int:
        return 3 * embedding_dim

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b, (a - b).abs()], dim=1)  # (B, 3D)


@HEADS.register("sbert-prod-mlp")
class SBERTProductMLPHead(SBERTHead):
    """[u, v, |u - v|, u * v] -> Dense(128, relu) -> Dense(1): the InferSent/SBERT feature set
    with the element-wise product, and a hidden layer. Not symmetric (u, v in place)."""

    hidden = (128,)

    def feature_dim(self, embedding_dim: int) -> int:
        return 4 * embedding_dim

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b, (a - b).abs(), a * b], dim=1)  # (B, 4D)


@HEADS.register("cosine")
class CosineHead(Head):
    """Cosine similarity with a learned scale and offset: logit = s * cos(u, v) + c, the scale
    letting BCE push probabilities towards 0 and 1, which a bounded cosine alone cannot.
    Symmetric. s = exp(t) stays positive, so the logit always grows with the cosine, and starts
    at 10 (CLIP's and SigLIP's temperature); c starts at -5, so P(same) = 0.5 at cos = 0.5.
    Neither is a dense layer, so the Keras init leaves them alone. (A Dense(1) on the cosine,
    glorot-initialised, started with |s| < 1 and, at some seeds, s < 0: under C1's recipe the
    encoder then learned to push same pairs apart and test AUC stayed at 0.47.)"""

    has_logit = True
    symmetric = True
    INITIAL_SCALE: ClassVar[float] = 10.0

    def __init__(self, embedding_dim: int) -> None:
        super().__init__(embedding_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.INITIAL_SCALE)))
        self.offset = nn.Parameter(torch.tensor(-self.INITIAL_SCALE / 2))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> HeadOutput:
        logit = self.log_scale.exp() * F.cosine_similarity(a, b, dim=1, eps=1e-8) + self.offset
        return HeadOutput(torch.sigmoid(-logit), logit)


@HEADS.register("bilinear")
class BilinearHead(ProbabilisticHead):
    """Symmetrised bilinear similarity: logit = u^T ((W + W^T) / 2) v + c. Symmetric by
    construction (a plain u^T W v is not, unless W is)."""

    symmetric = True

    def __init__(self, embedding_dim: int) -> None:
        super().__init__(embedding_dim)
        self.weight = nn.Parameter(torch.empty(embedding_dim, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def feature_dim(self, embedding_dim: int) -> int:
        return 1

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        w = (self.weight + self.weight.T) / 2
        return ((a @ w) * b).sum(dim=1, keepdim=True)  # (B, 1)
