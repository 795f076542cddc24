"""Writing a finished task's outcome: its Optuna trial's state and attributes, and its MLflow
run's status and tags. Idempotent, so a retry after an outage cannot count or tell it twice;
a trial another sweep took over meanwhile keeps that sweep's verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from siamese_bench.infra.retry import Retrier
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.pool import Outcome
from siamese_bench.sweep.worker import Task

OBJECTIVE = "val/auc"  # what Optuna records as a trial's value; test metrics are user attrs


@dataclass
class SweepSummary:
    study: str
    completed: int = 0
    failed: int = 0
    pruned: int = 0
    stale: int = 0
    seconds: float = 0.0
    tune_epochs_run: int = 0
    tune_epochs_budget: int = 0
    study_done: bool = False  # every point settled (this sweep or another finished the rest)
    points_failed: int = 0  # points of the study settled as failed, by any sweep
    seeds_left: list[int] = field(default_factory=list)  # seeds --seeds left open for a later sweep


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
            return self.retry(lambda: self.write(study, trial_id, task, outcome), "record trial")
        except UpdateFinishedTrialError:
            # Another sweep failed this trial after missing its heartbeats and re-runs the point.
            if run_id:
                self.tracker.set_tags(run_id, {"fail_reason": "superseded: taken over after missed heartbeats"})
                self.tracker.set_status(run_id, "KILLED")
            return "FAIL", f"{task.run_name}: result discarded (trial was taken over by another sweep)"

    def tag(self, run_id: str | None, state: str, outcome: Outcome) -> None:
        """The trial's final state on its MLflow run."""
        if not run_id:
            return
        tags = {"optuna_state": state}
        if state == "FAIL" and outcome.kind == "done":  # finished, but its objective is not finite
            tags["fail_reason"] = "diverged: objective is not finite"
        self.tracker.set_tags(run_id, tags)

    def write(self, study: optuna.Study, trial_id: int, task: Task, outcome: Outcome) -> tuple[str, str]:
        """Write a finished task's outcome to its trial; idempotent, so an outage can retry it.
        Raises UpdateFinishedTrialError when the trial was failed by another sweep meanwhile."""
        current = self.storage.get_trial(trial_id)
        intended = {"done": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(outcome.kind, TrialState.FAIL)
        if current.state.is_finished():
            if current.state == intended:
                return current.state.name, f"{task.run_name}: recorded"  # our earlier attempt went through
            raise UpdateFinishedTrialError(f"trial {current.number} is already {current.state.name}")
        number = current.number
        self.storage.set_trial_user_attr(trial_id, "epochs_run", outcome.epochs)
        if outcome.kind == "done":
            for k, v in outcome.metrics.items():
                self.storage.set_trial_user_attr(trial_id, k, v)
            self.storage.set_trial_user_attr(trial_id, "dataset_variant", outcome.data_variant)
            value = outcome.metrics.get(self.tune_metric if task.prune else OBJECTIVE, float("nan"))
            if math.isfinite(value):
                study.tell(number, value)
                self.summary.completed += 1
                line = (
                    f"{task.run_name}: test acc {outcome.metrics.get('test/acc', float('nan')):.4f}, "
                    f"auc {outcome.metrics.get('test/auc', float('nan')):.4f} "
                    f"({outcome.metrics.get('seconds', 0):.0f} s)"
                    + (" COLLAPSED (embeddings shrank to a point)" if outcome.metrics.get("collapsed") else "")
                )
                return "COMPLETE", line
            self.storage.set_trial_user_attr(trial_id, "fail_reason", "objective is not finite")
            self.storage.set_trial_user_attr(trial_id, "failure", "diverged")
            study.tell(number, state=TrialState.FAIL)
            self.summary.failed += 1
            return "FAIL", f"{task.run_name}: FAILED: objective is not finite"
        if outcome.kind == "pruned":
            study.tell(number, state=TrialState.PRUNED)
            self.summary.pruned += 1
            return "PRUNED", f"{task.run_name}: {outcome.reason}"
        self.storage.set_trial_user_attr(trial_id, "fail_reason", outcome.reason[:1000])
        self.storage.set_trial_user_attr(trial_id, "failure", outcome.failure)
        study.tell(number, state=TrialState.FAIL)
        if outcome.failure == "lost":
            self.summary.stale += 1
            return "FAIL", f"{task.run_name}: {outcome.reason}; its point re-runs"
        self.summary.failed += 1
        return "FAIL", f"{task.run_name}: FAILED: {outcome.reason}"
