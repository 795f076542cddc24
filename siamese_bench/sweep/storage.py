"""Optuna storage by URL, one lock per study, and recovery of trials whose process died.

Default: an Optuna journal file `optuna.journal` in the working directory (several processes
on one machine). `postgresql://...` gives an RDBStorage with heartbeats, for sweeps on several
machines: a sweep that dies without cleaning up is found by the heartbeats it stops recording.
Every error names the URL with its password masked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from siamese_bench.core.errors import ConfigError
from siamese_bench.core.redact import mask_url, scrub
from siamese_bench.infra.retry import error_chain

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
            raise ConfigError(f"heartbeats: need interval >= 1 s and grace > interval, got interval "
                              f"{self.interval} s, grace {self.grace} s")


def resolve_storage_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("SIAMESE_BENCH_STORAGE") or str(Path.cwd() / DEFAULT_JOURNAL)


def is_rdb(url: str) -> bool:
    return url.startswith(RDB_PREFIXES)


def make_storage(url: str, heartbeats: Heartbeats | None = None) -> BaseStorage:
    """An Optuna storage for `url`; a ConfigError naming the masked URL when it cannot be used."""
    if url.startswith(("mysql", "oracle", "mssql")):
        raise ConfigError(f"storage {mask_url(url)}: only PostgreSQL (postgresql://...) or SQLite RDB URLs "
                          "are supported, or a journal file path")
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
    try:
        with _schema_lock(url):  # two processes creating Optuna's tables at once collide
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=hb.interval, grace_period=hb.grace)
    except ImportError as err:
        raise ConfigError(f"storage {mask_url(url)}: the database driver is missing ({err.name}): "
                          "reinstall with `make venv` (psycopg2-binary is a dependency)") from None
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
    elif any(s in low for s in ("connection refused", "could not connect", "timeout expired", "could not translate",
                                "name or service not known", "no route to host", "server closed")):
        hint = "the server is not reachable: is it running (make services-status) and reachable from here?"
    else:
        hint = "see the database's own message"
    return f"storage {mask_url(url)}: {hint} ({scrub(text, url)[:300]})"


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    if not url.startswith("postgresql"):
        yield
        return
    with _advisory_lock(url, "siamese-bench/optuna-schema"):
        yield


@contextlib.contextmanager
def _advisory_lock(url: str, name: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock on its own connection: held until released, and
    released by the server when the holder dies (its connection closes), so it cannot go stale."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a dead connection has released it already
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Serialise the sweeps of one study: claiming a point, recovering dead trials and creating
    or ending the study's MLflow run happen inside it, so no two sweeps act on the same check.
    PostgreSQL: an advisory lock (across machines). Journal and SQLite: an flock beside the file
    (one machine). Either is released when its holder dies."""
    if url.startswith("postgresql"):
        with _advisory_lock(url, f"siamese-bench/study/{study_name}"):
            yield
        return
    path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite") else url.removeprefix("journal://"))
    lock_path = path.with_name(f"{path.name}.{hashlib.sha256(study_name.encode()).hexdigest()[:12]}.lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner_attrs() -> dict[str, object]:
    """Who runs a trial: recorded on the trial so a later sweep can tell if it died."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid())}


def new_claim_token() -> str:
    """Names one claim across its retries, so a retry can find the trial an outage hid from it."""
    return uuid.uuid4().hex


def claimed_trial(study: optuna.Study, token: str | None) -> optuna.Trial | None:
    """The RUNNING trial an earlier attempt of claim `token` created: its commit went through
    but the answer was lost to an outage. None if there is none."""
    if token is None:
        return None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("claim") == token:
            return optuna.Trial(study, trial._trial_id)  # noqa: SLF001  (FrozenTrial hides its id)
    return None


def new_claimed_trial(study: optuna.Study, token: str, attrs: dict[str, object]) -> optuna.Trial:
    """A RUNNING trial created with its owner, the claim token and `attrs` in one write.
    Attributes set one at a time after study.ask() can be cut between writes by an outage,
    leaving a trial that no recovery rule can place."""
    template = FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                           datetime_complete=None, params={}, distributions={},
                           user_attrs={**owner_attrs(), "claim": token, **attrs}, system_attrs={},
                           intermediate_values={}, trial_id=0)
    storage = study._storage  # noqa: SLF001  (Study.ask() cannot create a trial with attributes)
    return optuna.Trial(study, storage.create_new_trial(study._study_id, template_trial=template))  # noqa: SLF001


def _start_time(pid: int) -> str | None:
    try:  # field 22 of /proc/PID/stat: start time in clock ticks, guards against PID reuse
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    if "host" not in attrs:
        return False  # popped but never claimed: claims happen under the study lock, so its sweep died
    if attrs.get("host") != socket.gethostname():
        return True  # another machine's trial: RDB heartbeats decide
    pid = attrs.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return attrs.get("pid_start") in (None, _start_time(pid))


def _is_this_process(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    return (attrs.get("host") == socket.gethostname() and attrs.get("pid") == os.getpid()
            and attrs.get("pid_start") == _start_time(os.getpid()))


def _stale_by_heartbeat(storage: BaseStorage, study_id: int) -> set[int]:
    """Trial ids whose heartbeat is older than the grace period. Optuna exposes this only as
    fail_stale_trials(), which fails them before a reason can be recorded; hence the private call."""
    # a Study wraps its RDBStorage in Optuna's cache layer, which forwards the heartbeat calls
    if not hasattr(storage, "_get_stale_trial_ids") or not storage.get_heartbeat_interval():
        return set()
    return set(storage._get_stale_trial_ids(study_id))  # noqa: SLF001


def fail_stale_trials(study: optuna.Study, mine: set[int] | frozenset[int] = frozenset(),
                      claiming: str | None = None) -> list[FrozenTrial]:
    """Mark FAIL (failure "lost") the RUNNING trials whose sweep is gone: on this machine by
    its PID, on another machine by its missing heartbeats. `mine` are the trial ids this
    process runs now, `claiming` the token of the claim it is making (its trial, if an earlier
    attempt created it, is about to be adopted); any other trial of its own was abandoned (an
    interrupted run). Return them. Call under study_lock."""
    storage = study._storage  # noqa: SLF001  (Optuna exposes no public setter for trial state)
    study_id = storage.get_study_id_from_name(study.study_name)
    silent = _stale_by_heartbeat(storage, study_id)
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        if trial_id in mine or (claiming is not None and trial.user_attrs.get("claim") == claiming):
            continue
        if trial_id in silent:
            reason = f"lost: no heartbeat from {trial.user_attrs.get('host', '?')} for its grace period"
        elif not _owner_alive(trial):
            reason = "lost: its sweep process died"
        elif _is_this_process(trial):
            reason = "lost: abandoned by this sweep (interrupted, or its claim was cut short)"
        else:
            continue
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            storage.set_trial_user_attr(trial_id, "failure", "lost")
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                stale.append(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # its owner finished it meanwhile
    return stale
