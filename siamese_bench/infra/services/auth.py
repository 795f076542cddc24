"""MLflow's accounts: the server runs MLflow's basic-auth app (`mlflow server --app-name basic-auth`) with an admin
account, used only by `siamese-bench services` itself, and an app account that sweeps, reports and decisions use.

Passwords are random, kept in 0600 files, and reach the server through its 0600 config file (MLFLOW_AUTH_CONFIG_PATH)
or a request body over the local connection, never a command line. The app account may create experiments (it
manages those it creates) and edit every experiment (EDIT on `*`: runs from before authentication was switched on
stay writable), but may not delete experiments it did not create, nor see or change accounts. Every other account
gets `default_permission = NO_PERMISSIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from siamese_bench.infra.services.common import PROG, ServiceError
from siamese_bench.infra.services.secrets import read_or_create_secret, write_private

ADMIN_USER = "siamese-admin"
APP_USER = "siamese"
AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
REQUEST_TIMEOUT = 20
# MLflow checks the password's PBKDF2 hash at every request (~0.3 s of CPU here). Cached for this long after a
# success, a call through HTTPS and an account took a median 43 ms instead of 352 ms (benchmarks/auth_cache.py).
# A password changed through MLflow's API is seen at once by the server's one worker process; `up` changes them so.
AUTH_CACHE_SECONDS = 60


@dataclass
class MlflowAuth:
    """The account files under `services_dir` and what the server and its clients need from them."""

    services_dir: Path
    admin_user: str = ADMIN_USER
    app_user: str = APP_USER
    cache_seconds: int = AUTH_CACHE_SECONDS

    @property
    def admin_password_file(self) -> Path:
        return self.services_dir / "mlflow-admin.password"

    @property
    def app_password_file(self) -> Path:
        return self.services_dir / "mlflow-app.password"

    @property
    def secret_key_file(self) -> Path:
        """Flask's secret key (CSRF of the sign-up page); the same for every server process, kept across restarts."""
        return self.services_dir / "mlflow-flask.secret"

    @property
    def config_file(self) -> Path:
        return self.services_dir / "mlflow-auth.ini"

    def app_password(self) -> str:
        if not self.app_password_file.exists():
            raise ServiceError(f"no MLflow app password in {self.app_password_file}: run `{PROG} up`")
        return self.app_password_file.read_text().strip()

    def server_env(self, database_uri: str) -> dict[str, str]:
        """Environment of `mlflow server --app-name basic-auth`: the config file (written here, 0600: it holds the
        database password and the admin's first password) and the Flask secret key."""
        admin = read_or_create_secret(self.admin_password_file)
        read_or_create_secret(self.app_password_file)
        uri = database_uri.replace("%", "%%")  # configparser's interpolation
        write_private(
            self.config_file,
            "# written by `siamese-bench services up`: holds passwords, keep private\n"
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {uri}\n"
            f"admin_username = {self.admin_user}\n"
            f"admin_password = {admin}\n"
            f"authorization_function = {AUTH_FUNCTION}\n"
            f"auth_cache_ttl_seconds = {self.cache_seconds}\n",
        )
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(self.config_file),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": read_or_create_secret(self.secret_key_file),
        }

    def client_env(self) -> dict[str, str]:
        """What a client exports to log in as the app account (never the admin)."""
        return {"MLFLOW_TRACKING_USERNAME": self.app_user, "MLFLOW_TRACKING_PASSWORD": self.app_password()}

    def ensure_app_account(self, url: str, verify: str | bool) -> None:
        """As the admin: create the app account (or reset its password to the one in its file) and let it edit
        every experiment. Idempotent; a wrong admin password is one line saying which file."""
        import requests

        if not self.admin_password_file.exists():
            raise ServiceError(
                f"no MLflow admin password in {self.admin_password_file}: restore that file (from a "
                "backup's secrets/), MLflow's database holds its hash"
            )
        admin_auth = (self.admin_user, self.admin_password_file.read_text().strip())
        api = url.rstrip("/") + "/api"
        app = (self.app_user, read_or_create_secret(self.app_password_file))  # a removed file: a new one (rotation)

        def call(method: str, path: str, auth=admin_auth, **kwargs):
            try:  # verify per request: a Session's would lose to $REQUESTS_CA_BUNDLE
                resp = requests.request(method, api + path, auth=auth, timeout=REQUEST_TIMEOUT, verify=verify, **kwargs)
            except requests.RequestException as err:
                raise ServiceError(f"MLflow server {url}: {path} failed ({type(err).__name__})") from None
            if resp.status_code == 401 and auth is admin_auth:
                raise ServiceError(
                    f"MLflow server {url} refused the admin account {self.admin_user}: the password in "
                    f"{self.admin_password_file} is not the one its database holds (restore that file "
                    "from the backup that made the database)"
                )
            return resp

        if call("GET", "/2.0/mlflow/users/get", params={"username": self.app_user}).status_code == 404:
            _ok(
                call("POST", "/2.0/mlflow/users/create", json={"username": app[0], "password": app[1]}),
                f"creating MLflow account {self.app_user}",
            )
        elif call("GET", "/2.0/mlflow/users/current", auth=app).status_code == 401:
            _ok(
                call("PATCH", "/2.0/mlflow/users/update-password", json={"username": app[0], "password": app[1]}),
                f"setting the password of MLflow account {self.app_user}",
            )
        grant = {"username": self.app_user, "resource_type": "experiment", "resource_id": "*", "permission": "EDIT"}
        resp = call("POST", "/3.0/mlflow/users/permissions/grant", json=grant)
        if "RESOURCE_ALREADY_EXISTS" not in resp.text:
            _ok(resp, f"letting MLflow account {self.app_user} edit experiments")


def _ok(resp, what: str) -> None:
    """Only the status and MLflow's error code: a body may quote the request."""
    if resp.status_code != 200:
        try:
            code = resp.json().get("error_code", "")
        except ValueError:
            code = ""
        raise ServiceError(f"{what}: MLflow answered {resp.status_code} {code}".rstrip())
