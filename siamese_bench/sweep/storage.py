"""Optuna storage by URL, and recovery of trials whose sweep process was killed.

Default: an Optuna journal file `optuna.journal` in the working directory (safe for several
processes on one machine, unlike SQLite). `postgresql://...` (or any SQLAlchemy URL) gives an
RDBStorage with heartbeats, for workers on several machines.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

DEFAULT_JOURNAL = "optuna.journal"
RDB_PREFIXES = ("postgresql", "mysql", "sqlite")


def resolve_storage_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("SIAMESE_BENCH_STORAGE") or str(Path.cwd() / DEFAULT_JOURNAL)


def make_storage(url: str) -> BaseStorage:
    if url.startswith(RDB_PREFIXES):
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=30, grace_period=120)
    path = Path(url.removeprefix("journal://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def owner_attrs() -> dict[str, object]:
    """Who runs a trial: recorded on the trial so a later sweep can tell if it died."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid())}


def _start_time(pid: int) -> str | None:
    try:  # field 22 of /proc/PID/stat: start time in clock ticks, guards against PID reuse
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    if "host" not in attrs:
        return False  # popped but never claimed: its sweep died between ask() and recording itself
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


def fail_stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Mark FAIL the RUNNING trials whose sweep process is gone; return them."""
    storage = study._storage  # noqa: SLF001  (Optuna exposes no public setter for this)
    if isinstance(storage, RDBStorage):
        optuna.storages.fail_stale_trials(study)
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _owner_alive(trial):
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", "sweep process died (killed)")
            if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                stale.append(trial)
    return stale
