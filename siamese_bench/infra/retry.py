"""Ride out a short outage of the database or the tracking server instead of failing the study.

A call that fails because a server is restarting or unreachable is tried again with growing
pauses, for up to `outage` seconds; any other error is raised at once. The first failure of an
outage is logged once, with URLs masked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

from siamese_bench.core.errors import UserError

T = TypeVar("T")
log = logging.getLogger(__name__)

_TRANSIENT_TEXT = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "connection reset",
    "connection aborted",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "broken pipe",
    "max retries exceeded",
    "temporarily unavailable",
    "timed out",
    "ssl syscall error",
    "eof detected",
    "cannot connect",
    "connection was closed",
    "remote end closed",
    "bad gateway",
    "service unavailable",
    "response ended prematurely",
    "connection to server",
    "consuming input failed",
    "no connection to the server",
    "database is locked",  # SQLite with several writers (a journal study shared by sweeps on one machine)
)


# errors that waiting will not mend, even when their text also matches a transient one ("connection to server ...")
_LASTING_TEXT = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied for database",
    "certificate verify failed",
    "does not match host name",
    "root certificate file",
    "not authenticated",
)


class StorageUnavailable(UserError, RuntimeError):
    """A server stayed unreachable for longer than the outage allowance; the message says which."""


def error_chain(err: BaseException) -> Iterator[BaseException]:
    """`err`, the driver error it wraps (`.orig`), then its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        if orig is not None:
            yield orig
        current = current.__cause__ or current.__context__


def is_transient(err: BaseException) -> bool:
    """True for errors a restarting or briefly unreachable server causes (retry), False for
    errors that will not go away by waiting (bad password, missing database, a bug)."""
    dbapi_error: type[sqlalchemy.exc.DBAPIError] | None
    try:
        import sqlalchemy.exc

        dbapi_error = sqlalchemy.exc.DBAPIError
    except ImportError:  # pragma: no cover
        dbapi_error = None
    for e in error_chain(err):
        text = str(e).lower()
        if any(s in text for s in _LASTING_TEXT):
            return False
        if dbapi_error is not None and isinstance(e, dbapi_error) and e.connection_invalidated:
            return True
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if any(s in text for s in _TRANSIENT_TEXT):
            return True
    return False


class Retrier:
    """Calls `fn()` until it succeeds, a non-transient error occurs, or `outage` seconds pass."""

    warning = "%s: server unreachable (%s), retrying for up to %.0f s"

    def __init__(self, outage: float = 300.0, first_pause: float = 0.5, max_pause: float = 10.0) -> None:
        self.outage, self.first_pause, self.max_pause = outage, first_pause, max_pause
        self.retries = 0  # how many calls were tried again, over this object's life

    def __call__(self, fn: Callable[[], T], what: str) -> T:
        pause, started, warned = self.first_pause, time.monotonic(), False
        while True:
            try:
                return fn()
            except Exception as err:  # noqa: BLE001  (classified below)
                if not is_transient(err):
                    raise
                waited = time.monotonic() - started
                if self.out_of_time(waited, pause):
                    self.give_up(err, what, waited)
                if not warned:
                    log.warning(self.warning, what, type(err).__name__, self.outage)
                    warned = True
                self.retries += 1
                time.sleep(pause)
                pause = min(pause * 2, self.max_pause)

    def out_of_time(self, waited: float, pause: float) -> bool:
        return waited >= self.outage

    def give_up(self, err: BaseException, what: str, waited: float) -> NoReturn:
        raise StorageUnavailable(
            f"{what}: still unreachable after {waited:.0f} s "
            f"({type(err).__name__}); the study stopped, rerun the same command "
            "to resume once the server is back"
        ) from None


STARTUP_WAIT = 60.0  # longest wait for a server at start-up: past it, a wrong address is told in one line


class StartupWait(Retrier):
    """Connecting to a server at start-up: it may be restarting, and a machine started at that
    moment should join the study, not exit. Says so at once, since it may also be a wrong address;
    never pauses past `outage`, then raises the last error, for the caller's one-line message."""

    warning = "%s does not answer (%s): waiting up to %.0f s in case it is restarting"

    def out_of_time(self, waited: float, pause: float) -> bool:
        return waited + pause > self.outage

    def give_up(self, err: BaseException, what: str, waited: float) -> NoReturn:
        raise err


def at_startup(fn: Callable[[], T], what: str, patience: float) -> T:
    """`fn()`, tried again for up to `patience` seconds while the server does not answer."""
    return StartupWait(patience, max_pause=5.0)(fn, what)
