"""The regression-checks file (the shipped one: siamese_bench/specs/regress.yaml): its schema and loader.

A check is a cell, a metric and one threshold, `at_least`, `at_most` or `within` (two-sided),
calibrated as a prediction bound for the mean of the check's k seeds (regress/bounds.py). The
file's `base` and a check's `base` are training options; every check's configuration is built
and checked when the file is read, so a typo fails before anything trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, PrivateAttr, model_validator

from siamese_bench.core import specs
from siamese_bench.core.config import TrainConfig
from siamese_bench.core.errors import ConfigError
from siamese_bench.core.schema import Schema
from siamese_bench.regress.bounds import DIRECTIONS

T = TypeVar("T")


class Baseline(Schema):
    """What a trivial model scores on the check's metric: the threshold must fail it."""

    value: float = Field(description="the trivial model's score on the metric")
    what: str = Field("baseline", description="which trivial model, in words")


class Calibration(Schema):
    """What --calibrate measured on the calibration seeds (written into the file, read back)."""

    rule: str = Field(description="the bound, in words")
    data: str = Field(description="the data variant measured; a check on other data fails (WRONG DATA)")
    mean: float = Field(description="mean of the metric over the calibration seeds")
    sd: float = Field(ge=0, description="its standard deviation")
    min: float = Field(description="the lowest seed's value")
    max: float = Field(description="the highest seed's value")
    n: int = Field(ge=2, description="calibration seeds")
    k: int = Field(ge=1, description="check seeds")
    t: float = Field(gt=0, description="the Student t quantile of the prediction bound")
    detectable_90: float = Field(ge=0, description="the drop of the true mean caught with 90 % power")
    values: list[float] = Field([], description="every calibration seed's value")


class Check(Schema):
    id: str = Field(min_length=1, description="the check's name, as `regress` prints it")
    claim: str = Field(description="the claim the check guards, in words")
    cell: dict[str, Any] = Field(description="training options (and encoder.<option> keys) of the checked cell")
    metric: str = Field(description="a final metric of the run, e.g. test/acc")
    at_least: float | None = Field(None, description="the mean must be at least this (null: not calibrated)")
    at_most: float | None = Field(None, description="the mean must be at most this")
    within: list[float] | None = Field(None, min_length=2, max_length=2, description="[low, high]")
    base: dict[str, Any] = Field({}, description="training options overriding the file's base")
    seeds: list[int] | None = Field(None, description="overrides the file's check seeds")
    detect: float | None = Field(None, gt=0, description="the drop the check must catch with 90 % power")
    baseline: Baseline | None = Field(None, description="a trivial model's score, which the bound must fail")
    calibration: Calibration | None = Field(None, description="written by --calibrate: the measured distribution")

    @model_validator(mode="after")
    def _one_direction(self) -> Check:
        given = [d for d in DIRECTIONS if d in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"needs exactly one of {', '.join(DIRECTIONS)} (found {', '.join(given) or 'none'})")
        return self

    @property
    def direction(self) -> str:
        return next(d for d in DIRECTIONS if d in self.model_fields_set)

    @property
    def threshold(self) -> float | list[float] | None:
        return getattr(self, self.direction)

    def passes(self, mean: float) -> bool:
        if self.direction == "at_least":
            return mean >= _calibrated(self.at_least)
        if self.direction == "at_most":
            return mean <= _calibrated(self.at_most)
        low, high = _calibrated(self.within)
        return low <= mean <= high

    def rule(self) -> str:
        if self.direction == "within":
            low, high = _calibrated(self.within)
            return f"in [{low:.4f}, {high:.4f}]"
        bound = _calibrated(self.at_least if self.direction == "at_least" else self.at_most)
        return f"{'>=' if self.direction == 'at_least' else '<='} {bound:.4f}"


def _calibrated(threshold: T | None) -> T:
    """The check's threshold; callers skip a check whose threshold is still null (uncalibrated)."""
    assert threshold is not None, "an uncalibrated check is neither scored nor described"
    return threshold


class RegressChecks(Schema):
    notes: str = Field("", description="free text about the file")
    base: dict[str, Any] = Field({}, description="training options of every check")
    seeds: list[int] = Field([0], min_length=1, description="the check seeds (k)")
    calibration_seeds: list[int] = Field([], description="the calibration seeds (n), disjoint from the check seeds")
    checks: list[Check] = Field([], description="the checks, one per claim guarded")
    _path: Path = PrivateAttr(default=Path("<checks>"))

    @property
    def path(self) -> Path:
        return self._path

    def config(self, check: Check, seed: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
        base = TrainConfig.from_dict({**self.base, **check.base})
        return base.with_values({**check.cell, **(overrides or {}), "seed": seed})

    def seeds_of(self, check: Check) -> list[int]:
        return check.seeds or self.seeds


def load_checks(path: str | Path) -> RegressChecks:
    """Read and validate the file and every check's configuration; errors name file, line and check."""
    # training (and torch) loads here, when configurations are checked: the schema needs none
    from siamese_bench.training.build import check_config

    path = specs.find(path, "regression-checks file")
    spec, lines = RegressChecks.load(path, "regression-checks file")
    spec._path = path
    for i, check in enumerate(spec.checks):
        where = f"{path}: line {lines.get(('checks', i), 1)}: check {check.id}"
        try:
            check_config(spec.config(check, 0))
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        overlap = set(spec.seeds_of(check)) & set(spec.calibration_seeds)
        if overlap:
            raise ConfigError(f"{where}: seeds {sorted(overlap)} are also calibration seeds")
    return spec
