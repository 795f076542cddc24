"""Study specs: a YAML file -> a validated StudySpec -> the list of cells to run.

A cell is one point of the factor grid (e.g. head=subtract-dense, loss=contrastive,
margin=1); every cell runs once per seed. Exclusions must carry a reason, so no cell
disappears silently, and a crossed cell that cannot run (e.g. euclidean + bce) is an error
that names it until the spec excludes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siamese_bench.config import ConfigError, TrainConfig
from siamese_bench.yamlfile import check_keys, load_yaml

PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class Exclusion:
    when: dict[str, list[Any]]  # factor -> values; a cell matching all of them is excluded
    reason: str

    def matches(self, values: dict[str, Any]) -> bool:
        return all(values.get(k) in v for k, v in self.when.items())


@dataclass(frozen=True)
class TuneSpec:
    params: dict[str, dict[str, Any]]  # name -> {low, high, log}
    trials_per_cell: int
    seed: int = 0  # the seed tuning trials train with
    pruner: str = "median"
    metric: str = "val/auc"  # maximised; never a test metric


@dataclass(frozen=True)
class Cell:
    values: dict[str, Any]  # the factor values that define this cell

    @property
    def id(self) -> str:
        return ",".join(f"{k}={_fmt(v)}" for k, v in self.values.items())


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path
    base: TrainConfig
    factors: dict[str, list[Any]]
    seeds: list[int]
    exclude: list[Exclusion] = field(default_factory=list)
    include: list[dict[str, Any]] = field(default_factory=list)
    tune: TuneSpec | None = None
    description: str = ""

    def cells(self) -> list[Cell]:
        names = list(self.factors)
        crossed = [dict(zip(names, combo, strict=True))
                   for combo in itertools.product(*self.factors.values())]
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
        out = []
        for combo in itertools.product(*self.factors.values()):
            values = dict(zip(names, combo, strict=True))
            for e in self.exclude:
                if e.matches(values):
                    out.append((Cell(values), e.reason))
                    break
        return out

    def config_for(self, cell: Cell, seed: int, tuned: dict[str, Any] | None = None) -> TrainConfig:
        return apply_values(self.base, {**cell.values, **(tuned or {}), "seed": seed})

    def chosen_seeds(self, wanted: Sequence[int] | None) -> list[int]:
        """The seeds one sweep runs: all of the spec's, or the subset `--seeds` names (a study
        run a few seeds at a time is still one study; seeds outside the spec are refused)."""
        if wanted is None:
            return list(self.seeds)
        unknown = [s for s in wanted if s not in self.seeds]
        if unknown or not wanted:
            raise ConfigError(f"--seeds {','.join(map(str, wanted))}: the spec {self.path} has seeds "
                              f"{', '.join(map(str, self.seeds))}; choose among them")
        return [s for s in self.seeds if s in wanted]

    def seeds_note(self, seeds: Sequence[int]) -> str:
        """' (--seeds 0 of the spec's 3)' when a sweep runs a subset, else ''."""
        if list(seeds) == self.seeds:
            return ""
        return f" (--seeds {','.join(map(str, seeds))} of the spec's {len(self.seeds)})"

    def fingerprint(self) -> str:
        text = json.dumps({"base": dataclasses.asdict(self.base), "cells": [c.id for c in self.cells()],
                           "seeds": self.seeds, "tune": dataclasses.asdict(self.tune) if self.tune else None},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def apply_values(base: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """Set TrainConfig fields and `encoder.<option>` keys; unknown names are a ConfigError. A
    cell that changes the encoder starts from no options: the base's belong to its encoder."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    same_encoder = values.get("encoder", base.encoder) == base.encoder
    plain, options = {}, dict(base.encoder_options) if same_encoder else {}
    for key, value in values.items():
        if key.startswith("encoder."):
            options[key.removeprefix("encoder.")] = value
        elif key in fields:
            plain[key] = value
        else:
            raise ConfigError(f"unknown factor {key!r}; valid: {', '.join(sorted(fields))} "
                              "or encoder.<option>")
    return dataclasses.replace(base, **plain, encoder_options=options)


SPEC_KEYS = {"name", "description", "base", "factors", "seeds", "exclude", "include", "tune"}


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec; every error names the file and the key."""
    path = Path(path)
    where = str(path)
    raw = load_yaml(path, "study spec")
    check_keys(raw, SPEC_KEYS, where)
    for key in ("name", "factors", "seeds"):
        if key not in raw:
            raise ConfigError(f"{where}: missing required key {key!r}")
    try:
        base = TrainConfig.from_dict(raw.get("base") or {})
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{where}: base: {err}") from None
    factors = raw["factors"]
    if not isinstance(factors, dict) or not factors or not all(isinstance(v, list) and v for v in factors.values()):
        raise ConfigError(f"{where}: factors: expected a mapping of factor -> non-empty list of values")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers")
    exclude = []
    for i, item in enumerate(raw.get("exclude") or []):
        if not isinstance(item, dict) or set(item) != {"when", "reason"} or not str(item["reason"]).strip():
            raise ConfigError(f"{where}: exclude[{i}]: expected {{when: {{factor: values}}, reason: text}}")
        when = {k: (v if isinstance(v, list) else [v]) for k, v in item["when"].items()}
        bad = sorted(set(when) - set(factors))
        if bad:
            raise ConfigError(f"{where}: exclude[{i}].when: {', '.join(bad)} is not a factor")
        exclude.append(Exclusion(when, str(item["reason"])))
    tune = _load_tune(raw.get("tune"), where)
    spec = StudySpec(name=str(raw["name"]), path=path, base=base, factors=factors, seeds=seeds,
                     exclude=exclude, include=list(raw.get("include") or []), tune=tune,
                     description=str(raw.get("description", "")).strip())
    for cell in spec.cells():  # every remaining cell must make a valid configuration
        try:
            spec.config_for(cell, seeds[0]).validate()
        except ConfigError as err:
            raise ConfigError(f"{where}: cell {cell.id}: {err} (exclude it with a reason)") from None
    return spec


def _load_tune(raw: Any, where: str) -> TuneSpec | None:
    if raw is None:
        return None
    check_keys(raw, (f.name for f in dataclasses.fields(TuneSpec)), f"{where}: tune")
    tune = TuneSpec(**raw)
    if tune.pruner not in PRUNERS:
        raise ConfigError(f"{where}: tune.pruner {tune.pruner!r}; valid: {', '.join(PRUNERS)}")
    if not isinstance(tune.trials_per_cell, int) or tune.trials_per_cell < 1:
        raise ConfigError(f"{where}: tune.trials_per_cell must be a positive integer")
    for name, dist in tune.params.items():
        if not isinstance(dist, dict) or not {"low", "high"} <= set(dist) or set(dist) - {"low", "high", "log"}:
            raise ConfigError(f"{where}: tune.params.{name}: expected {{low, high[, log]}}")
    return tune
