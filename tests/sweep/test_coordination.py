"""The pieces that let sweeps share a study: password masking, outage retries, failure kinds,
point states, the study lock, and safe YAML. Fast: no training, no servers."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from siamese_bench.core.config import ConfigError
from siamese_bench.core.redact import mask_url, scrub, url_password
from siamese_bench.infra.retry import Retrier, StorageUnavailable, is_transient
from siamese_bench.infra.tracking import Tracker, TrackingError
from siamese_bench.sweep.runner import MAX_ERROR_ATTEMPTS, Sweep, failure_kind
from siamese_bench.sweep.spec import load_spec
from siamese_bench.sweep.storage import Heartbeats, fail_stale_trials, owner_attrs, study_lock


@pytest.mark.parametrize("url,masked", [
    ("postgresql+psycopg2://siamese:s3cr%40t@db:5432/optuna", "postgresql+psycopg2://siamese:***@db:5432/optuna"),
    ("http://user:pw@mlflow:5000", "http://user:***@mlflow:5000"),
    ("postgresql://u@h/db?password=zz&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("sqlite:////tmp/optuna.db", "sqlite:////tmp/optuna.db"),
    ("/work/optuna.journal", "/work/optuna.journal"),
])
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked


def test_scrub_removes_the_password_in_every_form():
    url = "postgresql://siamese:p%40ss@h/db"
    assert url_password(url) == "p%40ss"
    text = scrub(f"could not log in to {url} with p@ss or p%40ss", url)
    assert "p@ss" not in text and "p%40ss" not in text and "siamese:***@h/db" in text


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors, self.calls = errors, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retrier_rides_out_a_transient_outage():
    retry = Retrier(outage=5, first_pause=0.01)
    flaky = Flaky([ConnectionRefusedError("refused"), RuntimeError("server closed the connection unexpectedly")])
    assert retry(flaky, "test") == "done" and flaky.calls == 3 and retry.retries == 2


def test_retrier_raises_a_permanent_error_at_once():
    retry = Retrier(outage=5, first_pause=0.01)
    flaky = Flaky([RuntimeError('FATAL: password authentication failed for user "siamese"')])
    with pytest.raises(RuntimeError, match="password authentication"):
        retry(flaky, "test")
    assert flaky.calls == 1


def test_retrier_gives_up_after_the_outage_allowance_with_one_line():
    retry = Retrier(outage=0.2, first_pause=0.05, max_pause=0.05)
    with pytest.raises(StorageUnavailable) as err:
        retry(lambda: (_ for _ in ()).throw(ConnectionRefusedError("refused")), "claim a point (postgresql://u:***@h)")
    assert "still unreachable" in str(err.value) and "\n" not in str(err.value)


def test_transient_errors_are_found_through_the_cause_chain():
    try:
        try:
            raise OSError("could not connect to server: Connection refused")
        except OSError as inner:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from inner
    except Exception as outer:  # noqa: BLE001
        assert is_transient(outer)
    assert not is_transient(ValueError("bad value"))
    assert not is_transient(RuntimeError('database "x" does not exist'))


def test_heartbeats_need_a_grace_longer_than_the_interval():
    with pytest.raises(ConfigError, match="grace > interval"):
        Heartbeats(interval=10, grace=10)


def make_trial(study: optuna.Study, state: TrialState, **attrs) -> None:
    trial = study.ask()
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    if state != TrialState.RUNNING:
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None,
                   state=None if state == TrialState.COMPLETE else state)


@pytest.fixture
def two_cell_sweep(tmp_path) -> Sweep:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: states\nbase: {dataset: digits}\nfactors: {head: [euclidean, abs-diff-dense]}\n"
                    "seeds: [0, 1, 2]\n")
    return Sweep(load_spec(spec), str(tmp_path / "optuna.journal"), Tracker(f"sqlite:///{tmp_path}/m.db"), 1,
                 progress=False)


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
    states = sweep._point_states(study)
    assert states == {(e, 0): "complete", (e, 1): "diverged", (e, 2): "failed", (a, 0): "open",
                      (a, 1): "running", (a, 2): "diverged"}


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
    in_flight = {trials[1]._trial_id}
    stale = fail_stale_trials(study, mine=in_flight)
    assert [t.number for t in stale] == [trials[0].number]  # ours, claimed, but not running here
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {trials[0].number: TrialState.FAIL, trials[1].number: TrialState.RUNNING}


def _hold_lock(path: str, name: str, hold: float, started, out) -> None:
    with study_lock(path, name):
        started.set()
        out.put(("in", time.monotonic()))
        time.sleep(hold)
        out.put(("out", time.monotonic()))


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


def test_spec_with_a_python_tag_is_refused_in_one_line(tmp_path):
    spec = tmp_path / "evil.yaml"
    spec.write_text('name: x\nfactors: !!python/object/apply:os.system ["touch pwned"]\nseeds: [0]\n')
    with pytest.raises(ConfigError) as err:
        load_spec(spec)
    message = str(err.value)
    assert str(spec) in message and "line 2" in message and "not allowed" in message and "\n" not in message
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


def test_claims_with_a_python_tag_are_refused(tmp_path):
    from siamese_bench.regress.checks import load_checks

    claims = tmp_path / "claims.yaml"
    claims.write_text("checks: !!python/object/new:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not allowed"):
        load_checks(claims)


def test_unreachable_tracking_server_is_one_line_with_the_password_masked():
    started = time.monotonic()
    with pytest.raises(TrackingError) as err:
        Tracker("http://user:hunter2@127.0.0.1:1")
    assert time.monotonic() - started < 15  # not MLflow's minutes of retries
    assert "hunter2" not in str(err.value) and "user:***@" in str(err.value) and "not reachable" in str(err.value)


def test_system_metrics_are_recorded_with_a_run(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", system_metrics=True)
    tracker.system_metrics_interval = 0.5
    run_id = tracker.start_run("system", "r", {}, {})
    time.sleep(2)
    tracker.end_run(run_id)
    metrics = tracker.client.get_run(run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    plain = Tracker(f"sqlite:///{tmp_path}/m.db")
    other = plain.start_run("system", "r2", {}, {})
    plain.end_run(other)
    assert not plain.client.get_run(other).data.metrics  # off unless asked for


def test_tracking_errors_never_quote_the_password(tmp_path):
    from mlflow.exceptions import MlflowException

    tracker = Tracker(f"sqlite:///{tmp_path}/m.db")
    tracker.uri = "http://user:hunter2@127.0.0.1:5055"  # as if talking to a server with basic auth
    with pytest.raises(TrackingError) as err:
        tracker._call("log metrics", lambda: (_ for _ in ()).throw(
            MlflowException("API request to http://user:hunter2@127.0.0.1:5055/api/2.0 failed")))
    assert "hunter2" not in str(err.value) and "user:***@" in str(err.value)
