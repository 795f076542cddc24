"""Optuna storage by URL.

Default: an Optuna journal file `optuna.journal` in the working directory (several processes
on one machine). `postgresql://...` gives an RDBStorage with heartbeats, for sweeps on several
machines: a sweep that dies without cleaning up is found by the heartbeats it stops recording.
Every error names the URL with its password masked.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.redact import mask_url, scrub
from siamese_bench.infra.retry import at_startup, error_chain
from siamese_bench.sweep.locks import schema_lock

DEFAULT_JOURNAL = "optuna.journal"
RDB_PREFIXES = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Heartbeats:
    """How often a sweep records that its trials are alive, and how long a silent trial lives.

    The grace period must exceed the longest pause between two heartbeats (a database restart,
    a stalled process), or a live trial is failed and its point runs twice (optuna #4234)."""

    interval: int = 10
    grace: int = 60

    def __post_init__(self) -> None:
        if self.interval < 1 or self.grace <= self.interval:
            raise ConfigError(
                f"heartbeats: need interval >= 1 s and grace > interval, got interval "
                f"{self.interval} s, grace {self.grace} s"
            )


def resolve_storage_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("SIAMESE_BENCH_STORAGE") or str(Path.cwd() / DEFAULT_JOURNAL)


def is_rdb(url: str) -> bool:
    return url.startswith(RDB_PREFIXES)


def make_storage(url: str, heartbeats: Heartbeats | None = None, patience: float = 0.0) -> BaseStorage:
    """An Optuna storage for `url`; a ConfigError naming the masked URL when it cannot be used. A
    database server that does not answer is waited for up to `patience` seconds first (a restart)."""
    if url.startswith(("mysql", "oracle", "mssql")):
        raise ConfigError(
            f"storage {mask_url(url)}: only PostgreSQL (postgresql://...) or SQLite RDB URLs "
            "are supported, or a journal file path"
        )
    if not is_rdb(url):
        path = Path(url.removeprefix("journal://"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"storage {url}: cannot create {path.parent}: {err.strerror}") from None
        return JournalStorage(JournalFileBackend(str(path)))
    hb = heartbeats or Heartbeats()
    if url.startswith("sqlite"):
        kwargs: dict = {"connect_args": {"timeout": 60}}
    else:  # a dropped connection (server restart, idle timeout) is replaced, not raised (optuna #5600)
        kwargs = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "connect_args": {"connect_timeout": 10}}

    def connect() -> RDBStorage:
        with schema_lock(url):  # two processes creating Optuna's tables at once collide
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=hb.interval, grace_period=hb.grace)

    try:
        return at_startup(connect, f"storage {mask_url(url)}", patience)
    except ImportError as err:
        raise ConfigError(
            f"storage {mask_url(url)}: the database driver is missing ({err.name}): "
            "reinstall with `make venv` (psycopg2-binary is a dependency)"
        ) from None
    except Exception as err:  # noqa: BLE001  (SQLAlchemy and the driver raise many kinds)
        raise ConfigError(describe_storage_error(url, err)) from None


def describe_storage_error(url: str, err: BaseException) -> str:
    """One line: the masked URL, what went wrong, what to do."""
    *_, root = error_chain(err)  # the driver's own message
    text = " ".join(str(root).split())
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        hint = "wrong user or password: check the URL (make services-up prints it; source .services/env)"
    elif "does not exist" in low and "database" in low:
        hint = "the database does not exist: create it (make services-up creates optuna and mlflow)"
    elif "does not exist" in low and "role" in low:
        hint = "the user does not exist on that server"
    elif "no pg_hba.conf entry" in low:
        hint = (
            "the server refuses this connection: without TLS, or from a role or address it does not allow; use "
            "the URL of .services/env, or `siamese-bench services join BUNDLE` on this machine"
        )
    elif "permission denied for database" in low:
        hint = "this role may use the database optuna only: check the URL's database"
    elif any(
        s in low
        for s in (
            "root certificate file",
            "certificate verify failed",
            "does not match host name",
            "server certificate",
        )
    ):
        hint = (
            "the server's certificate cannot be checked: the CA file is missing, or this address is not in the "
            "certificate (`siamese-bench services up --address HOST` on the server)"
        )
    elif any(
        s in low
        for s in (
            "connection refused",
            "could not connect",
            "timeout expired",
            "could not translate",
            "name or service not known",
            "no route to host",
            "server closed",
        )
    ):
        hint = "the server is not reachable: is it running (make services-status) and reachable from here?"
    else:
        hint = "see the database's own message"
    return f"storage {mask_url(url)}: {hint} ({scrub(text, url)[:300]})"
