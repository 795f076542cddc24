"""The project's PostgreSQL cluster: made by `up` under `.services/`; the app role `siamese` owns the database
`optuna`, the role `mlflow` (the MLflow server's, this machine only) owns `mlflow`; reachable only with the generated
passwords and, with `tls`, only over TLS (pgaccess.py says who may log in from where)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from siamese_bench.infra.services import pgaccess
from siamese_bench.infra.services.common import (
    DEFAULT_DIR,
    DEFAULT_HOST,
    DEFAULT_PG_PORT,
    PROG,
    ServiceError,
    ServiceStatus,
    client_host,
    is_loopback,
    say,
)
from siamese_bench.infra.services.process import (
    PG_SYSTEM_USER,
    as_root,
    find_pg_bin,
    last_line,
    make_server_dir,
    pg_prefix,
    port_free,
    postgres_can_enter,
    run,
)
from siamese_bench.infra.services.secrets import make_services_dir, read_or_create_secret
from siamese_bench.infra.services.tls import Certificates

SQLALCHEMY_DRIVER = "psycopg2"
SUPERUSER = "postgres"
MLFLOW_ROLE = "mlflow"
MAX_SOCKET_DIR_LEN = 90  # sun_path holds 107 bytes; "/.s.PGSQL.NNNNN" takes the rest


def _fallback_dir(services_dir: Path) -> Path:
    digest = hashlib.sha256(str(services_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"siamese-bench-pg-{digest}"


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster owned by the project: made by `up`, reachable only with the generated passwords.

    `services_dir` holds the password files; the data lives in `data_dir` (default `<services_dir>/pg`, or
    /tmp/siamese-bench-pg-<hash> when `postgres` cannot traverse `services_dir`). With `tls` the server presents
    the certificate in `<services_dir>/tls` and refuses every TCP connection without TLS; URLs then carry
    `sslmode=verify-full&sslrootcert=<the CA>`.
    """

    services_dir: Path = DEFAULT_DIR
    port: int = DEFAULT_PG_PORT
    host: str = DEFAULT_HOST
    app_user: str = "siamese"
    databases: tuple[str, ...] = ("optuna", "mlflow")
    data_dir: Path | None = None
    say: Callable[[str], None] = field(default=say, repr=False)
    tls: bool = False

    def __post_init__(self) -> None:
        self.services_dir = Path(self.services_dir).absolute()
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir).absolute()

    # -- locations -------------------------------------------------------------------------------------------
    @property
    def superuser_password_file(self) -> Path:
        return self.services_dir / "pg-superuser.password"

    @property
    def app_password_file(self) -> Path:
        return self.services_dir / "app.password"

    @property
    def mlflow_password_file(self) -> Path:
        return self.services_dir / "pg-mlflow.password"

    @property
    def certs(self) -> Certificates:
        return Certificates(self.services_dir / "tls")

    def owner(self, db: str) -> str:
        """The role that owns `db` and logs in to it: `mlflow` for the MLflow server's database, else the app's."""
        return MLFLOW_ROLE if db == "mlflow" else self.app_user

    @property
    def owners(self) -> dict[str, str]:
        return {db: self.owner(db) for db in self.databases}

    @property
    def data(self) -> Path:
        """The data folder in use (decided once: an existing cluster wins, then the preferred place)."""
        if self.data_dir is None:
            self.data_dir = self._choose_data_dir()
        return self.data_dir

    @property
    def log_file(self) -> Path:
        return self.data / "server.log"

    def _choose_data_dir(self) -> Path:
        preferred, fallback = self.services_dir / "pg", _fallback_dir(self.services_dir)
        for candidate in (preferred, fallback):
            if (candidate / "PG_VERSION").exists():
                return candidate
        if not as_root() or postgres_can_enter(self.services_dir):
            return preferred
        self.say(f"user {PG_SYSTEM_USER} cannot reach {self.services_dir}: PostgreSQL data goes to {fallback}")
        return fallback

    def _initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _bin(self, tool: str) -> str:
        version = (self.data / "PG_VERSION").read_text().strip() if self._initialized() else None
        return str(find_pg_bin(version) / tool)

    # -- URLs and passwords ------------------------------------------------------------------------------------
    def url(
        self,
        db: str = "optuna",
        driver: str | None = SQLALCHEMY_DRIVER,
        *,
        address: str | None = None,
        ca_file: Path | None = None,
    ) -> str:
        """`postgresql+psycopg2://ROLE:PASSWORD@HOST:PORT/DB` with the real password (mask it before printing); the
        role is the database's owner. With TLS: `?sslmode=verify-full&sslrootcert=CA` (`ca_file`, default ours).

        The driver is explicit because SQLAlchemy 2.1 (Optuna's and MLflow's) maps a bare `postgresql://` to
        psycopg 3, not psycopg2. `driver=None` gives the libpq form that psycopg2.connect and psql take.
        `address` replaces the host clients on this machine use (for other machines' URLs).
        """
        return self._url(db, self._password(self.owner(db)), driver, address, ca_file)

    def masked_url(self, db: str = "optuna", driver: str | None = SQLALCHEMY_DRIVER) -> str:
        return self._url(db, "***", driver, None, None)

    def _url(self, db: str, password: str, driver: str | None, address: str | None, ca_file: Path | None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        host = address or client_host(self.host)
        host = f"[{host}]" if ":" in host else host
        url = f"{scheme}://{self.owner(db)}:{password}@{host}:{self.port}/{db}"
        if self.tls:
            url += f"?sslmode=verify-full&sslrootcert={ca_file or self.certs.ca_cert}"
        return url

    def _password(self, role: str) -> str:
        path = self.mlflow_password_file if role == MLFLOW_ROLE else self.app_password_file
        if not path.exists():
            raise ServiceError(f"no password for role {role} in {path}: run `{PROG} up`")
        return path.read_text().strip()

    def client_env(self) -> dict[str, str]:
        """Environment for the superuser's psql, pg_dump and pg_restore: password and TLS settings, never argv."""
        env = {**os.environ, "PGPASSWORD": self._superuser_password(), "PGCONNECT_TIMEOUT": "10"}
        if self.tls:
            env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(self.certs.ca_cert))
        return env

    def client_args(self, db: str) -> list[str]:
        """`-h HOST -p PORT -U postgres -d DB`: how the superuser's tools reach a database."""
        return ["-h", client_host(self.host), "-p", str(self.port), "-U", SUPERUSER, "-d", db]

    def _superuser_password(self) -> str:
        if self._initialized() and not self.superuser_password_file.exists():
            raise ServiceError(
                f"the cluster in {self.data} exists but its superuser password file "
                f"{self.superuser_password_file} is missing: restore it, or remove {self.data} "
                "(its data is lost) and run up again"
            )
        return read_or_create_secret(self.superuser_password_file)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def up(self) -> None:
        """Init (once), start (unless running; restarted when its address or TLS changed, reloaded when its access
        rules or certificate did) and make the roles and databases; safe to call repeatedly."""
        find_pg_bin()  # missing binaries: fail before choosing or creating anything
        make_services_dir(self.services_dir)
        for path in (self.app_password_file, self.mlflow_password_file):  # a removed file: a new password (rotation)
            read_or_create_secret(path)
        if not self.status().running:
            if not port_free(self.host, self.port):
                raise ServiceError(
                    f"port {self.port} on {self.host} is already in use by another program: "
                    "choose another with --pg-port N"
                )
            self._init()
            self._start()
        else:
            changed = self._configure()
            if not self._running_as_configured():
                self.say(
                    f"PostgreSQL restarts: it ran with other options than --host {self.host}, "
                    f"{'TLS' if self.tls else 'no TLS'}"
                )
                self.restart("fast")
            elif changed:
                run([*pg_prefix(), self._bin("pg_ctl"), "reload", "-D", str(self.data)], "pg_ctl reload")
        self._ensure_role_and_databases()

    def _running_as_configured(self) -> bool:
        """postmaster.opts holds the options the running server was started with."""
        try:
            opts = (self.data / "postmaster.opts").read_text()
        except OSError:
            return True
        return f"listen_addresses={self.host}" in opts and ("ssl=on" in opts) == self.tls

    def _init(self) -> None:
        password = self._superuser_password()
        if self._initialized():
            return
        make_server_dir(self.data)
        with tempfile.NamedTemporaryFile("w", prefix="siamese-bench-pwfile-") as pwfile:
            pwfile.write(password)
            pwfile.flush()
            if as_root():
                shutil.chown(pwfile.name, PG_SYSTEM_USER)
            run(
                [
                    *pg_prefix(),
                    self._bin("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile.name}",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                "initdb",
            )

    def _server_options(self) -> str:
        """postgres options, quoted for the shell pg_ctl starts it with (TLS: server.crt/.key in the data folder)."""
        socket_dir = str(self.data) if len(str(self.data)) <= MAX_SOCKET_DIR_LEN else ""  # "" = TCP only
        opts = ["-p", str(self.port), "-k", socket_dir, "-c", f"listen_addresses={self.host}"]
        if self.tls:
            opts += ["-c", "ssl=on", "-c", "ssl_min_protocol_version=TLSv1.2"]
        return " ".join(shlex.quote(o) for o in opts)

    def _configure(self) -> bool:
        """Write pg_hba.conf (pgaccess.py) and, with TLS, the server's certificate and key into the data folder
        (owned by the server's user, 0600, as PostgreSQL demands); True when anything changed."""
        local = [(db, role, False) for db, role in self.owners.items() if role != self.app_user]
        rules = [("all", SUPERUSER, False), *local, ("all", self.app_user, not is_loopback(self.host))]
        files = {"pg_hba.conf": pgaccess.hba_text(rules, tls=self.tls).encode()}
        if self.tls:
            if not self.certs.exist():
                raise ServiceError(f"TLS is on but {self.certs.folder} has no certificate: run `{PROG} up --tls`")
            files["server.crt"] = self.certs.server_cert.read_bytes()
            files["server.key"] = self.certs.server_key.read_bytes()
        return pgaccess.write_server_files(self.data, files, PG_SYSTEM_USER if as_root() else None)

    def _start(self) -> None:
        self._configure()
        proc = run(
            [
                *pg_prefix(),
                self._bin("pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-o",
                self._server_options(),
                "-w",
                "-t",
                "60",
            ],
            "pg_ctl start",
            check=False,
        )
        if proc.returncode != 0:
            raise ServiceError(
                f"PostgreSQL did not start on port {self.port}: see {self.log_file} "
                f"(last line: {last_line(self.log_file)})"
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        cmd = [
            self._bin("pg_isready"),
            "-q",
            "-h",
            client_host(self.host),
            "-p",
            str(self.port),
            "-t",
            "2",
            "-d",
            "sslmode=require" if self.tls else "sslmode=prefer",
        ]
        while subprocess.run(cmd, cwd="/").returncode != 0:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"PostgreSQL on port {self.port} not ready after {timeout:.0f} s: see {self.log_file}"
                )
            time.sleep(0.2)

    def _ensure_role_and_databases(self) -> None:
        """Roles `siamese` and `mlflow` (login only), each database owned by its role; run by the superuser. A
        cluster made before the `mlflow` role existed (siamese owned everything) hands `mlflow` over once."""
        roles = {role: self._password(role) for role in dict.fromkeys(self.owners.values())}
        self.psql("\n".join(pgaccess.roles_sql(roles)) + "\n", what="creating the roles")
        rows = self.psql(pgaccess.owners_query(self.databases), what="reading database owners").split()
        for db, current in (row.split("|", 1) for row in rows):
            if current != self.owner(db):
                self.say(f"database {db} is handed from role {current} to role {self.owner(db)}")
                self.psql(pgaccess.reassign_sql(current, self.owner(db)), db=db, what=f"handing {db} over")
        self.psql("\n".join(pgaccess.databases_sql(self.owners)) + "\n", what="creating the databases")

    def psql(self, sql: str, *, db: str = "postgres", what: str = "psql") -> str:
        """Run SQL (given on stdin) as the superuser over TCP; the password travels in PGPASSWORD."""
        cmd = [self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *self.client_args(db), "-f", "-"]
        return run(cmd, what, stdin=sql, env=self.client_env()).stdout

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); nothing to do when it is not running."""
        if not self.status().running:
            return
        run(
            [*pg_prefix(), self._bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60"],
            "pg_ctl stop",
        )

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server; `immediate` is a crash (no checkpoint, recovery on start): fault injection."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, not {mode!r}")
        run(
            [
                *pg_prefix(),
                self._bin("pg_ctl"),
                "restart",
                "-D",
                str(self.data),
                "-m",
                mode,
                "-l",
                str(self.log_file),
                "-o",
                self._server_options(),
                "-w",
                "-t",
                "60",
            ],
            f"pg_ctl restart -m {mode}",
        )
        self._wait_ready()

    def status(self) -> ServiceStatus:
        """Running or not per `pg_ctl status`; a folder without a cluster is simply stopped."""
        url = self.masked_url("optuna")
        if not self._initialized():
            return ServiceStatus("postgresql", False, None, url, f"no cluster in {self.data}")
        proc = run([*pg_prefix(), self._bin("pg_ctl"), "status", "-D", str(self.data)], "pg_ctl status", check=False)
        match = re.search(r"PID: (\d+)", proc.stdout)
        running = proc.returncode == 0
        return ServiceStatus(
            "postgresql", running, int(match.group(1)) if running and match else None, url, f"data {self.data}"
        )

    def destroy(self) -> None:
        """Stop and delete the data folder (for throwaway clusters); the password files stay."""
        if self.data.exists():
            if self._initialized():
                self.stop()
            shutil.rmtree(self.data)
