"""Keep passwords out of everything a study writes: logs, MLflow tags, Optuna attributes, reports.

Storage and tracking URLs carry credentials (`postgresql://user:PASSWORD@host/db`,
`http://user:PASSWORD@host`); anything that prints or records a URL goes through `mask_url`.
A tracking server with accounts takes its password from the environment (MLFLOW_TRACKING_PASSWORD), never from the
URL: `scrub` also removes the values of those variables, plain and in an HTTP Basic header's base64 form.
"""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "token", "access_token", "secret"}
SECRET_ENV_VARS = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "PGPASSWORD")
MIN_SECRET_LEN = 8  # shorter values are not generated passwords, and masking them would mangle ordinary text


def url_password(url: str) -> str | None:
    """The password a URL carries, in its user info or as a `password=` query parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            return value
    return None


def mask_url(url: str) -> str:
    """`url` with its password (user info or query parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^/:@]*):[^@/]*@", rf"//\1:{MASK}@", url)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide: keep it byte for byte (urlunsplit drops sqlite's empty host)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def env_secrets() -> list[str]:
    """The secrets this process holds in its environment (a sourced `.services/env`), in every form a message could
    quote: plain, and base64 of `user:password` as an HTTP Basic header carries it."""
    found = []
    for key in SECRET_ENV_VARS:
        value = os.environ.get(key, "")
        if len(value) >= MIN_SECRET_LEN:
            found.append(value)
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password and len(password) >= MIN_SECRET_LEN:
        found.append(base64.b64encode(f"{user}:{password}".encode()).decode())
    return found


def scrub(text: str, *urls: str) -> str:
    """`text` with the password of each URL removed (driver messages may quote a URL back), and the secrets of
    the environment (env_secrets)."""
    for url in urls:
        secret = url_password(url)
        if secret:
            text = text.replace(url, mask_url(url))
            for form in {secret, unquote(secret)}:
                text = text.replace(form, MASK)
    for secret in env_secrets():
        text = text.replace(secret, MASK)
    return text
