"""Sweeps on a real PostgreSQL server and a real MLflow tracking server: several "machines"
(sweep processes with their own hostnames) on one study, a machine killed, servers restarted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from siamese_bench.core.errors import ConfigError
from siamese_bench.sweep.recovery import fail_reason, failure_kind
from siamese_bench.sweep.storage import make_storage

pytestmark = pytest.mark.slow

SPEC = """
    name: {name}
    base: {{dataset: digits, epochs: {epochs}}}
    factors:
      head: [euclidean, abs-diff-dense]
    seeds: {seeds}
"""
DISTINCT_HOSTS = os.geteuid() == 0 and shutil.which("unshare") is not None


def write_spec(tmp_path: Path, epochs: int, seeds: int) -> tuple[Path, str]:
    name = f"pg-{uuid.uuid4().hex[:8]}"  # the cluster is shared by the session: one study per test
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(SPEC.format(name=name, epochs=epochs, seeds=list(range(seeds)))))
    return path, name


def start_machine(host: str, spec: Path, storage: str, tracking: str, log: Path, *extra: str) -> subprocess.Popen:
    """A sweep process group standing for a machine; its own hostname when we may (UTS namespace)."""
    cmd = [
        sys.executable,
        "-m",
        "siamese_bench",
        "sweep",
        str(spec),
        "--workers",
        "1",
        "--threads",
        "1",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        "--no-progress",
        *extra,
    ]
    if DISTINCT_HOSTS:
        cmd = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
    return subprocess.Popen(
        cmd, cwd=spec.parent, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_all(procs: list[subprocess.Popen], logs: list[Path], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    for proc, log in zip(procs, logs, strict=True):
        try:
            proc.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for p in procs:
                os.killpg(p.pid, signal.SIGKILL)
            pytest.fail(f"sweep did not finish in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        assert proc.returncode == 0, log.read_text()[-3000:]


def trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=make_storage(storage)).get_trials()


def assert_exactly_once(storage: str, tracking: str, name: str, points: int) -> list:
    """Every point COMPLETE once in Optuna, one FINISHED MLflow run per point linked to it,
    nothing left RUNNING, one parent run FINISHED. Returns the trials."""
    ts = trials(storage, name)
    complete = [(t.user_attrs["cell"], t.user_attrs["seed"]) for t in ts if t.state == TrialState.COMPLETE]
    assert len(complete) == points and len(set(complete)) == points
    assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "study"]
    children = [r for r in runs if r.data.tags.get("role") != "study"]
    assert [p.info.status for p in parents] == ["FINISHED"]
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    assert len(finished) == points
    assert {t.user_attrs["mlflow_run_id"] for t in ts if t.state == TrialState.COMPLETE} == finished
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    return ts


def wait_for(storage: str, name: str, state: TrialState, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            if any(t.state == state for t in trials(storage, name)):
                return
        except KeyError:  # the study does not exist yet
            continue
    pytest.fail(f"no {state.name} trial in {timeout:.0f} s:\n" + log.read_text()[-3000:])


def test_two_machines_started_together_train_each_point_once_through_server_restarts(
    pg_cluster, mlflow_server, tmp_path
):
    """Two sweeps with their own hostnames start at once on one study; midway the database
    restarts twice (immediate: connections cut) and the tracking server once."""
    spec, name = write_spec(tmp_path, epochs=15, seeds=4)
    storage, tracking = pg_cluster.url("optuna"), mlflow_server.url
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_machine(h, spec, storage, tracking, log) for h, log in zip(("host-a", "host-b"), logs, strict=True)]
    wait_for(storage, name, TrialState.COMPLETE, logs[0])
    pg_cluster.restart("immediate")
    time.sleep(1)
    mlflow_server.restart()
    pg_cluster.restart("immediate")
    wait_all(procs, logs)
    ts = assert_exactly_once(storage, tracking, name, points=8)
    assert not [t for t in ts if t.state == TrialState.FAIL]  # nothing claimed twice, nothing lost
    if DISTINCT_HOSTS:  # both machines trained: the study was shared, not run by whoever came first
        assert {t.user_attrs["host"] for t in ts} == {"host-a", "host-b"}
    # the password is nowhere a study writes: logs, Optuna attributes, MLflow params and tags
    password = pg_cluster.app_password_file.read_text().strip()
    study = optuna.load_study(study_name=name, storage=make_storage(storage))
    written = [log.read_text() for log in logs] + [repr(study.user_attrs)] + [repr(t.user_attrs) for t in ts]
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    written.append(repr(experiment.tags))
    for run in client.search_runs([experiment.experiment_id]):
        written += [repr(run.data.params), repr(run.data.tags)]
    assert all(password not in text for text in written)
    assert "***" in study.user_attrs["mlflow_tracking_uri"] or "@" not in study.user_attrs["mlflow_tracking_uri"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow's training-runs view
    run = client.get_run(next(iter(t.user_attrs["mlflow_run_id"] for t in ts)))
    assert run.inputs.dataset_inputs[0].dataset.name == "digits"  # the data is an MLflow input


def test_a_dead_machine_is_found_by_its_heartbeats_and_its_point_rerun(pg_cluster, mlflow_server, tmp_path):
    """Two machines each train a point; one is killed (kill -9, every process). The other, up
    and training, finds it by its silence within the grace period plus a check, and re-runs its
    point. The clock starts at the kill with the finder already up: its start-up (tens of
    seconds of imports on a loaded 2-core host) is not what is measured. A point trains for
    about 30 s here, longer than the start-ups' difference plus the grace period."""
    spec, name = write_spec(tmp_path, epochs=80, seeds=1)
    storage, tracking = pg_cluster.url("optuna"), mlflow_server.url
    beats = ["--heartbeat", "1", "--grace", "4"]
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    machine_a = start_machine("host-a", spec, storage, tracking, log_a, *beats)
    machine_b = start_machine("host-b", spec, storage, tracking, log_b, *beats)
    deadline, training = time.time() + 180, {}
    while time.time() < deadline:  # both machines train a point, each linked to its MLflow run
        time.sleep(0.5)
        for proc, log in ((machine_a, log_a), (machine_b, log_b)):
            if proc.poll() is not None:
                pytest.fail(f"a machine ended before both trained:\n{log.read_text()[-3000:]}")
        try:
            ts = trials(storage, name)
        except KeyError:  # the study does not exist yet
            continue
        training = {
            t.user_attrs.get("pid"): t.number
            for t in ts
            if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
        }
        if machine_a.pid in training and machine_b.pid in training:
            break
    else:
        pytest.fail(f"the two machines never trained at once: {training}\n" + log_a.read_text()[-3000:])
    os.killpg(machine_a.pid, signal.SIGKILL)
    machine_a.wait()
    killed_at = time.time()
    wait_all([machine_b], [log_b])
    ts = assert_exactly_once(storage, tracking, name, points=2)
    lost = [t for t in ts if t.state == TrialState.FAIL]
    assert [t.number for t in lost] == [training[machine_a.pid]] and failure_kind(lost[0]) == "lost"
    assert lost[0].datetime_complete.timestamp() - killed_at < 4 + 20  # grace, then a check each heartbeat
    own = next(t for t in ts if t.number == training[machine_b.pid])  # found by the checks made while it trains,
    assert lost[0].datetime_complete < own.datetime_complete  # not only when it next claims a point
    if DISTINCT_HOSTS:  # found from the other machine, by its silence
        assert "no heartbeat" in fail_reason(lost[0])
    client = MlflowClient(tracking)
    run = client.get_run(lost[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"
    if DISTINCT_HOSTS:  # Optuna's fail_stale_trials records no reason on the trial: its run says why
        assert "lost: no heartbeat from host-a" in run.data.tags["fail_reason"]


def test_a_machine_started_while_both_servers_are_down_waits_for_them_and_trains(pg_cluster, mlflow_server, tmp_path):
    """A machine (re)started while the servers restart (the soak's case): it says at once that the
    tracking server does not answer, waits (--outage, at most 60 s at start-up) and joins the study
    when both are back; a wrong address is still one line, after that wait."""
    spec, name = write_spec(tmp_path, epochs=1, seeds=1)
    storage, tracking, log = pg_cluster.url("optuna"), mlflow_server.url, tmp_path / "late.log"
    mlflow_server.stop()
    pg_cluster.stop()
    try:
        machine = start_machine("host-late", spec, storage, tracking, log)
        deadline = time.time() + 90
        while "does not answer" not in log.read_text() and machine.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert machine.poll() is None and "does not answer" in log.read_text(), log.read_text()[-3000:]
    finally:
        pg_cluster.up()
        mlflow_server.up()
    wait_all([machine], [log])
    assert_exactly_once(storage, tracking, name, points=2)
    assert log.read_text().count("does not answer") == 1


def test_a_storage_server_that_comes_back_within_the_patience_is_waited_for(pg_cluster):
    url = pg_cluster.url("optuna")
    pg_cluster.stop()
    back = threading.Timer(3, pg_cluster.up)  # the server is back 3 s after the sweep began to connect
    try:
        with pytest.raises(ConfigError, match="not reachable"):
            make_storage(url)  # no patience (the library's default): one line at once
        back.start()
        started = time.monotonic()
        storage = make_storage(url, patience=60)
        assert time.monotonic() - started > 2.5
        assert isinstance(storage.get_all_studies(), list)
    finally:
        back.cancel()
        if back.ident is not None:
            back.join()
        pg_cluster.up()


def test_bad_storage_urls_are_one_line_with_the_password_masked(pg_cluster):
    good = pg_cluster.url("optuna")
    password = pg_cluster.app_password_file.read_text().strip()
    cases = {
        good.replace(password, "wrong-secret"): "wrong user or password",
        good.rsplit("/", 1)[0] + "/no_such_db": "database does not exist",
        good.replace(f":{pg_cluster.port}/", ":1/"): "not reachable",
    }
    for url, hint in cases.items():
        with pytest.raises(ConfigError) as err:
            make_storage(url)
        message = str(err.value)
        assert hint in message and "\n" not in message
        assert password not in message and "wrong-secret" not in message and "***" in message


def test_cli_reports_an_unreachable_database_in_one_line(tmp_path, mlruns):
    spec, _ = write_spec(tmp_path, epochs=1, seeds=1)
    url = "postgresql+psycopg2://siamese:hunter2@127.0.0.1:1/x"  # nothing listens on port 1
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "siamese_bench",
            "sweep",
            str(spec),
            "--storage",
            url,
            "--tracking-uri",
            mlruns,
            "--outage",
            "2",  # how long a start-up waits for a server that does not answer (at most 60 s)
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("siamese-bench: error:")]
    assert len(errors) == 1 and "not reachable" in errors[0] and "siamese:***@" in errors[0]
    waits = [line for line in out.stderr.splitlines() if "does not answer" in line]
    assert len(waits) == 1 and "waiting up to 2 s" in waits[0] and "siamese:***@" in waits[0]
    assert "hunter2" not in out.stderr + out.stdout
