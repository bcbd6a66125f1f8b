"""Subscriber certificate templates (BR 7.1.2.7): pure builders.

`build_template` is the definition of the subscriber profile: a certificate built by
cryptography's builder with a placeholder key of the issuer's algorithm, whose
to-be-signed bytes are final (issuer name, AKI and signature algorithm are the real
issuer's). The fast path, core/issuance/tbs.py, must produce the same bytes; tests hold
it to that.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from core.base.errors import PolicyError
from core.ca.certs import EV_POLICY, OV_POLICY, PrivateKey
from core.ca.issuer import IssuerInfo
from core.issuance.keys import SubscriberKey
from core.store import OrgRecord
from signer.algorithms import hash_for


def subscriber_key_usage() -> x509.KeyUsage:
    # digitalSignature only, for RSA too: keyEncipherment serves RSA key exchange, which
    # TLS 1.3 dropped, and the BR call the pair NOT RECOMMENDED (pkilint warns).
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def authority_information_access(
    issuer: IssuerInfo, *, ocsp: bool = True
) -> list[x509.AccessDescription]:
    """OCSP first (when offered, and `ocsp`: the profile's certificates name it), then
    the issuer certificate's URL."""
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(issuer.ca_issuers_url),
        )
    ]
    if issuer.ocsp and ocsp:
        access.insert(
            0,
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(issuer.ocsp_url)
            ),
        )
    return access


def subject_for(org: OrgRecord, common_name: str | None, level: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, org.country)]
    if org.state:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, org.state))
    if org.locality:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, org.locality))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org.organization))
    if level == "ev":
        if not (org.business_category and org.jurisdiction_country and org.registration_number):
            raise PolicyError(
                "org_incomplete", f"organization {org.id} lacks the subject fields EV needs"
            )
        attrs += [
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, org.business_category),
            x509.NameAttribute(NameOID.JURISDICTION_COUNTRY_NAME, org.jurisdiction_country),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, org.registration_number),
        ]
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def freshest_crl(issuer: IssuerInfo, partition: int) -> x509.FreshestCRL:
    """Where the delta CRLs of a partition are (RFC 5280 4.2.1.15 and 5.2.6)."""
    return x509.FreshestCRL(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier(issuer.delta_crl_url(partition))],
                None,
                None,
                None,
            )
        ]
    )


def build_template(
    *,
    issuer: IssuerInfo,
    throwaway: PrivateKey,
    org: OrgRecord,
    level: str,
    names: list[str],
    common_name: str | None,
    public_key: SubscriberKey,
    serial: int,
    partition: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    delta_crl: bool = False,
    ocsp: bool = True,
) -> x509.Certificate:
    usage = subscriber_key_usage()
    access = authority_information_access(issuer, ocsp=ocsp)
    policy = EV_POLICY if level == "ev" else OV_POLICY
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_for(org, common_name, level))
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.AuthorityKeyIdentifier(issuer.key_id, None, None), critical=False)
        .add_extension(x509.AuthorityInformationAccess(access), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(issuer.crl_url(partition))],
                        None,
                        None,
                        None,
                    )
                ]
            ),
            critical=False,
        )
    )
    if delta_crl:  # private PKI profiles only: RFC 5280 4.2.1.15, never in BR certificates
        builder = builder.add_extension(freshest_crl(issuer, partition), critical=False)
    builder = (
        builder.add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    )
    return builder.sign(throwaway, hash_for(issuer.key_type))
