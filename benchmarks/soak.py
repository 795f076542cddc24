"""Fault soak: one study run by several cooperating sweeps while faults are injected, then audited.

    python benchmarks/soak.py --storage postgresql            # 2 "machines", PostgreSQL + an MLflow server
    python benchmarks/soak.py --storage postgresql --secure   # the same through TLS and MLflow accounts
    python benchmarks/soak.py --storage journal               # 2 sweeps on one machine, journal + SQLite store

Each "machine" is a `siamese-bench sweep` process group; on PostgreSQL each runs under its own
hostname (a Linux UTS namespace, `unshare --uts`, as root) and in its own network namespace
joined to this host by a veth link (`ip netns`; `--no-netns` to skip), reaching the servers
only at their link address, as from another machine. So the cross-machine code path runs: a
dead machine is found by its missing heartbeats, not by its PID.

With --secure the servers are the project's services as `siamese-bench services up --host 0.0.0.0
--address GATEWAY...` secures them for other machines: PostgreSQL refuses every connection without
TLS, MLflow speaks HTTPS only and wants an account. Each machine gets its credentials as a worker
machine does: `siamese-bench services join BUNDLE`, run in its namespace (the bundle names its
link address), then its sweeps run with that env file sourced: PostgreSQL with
sslmode=verify-full and the services' CA, MLflow over HTTPS as the app account; no password on a
command line. Afterwards every file the soak wrote (logs, the servers' folders, PostgreSQL's data
folder, the MLflow artifacts) is searched for every password: none may be found.

At random moments, bounded in count and time, the soak injects:

- worker:   kill -9 of one training worker process;
- machine:  kill -9 of a whole sweep process group, restarted later;
- postgres: `pg_ctl restart -m immediate` of the database server (PostgreSQL only);
- mlflow:   a restart of the MLflow tracking server (PostgreSQL only).

Then it lets the study finish and audits: every grid point completed exactly once in Optuna,
exactly one FINISHED MLflow child run per point, no RUNNING trial or run left, one parent run,
and the time from each machine's death to the failing of its trials. Exit status 1 on any loss,
duplicate or dangling run. Results go to stdout and to OUT/soak-STORAGE.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from securelab import (
    clean_env,
    ignore_interrupts,
    interrupt_on_signals,
    join,
    search_secrets,
    secrets_of,
    sourced,
    sweep_command,
)

from siamese_bench.infra.forkserver import workers_of

REPO = Path(__file__).resolve().parent.parent
SPEC = """
name: soak
description: fault soak (benchmarks/soak.py)
base: {{dataset: digits, epochs: {epochs}}}
factors:
  head: [euclidean, abs-diff-dense]
  margin: [0.5, 1.0]
seeds: {seeds}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Machine:
    """One sweep process group standing for a machine."""

    name: str
    cmd: list[str]
    logs: Path
    distinct_host: bool
    netns: str | None = None  # its own network namespace: it reaches the servers over a veth link
    env: dict[str, str] | None = None  # the sweep's environment (default: this process's, without client settings)
    proc: subprocess.Popen | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"{self.name}-{self.starts}.log", "w")
        cmd = self.cmd
        if self.distinct_host:
            cmd = ["unshare", "--uts", "sh", "-c", f'hostname {self.name} && exec "$@"', "sh", *self.cmd]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.logs,
            env=self.env or clean_env(),
        )

    @property
    def state(self) -> str:
        """down (killed, not restarted yet), running, or exited (ended by itself)."""
        if self.proc is None:
            return "down"
        return "running" if self.proc.poll() is None else "exited"

    def alive(self) -> bool:
        return self.state == "running"

    def kill(self) -> int:
        """kill -9 the whole group; returns the sweep's PID (the trials' owner)."""
        pid = self.proc.pid
        os.killpg(pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        return pid

    def workers(self) -> list[psutil.Process]:
        return workers_of(self.proc.pid) if self.alive() else []


@dataclass
class Faults:
    log: list[dict] = field(default_factory=list)

    def add(self, kind: str, **info) -> None:
        entry = {"kind": kind, "at": time.time(), **info}
        self.log.append(entry)
        print(f"  [{time.strftime('%H:%M:%S')}] fault {len(self.log)}: {kind} {info}", flush=True)


class Network:
    """One network namespace per machine, joined to this host by a veth pair: 10.231.N.2 inside,
    10.231.N.1 here. Inside, 127.0.0.1 is the machine's own loopback, so the servers are reached
    only at the gateway address, as from another machine."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, index: int) -> tuple[str, str]:
        ns, host_if, ns_if = f"sbsoak{index}", f"sbsoak{index}h", f"sbsoak{index}n"
        gateway = f"10.231.{index}.1"
        self.remove_one(ns, host_if)
        for cmd in (
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
            ["ip", "link", "set", ns_if, "netns", ns],
            ["ip", "addr", "add", f"{gateway}/24", "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "netns", "exec", ns, "ip", "addr", "add", f"10.231.{index}.2/24", "dev", ns_if],
            ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
            ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        self.names.append(ns)
        return ns, gateway

    @staticmethod
    def remove_one(ns: str, host_if: str) -> None:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)

    def remove(self) -> None:
        for ns in self.names:
            self.remove_one(ns, ns + "h")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", choices=("postgresql", "journal"), default="postgresql")
    p.add_argument("--machines", type=int, default=2, help="cooperating sweep processes (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="training workers per machine (default %(default)s)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per cell; 4 cells (default %(default)s: 40 points)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per trial (default %(default)s)")
    p.add_argument("--faults", type=int, default=24, help="faults to inject (default %(default)s)")
    p.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(3.0, 9.0),
        metavar=("MIN", "MAX"),
        help="seconds between faults (default 3 9)",
    )
    p.add_argument("--heartbeat", type=int, default=2, help="sweep --heartbeat (default %(default)s)")
    p.add_argument("--grace", type=int, default=10, help="sweep --grace (default %(default)s)")
    p.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    p.add_argument("--seed", type=int, default=0, help="fault schedule seed")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "soak")
    p.add_argument("--keep", action="store_true", help="keep the work folder and servers' data")
    p.add_argument(
        "--secure",
        action="store_true",
        help="PostgreSQL: TLS and accounts, as `services up` sets them for other machines; each machine "
        "joins with a bundle and connects with sslmode=verify-full and the CA, MLflow over HTTPS as the "
        "app account",
    )
    p.add_argument(
        "--no-netns",
        action="store_true",
        help="PostgreSQL: keep the machines in this host's network (default: each machine in its own "
        "network namespace, reaching the servers over a veth link)",
    )
    args = p.parse_args()
    if args.secure and args.storage != "postgresql":
        print(
            "soak: --secure needs --storage postgresql (the journal and SQLite stores have no servers)", file=sys.stderr
        )
        return 2
    if args.storage == "postgresql" and os.geteuid() != 0:
        print("soak: distinct hostnames need root (unshare --uts); run as root", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    interrupt_on_signals()
    work = Path(tempfile.mkdtemp(prefix=f"siamese-soak-{args.storage}-"))
    os.chmod(work, 0o755)
    print(f"soak on {args.storage}: work folder {work}", flush=True)
    spec = work / "soak.yaml"
    spec.write_text(textwrap.dedent(SPEC.format(epochs=args.epochs, seeds=list(range(args.seeds)))))
    cluster = server = services = None
    machines: list[Machine] = []
    network = Network()
    use_netns = args.storage == "postgresql" and not args.no_netns
    started = time.time()
    try:
        links = [network.add(i) if use_netns else (None, None) for i in range(args.machines)]
        if args.storage == "postgresql":
            from siamese_bench.infra.services import MlflowServer, PostgresCluster, Services
            from siamese_bench.infra.services.bundle import write_bundle

            bind = "0.0.0.0" if use_netns else "127.0.0.1"
            if args.secure:  # the certificate names each machine's gateway: they verify it (verify-full)
                services = Services(
                    work / "services",
                    pg_port=free_port(),
                    mlflow_port=free_port(),
                    host=bind,
                    tls=True,
                    auth=True,
                    addresses=tuple(g for _, g in links if g),
                    say=lambda m: print(f"  services: {m}", flush=True),
                )
                services.up()
                cluster, server = services.pg, services.mlflow
                os.environ.update(services.client_env())  # this process (the audit) is a client too
            else:
                cluster = PostgresCluster(
                    services_dir=work / "services", port=free_port(), data_dir=work / "pg", host=bind
                )
                cluster.up()
                server = MlflowServer(
                    services_dir=work / "services", port=free_port(), backend_store_uri=cluster.url("mlflow"), host=bind
                )
                server.up()
            storage, tracking = cluster.url("optuna"), server.url
            kinds = ["worker", "machine", "postgres", "mlflow"]
        else:
            storage, tracking = str(work / "optuna.journal"), f"sqlite:///{work}/mlruns.db"
            kinds = ["worker", "machine"]

        def sweep_cmd(storage: str | None, tracking: str | None) -> list[str]:
            where = ["--storage", storage, "--tracking-uri", tracking] if storage else []  # else: the env file's
            return sweep_command(spec, args.workers, args.heartbeat, args.grace, *where, "--outage", "180")

        tmp = work / "tmp"  # the sweeps' temporary folders: what a killed one leaves is counted, then removed
        tmp.mkdir()
        for i, (ns, gateway) in enumerate(links):
            name = f"machine-{chr(97 + i)}"
            if args.secure:  # credentials as a worker machine gets them: a bundle, joined from the machine
                env_file = services.env_file
                if use_netns:
                    bundle = write_bundle(services, work / f"bundle-{name}.json", address=gateway)
                    env_file = join(ns, bundle, work / name)
                cmd = sourced(env_file, sweep_cmd(None, None))
            elif use_netns:  # the servers' addresses as this machine sees them
                cmd = sweep_cmd(
                    storage.replace("@127.0.0.1:", f"@{gateway}:"), tracking.replace("//127.0.0.1:", f"//{gateway}:")
                )
            else:
                cmd = sweep_cmd(storage, tracking)
            machines.append(Machine(name, cmd, work, args.storage == "postgresql", ns, env=clean_env(TMPDIR=str(tmp))))
        for m in machines:
            m.start()
        faults, deaths = Faults(), []
        pending_restart: dict[str, float] = {}
        next_fault = time.time() + rng.uniform(8, 12)  # let the sweeps start their workers first
        while time.time() - started < args.timeout:
            now = time.time()
            for name, when in list(pending_restart.items()):
                if now >= when:
                    next(m for m in machines if m.name == name).start()
                    del pending_restart[name]
            if not pending_restart and all(m.state == "exited" for m in machines):
                break
            if len(faults.log) < args.faults and now >= next_fault:
                next_fault = now + rng.uniform(*args.gap)
                alive = [m for m in machines if m.alive()]
                kind = rng.choice(kinds)
                if kind == "machine" and len(alive) >= 2:  # another machine must be left to notice
                    victim = rng.choice(alive)
                    pid = victim.kill()
                    # restart after more than the grace period half of the time, so the other
                    # machine's heartbeat check (not the restarted one's PID check) recovers
                    delay = rng.choice([rng.uniform(2, 5), args.grace + rng.uniform(4, 10)])
                    pending_restart[victim.name] = time.time() + delay
                    deaths.append(
                        {
                            "host": victim.name if victim.distinct_host else socket.gethostname(),
                            "pid": pid,
                            "at": time.time(),
                            "others_alive": len(alive) - 1,
                        }
                    )
                    faults.add("machine", name=victim.name, pid=pid, restart_in=round(delay, 1))
                elif kind == "worker" and alive:
                    workers = [w for m in alive for w in m.workers()]
                    if workers:
                        w = rng.choice(workers)
                        try:
                            w.kill()
                            faults.add("worker", pid=w.pid)
                        except psutil.Error:
                            pass
                elif kind == "postgres":
                    cluster.restart("immediate")
                    faults.add("postgres")
                elif kind == "mlflow":
                    server.restart()
                    faults.add("mlflow")
            if len(faults.log) >= args.faults:
                for m in machines:  # every machine back, so the study can finish
                    if m.state == "down" and m.name not in pending_restart:
                        m.start()
            time.sleep(0.5)
        else:
            print(f"soak: timed out after {args.timeout:.0f} s", file=sys.stderr)
        exit_codes = {m.name: m.proc.returncode for m in machines if m.state == "exited"}
        for m in machines:
            if m.alive():
                m.kill()
        try:
            audit = audit_study(storage, tracking, spec, deaths)
        except Exception as err:  # noqa: BLE001  e.g. no sweep got as far as creating the study
            print(f"soak: cannot audit: {type(err).__name__}: {err}", file=sys.stderr)
            print(f"  the sweeps' exit codes {exit_codes}; their logs end:", file=sys.stderr)
            for log in sorted(work.rglob("machine-*.log")):
                print(
                    f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr
                )
            return 1
        audit["machine_exit_codes"] = exit_codes
        logs = [log.read_text(errors="replace") for log in work.rglob("machine-*.log")]
        audit["machine_starts"] = len(logs)  # a machine that starts while a server restarts waits for it
        audit["machine_starts_that_waited"] = sum("does not answer" in text for text in logs)
        audit["parent_runs_deleted_as_duplicates"] = sum(text.count("a second parent run of study") for text in logs)
        audit["temp_dirs_left"] = sorted(p.name for p in tmp.glob("siamese-bench-*"))  # not torch's caches
        if services is not None:  # every file written, the servers' logs and data included: no password
            audit["secrets_search"] = search_secrets([work, cluster.data], secrets_of(services.services_dir))
            audit["ok"] = audit["ok"] and not audit["secrets_search"]["found"]
        audit.update(
            storage=args.storage,
            machines=args.machines,
            workers=args.workers,
            netns=use_netns,
            secure=args.secure,
            faults=dict(Counter(f["kind"] for f in faults.log)),
            faults_total=len(faults.log),
            seconds=round(time.time() - started, 1),
            grace=args.grace,
            heartbeat=args.heartbeat,
            command=" ".join(["python", "benchmarks/soak.py", *sys.argv[1:]]),
        )
        print_audit(audit)
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / f"soak-{args.storage}{'-secure' if args.secure else ''}.json"
        out.write_text(json.dumps(audit, indent=2, default=str))
        print(f"written: {out}")
        return 0 if audit["ok"] else 1
    finally:
        ignore_interrupts()
        for m in machines:  # an error or Ctrl-C on the way: no sweep outlives the soak
            if m.alive():
                m.kill()
        network.remove()
        if server is not None and not args.keep:
            server.stop()
        if cluster is not None and not args.keep:
            cluster.stop()
            cluster.destroy()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def audit_study(storage_url: str, tracking: str, spec_path: Path, deaths: list[dict]) -> dict:
    import optuna
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    from siamese_bench.sweep.recovery import fail_reason
    from siamese_bench.sweep.spec import load_spec
    from siamese_bench.sweep.storage import make_storage

    spec = load_spec(spec_path)
    points = [(c.id, s) for c in spec.cells() for s in spec.seeds]
    study = optuna.load_study(study_name=spec.name, storage=make_storage(storage_url))
    trials = study.get_trials(deepcopy=False)
    complete = Counter(
        (t.user_attrs.get("cell"), t.user_attrs.get("seed")) for t in trials if t.state == TrialState.COMPLETE
    )
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name(spec.name)
    runs = client.search_runs([exp.experiment_id], max_results=5000) if exp else []
    parents = [r for r in runs if r.data.tags.get("role") == "study"]
    children = [r for r in runs if r.data.tags.get("role") != "study"]
    finished = Counter(
        (r.data.tags.get("cell"), int(r.data.tags.get("seed", -1))) for r in children if r.info.status == "FINISHED"
    )
    linked_ok = sum(
        1
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.user_attrs.get("mlflow_run_id") in {r.info.run_id for r in children if r.info.status == "FINISHED"}
    )
    recoveries, paths, detail = [], Counter(), []
    for d in deaths:
        for t in trials:
            a = t.user_attrs
            if (
                a.get("host") == d["host"]
                and a.get("pid") == d["pid"]
                and t.state == TrialState.FAIL
                and t.datetime_complete is not None
                and "worker process died" not in fail_reason(t)
            ):
                seconds = t.datetime_complete.timestamp() - d["at"]  # naive datetimes are local time
                if seconds < 0:  # failed before the machine died (not by its death)
                    continue
                path = "heartbeat" if "heartbeat" in fail_reason(t) else "pid"
                recoveries.append(round(seconds, 1))
                paths[path] += 1
                detail.append(
                    {
                        "machine": d["host"],
                        "seconds": round(seconds, 1),
                        "found_by": path,
                        "other_machines_alive": d.get("others_alive"),
                    }
                )
    audit = {
        "points_expected": len(points),
        "completed_exactly_once": sum(complete[p] == 1 for p in points),
        "duplicated": sum(complete[p] > 1 for p in points),
        "lost": sum(complete[p] == 0 for p in points),
        "mlflow_finished_exactly_once": sum(finished[p] == 1 for p in points),
        "mlflow_finished_duplicated": sum(finished[p] > 1 for p in points),
        "complete_trials_linked_to_a_finished_run": linked_ok,
        "mlflow_running_left": sum(r.info.status == "RUNNING" for r in runs),
        "mlflow_parent_runs": len(parents),
        "mlflow_parent_status": [r.info.status for r in parents],
        "mlflow_child_runs": dict(Counter(r.info.status for r in children)),
        "finished_by_stack_size": dict(
            sorted(Counter(r.data.tags.get("stack_size", "?") for r in children if r.info.status == "FINISHED").items())
        ),
        "stacked_runs_cut_by_faults": sum(
            r.info.status != "FINISHED" and r.data.tags.get("stack_size", "1") not in ("1", "?") for r in children
        ),
        "trials_adopted_from_finished_runs": sum("adopted_run" in t.user_attrs for t in trials),
        "runs_superseded": sum("superseded_by" in r.data.tags for r in children),
        "optuna_running_left": sum(t.state == TrialState.RUNNING for t in trials),
        "optuna_waiting_left": sum(t.state == TrialState.WAITING for t in trials),
        "optuna_trials": dict(Counter(t.state.name for t in trials)),
        "failed_trials_by_reason": dict(Counter(fail_reason(t)[:60] for t in trials if t.state == TrialState.FAIL)),
        "machine_deaths": len(deaths),
        "recovery_seconds": recoveries,
        "recovered_by": dict(paths),
        "recoveries": detail,
        "recovery_median_s": statistics.median(recoveries) if recoveries else None,
        "recovery_max_s": max(recoveries) if recoveries else None,
        "audited_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    audit["ok"] = (
        audit["lost"] == 0
        and audit["duplicated"] == 0
        and audit["mlflow_running_left"] == 0
        and audit["optuna_running_left"] == 0
        and audit["mlflow_parent_runs"] == 1
        and audit["mlflow_finished_exactly_once"] == len(points)
        and audit["mlflow_parent_status"] == ["FINISHED"]
    )
    return audit


def print_audit(a: dict) -> None:
    where = "each in its own network namespace and hostname" if a.get("netns") else "one network"
    secure = ", TLS (verify-full) + MLflow accounts, credentials by services join" if a.get("secure") else ""
    print(
        f"\nsoak audit ({a['storage']}{secure}, {a['machines']} machines x {a['workers']} workers, {where}, "
        f"{a['seconds']} s)"
    )
    print(f"  faults injected: {a['faults_total']} {a['faults']}")
    print(
        f"  points expected {a['points_expected']}: completed exactly once {a['completed_exactly_once']}, "
        f"duplicated {a['duplicated']}, lost {a['lost']}"
    )
    print(
        f"  MLflow: FINISHED child run exactly once for {a['mlflow_finished_exactly_once']} points "
        f"(duplicated {a['mlflow_finished_duplicated']}), RUNNING left {a['mlflow_running_left']}, "
        f"parent runs {a['mlflow_parent_runs']} {a['mlflow_parent_status']}, child runs {a['mlflow_child_runs']}"
    )
    print(f"  Optuna: trials {a['optuna_trials']}, RUNNING left {a['optuna_running_left']}")
    print(
        f"  finished run before its trial was told: trials adopted from their runs "
        f"{a['trials_adopted_from_finished_runs']}, runs superseded by a re-run {a['runs_superseded']}"
    )
    print(
        f"  seed stacks: FINISHED runs by stack size {a['finished_by_stack_size']}; runs of a stack that a "
        f"fault cut short (each point re-run, counted above) {a['stacked_runs_cut_by_faults']}"
    )
    if "machine_starts" in a:
        print(
            f"  machine starts: {a['machine_starts']}, of which {a['machine_starts_that_waited']} began while a server "
            f"did not answer and waited for it; exit codes {a['machine_exit_codes']}; second parent runs deleted: "
            f"{a['parent_runs_deleted_as_duplicates']}"
        )
    print(f"  failed trials by reason: {a['failed_trials_by_reason']}")
    if a["recovery_seconds"]:
        print(
            f"  machine death -> its trials failed: median {a['recovery_median_s']} s, max {a['recovery_max_s']} s "
            f"over {len(a['recovery_seconds'])} trials ({a['recovered_by']}; grace {a['grace']} s, heartbeat "
            f"{a['heartbeat']} s)"
        )
        for r in a["recoveries"]:
            print(f"    {r['machine']}: {r['seconds']} s, found by {r['found_by']}")
    if a.get("temp_dirs_left"):
        print(
            f"  temporary folders the sweeps left (in the soak's TMPDIR, removed with it): "
            f"{len(a['temp_dirs_left'])} {a['temp_dirs_left'][:4]}"
        )
    if "secrets_search" in a:
        s = a["secrets_search"]
        print(
            f"  secrets: {s['secrets']} searched for in {s['files']} files ({s['bytes'] // 1024} KiB) the soak and "
            f"the servers wrote: {len(s['found'])} found {s['found'][:5] if s['found'] else ''}"
        )
    print("  RESULT: " + ("OK: 0 lost, 0 duplicated, 0 dangling" if a["ok"] else "FAILED"))


if __name__ == "__main__":
    sys.exit(main())
