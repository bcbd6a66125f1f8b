"""Which receivers a webhook may name: http(s) URLs, without credentials, and not on
loopback or private ranges unless `[notify] allow_private` (a CA's service must not be
made to call into its own network). Names are checked again at delivery, against
what they resolve to."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from core.base.errors import PolicyError
from core.base.netaddr import allowed_address


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL as given, or PolicyError `webhook_url_invalid` saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolicyError("webhook_url_invalid", "a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise PolicyError("webhook_url_invalid", "a webhook URL carries no credentials")
    if len(url) > 2048:
        raise PolicyError("webhook_url_invalid", "a webhook URL is at most 2048 characters")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if (host == "localhost" or host.endswith(".localhost")) and not allow_private:
            raise PolicyError("webhook_url_private", "loopback receivers are refused") from None
        return url
    if not allowed_address(host, allow_private=allow_private):
        raise PolicyError(
            "webhook_url_private",
            f"{host} is a loopback or private address ([notify] allow_private is off)",
        )
    return url
