"""Real servers for tests: a throwaway PostgreSQL cluster on a free port, an MLflow server on it, or both as
`services up` starts them; and small studies on them, audited."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from siamese_bench.infra.services import MlflowServer, PostgresCluster, ServiceError, Services, find_pg_bin

NO_PG = "PostgreSQL server binaries not installed (Debian package postgresql)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_installed() -> bool:
    try:
        find_pg_bin()
    except ServiceError:
        return False
    return True


def start_throwaway_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A started cluster on a free port, stopped and deleted afterwards (`yield from` it in a fixture).

    As root the pytest temp folder (/tmp/pytest-of-root, mode 0700) is closed to `postgres`, so the data goes to
    the module's fallback under the system temp dir: the fallback is exercised, not bypassed.
    """
    if not pg_installed():
        pytest.skip(NO_PG)
    notes: list[str] = []
    cluster = PostgresCluster(tmp_path_factory.mktemp("services"), port=free_port(), say=notes.append)
    cluster.destroy()  # same fallback path as a crashed earlier session's: start clean
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.destroy()


def start_mlflow_server(cluster: PostgresCluster) -> Iterator[MlflowServer]:
    """An MLflow server on the cluster's mlflow database, artifacts served over HTTP."""
    server = MlflowServer(cluster.services_dir, port=free_port(), backend_store_uri=cluster.url("mlflow"))
    try:
        server.up()
        yield server
    finally:
        server.stop()


def start_services(tmp_path_factory: pytest.TempPathFactory, **settings) -> Iterator[Services]:
    """Both servers as `siamese-bench services up` starts them (Services: certificates, accounts, env file) on free
    ports in a temp folder; stopped and the cluster deleted afterwards (`yield from` it in a fixture)."""
    if not pg_installed():
        pytest.skip(NO_PG)
    services = Services(
        tmp_path_factory.mktemp("services"),
        pg_port=free_port(),
        mlflow_port=free_port(),
        say=lambda _: None,
        **settings,
    )
    services.pg.destroy()  # same fallback path as a crashed earlier session's: start clean
    try:
        services.up()
        yield services
    finally:
        services.down()
        services.pg.destroy()


def secrets_of(services: Services) -> dict[str, str]:
    """Every secret the services hold, by file name: what must never show up where a study writes."""
    names = (
        "app.password",
        "pg-mlflow.password",
        "pg-superuser.password",
        "mlflow-admin.password",
        "mlflow-app.password",
        "mlflow-flask.secret",
    )
    return {n: (services.services_dir / n).read_text().strip() for n in names if (services.services_dir / n).exists()}


STUDY_SPEC = """
name: {name}
base: {{dataset: digits, epochs: {epochs}}}
factors:
  head: [euclidean, abs-diff-dense]
seeds: {seeds}
"""
ARTIFACTS = {"outputs/model.pt", "outputs/distances.npz", "outputs/embeddings.npz"}


def write_study(folder: Path, name: str, epochs: int, seeds: list[int]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(STUDY_SPEC.format(name=name, epochs=epochs, seeds=seeds)))
    return path


def sweep_command(spec: Path, *extra: str) -> list[str]:
    """A sweep that takes its storage and tracking server from the environment, as a sourced env file sets them."""
    return [
        sys.executable,
        "-m",
        "siamese_bench",
        "sweep",
        str(spec),
        "--workers",
        "1",
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]


def trial_states(storage: str, study: str) -> dict[str, int]:
    """How many trials of `study` are in each state, read straight from Optuna's tables (fast enough to poll)."""
    import psycopg2

    with (
        closing(
            psycopg2.connect(storage.replace("postgresql+psycopg2://", "postgresql://", 1), connect_timeout=5)
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT to_regclass('trials') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            "SELECT t.state::text, count(*) FROM trials t JOIN studies s USING (study_id) "
            "WHERE s.study_name = %s GROUP BY t.state",
            (study,),
        )
        return dict(cur.fetchall())


def audit_study(storage: str, tracking: str, study: str, points: int) -> dict:
    """Every cell x seed COMPLETE exactly once in Optuna; each COMPLETE trial's MLflow run FINISHED with its
    artifacts; no other child run FINISHED, none RUNNING. Credentials come from the environment. Returns the
    trials and runs for further checks."""
    import optuna
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    from siamese_bench.sweep.storage import make_storage

    trials = optuna.load_study(study_name=study, storage=make_storage(storage)).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points_done = [(t.user_attrs["cell"], t.user_attrs["seed"]) for t in complete]
    assert len(points_done) == points and len(set(points_done)) == points, points_done
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name(study).experiment_id])
    children = [r for r in runs if r.data.tags.get("role") != "study"]
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    assert finished == {t.user_attrs["mlflow_run_id"] for t in complete}
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for run_id in finished:
        listed = {f.path for f in client.list_artifacts(run_id, "outputs")}
        assert ARTIFACTS <= listed, (run_id, listed)
    return {"trials": trials, "runs": runs, "finished": finished}


def wait_for(condition, what: str, log: Path, timeout: float = 300):
    """Poll `condition` until it returns something true (returned), or fail the test with the end of `log`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
