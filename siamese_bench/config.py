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
from siamese_bench.errors import ConfigError
from siamese_bench.models.encoders import ENCODERS
from siamese_bench.models.heads import HEADS
from siamese_bench.models.losses import LOSSES, check_compatible
from siamese_bench.recipe import RECIPE
from siamese_bench.training.augment import AUGMENTATIONS
from siamese_bench.training.objective import MINERS, TripletObjective, objective_class
from siamese_bench.training.optim import INITS, OPTIMIZERS, SCHEDULES
from siamese_bench.training.samplers import NEGATIVE_POLICIES
from siamese_bench.yamlfile import check_keys

PROBE_INPUT_SHAPE = (1, 105, 105)  # any valid image shape, big enough for every encoder: checks option values, not data


def option(default: Any = dataclasses.MISSING, help: str = "", choices: Any = None,  # noqa: A002
           factory: Any = dataclasses.MISSING) -> Any:
    """A TrainConfig field with what its command-line flag says: the one place an option is
    declared (cli.add_train_arguments generates the flags from these). `choices` is a registry
    or a tuple of names, listed in --help."""
    metadata = {"help": help, "choices": choices}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = option("mnist", "mnist falls back loudly to mnist-5k when full MNIST is unavailable; "
                          "csv:TRAIN.csv,TEST.csv reads C4's pre-encoded vector pairs", DATASETS)
    encoder: str = option(RECIPE["encoder"], "the shared network", ENCODERS)
    encoder_options: dict[str, Any] = option(help="encoder option KEY=VALUE, e.g. dropout=0.5 (repeatable)",
                                             factory=dict)
    head: str = option("euclidean", "how a pair of embeddings becomes a dissimilarity", HEADS)
    loss: str = option("contrastive", "", LOSSES)
    margin: float = option(1.0, "margin of contrastive/triplet loss (C1: 1; unused by bce)")
    triplet_squared: bool = option(True, "triplet loss on squared distances, as FaceNet")
    triplet_negatives: str = option("other", "'any' may draw the anchor's class (C6)", NEGATIVE_POLICIES)
    triplet_mining: str = option("random", "random passes the sampled triplets through; batch-hard and "
                                 "semi-hard (FaceNet) pick negatives from the batch", MINERS)
    resample_negatives: bool = option(False, "draw fresh negatives every epoch (the Keras recipe draws once)")
    pair_draws: int = option(1, "pair (or triplet) sets drawn per epoch; each draw after the first pairs the "
                             "images of a class in a seeded shuffled order, so its positives are new pairs")
    augment: str = option("none", "distort training images on the fly, per image and per step: affine = Koch "
                          "et al.'s random rotation, shear, scale and translation", AUGMENTATIONS)
    epochs: int = option(RECIPE["epochs"], "C1: 20")
    max_steps: int | None = option(None, "stop after this many optimizer steps (None: the epochs decide)")
    batch_size: int = option(RECIPE["batch_size"], "C1: 128")
    optimizer: str = option(RECIPE["optimizer"], "C1: RMSprop with Keras' rho 0.9, eps 1e-7", OPTIMIZERS)
    lr: float = option(RECIPE["lr"], "learning rate (C1: 1e-3)")
    lr_schedule: str = option("constant", "learning-rate schedule: cosine decays to 0 over the run's optimizer "
                              "steps; epoch-decay multiplies by --lr-decay after every epoch (Koch et al.)",
                              SCHEDULES)
    lr_decay: float = option(0.99, "per-epoch factor of the epoch-decay schedule")
    gradient_clip: float | None = option(None, "clip the gradient norm to this (Lightning's gradient_clip_val)")
    precision: str = option("32-true", "Lightning precision; bf16-mixed runs on CPU too", PRECISIONS)
    init: str = option(RECIPE["init"], "glorot-uniform weights, zero biases, as Keras does", INITS)
    val_fraction: float = option(0.1, "share of training images held out for validation, stratified, seeded")
    early_stopping_patience: int | None = option(None, "stop when the monitored validation metric has not "
                                                 "improved for this many epochs (C4 used 3)")
    seed: int = option(0, "fixes the validation split, pairs, initialisation and batch order")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        check_keys(values, (f.name for f in dataclasses.fields(cls)), "", noun="option")
        return cls(**values).validate()

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes).validate()

    def validate(self) -> TrainConfig:
        kind, has_argument, _ = self.dataset.partition(":")
        for option, value, registry in (("dataset", kind, DATASETS), ("encoder", self.encoder, ENCODERS),
                                        ("head", self.head, HEADS), ("loss", self.loss, LOSSES),
                                        ("optimizer", self.optimizer, OPTIMIZERS), ("init", self.init, INITS),
                                        ("lr-schedule", self.lr_schedule, SCHEDULES),
                                        ("augment", self.augment, AUGMENTATIONS)):
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
        if getattr(loader, "paired", False) and objective_class(self.loss).needs_classes:
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
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision: {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.pair_draws < 1:
            raise ConfigError(f"--pair-draws must be at least 1, got {self.pair_draws}")
        for name in ("max_steps", "gradient_clip"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"--lr-decay must be in (0, 1], got {self.lr_decay}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"--early-stopping-patience must be at least 1, got {self.early_stopping_patience}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        if self.triplet_mining not in MINERS:
            raise ConfigError(f"--triplet-mining: {self.triplet_mining!r}; valid: {', '.join(MINERS.names())}")
        if self.triplet_mining != "random" and objective_class(self.loss) is not TripletObjective:
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
