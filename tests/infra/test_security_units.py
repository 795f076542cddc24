"""The services' security parts without servers: certificates, access rules, settings, env files, redaction."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from siamese_bench.core.redact import MASK, scrub
from siamese_bench.infra.services import Services
from siamese_bench.infra.services.pgaccess import hba_text, roles_sql
from siamese_bench.infra.services.stack import STATE_FILE, env_text
from siamese_bench.infra.services.tls import Certificates, server_names


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_certificates_name_every_client_address_and_are_private(tmp_path: Path) -> None:
    from cryptography import x509

    certs = Certificates(tmp_path / "tls")
    assert certs.ensure(server_names("10.1.2.3", ["db.example"]))
    assert set(certs.names()) == {"127.0.0.1", "::1", "localhost", "10.1.2.3", "db.example"}
    assert mode(certs.folder) == 0o700
    assert all(mode(p) == 0o600 for p in (certs.ca_cert, certs.ca_key, certs.server_cert, certs.server_key))
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_new_name_reissues_the_server_certificate_keeping_the_ca_and_old_names(tmp_path: Path) -> None:
    certs = Certificates(tmp_path / "tls")
    certs.ensure(server_names("10.1.2.3"))
    ca, key = certs.ca_cert.read_bytes(), certs.server_key.read_bytes()
    assert not certs.ensure(server_names("10.1.2.3"))  # nothing new: nothing reissued
    assert certs.server_key.read_bytes() == key
    assert certs.ensure(server_names("10.1.2.3", ["new.example"]))
    assert certs.ca_cert.read_bytes() == ca and certs.server_key.read_bytes() != key
    assert {"10.1.2.3", "new.example"} <= set(certs.names())


def test_wildcard_host_names_this_machines_addresses(tmp_path: Path) -> None:
    import socket

    names = server_names("0.0.0.0")
    assert names[:3] == ["127.0.0.1", "::1", "localhost"] and socket.gethostname() in names


def test_hba_with_tls_has_hostssl_lines_only_and_keeps_mlflow_and_superuser_local() -> None:
    rules = [("all", "postgres", False), ("mlflow", "mlflow", False), ("all", "siamese", True)]
    lines = [line.split() for line in hba_text(rules, tls=True).splitlines() if line and not line.startswith("#")]
    assert {r[0] for r in lines} == {"local", "hostssl"}
    assert ["hostssl", "all", "siamese", "all", "scram-sha-256"] in lines
    assert ["hostssl", "mlflow", "mlflow", "samehost", "scram-sha-256"] in lines
    assert ["hostssl", "all", "postgres", "samehost", "scram-sha-256"] in lines
    assert {r[-1] for r in lines} == {"scram-sha-256"}  # no trust, md5 or plain passwords
    plain = [
        line.split()
        for line in hba_text([("all", "siamese", False)], tls=False).splitlines()
        if line.startswith("host")
    ]
    assert plain == [["host", "all", "siamese", "samehost", "scram-sha-256"]]  # loopback: this machine only


def test_roles_get_no_privilege_and_no_plain_password() -> None:
    sql = "\n".join(roles_sql({"siamese": "s3cret-passw0rd"}))
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" in sql
    assert "s3cret-passw0rd" not in sql and "SCRAM-SHA-256$4096:" in sql


def test_security_defaults_follow_the_host_and_state_is_reused(tmp_path: Path) -> None:
    assert (Services(tmp_path, host="127.0.0.1").tls, Services(tmp_path, host="127.0.0.1").auth) == (False, False)
    wide = Services(tmp_path, host="0.0.0.0")
    assert (wide.tls, wide.auth) == (True, True) and wide.mlflow.url.startswith("https://")
    assert "127.0.0.1:5055" in wide.mlflow.allowed_hosts and Services(tmp_path).mlflow.allowed_hosts == ()
    assert Services(tmp_path, host="0.0.0.0", tls=False, auth=False).mlflow.url.startswith("http://")
    (tmp_path / STATE_FILE).write_text(
        json.dumps(
            {"host": "0.0.0.0", "pg_port": 1, "mlflow_port": 2, "tls": True, "auth": False, "addresses": ["a.example"]}
        )
    )
    status = Services.from_state(tmp_path, host="127.0.0.1")  # status/down with an explicit host: the state's TLS
    assert (status.tls, status.auth, status.pg_port, status.addresses) == (True, False, 1, ("a.example",))
    again = Services.from_state(tmp_path, for_up=True)  # up without options: as last time
    assert (again.host, again.tls, again.auth) == ("0.0.0.0", True, False)
    back = Services.from_state(tmp_path, for_up=True, host="127.0.0.1")  # up on another host: its defaults
    assert (back.tls, back.auth) == (False, False)
    more = Services.from_state(tmp_path, for_up=True, addresses=("b.example",))
    assert more.addresses == ("b.example", "a.example")  # names given before stay valid


def test_env_text_unsets_what_it_does_not_set() -> None:
    text = env_text({"SIAMESE_BENCH_STORAGE": "postgresql://u:p w@h/db", "MLFLOW_TRACKING_URI": "http://h:1"}, "x")
    assert "export SIAMESE_BENCH_STORAGE='postgresql://u:p w@h/db'" in text
    assert text.rstrip().endswith(
        "unset MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD MLFLOW_TRACKING_SERVER_CERT_PATH"
    )


def test_scrub_removes_the_tracking_password_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "siamese")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "Zq9-very-secret-value")
    header = base64.b64encode(b"siamese:Zq9-very-secret-value").decode()
    text = scrub(f"failed with Zq9-very-secret-value (Authorization: Basic {header})")
    assert "Zq9-very-secret-value" not in text and header not in text and text.count(MASK) == 2
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "short")
    assert scrub("a short story") == "a short story"  # too short to be a generated password: left alone
