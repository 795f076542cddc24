"""Typed run configuration: study spec or command line -> TrainConfig -> objects.

`TrainConfig.from_dict` rejects unknown keys and `validate` names the bad option, so a typo
fails before any data is loaded.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from siamese_bench.data import DATASETS
from siamese_bench.encoders import ENCODERS
from siamese_bench.heads import HEADS
from siamese_bench.losses import LOSSES, check_compatible
from siamese_bench.mining import MINING_POLICIES
from siamese_bench.optim import INITS, OPTIMIZERS
from siamese_bench.samplers import NEGATIVE_POLICIES

PROBE_INPUT_SHAPE = (1, 105, 105)  # any valid image shape, big enough for every encoder: checks option values, not data


class ConfigError(ValueError):
    """Bad user input; the message names the option and is shown without a traceback."""


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"
    encoder: str = "mlp"
    encoder_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"dropout": 0.1}
    head: str = "euclidean"
    loss: str = "contrastive"
    margin: float = 1.0  # C1's m = 1; ignored by losses without a margin (bce)
    triplet_squared: bool = True  # FaceNet squares the distances
    triplet_negatives: str = "other"  # "any" reproduces C6's sampling
    triplet_mining: str = "random"  # C5: "batch-hard" or "semi-hard" negatives from the batch
    resample_negatives: bool = False  # the Keras recipe draws its pairs once
    epochs: int = 20  # C1
    batch_size: int = 128  # C1
    optimizer: str = "rmsprop-keras"  # C1: RMSprop with Keras' rho 0.9, eps 1e-7
    lr: float = 1e-3  # C1
    init: str = "keras"  # glorot-uniform weights, zero biases, as Keras does
    val_fraction: float = 0.1  # of the training images, stratified, seeded
    early_stopping_patience: int | None = None  # C4: stop when val loss stalls this many epochs
    seed: int = 0  # fixes the validation split, pairs, initialisation and batch order

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values).validate()

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes).validate()

    def validate(self) -> TrainConfig:
        kind, has_argument, _ = self.dataset.partition(":")
        for option, value, registry in (("dataset", kind, DATASETS), ("encoder", self.encoder, ENCODERS),
                                        ("head", self.head, HEADS), ("loss", self.loss, LOSSES),
                                        ("optimizer", self.optimizer, OPTIMIZERS), ("init", self.init, INITS)):
            if value not in registry:
                raise ConfigError(f"--{option}: unknown {option} {value!r}; valid: {', '.join(registry.names())}")
        loader = DATASETS.get(kind)
        takes_argument = getattr(loader, "argument", None)
        optional = getattr(loader, "argument_optional", False)
        if bool(takes_argument) != bool(has_argument) and not (optional and not has_argument):
            usage = f"--dataset {kind}:{takes_argument}" if takes_argument else f"--dataset {kind}"
            if optional:
                usage = f"--dataset {kind} or {usage}"
            raise ConfigError(f"--dataset {self.dataset!r}: expected {usage}")
        check_argument = getattr(loader, "check_argument", None)
        if check_argument and has_argument:
            try:
                check_argument(self.dataset.partition(":")[2])
            except ValueError as err:
                raise ConfigError(f"--dataset {self.dataset!r}: {err}") from None
        if getattr(loader, "paired", False) and LOSSES.get(self.loss).sampling == "triplets":
            raise ConfigError(f"--loss {self.loss!r} needs class labels to draw triplets; dataset {kind!r} "
                              "holds ready-made pairs only")
        try:
            check_compatible(self.head, self.loss)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        positive = {"epochs": self.epochs, "batch-size": self.batch_size, "lr": self.lr}
        if LOSSES.get(self.loss).uses_margin:
            positive["margin"] = self.margin
        for option, value in positive.items():
            if not value > 0:
                raise ConfigError(f"--{option} must be positive, got {value}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"--early-stopping-patience must be at least 1, got {self.early_stopping_patience}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.triplet_mining not in MINING_POLICIES:
            raise ConfigError(f"--triplet-mining: {self.triplet_mining!r}; valid: {', '.join(MINING_POLICIES)}")
        if self.triplet_mining != "random" and LOSSES.get(self.loss).sampling != "triplets":
            raise ConfigError(f"--triplet-mining {self.triplet_mining} needs a triplet loss, not {self.loss!r}")
        if self.triplet_negatives not in NEGATIVE_POLICIES:
            raise ConfigError(f"--triplet-negatives: {self.triplet_negatives!r}; valid: "
                              f"{', '.join(NEGATIVE_POLICIES)}")
        params = inspect.signature(ENCODERS.get(self.encoder)).parameters
        accepted = [p for p in params if p != "input_shape"]
        for key in self.encoder_options:
            if key not in accepted:
                raise ConfigError(f"encoder {self.encoder!r} has no option {key!r}; "
                                  f"valid: {', '.join(accepted)}")
        try:  # option values: build once, on the meta device (no memory, no init cost), so bad values fail here
            with torch.device("meta"):
                encoder = ENCODERS.get(self.encoder)
                encoder(getattr(encoder, "PROBE_SHAPE", PROBE_INPUT_SHAPE), **self.encoder_options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"encoder {self.encoder!r}: {err}") from None
        return self

    def flat_params(self) -> dict[str, Any]:
        """Flat name -> value for MLflow params and tables; margin is None where unused."""
        flat = dataclasses.asdict(self)
        options = flat.pop("encoder_options")
        flat.update({f"encoder.{k}": v for k, v in sorted(options.items())})
        if not LOSSES.get(self.loss).uses_margin:
            flat["margin"] = None
        return flat
