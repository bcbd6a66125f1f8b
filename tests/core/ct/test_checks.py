"""`hanko check-config` on `[ct]`: log keys and URLs, and whether each profile with CT
on can get the SCTs its validity needs from the logs listed."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import DevCA, hanko
from tests.ct_log import SPKI


def key() -> str:
    return base64.b64encode(
        ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI)
    ).decode()


def logs(*operators: str, bad_key: bool = False) -> str:
    return "".join(
        f'\n[[ct.logs]]\nurl = "http://log-{i}.example"\noperator = "{op}"\n'
        f'key = "{"bm90IGEga2V5" if bad_key and i == 0 else key()}"\n'
        for i, op in enumerate(operators)
    )


# The 200-day maximum in force from 2026-03-15, kept in force, so these tests say the
# same after the maximum falls to 100 days (2027-03-15).
PINNED = (
    "\n[issuance]\nvalidity_schedule = "
    "[{since = 2020-09-01, max_days = 200, dcv_reuse_days = 200}]\n\n[ocsp]\n"
)


def check(ca: DevCA, extra: str) -> tuple[int, str]:
    text = ca.config_path.read_text()
    if "validity_schedule" not in text:
        text = text.replace("\n[ocsp]\n", PINNED, 1)
    ca.config_path.write_text(text + extra)
    out = hanko("check-config", "-c", str(ca.config_path))
    return out.returncode, out.stderr


def test_three_logs_of_two_operators_for_199_days(fresh_ca: DevCA) -> None:
    # Certificates of 199 days (over 180) need 3 SCTs from 2 operators or more.
    code, err = check(fresh_ca, logs("google", "cloudflare", "google"))
    assert code == 0, err


def test_two_logs_are_not_enough_for_199_days(fresh_ca: DevCA) -> None:
    code, err = check(fresh_ca, logs("google", "cloudflare"))
    assert code == 1
    assert "its certificates (199 days) need 3 SCTs" in err


def test_one_operator_is_not_enough(fresh_ca: DevCA) -> None:
    code, err = check(fresh_ca, logs("google", "google", "google"))
    assert code == 1
    assert "issuance.profiles.ov: its certificates (199 days) need 3 SCTs from at least 2" in err
    assert "issuance.profiles.ev" in err


def test_a_key_that_is_not_one(fresh_ca: DevCA) -> None:
    code, err = check(fresh_ca, logs("google", "cloudflare", "digicert", bad_key=True))
    assert code == 1
    assert "ct.logs[0].key: not a base64 DER SubjectPublicKeyInfo" in err


def test_serve_refuses_ct_it_cannot_satisfy(fresh_ca: DevCA) -> None:
    # Two logs cannot give a 199-day certificate its three SCTs: every issuance would
    # fail, so the service does not start, and says why: a line per profile.
    code, _ = check(fresh_ca, logs("google", "cloudflare"))
    assert code == 1
    out = hanko("serve", "-c", str(fresh_ca.config_path))
    assert out.returncode == 1
    assert sorted(out.stderr.strip().splitlines()) == [
        f"hanko: error: issuance.profiles.{name}: its certificates (199 days) need 3 SCTs"
        " from at least 2 log operators, and the [ct] logs cannot give them"
        for name in ("ev", "ov")
    ]


def test_ct_on_for_a_profile_needs_logs(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text()
    fresh_ca.config_path.write_text(
        text.replace("\n[ocsp]\n", '\n[issuance.profiles.ov]\nlevel = "ov"\nct = true\n\n[ocsp]\n')
    )
    code, err = check(fresh_ca, "")
    assert code == 1
    assert "issuance.profiles.ov.ct: true needs CT logs in [ct]" in err
    out = hanko("serve", "-c", str(fresh_ca.config_path))
    assert out.returncode == 1
    assert "issuance.profiles.ov.ct: true needs CT logs" in out.stderr
