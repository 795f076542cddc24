"""What benchmarks/load.py and benchmarks/soak.py --secure share: "machines" that reach the project's services as
another machine would (through TLS and the MLflow app account, with the credentials `services join` unpacked from
a bundle), and the search of every file a run wrote for the services' secrets.

Not a module of the package: the benchmarks import it from their own folder (`python benchmarks/load.py` puts
benchmarks/ first on sys.path).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

CLIENT_PREFIXES = ("MLFLOW_", "SIAMESE_BENCH_STORAGE")
SECRET_FILES = (
    "app.password",
    "pg-mlflow.password",
    "pg-superuser.password",
    "mlflow-admin.password",
    "mlflow-app.password",
    "mlflow-flask.secret",
)
# files that hold secrets by design (0600): the secret files themselves, env files, bundles, MLflow's auth config
BY_DESIGN = {"env", "mlflow-auth.ini", "services.json", *SECRET_FILES}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any client setting (a shell that sourced an env file must not leak its
    storage URL or MLflow account into a "machine"), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_PREFIXES)}
    env.update(extra)
    return env


def sourced(env_file: Path, cmd: list[str]) -> list[str]:
    """`cmd` after `source ENV_FILE`, as a user on that machine runs it (no password on any command line)."""
    return ["bash", "-c", f'source "{env_file}" && exec "$@"', "bash", *cmd]


def sweep_command(spec: Path, workers: int, heartbeat: int, grace: int, *extra: str) -> list[str]:
    """One machine's `siamese-bench sweep` of `spec`: one torch thread a worker (machines share this host's cores),
    no progress bar, the given heartbeat and grace; `extra` options follow."""
    return [
        sys.executable,
        "-m",
        "siamese_bench",
        "sweep",
        str(spec),
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--no-progress",
        "--heartbeat",
        str(heartbeat),
        "--grace",
        str(grace),
        *extra,
    ]


def in_netns(ns: str | None, cmd: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd] if ns else cmd


def join(ns: str | None, bundle: Path, folder: Path, timeout: float = 180) -> Path:
    """`siamese-bench services join BUNDLE --dir FOLDER/.services` run inside `ns` (it logs in to both servers from
    there); the env file it wrote. RuntimeError with the command's last lines when it fails."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = in_netns(
        ns, [sys.executable, "-m", "siamese_bench", "services", "join", str(bundle), "--dir", str(folder / ".services")]
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env(), cwd=folder)
    (folder / "join.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "logged in as" not in proc.stdout:
        raise RuntimeError(
            f"services join in {ns or 'this namespace'} failed ({proc.returncode}): "
            f"{(proc.stdout + proc.stderr)[-1500:]}"
        )
    return folder / ".services" / "env"


def secrets_of(services_dir: Path) -> dict[str, str]:
    """Every secret the services hold, by file name, and the app account's HTTP Basic header (base64)."""
    found = {n: (services_dir / n).read_text().strip() for n in SECRET_FILES if (services_dir / n).exists()}
    if "mlflow-app.password" in found:
        found["basic-auth header"] = base64.b64encode(f"siamese:{found['mlflow-app.password']}".encode()).decode()
    return found


def search_secrets(roots: Iterable[Path], secrets: dict[str, str]) -> dict:
    """Search every file under `roots` (but the secret holders by design and the tls/ folders) for every secret.
    Returns the number of files and bytes searched and the (file, secret name) pairs found."""
    files = sorted(
        {
            p
            for root in roots
            if Path(root).exists()
            for p in Path(root).rglob("*")
            if p.is_file()
            and not p.is_symlink()
            and p.name not in BY_DESIGN
            and not p.name.startswith("bundle")
            and p.parent.name != "tls"
        }
    )
    needles = {name: value.encode() for name, value in secrets.items() if value}
    found, size = [], 0
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        size += len(data)
        found += [(str(path), name) for name, needle in needles.items() if needle in data]
    return {"files": len(files), "bytes": size, "secrets": len(needles), "found": found}


def interrupt_on_signals() -> None:
    """SIGINT (also when started in the background, where it is ignored by default), SIGTERM and SIGHUP end the
    benchmark like Ctrl-C: its `finally` cleans up."""

    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def ignore_interrupts() -> None:
    """For the cleanup: a second Ctrl-C must not leave namespaces, servers or folders behind."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation between closest ranks, as numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
