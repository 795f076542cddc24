"""Simulated decide runs for the error-rate tests, through the project's own functions:
the rules' judge (report.findings.judge_row, report.rules.paired_judgement), the family gate
(Holm on the looks' sequential p-values, report.findings.family_gate) and decide's own round
planning (decide.loop.update_states and next_targets). Each case puts every row exactly at the
boundary of its rule's null and counts the simulated decide runs in which a false verdict stands
at some look: looking after every added seed from 3 to --max-seeds, and looking only where
decide's rounds look. The rate stays at 2.5 % plus Monte Carlo error; looking at 95 % intervals
every time does not (test_error_every_look.py, test_error_rounds.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese_bench.decide.loop import RowState, next_targets, update_states
from siamese_bench.decide.plan import Plan
from siamese_bench.report.claims import ClaimRow
from siamese_bench.report.evidence import Evidence
from siamese_bench.report.findings import Finding, family_gate, judge_row
from siamese_bench.report.looks import ALPHA, FIRST_LOOK, Looks
from siamese_bench.report.rules import (
    CHANCE_HIGH,
    CONTRADICTED,
    INCONCLUSIVE,
    LEARNS_AUC,
    ONESHOT_BAR,
    REPRODUCED,
    WORKS_ACC,
    paired_judgement,
)
from siamese_bench.report.stats import UNIT, paired_comparison, t_interval

SIMS, MAX_SEEDS = 4_000, 10  # sequences per case unless it says; the precise rates: benchmarks/decide_error_rates.py
LOOKS = Looks(MAX_SEEDS)


def bound(sims: int) -> float:
    """2.5 % plus three Monte Carlo standard errors."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


def row(rule: str, id_: str = "R", **kw) -> ClaimRow:
    extra = {"versus": {"head": "b"}} if rule == "better" else {}
    return ClaimRow(id=id_, claim="c", source="s", select={"head": "a"}, rule=rule, **extra, **kw)


ONES = t_interval([0.9, 0.91])


def single_cell(claim: ClaimRow, values: np.ndarray, looks: Looks, selected_from: int = 1) -> Finding:
    """The row judged on the first n seeds, as findings() judges it (intervals at the looks' level)."""
    lvl = looks.level()
    metric = {"works": "test/acc", "oneshot": "oneshot/acc"}.get(claim.rule, "test/auc")
    runs = {metric: values, "seed": np.arange(len(values))}  # the columns judge_row reads, without pandas' cost
    iv = t_interval(values, level=lvl, bounds=UNIT)
    ev = Evidence(
        "s",
        "v",
        "c",
        1,
        runs,  # type: ignore[arg-type]
        iv if metric == "test/acc" else ONES,
        iv if metric == "test/auc" else ONES,
        ONES,
        oneshot=iv if metric == "oneshot/acc" else None,
        looks=looks,
        selected_from=selected_from,
    )
    decided, j = judge_row(claim, [ev], looks)
    return Finding(claim, [ev], decided, j.verdict, j.why, 0, p=j.p)


def comparison(claim: ClaimRow, diffs: np.ndarray, looks: Looks) -> Finding:
    p = paired_comparison(dict.fromkeys(range(len(diffs)), 0.0), dict(enumerate(diffs)), level=looks.level())
    j = paired_judgement(p, claim.delta)
    return Finding(claim, [], None, j.verdict, j.why, 0, paired=p, p=j.p)


@dataclass(frozen=True)
class Case:
    """m rows of one family, each at the boundary of its null, and the verdict that is false there."""

    rule: str
    draw: Callable[[int, np.random.Generator], np.ndarray]  # (sims, rng) -> (sims, MAX_SEEDS, cells)
    false: str
    rows: int = 1
    pick: int = 1  # > 1: one row, its cell the best of `pick` cells at each look (K1's bar)
    sims: int = SIMS

    def claims(self) -> list[ClaimRow]:
        kw = {"pick": "best-oneshot"} if self.pick > 1 else {}
        return [row(self.rule, f"F {j}", **kw) for j in range(self.rows)]

    def finding(self, claim: ClaimRow, cells: np.ndarray, looks: Looks) -> Finding:
        """`cells` (n, cells of this row): the row's evidence on its first n seeds."""
        if self.rule == "better":
            return comparison(claim, cells[:, 0], looks)
        if self.pick > 1:
            best = int(np.argmax(cells.mean(axis=0)))
            return single_cell(claim, cells[:, best], looks, selected_from=self.pick)
        return single_cell(claim, cells[:, 0], looks)


def normal(mean: float, sd: float, cells: int = 1) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda sims, rng: rng.normal(mean, sd, (sims, MAX_SEEDS, cells))


def with_nan(draw: Callable[[int, np.random.Generator], np.ndarray], share: float):
    """The same draws with about `share` of the seeds' values not finite (a NaN metric)."""

    def nan_draw(sims: int, rng: np.random.Generator) -> np.ndarray:
        values = draw(sims, rng)
        return np.where(rng.random(values.shape) < share, np.nan, values)

    return nan_draw


def oneshot_at_bar(sd: float, cells: int = 1) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Each cell's seeds share one sample of 400 trials, whose luck moves them alike, plus seed noise."""

    def draw(sims: int, rng: np.random.Generator) -> np.ndarray:
        shared = rng.binomial(400, ONESHOT_BAR, (sims, 1, cells)) / 400 - ONESHOT_BAR
        return ONESHOT_BAR + shared + rng.normal(0, sd, (sims, MAX_SEEDS, cells))

    return draw


def false_rate(case: Case, looks: Looks, rounds: bool, seed: int, sims: int | None = None) -> float:
    """Share of simulated decide runs in which the false verdict stands at some look. Every look:
    each open row gets one more seed per look; rounds: decide's own planning picks the next n."""
    draws = case.draw(sims or case.sims, np.random.default_rng(seed))
    claims = case.claims()
    per_row = draws.shape[2] // len(claims)
    cells_of = {c.id: (c.id,) for c in claims}
    plan = Plan(Path("simulated"), None, claims, cells_of)  # type: ignore[arg-type]  # rows and cells only
    hits = 0
    for sim in draws:
        seeds = {c.id: FIRST_LOOK for c in claims}
        states = {c.id: RowState(c.id) for c in claims}
        while True:
            found = [
                case.finding(c, sim[: seeds[c.id], j * per_row : (j + 1) * per_row], looks)
                for j, c in enumerate(claims)
            ]
            # the gate only ever demotes a verdict (test_the_gate_never_makes_a_verdict): where every
            # rule said inconclusive, every look and its states stay as they are, so skip its cost
            if rounds or any(f.verdict != INCONCLUSIVE for f in found):
                gated = family_gate(found, claims, looks)
                if any(g.verdict == case.false for g in gated):
                    hits += 1
                    break
                by_id = update_states(plan, states, gated)
            if rounds:
                target = next_targets(plan, by_id, states, seeds, looks)
            else:
                target = {
                    k: min(MAX_SEEDS, n + 1) if states[k].verdict == INCONCLUSIVE else n for k, n in seeds.items()
                }
            if target == seeds:
                break
            seeds = target
    return hits / len(draws)


CASES = {
    "works: acc exactly at the 90 % bar": Case("works", normal(WORKS_ACC, 0.01), REPRODUCED, sims=10_000),
    "works: at the bar, a fifth of the seeds NaN": Case("works", with_nan(normal(WORKS_ACC, 0.01), 0.2), REPRODUCED),
    "learns: AUC exactly at 0.90": Case("learns", normal(LEARNS_AUC, 0.01), REPRODUCED),
    "above-chance: AUC on the band's edge": Case("above-chance", normal(CHANCE_HIGH, 0.01), REPRODUCED),
    "chance: AUC on the band's edge": Case("chance", normal(CHANCE_HIGH, 0.01), REPRODUCED),
    "better: difference exactly delta (reproduced)": Case("better", normal(0.01, 0.005), REPRODUCED),
    "better: difference exactly delta (no difference that matters)": Case("better", normal(0.01, 0.005), CONTRADICTED),
    "oneshot at the bar, seed sd 0.01": Case("oneshot", oneshot_at_bar(0.01), REPRODUCED, sims=6_000),
    "oneshot at the bar, seed sd 0.10": Case("oneshot", oneshot_at_bar(0.10), REPRODUCED, sims=6_000),
    "family of 3 rows at the bar": Case("works", normal(WORKS_ACC, 0.01, 3), REPRODUCED, rows=3, sims=5_000),
    "family of 5 rows at the bar": Case("works", normal(WORKS_ACC, 0.01, 5), REPRODUCED, rows=5, sims=5_000),
    "oneshot: the best of 4 cells at the bar": Case("oneshot", oneshot_at_bar(0.03, 4), REPRODUCED, pick=4),
}
