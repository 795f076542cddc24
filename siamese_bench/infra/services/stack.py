"""The PostgreSQL cluster and the MLflow server on it, started and stopped together under one lock, and the env
file that points sweeps at both.

Beyond loopback (`--host` another address) both are secured by default: TLS with the services' own CA (tls.py) and
MLflow accounts (auth.py); `--tls/--no-tls` and `--auth/--no-auth` override. `up` records what it started in
`services.json`, so `status`, `down`, `backup`, `bundle` use the same settings without repeating the options.
"""

from __future__ import annotations

import fcntl
import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from siamese_bench.infra.services.auth import MlflowAuth
from siamese_bench.infra.services.common import (
    DEFAULT_DIR,
    DEFAULT_HOST,
    DEFAULT_MLFLOW_PORT,
    DEFAULT_PG_PORT,
    PROG,
    ServiceStatus,
    is_loopback,
    say,
)
from siamese_bench.infra.services.mlflow import MlflowServer
from siamese_bench.infra.services.postgres import PostgresCluster
from siamese_bench.infra.services.secrets import make_services_dir, write_private
from siamese_bench.infra.services.tls import Certificates, server_names

STATE_FILE = "services.json"
CLIENT_VARS = (
    "SIAMESE_BENCH_STORAGE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)


def read_state(services_dir: Path) -> dict:
    """What the last `up` in this folder started ({} before any)."""
    try:
        return json.loads((Path(services_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def env_text(values: dict[str, str], origin: str) -> str:
    """A file to `source`: the client variables given, and `unset` for the others (a shell that sourced an older
    file must not keep sending a password to a server that no longer wants one)."""
    lines = [f"# written by `{origin}`; holds passwords: keep it private (0600)"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    unused = [k for k in CLIENT_VARS if k not in values]
    if unused:
        lines.append("unset " + " ".join(unused))
    return "\n".join(lines) + "\n"


@dataclass
class Services:
    """The PostgreSQL cluster plus the MLflow server on it, as `up`/`down`/`status` drive them.

    `tls` and `auth` default to on when `host` is not a loopback address; `addresses` are extra names clients use
    to reach this machine (written into the certificate and MLflow's allowed hosts).
    """

    services_dir: Path = DEFAULT_DIR
    pg_port: int = DEFAULT_PG_PORT
    mlflow_port: int = DEFAULT_MLFLOW_PORT
    host: str = DEFAULT_HOST
    say: Callable[[str], None] = field(default=say, repr=False)
    tls: bool | None = None
    auth: bool | None = None
    addresses: tuple[str, ...] = ()
    pg: PostgresCluster = field(init=False, repr=False)
    mlflow: MlflowServer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.services_dir = Path(self.services_dir).absolute()
        self.tls = (not is_loopback(self.host)) if self.tls is None else self.tls
        self.auth = (not is_loopback(self.host)) if self.auth is None else self.auth
        self.addresses = tuple(self.addresses)
        self.pg = PostgresCluster(self.services_dir, port=self.pg_port, host=self.host, say=self.say, tls=self.tls)
        self.mlflow = MlflowServer(
            self.services_dir,
            port=self.mlflow_port,
            host=self.host,
            tls=self.certs if self.tls else None,
            auth=MlflowAuth(self.services_dir) if self.auth else None,
            allowed_hosts=self._allowed_hosts(),
        )

    @classmethod
    def from_state(cls, services_dir: Path, *, for_up: bool = False, **given) -> Services:
        """Settings given explicitly (not None) win; then what the last `up` recorded (for `up` itself: its TLS and
        authentication only when the host is the same); then the defaults. Addresses given come first, then those
        recorded."""
        state = read_state(services_dir)
        given = {k: v for k, v in given.items() if v is not None and v != ()}
        keep: tuple[str, ...] = ("host", "pg_port", "mlflow_port", "addresses", "tls", "auth")
        if for_up and given.get("host", state.get("host")) != state.get("host"):
            keep = ("pg_port", "mlflow_port", "addresses")
        settings = {k: state[k] for k in keep if k in state}
        settings.update(given)  # addresses accumulate: a name clients were given stays valid
        settings["addresses"] = tuple(dict.fromkeys([*given.get("addresses", ()), *state.get("addresses", ())]))
        return cls(services_dir, **settings)

    @property
    def certs(self) -> Certificates:
        return Certificates(self.services_dir / "tls")

    @property
    def env_file(self) -> Path:
        return self.services_dir / "env"

    def names(self) -> list[str]:
        """Every name clients may use for this machine: what the certificate and MLflow's allowed hosts list."""
        return server_names(self.host, self.addresses)

    def _allowed_hosts(self) -> tuple[str, ...]:
        if is_loopback(self.host):
            return ()  # MLflow's default: loopback names (and private addresses, which cannot reach loopback)
        hosts = []
        for name in self.names():
            shown = f"[{name}]" if ":" in name else name
            hosts += [shown, f"{shown}:{self.mlflow_port}"]
        return tuple(hosts)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Two `up`s at once (two workers' scripts) would both create the databases: one waits for the other."""
        make_services_dir(self.services_dir)
        with (self.services_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def up(self) -> Path:
        """Certificates (with TLS), PostgreSQL, then MLflow on it; write the state and env files; return the env
        file's path."""
        with self.lock():
            self._up()
        return self.env_file

    def _up(self) -> None:
        """`up` for a caller that holds the lock (restore)."""
        if self.tls and self.certs.ensure(self.names()):
            self.mlflow.stop()  # a new certificate: uvicorn reads it only at start (PostgreSQL reloads it)
        self.pg.up()
        self.mlflow.backend_store_uri = self.pg.url("mlflow")
        self.mlflow.up()
        write_private(self.services_dir / STATE_FILE, json.dumps(self.settings(), indent=1) + "\n")
        write_private(self.env_file, env_text(self.client_env(), f"{PROG} up"))

    def settings(self) -> dict:
        return {
            "host": self.host,
            "pg_port": self.pg_port,
            "mlflow_port": self.mlflow_port,
            "tls": self.tls,
            "auth": self.auth,
            "addresses": list(self.addresses),
        }

    def client_env(self, address: str | None = None, ca_file: Path | None = None) -> dict[str, str]:
        """Everything a client exports: storage, tracking URL, the app account (never the admin) and the CA.
        `address`: the name other machines use instead of this machine's loopback; `ca_file`: where they keep
        the CA."""
        env = {
            "SIAMESE_BENCH_STORAGE": self.pg.url("optuna", address=address, ca_file=ca_file),
            "MLFLOW_TRACKING_URI": self.tracking_url(address),
        }
        if self.auth:
            env.update(MlflowAuth(self.services_dir).client_env())
        if self.tls:
            env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(ca_file or self.certs.ca_cert)
        return env

    def tracking_url(self, address: str | None = None) -> str:
        if address is None:
            return self.mlflow.url
        host = f"[{address}]" if ":" in address else address
        return f"{'https' if self.tls else 'http'}://{host}:{self.mlflow_port}"

    def down(self) -> None:
        """Stop MLflow, then PostgreSQL; fine when neither runs."""
        if not self.services_dir.exists():
            return
        with self.lock():
            self.mlflow.stop()
            self.pg.stop()

    def status(self) -> list[ServiceStatus]:
        return [self.pg.status(), self.mlflow.status()]
