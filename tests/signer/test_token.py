"""TokenSession against a real SoftHSM token, each case in a process of its own:
SoftHSM reads its configuration once per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import DevCA

# A token directory that is empty when the module is first initialised and holds a copy
# of the CA's token from the first pause on: what a process sees when SoftHSM skipped a
# token it could not read at C_Initialize (softhsm/SoftHSMv2#757).
SCRIPT = """
import shutil, sys
from pathlib import Path
import signer.token as token
from core.config import load_config, read_secret
from core.base.errors import HsmUnavailable

cfg = load_config(Path(sys.argv[1]))
source, work, mode = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
tokens = work / "tokens"
tokens.mkdir()
conf = work / "softhsm2.conf"
conf.write_text(f"directories.tokendir = {tokens}\\nobjectstore.backend = file\\n")
pauses = []

def pause(seconds):
    pauses.append(seconds)
    if mode == "appears" and len(pauses) == 1:
        for d in source.iterdir():
            shutil.copytree(d, tokens / d.name)

token._pause = pause
try:
    s = token.TokenSession(cfg.hsm.module, cfg.hsm.token_label, read_secret(cfg, cfg.hsm.pin),
                           softhsm_conf=str(conf))
except HsmUnavailable as exc:
    print("unavailable", len(pauses), exc)
else:
    s.private_key(cfg.issuers()[0].config.ocsp_responder_key_label)
    s.close()
    s.close()
    print("found", len(pauses), token._OPEN)
"""


def _token_dir(dev_ca: DevCA) -> Path:
    cfg = dev_ca.config
    for line in cfg.path(cfg.hsm.softhsm_conf).read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "directories.tokendir":
            return Path(value.strip())
    raise AssertionError("the CA's softhsm2.conf names no token directory")


def _run(dev_ca: DevCA, tmp_path: Path, mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(dev_ca.config_path), str(_token_dir(dev_ca)),
         str(tmp_path), mode],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_token_missing_at_initialisation_is_found_after_reinitialising(
    dev_ca: DevCA, tmp_path: Path
) -> None:
    module = dev_ca.config.hsm.module
    assert _run(dev_ca, tmp_path, "appears") == f"found 1 {{{module!r}: 0}}"


def test_a_token_that_stays_missing_is_a_readable_error(dev_ca: DevCA, tmp_path: Path) -> None:
    out = _run(dev_ca, tmp_path, "never")
    assert out == (
        f"unavailable 3 no token labelled {dev_ca.config.hsm.token_label!r}"
        f" in {dev_ca.config.hsm.module}"
    )
