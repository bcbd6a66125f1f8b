"""The SHA-256 of pyproject.toml's dependency lists, as the lock files record it: the
lock files are current while it matches (tests/test_dependencies.py)."""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path


def digest(pyproject: Path) -> str:
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = {
        "dependencies": sorted(project.get("dependencies", [])),
        "optional": {
            k: sorted(v) for k, v in sorted(project.get("optional-dependencies", {}).items())
        },
        "python": project.get("requires-python", ""),
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.stdout.write(digest(root / "pyproject.toml") + "\n")
