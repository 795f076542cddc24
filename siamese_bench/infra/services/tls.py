"""The services' own certificate authority and the server certificate both servers present.

`up` makes a CA once (`tls/ca.crt`, `tls/ca.key`) and a server certificate signed by it that names every address
clients use: 127.0.0.1, ::1, localhost, the --host address (or this machine's addresses and names for 0.0.0.0)
and any --address given. A certificate that lacks a name asked for, or expires within 30 days, is issued anew;
the CA stays, so machines that joined keep trusting the server. Every file is 0600 (keys and certificates alike).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psutil

from siamese_bench.infra.services.common import WILDCARD_HOSTS, ServiceError

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients such as browsers accept
RENEW_BEFORE = dt.timedelta(days=30)


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def machine_names() -> list[str]:
    """This machine's non-loopback addresses and host names: what a 0.0.0.0 listener answers to."""
    names = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                ip = addr.address.split("%", 1)[0]
                if not ipaddress.ip_address(ip).is_loopback and not ipaddress.ip_address(ip).is_link_local:
                    names.append(ip)
    names += [socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(n for n in names if n))


def server_names(host: str, addresses: Iterable[str] = ()) -> list[str]:
    """Every name a client may use to reach servers listening on `host`, loopback first."""
    listed = machine_names() if host in WILDCARD_HOSTS else [host]
    return list(dict.fromkeys([*LOOPBACK_NAMES, *listed, *addresses]))


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


@dataclass
class Certificates:
    """The CA and the server certificate under `<services_dir>/tls`."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    def exist(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.server_cert, self.server_key))

    def ensure(self, names: Iterable[str]) -> bool:
        """The CA (made once) and a server certificate valid for `names`; True when a certificate was (re)issued."""
        from cryptography import x509

        wanted = list(dict.fromkeys(names))
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        made_ca = self._ensure_ca()
        if not made_ca and self.server_cert.is_file() and self.server_key.is_file():
            cert = x509.load_pem_x509_certificate(self.server_cert.read_bytes())
            if set(wanted) <= set(certificate_names(cert)) and _valid_for(cert, RENEW_BEFORE):
                return False
            wanted = list(dict.fromkeys([*wanted, *certificate_names(cert)]))  # never drop a name clients use
        self._issue_server(wanted)
        return True

    def _ensure_ca(self) -> bool:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        if self.ca_cert.is_file() and self.ca_key.is_file():
            return False
        if self.ca_cert.exists() != self.ca_key.exists():
            raise ServiceError(
                f"{self.folder} holds only half of the CA (ca.crt or ca.key): restore the other, "
                "or remove both (machines that joined must then join again)"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"siamese-bench services CA {socket.gethostname()}")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, _sha256())
        )
        _write(
            self.ca_key,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        _write(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
        return True

    def _issue_server(self, names: list[str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        # the loader types every key kind; a CA key is one that signs certificates (_ensure_ca writes an EC key)
        ca_key = cast(
            CertificateIssuerPrivateKeyTypes,
            serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None),
        )
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.IPAddress(ipaddress.ip_address(n)) if is_ip(n) else x509.DNSName(n) for n in names]
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, _sha256())
        )
        _write(
            self.server_key,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        _write(self.server_cert, cert.public_bytes(serialization.Encoding.PEM))

    def names(self) -> list[str]:
        """The names the current server certificate is valid for ([] without one)."""
        from cryptography import x509

        if not self.server_cert.is_file():
            return []
        return certificate_names(x509.load_pem_x509_certificate(self.server_cert.read_bytes()))


def certificate_names(cert) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)


def _valid_for(cert, margin: dt.timedelta) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > margin


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()
