"""`hanko init DIR`: a complete development CA under DIR and nowhere else.

Creates a SoftHSM token with keys generated inside it (never imported), a root CA, a
TLS issuing CA and a delegated OCSP responder certificate, API tokens, the store (an
LMDB environment under DIR, or a PostgreSQL database given by its DSN, migrated and
checked to hold no CA yet) and DIR/hanko.toml. A DIR that exists and is not empty is refused before
anything is written; a failure half-way removes what this run created.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.base.clock import Clock
from core.base.errors import BootstrapError, HankoError
from core.base.secretfiles import new_pin, new_token, read_secret_file, write_secret_file
from core.ca import certs as ca_certs
from core.ca import internal_tls, softhsm
from core.ca.root_crl import MAX_VALIDITY, publish_root_crl
from core.config import load_config
from core.config.checks import dsn_problems
from core.config.settings import StoreConfig
from core.store import LmdbStore
from core.store.configured import migrate, open_configured
from signer.algorithms import KeyType, SignAlgorithm
from signer.hsm_key import SignFn, hsm_private_key
from signer.token import TokenSession

TOKEN_LABEL = "hanko"  # noqa: S105 - a token label, not a secret
ROOT_LABEL = "hanko-root-1"
ISSUING_LABEL = "hanko-issuing-1"
OCSP_LABEL = "hanko-ocsp-1"
# Written into AIA and CRL distribution points; it must be a public DNS name (pkilint
# refuses internal names and IP addresses), so development uses example.com's space.
DEFAULT_BASE_URL = "http://pki.hanko.example.com"
# Where scripts/dev.sh runs its validating resolver (Unbound).
DEV_RESOLVER = "127.0.0.1:5053"
ORG = "Hanko Development"


# Where `hanko init --store` finds the database passwords when no file is given; the
# configuration it writes names these variables, so `hanko serve` reads them too.
STORE_PASSWORD_ENV = "HANKO_STORE_PASSWORD"  # noqa: S105 - a variable's name
STORE_ADMIN_PASSWORD_ENV = "HANKO_STORE_ADMIN_PASSWORD"  # noqa: S105 - a variable's name


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL store for the new CA: the runtime role's DSN, the owner role's for
    migrations (optional), and password files (else the environment variables)."""

    dsn: str
    admin_dsn: str = ""
    password_file: Path | None = None
    admin_password_file: Path | None = None


@dataclass(frozen=True)
class InitResult:
    directory: Path
    config: Path
    root: x509.Certificate
    issuing: x509.Certificate
    ocsp_responder: x509.Certificate


def init_ca(
    directory: Path,
    *,
    key_type: KeyType,
    clock: Clock,
    base_url: str = DEFAULT_BASE_URL,
    store: PgTarget | None = None,
) -> InitResult:
    directory = directory.absolute()
    if not base_url.startswith("http://") or base_url.endswith("/") or " " in base_url:
        # CRL and OCSP URLs in certificates are plain HTTP (BR 7.1.2.7.7); no trailing
        # slash, since paths are appended to it.
        raise BootstrapError(
            f"--base-url must be an http:// URL without a trailing slash, got {base_url!r}"
        )
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BootstrapError(
            f"{directory} already exists and is not empty: hanko init never overwrites a CA"
        )
    util = softhsm.require_softhsm()
    if store is not None:
        for where, dsn in (("--store", store.dsn), ("--store-admin", store.admin_dsn)):
            problems = dsn_problems(dsn, where) if dsn or where == "--store" else []
            if problems:
                raise BootstrapError(problems[0].replace("store.password", "--store-password-file"))
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _init(
            directory, key_type=key_type, clock=clock, base_url=base_url, util=util, store=store
        )
    except BaseException:
        # Leave nothing half-made: the next `hanko init` must find DIR as it was.
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def first_issuer_name(key_type: KeyType) -> str:
    """The first issuer's name: its key type's letter and 1 (as Let's Encrypt's E1, R10)."""
    return f"{'e' if key_type.is_ec else 'r'}1"


def _init(
    directory: Path,
    *,
    key_type: KeyType,
    clock: Clock,
    base_url: str,
    util: str,
    store: PgTarget | None,
) -> InitResult:
    secrets_dir = directory / "secrets"
    secrets_dir.mkdir(mode=0o700)
    store_table = LMDB_STORE
    if store is not None:
        # The database first: one that cannot be reached, or already holds a CA, stops
        # the run before a key is made.
        store_table = _pg_store_table(store, secrets_dir)
        _prepare_database(directory, store_table)
    pin, so_pin = new_pin(), new_pin()
    write_secret_file(secrets_dir / "hsm.pin", pin)
    write_secret_file(secrets_dir / "hsm-so.pin", so_pin)
    write_secret_file(secrets_dir / "admin.token", new_token())
    write_secret_file(secrets_dir / "acme-eab.secret", new_token())
    write_secret_file(secrets_dir / "notify.secret", new_token())

    conf = softhsm.write_conf(directory)
    softhsm.init_token(util, conf, TOKEN_LABEL, so_pin, pin)
    session = TokenSession(softhsm.SOFTHSM_MODULE, TOKEN_LABEL, pin, softhsm_conf=str(conf))
    try:
        keys = {}
        for label in (ROOT_LABEL, ISSUING_LABEL, OCSP_LABEL):
            public_der = session.generate_key(label, key_type)
            keys[label] = hsm_private_key(public_der, _signing_with(session, label))
        now = clock.now()
        root = ca_certs.build_root(
            org=ORG,
            common_name=f"{ORG} Root CA",
            public_key=keys[ROOT_LABEL].public_key(),
            signing_key=keys[ROOT_LABEL],
            key_type=key_type,
            now=now,
        )
        issuing = ca_certs.build_issuing_ca(
            org=ORG,
            common_name=f"{ORG} TLS Issuing CA 1",
            public_key=keys[ISSUING_LABEL].public_key(),
            root=root,
            root_key=keys[ROOT_LABEL],
            key_type=key_type,
            base_url=base_url,
            now=now,
        )
        responder = ca_certs.build_ocsp_responder(
            org=ORG,
            common_name=f"{ORG} OCSP Responder 1",
            public_key=keys[OCSP_LABEL].public_key(),
            issuer=issuing,
            issuer_key=keys[ISSUING_LABEL],
            key_type=key_type,
            now=now,
        )
    finally:
        session.close()

    ca_dir = directory / "ca"
    ca_dir.mkdir()
    pem = serialization.Encoding.PEM
    (ca_dir / "root.pem").write_bytes(root.public_bytes(pem))
    (ca_dir / "issuing.pem").write_bytes(issuing.public_bytes(pem))
    (ca_dir / "ocsp-responder.pem").write_bytes(responder.public_bytes(pem))
    (ca_dir / "chain.pem").write_bytes(issuing.public_bytes(pem) + root.public_bytes(pem))

    internal_tls.create(directory / "tls", label=directory.name, now=now)
    if store is None:
        LmdbStore(directory / "lmdb", create=True, map_size=8 << 30).close()
    config = directory / "hanko.toml"
    config.write_text(
        _config_text(key_type=key_type, base_url=base_url, when=now.isoformat(), store=store_table)
    )
    # The issuing CA's certificate names the root's CRL: publish the first one now.
    publish_root_crl(load_config(config), clock=clock, validity=MAX_VALIDITY)
    _fsync_tree(directory)
    return InitResult(directory, config, root, issuing, responder)


def _signing_with(session: TokenSession, label: str) -> SignFn:
    def sign(alg: SignAlgorithm, data: bytes) -> bytes:
        return session.sign(label, alg, data)

    return sign


def _fsync_tree(directory: Path) -> None:
    """Make the new CA durable before reporting success (keys, secrets, config)."""
    for root, _dirs, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


LMDB_STORE = """\
[store]
path = "lmdb"
map_size = "8GiB"
max_map_size = "64GiB"         # the map grows by itself up to this
"""


def _secret_line(key: str, file: Path | None, secrets_dir: Path, name: str, env: str) -> str:
    """`key = { file = ... }` for a copy of `file` under secrets/, else the env variable."""
    if file is None:
        return f'{key} = {{ env = "{env}" }}\n'
    try:
        value = read_secret_file(file)
    except HankoError as exc:
        raise BootstrapError(f"--{key.replace('_', '-')}-file: {exc.message}") from None
    write_secret_file(secrets_dir / name, value)
    return f'{key} = {{ file = "secrets/{name}" }}\n'


def _pg_store_table(store: PgTarget, secrets_dir: Path) -> str:
    text = '[store]\nbackend = "postgresql"\n'
    text += f"dsn = {_toml_string(store.dsn)}\n"
    text += _secret_line(
        "password", store.password_file, secrets_dir, "store.password", STORE_PASSWORD_ENV
    )
    if store.admin_dsn:
        text += f"admin_dsn = {_toml_string(store.admin_dsn)}\n"
        text += _secret_line(
            "admin_password",
            store.admin_password_file,
            secrets_dir,
            "store-admin.password",
            STORE_ADMIN_PASSWORD_ENV,
        )
    return text + 'synchronous_commit = "on"     # remote_apply with a synchronous standby\n'


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Folder:
    """Relative secret paths of the new CA, before its configuration file exists."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.directory / p


def _prepare_database(directory: Path, store_table: str) -> None:
    """Migrate the database and check it holds no CA (hanko init never overwrites one)."""
    try:
        st = msgspec.convert(tomllib.loads(store_table)["store"], StoreConfig)
    except (msgspec.ValidationError, tomllib.TOMLDecodeError) as exc:
        raise BootstrapError(f"--store: {exc}") from None
    located = _Folder(directory)
    migrate(st, located)
    with open_configured(st, located, readonly=True) as db:
        if any(n for name, n in db.stat().items() if name != "meta"):
            raise BootstrapError(
                "the database already holds a hanko store: hanko init never overwrites a CA"
            )


def _config_text(*, key_type: KeyType, base_url: str, when: str, store: str) -> str:
    identity = urlsplit(base_url).hostname or "localhost"
    return f"""\
# hanko configuration written by `hanko init` at {when}.
# Relative paths are relative to the folder of this file.

{store}
[hsm]
module = "{softhsm.SOFTHSM_MODULE}"
token_label = "{TOKEN_LABEL}"
pin = {{ file = "secrets/hsm.pin" }}
softhsm_conf = "softhsm2.conf"

[signer]
workers = 0            # one PKCS#11 worker process per CPU
batch_max = 64
batch_delay = "500us"

[ca]
key_type = "{key_type.value}"        # the root's
root_cert = "ca/root.pem"
root_key_label = "{ROOT_LABEL}"   # used only by `hanko ca root-crl` and `hanko ca issuer`
base_url = "{base_url}"
# Each defaults to a path under base_url; the status listener serves each at its path.
# ocsp_url = "{base_url}/ocsp"             # one responder for every issuer
# crl_url = "{base_url}/crl"               # issuer N's shard p: {{crl_url}}/N/{{p}}.crl

# The issuing CAs: `hanko ca issuer create | activate | retire | list` edit this list.
# One with no profiles issues nothing and still signs its CRLs and OCSP responses.
[[ca.issuers]]
name = "{first_issuer_name(key_type)}"
cert = "ca/issuing.pem"
# The first issuer's shards are at the top of the CRL path and its certificate at
# ca/issuing.cer; the defaults for later ones are {{crl_url}}/NAME and ca/NAME.cer.
crl_url = "{base_url}/crl"
issuer_url = "{base_url}/ca/issuing.cer"
key_label = "{ISSUING_LABEL}"
key_type = "{key_type.value}"
profiles = ["*"]                         # every profile of [issuance.profiles]
ocsp_responder_cert = "ca/ocsp-responder.pem"
ocsp_responder_key_label = "{OCSP_LABEL}"

[api]
listen = "127.0.0.1:8443"
admin_token = {{ file = "secrets/admin.token" }}  # the first admin; API keys: hanko keys create
# The internal TLS CA (tls/internal-ca.pem) signed this for localhost and 127.0.0.1.
tls_cert = "tls/api.pem"
tls_key = "tls/api.key"
# client_ca = "tls/internal-ca.pem"   # require client certificates (hanko tls client-cert)

[log]
format = "text"      # "json": one object a line, for a log shipper
level = "info"

[metrics]
listen = "127.0.0.1:9464"   # Prometheus: GET /metrics

[notify]
# Webhook signing secrets are derived from this (hanko licenses webhook set).
secret = {{ file = "secrets/notify.secret" }}
expiry_days = [30, 10]      # certificate reminders, days before expiry

[acme]
# External Account Binding keys are derived from this secret (hanko acme eab create).
eab_secret = {{ file = "secrets/acme-eab.secret" }}

[dns]
# A recursive resolver that validates DNSSEC: CAA, domain validation and ACME look
# names up through it and trust its verdicts. scripts/dev.sh runs Unbound here.
resolver = "{DEV_RESOLVER}"

[caa]
# The issuer domains CAA records name to permit this CA (issue "{identity}").
identities = ["{identity}"]

[dcv]
# false: every domain validation is one hanko performed (hanko domain challenge and
# verify); `hanko domain validate`, the operator's attestation, is then refused.
allow_attested = true

[mpic]
# Remote perspectives corroborate every domain validation and CAA decision (BR
# 3.2.2.9: 5 from 2026-12-15). Off only in a laboratory whose listeners are all on
# loopback: a public CA adds its perspectives (hanko perspective init) and removes
# this line.
enabled = false

[ocsp]
listen = "127.0.0.1:8080"   # the responder; {base_url}/ocsp in AIA must route here
"""
