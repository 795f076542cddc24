"""Load: many machines on one study through authentication and TLS, measured, then audited.

    python benchmarks/load.py                 # 8 machines x 2 workers, 16 cells x 4 seeds of digits, 1 epoch
    python benchmarks/load.py --seeds 8       # 128 points

As root, on one host: the project's services (`Services`, as `siamese-bench services up --host ADDRESS` starts them:
TLS, MLflow accounts) listen on a bridge address, 10.233.0.1; each "machine" is a network namespace on that bridge
(10.233.0.N) with its own hostname (`unshare --uts`). Each machine runs `siamese-bench services join BUNDLE` (the
bundle `services bundle` wrote) and then, with the env file it wrote sourced, one `siamese-bench sweep` of one
shared spec with `--workers 2 --threads 1`; all machines start at once. One more namespace, joined the same way,
makes timed MLflow calls all along (benchmarks/load_probe.py).

Measured:
- claims per second over the run (the points claimed, over the sweeps' wall time);
- claim latency: how long a sweep's claim of a point held a study-lock session, from PostgreSQL's log (the sweep
  has no timing hook, so it runs unchanged): for the app role only, every statement with its duration
  (log_min_duration_statement = 0) and every disconnection with its session time. A claim is a session of the
  study's advisory lock (siamese_bench/sweep/locks.py: its own connection, opened per use) during which the same
  machine inserted a trial; its latency is the session's time: TLS handshake, SCRAM login, waiting for the lock,
  the claim's reads and writes under it, the unlock. The wait for the lock is the pg_advisory_lock statement's
  duration, reported apart;
- logging latency: every MLflow call of the probe machine (create run, log_batch, tags, artifact upload, end run)
  through HTTPS and the app account, during the load and, for comparison, alone before it.

Then audited as benchmarks/soak.py does: every point COMPLETE exactly once in Optuna, one FINISHED MLflow run per
point, none RUNNING, one parent run FINISHED, each sweep's exit code 0; and every file the run wrote (machines' logs
and folders, the servers' folders, logs and PostgreSQL's data folder, the MLflow artifacts) searched for every
password, the Flask key and the Basic header: none may be found. Namespaces, links, servers and the work folder are
removed afterwards, also on failure or Ctrl-C. Results go to stdout and OUT/load.json; exit status 1 when the audit
fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path

from securelab import (
    clean_env,
    ignore_interrupts,
    in_netns,
    interrupt_on_signals,
    join,
    percentile,
    search_secrets,
    secrets_of,
    sourced,
    sweep_command,
)

REPO = Path(__file__).resolve().parent.parent
STUDY = "load"
SPEC = """
name: {name}
description: load benchmark (benchmarks/load.py), short trials
base: {{dataset: digits, epochs: {epochs}}}
factors:
  head: [euclidean, l1, abs-diff-dense, square-diff-dense]
  margin: [0.5, 1.0, 1.5, 2.0]
seeds: {seeds}
"""
NET = "10.233.0"  # the bridge's /24: the servers at .1, machine i at .(i + 2)
PREFIX = "sbload"
LOG_LINE = re.compile(r"^(\d+\.\d+) \[(\d+)\] (\S*) +(LOG|ERROR|FATAL|WARNING|DETAIL|STATEMENT|HINT|CONTEXT):  (.*)$")
SESSION_TIME = re.compile(r"disconnection: session time: (\d+):(\d+):(\d+\.\d+) user=(\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


class Lan:
    """A bridge on this host (the servers' address) and one network namespace per machine, each joined to the
    bridge by a veth pair: like machines on one switch. Inside a namespace 127.0.0.1 is its own loopback."""

    def __init__(self) -> None:
        self.bridge, self.server = f"{PREFIX}br", f"{NET}.1"
        self.names: list[str] = []

    def up(self, count: int) -> list[str]:
        self.down(count)  # what a killed earlier run may have left
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.names.append(self.bridge)
        run(["ip", "addr", "add", f"{self.server}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i in range(count):
            ns, host_if, ns_if = f"{PREFIX}{i}", f"{PREFIX}{i}h", f"{PREFIX}{i}n"
            self.names.append(ns)
            for cmd in (
                ["ip", "netns", "add", ns],
                ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                ["ip", "link", "set", host_if, "master", self.bridge],
                ["ip", "link", "set", host_if, "up"],
                ["ip", "link", "set", ns_if, "netns", ns],
                ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{NET}.{i + 2}/24", "dev", ns_if],
                ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
                ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
            ):
                run(cmd)
        return [f"{PREFIX}{i}" for i in range(count)]

    def down(self, count: int | None = None) -> None:
        count = count if count is not None else sum(n != self.bridge for n in self.names)
        for i in range(count):
            subprocess.run(["ip", "netns", "del", f"{PREFIX}{i}"], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{PREFIX}{i}h"], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        self.names.clear()


def study_lock_key(study: str) -> int:
    """The advisory lock key of siamese_bench/sweep/locks.py's study_lock (same formula)."""
    return int.from_bytes(hashlib.sha256(f"siamese-bench/study/{study}".encode()).digest()[:8], "big", signed=True)


def log_statements(services) -> None:
    """PostgreSQL logs, for the app role, every statement with its duration and every session's end with its
    time; each line starts with the epoch time in ms, the backend's pid and the client's address."""
    services.pg.psql(
        "ALTER SYSTEM SET log_line_prefix = '%n [%p] %h ';\n"
        "ALTER SYSTEM SET log_disconnections = on;\n"
        f"ALTER ROLE {services.pg.app_user} IN DATABASE optuna SET log_min_duration_statement = 0;\n"
        "SELECT pg_reload_conf();\n",
        what="switching statement logging on",
    )


def lock_sessions(log_file: Path, study: str) -> tuple[list[dict], dict]:
    """The study-lock sessions in PostgreSQL's log, each marked a claim when its machine inserted a trial while it
    held the lock. Returns the sessions and counts for a sanity check."""
    key = study_lock_key(study)
    lock_re = re.compile(rf"statement: SELECT pg_advisory_lock\({key}\)")
    unlock_re = re.compile(rf"statement: SELECT pg_advisory_unlock\({key}\)")
    duration_re = re.compile(r"duration: ([\d.]+) ms")
    open_sessions: dict[str, dict] = {}
    sessions: list[dict] = []
    inserts: dict[str, list[float]] = defaultdict(list)
    lines = 0
    for line in log_file.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        lines += 1
        t, pid, host, _level, text = float(m[1]), m[2], m[3], m[4], m[5]
        if lock_re.search(text):
            open_sessions[pid] = {"host": host, "acquired": t, "wait_ms": float(duration_re.search(text)[1])}
        elif unlock_re.search(text) and pid in open_sessions:
            open_sessions[pid]["released"] = t
        elif "statement: INSERT INTO trials " in text:
            inserts[host].append(t)
        elif (s := SESSION_TIME.search(text)) and pid in open_sessions:
            session = open_sessions.pop(pid)
            seconds = int(s[1]) * 3600 + int(s[2]) * 60 + float(s[3])
            session.update(end=t, start=t - seconds, ms=seconds * 1000)
            if "released" in session:
                sessions.append(session)
    seen: Counter[str] = Counter()
    for session in sorted(sessions, key=lambda s: s["start"]):
        session["claim"] = any(session["acquired"] <= t <= session["released"] for t in inserts[session["host"]])
        session["held_ms"] = (session["released"] - session["acquired"]) * 1000
        # a sweep's first three: open the study, start it (recovery, the MLflow parent run), count the points
        session["start_of_sweep"] = seen[session["host"]] < 3
        seen[session["host"]] += 1
    return sessions, {"log_lines": lines, "trial_inserts": sum(map(len, inserts.values()))}


def trial_states(url: str, study: str) -> dict[str, int]:
    import psycopg2

    with closing(psycopg2.connect(url, connect_timeout=5)) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trials') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(
            "SELECT t.state::text, count(*) FROM trials t JOIN studies s USING (study_id) "
            "WHERE s.study_name = %s GROUP BY t.state",
            (study,),
        )
        return dict(cur.fetchall())


def spread(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def probe_figures(path: Path, started: float, ended: float) -> dict:
    """The probe's call timings: during the load (all calls, and by kind), and alone before it."""
    calls = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    during = [c for c in calls if started <= c["t"] <= ended]
    before = [c for c in calls if c["t"] < started]
    figures = {
        "during": spread([c["ms"] for c in during if "ms" in c]),
        "before": spread([c["ms"] for c in before if "ms" in c]),
        "errors": [c for c in calls if "error" in c],
        "by_call": {},
    }
    for kind in sorted({c["call"] for c in during}):
        figures["by_call"][kind] = spread([c["ms"] for c in during if c["call"] == kind and "ms" in c])
    return figures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machines", type=int, default=8, help="machines (network namespaces) (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="sweep --workers on each machine (default %(default)s)")
    p.add_argument("--seeds", type=int, default=4, help="seeds per cell; 16 cells (default %(default)s: 64 points)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per trial (default %(default)s)")
    p.add_argument("--heartbeat", type=int, default=10, help="sweep --heartbeat (default %(default)s)")
    p.add_argument("--grace", type=int, default=60, help="sweep --grace (default %(default)s)")
    p.add_argument(
        "--probe-interval",
        type=float,
        default=0.2,
        help="seconds between the probe machine's MLflow calls (default %(default)s)",
    )
    p.add_argument(
        "--baseline",
        type=float,
        default=15,
        help="seconds the probe runs alone before the sweeps start (default %(default)s)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "load")
    p.add_argument("--keep", action="store_true", help="keep the work folder and PostgreSQL's data (servers stop)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("load: network namespaces and hostnames need root", file=sys.stderr)
        return 2
    if shutil.which("ip") is None:
        print("load: `ip` not found (Debian package iproute2)", file=sys.stderr)
        return 2
    from siamese_bench.infra.services import Services, find_pg_bin

    find_pg_bin()  # a missing PostgreSQL: one line, before anything is made
    interrupt_on_signals()
    work = Path(tempfile.mkdtemp(prefix="siamese-load-"))
    os.chmod(work, 0o755)
    print(f"load: work folder {work}", flush=True)
    lan, services, procs = Lan(), None, []
    notes: list[str] = []
    try:
        names = lan.up(args.machines + 1)
        machine_ns, probe_ns = names[:-1], names[-1]
        services = Services(
            work / "services", pg_port=free_port(), mlflow_port=free_port(), host=lan.server, say=notes.append
        )
        t0 = time.time()
        services.up()
        up_seconds = time.time() - t0
        log_statements(services)
        print(
            f"servers up in {up_seconds:.1f} s on {lan.server} (PostgreSQL {services.pg_port}, MLflow "
            f"{services.mlflow_port}; TLS {services.tls}, accounts {services.auth})",
            flush=True,
        )
        bundle = work / "bundle.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "siamese_bench",
                "services",
                "bundle",
                "--dir",
                str(services.services_dir),
                "--out",
                str(bundle),
            ],
            check=True,
            capture_output=True,
            env=clean_env(),
            cwd=work,
        )
        t0 = time.time()
        envs = {ns: join(ns, bundle, work / ns) for ns in names}
        print(
            f"{len(names)} machines joined ({time.time() - t0:.1f} s): each logged in to both servers from its "
            "namespace",
            flush=True,
        )
        spec = work / "load.yaml"
        spec.write_text(textwrap.dedent(SPEC.format(name=STUDY, epochs=args.epochs, seeds=list(range(args.seeds)))))
        points = 16 * args.seeds

        probe_dir = work / probe_ns
        probe_out, stop = probe_dir / "calls.jsonl", probe_dir / "stop"
        probe_cmd = in_netns(
            probe_ns,
            sourced(
                envs[probe_ns],
                [
                    sys.executable,
                    str(Path(__file__).with_name("load_probe.py")),
                    "--out",
                    str(probe_out),
                    "--stop",
                    str(stop),
                    "--interval",
                    str(args.probe_interval),
                ],
            ),
        )
        probe_log = (probe_dir / "probe.log").open("w")
        probe = subprocess.Popen(
            probe_cmd,
            stdout=probe_log,
            stderr=subprocess.STDOUT,
            env=clean_env(TMPDIR=str(probe_dir)),
            start_new_session=True,
            cwd=probe_dir,
        )
        procs.append(probe)
        deadline = time.time() + 120
        while not (probe_out.exists() and probe_out.stat().st_size) and probe.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        if probe.poll() is not None or not probe_out.exists():
            raise RuntimeError(f"the logging probe did not start: {(probe_dir / 'probe.log').read_text()[-1500:]}")
        time.sleep(args.baseline)

        sweeps = {}
        started = time.time()
        for i, ns in enumerate(machine_ns):
            name = f"machine-{i + 1}"
            cmd = sweep_command(spec, args.workers, args.heartbeat, args.grace)
            cmd = in_netns(
                ns, ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *sourced(envs[ns], cmd)]
            )
            log = (work / ns / "sweep.log").open("w")
            tmp = work / ns / "tmp"  # the sweep's temporary folders, counted afterwards
            tmp.mkdir()
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(TMPDIR=str(tmp)),
                start_new_session=True,
                cwd=work / ns,
            )
            procs.append(proc)
            sweeps[name] = proc
        print(
            f"{len(sweeps)} sweeps started, {args.workers} workers each, {points} points "
            f"(16 cells x {args.seeds} seeds, digits, {args.epochs} epoch(s))",
            flush=True,
        )
        host_url = services.pg.url("optuna", driver=None)
        last_report = 0.0
        while any(proc.poll() is None for proc in sweeps.values()):
            if time.time() - started > args.timeout:
                raise RuntimeError(f"the sweeps did not finish within {args.timeout:.0f} s")
            if time.time() - last_report >= 20:
                last_report = time.time()
                try:
                    states = trial_states(host_url, STUDY)
                except Exception as err:  # noqa: BLE001  (progress only)
                    states = {"?": type(err).__name__}
                print(
                    f"  [{time.time() - started:5.0f} s] trials {states}, sweeps running "
                    f"{sum(proc.poll() is None for proc in sweeps.values())}",
                    flush=True,
                )
            time.sleep(1)
        ended = time.time()
        stop.touch()
        try:
            probe.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(probe.pid, signal.SIGKILL)
        exit_codes = {name: proc.returncode for name, proc in sweeps.items()}
        wall = ended - started
        print(f"all sweeps ended after {wall:.1f} s; exit codes {set(exit_codes.values())}", flush=True)

        sessions, parsed = lock_sessions(services.pg.log_file, STUDY)
        claims = [s for s in sessions if s["claim"]]
        os.environ.update(services.client_env())  # the audit reads as the app account, through TLS, from this host
        from soak import audit_study

        audit = audit_study(services.pg.url("optuna"), services.mlflow.url, spec, [])
        probe_runs = probe_run_states(services.mlflow.url)
        trials_by_host = machines_of_trials(services.pg.url("optuna"))
        searched = search_secrets([work, services.pg.data], secrets_of(services.services_dir))
        figures = {
            "machines": args.machines,
            "workers_per_machine": args.workers,
            "points": points,
            "epochs": args.epochs,
            "cores": os.cpu_count(),
            "servers_up_s": round(up_seconds, 1),
            "wall_s": round(wall, 1),
            "sweep_exit_codes": exit_codes,
            "claims": len(claims),
            "claims_per_s": len(claims) / wall,
            "claim_ms": spread([s["ms"] for s in claims]),
            "claim_wait_ms": spread([s["wait_ms"] for s in claims]),
            "claim_held_ms": spread([s["held_ms"] for s in claims]),
            "lock_sessions": len(sessions),
            "lock_sessions_per_s": len(sessions) / wall,
            "lock_busy_fraction": sum(s["held_ms"] for s in sessions) / 1000 / wall,
            "start_lock_held_ms": spread([s["held_ms"] for s in sessions if s["start_of_sweep"]]),
            "other_lock_held_ms": spread(
                [s["held_ms"] for s in sessions if not s["claim"] and not s["start_of_sweep"]]
            ),
            "mlflow_auth_cache_s": services.mlflow.auth.cache_seconds if services.mlflow.auth else None,
            "log_parse": parsed,
            "logging_ms": probe_figures(probe_out, started, ended),
            "probe_runs": probe_runs,
            "points_by_machine": trials_by_host,
            "secrets_search": searched,
            "temp_dirs_left": sorted(
                str(p.relative_to(work)) for ns in machine_ns for p in (work / ns / "tmp").glob("siamese-bench-*")
            ),
            "audit": audit,
            "command": " ".join(["python", "benchmarks/load.py", *sys.argv[1:]]),
        }
        figures["ok"] = bool(
            audit["ok"]
            and all(code == 0 for code in exit_codes.values())
            and not searched["found"]
            and not figures["temp_dirs_left"]
            and figures["claims"] == sum(audit["optuna_trials"].values()) == parsed["trial_inserts"]
            and not figures["logging_ms"]["errors"]
            and set(probe_runs) <= {"FINISHED"}
        )
        print_figures(figures)
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out / "load.json"
        out.write_text(json.dumps(figures, indent=2, default=str))
        print(f"written: {out}")
        return 0 if figures["ok"] else 1
    finally:
        ignore_interrupts()
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        lan.down(args.machines + 1)
        if services is not None:
            services.down()
            if not args.keep:
                services.pg.destroy()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}" + (f" and {services.pg.data}" if services is not None else ""))


def probe_run_states(tracking: str) -> dict[str, int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("load-probe")
    runs = client.search_runs([exp.experiment_id], max_results=5000) if exp else []
    return dict(Counter(r.info.status for r in runs))


def machines_of_trials(storage: str) -> dict[str, int]:
    """COMPLETE trials by the hostname that claimed them."""
    import optuna
    from optuna.trial import TrialState

    from siamese_bench.sweep.storage import make_storage

    study = optuna.load_study(study_name=STUDY, storage=make_storage(storage))
    hosts = Counter(
        t.user_attrs.get("host", "?") for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE
    )
    return dict(sorted(hosts.items()))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def print_figures(f: dict) -> None:
    a, log = f["audit"], f["logging_ms"]
    print(
        f"\nload: {f['machines']} machines (network namespaces on one {f['cores']}-core host) x "
        f"{f['workers_per_machine']} workers, one study of {f['points']} points (16 cells x "
        f"{f['points'] // 16} seeds, digits, {f['epochs']} epoch(s)); PostgreSQL and MLflow with TLS and accounts"
        + (f"; MLflow's credential cache {f['mlflow_auth_cache_s']} s" if f["mlflow_auth_cache_s"] else "")
    )
    rows = [
        ("wall time, first sweep start to last sweep exit", f"{f['wall_s']:.1f} s"),
        ("points claimed (trials created)", f"{f['claims']}"),
        ("claims per second over the run", f"{f['claims_per_s']:.2f}"),
        (
            "claim latency p50 / p99 / max (lock session: login, wait, claim, unlock)",
            f"{ms(f['claim_ms']['p50'])} / {ms(f['claim_ms']['p99'])} / {ms(f['claim_ms']['max'])} ms",
        ),
        (
            "  of which waiting for the study lock p50 / p99",
            f"{ms(f['claim_wait_ms']['p50'])} / {ms(f['claim_wait_ms']['p99'])} ms",
        ),
        ("  lock held p50 / p99", f"{ms(f['claim_held_ms']['p50'])} / {ms(f['claim_held_ms']['p99'])} ms"),
        (
            "study-lock sessions in all",
            f"{f['lock_sessions']} ({f['lock_sessions_per_s']:.2f}/s; the lock held "
            f"{f['lock_busy_fraction']:.0%} of the wall time)",
        ),
        (
            f"  a sweep's start (open, start: MLflow parent run, count; {f['start_lock_held_ms']['n']}), "
            "held p50 / max",
            f"{ms(f['start_lock_held_ms']['p50'])} / {ms(f['start_lock_held_ms']['max'])} ms",
        ),
        (
            f"  others (empty claims, dead-sweep checks, ends; {f['other_lock_held_ms']['n']}), held p50 / p99",
            f"{ms(f['other_lock_held_ms']['p50'])} / {ms(f['other_lock_held_ms']['p99'])} ms",
        ),
        (
            f"MLflow call latency during the load, p50 / p99 / max ({log['during']['n']} calls)",
            f"{ms(log['during']['p50'])} / {ms(log['during']['p99'])} / {ms(log['during']['max'])} ms",
        ),
        *[
            (f"  {kind} ({s['n']})", f"{ms(s['p50'])} / {ms(s['p99'])} / {ms(s['max'])} ms")
            for kind, s in log["by_call"].items()
        ],
        (
            f"MLflow call latency alone, before the load ({log['before']['n']} calls)",
            f"{ms(log['before']['p50'])} / {ms(log['before']['p99'])} / {ms(log['before']['max'])} ms",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for label, value in rows:
        print(f"| {label:<{width}} | {value} |")
    s = f["secrets_search"]
    print(
        f"\naudit: points {a['points_expected']}: COMPLETE exactly once {a['completed_exactly_once']}, duplicated "
        f"{a['duplicated']}, lost {a['lost']}; MLflow FINISHED exactly once {a['mlflow_finished_exactly_once']}, "
        f"RUNNING left {a['mlflow_running_left']} (Optuna {a['optuna_running_left']}), parent "
        f"{a['mlflow_parent_status']}; Optuna trials {a['optuna_trials']}"
    )
    print(
        f"  points by machine: {f['points_by_machine']}; sweep exit codes "
        f"{sorted(set(f['sweep_exit_codes'].values()))}; probe runs {f['probe_runs']}, "
        f"probe errors {len(log['errors'])}"
    )
    print(
        f"  secrets: {s['secrets']} searched for in {s['files']} files ({s['bytes'] // 1024} KiB) the run wrote: "
        f"{len(s['found'])} found {s['found'][:5] if s['found'] else ''}"
    )
    print(f"  temporary folders the sweeps left: {len(f['temp_dirs_left'])}; log parse: {f['log_parse']}")
    print(f"  command: {f['command']}")
    print("  RESULT: " + ("OK: every point exactly once, none dangling, no password written" if f["ok"] else "FAILED"))


if __name__ == "__main__":
    sys.exit(main())
