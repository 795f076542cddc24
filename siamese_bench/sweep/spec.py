"""Study specs: a YAML file -> a validated StudySpec (the schema) -> the cells to run, each with
its checked TrainConfig.

A cell is one point of the factor grid (e.g. head=subtract-dense, loss=contrastive,
margin=1); every cell runs once per seed. Exclusions must carry a reason, so no cell
disappears silently, and a crossed cell that cannot run (e.g. euclidean + bce) is an error
that names it until the spec excludes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from siamese_bench.core import plugins, specs
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.schema import Schema

Pruner = Literal["median", "hyperband", "none"]


class Exclusion(Schema):
    """Cells matching every `when` factor value are not run, for the stated reason."""

    when: dict[str, list[Any]] = Field(description="factor -> value or list of values")
    reason: str = Field(min_length=1, description="why these cells cannot or need not run")

    @field_validator("when", mode="before")
    @classmethod
    def _lists(cls, when: Any) -> Any:
        return {k: v if isinstance(v, list) else [v] for k, v in when.items()} if isinstance(when, dict) else when

    def matches(self, values: dict[str, Any]) -> bool:
        return all(values.get(k) in v for k, v in self.when.items())


class ParamRange(Schema):
    low: float = Field(description="the smallest value tried")
    high: float = Field(description="the largest value tried")
    log: bool = Field(False, description="sample on a log scale (learning rates)")

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class TuneSpec(Schema):
    """Per-cell TPE tuning with equal budgets before the grid (sweep/tuning.py)."""

    params: dict[str, ParamRange] = Field(min_length=1, description="TrainConfig field -> {low, high[, log]}")
    trials_per_cell: int = Field(ge=1, description="tuning trials per cell: the same budget for every cell")
    seed: int = Field(0, description="the seed tuning trials train with")
    pruner: Pruner = Field("median", description="how tuning trials are stopped early (none: never)")
    metric: str = Field("val/auc", description="maximised; never a test metric")


class SlurmSpec(Schema):
    """The SLURM jobs `sweep --launcher slurm` asks for; each --slurm-* option (and --jobs, --requeue) overrides
    its key (docs/scale-out.md, On a SLURM cluster)."""

    jobs: int | None = Field(None, ge=1, description="how many jobs work on the study at once (default 2)")
    partition: str | None = Field(None, description="the partition (default: the cluster's default partition)")
    time: str | None = Field(
        None, description="each job's time limit: minutes, 90m, 2h, H:MM:SS or D-HH:MM:SS (default 60 minutes)"
    )
    cpus: int | None = Field(None, ge=1, description="CPUs per job, one worker process each (default 2)")
    gpus: int | None = Field(None, ge=0, description="GPUs per job (default 0)")
    mem_gb: float | None = Field(None, gt=0, description="memory per job in GB (default: the partition's)")
    requeue: bool = Field(False, description="a job that times out or is preempted is requeued")

    @field_validator("time", mode="before")
    @classmethod
    def _time_text(cls, value: Any) -> Any:
        from siamese_bench.sweep.slurm import parse_minutes

        text = str(value) if isinstance(value, int | float) else value
        if isinstance(text, str):
            parse_minutes(text, "slurm.time")  # a bad limit is named here, with the spec's line, not at submission
        return text


@dataclass(frozen=True)
class Cell:
    values: dict[str, Any]  # the factor values that define this cell

    @property
    def id(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.values.items())


class StudySpec(Schema):
    """A study: the base training options, the factors crossed into cells, the seeds."""

    name: str = Field(min_length=1, description="the study's name: Optuna study, MLflow experiment, report")
    description: str = Field("", description="what the study asks, in words (shown in the report)")
    base: TrainConfig = Field(default_factory=TrainConfig, description="training options every cell starts from")
    factors: dict[str, list[Any]] = Field({}, description="option -> values; cells are their product")
    seeds: list[int] = Field(min_length=1, description="every cell runs once per seed")
    exclude: list[Exclusion] = Field([], description="cells of the product not run, each with its reason")
    include: list[dict[str, Any]] = Field([], description="extra cells beyond the product")
    tune: TuneSpec | None = Field(None, description="tune some options per cell before the grid")
    slurm: SlurmSpec | None = Field(None, description="the SLURM jobs of `sweep --launcher slurm`")
    plugins: list[str] = Field(
        [],
        description="plugin files (relative to this spec) or modules: your own heads, "
        "losses, encoders, miners or datasets (docs/extending.md)",
    )
    _path: Path = PrivateAttr(default=Path("<spec>"))
    _configs: dict[str, TrainConfig] = PrivateAttr(default_factory=dict)

    @field_validator("factors")
    @classmethod
    def _non_empty(cls, factors: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, v in factors.items() if not v]
        if empty:
            raise ValueError(f"{', '.join(empty)}: needs at least one value")
        return factors

    @model_validator(mode="after")
    def _exclusions_name_factors(self) -> StudySpec:
        if not self.factors and not self.include:
            raise ValueError("needs factors (crossed into cells) or include (cells listed one by one)")
        for i, e in enumerate(self.exclude):
            bad = sorted(set(e.when) - set(self.factors))
            if bad:
                raise ValueError(f"exclude[{i}].when: {', '.join(bad)} is not a factor")
        return self

    @property
    def path(self) -> Path:
        return self._path

    @property
    def plugin_names(self) -> list[str]:
        """The spec's plugins, paths made absolute (what workers and other machines load)."""
        return plugins.resolve(self.plugins, self._path.parent)

    def cells(self) -> list[Cell]:
        names = list(self.factors)
        crossed = (
            [dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.factors.values())]
            if names
            else []
        )
        cells, seen = [], set()
        for values in crossed + [dict(v) for v in self.include]:
            if values in crossed and any(e.matches(values) for e in self.exclude):
                continue
            cell = Cell(values)
            if cell.id not in seen:
                seen.add(cell.id)
                cells.append(cell)
        return cells

    def cell_keys(self) -> list[str]:
        """Every key any cell sets, factors first: the columns of a results table."""
        keys = list(self.factors)
        for cell in self.cells():
            keys += [k for k in cell.values if k not in keys]
        return keys

    def excluded(self) -> list[tuple[Cell, str]]:
        names = list(self.factors)
        out: list[tuple[Cell, str]] = []
        if not names:
            return out
        for combo in itertools.product(*self.factors.values()):
            values = dict(zip(names, combo, strict=True))
            for e in self.exclude:
                if e.matches(values):
                    out.append((Cell(values), e.reason))
                    break
        return out

    def config_for(self, cell: Cell, seed: int, tuned: dict[str, Any] | None = None) -> TrainConfig:
        """The cell's configuration (checked once, when the spec was loaded) at `seed`."""
        config = self._configs.get(cell.id)
        if config is None:
            from siamese_bench.training.build import check_config

            config = check_config(self.base.with_values(cell.values))
        return config.with_values({**(tuned or {}), "seed": seed})

    def chosen_seeds(self, wanted: Sequence[int] | None) -> list[int]:
        """The seeds one sweep runs: all of the spec's, or the subset `--seeds` names (a study
        run a few seeds at a time is still one study; seeds outside the spec are refused)."""
        if wanted is None:
            return list(self.seeds)
        unknown = [s for s in wanted if s not in self.seeds]
        if unknown or not wanted:
            raise ConfigError(
                f"--seeds {','.join(map(str, wanted))}: the spec {self.path} has seeds "
                f"{', '.join(map(str, self.seeds))}; choose among them"
            )
        return [s for s in self.seeds if s in wanted]

    def seeds_note(self, seeds: Sequence[int]) -> str:
        """' (--seeds 0 of the spec's 3)' when a sweep runs a subset, else ''."""
        if list(seeds) == self.seeds:
            return ""
        return f" (--seeds {','.join(map(str, seeds))} of the spec's {len(self.seeds)})"

    def fingerprint(self) -> str:
        text = json.dumps(
            {
                "base": self.base.model_dump(),
                "cells": [c.id for c in self.cells()],
                "seeds": self.seeds,
                "tune": self.tune.model_dump() if self.tune else None,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec, and check every cell's configuration once; every error names
    the file, the line and the key (or the cell)."""
    # training (and torch) loads here, when configurations are checked: the schema needs none
    from siamese_bench.training.build import check_config

    path = specs.find(path, "study spec")
    spec, lines = StudySpec.load(path, "study spec")
    spec._path = path
    plugins.load_all(spec.plugin_names)  # before the cells are checked: they may name a plugin's parts
    try:
        check_config(spec.base)
    except ConfigError as err:
        raise ConfigError(f"{path}: line {lines.get(('base',), 1)}: base: {err}") from None
    for cell in spec.cells():  # every remaining cell must make a valid configuration
        try:
            spec._configs[cell.id] = check_config(spec.base.with_values(cell.values))
        except ConfigError as err:
            raise ConfigError(
                f"{path}: line {lines.get(('factors',), 1)}: cell {cell.id}: {err} (exclude it with a reason)"
            ) from None
    return spec
