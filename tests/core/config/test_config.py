"""Configuration: strict decoding, every problem reported with its key path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.base.errors import ConfigError
from core.config import OcspConfig, check_config, load_config
from tests.conftest import DevCA

REPO = Path(__file__).resolve().parents[3]


def _variant(ca: DevCA, tmp_path: Path, old: str, new: str) -> Path:
    text = ca.config_path.read_text()
    assert old in text, f"{old!r} not in the generated config"
    path = ca.directory / f"variant-{tmp_path.name}.toml"
    path.write_text(text.replace(old, new))
    return path


def test_generated_config_is_valid(dev_ca: DevCA) -> None:
    cfg, problems = check_config(dev_ca.config_path)
    assert problems == []
    assert cfg is not None
    assert cfg.path(cfg.store.path) == dev_ca.directory / "lmdb"
    assert cfg.issuers()[0].config.key_type == "ecdsa-p256"
    assert cfg.signer.batch_delay.seconds == pytest.approx(0.0005)


def test_misspelt_key_is_named_with_its_path(dev_ca: DevCA, tmp_path: Path) -> None:
    path = _variant(dev_ca, tmp_path, "\nmap_size =", "\nmapsize =")
    _, problems = check_config(path)
    assert problems == ["store.mapsize: unknown key (did you mean 'store.map_size'?)"]


def test_every_problem_is_reported(dev_ca: DevCA, tmp_path: Path) -> None:
    path = _variant(dev_ca, tmp_path, "batch_max = 64", 'batch_max = "x"\nbogus = 1')
    path.write_text(path.read_text().replace("[api]", "[api]\nlisten_on = 1"))
    _, problems = check_config(path)
    assert "signer.bogus: unknown key" in problems
    assert any(p.startswith("api.listen_on: unknown key") for p in problems)
    assert "signer.batch_max: Expected `int`, got `str`" in problems


def test_a_key_that_moved_names_its_new_place(dev_ca: DevCA, tmp_path: Path) -> None:
    path = _variant(
        dev_ca, tmp_path, "[api]", "[issuance]\ncrl_partitions = 4\nocsp = false\n\n[api]"
    )
    _, problems = check_config(path)
    assert problems == [
        "issuance.crl_partitions: moved to crl.partitions",
        "issuance.ocsp: moved to ocsp.enabled",
    ]
    moved = _variant(
        dev_ca, tmp_path, "[ocsp]\n", "[crl]\npartitions = 4\n\n[ocsp]\nenabled = false\n"
    )
    cfg, problems = check_config(moved)
    assert problems == []
    assert cfg is not None
    assert (cfg.crl.partitions, cfg.ocsp.enabled) == (4, False)


def test_missing_required_key(dev_ca: DevCA, tmp_path: Path) -> None:
    path = _variant(dev_ca, tmp_path, 'key_label = "hanko-issuing-1"\n', "")
    _, problems = check_config(path)
    assert problems == ["ca.issuers[0].key_label: required key is missing"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"5"', "invalid duration '5'"),
        ('"1 fortnight"', "invalid duration"),
        ("5", "expected a string with a unit such as '500ms', got int"),
        ("0.5", "got float"),
    ],
)
def test_durations_need_units(dev_ca: DevCA, tmp_path: Path, value: str, message: str) -> None:
    path = _variant(dev_ca, tmp_path, 'batch_delay = "500us"', f"batch_delay = {value}")
    _, problems = check_config(path)
    assert len(problems) == 1
    assert problems[0].startswith("signer.batch_delay:")
    assert message in problems[0]


def test_secret_file_must_be_private(fresh_ca: DevCA) -> None:
    token = fresh_ca.directory / "secrets" / "admin.token"
    token.chmod(0o644)
    _, problems = check_config(fresh_ca.config_path)
    assert len(problems) == 1
    assert problems[0].startswith("api.admin_token: secret file")
    assert "chmod 600" in problems[0]


def test_secret_from_environment(fresh_ca: DevCA, monkeypatch: pytest.MonkeyPatch) -> None:
    text = fresh_ca.config_path.read_text().replace(
        'admin_token = { file = "secrets/admin.token" }', 'admin_token = { env = "T_ADMIN" }'
    )
    fresh_ca.config_path.write_text(text)
    monkeypatch.delenv("T_ADMIN", raising=False)
    _, problems = check_config(fresh_ca.config_path)
    assert problems == ["api.admin_token: environment variable T_ADMIN is not set or empty"]
    monkeypatch.setenv("T_ADMIN", "s3cret")
    assert check_config(fresh_ca.config_path)[1] == []


def test_secret_needs_exactly_one_source(fresh_ca: DevCA) -> None:
    text = fresh_ca.config_path.read_text().replace(
        'pin = { file = "secrets/hsm.pin" }', 'pin = { file = "secrets/hsm.pin", env = "X" }'
    )
    fresh_ca.config_path.write_text(text)
    assert check_config(fresh_ca.config_path)[1] == ["hsm.pin: give exactly one of 'file' or 'env'"]


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[store\n")
    _, problems = check_config(path)
    assert len(problems) == 1
    assert "not valid TOML" in problems[0]


def test_load_config_from_environment(dev_ca: DevCA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANKO_CONFIG", str(dev_ca.config_path))
    assert load_config(None).issuers()[0].config.key_label == "hanko-issuing-1"
    monkeypatch.delenv("HANKO_CONFIG")
    with pytest.raises(ConfigError, match="pass -c FILE or set HANKO_CONFIG"):
        load_config(None)


@pytest.mark.parametrize(
    "name", ["development.toml", "production.toml", "production-postgresql.toml"]
)
def test_example_configs_have_only_known_keys(name: str) -> None:
    """The examples in configs/ decode; what remains are files this machine lacks."""
    _, problems = check_config(REPO / "configs" / name)
    structural = [p for p in problems if "unknown key" in p or "Expected" in p or "missing" in p]
    assert structural == []


def test_no_secret_values_in_config(dev_ca: DevCA) -> None:
    text = dev_ca.config_path.read_text()
    for secret in (dev_ca.directory / "secrets").iterdir():
        assert secret.read_text().strip() not in text
        assert os.stat(secret).st_mode & 0o777 == 0o600


def test_unknown_keys_inside_profiles_and_schedule(dev_ca: DevCA, tmp_path: Path) -> None:
    path = dev_ca.directory / f"nested-{tmp_path.name}.toml"
    path.write_text(
        dev_ca.config_path.read_text()
        + '\n[issuance.profiles.ov]\nlevel = "ov"\nwildcards = true\n'
        + "[[issuance.validity_schedule]]\nsince = 2026-03-15\n"
        + "max_day = 200\ndcv_reuse_days = 200\n"
    )
    _, problems = check_config(path)
    assert problems == [
        "issuance.profiles.ov.wildcards: unknown key"
        " (did you mean 'issuance.profiles.ov.wildcard'?)",
        "issuance.validity_schedule[0].max_day: unknown key"
        " (did you mean 'issuance.validity_schedule[0].max_days'?)",
        "issuance.validity_schedule[0].max_days: required key is missing",
    ]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ('validity = "7h"', "ocsp.validity: must be between 8h and 10d (BR 4.9.10)"),
        ('validity = "11d"', "ocsp.validity: must be between 8h and 10d (BR 4.9.10)"),
        ("refresh_fraction = 0.8", "ocsp.refresh_fraction: must be above 0 and at most 0.5"),
        ("cert_id_hashes = []", "ocsp.cert_id_hashes: name at least one of sha1, sha256"),
        ('listen = "nowhere"', "ocsp.listen: expected HOST:PORT, got 'nowhere'"),
        ("cache_entries = 0", "ocsp.cache_entries: must be between 1 and 100000000"),
    ],
)
def test_ocsp_settings_are_checked(dev_ca: DevCA, tmp_path: Path, lines: str, problem: str) -> None:
    path = _variant(dev_ca, tmp_path, "[ocsp]\n", f"[ocsp]\n{lines}\n")
    if lines.startswith("listen"):
        path.write_text(path.read_text().replace('listen = "127.0.0.1:8080"', ""))
    _, problems = check_config(path)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_ocsp_hash_names_are_checked(dev_ca: DevCA, tmp_path: Path) -> None:
    path = _variant(dev_ca, tmp_path, "[ocsp]\n", '[ocsp]\ncert_id_hashes = ["md5"]\n')
    _, problems = check_config(path)
    assert len(problems) == 1
    assert problems[0].startswith("ocsp.cert_id_hashes.0:")


@pytest.mark.parametrize(
    ("signer", "bulk", "problem"),
    [
        ("batch_max = 64", 256, None),  # the default: four times batch_max
        ("batch_max = 512", 2048, None),  # a config from before bulk_batch_max stays valid
        ("batch_max = 64\nqueue_max = 100", 100, None),  # ... and within queue_max
        ("batch_max = 64\nbulk_batch_max = 1000", 1000, None),
        ("batch_max = 64\nbulk_batch_max = 32", None, "signer.bulk_batch_max: must be 0"),
        (
            "batch_max = 64\nbulk_batch_max = 1000\nqueue_max = 500",
            None,
            "signer.queue_max: must be at least signer.bulk_batch_max",
        ),
    ],
)
def test_bulk_batch_max(
    dev_ca: DevCA, tmp_path: Path, signer: str, bulk: int | None, problem: str | None
) -> None:
    cfg, problems = check_config(_variant(dev_ca, tmp_path, "batch_max = 64", signer))
    if problem is None:
        assert problems == []
        assert cfg is not None
        assert cfg.signer.bulk_batch == bulk
    else:
        assert len(problems) == 1
        assert problems[0].startswith(problem)


def test_responder_processes_default_to_one_per_cpu() -> None:
    assert OcspConfig().responder_processes == (os.cpu_count() or 1)
    assert OcspConfig(processes=3).responder_processes == 3


def with_store_table(ca: DevCA, tmp_path: Path, table: str) -> Path:
    text = ca.config_path.read_text()
    start, end = text.index("[store]"), text.index("[hsm]")
    path = ca.directory / f"store-{tmp_path.name}.toml"
    path.write_text(text[:start] + table + "\n" + text[end:])
    return path


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('backend = "postgresql"', "store.dsn: set it (postgresql://USER@HOST:PORT/DBNAME)"),
        (
            'backend = "postgresql"\ndsn = "postgresql://hanko:hunter2@db:5432/hanko"',
            "store.dsn: no password in the DSN; use store.password (a file or an environment"
            " variable)",
        ),
        (
            'backend = "postgresql"\ndsn = "postgresql://hanko@db/hanko"\n'
            'synchronous_commit = "off"',
            "store.synchronous_commit: one of on, remote_apply, remote_write (got 'off': an"
            " acknowledged write could be lost)",
        ),
        ('backend = "postgresql"\ndsn = "nonsense"', "store.dsn: not a PostgreSQL DSN"),
        ('backend = "sqlite"', "store.backend: Invalid enum value 'sqlite'"),
    ],
)
def test_a_postgresql_store_is_checked(
    dev_ca: DevCA, tmp_path: Path, table: str, problem: str
) -> None:
    _, problems = check_config(with_store_table(dev_ca, tmp_path, "[store]\n" + table))
    assert any(p.startswith(problem) for p in problems), problems
    assert not any("hunter2" in p for p in problems)


def test_issuer_tables_refuse_what_they_would_ignore(dev_ca: DevCA, tmp_path: Path) -> None:
    base = 'base_url = "http://pki.hanko.example.com"\n'
    stray = _variant(dev_ca, tmp_path, base, base + 'issuer_url = "http://x.example.com/i.cer"\n')
    assert check_config(stray)[1] == [
        "ca.issuer_url: each issuer has its own (issuer_url in [[ca.issuers]])"
    ]
    mixed = _variant(dev_ca, tmp_path, base, base + 'issuer_cert = "ca/issuing.pem"\n')
    assert check_config(mixed)[1][0].startswith("ca.issuer_cert: the one-issuer form and")
    outside = _variant(
        dev_ca,
        tmp_path,
        'crl_url = "http://pki.hanko.example.com/crl"\n',
        'crl_url = "http://pki.hanko.example.com/elsewhere"\n',
    )
    assert any(p.startswith("ca.issuers[0].crl_url: must be") for p in check_config(outside)[1])
