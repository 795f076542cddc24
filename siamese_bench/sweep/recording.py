"""Writing a finished task's outcome: its Optuna trial's state and attributes, and its MLflow
run's status and tags. Idempotent, so a retry after an outage cannot count or tell it twice;
a trial another sweep took over meanwhile keeps that sweep's verdict.

A worker's run ends FINISHED a moment before its trial is told. A sweep killed in between leaves
a FINISHED run and a RUNNING trial: recovery adopts that trial (`Recorder.adopt`, told from the
run's recorded metrics), so the point does not train again. When a point does train again (its
trial was failed before it could be adopted), the run that completes it marks every other
FINISHED run of the point KILLED with a `superseded_by` tag: a store never holds two FINISHED
runs of one grid point."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from siamese_bench.infra.retry import Retrier
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.optuna_api import trial_id as id_of
from siamese_bench.sweep.pool import Outcome
from siamese_bench.sweep.worker import Task

log = logging.getLogger(__name__)

OBJECTIVE = "val/auc"  # what Optuna records as a trial's value; test metrics are user attrs


@dataclass
class SweepSummary:
    study: str
    completed: int = 0
    failed: int = 0
    pruned: int = 0
    stale: int = 0
    adopted: int = 0  # trials of dead sweeps told from their FINISHED runs, not retrained
    seconds: float = 0.0
    tune_epochs_run: int = 0
    tune_epochs_budget: int = 0
    study_done: bool = False  # every point settled (this sweep or another finished the rest)
    points_failed: int = 0  # points of the study settled as failed, by any sweep
    seeds_left: list[int] = field(default_factory=list)  # seeds --seeds left open for a later sweep


def _seconds(value: float) -> str:
    """A trial's training time for its log line: tenths under 10 s (a digits seed takes under one)."""
    if not math.isfinite(value):
        return "time not recorded"
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


class Recorder:
    def __init__(
        self, storage: BaseStorage, tracker: Tracker, retry: Retrier, summary: SweepSummary, tune_metric: str
    ) -> None:
        self.storage, self.tracker, self.retry = storage, tracker, retry
        self.summary, self.tune_metric = summary, tune_metric

    def record(
        self, study: optuna.Study, trial_id: int, task: Task, outcome: Outcome, run_id: str | None, run_ended: bool
    ) -> tuple[str, str]:
        """End the task's MLflow run if its worker could not, then write the outcome to its
        trial. Returns the trial's state and a line for the user."""
        if run_id and not run_ended:  # its worker could not end it: never leave it RUNNING
            self.tracker.end_run(
                run_id, "FINISHED" if outcome.kind == "done" else "KILLED" if outcome.kind == "pruned" else "FAILED"
            )
        try:
            state, line = self.retry(
                lambda: self.write(study, trial_id, outcome, task.run_name, task.prune is not None), "record trial"
            )
        except UpdateFinishedTrialError:
            current = self.storage.get_trial(trial_id)
            if current.state == TrialState.COMPLETE and run_id and current.user_attrs.get("adopted_run") == run_id:
                return "COMPLETE", f"{task.run_name}: recorded (another sweep adopted its finished run meanwhile)"
            # Another sweep failed this trial after missing its heartbeats and re-runs the point.
            if run_id:
                self.tracker.set_tags(run_id, {"fail_reason": "superseded: taken over after missed heartbeats"})
                self.tracker.set_status(run_id, "KILLED")
            return "FAIL", f"{task.run_name}: result discarded (trial was taken over by another sweep)"
        if state == "COMPLETE" and run_id:
            self.supersede(study, self.storage.get_trial(trial_id), run_id)
        return state, line

    def adopt(self, study: optuna.Study, trial: FrozenTrial, ended_for: float) -> bool:
        """Tell the trial of a dead sweep from its MLflow run, when that run ended FINISHED (at
        least `ended_for` seconds ago) with the trial's objective among its metrics: its
        worker had finished, its sweep died before telling the trial. True when adopted."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        run = self.tracker.get_run(str(run_id)) if run_id else None
        if run is None or run.info.status != "FINISHED":
            return False
        tuned = "seed" not in trial.user_attrs  # a tuning trial (grid trials carry their point)
        metrics = {k: v for k, v in run.data.metrics.items() if not k.startswith(("train/", "system/"))}
        if (self.tune_metric if tuned else OBJECTIVE) not in metrics:
            return False  # ended FINISHED before its final metrics were logged: not a result
        if (time.time() * 1000 - (run.info.end_time or 0)) / 1000 < ended_for:
            return False  # its owner may be telling it this moment
        outcome = Outcome(
            "done",
            metrics=metrics,
            epochs=self.tracker.metric_steps(run.info.run_id, OBJECTIVE),
            data_variant=run.data.tags.get("dataset_variant", ""),
        )
        self.storage.set_trial_user_attr(id_of(trial), "adopted_run", run.info.run_id)
        try:
            state, _ = self.write(study, id_of(trial), outcome, run.info.run_name, tuned)
        except UpdateFinishedTrialError:
            return False  # its owner told it after all
        self.tracker.set_tags(run.info.run_id, {"optuna_state": state, "adopted": "true"})
        self.summary.adopted += 1
        log.warning(
            "trial %d of %s (%s): its sweep died after its run %s finished; told from the run's metrics, not retrained",
            trial.number,
            study.study_name,
            run.info.run_name,
            run.info.run_id,
        )
        if state == "COMPLETE":
            self.supersede(study, self.storage.get_trial(id_of(trial)), run.info.run_id)
        return True

    def supersede(self, study: optuna.Study, trial: FrozenTrial, run_id: str) -> None:
        """Mark KILLED, tagged superseded_by `run_id`, every other FINISHED run of the grid point
        `trial` completes: runs of trials that were failed as lost after their run finished."""
        cell, seed = trial.user_attrs.get("cell"), trial.user_attrs.get("seed")
        experiment = self.tracker.get_experiment(study.study_name)
        if cell is None or seed is None or experiment is None:
            return  # a tuning trial: no point to hold twice
        others = self.tracker.search_runs(
            experiment,
            f"attributes.status = 'FINISHED' and tags.optuna_study = '{study.study_name}' "
            f"and tags.cell = '{cell}' and tags.seed = '{seed}'",
        )
        for run in others:
            if run.info.run_id == run_id:
                continue
            self.tracker.set_tags(
                run.info.run_id,
                {"superseded_by": run_id, "optuna_state": "FAIL", "fail_reason": "superseded: its point was re-run"},
            )
            self.tracker.set_status(run.info.run_id, "KILLED")
            log.warning("run %s of %s seed %s: superseded by run %s, ended KILLED", run.info.run_id, cell, seed, run_id)

    def tag(self, run_id: str | None, state: str, outcome: Outcome) -> None:
        """The trial's final state on its MLflow run."""
        if not run_id:
            return
        tags = {"optuna_state": state}
        if state == "FAIL" and outcome.kind == "done":  # finished, but its objective is not finite
            tags["fail_reason"] = "diverged: objective is not finite"
        self.tracker.set_tags(run_id, tags)

    def write(self, study: optuna.Study, trial_id: int, outcome: Outcome, name: str, tuned: bool) -> tuple[str, str]:
        """Write a finished task's outcome to its trial (`name`: its run's; `tuned`: a tuning
        trial, its value the tuned metric); idempotent, so an outage can retry it. Raises
        UpdateFinishedTrialError when the trial was failed by another sweep meanwhile."""
        current = self.storage.get_trial(trial_id)
        intended = {"done": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(outcome.kind, TrialState.FAIL)
        if current.state.is_finished():
            if current.state == intended:
                return current.state.name, f"{name}: recorded"  # our earlier attempt went through
            raise UpdateFinishedTrialError(f"trial {current.number} is already {current.state.name}")
        number = current.number
        self.storage.set_trial_user_attr(trial_id, "epochs_run", outcome.epochs)
        if outcome.kind == "done":
            for k, v in outcome.metrics.items():
                self.storage.set_trial_user_attr(trial_id, k, v)
            self.storage.set_trial_user_attr(trial_id, "dataset_variant", outcome.data_variant)
            value = outcome.metrics.get(self.tune_metric if tuned else OBJECTIVE, float("nan"))
            if math.isfinite(value):
                study.tell(number, value)
                self.summary.completed += 1
                line = (
                    f"{name}: test acc {outcome.metrics.get('test/acc', float('nan')):.4f}, "
                    f"auc {outcome.metrics.get('test/auc', float('nan')):.4f} "
                    f"({_seconds(outcome.metrics.get('seconds', float('nan')))})"
                    + (" COLLAPSED (embeddings shrank to a point)" if outcome.metrics.get("collapsed") else "")
                )
                return "COMPLETE", line
            self.storage.set_trial_user_attr(trial_id, "fail_reason", "objective is not finite")
            self.storage.set_trial_user_attr(trial_id, "failure", "diverged")
            study.tell(number, state=TrialState.FAIL)
            self.summary.failed += 1
            return "FAIL", f"{name}: FAILED: objective is not finite"
        if outcome.kind == "pruned":
            study.tell(number, state=TrialState.PRUNED)
            self.summary.pruned += 1
            return "PRUNED", f"{name}: {outcome.reason}"
        self.storage.set_trial_user_attr(trial_id, "fail_reason", outcome.reason[:1000])
        self.storage.set_trial_user_attr(trial_id, "failure", outcome.failure)
        study.tell(number, state=TrialState.FAIL)
        if outcome.failure == "lost":
            self.summary.stale += 1
            return "FAIL", f"{name}: {outcome.reason}; its point re-runs"
        self.summary.failed += 1
        return "FAIL", f"{name}: FAILED: {outcome.reason}"
