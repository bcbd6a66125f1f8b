"""Profiles of the CA's own certificates: root, TLS issuing CA, delegated OCSP responder.

Pure builders: public keys and a signing key in, a certificate out. The profiles follow
BR 7.1.2.1 (root), 7.1.2.6 (TLS subordinate CA) and 7.1.2.8 (OCSP responder); the tests
run pkilint on each.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from signer.algorithms import KeyType, hash_for

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

OV_POLICY = x509.ObjectIdentifier("2.23.140.1.2.2")
EV_POLICY = x509.ObjectIdentifier("2.23.140.1.1")
ANY_POLICY = x509.ObjectIdentifier("2.5.29.32.0")


def ca_public_key(cert: x509.Certificate) -> PublicKey:
    """The key of one of our own certificates: always EC or RSA (hanko makes no other)."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TypeError(f"{type(key).__name__} is not a key type hanko's CAs use")
    return key


ROOT_VALIDITY = dt.timedelta(days=20 * 365)
ISSUING_VALIDITY = dt.timedelta(days=5 * 365)
# Delegated responder certificates are short-lived: they carry ocsp-nocheck, so nothing
# can revoke them; expiry is the only way they stop being trusted.
OCSP_RESPONDER_VALIDITY = dt.timedelta(days=90)


def ca_subject(org: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, cert_sign: bool, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _second(at: dt.datetime) -> dt.datetime:
    return at.replace(microsecond=0)


def build_root(
    *,
    org: str,
    common_name: str,
    public_key: PublicKey,
    signing_key: PrivateKey,
    key_type: KeyType,
    now: dt.datetime,
) -> x509.Certificate:
    name = ca_subject(org, common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_second(now))
        .not_valid_after(_second(now + ROOT_VALIDITY))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True, digital_signature=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        .sign(signing_key, hash_for(key_type))
    )


def build_issuing_ca(
    *,
    org: str,
    common_name: str,
    public_key: PublicKey,
    root: x509.Certificate,
    root_key: PrivateKey,
    key_type: KeyType,
    base_url: str,
    now: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(ca_subject(org, common_name))
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_second(now))
        .not_valid_after(_second(min(now + ISSUING_VALIDITY, root.not_valid_after_utc)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True, digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            # An affiliated issuing CA may carry anyPolicy (BR 7.1.2.6.1); it issues both
            # OV and EV, and the BR forbid two reserved policy OIDs on one CA.
            x509.CertificatePolicies([x509.PolicyInformation(ANY_POLICY, None)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key(root)),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{base_url}/crl/root.crl")],
                        None,
                        None,
                        None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{base_url}/ca/root.cer"),
                    )
                ]
            ),
            critical=False,
        )
        .sign(root_key, hash_for(key_type))
    )


def build_ocsp_responder(
    *,
    org: str,
    common_name: str,
    public_key: PublicKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    key_type: KeyType,
    now: dt.datetime,
) -> x509.Certificate:
    return ocsp_responder_builder(
        subject=ca_subject(org, common_name),
        public_key=public_key,
        issuer=issuer,
        not_before=now,
        not_after=now + OCSP_RESPONDER_VALIDITY,
        serial=x509.random_serial_number(),
    ).sign(issuer_key, hash_for(key_type))


def ocsp_responder_builder(
    *,
    subject: x509.Name,
    public_key: PublicKey,
    issuer: x509.Certificate,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int,
) -> x509.CertificateBuilder:
    """Every field of a delegated responder certificate (BR 7.1.2.8) but the signature:
    signed once with a throwaway key for linting, then for real (renewal). notAfter is
    cut to the issuer's."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(_second(not_before))
        .not_valid_after(_second(min(not_after, issuer.not_valid_after_utc)))
        .add_extension(_key_usage(cert_sign=False, digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key(issuer)),
            critical=False,
        )
    )


def key_type_of(cert: x509.Certificate) -> KeyType:
    """The KeyType of a CA certificate's public key."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyType.ECDSA_P384 if key.curve.name == "secp384r1" else KeyType.ECDSA_P256
    if isinstance(key, rsa.RSAPublicKey):
        return KeyType.RSA_3072 if key.key_size >= 3072 else KeyType.RSA_2048
    raise ValueError("a CA key is ECDSA or RSA")
