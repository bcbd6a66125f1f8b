"""TBSCertificate bytes for subscriber certificates, assembled from precomputed DER.

The profile (core/issuance/profile.py) is defined with cryptography's builder, and that
builder remains the reference: tests require this encoder to produce the same bytes.
This one exists for speed: the builder costs about 100 µs per certificate in Python
objects and checks, while most of a TBSCertificate is the same for every certificate
of an issuer (version, signature algorithm, issuer name, AKI, AIA, policies, EKU, key
usage, basic constraints). Those are encoded once; per certificate only the serial,
validity, subject, public key, CRL distribution point and SAN are added.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.base.der import encode_length, encode_time, encode_unsigned_integer, sequence, tlv
from core.ca.certs import EV_POLICY, OV_POLICY
from core.ca.issuer import IssuerInfo
from core.issuance.profile import (
    authority_information_access,
    freshest_crl,
    subject_for,
    subscriber_key_usage,
)
from core.store import OrgRecord

_VERSION_3 = bytes.fromhex("a003020102")
_TRUE = bytes.fromhex("0101ff")
_OID = {
    "aki": bytes.fromhex("0603551d23"),
    "aia": bytes.fromhex("06082b06010505070101"),
    "cp": bytes.fromhex("0603551d20"),
    "eku": bytes.fromhex("0603551d25"),
    "crldp": bytes.fromhex("0603551d1f"),
    "ku": bytes.fromhex("0603551d0f"),
    "bc": bytes.fromhex("0603551d13"),
    "san": bytes.fromhex("0603551d11"),
    "freshest": bytes.fromhex("0603551d2e"),
}


def _extension(oid: bytes, value: bytes, *, critical: bool) -> bytes:
    return sequence(oid + (_TRUE if critical else b"") + tlv(0x04, value))


def _san(names: list[str]) -> bytes:
    body = b"".join(b"\x82" + encode_length(len(n)) + n.encode("ascii") for n in names)
    return sequence(body)


class TbsEncoder:
    def __init__(self, issuer: IssuerInfo, signature_algorithm: bytes) -> None:
        self.issuer = issuer
        self._head_alg = signature_algorithm
        self._issuer_name = issuer.certificate.subject.public_bytes()
        usage = subscriber_key_usage()
        # The order is the builder's order in profile.build_template. By level, and
        # whether the OCSP URL is named (a short-lived profile may leave it out).
        self._before_crldp = {
            (level, ocsp): _extension(
                _OID["aki"],
                x509.AuthorityKeyIdentifier(issuer.key_id, None, None).public_bytes(),
                critical=False,
            )
            + _extension(
                _OID["aia"],
                x509.AuthorityInformationAccess(
                    authority_information_access(issuer, ocsp=ocsp)
                ).public_bytes(),
                critical=False,
            )
            + _extension(
                _OID["cp"],
                x509.CertificatePolicies([x509.PolicyInformation(policy, None)]).public_bytes(),
                critical=False,
            )
            + _extension(
                _OID["eku"],
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]).public_bytes(),
                critical=False,
            )
            for level, policy in (("ov", OV_POLICY), ("ev", EV_POLICY))
            for ocsp in (True, False)
        }
        self._after_crldp = _extension(
            _OID["ku"], usage.public_bytes(), critical=True
        ) + _extension(
            _OID["bc"],
            x509.BasicConstraints(ca=False, path_length=None).public_bytes(),
            critical=True,
        )

    @lru_cache(maxsize=4096)  # noqa: B019 - one encoder per issuer, lives as long as it
    def _crldp(self, partition: int) -> bytes:
        value = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(self.issuer.crl_url(partition))],
                    None,
                    None,
                    None,
                )
            ]
        ).public_bytes()
        return _extension(_OID["crldp"], value, critical=False)

    @lru_cache(maxsize=4096)  # noqa: B019 - as _crldp
    def _freshest(self, partition: int) -> bytes:
        value = freshest_crl(self.issuer, partition).public_bytes()
        return _extension(_OID["freshest"], value, critical=False)

    @lru_cache(maxsize=16384)  # noqa: B019 - bounded; organizations are few and stable
    def _subject(self, org: OrgRecord, level: str, common_name: str | None) -> bytes:
        return subject_for(org, common_name, level).public_bytes()

    def tbs(
        self,
        *,
        org: OrgRecord,
        level: str,
        names: list[str],
        common_name: str | None,
        spki: bytes,
        serial: int,
        partition: int,
        not_before: dt.datetime,
        not_after: dt.datetime,
        delta_crl: bool = False,
        ocsp: bool = True,
        extra: bytes = b"",
    ) -> bytes:
        """`extra`: whole Extension DER appended last (the CT poison of a
        precertificate, or the SCT list of the final certificate)."""
        extensions = (
            self._before_crldp[level, ocsp]
            + self._crldp(partition)
            + (self._freshest(partition) if delta_crl else b"")
            + self._after_crldp
            + _extension(_OID["san"], _san(names), critical=False)
            + extra
        )
        return sequence(
            _VERSION_3
            + encode_unsigned_integer(serial)
            + self._head_alg
            + self._issuer_name
            + sequence(encode_time(not_before) + encode_time(not_after))
            + self._subject(org, level, common_name)
            + spki
            + tlv(0xA3, sequence(extensions))
        )
