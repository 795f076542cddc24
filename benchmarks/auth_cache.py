"""MLflow call latency through HTTPS and an account, with MLflow's credential cache off and on.

    python benchmarks/auth_cache.py                 # 2 rounds x (off, on), 40 log_batch calls each
    python benchmarks/auth_cache.py --rounds 3 --calls 60

MLflow's basic-auth app checks the password's PBKDF2 hash at every request; with
`auth_cache_ttl_seconds` it checks it once per TTL for the same credentials. Each round starts the
project's services (PostgreSQL and MLflow, TLS and accounts, on loopback) once with the cache off
(TTL 0) and once as the project sets it (siamese_bench/infra/services/auth.py), then times `calls`
MlflowClient.log_batch calls of one metric, as a sweep's parent makes them; the first 5 of each
start are dropped (connection set-up). Conditions alternate, so machine noise hits both; medians.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_calls(cache_seconds: int, calls: int, tag: str) -> list[float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from siamese_bench.infra.services import Services

    work = Path(tempfile.mkdtemp(prefix="siamese-auth-cache-"))
    services = Services(
        work / "services", pg_port=free_port(), mlflow_port=free_port(), tls=True, auth=True, say=lambda _: None
    )
    assert services.mlflow.auth is not None
    services.mlflow.auth.cache_seconds = cache_seconds
    services.up()
    try:
        os.environ.update(services.client_env())
        client = MlflowClient(services.mlflow.url)
        run_id = client.create_run(client.create_experiment(f"auth-cache-{tag}")).info.run_id
        took = []
        for step in range(calls):
            started = time.perf_counter()
            client.log_batch(run_id, metrics=[Metric("m", float(step), int(time.time() * 1000), step)])
            took.append((time.perf_counter() - started) * 1000)
        return took[5:]
    finally:
        services.down()
        services.pg.destroy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="starts per condition (default %(default)s)")
    p.add_argument("--calls", type=int, default=40, help="timed calls per start, 5 dropped (default %(default)s)")
    args = p.parse_args()
    from siamese_bench.infra.services.auth import AUTH_CACHE_SECONDS

    conditions = {"off (TTL 0)": 0, f"on (TTL {AUTH_CACHE_SECONDS} s, the project's)": AUTH_CACHE_SECONDS}
    results: dict[str, list[float]] = {name: [] for name in conditions}
    for round_ in range(args.rounds):
        for name, ttl in conditions.items():
            took = timed_calls(ttl, args.calls, f"{round_}-{ttl}")
            results[name] += took
            print(f"round {round_ + 1}, cache {name}: median {statistics.median(took):.1f} ms", flush=True)
    print("\n| credential cache | calls | median ms | p90 ms |\n|---|---|---|---|")
    for name, took in results.items():
        p90 = statistics.quantiles(took, n=10)[-1]
        print(f"| {name} | {len(took)} | {statistics.median(took):.1f} | {p90:.1f} |")
    off, on = (statistics.median(t) for t in results.values())
    print(f"\nratio of medians, on / off: {on / off:.3f}  (python {' '.join(sys.argv)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
