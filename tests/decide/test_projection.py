"""decide's projections: seeds go only to rows that more seeds can decide, towards a verdict the
row's rule can reach; a row that no number of seeds decides says why at once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from siamese_bench.decide.loop import RowState, next_targets
from siamese_bench.decide.plan import Plan
from siamese_bench.decide.projection import BEYOND, seeds_needed, seeds_to_decide
from siamese_bench.report.claims import ClaimRow
from siamese_bench.report.evidence import Evidence
from siamese_bench.report.findings import Finding
from siamese_bench.report.looks import Looks
from siamese_bench.report.rules import INCONCLUSIVE
from siamese_bench.report.stats import Interval, Paired, t_interval

LOOKS = Looks(10)


def comparison(id_: str, mean: float, sd: float, n: int = 3) -> Finding:
    row = ClaimRow(id=id_, claim="c", source="s", select={"head": id_}, versus={"head": "b"}, rule="better")
    diff = Interval(mean, sd, n, mean - 0.02, mean + 0.02, sd / math.sqrt(n), n - 1)
    return Finding(row, [], None, INCONCLUSIVE, "", 0, Paired(n, math.nan, math.nan, diff, math.nan, math.nan))


def single(rule: str, values: list[float], pick: str = "recipe", selected_from: int = 1, **kw) -> Finding:
    row = ClaimRow(id="R", claim="c", source="s", select={"head": "a"}, rule=rule, pick=pick, **kw)
    metric = "oneshot/acc" if rule == "oneshot" else "test/auc"
    iv = t_interval(values)
    runs = pd.DataFrame({metric: values, "seed": range(len(values))})
    ev = Evidence("s", "v", "c", 1, runs, iv, iv, iv, oneshot=iv, looks=LOOKS, selected_from=selected_from)
    return Finding(row, [ev], ev, INCONCLUSIVE, "", 0)


def test_seeds_needed_projects_from_the_spread():
    per_look = LOOKS.per_look()
    assert seeds_needed(0.1, 0.01, per_look) == 3  # far from the bar: the first look settles it
    assert seeds_needed(0.05, 0.01, per_look) == 4
    assert seeds_needed(0.01, 0.01, per_look) == 10  # a gap of one sd: all ten seeds
    far = seeds_needed(0.005, 0.01, per_look)
    assert far is not None and 20 < far < 40  # beyond --max-seeds 10: decide says so instead of running them
    assert seeds_needed(0.0, 0.01, per_look) is None and seeds_needed(1e-6, 0.01, per_look, limit=50) is None


def test_a_row_beyond_max_seeds_gets_none_and_says_so():
    near, clear = comparison("near", 0.006, 0.01), comparison("clear", 0.03, 0.01)
    plan = Plan(Path("c"), None, [near.row, clear.row], {"near": ("a", "b"), "clear": ("c", "b")})  # type: ignore[arg-type]
    states = {"near": RowState("near", seeds=3), "clear": RowState("clear", seeds=3)}
    target = next_targets(plan, {"near": near, "clear": clear}, states, {"a": 3, "b": 3, "c": 3}, LOOKS)
    assert states["near"].why.startswith("not decidable within --max-seeds 10 (needs about")
    assert target["a"] == 3  # no seeds spent on it
    assert states["clear"].why == "open" and target["c"] > 3 and target["b"] == target["c"]


def test_a_learns_row_between_chance_and_the_bar_is_not_decidable_at_once():
    """AUC 0.75: neither >= 0.90 nor inside the chance band. Before, the gap to the band's upper
    edge (which decides nothing for 'learns') projected 3-4 seeds every round, up to the cap."""
    f = single("learns", [0.74, 0.75, 0.76])
    projected = seeds_to_decide(f, LOOKS)
    assert projected.seeds is None and "no verdict of rule 'learns' can be reached" in projected.why
    near_bar = seeds_to_decide(single("learns", [0.93, 0.95, 0.94]), LOOKS)
    assert near_bar.seeds is not None and near_bar.seeds < BEYOND  # above 0.90: reproducible


def test_zero_spread_says_more_seeds_cannot_help():
    projected = seeds_to_decide(single("chance", [0.5, 0.5, 0.5]), LOOKS)
    assert projected.seeds is None and projected.why.startswith("zero spread")


def test_the_one_shot_projection_holds_the_fixed_trials_error_and_the_pick():
    """72 % with seeds agreeing to 1 point: the 400 trials alone keep the interval about +-6 points
    wide at any number of seeds. Before, the projection ignored that and said 3 seeds."""
    f = single("oneshot", [0.715, 0.72, 0.725])
    projected = seeds_to_decide(f, LOOKS)
    assert projected.seeds is None and "binomial error alone" in projected.why
    wide = single("oneshot", list(np.linspace(0.80, 0.90, 3)))
    alone, picked = (
        seeds_to_decide(wide, LOOKS),
        seeds_to_decide(
            single("oneshot", list(np.linspace(0.80, 0.90, 3)), pick="best-oneshot", selected_from=8), LOOKS
        ),
    )
    assert alone.seeds is not None and picked.seeds is not None and picked.seeds > alone.seeds  # alpha / 8 costs seeds


def test_a_row_with_too_few_finite_values_gets_the_seeds_it_lacks():
    f = comparison("r", 0.03, 0.01, n=2)
    plan = Plan(Path("c"), None, [f.row], {"r": ("a", "b")})  # type: ignore[arg-type]
    states = {"r": RowState("r", seeds=2)}
    target = next_targets(plan, {"r": f}, states, {"a": 3, "b": 3}, LOOKS)
    assert target == {"a": 4, "b": 4} and "2 finite values of 3 seeds" in states["r"].why
