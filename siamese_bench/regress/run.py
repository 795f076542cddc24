"""Running the checks: train each check's cell on its seeds and compare the mean with its
threshold; calibration measures the calibration seeds and writes the thresholds back."""

from __future__ import annotations

import statistics
from typing import Any

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.schema import dump_yaml
from siamese_bench.core.yamlfile import load_yaml
from siamese_bench.regress.bounds import FALSE_ALARM, POWER, Bound, run_false_alarm
from siamese_bench.regress.checks import Check, RegressChecks, load_checks


def measure(
    spec: RegressChecks, check: Check, seeds: list[int], data, overrides: dict[str, Any] | None = None
) -> list[float]:
    from siamese_bench.training.run import run_training

    values = []
    for seed in seeds:
        result = run_training(spec.config(check, seed, overrides), data=data, progress=False, evaluate_train=False)
        if check.metric not in result.metrics:
            raise ConfigError(
                f"check {check.id}: the run logged no {check.metric!r} (see the warnings above); "
                f"logged: {', '.join(sorted(k for k in result.metrics if '/' in k))}"
            )
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


def regress(
    spec: RegressChecks, overrides: dict[str, Any] | None = None, seeds: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the result table and the number of failed checks. `overrides` change every
    check's cell (e.g. a degraded model, to show the checks catch it); `seeds` keeps only the
    first that many check seeds."""
    datasets = _Datasets()
    rows, failed = [], 0
    for check in spec.checks:
        if check.threshold is None:
            raise ConfigError(f"{spec.path}: check {check.id} has no threshold; run calibration first")
        data = datasets[spec.config(check, 0, overrides).dataset]
        cal = check.calibration
        row = {
            "check": check.id,
            "cell": _cell(check),
            "metric": check.metric,
            "rule": check.rule(),
            "data": data.variant,
            "mdd": cal.detectable_90 if cal else None,
            "detect": check.detect,
        }
        if cal and data.variant != cal.data:  # e.g. a fallback to a data subset
            failed += 1
            rows.append({**row, "mean": float("nan"), "values": [], "rule": f"data {cal.data}", "result": "WRONG DATA"})
            continue
        values = measure(spec, check, spec.seeds_of(check)[:seeds], data, overrides)
        mean = statistics.fmean(values)
        ok = check.passes(mean)
        failed += not ok
        rows.append(
            {
                **row,
                "mean": mean,
                "values": values,
                "result": "ok" if ok else "OUT OF BOUNDS" if check.direction == "within" else "FELL SHORT",
            }
        )
    return rows, failed


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'check':<11} {'metric':<11} {'mean':>7} {'rule':>18} {'detects':>8}  {'result':<13} per seed / cell"]
    for r in rows:
        seeds = " ".join(f"{v:.4f}" for v in r["values"])
        mdd = f"{r['mdd']:.4f}" if r.get("mdd") is not None else "–"
        lines.append(
            f"{r['check']:<11} {r['metric']:<11} {r['mean']:>7.4f} {r['rule']:>18} {mdd:>8}  "
            f"{r['result']:<13} {seeds} / {r['cell']} on {r['data']}"
        )
    lines.append(
        "detects: the drop (for 'in [..]': the shift either way) of the true mean that fails the check "
        f"with {POWER:.0%} power"
    )
    lines.append(
        f"false alarms: a healthy pipeline fails a given check {FALSE_ALARM * 100:g} % of the time, and at "
        f"least one of these {len(rows)} checks {run_false_alarm(len(rows)) * 100:.1f} % of the time"
    )
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
        "data": data_variant,
        "mean": round(bound.mean, 4),
        "sd": round(bound.sd, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": bound.n,
        "k": k,
        "t": round(bound.t, 4),
        "detectable_90": round(bound.detectable(), 4),
        "values": [round(v, 4) for v in values],
    }


def problems(check: Check) -> list[str]:
    """What keeps a calibrated check from doing its job: a drop target it cannot see with 90 %
    power, or a threshold that a trivial model (the baseline) would pass."""
    out: list[str] = []
    mdd = check.calibration.detectable_90 if check.calibration else None
    if check.detect is not None and mdd is not None and mdd > check.detect:
        out.append(
            f"{check.id}: detects a drop of {mdd:.4f} with 90 % power, not the target {check.detect}: "
            "add check seeds, calibration seeds or epochs"
        )
    baseline = check.baseline
    if baseline is not None and check.threshold is not None and check.passes(baseline.value):
        out.append(f"{check.id}: a trivial model ({baseline.what}, {baseline.value}) would pass {check.rule()}")
    return out


def calibrate(spec: RegressChecks, only: set[str] | None = None) -> RegressChecks:
    """Measure every check (or those named in `only`) on the calibration seeds and write their
    thresholds back to the file; the other checks keep theirs. Prints what each check can
    detect and any check that misses its target."""
    if len(spec.calibration_seeds) < 3:
        raise ConfigError(f"{spec.path}: calibration_seeds needs at least 3 seeds")
    datasets = _Datasets()
    raw = dict(load_yaml(spec.path, "regression-checks file"))
    new_checks = []
    unknown = sorted((only or set()) - {c.id for c in spec.checks})
    if unknown:
        raise ConfigError(
            f"--only: no check {', '.join(unknown)} in {spec.path}; valid: {', '.join(c.id for c in spec.checks)}"
        )
    for check, item in zip(spec.checks, raw["checks"], strict=True):
        if only and check.id not in only:
            new_checks.append(item)
            continue
        data = datasets[spec.config(check, 0).dataset]
        values = measure(spec, check, spec.calibration_seeds, data)
        threshold, block = calibration_block(check, values, len(spec.seeds_of(check)), data.variant)
        new_checks.append({**item, check.direction: threshold, "calibration": block})
        print(
            f"{check.id}: {check.metric} mean {block['mean']:.4f} sd {block['sd']:.4f} -> {check.direction} "
            f"{threshold}; detects {block['detectable_90']:.4f} with 90 % power",
            flush=True,
        )
    raw["checks"] = new_checks
    spec.path.write_text(dump_yaml(raw))
    spec = load_checks(spec.path)
    for check in spec.checks:
        for problem in problems(check):
            print(f"WARNING {problem}", flush=True)
    return spec
