"""Typed configuration: one TOML file decoded into msgspec Structs.

The names most callers need, from the modules that define them: settings.py (the shape),
schedule.py (the BR validity schedule), checks.py (ranges, files, secrets), load.py.
"""

from core.config.checks import parse_listen
from core.config.load import check_config, config_path, load_config
from core.config.schedule import BR_SCHEDULE, ScheduleEntry
from core.config.secret_ref import SecretRef
from core.config.secrets import read_secret
from core.config.settings import (
    LICENSE_KINDS,
    AcmeConfig,
    ApiConfig,
    CaConfig,
    Config,
    CrlConfig,
    HsmConfig,
    IssuanceConfig,
    LicenseConfig,
    OcspConfig,
    ProfileConfig,
    SignerConfig,
    StoreConfig,
)

__all__ = [
    "BR_SCHEDULE",
    "LICENSE_KINDS",
    "AcmeConfig",
    "ApiConfig",
    "CaConfig",
    "Config",
    "CrlConfig",
    "HsmConfig",
    "IssuanceConfig",
    "LicenseConfig",
    "OcspConfig",
    "ProfileConfig",
    "ScheduleEntry",
    "SecretRef",
    "SignerConfig",
    "StoreConfig",
    "check_config",
    "config_path",
    "load_config",
    "parse_listen",
    "read_secret",
]
