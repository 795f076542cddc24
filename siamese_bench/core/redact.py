"""Keep passwords out of everything a study writes: logs, MLflow tags, Optuna attributes, reports.

Storage and tracking URLs carry credentials (`postgresql://user:PASSWORD@host/db`,
`http://user:PASSWORD@host`); anything that prints or records a URL goes through `mask_url`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "token", "access_token", "secret"}


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


def scrub(text: str, *urls: str) -> str:
    """`text` with the password of each URL removed (driver messages may quote a URL back)."""
    for url in urls:
        secret = url_password(url)
        if secret:
            text = text.replace(url, mask_url(url))
            for form in {secret, unquote(secret)}:
                text = text.replace(form, MASK)
    return text
