"""The lock files are current: written (scripts/lock.sh) from the dependencies
pyproject.toml declares now, every pin with its hashes, and the virtualenv the tests run
in holds exactly what requirements-dev.lock pins. A production host (`pip install .`,
requirements.lock) gets neither hypercorn nor the benchmarks' plotting."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from lock_digest import digest  # noqa: E402

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def declared() -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {k: [Requirement(r) for r in v] for k, v in project["optional-dependencies"].items()}
    return [Requirement(r) for r in project["dependencies"]], extras


def test_the_lock_files_were_written_from_pyprojects_dependencies() -> None:
    want = digest(ROOT / "pyproject.toml")
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        assert f"# pyproject dependencies sha256: {want}" in text, (
            f"{lock} is stale: run scripts/lock.sh"
        )


def test_every_declared_dependency_is_pinned_within_its_range_with_hashes() -> None:
    main, extras = declared()
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    for req in main:
        name = canonicalize_name(req.name)
        assert name in runtime, req
        assert req.specifier.contains(runtime[name]), req
    for req in [*main, *extras["dev"], *extras["bench"]]:
        name = canonicalize_name(req.name)
        assert name in dev, req
        assert req.specifier.contains(dev[name]), req
    for lock in ("requirements.lock", "requirements-dev.lock"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        for block in blocks:
            if "==" in block.split("\n", 1)[0]:
                assert "--hash=sha256:" in block, block.split("\n", 1)[0]


def test_a_production_install_takes_no_hypercorn_and_no_plotting() -> None:
    runtime = pins("requirements.lock")
    assert "hypercorn" not in runtime
    assert "matplotlib" not in runtime
    assert "pytest-benchmark" not in runtime
    assert "hypercorn" not in pins("requirements-dev.lock")


def test_the_virtualenv_holds_what_the_dev_lock_pins() -> None:
    for name, version in pins("requirements-dev.lock").items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise AssertionError(
                f"{name} is pinned but not installed: run scripts/dev.sh setup"
            ) from None
        assert installed == version, f"{name} {installed} installed, {version} pinned"
