"""Pair and triplet sampling, vectorised; samples are index tensors into an image tensor.

Pairs follow the Keras `mnist_siamese` recipe (CLAIMS.md, C1): for each class c and i < n,
a positive (image i of c, image i+1 of c) and a negative (image i of c, image i of a random
other class), where n = (smallest class size) - 1 and "image i of c" means the i-th image of
class c in dataset order. Labels: y = 1 same, y = 0 different.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch

from siamese_bench.core.config import NEGATIVE_POLICIES

PASS_THROUGH = ("y", "label")  # batch fields that are values, not image indices


@dataclass(frozen=True)
class PairIndex:
    left: torch.Tensor  # (P,) int64 image indices
    right: torch.Tensor  # (P,)
    y: torch.Tensor  # (P,) float32, 1 = same

    def __len__(self) -> int:
        return len(self.y)

    def fields(self) -> dict[str, torch.Tensor]:
        return {"x1": self.left, "x2": self.right, "y": self.y}


@dataclass(frozen=True)
class TripletIndex:
    anchor: torch.Tensor  # (T,) int64 image indices
    positive: torch.Tensor  # (T,) same class as anchor
    negative: torch.Tensor  # (T,) another class, unless the policy is "any"
    label: torch.Tensor | None = None  # (T,) the anchor's class, for mining in the batch

    def __len__(self) -> int:
        return len(self.anchor)

    def fields(self) -> dict[str, torch.Tensor]:
        out = {"anchor": self.anchor, "positive": self.positive, "negative": self.negative}
        return out if self.label is None else {**out, "label": self.label}


def class_table(y: torch.Tensor) -> torch.Tensor:
    """(C, m) image indices: row c holds the first m images of the c-th class present in y
    (ascending label; absent labels, e.g. classes held out for validation, are skipped) in
    dataset order, with m the size of the smallest class."""
    _, y = torch.unique(y, return_inverse=True)  # dense 0..C-1
    num_classes = int(y.max()) + 1
    counts = torch.bincount(y, minlength=num_classes)
    if int(counts.min()) < 2:
        raise ValueError(f"every class needs at least 2 images to form pairs; counts: {counts.tolist()}")
    order = torch.argsort(y, stable=True)  # (N,) grouped by class, dataset order within a class
    starts = torch.cumsum(counts, 0) - counts  # (C,)
    m = int(counts.min())
    return order[starts[:, None] + torch.arange(m)[None, :]]  # (C, m)


def _other_classes(num_classes: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """(C, n) class ids, each uniformly one of the other classes (Keras' (c + randrange(1, C)) % C)."""
    shift = torch.randint(1, num_classes, (num_classes, n), generator=generator)
    return (torch.arange(num_classes)[:, None] + shift) % num_classes


def keras_pairs(y: torch.Tensor, generator: torch.Generator) -> PairIndex:
    table = class_table(y)  # (C, m)
    num_classes, n = table.shape[0], table.shape[1] - 1
    anchor, positive = table[:, :n], table[:, 1:]  # (C, n) each
    negative = table[_other_classes(num_classes, n, generator), torch.arange(n)[None, :]]  # (C, n)
    left = torch.stack([anchor, anchor], dim=2).reshape(-1)  # (2 C n,) pos, neg interleaved
    right = torch.stack([positive, negative], dim=2).reshape(-1)
    labels = torch.tensor([1.0, 0.0]).repeat(num_classes * n)
    return PairIndex(left, right, labels)


def pair_stream(y: torch.Tensor, seed: int, stream: int) -> Callable[[int], PairIndex]:
    """Keras-recipe pairs of `y` for each epoch, from (seed, stream, epoch)."""
    return lambda epoch: keras_pairs(y, torch.Generator().manual_seed(seed * 1000 + stream + epoch))


def triplets(y: torch.Tensor, generator: torch.Generator, negatives: str = "other") -> TripletIndex:
    """Anchor and positive as the recipe's positive pairs; the negative policy:
    - "other": a random image of a random other class (guaranteed different);
    - "any": C6's sampling, a random draw from the pooled anchors and positives, which may
      share the anchor's class."""
    if negatives not in NEGATIVE_POLICIES:
        raise ValueError(f"negative policy {negatives!r}; valid: {', '.join(NEGATIVE_POLICIES)}")
    table = class_table(y)  # (C, m)
    num_classes, m = table.shape
    n = m - 1
    anchor, positive = table[:, :n].reshape(-1), table[:, 1:].reshape(-1)  # (C n,)
    label = torch.arange(num_classes).repeat_interleave(n)  # (C n,) class of each anchor
    if negatives == "other":
        cls = _other_classes(num_classes, n, generator)  # (C, n)
        col = torch.randint(0, m, (num_classes, n), generator=generator)
        negative = table[cls, col].reshape(-1)
    else:
        pool = torch.cat([anchor, positive])  # (2 C n,)
        negative = pool[torch.randint(0, len(pool), (len(anchor),), generator=generator)]
    return TripletIndex(anchor, positive, negative, label)


Index = PairIndex | TripletIndex


def remap(index: Index, order: torch.Tensor) -> Index:
    """An index drawn on images[order], pointing into images instead."""
    values: dict[str, Any] = {
        f.name: (v if f.name in PASS_THROUGH or v is None else order[v])
        for f in fields(index)
        for v in [getattr(index, f.name)]
    }  # Any: a label may be None
    return type(index)(**values)


def index_to(index: Index, device: torch.device) -> Index:
    """The same index set with its tensors on `device`."""
    values: dict[str, Any] = {
        f.name: (None if v is None else v.to(device)) for f in fields(index) for v in [getattr(index, f.name)]
    }
    return type(index)(**values)


def concat(parts: list[Index]) -> Index:
    first = parts[0]
    values: dict[str, Any] = {
        f.name: (None if getattr(first, f.name) is None else torch.cat([getattr(p, f.name) for p in parts]))
        for f in fields(first)
    }
    return type(first)(**values)


def with_draws(
    sampler: Callable[[torch.Tensor, int], Callable[[int], Index]], y: torch.Tensor, seed: int, draws: int
) -> Callable[[int], Index]:
    """`draws` index sets per epoch instead of one. Draw 0 is the sampler's own; draw j > 0 runs
    it on the images in a seeded shuffled order, so its positives (neighbours within a class)
    are other pairs of the same class, not repeats. `sampler(y, seed)` gives the per-epoch sets."""

    def sample(epoch: int) -> Index:
        parts = [sampler(y, seed)(epoch)]
        for j in range(1, draws):
            order = torch.randperm(len(y), generator=torch.Generator().manual_seed((seed * 1000 + epoch) * 1000 + j))
            parts.append(remap(sampler(y[order], seed * 1000 + j)(epoch), order))
        return concat(parts)

    return sample


class TensorBatches:
    """An iterable of dict batches gathered from in-memory tensors, for Lightning.

    `sample(epoch)` returns the index set for an epoch (called once when the set is fixed);
    each iteration is one epoch, shuffled with a generator seeded from (seed, epoch), so a
    seed fixes the order. Image fields are gathered from `images`; "y" and "label" pass through.
    After `to(device)` the tensors live on the device and batches are gathered there; sampling
    and shuffling still draw on the CPU's seeded generators, so the batches stay the same.
    """

    def __init__(
        self, images: torch.Tensor, sample, batch_size: int, seed: int, shuffle: bool = True, resample: bool = False
    ) -> None:
        self.images = images
        self.sample = sample
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.resample = resample
        self.device: torch.device | None = None  # None: where the tensors were given (the host)
        self.epoch = 0
        self.index = sample(0)

    def __len__(self) -> int:
        return -(-len(self.index) // self.batch_size)  # the last mini-batch may be short

    def to(self, device: torch.device, moved: dict[int, torch.Tensor] | None = None) -> TensorBatches:
        """Images and index set moved to `device` once; index sets drawn later follow them.
        `moved` maps id(tensor) -> its copy, so images shared by several batches move once."""
        moved = {} if moved is None else moved
        if id(self.images) not in moved:
            moved[id(self.images)] = self.images.to(device)
        self.images = moved[id(self.images)]
        self.index = index_to(self.index, device)
        self.device = device
        return self

    def __iter__(self):
        if self.resample and self.epoch > 0:
            self.index = self.sample(self.epoch)
            if self.device is not None:
                self.index = index_to(self.index, self.device)
        fields = self.index.fields()
        n = len(self.index)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=gen)  # (n,) on the CPU, whatever the device
        else:
            order = torch.arange(n)
        if self.device is not None:
            order = order.to(self.device)
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            yield self._gather(fields, order[start : start + self.batch_size])

    def peek(self) -> dict[str, torch.Tensor]:
        """The first mini-batch in index order, leaving the epoch count and order untouched."""
        sel = torch.arange(min(self.batch_size, len(self.index)), device=self.device)
        return self._gather(self.index.fields(), sel)

    def _gather(self, fields: dict[str, torch.Tensor], sel: torch.Tensor) -> dict[str, torch.Tensor]:
        # sel: (B,) positions in the index set; v[sel]: (B,) image indices -> images[...]: (B, ...)
        return {k: (v[sel] if k in PASS_THROUGH else self.images[v[sel]]) for k, v in fields.items()}
