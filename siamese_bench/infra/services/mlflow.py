"""The MLflow tracking server on the cluster's `mlflow` database, started detached and stopped by process group;
optionally over HTTPS (the services' certificate) and with MLflow's accounts (auth.py)."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from siamese_bench.infra.services.auth import MlflowAuth
from siamese_bench.infra.services.common import (
    DEFAULT_DIR,
    DEFAULT_HOST,
    DEFAULT_MLFLOW_PORT,
    ServiceError,
    ServiceStatus,
    client_host,
)
from siamese_bench.infra.services.process import group_alive, last_line, port_free, signal_group
from siamese_bench.infra.services.tls import Certificates


@dataclass
class MlflowServer:
    """`mlflow server` on the cluster's `mlflow` database, detached in its own session, artifacts proxied over HTTP.

    The backend URI (with the password) is passed as MLFLOW_BACKEND_STORE_URI, so it is not in the command line.
    With `tls` it serves HTTPS only (uvicorn's --ssl-certfile/--ssl-keyfile); with `auth` it runs MLflow's
    basic-auth app and makes the app account; `allowed_hosts` are the Host headers it answers (--allowed-hosts;
    empty: MLflow's default, loopback and private addresses).
    """

    services_dir: Path = DEFAULT_DIR
    port: int = DEFAULT_MLFLOW_PORT
    host: str = DEFAULT_HOST
    backend_store_uri: str = ""
    workers: int = 1
    start_timeout: float = 90
    tls: Certificates | None = None
    auth: MlflowAuth | None = None
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.services_dir = Path(self.services_dir).absolute()

    @property
    def url(self) -> str:
        host = client_host(self.host)
        return f"{'https' if self.tls else 'http'}://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def verify(self) -> str | bool:
        """What an HTTP client trusts: the services' CA with TLS."""
        return str(self.tls.ca_cert) if self.tls else True

    @property
    def options_file(self) -> Path:
        return self.services_dir / "mlflow.options"

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
        context = ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls else None
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2, context=context) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def up(self) -> None:
        """Start unless our server already runs with these options (restart when they changed); wait for /health;
        with `auth`, make the app account."""
        if self._pid() is not None and self._running_options() != self._command():
            self.stop()
        if self._pid() is not None:
            if not self.healthy():
                self._wait_healthy(None)
        else:
            self._start()
        if self.auth is not None:
            self.auth.ensure_app_account(self.url, self.verify)

    def _running_options(self) -> list[str] | None:
        try:
            return json.loads(self.options_file.read_text())
        except (OSError, ValueError):
            return None

    def _command(self) -> list[str]:
        """`mlflow server ...`: paths and names only, no secret."""
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.auth is not None:
            cmd += ["--app-name", "basic-auth"]
        if self.tls is not None:
            cmd += ["--uvicorn-opts", f"--ssl-certfile {self.tls.server_cert} --ssl-keyfile {self.tls.server_key}"]
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", ",".join(self.allowed_hosts)]
        return cmd

    def _start(self) -> None:
        if not self.backend_store_uri:
            raise ServiceError("MlflowServer needs backend_store_uri (the postgresql:// URL of database mlflow)")
        if not port_free(self.host, self.port):
            raise ServiceError(
                f"port {self.port} on {self.host} is already in use by another program: "
                "choose another with --mlflow-port N"
            )
        self._wait_healthy(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.services_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts_dir.mkdir(exist_ok=True)
        # a client's settings (a sourced env file) are not the server's; MLFLOW_AUTH_* would override its config
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "MLFLOW_AUTH_"))}
        env["MLFLOW_BACKEND_STORE_URI"] = self.backend_store_uri  # not --backend-store-uri: `ps` would show it
        # MLflow 3.x's job runner (GenAI scorers, trace archival) adds 8 processes and ~2 GB; tracking needs none
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # offline machines: no upload attempts
        if self.auth is not None:
            env.update(self.auth.server_env(self.backend_store_uri))
        cmd = self._command()
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.services_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self.options_file.write_text(json.dumps(cmd) + "\n")
        return proc

    def _wait_healthy(self, proc: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self.healthy():
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"MLflow server exited with code {proc.returncode} while starting: see "
                    f"{self.log_file} (last line: {last_line(self.log_file)})"
                )
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"MLflow server did not answer {self.url}/health within {self.start_timeout:.0f} s:"
                    f" see {self.log_file}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the server's process group (the CLI and its uvicorn child), SIGKILL what is left after `grace`."""
        pid = self._pid()
        if pid is not None:
            signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if group_alive(pid):
                signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.options_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.up()

    def status(self) -> ServiceStatus:
        pid = self._pid()
        detail = "" if pid is None or self.healthy() else "not answering /health"
        return ServiceStatus("mlflow", pid is not None, pid, self.url, detail)
