"""The store `hanko bench scale` measures: N certificates of the config's first issuer,
a fraction revoked, each with real pre-signed responses (every CertID hash the config
pre-signs), built as fast as this machine allows.

The responses are signed with a software key, not the HSM: a fresh P-256 (or the
issuer's type) responder key whose delegated responder certificate the issuer's key in
the HSM signs, so every response verifies against the real chain. Signing runs in one
process per CPU (the presigner of the refresher, the signatures from cryptography); the
parent writes each chunk in one commit through the store's own write path (the
certificate record, its revocation and CRL entry, its responses).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.cert_records import REASONS, insert_bench_cert
from core.ca.certs import ca_subject, ocsp_responder_builder
from core.ca.hsm import hsm_session, signing_key
from core.ca.issuer import issuer_info
from core.config import Config
from core.store import OcspEnvelope, OcspRecord, Store, WriteTxn
from ocsp.codec import CertIdHash
from ocsp.presign import Presigner
from ocsp.response_codec import ResponseEncoder
from signer.algorithms import KeyType, hash_for
from signer.splice import signature_algorithm_der

CHUNK = 20_000


class Plan:
    """What every signing process needs (picklable)."""

    def __init__(self, cfg: Config, *, revoked: float, now: int, seed: int) -> None:
        chosen = cfg.issuers()[0]
        self.key_type = KeyType(chosen.config.key_type)
        self.issuer_der = cfg.path(chosen.config.cert).read_bytes()
        issuer = x509.load_pem_x509_certificate(self.issuer_der)
        self.key_id = issuer_info(issuer, self.key_type, cfg.ca.base_url, ocsp=True).key_id
        self.shards = max(1, chosen.config.crl_shards)
        key = _software_key(self.key_type)
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        builder = ocsp_responder_builder(
            subject=ca_subject("hanko bench", "hanko bench scale responder"),
            public_key=key.public_key(),
            issuer=issuer,
            not_before=dt.datetime.fromtimestamp(now - 3600, dt.UTC),
            not_after=dt.datetime.fromtimestamp(now + 30 * 86400, dt.UTC),
            serial=x509.random_serial_number(),
        )
        with hsm_session(cfg) as session:
            signed = builder.sign(
                signing_key(session, chosen.config.key_label), hash_for(self.key_type)
            )
        self.responder_der = signed.public_bytes(serialization.Encoding.DER)
        self.hashes = [CertIdHash.from_name(h) for h in cfg.ocsp.cert_id_hashes]
        self.validity = int(cfg.ocsp.validity.seconds)
        self.fraction = cfg.ocsp.refresh_fraction
        self.revoked = revoked
        self.now = now
        self.seed = seed

    def presigner(self) -> Presigner:
        issuer = x509.load_pem_x509_certificate(self.issuer_der)
        responder = x509.load_der_x509_certificate(self.responder_der)
        return Presigner(
            ResponseEncoder(
                issuer=issuer,
                responder=responder,
                signature_algorithm=signature_algorithm_der(self.key_type)[0],
            ),
            key_label="software",
            algorithm=self.key_type.default_algorithm,
            hashes=self.hashes,
            validity=dt.timedelta(seconds=self.validity),
            refresh_fraction=self.fraction,
        )

    def envelope(self) -> OcspEnvelope:
        env = self.presigner().encoder.envelope
        since = x509.load_der_x509_certificate(self.responder_der).not_valid_before_utc
        return OcspEnvelope(
            key_hash=env.key_hash, encoded=env.encoded, since=int(since.timestamp())
        )


def _software_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if not key_type.is_ec:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(
        ec.SECP384R1() if key_type is KeyType.ECDSA_P384 else ec.SECP256R1()
    )


Chunk = list[tuple[bytes, bool, bytes]]  # (serial, revoked, encoded OcspRecord)
_PLAN: Plan | None = None
_SIGN: Callable[[bytes], bytes] | None = None
_PRESIGNER: Presigner | None = None


def _init(plan: Plan) -> None:
    global _PLAN, _SIGN, _PRESIGNER  # noqa: PLW0603 - one signing process's state
    _PLAN = plan
    key = serialization.load_pem_private_key(plan.key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = hashes.SHA384() if plan.key_type is KeyType.ECDSA_P384 else hashes.SHA256()
        algorithm = ec.ECDSA(digest)
        _SIGN = lambda tbs: key.sign(tbs, algorithm)  # noqa: E731
    else:
        from cryptography.hazmat.primitives.asymmetric import padding

        assert isinstance(key, rsa.RSAPrivateKey)
        _SIGN = lambda tbs: key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())  # noqa: E731
    _PRESIGNER = plan.presigner()


def sign_chunk(index: int) -> Chunk:
    """Chunk `index`: its serials (from the seed), statuses and signed records."""
    plan, sign, presigner = _PLAN, _SIGN, _PRESIGNER
    if plan is None or sign is None or presigner is None:
        raise RuntimeError("sign_chunk runs in a process _init prepared")
    rng = random.Random(plan.seed * 1_000_003 + index)
    out: Chunk = []
    at = plan.now
    for _ in range(CHUNK):
        serial = (rng.getrandbits(127) | (1 << 126)).to_bytes(16, "big")
        revoked = rng.random() < plan.revoked
        if revoked:
            pending = presigner.pending(
                serial,
                now=dt.datetime.fromtimestamp(at, dt.UTC),
                revoked_at=at - 3600,
                reason=REASONS[serial[-1] % len(REASONS)],
            )
        else:
            pending = presigner.pending(serial, now=dt.datetime.fromtimestamp(at, dt.UTC))
        sigs = [sign(tbs) for _, tbs in pending.tbs]
        rec = presigner.record(pending, sigs)
        assert isinstance(rec, OcspRecord)
        out.append((serial, revoked, rec.encode()))
    return out


def signed_chunks(plan: Plan, n: int, processes: int) -> Iterator[Chunk]:
    """Every chunk of `n` certificates (the last cut to size), signed by `processes`."""
    chunks = (n + CHUNK - 1) // CHUNK
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(processes, initializer=_init, initargs=(plan,)) as pool:
        done = 0
        for chunk in pool.imap(sign_chunk, range(chunks), chunksize=1):
            take = min(CHUNK, n - done)
            done += take
            yield chunk[:take]


def write_chunk(store: Store, plan: Plan, chunk: Chunk, envelope: OcspEnvelope) -> list[bytes]:
    """One commit: the certificates, revocations and responses of a chunk; returns the
    serials."""
    now = plan.now

    def op(txn: WriteTxn) -> None:
        txn.put_ocsp_envelope(envelope)
        records = []
        for serial, revoked, raw in chunk:
            insert_bench_cert(
                txn,
                serial,
                issuer=plan.key_id,
                now=now,
                partition=serial[-1] % plan.shards,
                revoked=revoked,
            )
            records.append((serial, OcspRecord.decode(raw)))
        txn.put_ocsp_many(records)

    store.write(op)
    return [s for s, _, _ in chunk]


def processes() -> int:
    return os.cpu_count() or 1
