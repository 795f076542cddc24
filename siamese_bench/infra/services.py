"""Project-owned PostgreSQL 15 cluster and MLflow tracking server, for sweeps spread over processes or machines.

`python -m siamese_bench.infra.services up|down|status|env`. Nothing here assumes a server is already running: `up`
creates a cluster under `.services/` (or a folder under the system temp dir when the `postgres` user cannot reach
`.services/`), an app role `siamese` that owns the databases `optuna` and `mlflow`, and an MLflow server on the
`mlflow` database that proxies artifacts over HTTP. Passwords are random, kept in 0600 files in `.services/`, and
passed to child processes by environment or file, never on a command line that `ps` shows.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from siamese_bench.core.redact import mask_url

DEFAULT_DIR = Path(".services")
DEFAULT_PG_PORT = 55432
DEFAULT_MLFLOW_PORT = 5055
DEFAULT_HOST = "127.0.0.1"
PG_BIN_ENV = "SIAMESE_BENCH_PG_BIN"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "psql")
PG_SYSTEM_USER = "postgres"
SQLALCHEMY_DRIVER = "psycopg2"
SUPERUSER = "postgres"
WILDCARD_HOSTS = ("0.0.0.0",)
MAX_SOCKET_DIR_LEN = 90  # sun_path holds 107 bytes; "/.s.PGSQL.NNNNN" takes the rest
PROG = "python -m siamese_bench.infra.services"
MISSING_PG = "install the Debian package postgresql (apt-get install postgresql)"


class ServiceError(RuntimeError):
    """A service cannot be started, stopped or found; the message is one line that says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `status`: the URL is masked so it can be printed and logged."""

    name: str
    running: bool
    pid: int | None
    url: str
    detail: str = ""

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        pid = f"pid {self.pid}" if self.pid else "pid -"
        return f"{self.name + ':':<11} {state:<8} {pid:<10} {self.url}" + (f"  ({self.detail})" if self.detail else "")


def _say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def _client_host(host: str) -> str:
    """Where local clients connect: a wildcard bind address is not a destination."""
    return "127.0.0.1" if host in WILDCARD_HOSTS else host


def _port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (SO_REUSEADDR, as servers use, so TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _read_or_create_secret(path: Path) -> str:
    """A random password kept in a 0600 file; reused when the file exists so `up` is idempotent."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `up` won the race: use its password
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (it holds passwords); replaced atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores, computed here so the plain password is never sent in SQL
    (a failed statement, or log_statement=all, would write it to the server log)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def find_pg_bin(version: str | None = None) -> Path:
    """The PostgreSQL server bin folder: $SIAMESE_BENCH_PG_BIN, else the highest /usr/lib/postgresql/*/bin
    (the one matching `version` when given, so an existing cluster keeps its major version)."""
    explicit = os.environ.get(PG_BIN_ENV)
    if explicit:
        candidates, where = [Path(explicit)], f"{PG_BIN_ENV}={explicit}"
    else:
        candidates = sorted((Path(p) for p in Path("/").glob(PG_BIN_GLOB.lstrip("/"))), key=_version_key, reverse=True)
        where = PG_BIN_GLOB
        if version and (Path(f"/usr/lib/postgresql/{version}/bin") in candidates):
            candidates = [Path(f"/usr/lib/postgresql/{version}/bin")]
    for bin_dir in candidates:
        if all((bin_dir / tool).is_file() for tool in PG_TOOLS):
            return bin_dir
    raise ServiceError(f"PostgreSQL server binaries not found in {where}: {MISSING_PG}")


def _as_root() -> bool:
    return os.geteuid() == 0


def _server_uid() -> int:
    """The uid PostgreSQL runs as: `postgres` under root, else ourselves."""
    if not _as_root():
        return os.geteuid()
    try:
        return pwd.getpwnam(PG_SYSTEM_USER).pw_uid
    except KeyError:
        raise ServiceError(f"running as root needs the system user {PG_SYSTEM_USER!r}: {MISSING_PG}") from None


def _pg_prefix() -> list[str]:
    """initdb, pg_ctl and postgres refuse to run as root: run them as the `postgres` system user then."""
    if not _as_root():
        return []
    if shutil.which("runuser") is None:
        raise ServiceError("runuser not found (Debian package util-linux): needed to run PostgreSQL as root")
    _server_uid()
    return ["runuser", "-u", PG_SYSTEM_USER, "--"]


def _run(cmd: list[str], what: str, *, stdin: str | None = None, env: dict[str, str] | None = None,
         timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool (from `/`, which `postgres` can always enter); a failure is one ServiceError line."""
    try:
        proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True, timeout=timeout, cwd="/",
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{what}: no answer within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ServiceError(f"{what} failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")
    return proc


def _make_services_dir(path: Path) -> None:
    """The folder holds secrets (0600 files) and must be traversable by `postgres`; git ignores it."""
    if not path.exists():
        path.mkdir(parents=True)
        path.chmod(0o755)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# passwords and databases of siamese_bench.infra.services: never commit\n*\n")


def _fallback_dir(services_dir: Path) -> Path:
    digest = hashlib.sha256(str(services_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"siamese-bench-pg-{digest}"


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster owned by the project: made by `up`, reachable only with the generated passwords.

    `services_dir` holds the password files; the data lives in `data_dir` (default `<services_dir>/pg`, or
    /tmp/siamese-bench-pg-<hash> when `postgres` cannot traverse `services_dir`).
    """

    services_dir: Path = DEFAULT_DIR
    port: int = DEFAULT_PG_PORT
    host: str = DEFAULT_HOST
    app_user: str = "siamese"
    databases: tuple[str, ...] = ("optuna", "mlflow")
    data_dir: Path | None = None
    say: Callable[[str], None] = field(default=_say, repr=False)

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
        if not _as_root() or self._postgres_can_enter(self.services_dir):
            return preferred
        self.say(f"user {PG_SYSTEM_USER} cannot reach {self.services_dir}: PostgreSQL data goes to {fallback}")
        return fallback

    @staticmethod
    def _postgres_can_enter(folder: Path) -> bool:
        """`test -x` as postgres fails when any parent folder is not traversable by that user."""
        probe = folder if folder.exists() else folder.parent
        proc = subprocess.run(["runuser", "-u", PG_SYSTEM_USER, "--", "test", "-x", str(probe)], cwd="/",
                              capture_output=True)
        return proc.returncode == 0

    def _initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _bin(self, tool: str) -> str:
        version = (self.data / "PG_VERSION").read_text().strip() if self._initialized() else None
        return str(find_pg_bin(version) / tool)

    # -- URLs and passwords ------------------------------------------------------------------------------------
    def url(self, db: str = "optuna", driver: str | None = SQLALCHEMY_DRIVER) -> str:
        """`postgresql+psycopg2://siamese:PASSWORD@HOST:PORT/DB` with the real password (mask it before printing).

        The driver is explicit because SQLAlchemy 2.1 (Optuna's and MLflow's) maps a bare `postgresql://` to
        psycopg 3, not psycopg2. `driver=None` gives the libpq form that psycopg2.connect and psql take.
        """
        return self._url(db, self._app_password(), driver)

    def masked_url(self, db: str = "optuna", driver: str | None = SQLALCHEMY_DRIVER) -> str:
        return self._url(db, "***", driver)

    def _url(self, db: str, password: str, driver: str | None) -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.app_user}:{password}@{_client_host(self.host)}:{self.port}/{db}"

    def _app_password(self) -> str:
        if not self.app_password_file.exists():
            raise ServiceError(f"no app password in {self.app_password_file}: run `{PROG} up`")
        return self.app_password_file.read_text().strip()

    def _superuser_password(self) -> str:
        if self._initialized() and not self.superuser_password_file.exists():
            raise ServiceError(f"the cluster in {self.data} exists but its superuser password file "
                               f"{self.superuser_password_file} is missing: restore it, or remove {self.data} "
                               "(its data is lost) and run up again")
        return _read_or_create_secret(self.superuser_password_file)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def up(self) -> None:
        """Init (once), start (unless running) and make the app role and databases; safe to call repeatedly."""
        find_pg_bin()  # missing binaries: fail before choosing or creating anything
        _make_services_dir(self.services_dir)
        if not self.status().running:
            if not _port_free(self.host, self.port):
                raise ServiceError(f"port {self.port} on {self.host} is already in use by another program: "
                                   "choose another with --pg-port N")
            self._init()
            self._start()
        self._ensure_role_and_databases()

    def _init(self) -> None:
        password = self._superuser_password()
        _read_or_create_secret(self.app_password_file)
        if self._initialized():
            return
        self._make_data_dir()
        with tempfile.NamedTemporaryFile("w", prefix="siamese-bench-pwfile-") as pwfile:
            pwfile.write(password)
            pwfile.flush()
            if _as_root():
                shutil.chown(pwfile.name, PG_SYSTEM_USER)
            _run([*_pg_prefix(), self._bin("initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile.name}",
                  "-E", "UTF8", "--no-locale", "--no-instructions"], "initdb")

    def _make_data_dir(self) -> None:
        """A folder owned by the server's user, mode 0700. Under /tmp anyone could have made it first: as root,
        never chown a link or someone else's folder."""
        self.data.mkdir(mode=0o700, exist_ok=True)
        info = self.data.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid not in (os.geteuid(), _server_uid()):
            raise ServiceError(f"{self.data} is a link or belongs to uid {info.st_uid}, not to us: remove it, or use "
                               "another --dir")
        if _as_root():
            shutil.chown(self.data, PG_SYSTEM_USER, PG_SYSTEM_USER)

    def _server_options(self) -> str:
        """postgres options, quoted for the shell pg_ctl starts it with."""
        socket_dir = str(self.data) if len(str(self.data)) <= MAX_SOCKET_DIR_LEN else ""  # "" = TCP only
        opts = ["-p", str(self.port), "-k", socket_dir, "-c", f"listen_addresses={self.host}"]
        return " ".join(shlex.quote(o) for o in opts)

    def _allow_remote_logins(self) -> None:
        """Other machines log in over TCP only if pg_hba.conf lets them (still with a scram password)."""
        if self.host in ("127.0.0.1", "localhost"):
            return
        hba = self.data / "pg_hba.conf"
        line = "host    all             all             0.0.0.0/0               scram-sha-256"
        if line not in hba.read_text():
            with hba.open("a") as out:
                out.write(f"# added by siamese_bench.infra.services for --host {self.host}\n{line}\n")

    def _start(self) -> None:
        self._allow_remote_logins()
        proc = _run([*_pg_prefix(), self._bin("pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log_file),
                     "-o", self._server_options(), "-w", "-t", "60"], "pg_ctl start", check=False)
        if proc.returncode != 0:
            raise ServiceError(f"PostgreSQL did not start on port {self.port}: see {self.log_file} "
                               f"(last line: {_last_line(self.log_file)})")
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        cmd = [self._bin("pg_isready"), "-q", "-h", _client_host(self.host), "-p", str(self.port), "-t", "2"]
        while subprocess.run(cmd, cwd="/").returncode != 0:
            if time.monotonic() > deadline:
                raise ServiceError(f"PostgreSQL on port {self.port} not ready after {timeout:.0f} s: "
                                   f"see {self.log_file}")
            time.sleep(0.2)

    def _ensure_role_and_databases(self) -> None:
        """Role `siamese` (login only: no superuser, no createdb) owning each database; run by the superuser."""
        user = self.app_user
        sql = [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') "
            f"THEN CREATE ROLE {user}; END IF; END $$;",
            f"ALTER ROLE {user} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            f"PASSWORD '{_scram_verifier(self._app_password())}';",
        ]
        for db in self.databases:
            sql.append(f"SELECT 'CREATE DATABASE {db} OWNER {user}' "
                       f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}') \\gexec")
            sql.append(f"ALTER DATABASE {db} OWNER TO {user};")
        self.psql("\n".join(sql) + "\n", what="creating the app role and databases")

    def psql(self, sql: str, *, db: str = "postgres", what: str = "psql") -> str:
        """Run SQL (given on stdin) as the superuser over TCP; the password travels in PGPASSWORD."""
        env = {**os.environ, "PGPASSWORD": self._superuser_password(), "PGCONNECT_TIMEOUT": "10"}
        cmd = [self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", _client_host(self.host),
               "-p", str(self.port), "-U", SUPERUSER, "-d", db, "-f", "-"]
        return _run(cmd, what, stdin=sql, env=env).stdout

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); nothing to do when it is not running."""
        if not self.status().running:
            return
        _run([*_pg_prefix(), self._bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60"],
             "pg_ctl stop")

    def restart(self, mode: str = "immediate") -> None:
        """Restart the server; `immediate` is a crash (no checkpoint, recovery on start): fault injection."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, not {mode!r}")
        _run([*_pg_prefix(), self._bin("pg_ctl"), "restart", "-D", str(self.data), "-m", mode, "-l",
              str(self.log_file), "-o", self._server_options(), "-w", "-t", "60"], f"pg_ctl restart -m {mode}")
        self._wait_ready()

    def status(self) -> ServiceStatus:
        """Running or not per `pg_ctl status`; a folder without a cluster is simply stopped."""
        url = self.masked_url("optuna")
        if not self._initialized():
            return ServiceStatus("postgresql", False, None, url, f"no cluster in {self.data}")
        proc = _run([*_pg_prefix(), self._bin("pg_ctl"), "status", "-D", str(self.data)], "pg_ctl status",
                    check=False)
        match = re.search(r"PID: (\d+)", proc.stdout)
        running = proc.returncode == 0
        return ServiceStatus("postgresql", running, int(match.group(1)) if running and match else None, url,
                             f"data {self.data}")

    def destroy(self) -> None:
        """Stop and delete the data folder (for throwaway clusters); the password files stay."""
        if self.data.exists():
            if self._initialized():
                self.stop()
            shutil.rmtree(self.data)


@dataclass
class MlflowServer:
    """`mlflow server` on the cluster's `mlflow` database, detached in its own session, artifacts proxied over HTTP.

    The backend URI (with the password) is passed as MLFLOW_BACKEND_STORE_URI, so it is not in the command line.
    """

    services_dir: Path = DEFAULT_DIR
    port: int = DEFAULT_MLFLOW_PORT
    host: str = DEFAULT_HOST
    backend_store_uri: str = ""
    workers: int = 1
    start_timeout: float = 90

    def __post_init__(self) -> None:
        self.services_dir = Path(self.services_dir).absolute()

    @property
    def url(self) -> str:
        return f"http://{_client_host(self.host)}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.services_dir / "mlflow.log"

    @property
    def pid_file(self) -> Path:
        return self.services_dir / "mlflow.pid"

    @property
    def artifacts_dir(self) -> Path:
        return self.services_dir / "mlartifacts"

    def _pid(self) -> int | None:
        """The recorded pid if that process is still an mlflow server (a reused pid is not ours)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = " ".join(psutil.Process(pid).cmdline())
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return pid if "mlflow" in cmdline and "server" in cmdline else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def up(self) -> None:
        """Start unless our server already answers; wait for /health."""
        if self._pid() is not None:
            if not self.healthy():
                self._wait_healthy(None)
            return
        if not self.backend_store_uri:
            raise ServiceError("MlflowServer needs backend_store_uri (the postgresql:// URL of database mlflow)")
        if not _port_free(self.host, self.port):
            raise ServiceError(f"port {self.port} on {self.host} is already in use by another program: "
                               "choose another with --mlflow-port N")
        self._wait_healthy(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts_dir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["MLFLOW_BACKEND_STORE_URI"] = self.backend_store_uri  # not --backend-store-uri: `ps` would show it
        # MLflow 3.x's job runner (GenAI scorers, trace archival) adds 8 processes and ~2 GB; tracking needs none
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline machines: no upload attempts
        cmd = [sys.executable, "-m", "mlflow", "server", "--serve-artifacts",
               "--artifacts-destination", str(self.artifacts_dir), "--host", self.host, "--port", str(self.port),
               "--workers", str(self.workers)]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.services_dir, start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc

    def _wait_healthy(self, proc: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self.healthy():
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(f"MLflow server exited with code {proc.returncode} while starting: see "
                                   f"{self.log_file} (last line: {_last_line(self.log_file)})")
            if time.monotonic() > deadline:
                raise ServiceError(f"MLflow server did not answer {self.url}/health within {self.start_timeout:.0f} s:"
                                   f" see {self.log_file}")
            time.sleep(0.5)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the server's process group (the CLI and its uvicorn child), SIGKILL what is left after `grace`."""
        pid = self._pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while _group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(pid):
                _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.up()

    def status(self) -> ServiceStatus:
        pid = self._pid()
        detail = "" if pid is None or self.healthy() else "not answering /health"
        return ServiceStatus("mlflow", pid is not None, pid, self.url, detail)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """Any live member left? Exited but unreaped members (zombies of a caller that spawned it) count as gone."""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


@dataclass
class Services:
    """The PostgreSQL cluster plus the MLflow server on it, as `up`/`down`/`status` drive them."""

    services_dir: Path = DEFAULT_DIR
    pg_port: int = DEFAULT_PG_PORT
    mlflow_port: int = DEFAULT_MLFLOW_PORT
    host: str = DEFAULT_HOST
    say: Callable[[str], None] = field(default=_say, repr=False)
    pg: PostgresCluster = field(init=False, repr=False)
    mlflow: MlflowServer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.services_dir = Path(self.services_dir).absolute()
        self.pg = PostgresCluster(self.services_dir, port=self.pg_port, host=self.host, say=self.say)
        self.mlflow = MlflowServer(self.services_dir, port=self.mlflow_port, host=self.host)

    @property
    def env_file(self) -> Path:
        return self.services_dir / "env"

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Two `up`s at once (two workers' scripts) would both create the databases: one waits for the other."""
        _make_services_dir(self.services_dir)
        with (self.services_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def up(self) -> Path:
        """Start PostgreSQL, then MLflow on it; write the env file and return its path."""
        with self._lock():
            self.pg.up()
            self.mlflow.backend_store_uri = self.pg.url("mlflow")
            self.mlflow.up()
            _write_private(self.env_file, self._env_text())
        return self.env_file

    def _env_text(self) -> str:
        return (f"# written by `python -m siamese_bench.infra.services up`; holds a password: keep it private\n"
                f"export SIAMESE_BENCH_STORAGE={shlex.quote(self.pg.url('optuna'))}\n"
                f"export MLFLOW_TRACKING_URI={shlex.quote(self.mlflow.url)}\n")

    def down(self) -> None:
        """Stop MLflow, then PostgreSQL; fine when neither runs."""
        if not self.services_dir.exists():
            return
        with self._lock():
            self.mlflow.stop()
            self.pg.stop()

    def status(self) -> list[ServiceStatus]:
        return [self.pg.status(), self.mlflow.status()]


# -- command line ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="folder for passwords, logs, the env file, MLflow artifacts and (if user postgres can "
                             "reach it) the PostgreSQL data (default: %(default)s)")
    common.add_argument("--pg-port", type=int, default=DEFAULT_PG_PORT, help="PostgreSQL port (default: %(default)s)")
    common.add_argument("--mlflow-port", type=int, default=DEFAULT_MLFLOW_PORT,
                        help="MLflow server port (default: %(default)s)")
    common.add_argument("--host", default=DEFAULT_HOST,
                        help="address both servers listen on (default: %(default)s, this machine only). For workers "
                             "on other machines use --host 0.0.0.0: PostgreSQL then also accepts scram-sha-256 logins "
                             "from any IPv4 address (a pg_hba.conf line is added), and MLflow answers Host headers of "
                             "private addresses only (set MLFLOW_SERVER_ALLOWED_HOSTS=addr:port,... before `up` for "
                             "others); those machines use this machine's address instead of 127.0.0.1 in the URLs")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Start, stop or inspect the project's own PostgreSQL cluster (databases optuna and mlflow, "
                    "owned by role siamese) and an MLflow tracking server on it. Needs the Debian package "
                    "postgresql; nothing has to be running beforehand.",
        epilog="After `up`: `source .services/env` sets SIAMESE_BENCH_STORAGE (Optuna) and MLFLOW_TRACKING_URI.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", parents=[common], help="start PostgreSQL then MLflow (idempotent); print the URLs")
    sub.add_parser("down", parents=[common], help="stop MLflow then PostgreSQL (fine when nothing runs)")
    sub.add_parser("status", parents=[common], help="one line per service: running/stopped, pid, URL (masked)")
    sub.add_parser("env", parents=[common], help="print the path of the env file to `source`")
    return parser


def _command(args: argparse.Namespace) -> None:
    services = Services(args.dir, pg_port=args.pg_port, mlflow_port=args.mlflow_port, host=args.host)
    if args.command == "up":
        env_file = services.up()
        print(f"SIAMESE_BENCH_STORAGE={mask_url(services.pg.url('optuna'))}")
        print(f"MLFLOW_TRACKING_URI={services.mlflow.url}")
        if args.host in WILDCARD_HOSTS:
            print("other machines: replace 127.0.0.1 with this machine's address")
        print(f"source {_shown(env_file)}")
    elif args.command == "down":
        services.down()
    elif args.command == "status":
        for status in services.status():
            print(status.line())
    elif args.command == "env":
        if not services.env_file.exists():
            raise ServiceError(f"no {_shown(services.env_file)} yet: run `{PROG} up` first")
        print(_shown(services.env_file))


def _shown(path: Path) -> str:
    """Relative to the current folder when inside it, as a user would type it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _command(args)
    except ServiceError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
