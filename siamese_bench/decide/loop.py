"""decide's rounds: run the cells a claims file needs on 3 seeds, judge every row, then add seeds
only to the cells of rows still open, until each row is decided, not decidable within
--max-seeds, or the budget is spent. Each round is a sweep on one study (journal, or PostgreSQL
and an MLflow server across machines), so running decide again resumes: nothing is retrained.

Every look reads intervals at decide's per-look level, and each family's Holm correction works
on the looks' sequential p-values (report/looks.py), so stopping when a row is decided keeps the
error of each family's verdicts at 2.5 %.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siamese_bench.decide.design import Design, check_fresh_seeds, keep_or_record
from siamese_bench.decide.plan import Plan
from siamese_bench.decide.projection import BEYOND, row_interval, seeds_to_decide
from siamese_bench.infra.tracking import Tracker
from siamese_bench.report.findings import Finding, findings
from siamese_bench.report.load import load_studies
from siamese_bench.report.looks import FIRST_LOOK, Looks
from siamese_bench.report.rules import INCONCLUSIVE
from siamese_bench.sweep.claims import Point
from siamese_bench.sweep.runner import Sweep

log = logging.getLogger(__name__)


@dataclass
class RowState:
    id: str
    verdict: str = INCONCLUSIVE
    seeds: int = 0  # seeds behind its interval (paired seeds for a comparison)
    why: str = "not run yet"  # why decide stopped adding seeds to it
    projected: int | None = None
    reason: str = ""  # the report's reason for the verdict


@dataclass
class Outcome:
    rows: list[RowState]
    rounds: int
    trials: int  # cell x seed runs the study holds
    seconds: float
    level: float
    findings: list[Finding] = field(default_factory=list)
    looks: Looks = field(default_factory=Looks)

    def summary(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "trials": self.trials,
            "seconds": round(self.seconds, 1),
            "interval_level": self.level,
            "rows": [
                {"id": r.id, "verdict": r.verdict, "seeds": r.seeds, "stopped": r.why, "projected_seeds": r.projected}
                for r in self.rows
            ],
        }


@dataclass
class Engine:
    """How each round's sweep runs (sweep's options)."""

    storage_url: str
    tracker: Tracker
    workers: int
    threads: int | None = None
    progress: bool = True
    outage: float = 300.0
    sweep_options: dict[str, Any] = field(default_factory=dict)  # further Sweep keywords, e.g. heartbeats
    # another way to run a round's points (SLURM jobs: sweep/slurm.py); returns how many trials completed
    launch: Callable[[list[Point]], int] | None = None

    def run_round(self, plan: Plan, points: list[Point]) -> int:
        """Train the round's points (those not done yet); how many trials completed."""
        if self.launch is not None:
            return self.launch(points)
        return (
            Sweep(
                plan.spec,
                self.storage_url,
                self.tracker,
                self.workers,
                progress=self.progress,
                outage=self.outage,
                threads=self.threads,
                points=points,
                plugin_names=plan.plugins,
                **self.sweep_options,
            )
            .run()
            .completed
        )


def _judge(plan: Plan, tracking_uri: str, looks: Looks) -> list[Finding]:
    _, studies = load_studies([plan.spec.name], tracking_uri)
    return findings(studies, plan.rows, looks)


def update_states(plan: Plan, states: dict[str, RowState], found_list: list[Finding]) -> dict[str, Finding]:
    """Each row's verdict, finite seeds and reason after a look; the findings by row id."""
    found = {f.row.id: f for f in found_list}
    for row in plan.rows:
        f, state = found.get(row.id), states[row.id]
        iv = row_interval(f) if f else None
        state.seeds = iv.n if iv is not None else 0
        if f is not None:
            state.verdict, state.reason = f.verdict, f.reason
            if f.verdict != INCONCLUSIVE:
                state.why = f"decided at {state.seeds} seeds"
    return found


def next_targets(
    plan: Plan,
    found: dict[str, Finding],
    states: dict[str, RowState],
    seeds: dict[str, int],
    looks: Looks,
) -> dict[str, int]:
    """Seeds each cell should have after the next round. An open row's cells grow towards its
    projection, but at most doubling per round: three seeds estimate a spread poorly, so each
    round refines the projection before more seeds are spent on it. A row whose look has fewer
    finite values than the first look needs gets the seeds it lacks."""
    max_seeds = looks.max_seeds
    target = dict(seeds)
    open_in = Counter(r.holm_family for r in plan.rows if states[r.id].verdict == INCONCLUSIVE)
    for row in plan.rows:
        state, f = states[row.id], found.get(row.id)
        if state.verdict != INCONCLUSIVE or f is None:
            continue
        have = max(seeds[c] for c in plan.cells_of[row.id])
        projected = seeds_to_decide(f, looks, open_in[row.holm_family])
        state.projected = None if projected.seeds is None or projected.seeds == BEYOND else int(projected.seeds)
        if have >= max_seeds:
            state.why = f"--max-seeds {max_seeds} reached"
            continue
        if state.seeds < looks.min_n:
            want = have + looks.min_n - state.seeds
            state.why = f"open: {state.seeds} finite values of {have} seeds, a look needs {looks.min_n}"
        elif projected.seeds is None:
            state.why = f"not decidable: {projected.why}"
            continue
        elif projected.seeds > max_seeds:
            state.why = (
                f"not decidable within --max-seeds {max_seeds} (needs "
                + ("more than 1,000" if projected.seeds == BEYOND else f"about {int(projected.seeds)}")
                + " seeds at the spread seen)"
            )
            continue
        else:
            want = max(have + 1, min(int(projected.seeds), 2 * have))
            state.why = "open"
        for cell in plan.cells_of[row.id]:
            target[cell] = max(target[cell], min(max_seeds, want))
    return target


def _fit(grow: dict[str, int], seeds: dict[str, int], per_trial: float, workers: int, left: float) -> dict[str, int]:
    """The round shrunk to what `left` seconds hold (at least one seed more per cell), or {}."""

    def cost(g: dict[str, int]) -> float:
        return per_trial * sum(n - seeds[c] for c, n in g.items()) / max(1, workers)

    while grow and cost(grow) > left:
        shrunk = {c: max(seeds[c] + 1, seeds[c] + (n - seeds[c]) // 2) for c, n in grow.items()}
        if shrunk == grow:
            return {}
        grow = shrunk
    return grow


def run(
    plan: Plan, engine: Engine, max_seeds: int, budget: float | None = None, say: Callable[[str], None] = print
) -> Outcome:
    """Rounds until every row is settled; returns each row's verdict, seeds and why it stopped."""
    started = time.monotonic()
    check_fresh_seeds(engine.tracker, plan, str(plan.path))
    keep_or_record(engine.tracker, plan, Design(max_seeds, plan.spec.seeds[0]), str(plan.path))
    looks = Looks(max_seeds)
    per_look, level = looks.per_look(), looks.level()
    cells = [c.id for c in plan.spec.cells()]
    seeds = {c: min(FIRST_LOOK, max_seeds) for c in cells}
    states = {row.id: RowState(row.id) for row in plan.rows}
    rounds, found_list, trial_seconds = 0, [], []
    say(
        f"decide {plan.spec.name}: {len(plan.rows)} rows, {len(cells)} cells; each look reads "
        f"{level * 100:.4g} % intervals (per-look one-sided level {per_look:.4f}, {max_seeds} seeds at most)"
    )
    while True:
        points: list[Point] = [(c, s) for c in cells for s in plan.spec.seeds[: seeds[c]]]
        round_started = time.monotonic()
        completed = engine.run_round(plan, points)
        rounds += 1
        if completed:
            trial_seconds.append((time.monotonic() - round_started) * engine.workers / completed)
        found_list = _judge(plan, engine.tracker.uri, looks)
        found = update_states(plan, states, found_list)
        target = next_targets(plan, found, states, seeds, looks)
        grow = {c: n for c, n in target.items() if n > seeds[c]}
        say(f"round {rounds}: " + "; ".join(f"{s.id} {s.verdict} (n={s.seeds})" for s in states.values()))
        if not grow:
            break
        if budget is not None:
            elapsed = time.monotonic() - started
            per_trial = sum(trial_seconds) / len(trial_seconds) if trial_seconds else 0.0
            grow = _fit(grow, seeds, per_trial, engine.workers, budget - elapsed)
            if not grow:
                for state in states.values():
                    if state.why == "open":
                        state.why = (
                            f"--budget {budget / 60:g} min reached ({elapsed / 60:.1f} min spent; one more "
                            f"seed per open cell would take about {per_trial / 60:.1f} min per trial)"
                        )
                break
        seeds.update(grow)
    trials = sum(seeds.values())
    return Outcome(list(states.values()), rounds, trials, time.monotonic() - started, level, found_list, looks)


def finish_study(plan: Plan, tracker: Tracker, outcome: Outcome) -> None:
    """Mark the study's MLflow parent run done: decide, not a fixed grid, says when it is."""
    experiment = tracker.get_experiment(plan.spec.name)
    if experiment is None:
        return
    for parent in tracker.search_runs(experiment, "tags.role = 'study'"):
        tags = {
            "decide_rounds": str(outcome.rounds),
            "decide_trials": str(outcome.trials),
            "decide_level": f"{outcome.level:.6f}",
        }
        tracker.set_tags(parent.info.run_id, tags)
        if parent.info.status != "FINISHED":
            tracker.set_status(parent.info.run_id, "FINISHED")


def line(state: RowState) -> str:
    seeds = f"{state.seeds} seeds" if state.seeds else "no run"
    projected = "" if state.projected is None or state.verdict != INCONCLUSIVE else f", projected {state.projected}"
    return f"{state.id}: {state.verdict} ({seeds}{projected}); {state.why}"
