"""Claiming work: which grid points are settled or open, and the trials a sweep creates to claim
a grid point or a tuning trial. Claims are made under the study lock (sweep/locks.py), so two
sweeps never claim the same point; a claim creates its trial with its owner and a token in one
write, so a claim an outage cut short is adopted by its retry instead of being lost."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from siamese_bench.core.words import plural
from siamese_bench.sweep.heartbeat import HeartbeatThread
from siamese_bench.sweep.optuna_api import create_running_trial, trial_handle, trial_id
from siamese_bench.sweep.recovery import failure_kind, owner_attrs

MAX_ERROR_ATTEMPTS = 3  # a point whose training raises this often is left failed (a bug, not bad luck)
SETTLED = ("complete", "diverged", "failed")

Point = tuple[str, int]  # (cell id, seed)


def describe_points(points: Sequence[Point]) -> str:
    """'2 cells x 3 seeds = 6 trials', or, when the cells have unequal seed counts,
    '5 trials over 2 cells (2 to 3 seeds each)': what a sweep or a decide round runs."""
    per_cell = Counter(cell for cell, _ in points)
    counts = sorted(set(per_cell.values()))
    if len(counts) <= 1:
        seeds = counts[0] if counts else 0
        return f"{plural(len(per_cell), 'cell')} x {plural(seeds, 'seed')} = {plural(len(points), 'trial')}"
    return (
        f"{plural(len(points), 'trial')} over {plural(len(per_cell), 'cell')} ({counts[0]} to {counts[-1]} seeds each)"
    )


def point_states(study: optuna.Study, points: Sequence[Point]) -> dict[Point, str]:
    """Each point's state over all trials: complete, diverged, failed (errors used up),
    running, or open (to be claimed)."""
    state: dict[Point, str] = {}
    errors: Counter[Point] = Counter()
    for t in study.get_trials(deepcopy=False):
        p: tuple[Any, Any] = (t.user_attrs.get("cell"), t.user_attrs.get("seed"))  # untyped user attributes
        if t.state == TrialState.COMPLETE:
            state[p] = "complete"
        elif t.state == TrialState.RUNNING and state.get(p) != "complete":
            state[p] = "running"
        elif t.state == TrialState.FAIL:
            kind = failure_kind(t)
            if kind == "diverged" and state.get(p) not in ("complete", "running"):
                state[p] = "diverged"
            elif kind == "error":
                errors[p] += 1
    return {p: state.get(p) or ("failed" if errors[p] >= MAX_ERROR_ATTEMPTS else "open") for p in points}


def tuning_budget(study: optuna.Study) -> tuple[int, int]:
    """(trials spent, trials running) of a cell's tuning study: lost trials are not spent."""
    trials = study.get_trials(deepcopy=False)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    spent = sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and failure_kind(t) not in ("lost", "superseded"))
        for t in trials
    )
    return spent, running


def new_claim_token() -> str:
    """Names one claim across its retries, so a retry can find the trial an outage hid from it."""
    return uuid.uuid4().hex


def claimed_trials(study: optuna.Study, token: str | None) -> list[optuna.Trial]:
    """The RUNNING trials earlier attempts of claim `token` created: their commits went through
    but the answer was lost to an outage (a stack's claim creates several)."""
    if token is None:
        return []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [trial_handle(study, trial_id(t)) for t in running if t.user_attrs.get("claim") == token]


def claimed_trial(study: optuna.Study, token: str | None) -> optuna.Trial | None:
    """The first trial of claim `token` (see claimed_trials), or None."""
    return next(iter(claimed_trials(study, token)), None)


def new_claimed_trial(study: optuna.Study, token: str, attrs: dict[str, object]) -> optuna.Trial:
    """A RUNNING trial created with its owner, the claim token and `attrs` in one write.
    Attributes set one at a time after study.ask() can be cut between writes by an outage,
    leaving a trial that no recovery rule can place."""
    return create_running_trial(study, {**owner_attrs(), "claim": token, **attrs})


def claim_grid_points(
    study: optuna.Study,
    token: str,
    wanted: Sequence[Point],
    attrs_of: Callable[[Point], dict[str, Any]],
    size_of: Callable[[str, int], int] = lambda cell, n: 1,
) -> list[optuna.Trial]:
    """The trials of this claim: those earlier attempts created (adopted), else new ones for the
    first of the `wanted` points and up to size_of(its cell, open seeds of its cell) - 1 more
    open seeds of that cell, to train as one stack; [] when nothing is wanted. Each trial is
    created with the claim's token, so an attempt cut short after some is adopted with those."""
    adopted = claimed_trials(study, token)
    if adopted or not wanted:
        return adopted
    cell = wanted[0][0]
    same_cell = [p for p in wanted if p[0] == cell]
    size = max(1, min(size_of(cell, len(same_cell)), len(same_cell)))
    return [new_claimed_trial(study, token, attrs_of(p)) for p in same_cell[:size]]


def claim_tuning_trial(
    studies: dict[str, optuna.Study], token: str, counts: dict[str, tuple[int, int]], per_cell: int
) -> tuple[str, optuna.Trial] | None:
    """(cell id, trial) of this claim: a trial an earlier attempt created (adopted), else a new
    one in the cell with the fewest trials spent or running among those under `per_cell`."""
    adopted = [(cid, t) for cid, s in studies.items() if (t := claimed_trial(s, token))]
    if adopted:
        return adopted[0]
    open_cells = [cid for cid, (spent, running) in counts.items() if spent + running < per_cell]
    if not open_cells:
        return None
    cell_id = min(open_cells, key=lambda cid: sum(counts[cid]))  # round robin
    return cell_id, new_claimed_trial(studies[cell_id], token, {})


@dataclass
class Holdings:
    """What this sweep holds: the trials it runs now (never failed as stale while held), each
    task's trial id, and the token of the claim in progress (kept across its retries)."""

    beats: HeartbeatThread | None = None
    mine: set[int] = field(default_factory=set)
    trial_ids: dict[str, int] = field(default_factory=dict)  # task key -> Optuna trial id, noted at claim
    claiming: str | None = None

    def hold(self, trial_id: int, key: str) -> None:
        self.trial_ids[key] = trial_id
        self.mine.add(trial_id)
        if self.beats:
            self.beats.add(trial_id)  # at once: a machine that dies now is found after one grace period

    def release(self, key: str) -> None:
        trial_id = self.trial_ids.pop(key)
        self.mine.discard(trial_id)
        if self.beats:
            self.beats.discard(trial_id)
