"""The hanko CLI as a user runs it: exit codes, one readable line per failure."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import DevCA, hanko


def _tree_digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        h.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            h.update(path.read_bytes())
            h.update(str(path.stat().st_mode).encode())
    return h.hexdigest()


def test_init_then_check_config(tmp_path: Path, clean_env: dict[str, str]) -> None:
    target = tmp_path / "x"
    created = hanko("init", str(target), env=clean_env)
    assert created.returncode == 0, created.stderr
    checked = hanko("check-config", "-c", str(target / "hanko.toml"), env=clean_env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith(": ok")
    via_env = hanko(
        "check-config", "--json", env={**clean_env, "HANKO_CONFIG": str(target / "hanko.toml")}
    )
    assert via_env.returncode == 0
    assert '"ok": true' in via_env.stdout


def test_init_twice_refuses_and_changes_nothing(fresh_ca: DevCA) -> None:
    before = _tree_digest(fresh_ca.directory)
    again = hanko("init", str(fresh_ca.directory))
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1
    assert "already exists and is not empty" in again.stderr
    assert _tree_digest(fresh_ca.directory) == before


def test_init_without_softhsm_says_how_to_install(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "PATH": str(tmp_path / "empty-bin")}
    result = hanko("init", str(tmp_path / "ca"), env=env)
    assert result.returncode != 0
    assert "apt-get install softhsm2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ca").exists()


def test_check_config_names_the_misspelt_key(dev_ca: DevCA, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(dev_ca.config_path.read_text().replace("token_label", "token_lable"))
    # Relative paths resolve against the file's folder: keep it beside the CA.
    bad = dev_ca.directory / "bad-cli.toml"
    bad.write_text(dev_ca.config_path.read_text().replace("token_label", "token_lable"))
    result = hanko("check-config", "-c", str(bad))
    assert result.returncode == 1
    assert result.stderr == (
        "hanko: error: hsm.token_lable: unknown key (did you mean 'hsm.token_label'?)\n"
    )


def test_usage_errors_are_one_line(clean_env: dict[str, str]) -> None:
    for args in (["frobnicate"], ["init"], ["bench", "signer", "--seconds", "x"]):
        result = hanko(*args, env=clean_env)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_missing_config_is_one_line(clean_env: dict[str, str]) -> None:
    result = hanko("check-config", env=clean_env)
    assert result.returncode == 1
    assert result.stderr == "hanko: error: no configuration: pass -c FILE or set HANKO_CONFIG\n"
    result = hanko("check-config", "-c", "/nonexistent/hanko.toml", env=clean_env)
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_every_subcommand_has_help(clean_env: dict[str, str]) -> None:
    for args in (
        ["init"],
        ["check-config"],
        ["serve"],
        ["bench"],
        ["bench", "store"],
        ["bench", "signer"],
    ):
        result = hanko(*args, "--help", env=clean_env)
        assert result.returncode == 0
        assert "usage: hanko" in result.stdout


def test_secrets_are_private_files(fresh_ca: DevCA) -> None:
    for name in ("hsm.pin", "hsm-so.pin", "admin.token"):
        assert os.stat(fresh_ca.directory / "secrets" / name).st_mode & 0o777 == 0o600
    for name in ("api.key", "internal-ca.key"):
        assert os.stat(fresh_ca.directory / "tls" / name).st_mode & 0o777 == 0o600
    assert os.stat(fresh_ca.directory / "tls").st_mode & 0o777 == 0o700
    assert os.stat(fresh_ca.directory / "secrets").st_mode & 0o777 == 0o700
    assert os.stat(fresh_ca.directory / "tokens").st_mode & 0o777 == 0o700


def test_init_refuses_a_bad_base_url(tmp_path: Path) -> None:
    for url in ("https://pki.example.com", "http://pki.example.com/", "ftp://x"):
        result = hanko("init", str(tmp_path / "ca"), "--base-url", url)
        assert result.returncode == 1
        assert "--base-url must be an http:// URL" in result.stderr
        assert not (tmp_path / "ca").exists()


def test_init_uses_the_base_url(tmp_path: Path) -> None:
    from cryptography import x509

    hanko("init", str(tmp_path / "ca"), "--base-url", "http://pki.example.jp", check=True)
    issuing = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca" / "issuing.pem").read_bytes())
    crl_dp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crl_dp[0].full_name[0].value == "http://pki.example.jp/crl/root.crl"
    assert 'base_url = "http://pki.example.jp"' in (tmp_path / "ca" / "hanko.toml").read_text()


def test_first_certificate_from_the_command_line(fresh_ca: DevCA, tmp_path: Path) -> None:
    """What a new user does right after `hanko init`, with a CSR made by openssl."""
    import subprocess

    c = str(fresh_ca.config_path)
    hanko("licenses", "create-account", "-c", c, "acme", "--name", "Acme Japan K.K.", check=True)
    bought = hanko(
        "licenses",
        "buy",
        "-c",
        c,
        "acme",
        "acme-units",
        "--kind",
        "non_pooled",
        "--quantity",
        "10",
        check=True,
    )
    assert "10 units available" in bought.stdout
    added = hanko("licenses", "add-admin", "-c", c, "acme", "it@acme.co.jp", check=True)
    assert "it@acme.co.jp" in added.stdout
    removed = hanko("licenses", "remove-admin", "-c", c, "acme", "IT@acme.co.jp", check=True)
    assert "it@acme.co.jp" not in removed.stdout
    again = hanko("licenses", "remove-admin", "-c", c, "acme", "it@acme.co.jp")
    assert again.returncode == 1
    assert again.stderr == "hanko: error: account 'acme' has no administrator 'it@acme.co.jp'\n"
    hanko(
        "org",
        "create",
        "-c",
        c,
        "--account",
        "acme",
        "--id",
        "acme",
        "--level",
        "ov",
        "--name",
        "Acme Japan K.K.",
        "--country",
        "JP",
        "--state",
        "Tokyo-to",
        "--locality",
        "Chiyoda-ku",
        check=True,
    )
    hanko("domain", "validate", "-c", c, "--org", "acme", "--domain", "example.co.jp", check=True)
    req = tmp_path / "req.csr"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "k"),
            "-subj",
            "/CN=www.example.co.jp/OU=Web/emailAddress=admin@example.co.jp",
            "-addext",
            "subjectAltName=DNS:www.example.co.jp",
            "-out",
            str(req),
        ],
        check=True,
        capture_output=True,
    )
    issued = hanko("issue", "-c", c, "--csr", str(req), "--profile", "ov", "--organization", "acme")
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.count("BEGIN CERTIFICATE") == 2  # leaf, issuing CA; no root
    assert issued.stderr.startswith("issued ")
    printed_serial = issued.stderr.split()[1]
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued.stdout)
    from tests.conftest import openssl_verify

    openssl_verify(fresh_ca.directory / "ca", leaf)
    serial = (
        subprocess.run(
            ["openssl", "x509", "-in", str(leaf), "-noout", "-serial"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.split("=")[1]
        .strip()
    )
    assert int(printed_serial, 16) == int(serial, 16)
    inventory = hanko("licenses", "inventory", "-c", c, "acme", "--json", check=True)
    units = json.loads(inventory.stdout)["non_pooled"]
    assert (units["purchased"], units["used"], units["available"]) == (10, 1, 9)
    assert "the books balance" in hanko("licenses", "check", "-c", c, check=True).stdout
    first = hanko("revoke", "-c", c, "--serial", serial, "--reason", "keyCompromise")
    again = hanko("revoke", "-c", c, "--serial", serial, "--reason", "superseded")
    assert first.returncode == again.returncode == 0
    assert "was already revoked" in again.stdout
    assert "keyCompromise" in again.stdout
    refused = hanko(
        "issue", "-c", c, "--csr", str(req), "--profile", "ov", "--organization", "acme"
    )
    assert refused.returncode == 1
    assert refused.stderr == "hanko: error: this key is blocked (it was reported compromised)\n"
    for args in (["--days", "999"], ["--profile", "ev"]):
        bad = hanko(
            "issue", "-c", c, "--csr", str(req), "--profile", "ov", "--organization", "acme", *args
        )
        assert bad.returncode == 1
        assert bad.stderr.count("\n") == 1

    # Withdrawing the domain validation stops issuance under it (a fresh key: the first
    # is blocked), and withdrawing it twice is one readable error.
    removed = hanko("domain", "remove", "-c", c, "--org", "acme", "--domain", "Example.co.jp")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == (
        "domain example.co.jp removed from acme: no new certificate will name it\n"
    )
    fresh = tmp_path / "fresh.csr"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "k2"),
            "-subj",
            "/CN=www.example.co.jp",
            "-out",
            str(fresh),
        ],
        check=True,
        capture_output=True,
    )
    refused = hanko(
        "issue", "-c", c, "--csr", str(fresh), "--profile", "ov", "--organization", "acme"
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        "hanko: error: www.example.co.jp is not under a domain validated for acme\n"
    )
    again = hanko("domain", "remove", "-c", c, "--org", "acme", "--domain", "example.co.jp")
    assert again.returncode == 1
    assert again.stderr == (
        "hanko: error: example.co.jp is not a validated domain of organization 'acme'\n"
    )


def test_every_command_shortens_the_gil_switch_interval_and_tunes_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The core's trio thread must not wait 5 ms for the GIL behind a group commit
    # (docs/architecture.md, "The GIL switch interval").
    from core import main as cli

    set_to: list[float] = []
    thresholds: list[int] = []
    monkeypatch.setattr(sys, "setswitchinterval", set_to.append)
    monkeypatch.setattr(gc, "set_threshold", thresholds.append)
    assert cli.main(["check-config", "-c", str(tmp_path / "missing.toml")]) == 1
    assert set_to == [cli.SWITCH_INTERVAL]
    assert cli.SWITCH_INTERVAL < 0.005  # below CPython's default
    # ... and collects young objects far less often than CPython's 700 allocations.
    assert thresholds == [cli.GC_THRESHOLD]
    assert cli.GC_THRESHOLD > 700


def test_org_list_show_and_domain_list(fresh_ca: DevCA) -> None:
    c = str(fresh_ca.config_path)
    for account in ("acme", "kanto"):
        hanko(
            "licenses", "create-account", "-c", c, account, "--name", f"{account} K.K.", check=True
        )
        hanko(
            "org",
            "create",
            "-c",
            c,
            "--account",
            account,
            "--id",
            account,
            "--level",
            "ov",
            "--name",
            f"{account.title()} K.K.",
            "--country",
            "JP",
            "--state",
            "Tokyo-to",
            "--locality",
            "Chiyoda-ku",
            check=True,
        )
    for domain in ("example.co.jp", "example.jp"):
        hanko("domain", "validate", "-c", c, "--org", "acme", "--domain", domain, check=True)
    listed = json.loads(hanko("org", "list", "-c", c, "--json", check=True).stdout)
    assert [(o["id"], o["account"], o["domains"]) for o in listed] == [
        ("acme", "acme", 2),
        ("kanto", "kanto", 0),
    ]
    only = json.loads(hanko("org", "list", "-c", c, "--account", "kanto", "--json").stdout)
    assert [o["id"] for o in only] == ["kanto"]
    shown = json.loads(hanko("org", "show", "-c", c, "acme", "--json", check=True).stdout)
    assert shown["organization"] == "Acme K.K."
    assert [d["domain"] for d in shown["domains"]] == ["example.co.jp", "example.jp"]
    text = hanko("org", "show", "-c", c, "acme", check=True).stdout
    assert "subject: O=Acme K.K., L=Chiyoda-ku, ST=Tokyo-to, C=JP" in text
    domains = json.loads(hanko("domain", "list", "-c", c, "--org", "acme", "--json").stdout)
    assert [d["method"] for d in domains] == ["dns-txt", "dns-txt"]
    hanko("domain", "remove", "-c", c, "--org", "acme", "--domain", "example.jp", check=True)
    plain = hanko("domain", "list", "-c", c, "--org", "acme", check=True).stdout
    assert plain.splitlines() == ["example.co.jp\tdns-txt"]
    missing = hanko("org", "show", "-c", c, "nobody")
    assert missing.returncode == 1
    assert missing.stderr == "hanko: error: no organization 'nobody' (hanko org list)\n"
