"""Accuracy regression checks of the documented claims (CLAIMS.md ids), with thresholds
calibrated from measured distributions over seeds.

`benchmarks/claims.yaml` lists checks: a cell, a metric, and `at_least` or `at_most`.
`calibrate` trains each cell on seeds disjoint from the check seeds and sets the threshold
to mean - 3 sd (at_least) or mean + 3 sd (at_most) of the per-seed values; the check then
compares the mean over the check seeds with it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from siamese_bench.config import ConfigError, TrainConfig
from siamese_bench.sweep.spec import apply_values
from siamese_bench.yamlfile import load_yaml

CALIBRATION_SDS = 3.0


@dataclass
class Check:
    id: str
    claim: str
    cell: dict[str, Any]
    metric: str
    direction: str  # "at_least" or "at_most"
    threshold: float | None
    calibration: dict[str, Any] | None = None
    base: dict[str, Any] = field(default_factory=dict)  # overrides of the file's base


@dataclass
class ClaimsSpec:
    path: Path
    base: dict[str, Any]
    seeds: list[int]
    calibration_seeds: list[int]
    checks: list[Check]
    notes: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def config(self, check: Check, seed: int) -> TrainConfig:
        base = TrainConfig.from_dict({**self.base, **check.base})
        return apply_values(base, {**check.cell, "seed": seed}).validate()


def load_claims(path: str | Path) -> ClaimsSpec:
    path = Path(path)
    raw = load_yaml(path, "claims file")
    allowed = {"notes", "base", "seeds", "calibration_seeds", "checks"}
    unknown = sorted(set(raw or {}) - allowed)
    if not isinstance(raw, dict) or unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    checks = []
    for i, item in enumerate(raw.get("checks") or []):
        directions = [d for d in ("at_least", "at_most") if d in item]
        if len(directions) != 1 or not {"id", "claim", "cell", "metric"} <= set(item):
            raise ConfigError(f"{path}: checks[{i}]: needs id, claim, cell, metric and one of at_least/at_most")
        checks.append(Check(item["id"], item["claim"], item["cell"], item["metric"], directions[0],
                            item[directions[0]], item.get("calibration"), item.get("base") or {}))
    spec = ClaimsSpec(path, raw.get("base") or {}, raw.get("seeds") or [0], raw.get("calibration_seeds") or [],
                      checks, str(raw.get("notes", "")), raw)
    for check in checks:
        try:
            spec.config(check, 0)
        except ConfigError as err:
            raise ConfigError(f"{path}: check {check.id}: {err}") from None
    return spec


def measure(spec: ClaimsSpec, check: Check, seeds: list[int], data) -> list[float]:
    from siamese_bench.train import run_training

    values = []
    for seed in seeds:
        result = run_training(spec.config(check, seed), data=data, progress=False)
        if check.metric not in result.metrics:
            raise ConfigError(f"check {check.id}: the run logged no {check.metric!r} (see the warnings above); "
                              f"logged: {', '.join(sorted(k for k in result.metrics if '/' in k))}")
        values.append(result.metrics[check.metric])
    return values


class _Datasets(dict):
    """Each dataset a check needs, loaded once."""

    def __missing__(self, name: str):
        from siamese_bench.data import load_dataset

        self[name] = load_dataset(name)
        return self[name]


def regress(spec: ClaimsSpec) -> tuple[list[dict[str, Any]], int]:
    """Rows of the result table and the number of failed checks."""
    datasets = _Datasets()
    rows, failed = [], 0
    for check in spec.checks:
        if check.threshold is None:
            raise ConfigError(f"{spec.path}: check {check.id} has no threshold; run calibration first")
        data = datasets[spec.config(check, 0).dataset]
        calibrated_on = (check.calibration or {}).get("data")
        if calibrated_on and data.variant != calibrated_on:  # e.g. a fallback to a data subset
            failed += 1
            rows.append({"check": check.id, "cell": ",".join(f"{k}={v}" for k, v in check.cell.items()),
                         "metric": check.metric, "mean": float("nan"), "values": [],
                         "rule": f"data {calibrated_on}", "result": "WRONG DATA", "data": data.variant})
            continue
        values = measure(spec, check, spec.seeds, data)
        mean = statistics.fmean(values)
        ok = mean >= check.threshold if check.direction == "at_least" else mean <= check.threshold
        failed += not ok
        rows.append({"check": check.id, "cell": ",".join(f"{k}={v}" for k, v in check.cell.items()),
                     "metric": check.metric, "mean": mean, "values": values,
                     "rule": f"{'>=' if check.direction == 'at_least' else '<='} {check.threshold:.4f}",
                     "result": "ok" if ok else "FELL SHORT", "data": data.variant})
    return rows, failed


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'check':<11} {'metric':<10} {'mean':>7} {'rule':>10}  {'result':<10} per seed / cell"]
    for r in rows:
        seeds = " ".join(f"{v:.4f}" for v in r["values"])
        lines.append(f"{r['check']:<11} {r['metric']:<10} {r['mean']:>7.4f} {r['rule']:>10}  {r['result']:<10} "
                     f"{seeds} / {r['cell']} on {r['data']}")
    return "\n".join(lines)


def calibrate(spec: ClaimsSpec, only: set[str] | None = None) -> ClaimsSpec:
    """Measure every check (or those named in `only`) on the calibration seeds and write their
    thresholds back to the file; the other checks keep theirs."""
    if len(spec.calibration_seeds) < 3:
        raise ConfigError(f"{spec.path}: calibration_seeds needs at least 3 seeds")
    datasets = _Datasets()
    raw = dict(spec.raw)
    new_checks = []
    unknown = sorted((only or set()) - {c.id for c in spec.checks})
    if unknown:
        raise ConfigError(f"--only: no check {', '.join(unknown)} in {spec.path}; "
                          f"valid: {', '.join(c.id for c in spec.checks)}")
    for check, item in zip(spec.checks, raw["checks"], strict=True):
        if only and check.id not in only:
            new_checks.append(item)
            continue
        data = datasets[spec.config(check, 0).dataset]
        values = measure(spec, check, spec.calibration_seeds, data)
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        sign = -1 if check.direction == "at_least" else 1
        threshold = round(mean + sign * CALIBRATION_SDS * sd, 4)
        item = {**item, check.direction: threshold, "calibration": {
            "rule": f"mean {'-' if sign < 0 else '+'} {CALIBRATION_SDS:g} sd over the calibration seeds",
            "data": data.variant, "mean": round(mean, 4), "sd": round(sd, 4),
            "min": round(min(values), 4), "max": round(max(values), 4), "n": len(values)}}
        new_checks.append(item)
        print(f"{check.id}: {check.metric} mean {mean:.4f} sd {sd:.4f} -> {check.direction} {threshold}", flush=True)
    raw["checks"] = new_checks
    spec.path.write_text(yaml.safe_dump(raw, sort_keys=False, width=100))
    return load_claims(spec.path)
