"""Run inside another network namespace (`ip netns exec NS python netns_probe.py`) by tests/infra/test_netns.py:
try the services the way another machine would, and print what each attempt got, as JSON.

Reads SB_HOST, SB_PG_PORT, SB_MLFLOW_PORT, SB_CA and SB_SECRETS (the folder of the services' password files: the
probe tries the other roles' passwords too, to show pg_hba.conf refuses them from here even when known).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg2
import requests

HOST, CA, SECRETS = os.environ["SB_HOST"], os.environ["SB_CA"], Path(os.environ["SB_SECRETS"])
PG, MLFLOW = int(os.environ["SB_PG_PORT"]), int(os.environ["SB_MLFLOW_PORT"])
HTTPS = f"https://{HOST}:{MLFLOW}"


def secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def http(method: str, url: str, **kwargs) -> str:
    try:
        return str(requests.request(method, url, timeout=10, **kwargs).status_code)
    except requests.RequestException as err:
        return f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"


def pg(user: str, password: str, db: str, sslmode: str = "verify-full") -> str:
    dsn = f"postgresql://{user}:{password}@{HOST}:{PG}/{db}?sslmode={sslmode}&sslrootcert={CA}"
    try:
        with psycopg2.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT s.ssl, host(inet_client_addr()) FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()")
            ssl, client = cur.fetchone()
        return f"connected ssl={ssl} from={client}"
    except psycopg2.Error as err:
        return "refused: " + " ".join(str(err).split()).split("failed: ")[-1][:200]


app = ("siamese", secret("mlflow-app.password"))
results = {
    "mlflow anonymous create": http(
        "POST", HTTPS + "/api/2.0/mlflow/experiments/create", json={"name": "anon"}, verify=CA
    ),
    "mlflow anonymous search": http("GET", HTTPS + "/api/2.0/mlflow/experiments/search?max_results=1", verify=CA),
    "mlflow wrong password": http(
        "GET",
        HTTPS + "/api/2.0/mlflow/experiments/search?max_results=1",
        verify=CA,
        auth=("siamese", "Wrong-Password-77"),
    ),
    "mlflow app account": http("GET", HTTPS + "/api/2.0/mlflow/experiments/search?max_results=1", verify=CA, auth=app),
    "mlflow app account, foreign Host header": http(
        "GET",
        HTTPS + "/api/2.0/mlflow/experiments/search?max_results=1",
        verify=CA,
        auth=app,
        headers={"Host": "evil.example"},
    ),
    "mlflow plain http": http("GET", f"http://{HOST}:{MLFLOW}/health"),
    **{
        f"mlflow anonymous GET {path}": http("GET", HTTPS + path, verify=CA)
        for path in ("/health", "/version", "/", "/api/3.0/mlflow/server-info", "/api/2.0/mlflow/users/list")
    },
    "mlflow https without the CA": http("GET", HTTPS + "/health", verify=True),
    "pg app sslmode=disable": pg("siamese", secret("app.password"), "optuna", "disable"),
    "pg app sslmode=require, wrong password": pg("siamese", "Wrong-Password-77", "optuna", "require"),
    "pg app verify-full": pg("siamese", secret("app.password"), "optuna"),
    "pg app to database mlflow": pg("siamese", secret("app.password"), "mlflow"),
    "pg role mlflow verify-full": pg("mlflow", secret("pg-mlflow.password"), "mlflow"),
    "pg superuser verify-full": pg("postgres", secret("pg-superuser.password"), "postgres"),
}
print(json.dumps(results))
