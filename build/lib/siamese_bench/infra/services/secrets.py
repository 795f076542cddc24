"""Passwords: random, kept in 0600 files created once, and never put on a command line (`ps` shows those) or in
SQL (the server log could show that)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path


def make_services_dir(path: Path) -> None:
    """The folder holds secrets (0600 files) and must be traversable by `postgres`; git ignores it."""
    if not path.exists():
        path.mkdir(parents=True)
        path.chmod(0o755)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# passwords and databases of siamese_bench.infra.services: never commit\n*\n")


def read_or_create_secret(path: Path) -> str:
    """A random password kept in a 0600 file; reused when the file exists so `up` is idempotent."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another `up` won the race: use its password
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (it holds passwords); replaced atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores, computed here so the plain password is never sent in SQL
    (a failed statement, or log_statement=all, would write it to the server log)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
