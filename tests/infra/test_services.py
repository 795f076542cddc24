"""infra.services and `siamese-bench services` against real servers: a throwaway PostgreSQL cluster on a free port
and an MLflow server on it."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest
from servers import NO_PG, free_port, pg_installed

from siamese_bench.cli import main as cli_main
from siamese_bench.core.errors import UserError
from siamese_bench.core.redact import mask_url
from siamese_bench.infra.services import MlflowServer, PostgresCluster, ServiceError, postgres


def main(argv: list[str]) -> int:
    """`siamese-bench services ARGV...` in this process."""
    return cli_main(["services", *argv])


@pytest.fixture(scope="module")
def pg(pg_cluster: PostgresCluster) -> PostgresCluster:
    return pg_cluster


def connect(url: str):
    import psycopg2

    return closing(psycopg2.connect(url, connect_timeout=5))


def query(url: str, sql: str) -> tuple:
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


@pytest.mark.slow
def test_each_database_is_owned_by_its_own_role_with_no_other_privilege(pg: PostgresCluster) -> None:
    """optuna belongs to the app role (the one every sweep machine holds), mlflow to the MLflow server's role;
    neither may create roles or databases, and neither may log in to the other's database."""
    for db, owner in (("optuna", "siamese"), ("mlflow", "mlflow")):
        url = pg.url(db, driver=None)
        user, current_db, db_owner, flags = query(
            url,
            "SELECT current_user, current_database(), pg_get_userbyid(d.datdba), "
            "ARRAY[r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls] "
            "FROM pg_database d, pg_roles r WHERE d.datname = current_database() AND r.rolname = current_user",
        )
        assert (user, current_db, db_owner) == (owner, db, owner)
        assert flags == [False] * 5
        with connect(url) as conn, conn.cursor() as cur:  # Optuna and MLflow create their own tables
            cur.execute("CREATE TABLE IF NOT EXISTS probe (x int)")
            conn.commit()
    import psycopg2

    app, server = pg.url("optuna", driver=None), pg.url("mlflow", driver=None)
    for db in ("mlflow", "postgres", "template1"):  # PUBLIC may connect to none of them
        with pytest.raises(psycopg2.OperationalError, match=f'permission denied for database "{db}"'):
            query(app.rsplit("/", 1)[0] + f"/{db}", "SELECT 1")
    with pytest.raises(psycopg2.OperationalError, match="no pg_hba.conf entry"):  # mlflow: its own database only
        query(server.rsplit("/", 1)[0] + "/optuna", "SELECT 1")
    for statement in ("CREATE DATABASE probe_db", "CREATE ROLE probe_role"):
        with connect(app) as conn, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            conn.autocommit = True
            conn.cursor().execute(statement)


@pytest.mark.slow
def test_up_and_down_are_idempotent(pg: PostgresCluster) -> None:
    pid = pg.status().pid
    pg.up()
    assert pg.status().pid == pid
    pg.stop()
    pg.stop()
    assert not pg.status().running
    pg.up()
    assert pg.status().running
    assert query(pg.url("optuna", driver=None), "SELECT 1") == (1,)


@pytest.mark.slow
def test_wrong_password_is_refused(pg: PostgresCluster) -> None:
    import psycopg2

    wrong = f"postgresql://siamese:not-the-password@127.0.0.1:{pg.port}/optuna"
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        query(wrong, "SELECT 1")


@pytest.mark.slow
def test_immediate_restart_then_new_connections_work(pg: PostgresCluster) -> None:
    pid = pg.status().pid
    pg.restart("immediate")
    assert pg.status().pid not in (None, pid)
    assert query(pg.url("mlflow", driver=None), "SELECT 1") == (1,)


@pytest.mark.slow
def test_data_falls_back_to_temp_dir_when_postgres_cannot_enter(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not pg_installed():
        pytest.skip("only root hands the cluster to the postgres user")
    tmp_path.chmod(0o700)
    notes: list[str] = []
    cluster = PostgresCluster(tmp_path / "svc", say=notes.append)
    assert cluster.data == postgres._fallback_dir(tmp_path / "svc")
    assert len(notes) == 1 and str(cluster.data) in notes[0]


def mlflow_group_cmdlines(pid: int) -> list[str]:
    return [" ".join(p.cmdline()) for p in psutil.process_iter() if _same_group(p.pid, pid)]


def _same_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except ProcessLookupError:
        return False


def mlflow_round_trip(url: str, tmp_path: Path) -> str:
    """Experiment, run and an artifact uploaded and downloaded over HTTP (--serve-artifacts); returns the text."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment(f"services-test-{time.time_ns()}")
    run = client.create_run(experiment_id)
    sent = tmp_path / "hello.txt"
    sent.write_text("siamese")
    client.log_artifact(run.info.run_id, str(sent))
    client.set_terminated(run.info.run_id)
    got = client.download_artifacts(run.info.run_id, "hello.txt", str(tmp_path / "download"))
    return Path(got).read_text()


@pytest.mark.slow
def test_cli_up_status_down_with_mlflow(pg: PostgresCluster, tmp_path: Path, capsys) -> None:
    args = ["--dir", str(pg.services_dir), "--pg-port", str(pg.port), "--mlflow-port", str(free_port())]
    password = pg.app_password_file.read_text().strip()
    mlflow = MlflowServer(pg.services_dir, port=int(args[-1]))
    try:
        assert main(["up", *args]) == 0
        out = capsys.readouterr().out
        assert password not in out and out.count("://") == 2 and "siamese:***@" in out
        assert f"source {pg.services_dir / 'env'}" in out
        env_file = pg.services_dir / "env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert password in env_file.read_text() and f"MLFLOW_TRACKING_URI={mlflow.url}" in env_file.read_text()
        assert env_file.read_text().startswith("# written by `siamese-bench services up`;")

        pid = mlflow.status().pid
        assert pid and not any(password in cmd for cmd in mlflow_group_cmdlines(pid))
        assert mlflow_round_trip(mlflow.url, tmp_path) == "siamese"
        assert list((pg.services_dir / "mlartifacts").rglob("hello.txt"))  # stored by the server, not the client
        assert password not in mlflow.log_file.read_text() and password not in pg.log_file.read_text()

        assert main(["up", *args]) == 0 and mlflow.status().pid == pid  # already up: nothing restarted
        capsys.readouterr()
        assert main(["status", *args]) == 0
        out = capsys.readouterr().out
        assert out.count("running") == 2 and password not in out and "***" in out
        assert main(["env", *args]) == 0 and capsys.readouterr().out.strip() == str(env_file)

        assert main(["down", *args]) == 0 and main(["down", *args]) == 0
        assert not mlflow.status().running and not pg.status().running
        assert not mlflow_group_cmdlines(pid)
    finally:
        mlflow.stop()
        pg.up()  # the module's cluster stays usable for whatever runs next


@pytest.mark.slow
def test_pg_port_in_use_names_port_and_option(tmp_path: Path) -> None:
    if not pg_installed():
        pytest.skip(NO_PG)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServiceError, match=rf"port {port} .*--pg-port"):
            PostgresCluster(tmp_path / "svc", port=port, say=lambda _: None).up()


def test_mlflow_port_in_use_names_port_and_option(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = MlflowServer(tmp_path, port=port, backend_store_uri="postgresql+psycopg2://u:p@127.0.0.1:1/mlflow")
        with pytest.raises(ServiceError, match=rf"port {port} .*--mlflow-port"):
            server.up()


def test_missing_binaries_is_one_line_naming_the_package(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SIAMESE_BENCH_PG_BIN", str(tmp_path / "empty"))
    assert main(["up", "--dir", str(tmp_path / "svc"), "--pg-port", str(free_port())]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siamese-bench: error: ")
    assert "Debian package postgresql" in lines[0] and "apt-get install postgresql" in lines[0]


def test_down_and_status_when_nothing_was_ever_started(tmp_path: Path, capsys) -> None:
    args = ["--dir", str(tmp_path / "never"), "--pg-port", str(free_port()), "--mlflow-port", str(free_port())]
    assert main(["down", *args]) == 0
    assert main(["status", *args]) == 0
    assert capsys.readouterr().out.count("stopped") == 2


def test_status_on_an_empty_dir_says_stopped_and_loads_no_torch(tmp_path: Path) -> None:
    """A fresh process, as a user's shell runs it: `services` must not pay for torch."""
    argv = [
        "services",
        "status",
        "--dir",
        str(tmp_path / "empty"),
        "--pg-port",
        str(free_port()),
        "--mlflow-port",
        str(free_port()),
    ]
    code = f"import sys; from siamese_bench.cli import main; code = main({argv!r}); print(code, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *lines, security, last = proc.stdout.strip().splitlines()
    assert [ln.split()[:2] for ln in lines] == [["postgresql:", "stopped"], ["mlflow:", "stopped"]]
    assert security == "security:   listening on 127.0.0.1; no TLS; MLflow open to anyone who reaches it"
    assert last == "0 False"  # exit status 0, no torch


def test_service_error_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert issubclass(ServiceError, UserError) and issubclass(ServiceError, RuntimeError)  # callers may catch either
    assert main(["env", "--dir", str(tmp_path / "svc")]) == 2  # `env` before `up`
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siamese-bench: error: no ")
    assert "run `siamese-bench services up` first" in lines[0]


def test_mask_hides_only_the_password() -> None:
    mask = mask_url
    assert mask("postgresql+psycopg2://siamese:s3-cr_et@127.0.0.1:55432/optuna") == (
        "postgresql+psycopg2://siamese:***@127.0.0.1:55432/optuna"
    )
    assert mask("http://127.0.0.1:5055") == "http://127.0.0.1:5055"
    assert mask("postgresql://siamese@host/db") == "postgresql://siamese@host/db"
