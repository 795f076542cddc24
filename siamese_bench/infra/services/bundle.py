"""The one file another machine needs: `bundle` writes it on the server (0600: the CA certificate, the app's
database and MLflow credentials, both URLs with the server's reachable address), `join` unpacks it on a worker
machine into that machine's `.services/` (the CA and an env file to `source`) and checks both servers answer.

It holds no admin password, no superuser password, no private key: a worker can run and read studies, nothing more.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path

from siamese_bench.core.redact import mask_url
from siamese_bench.infra.services.common import PROG, WILDCARD_HOSTS, ServiceError, is_loopback
from siamese_bench.infra.services.secrets import make_services_dir, write_private
from siamese_bench.infra.services.stack import Services, env_text
from siamese_bench.infra.services.tls import machine_names

FORMAT = "siamese-bench services bundle"
CA_NAME = "tls/ca.crt"


def reachable_address(services: Services, address: str | None) -> str:
    """The address other machines use: `address`, else the first --address of `up`, else --host, else (0.0.0.0)
    this machine's first IPv4 address. With TLS it must be a name the server certificate holds."""
    if address is None:
        if services.addresses:
            address = services.addresses[0]
        elif is_loopback(services.host):
            raise ServiceError(
                f"the services listen on {services.host}, which other machines cannot reach: start "
                f"them with `{PROG} up --host 0.0.0.0` (or an address of this machine)"
            )
        elif services.host in WILDCARD_HOSTS:
            ipv4 = [n for n in machine_names() if _is_ipv4(n)]
            if not ipv4:
                raise ServiceError("this machine has no IPv4 address other than loopback: give one with --address")
            address = ipv4[0]
        else:
            address = services.host
    if services.tls and address not in services.certs.names():
        raise ServiceError(
            f"the server certificate does not name {address}, so clients would refuse it: run "
            f"`{PROG} up --address {address}` first (it adds the name)"
        )
    return address


def _is_ipv4(name: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(name), ipaddress.IPv4Address)
    except ValueError:
        return False


def write_bundle(services: Services, out: Path | None = None, address: str | None = None) -> Path:
    """The bundle for other machines, as a 0600 JSON file; returns its path."""
    address = reachable_address(services, address)
    if not services.env_file.exists():
        raise ServiceError(f"no {services.env_file} yet: run `{PROG} up` first")
    env = services.client_env(address=address, ca_file=Path("CA_FILE"))
    data = {
        "format": FORMAT,
        "version": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "address": address,
        "env": env,
        "ca_certificate": services.certs.ca_cert.read_text() if services.tls else None,
    }
    out = Path(out or services.services_dir / f"bundle-{address.replace(':', '_')}.json").absolute()
    write_private(out, json.dumps(data, indent=1) + "\n")
    return out


def join(bundle: Path, services_dir: Path, check: bool = True) -> tuple[Path, list[str]]:
    """Unpack `bundle` into `services_dir` (CA and env file, 0600); with `check`, try both servers. Returns the env
    file and one line per check."""
    try:
        data = json.loads(Path(bundle).read_text())
    except (OSError, ValueError) as err:
        raise ServiceError(f"cannot read the bundle {bundle}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ServiceError(f"{bundle} is not a services bundle: make one with `{PROG} bundle` on the server")
    services_dir = Path(services_dir).absolute()
    make_services_dir(services_dir)
    env = dict(data["env"])
    if data.get("ca_certificate"):
        ca = services_dir / CA_NAME
        ca.parent.mkdir(mode=0o700, exist_ok=True)
        write_private(ca, data["ca_certificate"])
        env = {k: v.replace("CA_FILE", str(ca)) for k, v in env.items()}
    env_file = services_dir / "env"
    write_private(env_file, env_text(env, f"{PROG} join {Path(bundle).name}"))
    write_private(services_dir / "joined.json", json.dumps({"address": data["address"], "from": str(bundle)}) + "\n")
    return env_file, check_clients(env) if check else []


def check_clients(env: dict[str, str]) -> list[str]:
    """Log in to both servers as a sweep would; one line each, URLs masked. Raises on the first failure."""
    import requests

    storage = env["SIAMESE_BENCH_STORAGE"]
    try:
        import psycopg2

        psycopg2.connect(storage.replace("postgresql+psycopg2://", "postgresql://", 1), connect_timeout=10).close()
    except ImportError:
        raise ServiceError("psycopg2 is not installed: pip install 'siamese-bench[postgres]'") from None
    except Exception as err:  # noqa: BLE001  (psycopg2's OperationalError and friends)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ServiceError(f"storage {mask_url(storage)}: cannot log in ({first[:200]})") from None
    lines = [f"storage {mask_url(storage)}: logged in"]
    uri = env["MLFLOW_TRACKING_URI"]
    auth = (
        (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
        if "MLFLOW_TRACKING_USERNAME" in env
        else None
    )
    try:
        resp = requests.get(
            uri.rstrip("/") + "/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            auth=auth,
            verify=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH", True),
            timeout=20,
        )
    except requests.RequestException as err:
        raise ServiceError(f"tracking server {mask_url(uri)}: not reachable ({type(err).__name__})") from None
    if resp.status_code != 200:
        raise ServiceError(f"tracking server {mask_url(uri)}: answered {resp.status_code} to the app account")
    lines.append(f"tracking server {mask_url(uri)}: logged in as {auth[0] if auth else 'anonymous'}")
    return lines
