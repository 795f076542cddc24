"""decide's error control under optional stopping: simulated decide runs, looking after every
added seed from 3 to --max-seeds and stopping at the first verdict, through the report's own
rules at decide's per-look level. At the boundary of each rule's null, the false verdict rate
stays at 2.5 % (plus Monte Carlo error); looking at 95 % intervals every time does not."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from siamese_bench.decide.sequential import ALPHA, FIRST_LOOK, level, nominal_alpha, seeds_needed
from siamese_bench.report.evidence import Evidence
from siamese_bench.report.rules import (
    CHANCE_HIGH,
    CONTRADICTED,
    INCONCLUSIVE,
    LEARNS_AUC,
    ONESHOT_BAR,
    REPRODUCED,
    RULES,
    WORKS_ACC,
    paired_judgement,
)
from siamese_bench.report.stats import UNIT, paired_comparison, t_interval

SIMS, MAX_SEEDS = 20_000, 10
BOUND = ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / SIMS)  # 2.5 % plus three Monte Carlo standard errors


NO_RUNS = pd.DataFrame()


def single_cell(rule: str, metric: str) -> Callable[[np.ndarray, float], str]:
    """The rule's own judge on evidence of the first n seeds (intervals at the look's level)."""
    ones = t_interval([0.9, 0.91])

    def verdict(values: np.ndarray, lvl: float) -> str:
        if metric == "oneshot":  # the rule reads the seeds' values itself (its interval is taken at the bar)
            ev = Evidence(
                "s",
                "v",
                "c",
                1,
                {"oneshot/acc": values},
                ones,
                ones,
                ones,  # type: ignore[arg-type]
                oneshot=ones,
                level=lvl,
            )
        else:
            iv = t_interval(values, level=lvl, bounds=UNIT)
            ev = Evidence(
                "s",
                "v",
                "c",
                1,
                NO_RUNS,
                iv if metric == "acc" else ones,
                iv if metric == "auc" else ones,
                ones,
                level=lvl,
            )
        return RULES[rule].judge(ev).verdict

    return verdict


def better(delta: float) -> Callable[[np.ndarray, float], str]:
    def verdict(diffs: np.ndarray, lvl: float) -> str:
        p = paired_comparison(dict.fromkeys(range(len(diffs)), 0.0), dict(enumerate(diffs)), level=lvl)
        return paired_judgement(p, delta).verdict

    return verdict


def false_rate(draws: np.ndarray, verdict: Callable[[np.ndarray, float], str], false: str, lvl: float) -> float:
    """Share of simulated decide runs that stop on the false verdict, looking at every n."""
    hits = 0
    for row in draws:
        for n in range(FIRST_LOOK, draws.shape[1] + 1):
            v = verdict(row[:n], lvl)
            if v != INCONCLUSIVE:
                hits += v == false
                break
    return hits / len(draws)


def trials_noise(rng: np.random.Generator, p: float) -> np.ndarray:
    """Seeds share one sample of 400 trials: its luck moves every seed of a run alike."""
    return (rng.binomial(400, p, (SIMS, 1)) / 400 - p) + rng.normal(0, 0.01, (SIMS, MAX_SEEDS))


CASES = {  # rule at the boundary of its null -> (draws, verdict function, the false verdict)
    "works: acc exactly at the 90 % bar": (
        lambda rng: rng.normal(WORKS_ACC, 0.01, (SIMS, MAX_SEEDS)),
        single_cell("works", "acc"),
        REPRODUCED,
    ),
    "learns: AUC exactly at 0.90": (
        lambda rng: rng.normal(LEARNS_AUC, 0.01, (SIMS, MAX_SEEDS)),
        single_cell("learns", "auc"),
        REPRODUCED,
    ),
    "above-chance: AUC on the band's edge": (
        lambda rng: rng.normal(CHANCE_HIGH, 0.01, (SIMS, MAX_SEEDS)),
        single_cell("above-chance", "auc"),
        REPRODUCED,
    ),
    "chance: AUC on the band's edge": (
        lambda rng: rng.normal(CHANCE_HIGH, 0.01, (SIMS, MAX_SEEDS)),
        single_cell("chance", "auc"),
        REPRODUCED,
    ),
    "oneshot: accuracy exactly at the 70 % bar": (
        lambda rng: ONESHOT_BAR + trials_noise(rng, ONESHOT_BAR),
        single_cell("oneshot", "oneshot"),
        REPRODUCED,
    ),
    "better: difference exactly delta (reproduced)": (
        lambda rng: rng.normal(0.01, 0.005, (SIMS, MAX_SEEDS)),
        better(0.01),
        REPRODUCED,
    ),
    "better: difference exactly delta (no difference that matters)": (
        lambda rng: rng.normal(0.01, 0.005, (SIMS, MAX_SEEDS)),
        better(0.01),
        CONTRADICTED,
    ),
}


@pytest.mark.slow  # 20,000 decide runs per rule: ~40 s in all
@pytest.mark.parametrize("case", list(CASES))
def test_a_false_verdict_stays_at_alpha_across_all_looks(case):
    draw, verdict, false = CASES[case]
    rate = false_rate(draw(np.random.default_rng(zlib.crc32(case.encode()))), verdict, false, level(MAX_SEEDS))
    assert rate <= BOUND, f"{case}: {rate:.4f}"


@pytest.mark.slow
def test_looking_at_95_percent_intervals_every_time_inflates_false_verdicts():
    """The test above can fail: the naive procedure (95 % at every look) is caught."""
    draw, verdict, false = CASES["works: acc exactly at the 90 % bar"]
    naive = false_rate(draw(np.random.default_rng(1)), verdict, false, 0.95)
    assert naive > BOUND and naive > 2 * ALPHA


def test_the_per_look_level_is_one_look_at_alpha_and_shrinks_with_more_looks():
    assert nominal_alpha(3) == ALPHA and level(3) == pytest.approx(0.95)
    assert ALPHA / 8 < nominal_alpha(10) < nominal_alpha(5) < ALPHA  # better than Bonferroni over 8 looks


def test_seeds_needed_projects_from_the_spread():
    per_look = nominal_alpha(10)
    assert seeds_needed(0.1, 0.01, per_look) == 3  # far from the bar: the first look settles it
    assert seeds_needed(0.05, 0.01, per_look) == 4
    assert seeds_needed(0.01, 0.01, per_look) == 10  # a gap of one sd: all ten seeds
    far = seeds_needed(0.005, 0.01, per_look)
    assert far is not None and 20 < far < 40  # beyond --max-seeds 10: decide says so instead of running them
    assert seeds_needed(0.0, 0.01, per_look) is None and seeds_needed(1e-6, 0.01, per_look, limit=50) is None
