"""Accuracy regression checks of the documented claims (CLAIMS.md ids), with thresholds that
are prediction bounds calibrated from measured distributions over seeds.

`benchmarks/claims.yaml` lists checks: a cell, a metric, and `at_least`, `at_most` or
`within` (two-sided). `calibrate` trains each cell on n calibration seeds, disjoint from the
check's k seeds, and sets the threshold to a one-sided 99 % prediction bound for the mean of
k new seeds, mean - t(0.99, n-1) * sd * sqrt(1/k + 1/n) (at_least; + for at_most; both sides
at t(0.995, n-1) for within): a healthy pipeline fails a check 1 % of the time. It also
records each check's minimum detectable drop: the shift of the true mean that the check
catches with 90 % power (a noncentral t computation), to compare with the check's `detect`
target, and refuses a threshold that a trivial model (`baseline`: chance, pixels) would pass.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from scipy import optimize, stats

from siamese_bench.config import ConfigError, TrainConfig
from siamese_bench.sweep.spec import apply_values
from siamese_bench.yamlfile import check_keys, load_yaml

FALSE_ALARM = 0.01  # a healthy pipeline fails a check this often
POWER = 0.90  # the minimum detectable drop is caught this often
DIRECTIONS = ("at_least", "at_most", "within")


@dataclass(frozen=True)
class Bound:
    """A prediction bound for the mean of k seeds from n calibration seeds, and what it can see."""

    mean: float
    sd: float
    n: int
    k: int
    direction: str

    @property
    def scale(self) -> float:
        """sd of (mean of k new seeds - mean of n calibration seeds), in units of the seed sd."""
        return math.sqrt(1 / self.k + 1 / self.n)

    @property
    def t(self) -> float:
        tail = FALSE_ALARM / 2 if self.direction == "within" else FALSE_ALARM
        return float(stats.t.ppf(1 - tail, self.n - 1))

    @property
    def margin(self) -> float:
        return self.t * self.sd * self.scale

    def threshold(self) -> float | list[float]:
        if self.direction == "at_least":
            return self.mean - self.margin
        if self.direction == "at_most":
            return self.mean + self.margin
        return [self.mean - self.margin, self.mean + self.margin]

    def power(self, shift: float) -> float:
        """P(the check fails) when the true mean has moved by `shift` the wrong way (either way
        for `within`); the statistic (mean_k - mean_n) / (s * scale) is noncentral t, n-1 df."""
        df, nc = self.n - 1, shift / (self.sd * self.scale)
        far = float(stats.nct.sf(self.t, df, nc))
        if self.direction == "within":
            near = float(stats.nct.cdf(-self.t, df, nc))  # the other side: tiny, and NaN in scipy's far tail
            return far + (near if math.isfinite(near) else 0.0)
        return far

    def detectable(self, power: float = POWER) -> float:
        """The smallest shift caught with `power` (the minimum detectable drop)."""
        if self.sd <= 0:
            return 0.0
        top = (self.t + 8) * self.sd * self.scale  # power is ~1 there; nct gives NaN far beyond
        return float(optimize.brentq(lambda s: self.power(s) - power, 0.0, top))


@dataclass
class Check:
    id: str
    claim: str
    cell: dict[str, Any]
    metric: str
    direction: str  # "at_least", "at_most" or "within"
    threshold: float | list[float] | None
    calibration: dict[str, Any] | None = None
    base: dict[str, Any] = field(default_factory=dict)  # overrides of the file's base
    seeds: list[int] | None = None  # overrides the file's check seeds
    detect: float | None = None  # the drop (or shift, for within) the check must catch with 90 % power
    baseline: dict[str, Any] | None = None  # {value, what}: a trivial model's value, which must fail

    def passes(self, mean: float) -> bool:
        if self.direction == "at_least":
            return mean >= self.threshold
        if self.direction == "at_most":
            return mean <= self.threshold
        low, high = self.threshold
        return low <= mean <= high

    def rule(self) -> str:
        if self.direction == "within":
            return f"in [{self.threshold[0]:.4f}, {self.threshold[1]:.4f}]"
        return f"{'>=' if self.direction == 'at_least' else '<='} {self.threshold:.4f}"


@dataclass
class ClaimsSpec:
    path: Path
    base: dict[str, Any]
    seeds: list[int]
    calibration_seeds: list[int]
    checks: list[Check]
    notes: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def config(self, check: Check, seed: int, overrides: dict[str, Any] | None = None) -> TrainConfig:
        base = TrainConfig.from_dict({**self.base, **check.base})
        return apply_values(base, {**check.cell, **(overrides or {}), "seed": seed}).validate()

    def seeds_of(self, check: Check) -> list[int]:
        return check.seeds or self.seeds


CHECK_KEYS = {"id", "claim", "cell", "metric", "base", "seeds", "detect", "baseline", "calibration", *DIRECTIONS}


def _check(path: Path, i: int, item: Any) -> Check:
    where = f"{path}: checks[{i}]"
    check_keys(item, CHECK_KEYS, where)
    directions = [d for d in DIRECTIONS if d in item]
    if len(directions) != 1 or not {"id", "claim", "cell", "metric"} <= set(item):
        raise ConfigError(f"{where}: needs id, claim, cell, metric and one of at_least/at_most/within")
    threshold = item[directions[0]]
    if directions[0] == "within" and threshold is not None and not (
            isinstance(threshold, list) and len(threshold) == 2):
        raise ConfigError(f"{where}: within needs [low, high], got {threshold!r}")
    return Check(item["id"], item["claim"], item["cell"], item["metric"], directions[0], threshold,
                 item.get("calibration"), item.get("base") or {}, item.get("seeds"), item.get("detect"),
                 item.get("baseline"))


def load_claims(path: str | Path) -> ClaimsSpec:
    path = Path(path)
    raw = load_yaml(path, "claims file")
    check_keys(raw, {"notes", "base", "seeds", "calibration_seeds", "checks"}, str(path))
    checks = [_check(path, i, item) for i, item in enumerate(raw.get("checks") or [])]
    spec = ClaimsSpec(path, raw.get("base") or {}, raw.get("seeds") or [0], raw.get("calibration_seeds") or [],
                      checks, str(raw.get("notes", "")), raw)
    for check in checks:
        try:
            spec.config(check, 0)
        except ConfigError as err:
            raise ConfigError(f"{path}: check {check.id}: {err}") from None
        overlap = set(spec.seeds_of(check)) & set(spec.calibration_seeds)
        if overlap:
            raise ConfigError(f"{path}: check {check.id}: seeds {sorted(overlap)} are also calibration seeds")
    return spec


def measure(spec: ClaimsSpec, check: Check, seeds: list[int], data,
            overrides: dict[str, Any] | None = None) -> list[float]:
    from siamese_bench.training.train import run_training

    values = []
    for seed in seeds:
        result = run_training(spec.config(check, seed, overrides), data=data, progress=False, evaluate_train=False)
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


def _cell(check: Check) -> str:
    return ",".join(f"{k}={v}" for k, v in check.cell.items())


def regress(spec: ClaimsSpec, overrides: dict[str, Any] | None = None,
            seeds: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Rows of the result table and the number of failed checks. `overrides` change every
    check's cell (e.g. a degraded model, to show the checks catch it); `seeds` keeps only the
    first that many check seeds."""
    datasets = _Datasets()
    rows, failed = [], 0
    for check in spec.checks:
        if check.threshold is None:
            raise ConfigError(f"{spec.path}: check {check.id} has no threshold; run calibration first")
        data = datasets[spec.config(check, 0, overrides).dataset]
        cal = check.calibration or {}
        row = {"check": check.id, "cell": _cell(check), "metric": check.metric, "rule": check.rule(),
               "data": data.variant, "mdd": cal.get("detectable_90"), "detect": check.detect}
        if cal.get("data") and data.variant != cal["data"]:  # e.g. a fallback to a data subset
            failed += 1
            rows.append({**row, "mean": float("nan"), "values": [], "rule": f"data {cal['data']}",
                         "result": "WRONG DATA"})
            continue
        values = measure(spec, check, spec.seeds_of(check)[:seeds], data, overrides)
        mean = statistics.fmean(values)
        ok = check.passes(mean)
        failed += not ok
        rows.append({**row, "mean": mean, "values": values,
                     "result": "ok" if ok else "OUT OF BOUNDS" if check.direction == "within" else "FELL SHORT"})
    return rows, failed


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'check':<11} {'metric':<11} {'mean':>7} {'rule':>18} {'detects':>8}  {'result':<13} "
             "per seed / cell"]
    for r in rows:
        seeds = " ".join(f"{v:.4f}" for v in r["values"])
        mdd = f"{r['mdd']:.4f}" if r.get("mdd") is not None else "–"
        lines.append(f"{r['check']:<11} {r['metric']:<11} {r['mean']:>7.4f} {r['rule']:>18} {mdd:>8}  "
                     f"{r['result']:<13} {seeds} / {r['cell']} on {r['data']}")
    lines.append("detects: the drop (for 'in [..]': the shift either way) of the true mean that fails the check "
                 f"with {POWER:.0%} power")
    return "\n".join(lines)


def calibration_block(check: Check, values: list[float], k: int, data_variant: str) -> tuple[Any, dict[str, Any]]:
    """The threshold and the calibration record for `values` measured on the calibration seeds."""
    bound = Bound(statistics.fmean(values), statistics.stdev(values), len(values), k, check.direction)
    threshold = bound.threshold()
    threshold = [round(x, 4) for x in threshold] if isinstance(threshold, list) else round(threshold, 4)
    tail = "0.995" if check.direction == "within" else "0.99"
    sign = {"at_least": "-", "at_most": "+", "within": "±"}[check.direction]
    return threshold, {
        "rule": f"prediction bound for the mean of k={k} check seeds: mean {sign} t({tail}, n-1) * sd * "
                "sqrt(1/k + 1/n)",
        "data": data_variant, "mean": round(bound.mean, 4), "sd": round(bound.sd, 4),
        "min": round(min(values), 4), "max": round(max(values), 4), "n": bound.n, "k": k,
        "t": round(bound.t, 4), "detectable_90": round(bound.detectable(), 4),
        "values": [round(v, 4) for v in values]}


def problems(check: Check) -> list[str]:
    """What keeps a calibrated check from doing its job: a drop target it cannot see with 90 %
    power, or a threshold that a trivial model (the baseline) would pass."""
    cal, out = check.calibration or {}, []
    mdd = cal.get("detectable_90")
    if check.detect is not None and mdd is not None and mdd > check.detect:
        out.append(f"{check.id}: detects a drop of {mdd:.4f} with 90 % power, not the target {check.detect}: "
                   "add check seeds, calibration seeds or epochs")
    base = (check.baseline or {}).get("value")
    if base is not None and check.threshold is not None and check.passes(base):
        out.append(f"{check.id}: a trivial model ({check.baseline.get('what', 'baseline')}, {base}) would pass "
                   f"{check.rule()}")
    return out


def calibrate(spec: ClaimsSpec, only: set[str] | None = None) -> ClaimsSpec:
    """Measure every check (or those named in `only`) on the calibration seeds and write their
    thresholds back to the file; the other checks keep theirs. Prints what each check can
    detect and any check that misses its target."""
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
        threshold, block = calibration_block(check, values, len(spec.seeds_of(check)), data.variant)
        new_checks.append({**item, check.direction: threshold, "calibration": block})
        print(f"{check.id}: {check.metric} mean {block['mean']:.4f} sd {block['sd']:.4f} -> {check.direction} "
              f"{threshold}; detects {block['detectable_90']:.4f} with 90 % power", flush=True)
    raw["checks"] = new_checks
    spec.path.write_text(yaml.safe_dump(raw, sort_keys=False, width=100))
    spec = load_claims(spec.path)
    for check in spec.checks:
        for problem in problems(check):
            print(f"WARNING {problem}", flush=True)
    return spec
