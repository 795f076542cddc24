"""siamese-bench: ablation benchmarks of Siamese-network design choices.

The names below are the public, stable API a plugin needs (docs/extending.md): the registries a
new head, loss, encoder, miner, dataset, augmentation or optimizer registers into, and the base
classes and types it builds on. They are imported on first use, so `import siamese_bench`
stays cheap and loads no torch until a registry or a model class is asked for.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

_PUBLIC = {  # name -> module that defines it
    "HEADS": "siamese_bench.models.registry",
    "LOSSES": "siamese_bench.models.registry",
    "ENCODERS": "siamese_bench.models.registry",
    "MINERS": "siamese_bench.models.registry",
    "DATASETS": "siamese_bench.data.base",
    "AUGMENTATIONS": "siamese_bench.training.augment",
    "OPTIMIZERS": "siamese_bench.training.optim",
    "SCHEDULES": "siamese_bench.training.optim",
    "INITS": "siamese_bench.training.optim",
    "Head": "siamese_bench.models.heads",
    "HeadOutput": "siamese_bench.models.heads",
    "ProbabilisticHead": "siamese_bench.models.heads",
    "Loss": "siamese_bench.models.losses",
    "PairLoss": "siamese_bench.models.losses",
    "LossValue": "siamese_bench.models.losses",
    "Miner": "siamese_bench.models.miners",
    "BatchMiner": "siamese_bench.models.miners",
    "LabelledData": "siamese_bench.data.base",
    "PairedData": "siamese_bench.data.vectors",
    "PairTable": "siamese_bench.data.vectors",
    "TrainConfig": "siamese_bench.core.config",
    "ConfigError": "siamese_bench.core.errors",
    "UserError": "siamese_bench.core.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'siamese_bench' has no attribute {name!r}")
    import importlib

    if module.startswith(("siamese_bench.models", "siamese_bench.data")):
        importlib.import_module(module.rsplit(".", 1)[0])  # the package: every built-in registered
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
