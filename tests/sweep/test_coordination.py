"""The pieces that let sweeps share a study: failure kinds, point states, the recovery of dead
sweeps' trials, and the study lock. Fast: no training, no servers."""

from __future__ import annotations

import multiprocessing as mp
import time

import optuna
import pytest
from optuna.trial import TrialState

from siamese_bench.core.config import ConfigError
from siamese_bench.core.store import STUDY_CELLS
from siamese_bench.infra.tracking import Tracker
from siamese_bench.sweep.claims import MAX_ERROR_ATTEMPTS, describe_points, point_states
from siamese_bench.sweep.locks import study_lock
from siamese_bench.sweep.optuna_api import trial_id
from siamese_bench.sweep.recovery import fail_dead_trials, failure_kind, owner_attrs
from siamese_bench.sweep.runner import Sweep
from siamese_bench.sweep.spec import load_spec
from siamese_bench.sweep.storage import Heartbeats, make_storage


def test_heartbeats_need_a_grace_longer_than_the_interval():
    with pytest.raises(ConfigError, match="grace > interval"):
        Heartbeats(interval=10, grace=10)


def make_trial(study: optuna.Study, state: TrialState, **attrs) -> None:
    trial = study.ask()
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    if state != TrialState.RUNNING:
        study.tell(
            trial, 0.5 if state == TrialState.COMPLETE else None, state=None if state == TrialState.COMPLETE else state
        )


@pytest.fixture
def two_cell_sweep(tmp_path, mlruns) -> Sweep:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: states\nbase: {dataset: digits}\nfactors: {head: [euclidean, abs-diff-dense]}\nseeds: [0, 1, 2]\n"
    )
    return Sweep(load_spec(spec), str(tmp_path / "optuna.journal"), Tracker(mlruns), 1, progress=False)


def test_point_states_follow_the_failure_kinds(two_cell_sweep):
    sweep = two_cell_sweep
    study = sweep.grid_study()
    e, a = "head=euclidean", "head=abs-diff-dense"
    make_trial(study, TrialState.FAIL, cell=e, seed=0, failure="lost")  # a dead machine: re-run
    make_trial(study, TrialState.COMPLETE, cell=e, seed=0)
    make_trial(study, TrialState.FAIL, cell=e, seed=1, failure="diverged")  # the method failed: settled
    for _ in range(MAX_ERROR_ATTEMPTS):  # training raised every time: given up
        make_trial(study, TrialState.FAIL, cell=e, seed=2, failure="error")
    make_trial(study, TrialState.FAIL, cell=a, seed=0, failure="error")  # one error: tried again
    make_trial(study, TrialState.RUNNING, cell=a, seed=1, **owner_attrs())
    make_trial(study, TrialState.FAIL, cell=a, seed=2, fail_reason="DivergedError: loss is nan")  # older trials
    states = point_states(study, sweep.all_points)
    assert states == {
        (e, 0): "complete",
        (e, 1): "diverged",
        (e, 2): "failed",
        (a, 0): "open",
        (a, 1): "running",
        (a, 2): "diverged",
    }


def test_failure_kind_of_trials_recorded_before_kinds_existed(two_cell_sweep):
    study = two_cell_sweep.grid_study()
    for reason in ("objective is not finite", "sweep process died (killed)", "ValueError: boom"):
        make_trial(study, TrialState.FAIL, fail_reason=reason)
    kinds = [failure_kind(t) for t in study.get_trials()]
    assert kinds == ["diverged", "lost", "error"]


def test_own_abandoned_trial_is_stale_but_not_a_trial_in_flight(two_cell_sweep):
    study = two_cell_sweep.grid_study()
    make_trial(study, TrialState.RUNNING, cell="head=euclidean", seed=0, **owner_attrs())
    make_trial(study, TrialState.RUNNING, cell="head=euclidean", seed=1, **owner_attrs())
    trials = study.get_trials()
    in_flight = {trial_id(trials[1])}
    stale, _ = fail_dead_trials(study, mine=in_flight)
    assert [t.number for t in stale] == [trials[0].number]  # ours, claimed, but not running here
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {trials[0].number: TrialState.FAIL, trials[1].number: TrialState.RUNNING}


def _hold_lock(path: str, name: str, hold: float, started, out) -> None:
    with study_lock(path, name):
        started.set()
        out.put(("in", time.monotonic()))
        time.sleep(hold)
        out.put(("out", time.monotonic()))


@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_study_lock_excludes_another_process(tmp_path):
    ctx = mp.get_context("spawn")
    started, out = ctx.Event(), ctx.Queue()
    path = str(tmp_path / "optuna.journal")
    holder = ctx.Process(target=_hold_lock, args=(path, "s", 1.0, started, out))
    holder.start()
    assert started.wait(30)
    with study_lock(path, "s"):
        entered = time.monotonic()
    holder.join(10)
    events = dict(out.get() for _ in range(2))
    assert entered >= events["out"]  # we got in only after the other process let go
    with study_lock(path, "another study"):  # other studies are not blocked
        pass


@pytest.mark.slow  # separate processes or the full archives: several seconds
def test_a_silent_machines_trial_is_failed_as_lost_but_never_a_live_trial_of_ours(tmp_path, mlruns):
    """RDB storage: Optuna's public fail_stale_trials fails the trial whose heartbeats stopped,
    and records nothing on it; the sweep still sees it as lost (its point re-runs, no error
    attempt is spent), and says why on its MLflow run. Our own trial, silent as long (an outage
    kept the heartbeat thread from writing), is beaten first and stays RUNNING; a trial that
    never recorded a heartbeat is not judged by heartbeats."""
    from siamese_bench.sweep.claims import new_claimed_trial
    from siamese_bench.sweep.parent_run import ParentRun
    from siamese_bench.sweep.recovery import fail_reason
    from siamese_bench.sweep.storage import make_storage

    spec_path = tmp_path / "s.yaml"
    spec_path.write_text("name: silent\nbase: {dataset: digits}\nfactors: {head: [euclidean]}\nseeds: [0, 1, 2]\n")
    spec = load_spec(spec_path)
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", Heartbeats(interval=1, grace=2))
    study = optuna.create_study(study_name="silent", storage=storage, direction="maximize")
    cell = "head=euclidean"
    ours = new_claimed_trial(study, "t0", {"cell": cell, "seed": 0})
    silent = new_claimed_trial(study, "t1", {"cell": cell, "seed": 1, "host": "host-b"})
    never_beaten = new_claimed_trial(study, "t2", {"cell": cell, "seed": 2, "host": "host-b"})
    for trial in (ours, silent):
        storage.record_heartbeat(trial_id(trial))
    tracker = Tracker(mlruns)
    runs = {
        t.number: tracker.start_run(
            "silent", f"trial {t.number}", {}, {"optuna_study": "silent", "optuna_trial": str(t.number)}
        )
        for t in (ours, silent)
    }
    time.sleep(3.5)  # past the grace period (SQLite's clock counts whole seconds)
    stale, _ = fail_dead_trials(study, mine={trial_id(ours)})
    assert [t.number for t in stale] == [silent.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {
        ours.number: TrialState.RUNNING,
        silent.number: TrialState.FAIL,
        never_beaten.number: TrialState.RUNNING,
    }
    failed = study.get_trials(states=(TrialState.FAIL,))[0]
    assert "failure" not in failed.user_attrs and "fail_reason" not in failed.user_attrs  # Optuna wrote nothing
    assert failure_kind(failed) == "lost"
    assert fail_reason(failed) == "lost: no heartbeat from host-b for its grace period"
    all_points = [(cell, s) for s in (0, 1, 2)]
    assert point_states(study, all_points)[(cell, 1)] == "open"  # claimed again, no error attempt spent
    ParentRun(spec, "sqlite:///x", tracker).close_orphan_runs(study)
    silent_run = tracker.client.get_run(runs[silent.number])
    assert silent_run.info.status == "KILLED"
    assert silent_run.data.tags["fail_reason"] == "lost: no heartbeat from host-b for its grace period"
    assert tracker.client.get_run(runs[ours.number]).info.status == "RUNNING"  # a live trial's run is left alone


def test_a_dead_local_sweeps_trial_is_failed_with_its_reason_and_its_run_closed(tmp_path, two_cell_sweep):
    """Same machine: the owner's PID decides; the reason is on the trial and the run is KILLED."""
    sweep = two_cell_sweep
    study = sweep.grid_study()
    dead = {"host": owner_attrs()["host"], "pid": 2**22 + 17, "pid_start": "1"}  # beyond pid_max: never alive
    make_trial(study, TrialState.RUNNING, cell="head=euclidean", seed=0, claim="x", **dead)
    number = study.get_trials()[0].number
    run = sweep.tracker.start_run("states", "r", {}, {"optuna_study": "states", "optuna_trial": str(number)})
    assert sweep.recover(study) == 1 and sweep.summary.stale == 1
    trial = study.get_trials()[0]
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "lost: its sweep process died"
    assert failure_kind(trial) == "lost"
    tags = sweep.tracker.client.get_run(run).data.tags
    assert sweep.tracker.client.get_run(run).info.status == "KILLED" and tags["fail_reason"] == "lost: sweep died"


def parent_runs(tracker: Tracker, name: str) -> list:
    experiment = tracker.get_experiment(name)
    return tracker.search_runs(experiment, f"tags.role = 'study' and tags.optuna_study = '{name}'")


def test_a_parent_run_created_twice_by_a_repeated_request_is_kept_once(tmp_path, mlruns):
    """MLflow's client repeats a request whose answer a server restart cut off (its retries take
    POST too), so one creation can leave two RUNNING parent runs: the study keeps one."""
    from siamese_bench.sweep.parent_run import ParentRun

    spec_path = tmp_path / "s.yaml"
    spec_path.write_text("name: twice\nbase: {dataset: digits}\nfactors: {head: [euclidean]}\nseeds: [0]\n")
    storage = str(tmp_path / "optuna.journal")
    study = optuna.create_study(study_name="twice", storage=make_storage(storage), direction="maximize")
    tracker = Tracker(mlruns)
    create_run = tracker.client.create_run

    def created_twice(*args, **kwargs):
        create_run(*args, **kwargs)  # done by the server, its answer lost
        return create_run(*args, **kwargs)

    tracker.client.create_run = created_twice
    run_id = ParentRun(load_spec(spec_path), storage, tracker).ensure(study, lambda: True)
    assert study.user_attrs["mlflow_parent_run_id"] == run_id
    assert [r.info.run_id for r in parent_runs(tracker, "twice")] == [run_id]
    assert {
        r.info.lifecycle_stage
        for r in tracker.client.search_runs([tracker.get_experiment("twice").experiment_id], run_view_type=3)
    } == {"active", "deleted"}  # the second is deleted (restorable), not left RUNNING


def test_a_parent_run_left_unrecorded_by_a_killed_sweep_is_adopted(tmp_path, mlruns):
    """A sweep killed between creating the parent run and recording it on the study: the next
    sweep takes that run instead of making a second one."""
    from siamese_bench.sweep.parent_run import ParentRun

    spec_path = tmp_path / "s.yaml"
    spec_path.write_text("name: adopt\nbase: {dataset: digits}\nfactors: {head: [euclidean]}\nseeds: [0]\n")
    spec, storage = load_spec(spec_path), str(tmp_path / "optuna.journal")
    study = optuna.create_study(study_name="adopt", storage=make_storage(storage), direction="maximize")
    tracker = Tracker(mlruns)
    stray = tracker.start_run(  # created, then the sweep died before it logged the cells
        "adopt",
        "study adopt",
        {},
        {"optuna_study": "adopt", "optuna_storage": storage, "role": "study", "spec_fingerprint": spec.fingerprint()},
    )
    assert "mlflow_parent_run_id" not in study.user_attrs
    assert ParentRun(spec, storage, tracker).ensure(study, lambda: True) == stray
    assert study.user_attrs["mlflow_parent_run_id"] == stray
    assert [r.info.run_id for r in parent_runs(tracker, "adopt")] == [stray]
    assert [f.path for f in tracker.client.list_artifacts(stray, "study")] == [STUDY_CELLS]


def test_a_round_is_described_by_its_own_points():
    assert describe_points([("a", s) for s in (3, 4, 5)] + [("b", s) for s in (3, 4, 5)]) == (
        "2 cells x 3 seeds = 6 trials"
    )
    assert describe_points([("a", 0), ("a", 1), ("b", 0)]) == "3 trials over 2 cells (1 to 2 seeds each)"
