"""Remote perspectives on one machine, for `hanko bench acme` and the tests: real
`hanko perspective serve` processes made by `hanko perspective init` from a CA, each on
a loopback address of its own (127.0.0.x) with a resolver of its own (an Unbound view
over the same zones, whose answers can be hijacked), and the primary's [mpic] table
pointing at them."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.dns_lab import ResolverView
from bench.issue_common import free_port
from core.mpic.client import Corroborator, Perspective, client_context

BIN = Path(sys.executable).parent

RIRS6 = (
    ("ap-tokyo", "APNIC"),
    ("ap-osaka", "APNIC"),
    ("eu-paris", "RIPE"),
    ("eu-berlin", "RIPE"),
    ("us-ohio", "ARIN"),
    ("sa-lima", "LACNIC"),
)


class Remote:
    def __init__(self, code: str, rir: str, view: ResolverView, host: str, port: int) -> None:
        self.code = code
        self.rir = rir
        self.view = view
        self.host = host
        self.port = port
        self.url = f"https://{host}:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.directory = Path()

    def entry(self) -> str:
        return f'{{ url = "{self.url}", code = "{self.code}", rir = "{self.rir}" }}'


class PerspectiveLab:
    def __init__(
        self,
        config_path: Path,
        directory: Path,
        specs: Sequence[tuple[str, str]],
        view: Callable[[str], ResolverView],
    ) -> None:
        self.config_path = config_path
        self.tls_dir = config_path.parent / "tls"
        self.directory = directory
        self.remotes: dict[str, Remote] = {}
        for k, (code, rir) in enumerate(specs):
            host = f"127.0.0.{20 + k}"
            self.remotes[code] = Remote(code, rir, view(code), host, _free_port_on(host))

    def start(self) -> PerspectiveLab:
        for r in self.remotes.values():
            r.directory = self.directory / r.code
            argv = ["perspective", "init", str(r.directory), "-c", str(self.config_path)]
            argv += ["--code", r.code, "--rir", r.rir, "--listen", f"{r.host}:{r.port}"]
            argv += ["--resolver", r.view.resolver, "--allow-private-targets"]
            subprocess.run([str(BIN / "hanko"), *argv], check=True, capture_output=True, timeout=60)
            self._spawn(r)
        for r in self.remotes.values():
            _wait_port(r)
        return self

    def _spawn(self, r: Remote) -> None:
        log = (r.directory / "serve.log").open("w")
        r.proc = subprocess.Popen(
            [
                str(BIN / "hanko"),
                "perspective",
                "serve",
                "-c",
                str(r.directory / "perspective.toml"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )

    def stop(self) -> None:
        for r in self.remotes.values():
            if r.proc is not None and r.proc.poll() is None:
                r.proc.send_signal(signal.SIGCONT)
                r.proc.terminate()
                try:
                    r.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
            r.view.stop()

    # -- faults ---------------------------------------------------------------------

    def kill(self, code: str) -> None:
        r = self.remotes[code]
        assert r.proc is not None
        r.proc.kill()
        r.proc.wait()

    def revive(self, code: str) -> None:
        r = self.remotes[code]
        self._spawn(r)
        _wait_port(r)

    def pause(self, code: str) -> None:
        """Stopped (SIGSTOP): its socket still accepts, it answers nothing."""
        proc = self.remotes[code].proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)

    def resume(self, code: str) -> None:
        proc = self.remotes[code].proc
        assert proc is not None
        proc.send_signal(signal.SIGCONT)

    def restore(self) -> None:
        for r in self.remotes.values():
            if r.view.hijacked:
                r.view.restore()

    # -- the primary ----------------------------------------------------------------

    def mpic_table(self, codes: Sequence[str] | None = None, timeout: str = "3s") -> str:
        chosen = [self.remotes[c] for c in (codes or list(self.remotes))]
        items = ",\n  ".join(r.entry() for r in chosen)
        return f'[mpic]\ntimeout = "{timeout}"\nperspectives = [\n  {items},\n]\n'

    def configure(self, codes: Sequence[str] | None = None, timeout: str = "3s") -> None:
        """The primary's [mpic] table: these perspectives (all by default), enabled."""
        text = self.config_path.read_text()
        table = self.mpic_table(codes, timeout)
        new, n = re.subn(r"(?ms)^\[mpic\]\n.*?(?=^\[)", table + "\n", text)
        if n != 1:
            raise RuntimeError(f"no [mpic] table in {self.config_path}")
        self.config_path.write_text(new)

    def disable(self) -> None:
        """The primary's [mpic] table: off (the laboratory switch)."""
        text = self.config_path.read_text()
        new = re.sub(r"(?ms)^\[mpic\]\n.*?(?=^\[)", "[mpic]\nenabled = false\n\n", text)
        self.config_path.write_text(new)

    def corroborator(
        self, codes: Sequence[str] | None = None, *, timeout: float = 3.0, required: int = 5
    ) -> Corroborator:
        tls_dir = self.tls_dir
        chosen = [self.remotes[c] for c in (codes or list(self.remotes))]
        return Corroborator(
            [Perspective(url=r.url, code=r.code, rir=r.rir) for r in chosen],
            required=lambda: required,
            timeout=timeout,
            tls=client_context(
                ca_file=str(tls_dir / "internal-ca.pem"),
                cert_file=str(tls_dir / "mpic-client.pem"),
                key_file=str(tls_dir / "mpic-client.key"),
            ),
        )


def _free_port_on(host: str) -> int:
    for _ in range(20):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host}")


def _wait_port(r: Remote) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert r.proc is not None
        if r.proc.poll() is not None:
            raise RuntimeError(
                f"perspective {r.code} exited: {(r.directory / 'serve.log').read_text()}"
            )
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((r.host, r.port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"perspective {r.code} did not listen on {r.host}:{r.port}")
