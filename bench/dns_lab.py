"""A DNSSEC lab on loopback: NSD serving a signed TLD and its child zones, and Unbound
validating in front of it, as a CA would run its resolver. Everything is real: the
zones are signed by ldns-signzone with keys made here, Unbound holds the TLD's key as
its trust anchor and follows the chain of DS records down.

- `tld` ("test." by default) is signed; each child zone is delegated from it:
  signed (DS in the parent: answers validated, AD set), unsigned (no DS: insecure,
  answered without AD), bogus (DS in the parent, but a record changed after signing:
  Unbound answers SERVFAIL), or broken (NSD has no data for it: SERVFAIL).
- Names outside the lab's TLD are answered NXDOMAIN by Unbound itself (`catch_all`):
  the tests' certificates name domains such as example.co.jp that must not send
  Unbound to the internet, which this machine does not reach.
- `set(zone, records)` rewrites a zone (re-signed), reloads it in NSD and flushes what
  Unbound cached of it, so the next question sees the change.

Used by `hanko bench issue` (its resolver, and the names of its CAA section) and by the
tests (conftest's session lab: every `hanko init` CA of the tests points its [dns]
resolver here). Needs Debian's nsd, unbound, ldnsutils and bind9-dnsutils
(`scripts/dev.sh setup` installs them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("signed", "unsigned", "bogus", "broken")
TOOLS = ("nsd", "nsd-control", "unbound", "unbound-control", "ldns-keygen", "ldns-signzone", "dig")


@dataclass
class Zone:
    name: str  # without the trailing dot, e.g. "signed.test"
    kind: str = "signed"
    records: list[str] = field(default_factory=list)  # zone-file lines, names absolute
    key: str = ""  # the basename of its key files (signed and bogus zones)


def _free_port() -> int:
    # UDP and TCP on the same number: both are free when both binds succeed.
    for _ in range(50):
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a DNS server")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class DnsLab:
    def __init__(
        self,
        directory: Path,
        zones: list[Zone],
        *,
        tld: str = "test",
        catch_all: bool = True,
        cache_max_ttl: int = 1,
        tld_records: list[str] | None = None,
    ) -> None:
        missing = missing_tools()
        if missing:
            raise RuntimeError(
                f"{', '.join(missing)} not installed: run scripts/dev.sh setup (nsd, unbound,"
                " ldnsutils)"
            )
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tld = tld
        self.tld_records = list(tld_records or [])  # names right under the TLD
        self.zones = {z.name: z for z in zones}
        self.catch_all = catch_all
        self.cache_max_ttl = cache_max_ttl
        self.nsd_port = _free_port()
        self.port = _free_port()
        self.resolver = f"127.0.0.1:{self.port}"
        self._serial = int(time.time())
        self._tld_key = self._keygen(tld)
        for z in self.zones.values():
            if z.kind not in KINDS:
                raise ValueError(f"zone kind {z.kind!r}: one of {KINDS}")
            if z.kind in ("signed", "bogus"):
                z.key = self._keygen(z.name)
        self._nsd: subprocess.Popen[bytes] | None = None
        self._unbound: subprocess.Popen[bytes] | None = None

    # -- zones ----------------------------------------------------------------------

    def _keygen(self, name: str) -> str:
        out = subprocess.run(
            ["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", f"{name}."],
            cwd=self.dir,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def _head(self, name: str) -> list[str]:
        self._serial += 1
        return [
            f"$TTL {self.cache_max_ttl}",
            f"{name}. IN SOA ns.{self.tld}. hostmaster.{self.tld}. {self._serial} 60 60 600"
            f" {self.cache_max_ttl}",
            f"{name}. IN NS ns.{self.tld}.",
        ]

    def _write(self, zone: Zone) -> None:
        lines = self._head(zone.name) + list(zone.records)
        path = self.dir / f"{zone.name}.zone"
        if zone.kind == "broken":
            # Configured in NSD with no file to load: NSD answers SERVFAIL for it.
            path.unlink(missing_ok=True)
            return
        path.write_text("\n".join(lines) + "\n")
        if zone.kind == "unsigned":
            return
        self._sign(path, zone.name, zone.key)
        if zone.kind == "bogus":
            signed = path.with_suffix(".zone.signed")
            text = signed.read_text()
            # A record changed after it was signed: its RRSIG no longer verifies.
            text = _tamper(text)
            signed.write_text(text)

    def _write_tld(self) -> None:
        lines = [*self._head(self.tld), f"ns.{self.tld}. IN A 127.0.0.1", *self.tld_records]
        for z in self.zones.values():
            lines.append(f"{z.name}. IN NS ns.{self.tld}.")
            if z.key:
                lines += (self.dir / f"{z.key}.ds").read_text().strip().splitlines()
        path = self.dir / f"{self.tld}.zone"
        path.write_text("\n".join(lines) + "\n")
        self._sign(path, self.tld, self._tld_key)

    def _sign(self, path: Path, origin: str, key: str) -> None:
        subprocess.run(
            ["ldns-signzone", "-o", f"{origin}.", path.name, key],
            cwd=self.dir,
            check=True,
            capture_output=True,
        )

    def _zonefile(self, zone: str) -> str:
        z = self.zones.get(zone)
        if z is not None and z.kind == "unsigned":
            return f"{zone}.zone"
        return f"{zone}.zone.signed"

    # -- processes ------------------------------------------------------------------

    def start(self) -> DnsLab:
        self._write_tld()
        for z in self.zones.values():
            self._write(z)
        self._nsd_conf()
        self._unbound_conf()
        self._nsd = subprocess.Popen(
            ["nsd", "-d", "-c", str(self.dir / "nsd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "nsd.stderr").open("w"),
        )
        self._wait_port(self.nsd_port, self._nsd, "nsd")
        self._unbound = subprocess.Popen(
            ["unbound", "-d", "-c", str(self.dir / "unbound.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "unbound.stderr").open("w"),
        )
        self._wait_port(self.port, self._unbound, "unbound")
        return self

    def _wait_port(self, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = (self.dir / f"{what}.stderr").read_text()[-2000:]
                raise RuntimeError(f"{what} exited: {err}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not start listening on {port}")

    def _nsd_conf(self) -> None:
        d = self.dir
        zones = "".join(
            f"zone:\n  name: {name}.\n  zonefile: {self._zonefile(name)}\n"
            for name in (self.tld, *self.zones)
        )
        (d / "nsd.conf").write_text(
            "server:\n"
            f"  ip-address: 127.0.0.1@{self.nsd_port}\n"
            f'  zonesdir: "{d}"\n'
            f'  pidfile: "{d}/nsd.pid"\n'
            f'  xfrdfile: "{d}/xfrd.state"\n'
            f'  xfrdir: "{d}"\n'
            f'  zonelistfile: "{d}/zone.list"\n'
            '  database: ""\n'
            '  username: ""\n'
            '  chroot: ""\n'
            f'  logfile: "{d}/nsd.log"\n'
            "  server-count: 1\n"
            "  verbosity: 1\n"
            "  hide-version: yes\n"
            # Response rate limiting would throttle the one resolver asking everything.
            "  rrl-ratelimit: 0\n"
            "  rrl-whitelist-ratelimit: 0\n"
            "remote-control:\n"
            "  control-enable: yes\n"
            f'  control-interface: "{d}/nsd.ctl"\n' + zones
        )

    def _unbound_conf(self) -> None:
        anchor = (self.dir / f"{self._tld_key}.ds").read_text().strip()
        upstream = f"127.0.0.1@{self.nsd_port}"
        text = unbound_conf(
            self.dir,
            self.port,
            self.tld,
            upstream,
            anchor,
            catch_all=self.catch_all,
            cache_max_ttl=self.cache_max_ttl,
        )
        (self.dir / "unbound.conf").write_text(text)

    def view(self, name: str) -> ResolverView:
        """Another validating resolver of the lab's zones, with a cache of its own (a
        remote perspective's): its answers can be made to differ (`hijack`)."""
        anchor = (self.dir / f"{self._tld_key}.ds").read_text().strip()
        view = ResolverView(
            self.dir / f"view-{name}",
            stub=(self.tld, f"127.0.0.1@{self.nsd_port}"),
            anchor=anchor,
            catch_all=self.catch_all,
        )
        return view.start()

    def stop(self) -> None:
        for proc in (self._unbound, self._nsd):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def __enter__(self) -> DnsLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- changes --------------------------------------------------------------------

    def set(self, zone: str, records: list[str]) -> None:
        """Replace a child zone's records (re-signed) and have NSD serve them now."""
        z = self.zones[zone]
        z.records = list(records)
        self._write(z)
        self._reload(zone)
        # What Unbound knew of the zone (negative answers, NSEC ranges it would
        # synthesize answers from) is forgotten: the next question sees the change.
        self.settle(zone)

    def add(self, zone: str, records: list[str]) -> None:
        self.set(zone, [*self.zones[zone].records, *records])

    def replace(self, zone: str, owner: str, records: list[str]) -> None:
        """The zone with every record of `owner` replaced by `records`."""
        kept = [r for r in self.zones[zone].records if r.split()[0] != f"{owner}."]
        self.set(zone, [*kept, *records])

    def _reload(self, zone: str) -> None:
        subprocess.run(
            ["nsd-control", "-c", str(self.dir / "nsd.conf"), "reload", f"{zone}."],
            check=True,
            capture_output=True,
        )
        # The reload is asynchronous: wait until NSD serves the new serial.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._nsd_serial(zone) == self._serial:
                return
            time.sleep(0.02)
        raise RuntimeError(f"nsd did not load the new {zone} zone")

    def _nsd_serial(self, zone: str) -> int | None:
        out = subprocess.run(
            [
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                str(self.nsd_port),
                "@127.0.0.1",
                f"{zone}.",
                "SOA",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        fields = out.stdout.split()
        return int(fields[2]) if len(fields) >= 3 and fields[2].isdigit() else None

    @property
    def unbound_pid(self) -> int:
        assert self._unbound is not None, "the lab is not started"
        return self._unbound.pid

    @property
    def nsd_pid(self) -> int:
        assert self._nsd is not None, "the lab is not started"
        return self._nsd.pid

    def settle(self, zone: str | None = None) -> None:
        """Forget what Unbound cached of `zone` (all of it when None): the next
        questions see the zone as NSD now serves it."""
        command = ["flush_zone", f"{zone}."] if zone else ["flush_zone", "."]
        subprocess.run(
            ["unbound-control", "-c", str(self.dir / "unbound.conf"), *command],
            check=True,
            capture_output=True,
        )


def unbound_conf(
    directory: Path,
    port: int,
    zone: str,
    upstream: str,
    anchor: str | None,
    *,
    catch_all: bool = True,
    cache_max_ttl: int = 1,
    forward: bool = False,
) -> str:
    """An Unbound on 127.0.0.1:`port` asking `upstream` for `zone` (a stub zone; or
    every name, forwarded, when `forward`), validating from `anchor` (None: no DNSSEC)."""
    d = directory
    if forward:
        routes = f'forward-zone:\n  name: "."\n  forward-addr: {upstream}\n'
        local = ""
    else:
        routes = f'stub-zone:\n  name: "{zone}."\n  stub-addr: {upstream}\n'
        local = f'  local-zone: "{zone}." transparent\n'
        local += '  local-zone: "." static\n' if catch_all else ""
    validation = f'  trust-anchor: "{anchor}"\n' if anchor else '  module-config: "iterator"\n'
    return (
        "server:\n"
        f"  interface: 127.0.0.1@{port}\n"
        f"  port: {port}\n"
        "  do-not-query-localhost: no\n"
        '  username: ""\n'
        '  chroot: ""\n'
        f'  directory: "{d}"\n'
        f'  pidfile: "{d}/unbound.pid"\n'
        "  use-syslog: no\n"
        f'  logfile: "{d}/unbound.log"\n'
        "  verbosity: 1\n"
        "  val-log-level: 2\n"
        "  num-threads: 1\n"
        "  so-reuseport: no\n"
        "  qname-minimisation: no\n"
        "  prefetch: no\n"
        f"  cache-max-ttl: {cache_max_ttl}\n"
        f"  cache-max-negative-ttl: {cache_max_ttl}\n"
        "  infra-host-ttl: 1\n" + validation + local + routes + "remote-control:\n"
        "  control-enable: yes\n"
        f'  control-interface: "{d}/unbound.ctl"\n'
        "  control-use-cert: no\n"
    )


class ResolverView:
    """An Unbound of its own (its own cache) over the same authoritative data as
    another resolver: a stub to the lab's NSD with its trust anchor, or a forwarder to
    any DNS server (`forward`, without DNSSEC). `hijack` makes it answer some records
    its own way (Unbound's local data), as a poisoned resolver or a hijacked route
    near one perspective would; `restore` takes that back."""

    def __init__(
        self,
        directory: Path,
        *,
        stub: tuple[str, str] | None = None,
        forward: str | None = None,
        anchor: str | None = None,
        catch_all: bool = True,
    ) -> None:
        if (stub is None) == (forward is None):
            raise ValueError("a view has either a stub zone or a forwarder")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.resolver = f"127.0.0.1:{self.port}"
        zone, upstream = stub if stub is not None else ("", forward or "")
        text = unbound_conf(
            self.dir, self.port, zone, upstream, anchor, catch_all=catch_all, forward=bool(forward)
        )
        (self.dir / "unbound.conf").write_text(text)
        self._proc: subprocess.Popen[bytes] | None = None
        self.hijacked: set[str] = set()

    def start(self) -> ResolverView:
        self._proc = subprocess.Popen(
            ["unbound", "-d", "-c", str(self.dir / "unbound.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "unbound.stderr").open("w"),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("unbound exited: " + (self.dir / "unbound.stderr").read_text())
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"unbound did not start listening on {self.port}")

    def _control(self, *command: str) -> None:
        subprocess.run(
            ["unbound-control", "-c", str(self.dir / "unbound.conf"), *command],
            check=True,
            capture_output=True,
        )

    def hijack(self, records: list[str]) -> None:
        """Answer these records (zone-file lines, names absolute) from here, whatever
        the zone says."""
        for record in records:
            self._control("local_data", record)
            self.hijacked.add(record.split()[0])

    def restore(self) -> None:
        for name in sorted(self.hijacked):
            self._control("local_data_remove", name)
        self.hijacked.clear()
        self._control("flush_zone", ".")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _tamper(signed_zone: str) -> str:
    """The zone with every CAA and TXT record's data changed (their RRSIGs kept)."""
    out = []
    done = False
    for line in signed_zone.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[3] in ("CAA", "TXT"):
            line = line.replace('"', '"evil', 1)  # noqa: PLW2901
            done = True
        out.append(line)
    if not done:
        raise ValueError("a bogus zone needs a CAA or TXT record to tamper with")
    return "\n".join(out) + "\n"
