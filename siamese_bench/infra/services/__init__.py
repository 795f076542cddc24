"""Project-owned PostgreSQL 15 cluster and MLflow tracking server, for sweeps spread over processes or machines.

`siamese-bench services up|down|status|env|bundle|join|backup|restore`. Nothing here assumes a server is already
running: `up` creates a cluster under `.services/` (or a folder under the system temp dir when the `postgres` user
cannot reach `.services/`), an app role `siamese` that owns the database `optuna`, a role `mlflow` that owns the
database `mlflow`, and an MLflow server on it that proxies artifacts over HTTP. Beyond loopback both servers use TLS
(the services' own CA) and MLflow requires an account. Passwords are random, kept in 0600 files in `.services/`, and
passed to child processes by environment or file, never on a command line that `ps` shows.

One module a concern: `process` (finding and running tools, ports, process groups), `secrets` (password files, the
SCRAM verifier), `tls` (CA and certificates), `pgaccess` (pg_hba.conf, roles), `postgres` (the cluster), `auth`
(MLflow's accounts), `mlflow` (the server), `stack` (both together, the env file), `bundle` (the one file another
machine needs), `backup` (archives and restore).
"""

from __future__ import annotations

from siamese_bench.infra.services.common import (
    DEFAULT_DIR,
    DEFAULT_HOST,
    DEFAULT_MLFLOW_PORT,
    DEFAULT_PG_PORT,
    PROG,
    WILDCARD_HOSTS,
    ServiceError,
    ServiceStatus,
)
from siamese_bench.infra.services.mlflow import MlflowServer
from siamese_bench.infra.services.postgres import PostgresCluster
from siamese_bench.infra.services.process import find_pg_bin
from siamese_bench.infra.services.stack import Services

__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_HOST",
    "DEFAULT_MLFLOW_PORT",
    "DEFAULT_PG_PORT",
    "PROG",
    "WILDCARD_HOSTS",
    "MlflowServer",
    "PostgresCluster",
    "ServiceError",
    "ServiceStatus",
    "Services",
    "find_pg_bin",
]
