"""The services with TLS and MLflow accounts against real servers (on loopback here; tests/infra/test_netns.py
probes them from another network namespace): what is refused, how, and what stays private."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import psutil
import pytest
import requests
from servers import free_port, secrets_of, start_services

from siamese_bench.infra.services import ServiceError, Services
from siamese_bench.infra.services.bundle import join, write_bundle
from siamese_bench.infra.tracking import TrackingError, check_reachable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    yield from start_services(tmp_path_factory, tls=True, auth=True)


def pg_connect(url: str):
    import psycopg2

    return closing(psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1), connect_timeout=5))


def pg_refusal(url: str) -> str:
    import psycopg2

    with pytest.raises(psycopg2.OperationalError) as err:
        pg_connect(url).__enter__()
    return " ".join(str(err.value).split())


def test_every_secret_file_is_private(services: Services) -> None:
    folder = services.services_dir
    private = [
        *(folder / n for n in secrets_of(services)),
        folder / "env",
        folder / "mlflow-auth.ini",
        folder / "services.json",
        *services.certs.folder.iterdir(),
    ]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in private} == {p.name: 0o600 for p in private}
    assert stat.S_IMODE(services.certs.folder.stat().st_mode) == 0o700
    data = services.pg.data
    assert all(stat.S_IMODE((data / n).stat().st_mode) == 0o600 for n in ("server.key", "server.crt", "pg_hba.conf"))


def test_env_file_holds_the_app_account_and_the_ca_never_the_admin(services: Services) -> None:
    text = services.env_file.read_text()
    secrets = secrets_of(services)
    assert secrets["mlflow-app.password"] in text and "MLFLOW_TRACKING_USERNAME=siamese\n" in text
    assert "sslmode=verify-full&sslrootcert=" in text and "MLFLOW_TRACKING_URI=https://" in text
    assert f"MLFLOW_TRACKING_SERVER_CERT_PATH={services.certs.ca_cert}" in text
    for name in ("mlflow-admin.password", "pg-superuser.password", "pg-mlflow.password", "mlflow-flask.secret"):
        assert secrets[name] not in text, name


def test_mlflow_refuses_anonymous_and_wrong_credentials_and_plain_http(services: Services) -> None:
    url, ca = services.mlflow.url, str(services.certs.ca_cert)
    create = url + "/api/2.0/mlflow/experiments/create"
    assert "auth_cache_ttl_seconds = 60\n" in services.mlflow.auth.config_file.read_text()
    search = url + "/api/2.0/mlflow/experiments/search?max_results=1"
    app = ("siamese", secrets_of(services)["mlflow-app.password"])
    assert requests.get(search, auth=app, verify=ca, timeout=10).status_code == 200  # cached now
    assert requests.get(search, auth=("siamese", app[1] + "x"), verify=ca, timeout=10).status_code == 401  # checked
    assert requests.post(create, json={"name": "anonymous"}, verify=ca, timeout=10).status_code == 401
    assert (
        requests.post(
            create, json={"name": "x"}, auth=("siamese", "wrong-password-1"), verify=ca, timeout=10
        ).status_code
        == 401
    )
    with pytest.raises(requests.ConnectionError, match="Remote end closed connection without response"):
        requests.get(url.replace("https://", "http://") + "/health", timeout=10)  # TLS only: no answer in plain text
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(url + "/health", verify=True, timeout=10)  # the system's CAs do not vouch for it


def test_the_app_account_works_but_cannot_manage_accounts(services: Services) -> None:
    url, ca = services.mlflow.url + "/api/2.0/mlflow", str(services.certs.ca_cert)
    app = ("siamese", secrets_of(services)["mlflow-app.password"])
    assert (
        requests.get(
            url + "/experiments/search", params={"max_results": 1}, auth=app, verify=ca, timeout=10
        ).status_code
        == 200
    )
    attempts = (
        ("post", "/users/create", {"username": "evil", "password": "x" * 16}),
        ("patch", "/users/update-admin", {"username": "siamese", "is_admin": True}),
        ("patch", "/users/update-password", {"username": "siamese-admin", "password": "y" * 16}),
    )
    for method, path, body in attempts:
        resp = getattr(requests, method)(url + path, json=body, auth=app, verify=ca, timeout=10)
        assert resp.status_code == 403, (path, resp.status_code)


def test_postgres_refuses_connections_without_tls_and_other_roles_databases(services: Services) -> None:
    app = services.pg.url("optuna")
    plain = app.split("?")[0] + "?sslmode=disable"
    message = pg_refusal(plain)
    assert "no pg_hba.conf entry" in message and "no encryption" in message
    assert 'permission denied for database "mlflow"' in pg_refusal(app.replace("/optuna?", "/mlflow?"))
    no_ca = app.split("?")[0] + f"?sslmode=verify-full&sslrootcert={services.services_dir / 'missing.crt'}"
    assert "root certificate file" in pg_refusal(no_ca)
    with pg_connect(app) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True


def test_tracking_errors_are_one_line_with_the_url_and_password_masked(services: Services, monkeypatch) -> None:
    url = services.mlflow.url
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(services.certs.ca_cert))
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    cases = {
        "without an account": (None, url),
        "MLFLOW_TRACKING_USERNAME=siamese": ("wrong-Password-42", url),
        "wants https://": (None, url.replace("https://", "http://")),
        "not trusted": (None, url.replace("https://", "https://siamese:wrong-Password-42@")),
    }
    for expected, (password, uri) in cases.items():
        if password:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "siamese")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        if expected == "not trusted":
            monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        with pytest.raises(TrackingError) as err:
            check_reachable(uri)
        message = str(err.value)
        assert expected in message and "\n" not in message and "wrong-Password-42" not in message, message
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(key, raising=False)


def test_no_password_on_a_command_line_or_in_a_server_log(services: Services) -> None:
    secrets = secrets_of(services)
    cmdlines = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdlines.append(" ".join(proc.info["cmdline"] or []))
    logs = services.mlflow.log_file.read_text() + services.pg.log_file.read_text()
    assert not [n for n, s in secrets.items() if any(s in c for c in cmdlines) or s in logs]


def test_bundle_and_join_give_another_folder_a_working_client(services: Services, tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="certificate does not name other.example"):
        write_bundle(services, address="other.example")
    bundle = write_bundle(services, tmp_path / "bundle.json", address="localhost")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    text, secrets = bundle.read_text(), secrets_of(services)
    assert secrets["mlflow-app.password"] in text and secrets["app.password"] in text
    private = ("mlflow-admin.password", "pg-superuser.password", "pg-mlflow.password", "mlflow-flask.secret")
    assert not [n for n in private if secrets[n] in text] and "PRIVATE KEY" not in text
    env_file, checks = join(bundle, tmp_path / "worker")
    assert checks[0].endswith("logged in") and checks[1].endswith("logged in as siamese")
    assert "siamese:***@localhost" in checks[0] and not [s for s in secrets.values() if s in "".join(checks)]
    env = env_file.read_text()
    assert "@localhost:" in env and f"sslrootcert={tmp_path / 'worker' / 'tls' / 'ca.crt'}" in env
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_up_again_restarts_nothing_and_a_new_address_renews_the_certificate(services: Services) -> None:
    pg_pid, mlflow_pid = services.pg.status().pid, services.mlflow.status().pid
    ca, cert = services.certs.ca_cert.read_bytes(), services.certs.server_cert.read_bytes()
    Services.from_state(services.services_dir, for_up=True).up()
    assert (services.pg.status().pid, services.mlflow.status().pid) == (pg_pid, mlflow_pid)
    assert services.certs.server_cert.read_bytes() == cert
    renewed = Services.from_state(services.services_dir, for_up=True, addresses=("renewed.example",))
    renewed.up()
    assert "renewed.example" in services.certs.names() and services.certs.ca_cert.read_bytes() == ca
    assert services.pg.status().pid == pg_pid  # PostgreSQL reloads its certificate
    assert services.mlflow.status().pid != mlflow_pid  # uvicorn reads it only at start
    assert json.loads((services.services_dir / "services.json").read_text())["addresses"] == ["renewed.example"]
    with pg_connect(services.pg.url("optuna", address="localhost")) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def test_status_reads_the_recorded_settings(services: Services) -> None:
    argv = ["services", "status", "--dir", str(services.services_dir)]
    proc = subprocess.run([sys.executable, "-m", "siamese_bench", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split()[:2] for ln in lines[:2]] == [["postgresql:", "running"], ["mlflow:", "running"]]
    assert "https://127.0.0.1:" in lines[1] and "not answering" not in lines[1]
    assert "TLS (verify-full" in lines[2] and "MLflow accounts required" in lines[2]
    assert not [s for s in secrets_of(services).values() if s in proc.stdout]


def test_a_cluster_from_before_the_mlflow_role_hands_its_database_over(tmp_path_factory) -> None:
    """Clusters made by earlier versions had siamese own both databases: `up` gives mlflow (and its tables) to
    the mlflow role once, and optuna stays siamese's."""
    from servers import pg_installed

    if not pg_installed():
        pytest.skip("PostgreSQL not installed")
    from siamese_bench.infra.services import PostgresCluster

    cluster = PostgresCluster(tmp_path_factory.mktemp("legacy"), port=free_port(), say=lambda _: None)
    cluster.destroy()
    try:
        cluster.up()
        cluster.psql("ALTER DATABASE mlflow OWNER TO siamese;\n")
        cluster.psql("SET ROLE siamese; CREATE TABLE runs_of_old (x int);\n", db="mlflow")
        cluster.up()
        owners = cluster.psql(
            "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname IN ('optuna', 'mlflow') ORDER BY 1;\n"
        ).split()
        assert owners == ["mlflow=mlflow", "optuna=siamese"]
        assert (
            cluster.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'runs_of_old';\n", db="mlflow").strip()
            == "mlflow"
        )
    finally:
        cluster.destroy()


def test_removing_a_password_file_and_up_rotates_that_password(services: Services) -> None:
    """The documented rotation: delete the app's password files, `up`; the old passwords stop working."""
    url, ca = services.mlflow.url + "/api/2.0/mlflow/experiments/search?max_results=1", str(services.certs.ca_cert)
    old = secrets_of(services)
    old_storage = services.pg.url("optuna")
    # the old password just worked, so MLflow's credential cache (auth.AUTH_CACHE_SECONDS) holds it: rotation must
    # still refuse it at once
    assert requests.get(url, auth=("siamese", old["mlflow-app.password"]), verify=ca, timeout=10).status_code == 200
    for name in ("app.password", "mlflow-app.password"):
        (services.services_dir / name).unlink()
    Services.from_state(services.services_dir, for_up=True).up()
    new = secrets_of(services)
    assert new["app.password"] != old["app.password"] and new["mlflow-app.password"] != old["mlflow-app.password"]
    assert "password authentication failed" in pg_refusal(old_storage)
    with pg_connect(services.pg.url("optuna")) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
    old_auth, new_auth = ("siamese", old["mlflow-app.password"]), ("siamese", new["mlflow-app.password"])
    assert requests.get(url, auth=old_auth, verify=ca, timeout=10).status_code == 401
    assert requests.get(url, auth=new_auth, verify=ca, timeout=10).status_code == 200
    assert new["mlflow-app.password"] in services.env_file.read_text()
