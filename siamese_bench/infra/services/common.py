"""What every service module shares: the defaults, the error a user sees, the status line, how to talk to the user."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from siamese_bench.core.errors import UserError

DEFAULT_DIR = Path(".services")
DEFAULT_PG_PORT = 55432
DEFAULT_MLFLOW_PORT = 5055
DEFAULT_HOST = "127.0.0.1"
WILDCARD_HOSTS = ("0.0.0.0", "::")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PROG = "siamese-bench services"


class ServiceError(UserError, RuntimeError):
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


def say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def client_host(host: str) -> str:
    """Where local clients connect: a wildcard bind address is not a destination."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def is_loopback(host: str) -> bool:
    """Only this machine can reach a server listening on `host`."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
