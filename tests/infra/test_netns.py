"""The services as another machine sees them: the servers listen on one end of a veth pair (the default set-up for
several machines: TLS and MLflow accounts on), clients run in another network namespace at the other end.

Probed from there: anonymous and wrong-password requests (401), plain http:// (no answer), a foreign Host header,
PostgreSQL without TLS and with the roles that must stay local (refused by pg_hba.conf), `services join` with the
bundle, wrong credentials in a sweep (one line, masked); then a small study and its report run from there through
TLS and accounts, and every file they and the servers wrote is searched for the passwords.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from servers import audit_study, secrets_of, start_services, sweep_command, write_study

from siamese_bench.infra.services import Services
from siamese_bench.infra.services.backup import backup
from siamese_bench.infra.services.bundle import write_bundle

pytestmark = pytest.mark.slow
PROBE = Path(__file__).with_name("netns_probe.py")
STUDY = "netns-study"
WRONG = "Wrong-Password-77"


@pytest.fixture(scope="module")
def netns():
    """(namespace, the servers' address): a namespace joined to this one by a veth pair on a /30 of its own."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("`ip` not found: apt-get install iproute2")
    tag = os.getpid() % 100000
    ns, host_if, ns_if = f"sbsec{tag}", f"sbsec{tag}h", f"sbsec{tag}n"
    net = f"10.232.{os.getpid() % 250}"
    steps = (
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", ns],
        ["ip", "addr", "add", f"{net}.1/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/30", "dev", ns_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
    )
    try:
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.skip(f"cannot make a network namespace here ({' '.join(step[:3])}: {proc.stderr.strip()})")
        yield ns, f"{net}.1"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="module")
def services(netns, tmp_path_factory):
    yield from start_services(tmp_path_factory, host=netns[1])  # defaults beyond loopback: TLS and accounts


@pytest.fixture(scope="module")
def worker(netns, services: Services, tmp_path_factory) -> Path:
    """The other machine's folder, made by `services join` run inside the namespace."""
    bundle = write_bundle(services, tmp_path_factory.mktemp("bundle") / "bundle.json")
    folder = tmp_path_factory.mktemp("worker")
    proc = in_netns(
        netns[0],
        [sys.executable, "-m", "siamese_bench", "services", "join", str(bundle), "--dir", str(folder / ".services")],
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr
    assert "logged in as siamese" in proc.stdout and f"@{netns[1]}:" in proc.stdout
    return folder


def in_netns(ns: str, cmd: list[str], env_file: Path | None = None, timeout: float = 600, **kwargs):
    """`cmd` inside the namespace; with `env_file`, after sourcing it (as a user on that machine would)."""
    if env_file is not None:
        cmd = ["bash", "-c", f'source "{env_file}" && exec "$@"', "bash", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SIAMESE_BENCH_STORAGE"))}
    env.update(kwargs.pop("env", {}))
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


def test_what_another_machine_is_refused(netns, services: Services) -> None:
    ns, address = netns
    env = {
        "SB_HOST": address,
        "SB_PG_PORT": str(services.pg_port),
        "SB_MLFLOW_PORT": str(services.mlflow_port),
        "SB_CA": str(services.certs.ca_cert),
        "SB_SECRETS": str(services.services_dir),
    }
    proc = in_netns(ns, [sys.executable, str(PROBE)], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    print(json.dumps(got, indent=1))
    assert got["mlflow anonymous create"] == got["mlflow anonymous search"] == "401"
    assert got["mlflow wrong password"] == "401" and got["mlflow app account"] == "200"
    assert got["mlflow app account, foreign Host header"] in ("400", "403")
    assert got["mlflow plain http"].startswith("ConnectionError") and "closed connection" in got["mlflow plain http"]
    assert got["mlflow https without the CA"].startswith("SSLError")
    client = address[:-1] + "2"
    assert got["pg app sslmode=disable"] == (
        f'refused: FATAL: no pg_hba.conf entry for host "{client}", user "siamese", database "optuna", no encryption'
    )
    assert got["pg app sslmode=require, wrong password"].startswith("refused: FATAL: password authentication failed")
    assert got["pg app verify-full"] == f"connected ssl=True from={client}"
    assert got["pg app to database mlflow"].startswith('refused: FATAL: permission denied for database "mlflow"')
    for local_only in ("pg role mlflow verify-full", "pg superuser verify-full"):
        assert got[local_only].startswith(f'refused: FATAL: no pg_hba.conf entry for host "{client}"'), local_only


def test_wrong_credentials_stop_a_sweep_in_one_masked_line(netns, worker: Path, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "never-runs", epochs=1, seeds=[0])
    env_file = worker / ".services" / "env"
    storage = next(line for line in env_file.read_text().splitlines() if "SIAMESE_BENCH_STORAGE" in line)
    real = storage.split("siamese:", 1)[1].split("@", 1)[0]
    for variable, value in (
        ("MLFLOW_TRACKING_PASSWORD", WRONG),
        ("SIAMESE_BENCH_STORAGE", storage.split("=", 1)[1].strip("'").replace(real, WRONG)),
    ):
        cmd = [
            "bash",
            "-c",
            f'export {variable}="$0" && exec "$@"',
            value,
            sys.executable,
            "-m",
            "siamese_bench",
            "sweep",
            str(spec),
            "--no-progress",
        ]
        proc = in_netns(netns[0], cmd, env_file=env_file, cwd=tmp_path, timeout=300)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("siamese-bench: error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
        assert WRONG not in proc.stderr + proc.stdout and real not in proc.stderr + proc.stdout
        expected = "refused the credentials" if variable.startswith("MLFLOW") else "wrong user or password"
        assert expected in errors[0] and "://" in errors[0], errors[0]
        print(errors[0])


def test_a_study_through_tls_and_accounts_leaves_no_password_anywhere(
    netns, services: Services, worker: Path, tmp_path: Path, monkeypatch
) -> None:
    ns, _ = netns
    env_file = worker / ".services" / "env"
    study_dir = worker / "study"
    study_dir.mkdir()
    spec = write_study(study_dir, STUDY, epochs=1, seeds=[0, 1])
    sweep = in_netns(
        ns,
        sweep_command(spec),
        env_file=env_file,
        cwd=study_dir,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = in_netns(
        ns,
        [sys.executable, "-m", "siamese_bench", "report", STUDY, "--out", str(study_dir / "reports")],
        env_file=env_file,
        cwd=study_dir,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    (study_dir / "sweep.log").write_text(sweep.stdout + sweep.stderr)
    (study_dir / "report.log").write_text(report.stdout + report.stderr)

    for key, value in services.client_env().items():  # the audit reads as the app account, from this side
        monkeypatch.setenv(key, value)
    audit = audit_study(os.environ["SIAMESE_BENCH_STORAGE"], os.environ["MLFLOW_TRACKING_URI"], STUDY, points=4)
    assert {t.user_attrs["host"] for t in audit["trials"]}  # ran, recorded by whom
    dumps = plain_dumps(services, tmp_path)

    secrets = secrets_of(services)
    secrets["basic-auth header"] = base64.b64encode(f"siamese:{secrets['mlflow-app.password']}".encode()).decode()
    by_design = {"env", "bundle.json", "mlflow-auth.ini", "services.json", *secrets}  # the secret holders themselves
    written = [
        p
        for root in (study_dir, worker / ".services", services.services_dir, services.pg.data, dumps)
        for p in root.rglob("*")
        if p.is_file() and p.name not in by_design and "backups" not in p.parts and p.parent.name != "tls"
    ]
    assert {p.suffix for p in written} >= {".npz", ".pt", ".log", ".sql"}  # artifacts, logs, dumps searched

    def contents(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:  # PostgreSQL removes some files of its own as it runs (pg_internal.init)
            return b""

    found = [(str(p), name) for p in written for name, value in secrets.items() if value.encode() in contents(p)]
    assert found == []
    print(
        f"searched {len(written)} files ({sum(len(contents(p)) for p in written) // 1024} KiB) for "
        f"{len(secrets)} secrets: none found"
    )


def plain_dumps(services: Services, tmp_path: Path) -> Path:
    """Both databases as SQL text (from a services backup), to search like any other file."""
    archive = backup(services, tmp_path / "backups")
    folder = tmp_path / "dumps"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, members=[m for m in tar.getmembers() if m.name.endswith(".dump")], filter="data")
    for dump in folder.glob("*.dump"):
        subprocess.run([services.pg._bin("pg_restore"), "-f", str(dump.with_suffix(".sql")), str(dump)], check=True)
        dump.unlink()
    return folder
