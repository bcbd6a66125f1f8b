"""The URLs certificates carry (OCSP, CRL, caIssuers), checked: plain HTTP, and paths
the status listener can tell apart."""

from __future__ import annotations

from urllib.parse import urlsplit

from core.config.settings import Config


def url_problems(cfg: Config) -> list[str]:
    """BR 7.1.2.7.7 / RFC 5280: CRL, OCSP and caIssuers URLs in certificates are plain
    HTTP; the status listener tells them apart by path."""
    ca = cfg.ca
    problems = []
    for where, url in (
        ("ca.base_url", ca.base_url),
        ("ca.ocsp_url", ca.ocsp_url),
        ("ca.crl_url", ca.crl_url),
        ("ca.issuer_url", ca.issuer_url),
    ):
        if url and (not url.startswith("http://") or " " in url or "?" in url or "#" in url):
            problems.append(
                f"{where}: must be an http:// URL without a query (CRL, OCSP and "
                "CA certificate URLs are not HTTPS)"
            )
    base = ca.base_url.rstrip("/")
    crl = urlsplit(ca.crl_url or f"{base}/crl").path.rstrip("/")
    ocsp = urlsplit(ca.ocsp_url or f"{base}/ocsp").path.rstrip("/")
    if not crl:
        problems.append("ca.crl_url: needs a path (the CRLs are served under it, not at the root)")
    for found in cfg.issuers():
        url = found.issuer_url
        where = "ca.issuer_url" if found.legacy else f"ca.issuers ({found.name}).issuer_url"
        if not url.startswith("http://") or " " in url or "?" in url or "#" in url:
            problems.append(f"{where}: must be an http:// URL without a query")
        issuer = urlsplit(url).path
        if issuer.rstrip("/") in ("", crl, ocsp) or issuer.startswith(crl + "/"):
            problems.append(f"{where}: must name a file apart from the OCSP and CRL paths")
    if ocsp and (ocsp == crl or ocsp.startswith(crl + "/") or crl.startswith(ocsp + "/")):
        problems.append("ca.ocsp_url, ca.crl_url: their paths must not overlap")
    return problems
