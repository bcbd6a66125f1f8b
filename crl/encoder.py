"""CRL encoding with no I/O: entries once, lists by concatenation.

Every revocation's CRL entry is DER-encoded once, when the revocation is committed, and
stored with it in serial order per issuer and partition. A CRL is then a header, the
run of stored entries as they are, and the extensions. cryptography's
CertificateRevocationListBuilder copies its list on every added entry (quadratic; see
docs/architecture.md), so it is not used here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509

from core.base.der import encode_length, encode_time, encode_unsigned_integer, sequence, tlv
from core.base.reasons import RevocationReason

_V2 = bytes.fromhex("020101")
_TRUE = bytes.fromhex("0101ff")
_OID_REASON = bytes.fromhex("0603551d15")
_OID_CRL_NUMBER = bytes.fromhex("0603551d14")
_OID_IDP = bytes.fromhex("0603551d1c")
_OID_AKI = bytes.fromhex("0603551d23")
_OID_DELTA = bytes.fromhex("0603551d1b")
_OID_FRESHEST = bytes.fromhex("0603551d2e")


def _extension(oid: bytes, value: bytes, *, critical: bool) -> bytes:
    return sequence(oid + (_TRUE if critical else b"") + tlv(0x04, value))


def revoked_entry(serial: int, revoked_at: dt.datetime, reason: RevocationReason) -> bytes:
    """One revokedCertificates entry. BR 7.2.2: no reasonCode for unspecified."""
    body = encode_unsigned_integer(serial) + encode_time(revoked_at)
    if reason is not RevocationReason.UNSPECIFIED:
        enumerated = tlv(0x0A, bytes((int(reason),)))
        body += sequence(_extension(_OID_REASON, enumerated, critical=False))
    return sequence(body)


def idp_value(url: str) -> bytes:
    """IssuingDistributionPoint naming exactly the URL written into the certificates of
    the partition (BR 7.2.2: byte-identical to their CRL distribution point)."""
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    ).public_bytes()


def freshest_value(url: str) -> bytes:
    return x509.FreshestCRL(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
    ).public_bytes()


def tbs_parts(
    *,
    signature_algorithm: bytes,
    issuer_name: bytes,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries_size: int,
    crl_number: int,
    authority_key_id: bytes,
    idp_url: str,
    delta_of: int | None = None,
    freshest_url: str | None = None,
) -> tuple[bytes, bytes]:
    """(head, tail) of a TBSCertList (RFC 5280 5.1) whose revokedCertificates hold
    `entries_size` bytes of concatenated entry DER: head + entries + tail is the whole.
    The entries never need to be one buffer, so a CRL of a million entries is streamed
    from the store into the hash and the file.

    A delta CRL (`delta_of` = its base CRL's number) has the base's issuing distribution
    point (RFC 5280 5.2.4: the same scope); a full CRL that has deltas points at them
    with `freshest_url` (5.2.6).
    """
    if next_update <= this_update:
        raise ValueError("nextUpdate must be after thisUpdate")
    if crl_number < 1 or (delta_of is not None and not 0 < delta_of < crl_number):
        raise ValueError("CRL numbers are positive and a delta's base is older than it")
    if delta_of is not None and freshest_url is not None:
        raise ValueError("a delta CRL does not point at deltas")
    extensions = (
        _extension(
            _OID_AKI,
            x509.AuthorityKeyIdentifier(authority_key_id, None, None).public_bytes(),
            critical=False,
        )
        + _extension(_OID_CRL_NUMBER, encode_unsigned_integer(crl_number), critical=False)
        + _extension(_OID_IDP, idp_value(idp_url), critical=True)
    )
    if delta_of is not None:
        extensions += _extension(_OID_DELTA, encode_unsigned_integer(delta_of), critical=True)
    if freshest_url is not None:
        extensions += _extension(_OID_FRESHEST, freshest_value(freshest_url), critical=False)
    fields = _V2 + signature_algorithm + issuer_name + encode_time(this_update)
    fields += encode_time(next_update)
    revoked_head = b"\x30" + encode_length(entries_size) if entries_size else b""
    tail = tlv(0xA0, sequence(extensions))
    total = len(fields) + len(revoked_head) + entries_size + len(tail)
    return b"\x30" + encode_length(total) + fields + revoked_head, tail


def tbs_cert_list(*, entries: bytes, **fields: Any) -> bytes:
    """The whole TBSCertList around `entries` (small CRLs, tests)."""
    head, tail = tbs_parts(entries_size=len(entries), **fields)
    return head + entries + tail


def signed_parts(
    tbs_size: int, signature_algorithm: bytes, signature: bytes
) -> tuple[bytes, bytes]:
    """(head, tail) of a signed CRL around its TBSCertList of `tbs_size` bytes."""
    tail = signature_algorithm + tlv(0x03, b"\x00" + signature)
    return b"\x30" + encode_length(tbs_size + len(tail)), tail
