"""Locks in the database or beside the file: one per study, and one around creating Optuna's
tables. Both are released when their holder dies, so neither can go stale."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Two processes creating Optuna's tables in one PostgreSQL database at once collide."""
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
