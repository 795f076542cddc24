"""Finding and running the PostgreSQL tools (as the `postgres` system user under root), checking ports, signalling
process groups, and reading a server log's last line for an error message."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

import psutil

from siamese_bench.infra.services.common import ServiceError

PG_SYSTEM_USER = "postgres"
MISSING_PG = "install the Debian package postgresql (apt-get install postgresql)"
PG_BIN_ENV = "SIAMESE_BENCH_PG_BIN"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "psql", "pg_dump", "pg_restore")


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


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (SO_REUSEADDR, as servers use, so TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def as_root() -> bool:
    return os.geteuid() == 0


def server_uid() -> int:
    """The uid PostgreSQL runs as: `postgres` under root, else ourselves."""
    if not as_root():
        return os.geteuid()
    try:
        return pwd.getpwnam(PG_SYSTEM_USER).pw_uid
    except KeyError:
        raise ServiceError(f"running as root needs the system user {PG_SYSTEM_USER!r}: {MISSING_PG}") from None


def postgres_can_enter(folder: Path) -> bool:
    """`test -x` as postgres fails when any parent folder is not traversable by that user."""
    probe = folder if folder.exists() else folder.parent
    proc = subprocess.run(
        ["runuser", "-u", PG_SYSTEM_USER, "--", "test", "-x", str(probe)], cwd="/", capture_output=True
    )
    return proc.returncode == 0


def make_server_dir(path: Path) -> None:
    """A folder owned by the server's user, mode 0700. Under /tmp anyone could have made it first: as root,
    never chown a link or someone else's folder."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid not in (os.geteuid(), server_uid()):
        raise ServiceError(
            f"{path} is a link or belongs to uid {info.st_uid}, not to us: remove it, or use another --dir"
        )
    if as_root():
        shutil.chown(path, PG_SYSTEM_USER, PG_SYSTEM_USER)


def pg_prefix() -> list[str]:
    """initdb, pg_ctl and postgres refuse to run as root: run them as the `postgres` system user then."""
    if not as_root():
        return []
    if shutil.which("runuser") is None:
        raise ServiceError("runuser not found (Debian package util-linux): needed to run PostgreSQL as root")
    server_uid()
    return ["runuser", "-u", PG_SYSTEM_USER, "--"]


def run(
    cmd: list[str],
    what: str,
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a tool (from `/`, which `postgres` can always enter); a failure is one ServiceError line."""
    try:
        proc = subprocess.run(
            cmd,
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{what}: no answer within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ServiceError(f"{what} failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")
    return proc


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    """Any live member left? Exited but unreaped members (zombies of a caller that spawned it) count as gone."""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
