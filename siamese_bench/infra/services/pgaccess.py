"""Who may reach the project's PostgreSQL cluster, and with what: the pg_hba.conf the services write at every start,
and the SQL that makes the roles and databases.

Least privilege:
- `siamese` (the app role, whose password every sweep machine holds) owns `optuna` and may connect to no other
  database (PUBLIC loses CONNECT on every database, `postgres` and `template1` included); it is the only role that
  may log in from other machines, and only when the servers listen beyond loopback. Its pg_hba.conf line names all
  databases so that a wrong database name gets PostgreSQL's own answer ("does not exist", "permission denied");
- `mlflow` (used only by the MLflow server, on the same machine) owns `mlflow`, which also holds MLflow's
  accounts, and may log in to it only from this machine (`samehost`);
- the superuser `postgres` logs in only from this machine;
- neither role may create roles or databases, replicate or bypass row security.
With TLS every TCP line is `hostssl`, so a connection without TLS finds no line and is refused, loopback included.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from siamese_bench.infra.services.secrets import scram_verifier

HBA_HEADER = (
    "# Written by siamese_bench.infra.services at every start (`siamese-bench services up`): edits here are\n"
    "# lost. Lines are tried in order; a connection that matches none is refused.\n"
)


def hba_text(rules: Iterable[tuple[str, str, bool]], *, tls: bool) -> str:
    """pg_hba.conf from (database, role, from other machines too) rules: scram-sha-256 passwords always, from this
    machine only (`samehost`) unless the rule says otherwise; `hostssl` lines only when `tls`."""
    kind = "hostssl" if tls else "host"
    lines = [HBA_HEADER, "# TYPE  DATABASE  USER  ADDRESS  METHOD", "local    all  all  scram-sha-256"]
    for db, role, remote in rules:
        lines.append(f"{kind:<8} {db}  {role}  {'all' if remote else 'samehost'}  scram-sha-256")
    return "\n".join(lines) + "\n"


def roles_sql(roles: dict[str, str]) -> list[str]:
    """Each role (name -> password) able to log in and nothing more; the password goes as a SCRAM verifier, so
    the plain text is never in SQL (the server log could show that)."""
    sql = []
    for role, password in roles.items():
        sql.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role}; END IF; END $$;"
        )
        sql.append(
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            f"PASSWORD '{scram_verifier(password)}';"
        )
    return sql


def databases_sql(owners: dict[str, str]) -> list[str]:
    """Each database, owned by its role, closed to every other role (PUBLIC loses CONNECT and TEMPORARY, on the
    cluster's own databases too)."""
    sql = ["REVOKE ALL ON DATABASE postgres, template1 FROM PUBLIC;"]
    for db, owner in owners.items():
        sql.append(
            f"SELECT 'CREATE DATABASE {db} OWNER {owner}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}') \\gexec"
        )
        sql.append(f"ALTER DATABASE {db} OWNER TO {owner};")
        sql.append(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;")
    return sql


def owners_query(databases: Iterable[str]) -> str:
    """`db|owner` lines for the databases that exist."""
    names = ", ".join(f"'{db}'" for db in databases)
    return f"SELECT datname || '|' || pg_get_userbyid(datdba) FROM pg_database WHERE datname IN ({names});\n"


def reassign_sql(old: str, new: str) -> str:
    """Run inside the database being handed over: its tables, sequences and schemas change owner. REASSIGN also
    hands over `old`'s databases, so the caller sets every database's owner again afterwards."""
    return f"REASSIGN OWNED BY {old} TO {new};\n"


def write_server_files(folder: Path, files: dict[str, bytes], owner: str | None) -> bool:
    """Files the server reads (pg_hba.conf, its certificate and key), 0600 and owned by `owner` (the server's
    user, when we are root); True when any changed (then the server must reload)."""
    changed = False
    for name, content in files.items():
        path = folder / name
        if path.exists() and path.read_bytes() == content:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        path.chmod(0o600)
        if owner:
            shutil.chown(path, owner, owner)
        changed = True
    return changed
