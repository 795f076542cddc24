"""Backups of the services: `backup` writes one timestamped archive, `restore` rebuilds the services from it.

An archive (`siamese-bench-services-YYYYmmddTHHMMSSZ.tar.gz`, 0600) holds:
- `optuna.dump`, `mlflow.dump`: pg_dump (custom format) of both databases, taken by the superuser over the same
  connection rules as everything else (TLS when on); `mlflow` also holds MLflow's accounts;
- `artifacts/`: the MLflow server's artifact folder, copied after the dumps, so every run the dump shows finished
  has its files;
- `secrets/`: the roles' and MLflow accounts' passwords, Flask's secret key and the TLS CA and certificate, so a
  restored server keeps the credentials its clients (and machines that joined) hold. Not the superuser's password:
  it never leaves this machine. Keep archives as private as `.services/`.
A dump is consistent within each database (pg_dump's snapshot); taken while a study runs, the points in flight are
simply not finished in it, and the resumed sweep runs them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from siamese_bench.infra.services.common import PROG, ServiceError
from siamese_bench.infra.services.process import run
from siamese_bench.infra.services.secrets import write_private
from siamese_bench.infra.services.stack import Services

FORMAT = "siamese-bench services backup"
SECRETS = (
    "app.password",
    "pg-mlflow.password",
    "mlflow-admin.password",
    "mlflow-app.password",
    "mlflow-flask.secret",
    "tls/ca.crt",
    "tls/ca.key",
    "tls/server.crt",
    "tls/server.key",
)
USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema');\n"


def backup(services: Services, out_dir: Path | None = None) -> Path:
    """Dump both databases, then copy the artifacts and the secrets, into one new archive; return its path."""
    pg = services.pg
    if not pg.status().running:
        raise ServiceError(
            f"PostgreSQL is not running in {services.services_dir}: start it with `{PROG} up` to take a backup"
        )
    now = dt.datetime.now(dt.UTC)
    out_dir = Path(out_dir or services.services_dir / "backups").absolute()
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    archive = out_dir / f"siamese-bench-services-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    n = 1
    while archive.exists():
        n += 1
        archive = out_dir / f"siamese-bench-services-{now:%Y%m%dT%H%M%SZ}-{n}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="siamese-bench-backup-") as tmp:
        for db in pg.databases:  # optuna first: a trial it shows finished has its MLflow run finished in the later dump
            run(
                [pg._bin("pg_dump"), "--format=custom", "-f", str(Path(tmp) / f"{db}.dump"), *pg.client_args(db)],
                f"pg_dump {db}",
                env=pg.client_env(),
                timeout=3600,
            )
        artifacts = services.mlflow.artifacts_dir
        files = sorted(p for p in artifacts.rglob("*") if p.is_file()) if artifacts.is_dir() else []
        secrets = [name for name in SECRETS if (services.services_dir / name).is_file()]
        manifest = {
            "format": FORMAT,
            "version": 1,
            "created": now.isoformat(timespec="seconds"),
            "databases": pg.owners,
            "artifact_files": len(files),
            "secrets": secrets,
            "settings": services.settings(),
        }
        partial = archive.with_name(archive.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
            for db in pg.databases:
                tar.add(Path(tmp) / f"{db}.dump", arcname=f"{db}.dump")
            for path in files:
                tar.add(path, arcname=f"artifacts/{path.relative_to(artifacts)}")
            for name in secrets:
                tar.add(services.services_dir / name, arcname=f"secrets/{name}")
        os.replace(partial, archive)
    return archive


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else {}
    except (OSError, KeyError, ValueError, tarfile.TarError) as err:
        raise ServiceError(f"{archive} is not a services backup ({type(err).__name__}: {err})") from None
    if manifest.get("format") != FORMAT:
        raise ServiceError(f"{archive} is not a services backup (no {FORMAT!r} manifest)")
    return manifest


def holds_data(services: Services) -> list[str]:
    """What would be overwritten: databases with tables, an artifact folder with files (the cluster must run)."""
    full = [
        db
        for db in services.pg.databases
        if services.pg.psql(USER_TABLES, db=db, what=f"counting tables of {db}").strip() not in ("", "0")
    ]
    artifacts = services.mlflow.artifacts_dir
    if artifacts.is_dir() and any(p.is_file() for p in artifacts.rglob("*")):
        full.append(str(artifacts))
    return full


def restore(services: Services, archive: Path, force: bool = False) -> Path:
    """Rebuild the services from `archive`: cluster (made if absent), roles, both databases, artifacts, secrets;
    then start MLflow. Refuses to overwrite databases or artifacts that hold data unless `force`."""
    archive = Path(archive).absolute()
    manifest = read_manifest(archive)
    pg = services.pg
    with tempfile.TemporaryDirectory(prefix="siamese-bench-restore-") as tmp, services.lock():
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        pg.up()
        full = holds_data(services)
        if full and not force:  # refused: the services stay as they were
            raise ServiceError(
                f"not restoring over data ({', '.join(full)}): take a backup of it first "
                f"(`{PROG} backup`), then restore with --force"
            )
        services.mlflow.stop()
        for name in manifest["secrets"]:
            target = services.services_dir / name
            target.parent.mkdir(mode=0o700, exist_ok=True)
            write_private(target, (Path(tmp) / "secrets" / name).read_text())
        pg.psql(
            "".join(f"DROP DATABASE IF EXISTS {db} WITH (FORCE);\n" for db in pg.databases),
            what="dropping the databases to restore",
        )
        pg.up()  # the databases again, empty, and the roles with the restored passwords
        for db in pg.databases:
            run(
                [
                    pg._bin("pg_restore"),
                    "--no-owner",
                    "--no-privileges",
                    f"--role={pg.owner(db)}",
                    "--exit-on-error",
                    "--single-transaction",
                    *pg.client_args(db),
                    str(Path(tmp) / f"{db}.dump"),
                ],
                f"pg_restore {db}",
                env=pg.client_env(),
                timeout=3600,
            )
        artifacts = services.mlflow.artifacts_dir
        if artifacts.exists():
            shutil.rmtree(artifacts)
        if (Path(tmp) / "artifacts").is_dir():
            shutil.copytree(Path(tmp) / "artifacts", artifacts)
        else:
            artifacts.mkdir()
        services._up()
    return services.env_file
