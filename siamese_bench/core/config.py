"""The training configuration: one schema, torch-free. Study specs, regression checks, claims
files and the command line all produce a TrainConfig; building objects from it (and checking
its names against the registries of heads, losses, ...) is training's job (training/build.py).

Every field is declared once, with the help text and the registry its name comes from; the
command line generates its flags from these, and docs/specs.md its table.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, field_validator
from pydantic.config import JsonDict

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.recipe import RECIPE
from siamese_bench.core.schema import Schema

Precision = Literal["32-true", "bf16-mixed", "16-mixed"]
MatmulPrecision = Literal["highest", "high", "medium"]
NegativePolicy = Literal["other", "any"]
DataPlacement = Literal["auto", "host", "device"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
MATMUL_PRECISIONS: tuple[str, ...] = get_args(MatmulPrecision)
NEGATIVE_POLICIES: tuple[str, ...] = get_args(NegativePolicy)
DATA_PLACEMENTS: tuple[str, ...] = get_args(DataPlacement)


def option(
    default: Any = ...,
    help: str = "",
    choices: str | None = None,  # noqa: A002
    factory: Any = None,
) -> Any:
    """A field with its command-line help; `choices` names the registry its values come from
    (resolved by training.build.REGISTRIES, so this module stays torch-free)."""
    extra: JsonDict | None = {"choices": choices} if choices else None
    if factory is not None:
        return Field(default_factory=factory, description=help, json_schema_extra=extra)
    return Field(default, description=help, json_schema_extra=extra)


class TrainConfig(Schema):
    """What one training run does; C1's Keras recipe by default."""

    noun: ClassVar[str] = "option"

    dataset: str = option(
        "mnist",
        "mnist falls back loudly to mnist-5k when full MNIST is unavailable; "
        "csv:TRAIN.csv,TEST.csv reads C4's pre-encoded vector pairs",
        "dataset",
    )
    encoder: str = option(RECIPE["encoder"], "the shared network", "encoder")
    encoder_options: dict[str, Any] = option(
        help="encoder option KEY=VALUE, e.g. dropout=0.5 (repeatable)", factory=dict
    )
    head: str = option("euclidean", "how a pair of embeddings becomes a dissimilarity", "head")
    loss: str = option(
        "contrastive",
        "what training minimises: a pair loss on the head's output, or a triplet loss on the embeddings",
        "loss",
    )
    margin: float = option(1.0, "margin of contrastive/triplet loss (C1: 1; unused by bce)")
    triplet_squared: bool = option(True, "triplet loss on squared distances, as FaceNet")
    triplet_negatives: NegativePolicy = option("other", "'any' may draw the anchor's class (C6)")
    triplet_mining: str = option(
        "random",
        "random passes the sampled triplets through; batch-hard and semi-hard (FaceNet) pick negatives from the batch",
        "miner",
    )
    resample_negatives: bool = option(False, "draw fresh negatives every epoch (the Keras recipe draws once)")
    pair_draws: int = option(
        1,
        "pair (or triplet) sets drawn per epoch; each draw after the first pairs the "
        "images of a class in a seeded shuffled order, so its positives are new pairs",
    )
    augment: str = option(
        "none",
        "distort training images on the fly, per image and per step: affine = Koch "
        "et al.'s random rotation, shear, scale and translation",
        "augmentation",
    )
    epochs: int = option(RECIPE["epochs"], "C1: 20")
    max_steps: int | None = option(None, "stop after this many optimizer steps (None: the epochs decide)")
    batch_size: int = option(RECIPE["batch_size"], "C1: 128")
    optimizer: str = option(RECIPE["optimizer"], "C1: RMSprop with Keras' rho 0.9, eps 1e-7", "optimizer")
    lr: float = option(RECIPE["lr"], "learning rate (C1: 1e-3)")
    lr_schedule: str = option(
        "constant",
        "learning-rate schedule: cosine decays to 0 over the run's optimizer "
        "steps; epoch-decay multiplies by --lr-decay after every epoch (Koch et al.)",
        "lr schedule",
    )
    lr_decay: float = option(0.99, "per-epoch factor of the epoch-decay schedule")
    gradient_clip: float | None = option(None, "clip the gradient norm to this (Lightning's gradient_clip_val)")
    precision: Precision = option("32-true", "Lightning precision; bf16-mixed runs on CPU too")
    matmul_precision: MatmulPrecision = option(
        "highest",
        "float32 matrix products: high allows TF32 on CUDA GPUs that have it (faster, ~1e-3 "
        "relative error); highest is exact float32, and all the CPU does",
    )
    data_placement: DataPlacement = option(
        "auto",
        "where the dataset's tensors live: auto moves them to a CUDA device once when they fit in a "
        "quarter of its free memory (pairs are then gathered there, no copy per batch); host keeps them in RAM",
    )
    init: str = option(RECIPE["init"], "glorot-uniform weights, zero biases, as Keras does", "init")
    val_fraction: float = option(0.1, "share of training images held out for validation, stratified, seeded")
    early_stopping_patience: int | None = option(
        None, "stop when the monitored validation metric has not improved for this many epochs (C4 used 3)"
    )
    seed: int = option(0, "fixes the validation split, pairs, initialisation and batch order")

    @field_validator("epochs", "batch_size", "pair_draws", "max_steps", "early_stopping_patience")
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("lr", "margin", "gradient_clip")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError("must be positive")
        return value

    @field_validator("lr_decay")
    @classmethod
    def _decay(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("must be in (0, 1]")
        return value

    @field_validator("val_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("must be between 0 and 1")
        return value

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if not value.partition(":")[0]:
            raise ValueError("names no dataset")
        return value

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "") -> TrainConfig:
        """From a mapping of field -> value (a spec's base, a saved run)."""
        return cls.parse(values or {}, where)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes`, validated."""
        return type(self).parse({**self.model_dump(), **changes}, flags=True)

    def with_values(self, values: dict[str, Any]) -> TrainConfig:
        """Set fields and `encoder.<option>` keys (a study cell, tuned values); an unknown name is a
        ConfigError. A cell that changes the encoder starts from no options: the base's belong to
        its encoder."""
        same_encoder = values.get("encoder", self.encoder) == self.encoder
        plain: dict[str, Any] = {}
        options = dict(self.encoder_options) if same_encoder else {}
        for key, value in values.items():
            if key.startswith("encoder."):
                options[key.removeprefix("encoder.")] = value
            elif key in type(self).model_fields:
                plain[key] = value
            else:
                raise ConfigError(
                    f"unknown factor {key!r}; valid: {', '.join(sorted(type(self).model_fields))} or encoder.<option>"
                )
        return type(self).parse({**self.model_dump(), **plain, "encoder_options": options})

    @property
    def dataset_kind(self) -> str:
        return self.dataset.partition(":")[0]
