"""The MLP encoder of the Keras `mnist_siamese` recipe (C1)."""

from __future__ import annotations

import math

import torch
from torch import nn

from siamese_bench.models.registry import ENCODERS

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "linear": nn.Identity, "tanh": nn.Tanh}


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """The Keras `mnist_siamese` base network: Dense(128, relu) -> Dropout(0.1) -> Dense(128,
    relu) -> Dropout(0.1) -> Dense(128, relu). `final_activation="linear"` is C4's advice."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        units: int = 128,
        depth: int = 3,
        dropout: float = 0.1,
        final_activation: str = "relu",
    ) -> None:
        super().__init__()
        if final_activation not in ACTIVATIONS:
            raise ValueError(f"final_activation {final_activation!r}; valid: {', '.join(ACTIVATIONS)}")
        in_features = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers.append(nn.Linear(in_features if i == 0 else units, units))
            last = i == depth - 1
            layers.append(ACTIVATIONS[final_activation]() if last else nn.ReLU())
            if not last:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)
        self.out_features = units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, *input_shape) -> (B, units)
