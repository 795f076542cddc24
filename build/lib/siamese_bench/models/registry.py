"""The registries of the model parts, in one place. Implementations register themselves with a
decorator (`@HEADS.register("name")`); the `siamese_bench.models` package imports every
implementation module, so importing any part of it makes every name known (as timm does), and
no implementation imports another just to register it."""

from __future__ import annotations

from typing import Any

from siamese_bench.core.registry import Registry

ENCODERS: Registry[Any] = Registry("encoder")  # (input_shape, **options) -> nn.Module with out_features
HEADS: Registry[Any] = Registry("head")  # (embedding_dim) -> Head
LOSSES: Registry[Any] = Registry("loss")  # (margin=..., ...) -> Loss
MINERS: Registry[Any] = Registry("miner")  # () -> Miner
