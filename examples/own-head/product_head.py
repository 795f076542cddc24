"""A head siamese-bench does not ship: the element-wise product of the two embeddings, then a
Dense(1) to the logit of P(same). Symmetric (u * v == v * u) and, unlike |u - v|, it measures
agreement rather than difference. Loaded as a plugin (`--plugin product_head.py`, or the
`plugins:` list of claims.yaml beside it)."""

from __future__ import annotations

import torch

from siamese_bench import HEADS, ProbabilisticHead


@HEADS.register("product-dense")
class ProductDenseHead(ProbabilisticHead):
    """[u * v] -> Dense(1): logit of P(same); the base class adds the sigmoid and d = 1 - p."""

    symmetric = True

    def pair_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b  # (B, D)
