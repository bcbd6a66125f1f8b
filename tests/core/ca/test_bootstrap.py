"""`hanko init`: a CA hierarchy whose keys live in the token and whose certificates
pass pkilint and openssl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import DevCA, hanko, lint, openssl_verify

LINT_TYPES = {
    "root.pem": "ROOT-CA",
    "issuing.pem": "INTERNAL-UNCONSTRAINED-TLS-CA",
    "ocsp-responder.pem": "OCSP-RESPONDER",
}


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"])
def test_ca_certificates_pass_pkilint(tmp_path: Path, key_type: str) -> None:
    directory = tmp_path / key_type
    hanko("init", str(directory), "--key-type", key_type, check=True)
    for name, cert_type in LINT_TYPES.items():
        assert lint(directory / "ca" / name, cert_type) == [], name


def test_pkilint_really_reports(tmp_path: Path, dev_ca: DevCA) -> None:
    """The lint helper finds problems when there are some: an issuing CA linted as an
    OCSP responder is wrong in many ways."""
    assert lint(dev_ca.directory / "ca" / "issuing.pem", "OCSP-RESPONDER") != []


def test_chain_verifies_with_openssl(dev_ca: DevCA) -> None:
    ca = dev_ca.directory / "ca"
    openssl_verify(ca, ca / "ocsp-responder.pem")


def test_profiles(dev_ca: DevCA) -> None:
    ca = dev_ca.directory / "ca"
    load = lambda name: x509.load_pem_x509_certificate((ca / name).read_bytes())  # noqa: E731
    root, issuing, responder = load("root.pem"), load("issuing.pem"), load("ocsp-responder.pem")
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert list(issuing.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert responder.issuer == issuing.subject
    assert issuing.issuer == root.subject
    responder.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    assert (ca / "chain.pem").read_bytes() == (ca / "issuing.pem").read_bytes() + (
        ca / "root.pem"
    ).read_bytes()


KEY_CHECK = """
import sys
from pkcs11 import Attribute, ObjectClass
from core.config import load_config, read_secret
from pathlib import Path
from signer.token import TokenSession
cfg = load_config(Path(sys.argv[1]))
s = TokenSession(cfg.hsm.module, cfg.hsm.token_label, read_secret(cfg, cfg.hsm.pin),
                 softhsm_conf=str(cfg.path(cfg.hsm.softhsm_conf)))
for label in ("hanko-root-1", "hanko-issuing-1", "hanko-ocsp-1"):
    key = s.private_key(label)
    print(label, key[Attribute.SENSITIVE], key[Attribute.EXTRACTABLE], key[Attribute.LOCAL])
"""


def test_keys_were_generated_in_the_token(dev_ca: DevCA) -> None:
    """LOCAL=True means the token generated the key itself (PKCS#11 CKA_LOCAL); it is
    sensitive and not extractable, so it never leaves the token."""
    result = subprocess.run(
        [sys.executable, "-c", KEY_CHECK, str(dev_ca.config_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    for label in ("hanko-root-1", "hanko-issuing-1", "hanko-ocsp-1"):
        assert f"{label} True False True" in lines


def test_init_writes_only_inside_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "only-here"
    hanko("init", str(target), check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only-here"]
    assert sorted(p.name for p in target.iterdir()) == [
        "ca",
        "crl",
        "hanko.toml",
        "lmdb",
        "secrets",
        "softhsm2.conf",
        "tls",
        "tokens",
    ]
