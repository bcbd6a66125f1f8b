"""Organization subject data: what may go into a certificate's subject. Pure."""

from __future__ import annotations

import re

from core.base.errors import PolicyError
from core.store import OrgRecord

# Letters, digits, space, apostrophe, comma, hyphen, period, colon, equals (the
# printable set the products allow in DN fields).
_DN_CHARS = re.compile(r"^[A-Za-z0-9 ',\-.:=]+$")
_STREET_NUMBER = re.compile(r"\d")
EV_CATEGORIES = (
    "Private Organization",
    "Government Entity",
    "Business Entity",
    "Non-Commercial Entity",
)


def _field(name: str, value: str | None, *, required: bool, max_len: int = 64) -> None:
    if value is None or value == "":
        if required:
            raise PolicyError("org_field_missing", f"{name} is required")
        return
    if not value.strip():
        raise PolicyError("org_field_invalid", f"{name} is only spaces")
    if len(value) > max_len:
        raise PolicyError("org_field_invalid", f"{name} is longer than {max_len} characters")
    if not _DN_CHARS.match(value):
        raise PolicyError(
            "org_field_invalid",
            f"{name} {value!r} has characters outside letters, digits, space and ' , - . : =",
        )


def check_org(org: OrgRecord) -> OrgRecord:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", org.id):
        raise PolicyError("org_id_invalid", "an organization id is 1-64 letters, digits, _ . -")
    if org.level not in ("ov", "ev"):
        raise PolicyError("org_level_invalid", "level must be ov or ev")
    if not re.fullmatch(r"[A-Z]{2}", org.country):
        raise PolicyError("org_field_invalid", "country must be a two-letter ISO code such as JP")
    _field("organization", org.organization, required=True)
    _field("state", org.state, required=False, max_len=128)
    _field("locality", org.locality, required=org.state is None, max_len=128)
    if org.locality and _STREET_NUMBER.search(org.locality):
        raise PolicyError(
            "org_field_invalid", "locality must not carry street, block or house numbers"
        )
    if org.level == "ev":
        if org.business_category not in EV_CATEGORIES:
            raise PolicyError(
                "org_field_invalid", f"business_category must be one of: {', '.join(EV_CATEGORIES)}"
            )
        if not org.jurisdiction_country or not re.fullmatch(r"[A-Z]{2}", org.jurisdiction_country):
            raise PolicyError(
                "org_field_invalid", "jurisdiction_country must be a two-letter ISO code"
            )
        _field("registration_number", org.registration_number, required=True)
    return org
