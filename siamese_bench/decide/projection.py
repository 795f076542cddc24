"""How many seeds an open row needs, projected from the spread seen so far: the fewest n at which
an interval at the row's per-look level, of the same mean and spread, would reach a verdict the
row's rule can give from where its mean lies. A row that no number of seeds can decide (zero
spread, a mean where no verdict is reachable, a one-shot gap inside the fixed trials' own
error) says so at once, and one whose projection lies beyond --max-seeds is not decidable
within it: decide spends no seeds on either."""

from __future__ import annotations

import math
from dataclasses import dataclass

from siamese_bench.report.evidence import Evidence
from siamese_bench.report.findings import RULE_METRIC, Finding
from siamese_bench.report.looks import ALPHA, FIRST_LOOK, Looks
from siamese_bench.report.rules import CHANCE_HIGH, CHANCE_LOW, LEARNS_AUC, ONESHOT_BAR, WORKS_ACC
from siamese_bench.report.select import match
from siamese_bench.report.stats import Interval, t_quantile

LIMIT = 1000  # seeds searched at most


@dataclass(frozen=True)
class Projection:
    """Seeds the row needs to be decided (BEYOND: more than LIMIT), or None with `why` when no
    number of seeds can decide it."""

    seeds: float | None
    why: str = ""


BEYOND = math.inf


def row_interval(f: Finding) -> Interval | None:
    """The interval the row's verdict reads: the paired difference, or the rule's metric."""
    if f.paired is not None:
        return f.paired.diff
    ev = f.decided_on
    if ev is None:
        return None
    metric = RULE_METRIC.get(f.row.rule)
    return ev.oneshot if metric == "oneshot/acc" else ev.auc if metric == "test/auc" else ev.acc


def _can_contradict(f: Finding) -> bool:
    """A row with `faithful` cannot be contradicted on a reduced setup (findings demotes it)."""
    ev = f.decided_on
    return not f.row.faithful or ev is None or match(ev.runs, f.row.faithful).shape[0] == len(ev.runs)


def reachable_gaps(f: Finding, mean: float) -> list[float]:
    """How far the mean lies, on the side that decides, from each boundary whose crossing by the
    interval gives a verdict the rule can reach: positive where a narrower interval would decide."""
    inside = min(mean - CHANCE_LOW, CHANCE_HIGH - mean)  # equivalence to chance: both edges at once
    rule = f.row.rule
    if rule == "better":
        d = f.row.delta
        reproduce, contradict = [mean - d], [-mean, min(mean + d, d - mean)]  # below 0; no difference
    elif rule == "chance":
        reproduce, contradict = [inside], [mean - CHANCE_HIGH, CHANCE_LOW - mean]
    elif rule == "learns":  # wholly above the band but below 0.90, or wholly below it, decides nothing
        reproduce, contradict = [mean - LEARNS_AUC], [inside]
    elif rule == "above-chance":
        reproduce, contradict = [mean - CHANCE_HIGH], [inside, CHANCE_LOW - mean]
    else:
        bar = ONESHOT_BAR if rule == "oneshot" else WORKS_ACC
        reproduce, contradict = [mean - bar], [bar - mean]
    return reproduce + (contradict if _can_contradict(f) else [])


def fixed_error(f: Finding) -> float:
    """The standard error more seeds cannot shrink: the one-shot trials' binomial error, taken at
    the bar (as the rule's interval takes it); 0 for every other rule."""
    ev: Evidence | None = f.decided_on
    if f.row.rule != "oneshot" or ev is None:
        return 0.0
    return math.sqrt(ONESHOT_BAR * (1 - ONESHOT_BAR) / ev.trials())


def seeds_needed(
    gap: float, sd: float, per_look: float, limit: int = LIMIT, first: int = FIRST_LOOK, fixed: float = 0.0
) -> int | None:
    """The fewest seeds n (>= first) at which an interval of a mean `gap` away from a boundary,
    with spread `sd` and a standard error `fixed` that seeds do not shrink, clears it:
    t_{1-a}(n-1) * sqrt(sd^2 / n + fixed^2) < gap. None beyond `limit`, or when the mean sits on
    the boundary."""
    if not math.isfinite(gap) or not math.isfinite(sd) or gap <= 0:
        return None
    for n in range(first, limit + 1):
        if t_quantile(1 - per_look, n - 1) * math.sqrt(sd * sd / n + fixed * fixed) < gap:
            return n
    return None


def per_look_for(f: Finding, looks: Looks, open_in_family: int) -> float:
    """The per-look level the row must reach: Holm's next step over the family's rows not yet
    decided, for a cell counted as many times as it was picked from."""
    return looks.per_look(ALPHA / (max(1, open_in_family) * f.picked_from))


def seeds_to_decide(f: Finding, looks: Looks, open_in_family: int = 1, limit: int = LIMIT) -> Projection:
    """The projected seeds for row `f` to be decided, or why no number of seeds would."""
    iv = row_interval(f)
    if iv is None or iv.n < 2 or not math.isfinite(iv.sd):
        return Projection(None, "no spread to project from yet")
    if iv.no_spread:
        return Projection(None, f"zero spread: all {iv.n} seeds gave the same value; more seeds cannot help")
    positive = [g for g in reachable_gaps(f, iv.mean) if g > 0]
    if not positive:
        return Projection(
            None,
            f"its mean ({iv.mean:.4g}) lies where no verdict of rule '{f.row.rule}' can be reached "
            "(on a boundary, or between the ones that decide): more seeds cannot help",
        )
    per_look, fixed = per_look_for(f, looks, open_in_family), fixed_error(f)
    floor = t_quantile(1 - per_look, math.inf) * fixed  # the half-width left with infinitely many seeds
    if fixed > 0 and max(positive) <= floor:
        return Projection(
            None,
            f"the fixed one-shot trials' binomial error alone keeps the interval ±{floor * 100:.2f} points "
            f"wide, more than the mean's {max(positive) * 100:.2f} points from the bar: no number of seeds "
            "decides it",
        )
    needs = [n for g in positive if (n := seeds_needed(g, iv.sd, per_look, limit, fixed=fixed)) is not None]
    return Projection(min(needs) if needs else BEYOND)
