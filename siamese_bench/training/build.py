"""From a TrainConfig to objects: the registries its names come from, the checks only they can
make (a name that is not registered, a head that cannot feed a loss, an encoder option the
encoder lacks), and the LightningModule built from encoder, head, objective and optimizer.

`check_config` runs once where a configuration enters (the command line, a spec, a claims
file); what it returns is what workers receive and build from.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.registry import Registry
from siamese_bench.core.store import LOSS_NEEDS_LOGIT, LOSS_USES_MARGIN, OBJECTIVE
from siamese_bench.data import DATASETS
from siamese_bench.models.losses import Loss, check_compatible
from siamese_bench.models.registry import ENCODERS, HEADS, LOSSES, MINERS
from siamese_bench.training.augment import AUGMENTATIONS
from siamese_bench.training.module import OptimizerFactory, SiameseModule
from siamese_bench.training.objective import TripletObjective, build_objective, objective_class
from siamese_bench.training.optim import INITS, OPTIMIZERS, SCHEDULES

# What a TrainConfig field's `choices` names (core/config.py): the registry its values come from.
REGISTRIES: dict[str, Registry[Any]] = {
    "dataset": DATASETS,
    "encoder": ENCODERS,
    "head": HEADS,
    "loss": LOSSES,
    "miner": MINERS,
    "augmentation": AUGMENTATIONS,
    "optimizer": OPTIMIZERS,
    "lr schedule": SCHEDULES,
    "init": INITS,
}
PROBE_INPUT_SHAPE = (1, 105, 105)  # any valid image shape, big enough for every encoder: checks option values


def choices_of(field: str) -> Registry[Any] | None:
    """The registry a TrainConfig field's values come from, if any."""
    extra = TrainConfig.model_fields[field].json_schema_extra
    name = extra.get("choices") if isinstance(extra, dict) else None
    return REGISTRIES[str(name)] if name else None


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """`cfg` if every name is registered and the parts fit together; else a ConfigError naming
    the option (its flag) and the valid values."""
    for field in TrainConfig.model_fields:
        registry = choices_of(field)
        value = cfg.dataset_kind if field == "dataset" else getattr(cfg, field)
        if registry is not None and value not in registry:
            raise ConfigError(
                f"{_flag(field)}: unknown {registry.kind} {value!r}; valid: {', '.join(registry.names())}"
            )
    _check_dataset_argument(cfg)
    if getattr(DATASETS.get(cfg.dataset_kind), "paired", False) and objective_class(cfg.loss).needs_classes:
        raise ConfigError(
            f"--loss {cfg.loss!r} needs class labels to draw triplets; dataset {cfg.dataset_kind!r} "
            "holds ready-made pairs only"
        )
    try:
        check_compatible(cfg.head, cfg.loss)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.triplet_mining != "random" and objective_class(cfg.loss) is not TripletObjective:
        raise ConfigError(f"--triplet-mining {cfg.triplet_mining} needs a triplet loss, not {cfg.loss!r}")
    _check_encoder_options(cfg)
    return cfg


def _check_dataset_argument(cfg: TrainConfig) -> None:
    kind, has_argument, argument = cfg.dataset.partition(":")
    loader = DATASETS.get(kind)
    takes_argument = getattr(loader, "argument", None)
    optional = getattr(loader, "argument_optional", False)
    if bool(takes_argument) != bool(has_argument) and not (optional and not has_argument):
        usage = f"--dataset {kind}:{takes_argument}" if takes_argument else f"--dataset {kind}"
        if optional:
            usage = f"--dataset {kind} or {usage}"
        raise ConfigError(f"--dataset {cfg.dataset!r}: expected {usage}")
    check_argument = getattr(loader, "check_argument", None)
    if check_argument and has_argument:
        try:
            check_argument(argument)
        except ValueError as err:
            raise ConfigError(f"--dataset {cfg.dataset!r}: {err}") from None


def _check_encoder_options(cfg: TrainConfig) -> None:
    encoder = ENCODERS.get(cfg.encoder)
    accepted = [p for p in inspect.signature(encoder).parameters if p != "input_shape"]
    for key in cfg.encoder_options:
        if key not in accepted:
            raise ConfigError(f"encoder {cfg.encoder!r} has no option {key!r}; valid: {', '.join(accepted)}")
    try:  # option values: build once, on the meta device (no memory, no init cost), so bad values fail here
        with torch.device("meta"):
            encoder(getattr(encoder, "PROBE_SHAPE", PROBE_INPUT_SHAPE), **cfg.encoder_options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"encoder {cfg.encoder!r}: {err}") from None


def run_params(cfg: TrainConfig) -> dict[str, Any]:
    """Flat name -> value for MLflow params and tables; margin is None where the loss has none."""
    flat = cfg.model_dump()
    options = flat.pop("encoder_options")
    flat.update({f"encoder.{k}": v for k, v in sorted(options.items())})
    if not LOSSES.get(cfg.loss).uses_margin:
        flat["margin"] = None
    return flat


def run_traits(cfg: TrainConfig) -> dict[str, str]:
    """What the report needs to know of a run's loss without importing it: MLflow tags."""
    loss = LOSSES.get(cfg.loss)
    return {
        LOSS_USES_MARGIN: str(loss.uses_margin).lower(),
        LOSS_NEEDS_LOGIT: str(loss.needs_logit).lower(),
        OBJECTIVE: "triplets" if objective_class(cfg.loss).needs_classes else "pairs",
    }


def build_loss(cfg: TrainConfig) -> Loss:
    loss_cls = LOSSES.get(cfg.loss)
    kwargs: dict[str, Any] = {"margin": cfg.margin} if loss_cls.uses_margin else {}
    if "squared" in inspect.signature(loss_cls).parameters:
        kwargs["squared"] = cfg.triplet_squared
    return loss_cls(**kwargs)


def optimizer_factory(cfg: TrainConfig) -> OptimizerFactory:
    """The optimizer, with Lightning's lr_scheduler config when cfg.lr_schedule has one."""
    make, schedule = OPTIMIZERS.get(cfg.optimizer), SCHEDULES.get(cfg.lr_schedule)

    def build(params: Iterable[nn.Parameter], total_steps: int) -> Any:
        optimizer = make(params, cfg.lr)
        scheduler = schedule(optimizer, total_steps, cfg.lr_decay)
        return optimizer if scheduler is None else {"optimizer": optimizer, "lr_scheduler": scheduler}

    return build


def build_module(
    cfg: TrainConfig, input_shape: tuple[int, ...], eval_stages: tuple[str, ...] = ("train_eval", "test")
) -> SiameseModule:
    """Encoder, head, loss and optimizer factory from the config, initialised from cfg.seed."""
    pl.seed_everything(cfg.seed, verbose=False)
    encoder = ENCODERS.get(cfg.encoder)(input_shape, **cfg.encoder_options)
    head = HEADS.get(cfg.head)(encoder.out_features)
    if cfg.augment != "none" and len(input_shape) != 3:
        raise ConfigError(
            f"--augment {cfg.augment}: distortions need images, but dataset {cfg.dataset!r} "
            f"gives inputs of shape {tuple(input_shape)}"
        )
    module = SiameseModule(
        encoder,
        head,
        build_objective(build_loss(cfg), cfg.triplet_mining),
        optimizer_factory(cfg),
        eval_stages=eval_stages,
        augment=None if cfg.augment == "none" else AUGMENTATIONS.get(cfg.augment),
        seed=cfg.seed,
        gradient_clip=cfg.gradient_clip,
    )
    INITS.get(cfg.init)(module)
    return module
