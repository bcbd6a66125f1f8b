"""The internal TLS hierarchy of the API listener: a CA of its own, kept apart from the
public TLS hierarchy (its key is a file, never the HSM's issuing key, and nothing it
signs is logged or trusted beyond this deployment), the listener's server certificate
and client certificates for mTLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.base.files import write_atomically

CA_FILE = "internal-ca.pem"
CA_KEY_FILE = "internal-ca.key"
SERVER_FILE = "api.pem"
SERVER_KEY_FILE = "api.key"
CA_DAYS = 3650
# Mozilla's "intermediate" profile asks at most 366 days of a server certificate.
LEAF_DAYS = 366
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_private_pem(key))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(general)


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    common_name: str,
    names: tuple[str, ...],
    usage: x509.ObjectIdentifier,
    now: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def create(directory: Path, *, label: str, now: dt.datetime) -> None:
    """DIR/internal-ca.pem and its key, and DIR/api.pem (the listener's certificate
    and the CA, a chain) with its key; keys 0600."""
    directory.mkdir(mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hanko internal"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"hanko internal TLS CA ({label})"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private_key(directory / CA_KEY_FILE, ca_key)
    (directory / CA_FILE).write_bytes(ca_cert.public_bytes(pem))
    server, server_key = _leaf(
        ca_cert,
        ca_key,
        common_name="localhost",
        names=SERVER_NAMES,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now,
    )
    _write_private_key(directory / SERVER_KEY_FILE, server_key)
    (directory / SERVER_FILE).write_bytes(server.public_bytes(pem) + ca_cert.public_bytes(pem))


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
    ca_key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the internal CA key is not an ECDSA key")
    return ca_cert, ca_key


def renew_server(directory: Path, *, now: dt.datetime) -> x509.Certificate:
    """A new key and certificate for the listener (DIR/api.key, DIR/api.pem), each file
    replaced whole; `hanko serve` reads them at start."""
    ca_cert, ca_key = _load_ca(directory)
    server, key = _leaf(
        ca_cert,
        ca_key,
        common_name="localhost",
        names=SERVER_NAMES,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now,
    )
    pem = serialization.Encoding.PEM
    write_atomically(directory / SERVER_KEY_FILE, [_private_pem(key)], mode=0o600)
    write_atomically(directory / SERVER_FILE, [server.public_bytes(pem), ca_cert.public_bytes(pem)])
    return server


def issue_server(
    directory: Path, *, names: tuple[str, ...], out: Path, now: dt.datetime
) -> x509.Certificate:
    """A server certificate from the internal CA in `directory` for `names` (host
    names or IP addresses): OUT.pem (the certificate and the CA, a chain) and OUT.key
    (0600). A remote perspective's listener has one."""
    ca_cert, ca_key = _load_ca(directory)
    cert, key = _leaf(
        ca_cert,
        ca_key,
        common_name=names[0],
        names=names,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        now=now,
    )
    _write_private_key(out.with_suffix(".key"), key)
    pem = serialization.Encoding.PEM
    out.with_suffix(".pem").write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return cert


def issue_client(directory: Path, *, name: str, out: Path, now: dt.datetime) -> x509.Certificate:
    """A client certificate from the internal CA in `directory`, for mTLS: OUT.pem (the
    certificate) and OUT.key (0600)."""
    ca_cert, ca_key = _load_ca(directory)
    cert, key = _leaf(
        ca_cert,
        ca_key,
        common_name=name,
        names=(),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        now=now,
    )
    _write_private_key(out.with_suffix(".key"), key)
    out.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert
