"""The window between a worker's run ending FINISHED and its trial being told (issue 33).

A sweep killed exactly there (the `run-finished` fault point, not a timing guess) leaves a
FINISHED run and a RUNNING trial. Its resume adopts the trial from the run's metrics and trains
nothing again; a point that does train again (its trial failed before it could be adopted)
leaves its old run KILLED, tagged superseded_by the new one. Either way the store holds one
FINISHED run per point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from siamese_bench.infra.faults import FAULT_ENV, RUN_FINISHED
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.optuna_api import fail_trial, trial_id
from siamese_bench.sweep.runner import Sweep
from siamese_bench.sweep.spec import load_spec
from siamese_bench.sweep.storage import make_storage

pytestmark = pytest.mark.slow

SPEC = """name: window
base: {dataset: digits, epochs: 2}
factors: {head: [euclidean, abs-diff-dense], loss: [contrastive, triplet]}
seeds: [0]
"""


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(storage))


def child_runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if r.data.tags.get("role") != "study"]


def _killed_in_the_window(tmp_path, mlruns) -> tuple[str, optuna.trial.FrozenTrial, object]:
    """A sweep that kills itself right after its first run ends FINISHED; the RUNNING trial of
    that run and the run."""
    spec_path = tmp_path / "window.yaml"
    spec_path.write_text(SPEC)
    storage = str(tmp_path / "optuna.journal")
    cmd = [sys.executable, "-m", "siamese_bench", "sweep", str(spec_path), "--workers", "1"]
    cmd += ["--storage", storage, "--tracking-uri", mlruns, "--no-progress"]
    env = {**os.environ, FAULT_ENV: RUN_FINISHED}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    children = child_runs(mlruns, "window")
    finished = [r for r in children if r.info.status == "FINISHED"]
    assert len(finished) == 1, [r.info.status for r in children]
    run = finished[0]
    trial = next(t for t in load(storage, "window").trials if t.user_attrs.get("mlflow_run_id") == run.info.run_id)
    assert trial.state == TrialState.RUNNING  # the window: run FINISHED, trial not told
    deadline = time.time() + 20  # the killed sweep's workers notice their parent is gone
    while time.time() < deadline and any(r.info.status == "RUNNING" for r in child_runs(mlruns, "window")):
        time.sleep(0.5)
    return storage, trial, run


def _finished_per_point(mlruns: str) -> Counter:
    children = child_runs(mlruns, "window")
    return Counter((r.data.tags["cell"], r.data.tags["seed"]) for r in children if r.info.status == "FINISHED")


def test_a_trial_whose_run_finished_is_adopted_not_retrained(tmp_path, mlruns):
    storage, trial, run = _killed_in_the_window(tmp_path, mlruns)
    spec = load_spec(tmp_path / "window.yaml")
    summary = Sweep(spec, storage, Tracker(mlruns), workers=1, progress=False).run()
    assert summary.adopted == 1
    after = {t.number: t for t in load(storage, "window").trials}
    adopted = after[trial.number]
    assert adopted.state == TrialState.COMPLETE
    assert adopted.value == pytest.approx(run.data.metrics["val/auc"])
    assert adopted.user_attrs["test/acc"] == pytest.approx(run.data.metrics["test/acc"])
    assert adopted.user_attrs["adopted_run"] == run.info.run_id
    assert adopted.user_attrs["epochs_run"] == 2
    assert adopted.user_attrs["dataset_variant"] == run.data.tags["dataset_variant"]
    assert sorted(t.user_attrs["cell"] for t in after.values() if t.state == TrialState.COMPLETE) == sorted(
        c.id for c in spec.cells()
    )
    children = child_runs(mlruns, "window")
    assert len(children) == len(spec.cells())  # nothing trained twice: one run per point, ever
    assert set(_finished_per_point(mlruns).values()) == {1} and len(_finished_per_point(mlruns)) == 4
    tags = MlflowClient(mlruns).get_run(run.info.run_id).data.tags
    assert tags["optuna_state"] == "COMPLETE" and tags["adopted"] == "true"


def test_a_point_trained_again_supersedes_its_finished_run(tmp_path, mlruns):
    """The trial was failed before any sweep could adopt it (as Optuna's heartbeat check does
    on another machine): the point trains again, and the old FINISHED run ends KILLED."""
    storage, trial, run = _killed_in_the_window(tmp_path, mlruns)
    study = optuna.load_study(study_name="window", storage=make_storage(storage))
    fail_trial(study, trial_id(trial), {"fail_reason": "lost: test", "failure": "lost"})
    spec = load_spec(tmp_path / "window.yaml")
    summary = Sweep(spec, storage, Tracker(mlruns), workers=1, progress=False).run()
    assert summary.adopted == 0
    old = MlflowClient(mlruns).get_run(run.info.run_id)
    assert old.info.status == "KILLED"
    new = next(
        t
        for t in load(storage, "window").trials
        if t.state == TrialState.COMPLETE and t.user_attrs["cell"] == trial.user_attrs["cell"]
    )
    assert old.data.tags["superseded_by"] == new.user_attrs["mlflow_run_id"] != run.info.run_id
    per_point = _finished_per_point(mlruns)
    assert len(per_point) == 4 and set(per_point.values()) == {1}


def test_another_machines_finished_run_is_adopted_after_the_grace_period(tmp_path, mlruns):
    """RDB storage with heartbeats: a trial of another machine whose run ended FINISHED is left
    alone while its owner may still be telling it (within the grace period), then adopted."""
    from siamese_bench.infra.retry import Retrier
    from siamese_bench.sweep.claims import new_claimed_trial
    from siamese_bench.sweep.recording import Recorder, SweepSummary
    from siamese_bench.sweep.recovery import fail_dead_trials
    from siamese_bench.sweep.storage import Heartbeats

    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", Heartbeats(interval=1, grace=2))
    study = optuna.create_study(study_name="remote", storage=storage, direction="maximize")
    trial = new_claimed_trial(study, "t0", {"cell": "head=euclidean", "seed": 0, "host": "host-b"})
    storage.record_heartbeat(trial_id(trial))
    tracker = Tracker(mlruns)
    run_id = tracker.start_run(
        "remote", "head=euclidean seed 0", {}, {"optuna_study": "remote", "cell": "head=euclidean", "seed": "0"}
    )
    for epoch, auc in enumerate((0.7, 0.8, 0.9)):
        tracker.log_metrics(run_id, {"val/auc": auc, "train/loss": 1.0 - auc}, step=epoch)
    tracker.log_metrics(run_id, {"test/acc": 0.85, "seconds": 3.0}, step=3)
    storage.set_trial_user_attr(trial_id(trial), "mlflow_run_id", run_id)
    tracker.end_run(run_id, "FINISHED")
    summary = SweepSummary("remote")
    recorder = Recorder(storage, tracker, Retrier(5), summary, "")
    failed, adopted = fail_dead_trials(study, adopt=recorder.adopt, grace=2)
    assert failed == [] and adopted == []
    assert study.get_trials()[0].state == TrialState.RUNNING  # its owner may be telling it now
    time.sleep(3.5)  # past the grace period (SQLite's clock counts whole seconds)
    failed, adopted = fail_dead_trials(study, adopt=recorder.adopt, grace=2)
    assert failed == [] and [t.number for t in adopted] == [trial.number]
    told = study.get_trials()[0]
    assert told.state == TrialState.COMPLETE and told.value == pytest.approx(0.9)
    assert told.user_attrs["test/acc"] == pytest.approx(0.85) and told.user_attrs["epochs_run"] == 3
    assert "train/loss" not in told.user_attrs
    assert summary.adopted == 1 and summary.completed == 1
