"""How many seeds an open row needs, projected from the spread seen so far: the fewest n at which
an interval at decide's per-look level, of the same mean and spread, would settle the row one
way or the other. A row whose projection lies beyond --max-seeds is not decidable within it, and
decide spends no seeds on it."""

from __future__ import annotations

import math

from siamese_bench.decide.sequential import seeds_needed
from siamese_bench.report.findings import RULE_METRIC, Finding
from siamese_bench.report.rules import CHANCE_HIGH, CHANCE_LOW, LEARNS_AUC, ONESHOT_BAR, WORKS_ACC
from siamese_bench.report.stats import Interval

BARS = {
    "works": [WORKS_ACC],
    "oneshot": [ONESHOT_BAR],
    "learns": [LEARNS_AUC],
    "above-chance": [CHANCE_HIGH],
    "chance": [],
}


def row_interval(f: Finding) -> Interval | None:
    """The interval the row's verdict reads: the paired difference, or the rule's metric."""
    if f.paired is not None:
        return f.paired.diff
    ev = f.decided_on
    if ev is None:
        return None
    metric = RULE_METRIC.get(f.row.rule)
    return ev.oneshot if metric == "oneshot/acc" else ev.auc if metric == "test/auc" else ev.acc


def gaps(f: Finding, iv: Interval) -> list[float]:
    """How far the mean lies from each boundary whose crossing by the interval decides the row."""
    m = iv.mean
    if f.row.rule == "better":
        d = f.row.delta
        return [m - d, -m, min(m + d, d - m)]  # clears delta; below 0; inside the no-difference band
    if f.row.rule in ("chance", "learns", "above-chance"):
        inside = min(m - CHANCE_LOW, CHANCE_HIGH - m)  # equivalence: both edges at once
        out = [inside, CHANCE_LOW - m, m - CHANCE_HIGH]
        return out + [abs(m - bar) for bar in BARS[f.row.rule]]
    return [abs(m - bar) for bar in BARS.get(f.row.rule, [])]


BEYOND = math.inf  # a projection past the search limit


def seeds_to_decide(f: Finding, per_look: float, limit: int = 1000) -> float | None:
    """The projected seeds for row `f` to be decided: a number, BEYOND (more than `limit`), or
    None when no number of seeds would (the mean sits on a boundary) or there is no spread to read."""
    iv = row_interval(f)
    if iv is None or iv.n < 2 or not math.isfinite(iv.sd):
        return None
    positive = [g for g in gaps(f, iv) if g > 0]
    if not positive:
        return None
    needs = [n for g in positive if (n := seeds_needed(g, iv.sd, per_look, limit)) is not None]
    return min(needs) if needs else BEYOND
