"""Real servers for tests: a throwaway PostgreSQL cluster on a free port, an MLflow server on it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from siamese_bench.infra.services import MlflowServer, PostgresCluster, ServiceError, find_pg_bin

NO_PG = "PostgreSQL server binaries not installed (Debian package postgresql)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_installed() -> bool:
    try:
        find_pg_bin()
    except ServiceError:
        return False
    return True


def start_throwaway_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A started cluster on a free port, stopped and deleted afterwards (`yield from` it in a fixture).

    As root the pytest temp folder (/tmp/pytest-of-root, mode 0700) is closed to `postgres`, so the data goes to
    the module's fallback under the system temp dir: the fallback is exercised, not bypassed.
    """
    if not pg_installed():
        pytest.skip(NO_PG)
    notes: list[str] = []
    cluster = PostgresCluster(tmp_path_factory.mktemp("services"), port=free_port(), say=notes.append)
    cluster.destroy()  # same fallback path as a crashed earlier session's: start clean
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.destroy()


def start_mlflow_server(cluster: PostgresCluster) -> Iterator[MlflowServer]:
    """An MLflow server on the cluster's mlflow database, artifacts served over HTTP."""
    server = MlflowServer(cluster.services_dir, port=free_port(), backend_store_uri=cluster.url("mlflow"))
    try:
        server.up()
        yield server
    finally:
        server.stop()
