"""Shared fixtures. Integration fixtures use the real thing: `hanko init` run as a
process creates real SoftHSM tokens, real CA certificates and real LMDB environments.

SoftHSM reads its configuration once per process, so the test process itself never
loads the PKCS#11 module: everything that talks to a token runs in a child process
(signer workers, the CLI, helper scripts).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.dns_lab import DnsLab, Zone, missing_tools
from core.config import Config, load_config

# Both store back ends (any_store, postgres, pg_database).
pytest_plugins = ["tests.stores"]

BIN = Path(sys.executable).parent


def hanko(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the installed `hanko` console script, as a user would."""
    proc = subprocess.run(
        [str(BIN / "hanko"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"hanko {' '.join(args)} failed: {proc.stderr}")
    return proc


def openssl_verify(ca_dir: Path, cert: Path) -> None:
    """`openssl verify` of `cert` against DIR/root.pem with DIR/issuing.pem as chain."""
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(ca_dir / "root.pem"),
            "-untrusted",
            str(ca_dir / "issuing.pem"),
            "-purpose",
            "any",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def lint(path: Path, cert_type: str) -> list[str]:
    """pkilint findings at WARNING or worse; an empty list is a clean certificate."""
    import json

    result = subprocess.run(
        [
            str(BIN / "lint_cabf_serverauth_cert"),
            "lint",
            "-t",
            cert_type,
            "-s",
            "WARNING",
            "-f",
            "JSON",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip(), f"pkilint printed nothing: {result.stderr}"
    findings = []
    for validator in json.loads(result.stdout)["results"]:
        for finding in validator["finding_descriptions"]:
            findings.append(f"{finding['severity']} {finding['code']}: {finding.get('message')}")
    return findings


def lint_crl(path: Path, profile: str, severity: str = "WARNING", kind: str = "CRL") -> str:
    """pkilint's CRL findings (`-p BR` or `-p PKIX`) at `severity` or worse; "" is clean.
    `kind` "ARL" for a CRL of CA certificates (the root's)."""
    result = subprocess.run(
        [str(BIN / "lint_crl"), "lint", "-t", kind, "-p", profile, "-s", severity,
         "--document-format", "DER", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.strip()


def openssl_crl_check(crl: Path, issuing: Path) -> subprocess.CompletedProcess[str]:
    """`openssl crl -CAfile`: the signature of a DER CRL against the issuing CA."""
    return subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(crl), "-noout", "-CAfile", str(issuing)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def crl_pem(der: Path) -> Path:
    """A PEM copy of a DER CRL beside it (for openssl verify -CRLfile and certtool)."""
    pem = der.with_name(der.name + ".pem")
    subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(der), "-out", str(pem)], check=True
    )
    return pem


def lint_ocsp(path: Path) -> list[str]:
    """pkilint's OCSP response findings at WARNING or worse, one line each."""
    result = subprocess.run(
        [str(BIN / "lint_ocsp_response"), "lint", "-s", "WARNING", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return [line for line in result.stdout.splitlines() if line.strip()]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all held while they are picked, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class DevCA:
    directory: Path
    config_path: Path
    key_type: str

    @property
    def config(self) -> Config:
        return load_config(self.config_path)


def init_ca(
    directory: Path,
    key_type: str = "ecdsa-p256",
    *,
    store: Any = None,
    env: dict[str, str] | None = None,
) -> DevCA:
    """`hanko init` of a CA in `directory`: for fixtures that want one of their own.
    `store`: a tests.stores.PgDatabase to keep it in (else LMDB under `directory`);
    `env`: the environment hanko runs in."""
    if shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM is not installed: run scripts/dev.sh setup (the test command does)")
    args = ["init", str(directory), "--key-type", key_type]
    if store is not None:
        pwfile = directory.parent / f"{directory.name}-store.password"
        pwfile.write_text(store.password)
        pwfile.chmod(0o600)
        args += ["--store", store.dsn, "--store-password-file", str(pwfile), "--store-admin",
                 store.admin_dsn, "--store-admin-password-file", str(pwfile)]  # fmt: skip
    hanko(*args, check=True, env=env)
    config = directory / "hanko.toml"
    use_resolver(config, dns_lab().resolver)
    return DevCA(directory, config, key_type)


# The identity `hanko init` writes to [caa] identities (the host of its base URL).
CAA_IDENTITY = "pki.hanko.example.com"
DEV_RESOLVER_LINE = 'resolver = "127.0.0.1:5053"'
_LAB: list[DnsLab] = []


def dns_lab() -> DnsLab:
    """The session's DNSSEC lab (bench/dns_lab.py), started on first use: Unbound,
    validating, in front of NSD serving a signed "jp." and its child zones:
    signed.jp (signed; CAA permits this CA at its apex), plain.jp (unsigned; the same),
    bogus.jp (signatures that do not verify), broken.jp (SERVFAIL). Every other name
    is NXDOMAIN. Tests add names of their own (`lab.add`), each under a label of its own."""
    if not _LAB:
        missing = missing_tools()
        if missing:
            pytest.fail(f"{', '.join(missing)} not installed: run scripts/dev.sh setup")
        issue = f'IN CAA 0 issue "{CAA_IDENTITY}"'
        zones = [
            Zone("signed.jp", "signed", [f"signed.jp. {issue}"]),
            Zone("plain.jp", "unsigned", [f"plain.jp. {issue}"]),
            Zone("bogus.jp", "bogus", [f"bogus.jp. {issue}"]),
            Zone("broken.jp", "broken"),
        ]
        lab = DnsLab(Path(tempfile.mkdtemp(prefix="hanko-dns-lab-")), zones, tld="jp")
        lab.start()
        atexit.register(lab.stop)
        _LAB.append(lab)
    return _LAB[0]


def use_resolver(config: Path, address: str) -> None:
    """Point a `hanko init` configuration's [dns] resolver at `address`."""
    text = config.read_text()
    assert DEV_RESOLVER_LINE in text, "hanko init no longer writes the development resolver"
    config.write_text(text.replace(DEV_RESOLVER_LINE, f'resolver = "{address}"'))


@pytest.fixture(scope="session")
def lab() -> DnsLab:
    return dns_lab()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with `STORE_BACKENDS = BACKENDS` (tests.stores) runs its `ca` tests once
    per store back end, each with a CA of its own."""
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if backends and "ca" in metafunc.fixturenames:
        metafunc.parametrize("ca", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def ca(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    """A development CA of the test module's own, for modules whose tests write to its
    store or token (on PostgreSQL when the module asks for both back ends)."""
    backend = getattr(request, "param", "lmdb")
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-" + backend)
    if backend == "postgresql":
        from tests.stores import new_database

        database = new_database(request.getfixturevalue("postgres"), migrate=False)
        return init_ca(folder / "ca", store=database)
    return init_ca(folder / "ca")


@pytest.fixture(scope="session")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    """An ECDSA P-256 development CA shared by the whole session (read-mostly)."""
    return init_ca(tmp_path_factory.mktemp("ca") / "p256", "ecdsa-p256")


@pytest.fixture(scope="session")
def p384_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return init_ca(tmp_path_factory.mktemp("ca") / "p384", "ecdsa-p384")


@pytest.fixture(scope="session")
def rsa_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCA:
    return init_ca(tmp_path_factory.mktemp("ca") / "rsa", "rsa-2048")


@pytest.fixture
def fresh_ca(tmp_path: Path) -> DevCA:
    """A CA of the test's own, for tests that change files or state."""
    return init_ca(tmp_path / "ca", "ecdsa-p256")


@pytest.fixture
def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HANKO_CONFIG", None)
    return env


Service = tuple[str, DevCA, subprocess.Popen[str]]


def serve_log(ca: DevCA) -> Path:
    """What the `hanko serve` of `serving` logged (its stderr)."""
    return ca.directory / "serve.log"


@contextlib.contextmanager
def serving(ca: DevCA, param: str | dict[str, Any] = "") -> Iterator[Service]:
    """`hanko serve` on `ca` with free ports; `param` is TOML to add to its config (it
    lands in the last table, [ocsp]) or a dict of replacements and that TOML."""
    port, status, metrics = free_ports(3)
    text = ca.config_path.read_text().replace("127.0.0.1:8443", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{status}")
    text = text.replace("127.0.0.1:9464", f"127.0.0.1:{metrics}")
    if isinstance(param, dict):  # {"replace": [(old, new), ...], "append": TOML}
        for old, new in param.get("replace", []):
            assert old in text, old
            text = text.replace(old, new)
        param = param.get("append", "")
    text += param
    ca.config_path.write_text(text)
    # Its log goes to a file (`serve_log`): a pipe nobody reads fills with access-log
    # lines and blocks the server mid-test.
    with serve_log(ca).open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "hanko"), "serve", "-c", str(ca.config_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    base = f"https://127.0.0.1:{port}"
    # Up once it says so (with mTLS on, a probe without a certificate would not get in).
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if "serving the API" not in line:
        proc.kill()
        pytest.fail(f"hanko serve did not come up: {line}{serve_log(ca).read_text()}")
    try:
        yield base, ca, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def service(fresh_ca: DevCA, request: pytest.FixtureRequest) -> Iterator[Service]:
    """`hanko serve` on a fresh CA; parametrize indirectly with what `serving` adds."""
    with serving(fresh_ca, getattr(request, "param", "")) as running:
        yield running


def token(ca: DevCA, role: str = "admin") -> str:
    return (ca.directory / "secrets" / f"{role}.token").read_text().strip()


def tls(ca: DevCA) -> ssl.SSLContext:
    """A client context trusting the CA's internal TLS CA (DIR/tls/internal-ca.pem)."""
    return ssl.create_default_context(cafile=str(ca.directory / "tls" / "internal-ca.pem"))


def anonymous(base: str, ca: DevCA) -> httpx.Client:
    return httpx.Client(base_url=base, verify=tls(ca), timeout=30)


def new_key(base: str, ca: DevCA, role: str, *accounts: str, **extra: Any) -> dict[str, Any]:
    """An API key made over the admin API: its id, secret and record."""
    body: dict[str, Any] = {"role": role, **extra}
    if role == "admin":
        body["all_accounts"] = True
    else:
        body["accounts"] = list(accounts)
    with client(base, ca, "admin") as admin:
        r = admin.post("/v1/admin/keys", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def keyed(base: str, ca: DevCA, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {secret}"}, verify=tls(ca), timeout=30
    )


def csr(*names: str) -> str:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def client(base: str, ca: DevCA, role: str, *accounts: str) -> httpx.Client:
    """ "admin": the operator's admin token. "rpc": an issuer key of its own for
    `accounts` (default: acme, the `ready` fixture's), which must exist."""
    if role == "admin":
        return keyed(base, ca, token(ca, "admin"))
    key = new_key(base, ca, "issuer" if role == "rpc" else role, *(accounts or ("acme",)))
    return keyed(base, ca, key["secret"])


def paying_org(admin: httpx.Client, org_id: str, *, domain: str = "example.co.jp") -> None:
    """Account, organization and validated domain `org_id`, whose default license (a
    large 5-year pool, `<org_id>-pool`) pays for every issuance of the tests that are not
    about licenses."""
    r = admin.post("/v1/admin/accounts", json={"id": org_id, "name": f"{org_id} K.K."})
    assert r.status_code == 201, r.text
    r = admin.post(
        f"/v1/admin/accounts/{org_id}/licenses",
        json={"id": f"{org_id}-pool", "kind": "pooled", "quantity": 100000, "years": 5},
    )
    assert r.status_code == 201, r.text
    r = admin.post(
        "/v1/admin/organizations",
        json={
            "account": org_id,
            "id": org_id,
            "level": "ov",
            "organization": "Acme Japan K.K.",
            "country": "JP",
            "state": "Tokyo-to",
            "locality": "Chiyoda-ku",
        },
    )
    assert r.status_code == 201, r.text
    r = admin.post(
        f"/v1/admin/organizations/{org_id}/domains", json={"domain": domain, "method": "dns-txt"}
    )
    assert r.status_code == 201, r.text


@pytest.fixture
def ready(service: Service) -> tuple[httpx.Client, httpx.Client, DevCA]:
    base, ca, _ = service
    admin = client(base, ca, "admin")
    paying_org(admin, "acme")
    return client(base, ca, "rpc", "acme"), admin, ca
