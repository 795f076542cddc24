"""Writing a finished task's outcome (sweep/recording.py): once per trial however often an outage
makes the sweep retry, and never over the verdict of a sweep that took the trial over. Fast:
no training, no servers."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from siamese_bench.core.config import TrainConfig
from siamese_bench.infra.retry import Retrier
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.claims import new_claimed_trial
from siamese_bench.sweep.optuna_api import fail_trial, trial_id
from siamese_bench.sweep.pool import Outcome
from siamese_bench.sweep.recording import Recorder, SweepSummary
from siamese_bench.sweep.recovery import failure_kind
from siamese_bench.sweep.storage import make_storage
from siamese_bench.sweep.worker import Task


@pytest.fixture
def setup(tmp_path, mlruns):
    storage = make_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(study_name="rec", storage=storage, direction="maximize")
    tracker = Tracker(mlruns)
    summary = SweepSummary("rec")
    return study, tracker, summary, Recorder(storage, tracker, Retrier(5, first_pause=0.01), summary, "val/auc")


def claim(study: optuna.Study, tracker: Tracker, seed: int = 0) -> tuple[int, Task, str]:
    trial = new_claimed_trial(study, f"token{seed}", {"cell": "c", "seed": seed})
    task = Task(
        key=f"grid:{trial.number}",
        config=TrainConfig(),
        experiment="rec",
        run_name=f"c seed={seed}",
        parent_run_id=None,
    )
    run_id = tracker.start_run("rec", task.run_name, {}, {"optuna_study": "rec", "optuna_trial": str(trial.number)})
    return trial_id(trial), task, run_id


DONE = Outcome(
    "done", metrics={"val/auc": 0.9, "test/acc": 0.8, "test/auc": 0.85, "seconds": 3.0}, epochs=2, data_variant="digits"
)


def test_a_done_task_is_recorded_once_however_often_it_is_written(setup):
    study, tracker, summary, recorder = setup
    tid, task, run_id = claim(study, tracker)
    state, line = recorder.record(study, tid, task, DONE, run_id, run_ended=False)
    assert state == "COMPLETE" and "test acc 0.8000" in line
    again = recorder.write(study, tid, DONE, task.run_name, False)  # a retry after an outage
    assert again == ("COMPLETE", "c seed=0: recorded")
    assert summary.completed == 1
    trial = study.get_trials()[0]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.9
    assert trial.user_attrs["epochs_run"] == 2 and trial.user_attrs["dataset_variant"] == "digits"
    assert tracker.client.get_run(run_id).info.status == "FINISHED"  # its worker could not end it: the parent did


def test_failures_keep_their_kind_and_a_non_finite_objective_is_diverged(setup):
    study, tracker, summary, recorder = setup
    outcomes = [
        Outcome("failed", reason="ValueError: boom", failure="error"),
        Outcome("failed", reason="lost: worker process died (exit code -9)", failure="lost"),
        Outcome("done", metrics={"val/auc": float("nan")}),
    ]
    for seed, outcome in enumerate(outcomes):
        tid, task, run_id = claim(study, tracker, seed)
        state, _ = recorder.record(study, tid, task, outcome, run_id, run_ended=True)
        recorder.tag(run_id, state, outcome)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert [failure_kind(t) for t in trials] == ["error", "lost", "diverged"]
    assert (summary.failed, summary.stale, summary.completed) == (2, 1, 0)
    tags = tracker.client.get_run(run_id).data.tags
    assert tags["optuna_state"] == "FAIL" and tags["fail_reason"] == "diverged: objective is not finite"


def test_a_trial_taken_over_by_another_sweep_keeps_that_verdict(setup):
    """A sweep that missed its heartbeats finishes late: its result is discarded, its run KILLED."""
    study, tracker, summary, recorder = setup
    tid, task, run_id = claim(study, tracker)
    fail_trial(study, tid, {"failure": "lost", "fail_reason": "lost: no heartbeat"})  # the other sweep
    state, line = recorder.record(study, tid, task, DONE, run_id, run_ended=True)
    assert state == "FAIL" and "taken over by another sweep" in line and summary.completed == 0
    assert study.get_trials()[0].user_attrs["failure"] == "lost"
    run = tracker.client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["fail_reason"].startswith("superseded")
