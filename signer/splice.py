"""Sign many X.509 objects in one batch: the throwaway-key splice.

cryptography signs synchronously, one object at a time. So a certificate (or CRL, or
BasicOCSPResponse) is first built with a throwaway software key of the same algorithm;
that template is what gets linted. Its to-be-signed bytes already name the right
signature algorithm and issuer, so they go to the batched signer as they are, and the
real signature replaces the throwaway one in the outer SEQUENCE. Anything after the
signature (a BasicOCSPResponse's certs) is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core.base.der import (
    BIT_STRING,
    SEQUENCE,
    bit_string,
    ecdsa_signature_from_raw,
    read_tlv,
    sequence,
)
from core.base.errors import SignerError
from signer.algorithms import KeyType, SignAlgorithm, hash_for
from signer.api import BatchSigner, Priority
from signer.hsm_key import HsmEcPrivateKey, HsmRsaPrivateKey, hsm_private_key


def split_signed(der: bytes) -> tuple[bytes, bytes, bytes]:
    """(to-be-signed, signatureAlgorithm, trailing elements) of a signed SEQUENCE."""
    tag, start, end = read_tlv(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise ValueError("not a single DER SEQUENCE")
    tbs_tag, _, tbs_end = read_tlv(der, start)
    alg_tag, _, alg_end = read_tlv(der, tbs_end)
    sig_tag, _, sig_end = read_tlv(der, alg_end)
    if (tbs_tag, alg_tag, sig_tag) != (SEQUENCE, SEQUENCE, BIT_STRING):
        raise ValueError("not a signed structure (TBS, algorithm, BIT STRING)")
    return der[start:tbs_end], der[tbs_end:alg_end], der[sig_end:end]


def splice_signature(template: bytes, signature: bytes) -> bytes:
    tbs, alg, trailer = split_signed(template)
    return assemble(tbs, alg, signature, trailer)


def throwaway_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A software key of the same algorithm as the HSM key, only to build templates.

    Never used to sign anything that leaves the process.
    """
    if key_type is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=key_type.rsa_bits)


def placeholder_key(key_type: KeyType) -> HsmEcPrivateKey | HsmRsaPrivateKey:
    """A key for cryptography's builders whose signature is a well-formed placeholder.

    Building a template only needs its to-be-signed bytes, which the HSM signs for real;
    signing them with a software key as well would cost a real signature per object
    (about 1 ms for RSA-2048). The placeholder has the right shape (an ECDSA-Sig-Value of
    full-size integers, or a modulus-sized RSA block) so linting sees what it will see in
    the final object, but it verifies against nothing.
    """
    public_der = (
        throwaway_key(key_type)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if key_type.is_ec:
        size = 48 if key_type is KeyType.ECDSA_P384 else 32
        half = b"\x7f" + b"\x5a" * (size - 1)
        signature = ecdsa_signature_from_raw(half + half)
    else:
        signature = b"\x5a" * (key_type.rsa_bits // 8)
    return hsm_private_key(public_der, lambda alg, data: signature)


@functools.cache
def signature_algorithm_der(key_type: KeyType) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier DER, placeholder signature) of this issuer key type, taken
    from a certificate cryptography builds with the placeholder key: the same bytes its
    builder writes into every TBS. Cached: the engine, the refresher and the CRL
    publisher all need it, and each call makes a throwaway key."""
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = placeholder_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder")])
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=1))
        .sign(key, hash_for(key_type))
    )
    _, alg, _ = split_signed(cert.public_bytes(serialization.Encoding.DER))
    return alg, cert.signature


def assemble(tbs: bytes, algorithm: bytes, signature: bytes, trailer: bytes = b"") -> bytes:
    """A signed X.509 object from its parts (Certificate, CertificateList, an OCSP
    BasicResponse with its certificates as `trailer`, ...)."""
    return sequence(tbs + algorithm + bit_string(signature) + trailer)


async def sign_templates(
    signer: BatchSigner,
    label: str,
    alg: SignAlgorithm,
    templates: Sequence[bytes],
    *,
    priority: Priority = Priority.INTERACTIVE,
) -> list[bytes | SignerError]:
    """Re-sign each template with the HSM key `label` in one batch; splice each result."""
    parts = [split_signed(t) for t in templates]
    sigs = await signer.sign_many([(label, alg, tbs) for tbs, _, _ in parts], priority=priority)
    out: list[bytes | SignerError] = []
    for (tbs, alg_der, trailer), sig in zip(parts, sigs, strict=True):
        if isinstance(sig, SignerError):
            out.append(sig)
        else:
            out.append(assemble(tbs, alg_der, sig, trailer))
    return out
