"""`siamese-bench services up|down|status|env|bundle|join|backup|restore`: the project's own PostgreSQL cluster and
MLflow server, secured for several machines, and their backups.

Loads no torch, and imports the services only when this subcommand runs, so `siamese-bench services status` is fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DESCRIPTION = (
    "Start, stop or inspect the project's own PostgreSQL cluster (database optuna owned by role siamese, "
    "database mlflow owned by role mlflow) and an MLflow tracking server on it; hand another machine the "
    "one file it needs; back up and restore. Needs the Debian package postgresql; nothing has to be "
    "running beforehand."
)
EPILOG = (
    "After `up`: `source .services/env` sets SIAMESE_BENCH_STORAGE (Optuna), MLFLOW_TRACKING_URI and, when the "
    "servers listen beyond loopback, the MLflow app account and the CA file. Other machines: `bundle` here, "
    "copy the file, `join FILE` there (docs/scale-out.md)."
)


def cmd_services(args: argparse.Namespace) -> int:
    from siamese_bench.infra.services import PROG, ServiceError, Services

    if args.action == "join":
        return _join(args)
    given = {
        "pg_port": args.pg_port,
        "mlflow_port": args.mlflow_port,
        "host": args.host,
        "tls": args.tls,
        "auth": args.auth,
        "addresses": tuple(args.address or ()),
    }
    services = Services.from_state(args.dir, for_up=args.action == "up", **given)
    if args.action == "up":
        _up(services)
        if args.slurm:
            _slurm_up(services)
    elif args.action == "down":
        _slurm_down(services)
        services.down()
    elif args.action == "status":
        for status in services.status():
            print(status.line())
        print(f"security:   {_security(services)}")
        _slurm_status(services)
    elif args.action == "env":
        if not services.env_file.exists():
            raise ServiceError(f"no {_shown(services.env_file)} yet: run `{PROG} up` first")
        print(_shown(services.env_file))
    elif args.action == "bundle":
        from siamese_bench.infra.services.bundle import write_bundle

        path = write_bundle(services, args.out, args.address[0] if args.address else None)
        print(
            f"wrote {_shown(path)} (0600: CA, app credentials, URLs): copy it to each worker machine, then run "
            f"there: siamese-bench services join {path.name}"
        )
    elif args.action == "backup":
        from siamese_bench.infra.services.backup import backup

        print(_shown(backup(services, args.out)))
    elif args.action == "restore":
        from siamese_bench.infra.services.backup import restore

        env_file = restore(services, args.archive, force=args.force)
        print(f"restored {args.archive}")
        print(f"source {_shown(env_file)}")
    return 0


def _up(services: Any) -> None:
    from siamese_bench.core.redact import mask_url
    from siamese_bench.infra.services.common import is_loopback

    env_file = services.up()
    print(f"SIAMESE_BENCH_STORAGE={mask_url(services.pg.url('optuna'))}")
    print(f"MLFLOW_TRACKING_URI={services.mlflow.url}")
    print(f"security: {_security(services)}")
    if not is_loopback(services.host):
        print(
            f"other machines: `siamese-bench services bundle --dir {_shown(services.services_dir)}` writes the one "
            "file they need (docs/scale-out.md)"
        )
    print(f"source {_shown(env_file)}")


def _cluster(services: Any) -> Any:
    from siamese_bench.infra.services.slurm import SlurmCluster

    return SlurmCluster(services.services_dir / "slurm", cpus=os.cpu_count() or 1, say=lambda _: None)


def _slurm_up(services: Any) -> None:
    """A one-node SLURM cluster on this machine (infra/services/slurm.py), for `--launcher slurm` without one."""
    cluster = _cluster(services)
    cluster.up()
    print(f"slurm: one node, {cluster.cpus} CPUs, partition {cluster.partition}; for sbatch, squeue and the launcher:")
    print(f"export SLURM_CONF={cluster.conf}")


def _slurm_down(services: Any) -> None:
    cluster = _cluster(services)
    if cluster.folder.exists():
        cluster.down()


def _slurm_status(services: Any) -> None:
    cluster = _cluster(services)
    if not cluster.folder.exists():
        return
    daemons = ("munged", "slurmctld", "slurmd")
    shown = ", ".join(f"{d} {'running' if cluster.running(d) else 'stopped'}" for d in daemons)
    print(f"slurm:      {shown} (SLURM_CONF={_shown(cluster.conf)})")


def _security(services: Any) -> str:
    tls = "TLS (verify-full, CA " + _shown(services.certs.ca_cert) + ")" if services.tls else "no TLS"
    auth = "MLflow accounts required" if services.auth else "MLflow open to anyone who reaches it"
    return f"listening on {services.host}; {tls}; {auth}"


def _join(args: argparse.Namespace) -> int:
    from siamese_bench.infra.services.bundle import join

    env_file, checks = join(args.bundle, args.dir, check=not args.no_check)
    for line in checks:
        print(line)
    print(f"source {_shown(env_file)}")
    return 0


def _shown(path: Path) -> str:
    """Relative to the current folder when inside it, as a user would type it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def register(sub: Any, full: bool) -> None:
    """The `services` subcommand; its actions and options only when `full` (they import the services)."""
    p = sub.add_parser(
        "services",
        help="start, stop, secure, back up or inspect the project's PostgreSQL and MLflow servers",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    p.set_defaults(func=cmd_services)
    if not full:
        return
    from siamese_bench.infra.services import DEFAULT_DIR, DEFAULT_HOST, DEFAULT_MLFLOW_PORT, DEFAULT_PG_PORT

    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help="folder for passwords, certificates, logs, the env file, MLflow artifacts and (if user "
        "postgres can reach it) the PostgreSQL data (default: %(default)s)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[folder])
    common.add_argument(
        "--pg-port", type=int, help=f"PostgreSQL port (default: as at the last `up`, else {DEFAULT_PG_PORT})"
    )
    common.add_argument(
        "--mlflow-port", type=int, help=f"MLflow server port (default: as at the last `up`, else {DEFAULT_MLFLOW_PORT})"
    )
    common.add_argument(
        "--host",
        help=f"address both servers listen on (default: as at the last `up`, else "
        f"{DEFAULT_HOST}, this machine only). For workers on other machines use "
        "--host 0.0.0.0 (or one address of this machine): TLS and MLflow accounts are "
        "then on unless --no-tls/--no-auth, and only the database optuna is reachable "
        "from other machines",
    )
    common.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TLS for both servers with the services' own CA; PostgreSQL then refuses unencrypted "
        "connections, loopback included (default: on when --host is not loopback)",
    )
    common.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="MLflow accounts (an admin for the services, an app account for sweeps and reports); "
        "anonymous requests get 401 (default: on when --host is not loopback)",
    )
    common.add_argument(
        "--address",
        action="append",
        metavar="NAME",
        help="another name or address clients use for this machine (repeatable): added to the "
        "server certificate and to the Host headers MLflow answers",
    )
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", parents=[common], help="start PostgreSQL then MLflow (idempotent); print the URLs")
    up.add_argument(
        "--slurm",
        action="store_true",
        help="also start a one-node SLURM cluster here (munged, slurmctld, slurmd in DIR/slurm; as root; Debian's "
        "slurm-wlm and munge) to try --launcher slurm without a cluster; `export SLURM_CONF=...` as printed",
    )
    actions.add_parser(
        "down", parents=[common], help="stop MLflow then PostgreSQL, and the SLURM daemons of `up --slurm`"
    )
    actions.add_parser("status", parents=[common], help="one line per service: running/stopped, pid, URL (masked)")
    actions.add_parser("env", parents=[common], help="print the path of the env file to `source`")
    b = actions.add_parser(
        "bundle",
        parents=[common],
        help="write the one file a worker machine needs (CA, app "
        "credentials, URLs), 0600; --address HOST: the address "
        "they reach this machine at (default: the first --address "
        "of `up`, else --host, else this machine's first IPv4 "
        "address), which the certificate must name",
    )
    b.add_argument("--out", type=Path, help="the file to write (default: DIR/bundle-ADDRESS.json)")
    j = actions.add_parser(
        "join",
        parents=[folder],
        help="on a worker machine: unpack a bundle into DIR (env file and "
        "CA) and check both servers accept its credentials",
    )
    j.add_argument("bundle", type=Path, help="the file `services bundle` wrote on the server")
    j.add_argument("--no-check", action="store_true", help="do not try to log in to the servers")
    k = actions.add_parser(
        "backup",
        parents=[common],
        help="write a timestamped archive: both databases (pg_dump), the MLflow artifacts, the credentials (0600)",
    )
    k.add_argument("--out", type=Path, help="folder for the archive (default: DIR/backups)")
    r = actions.add_parser(
        "restore",
        parents=[common],
        help="rebuild the cluster, both databases and the artifacts from an archive, then start the servers",
    )
    r.add_argument("archive", type=Path, help="an archive `services backup` wrote")
    r.add_argument("--force", action="store_true", help="overwrite databases or artifacts that hold data")
