"""A one-node SLURM cluster in a folder of its own (munged, slurmctld, slurmd from Debian's slurm-wlm and munge), so
the SLURM launcher is tested against a real scheduler, and a user without a cluster can try it on one machine.

Nothing is written outside the folder: its own munge key and socket, slurm.conf, state and spool, logs and PID
files. Clients find it through SLURM_CONF (`env()`); `sbatch`, `squeue` and `scancel` then talk to it. The daemons
run as root, as slurmd must to start jobs; a finished job stays listed by squeue for MinJobAge (10 minutes), which
is what the launcher's job states read when the cluster keeps no accounting.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from siamese_bench.infra.services.common import ServiceError, say
from siamese_bench.infra.services.process import as_root, last_line, port_free

MISSING_SLURM = "install Debian's slurmctld, slurmd, slurm-client and munge (apt-get install slurm-wlm munge)"
SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
DEFAULT_SLURM_DIR = Path(".services/slurm")
DEFAULT_CTLD_PORT = 16817
DEFAULT_NODE_PORT = 16818


def _find(name: str) -> str | None:
    """A SLURM or munge program on PATH, or in /usr/sbin and /sbin where Debian puts the daemons."""
    return shutil.which(name, path=os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin")))


def missing_slurm_tools() -> list[str]:
    """The daemons and commands a local cluster needs that are not on PATH (nor in /usr/sbin)."""
    return [tool for tool in SLURM_TOOLS if _find(tool) is None]


def _tool(name: str) -> str:
    found = _find(name)
    if found is None:
        raise ServiceError(f"{name} not found: {MISSING_SLURM}")
    return found


@dataclass
class SlurmCluster:
    """One controller and one node (this machine, `cpus` job slots) in `folder`; `up` is idempotent."""

    folder: Path = DEFAULT_SLURM_DIR
    cpus: int = 2
    ctld_port: int = DEFAULT_CTLD_PORT
    node_port: int = DEFAULT_NODE_PORT
    kill_wait: int = 5  # seconds between a job's SIGTERM and its SIGKILL (cancel, time limit)
    partition: str = "debug"
    say: Callable[[str], None] = field(default=say, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).absolute()
        self.node = socket.gethostname().split(".")[0]

    # -- paths -------------------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def munge_dir(self) -> Path:
        return self.folder / "munge"

    @property
    def socket(self) -> Path:
        return self.munge_dir / "munge.socket"

    @property
    def state_dir(self) -> Path:
        """slurmctld's StateSaveLocation: it keeps every job's script and environment while the job is known."""
        return self.folder / "state"

    @property
    def spool_dir(self) -> Path:
        return self.folder / "spool"

    @property
    def log_dir(self) -> Path:
        return self.folder / "log"

    def pid_file(self, daemon: str) -> Path:
        return self.folder / f"{daemon}.pid"

    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, scancel, submitit) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> None:
        """Start munged, slurmctld and slurmd (those not running), then wait for the node to take jobs."""
        missing = missing_slurm_tools()
        if missing:
            raise ServiceError(f"{', '.join(missing)} not found: {MISSING_SLURM}")
        if not as_root():
            raise ServiceError("a local SLURM cluster runs as root (slurmd starts each job as its user): run as root")
        for sub in (self.munge_dir, self.state_dir, self.spool_dir, self.log_dir):
            sub.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        self.munge_dir.chmod(0o700)  # munged refuses a key or socket folder others can write to
        self.conf.write_text(self.conf_text())
        if not self.running("munged"):
            self._start_munge()
        for daemon, port in (("slurmctld", self.ctld_port), ("slurmd", self.node_port)):
            if self.running(daemon):
                continue
            if not port_free("127.0.0.1", port):
                raise ServiceError(f"{daemon}: port {port} is taken; choose another (--slurm-port)")
            cmd = [_tool(daemon), "-f", str(self.conf)] + (["-N", self.node] if daemon == "slurmd" else [])
            self._run(cmd, daemon)
        self._wait_for_node()
        self.say(f"slurm: one node ({self.node}, {self.cpus} CPUs), partition {self.partition}; SLURM_CONF={self.conf}")

    def down(self) -> None:
        """Cancel this cluster's jobs, then stop slurmd, slurmctld and munged; the folder (state, logs) stays.

        Each daemon is followed by the PID read before it was signalled: slurmd removes its PID file as it starts to
        shut down, and then waits for the job steps still running."""
        if self.running("slurmctld"):
            env = {**os.environ, **self.env()}
            subprocess.run([_tool("scancel"), "--full", "--user", str(os.getuid())], env=env, capture_output=True)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                queue = subprocess.run([_tool("squeue"), "-h"], env=env, capture_output=True, text=True, timeout=30)
                if queue.returncode != 0 or not queue.stdout.strip():
                    break
                time.sleep(0.5)
        for daemon in ("slurmd", "slurmctld", "munged"):
            pid = self.pid(daemon) if self.running(daemon) else None
            if pid is None:
                continue
            try:
                process = psutil.Process(pid)
                process.terminate()
                process.wait(15)
            except psutil.TimeoutExpired:
                process.kill()
            except psutil.Error:
                continue

    def pid(self, daemon: str) -> int | None:
        try:
            return int(self.pid_file(daemon).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self, daemon: str) -> bool:
        pid = self.pid(daemon)
        if pid is None:
            return False
        try:
            proc = psutil.Process(pid)
            return proc.status() != psutil.STATUS_ZOMBIE and daemon in proc.name()
        except psutil.Error:
            return False

    # -- pieces ------------------------------------------------------------------------------
    def conf_text(self) -> str:
        memory_mb = int(psutil.virtual_memory().total / 2**20 * 0.9)
        auth = f"socket={self.socket},cred_expire=10"  # also how long a requeued job waits (default 120 s)
        lines = {
            "ClusterName": "siamesebench",
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": self.ctld_port,
            "SlurmdPort": self.node_port,
            "SlurmUser": "root",
            "AuthType": "auth/munge",
            "AuthInfo": auth,
            "CredType": "cred/munge",
            "StateSaveLocation": self.state_dir,
            "SlurmdSpoolDir": self.spool_dir,
            "SlurmctldPidFile": self.pid_file("slurmctld"),
            "SlurmdPidFile": self.pid_file("slurmd"),
            "SlurmctldLogFile": self.log_dir / "slurmctld.log",
            "SlurmdLogFile": self.log_dir / "slurmd.log",
            "ProctrackType": "proctrack/linuxproc",  # no cgroups in containers; tracks a job's process tree
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_CPU",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none",
            "MpiDefault": "none",
            "ReturnToService": 2,
            "KillWait": self.kill_wait,
            "MinJobAge": 600,
            "MailProg": "/bin/true",
            "SchedulerParameters": "sched_interval=2",  # a requeued job starts within seconds once eligible
            "SlurmctldTimeout": 30,
            "SlurmdTimeout": 60,
        }
        text = [f"# written by siamese_bench.infra.services.slurm for {self.folder}"]
        text += [f"{k}={v}" for k, v in lines.items()]
        text.append(f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory_mb} State=UNKNOWN")
        text.append(f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP")
        return "\n".join(text) + "\n"

    def _start_munge(self) -> None:
        key = self.munge_dir / "munge.key"
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(1024))
        cmd = [
            _tool("munged"),
            "--force",
            f"--key-file={key}",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file('munged')}",
            f"--log-file={self.log_dir / 'munged.log'}",
            f"--seed-file={self.munge_dir / 'munged.seed'}",
        ]
        self._run(cmd, "munged")

    def _run(self, cmd: list[str], daemon: str) -> None:
        """Start a daemon (it forks into the background) and wait for its PID file."""
        env = {**os.environ, **self.env()}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd="/")
        deadline = time.monotonic() + 20
        while not self.running(daemon) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.returncode != 0 or not self.running(daemon):
            detail = (proc.stderr.strip() or last_line(self.log_dir / f"{daemon}.log") or "no output").splitlines()
            raise ServiceError(f"{daemon} did not start (exit {proc.returncode}): {detail[-1]}")

    def _wait_for_node(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            proc = subprocess.run(
                [_tool("sinfo"), "-h", "-N", "-o", "%T"],
                env={**os.environ, **self.env()},
                capture_output=True,
                text=True,
                timeout=30,
            )
            state = proc.stdout.strip() or proc.stderr.strip()
            if proc.returncode == 0 and state.rstrip("*") in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise ServiceError(
            f"the SLURM node did not come up within {timeout:.0f} s (sinfo: {state or 'no answer'}; "
            f"see {self.log_dir / 'slurmd.log'})"
        )
