"""Optimizer factories and weight initialisations, by name.

Keras and PyTorch defaults differ and the difference is a measured factor (CLAIMS.md: C1 at
97.28 % with Keras' defaults, 97.02 % with PyTorch's), so both are available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from siamese_bench.core.registry import Registry

Params = Iterable[nn.Parameter]
OPTIMIZERS: Registry[Callable[[Params, float], torch.optim.Optimizer]] = Registry("optimizer")
INITS: Registry[Callable[[nn.Module], None]] = Registry("init")
# A schedule takes (optimizer, total optimizer steps, per-epoch decay) and returns Lightning's
# lr_scheduler config (with its interval), or None for a constant learning rate.
SCHEDULES: Registry[Callable[[torch.optim.Optimizer, int, float], dict | None]] = Registry("lr schedule")

OPTIMIZERS.register("rmsprop-keras")(lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.9, eps=1e-7))
OPTIMIZERS.register("rmsprop")(lambda p, lr: torch.optim.RMSprop(p, lr=lr))
OPTIMIZERS.register("adam-keras")(lambda p, lr: torch.optim.Adam(p, lr=lr, eps=1e-7))
OPTIMIZERS.register("adam")(lambda p, lr: torch.optim.Adam(p, lr=lr))
OPTIMIZERS.register("sgd")(lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9))


@INITS.register("keras")
def keras_init(model: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every dense and convolutional layer."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


@INITS.register("torch")
def torch_init(model: nn.Module) -> None:
    """PyTorch's own defaults (Kaiming-uniform): nothing to do."""


SCHEDULES.register("constant")(lambda optimizer, steps, decay: None)


@SCHEDULES.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, steps: int, decay: float) -> dict:
    """Cosine from lr to 0 over the run, stepped after every optimizer step."""
    return {"scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps)), "interval": "step"}


@SCHEDULES.register("epoch-decay")
def epoch_decay(optimizer: torch.optim.Optimizer, steps: int, decay: float) -> dict:
    """lr * decay**epoch (Koch et al. decay every layer's rate by 1 % an epoch)."""
    return {"scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay), "interval": "epoch"}
