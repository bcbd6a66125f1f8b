"""The one DNS client: questions to the configured recursive resolver (`[dns] resolver`,
HOST:PORT; the first `nameserver` of /etc/resolv.conf when empty), asked in batches.

A batch is sent at once on a fresh connected UDP socket (a random source port per
batch, a random id per question, and the kernel drops datagrams from any other
address), and read back as the answers come; a question not answered within its
share of the deadline is asked again, up to `retries` times, then fails. A truncated
answer is asked again over TCP. A reply that does not answer its question exactly is
ignored, as a forgery would be.

A failure (SERVFAIL, which a validating resolver answers for a bogus DNSSEC answer;
REFUSED; a timeout; nobody listening) is a DnsError, which callers must treat as
failure, never as "no record": only NXDOMAIN and an empty answer mean nothing is
there. Nothing is cached here: every decision is made on answers fetched for it.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Sequence
from pathlib import Path

import msgspec
import trio

from core.base.errors import HankoError
from core.dns import wire

# Questions in flight per socket, and sockets in flight per client: at most 128 at
# once, each socket with room for its answers. Four batches of 200 CAA questions at
# once against a default Unbound: 256 x 4 in flight lost answers (72 of 32,000, each a
# retry a third of the deadline later); 64 x 2 lost none in the same time, measured here.
WINDOW = 64
SOCKETS = 2
RECEIVE_BUFFER = 1 << 20
_RECV = 65535
_RESOLV_CONF = Path("/etc/resolv.conf")


class DnsError(HankoError):
    """The resolver did not answer the question (SERVFAIL, timeout, refused)."""

    code = "dns_failed"


class DnsSettings(msgspec.Struct, frozen=True, kw_only=True):
    server: str = ""  # HOST:PORT; "" for the system's resolvers
    timeout: float = 5.0  # a whole lookup, retries included
    retries: int = 2


def split_server(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def system_server(resolv_conf: Path = _RESOLV_CONF) -> tuple[str, int]:
    """The first nameserver of resolv.conf, port 53."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return fields[1].split("%")[0], 53
    raise DnsError("no [dns] resolver is set and resolv.conf names no nameserver")


Question = tuple[str, int]  # (name, type)


class DnsClient:
    def __init__(self, settings: DnsSettings) -> None:
        self._settings = settings
        self._server: tuple[str, int] | None = (
            split_server(settings.server) if settings.server else None
        )
        self._sockets = trio.CapacityLimiter(SOCKETS)
        self.asked = 0  # questions sent (retries not counted)
        self.failed = 0
        self.over_tcp = 0  # asked again over TCP: the UDP answer was truncated
        self.resent = 0  # asked again over UDP: no answer within the attempt's share

    @property
    def settings(self) -> DnsSettings:
        return self._settings

    def _address(self) -> tuple[str, int]:
        if self._server is None:
            self._server = system_server()
        return self._server

    async def ask(self, name: str, qtype: int) -> wire.Reply:
        [reply] = await self.ask_many([(name, qtype)])
        if isinstance(reply, DnsError):
            raise reply
        return reply

    async def ask_many(self, questions: Sequence[Question]) -> list[wire.Reply | DnsError]:
        """One reply (NOERROR or NXDOMAIN) or DnsError per question, in order."""
        out: list[wire.Reply | DnsError | None] = [None] * len(questions)
        self.asked += len(questions)
        for start in range(0, len(questions), WINDOW):
            window = list(range(start, min(start + WINDOW, len(questions))))
            async with self._sockets:
                await self._udp(questions, window, out)
        for i, reply in enumerate(out):
            if isinstance(reply, wire.Reply) and reply.truncated:
                self.over_tcp += 1
                out[i] = await self._tcp(*questions[i])
        done: list[wire.Reply | DnsError] = []
        for (name, qtype), reply in zip(questions, out, strict=True):
            result = _judged(name, qtype, reply)
            self.failed += isinstance(result, DnsError)
            done.append(result)
        return done

    async def _udp(
        self,
        questions: Sequence[Question],
        window: list[int],
        out: list[wire.Reply | DnsError | None],
    ) -> None:
        host, port = self._address()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        pending: dict[int, int] = {}  # id -> question index
        queries: dict[int, bytes] = {}
        asked: dict[int, bytes] = {}  # id -> its question section
        for qid, i in zip(_unique_ids(len(window)), window, strict=True):
            name, qtype = questions[i]
            try:
                asked[qid] = wire.question(name, qtype)
            except ValueError as exc:
                out[i] = DnsError(str(exc))
                continue
            queries[qid] = wire.query_with(qid, asked[qid])
            pending[qid] = i
        attempts = self._settings.retries + 1
        per_attempt = self._settings.timeout / attempts
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            # Room for a window of answers that arrive while the loop is busy elsewhere.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            try:
                sock.connect((host, port))
            except OSError:
                for i in pending.values():
                    out[i] = DnsError("the DNS resolver is unreachable")
                return
            for attempt in range(attempts):
                if not pending:
                    return
                self.resent += len(pending) if attempt else 0
                try:
                    await _send_all(sock, [queries[q] for q in pending])
                    with trio.move_on_after(per_attempt):
                        await _read(sock, questions, pending, asked, out)
                except OSError:  # ICMP port unreachable: nobody listens there
                    for i in pending.values():
                        out[i] = DnsError("the DNS resolver refused the connection")
                    return
        for i in pending.values():
            name, _ = questions[i]
            out[i] = DnsError(f"no answer from the DNS resolver for {name}")

    async def _tcp(self, name: str, qtype: int) -> wire.Reply | DnsError:
        host, port = self._address()
        qid = secrets.randbelow(65536)
        query = wire.encode_query(qid, name, qtype, payload=65535)
        with trio.move_on_after(self._settings.timeout):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError:
                return DnsError("the DNS resolver refused a TCP connection")
            async with stream:
                try:
                    await stream.send_all(struct.pack("!H", len(query)) + query)
                    head = await _receive_exactly(stream, 2)
                    data = await _receive_exactly(stream, struct.unpack("!H", head)[0])
                    return wire.decode_reply(data, qid, name, qtype)
                except (OSError, trio.BrokenResourceError, wire.WireError, EOFError):
                    return DnsError(f"no usable TCP answer from the DNS resolver for {name}")
        return DnsError(f"no answer from the DNS resolver for {name} over TCP")


def _unique_ids(n: int) -> list[int]:
    """`n` different random query ids (one read of the system's random source)."""
    raw = secrets.token_bytes(4 * n)
    ids = list(dict.fromkeys(int.from_bytes(raw[i : i + 2], "big") for i in range(0, 4 * n, 2)))
    while len(ids) < n:  # improbable: more than n of the 2n drawn collided
        ids = list(dict.fromkeys([*ids, secrets.randbelow(65536)]))
    return ids[:n]


async def _send_all(sock: socket.socket, datagrams: list[bytes]) -> None:
    for data in datagrams:
        while True:
            try:
                sock.send(data)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
    await trio.lowlevel.checkpoint()


async def _read(
    sock: socket.socket,
    questions: Sequence[Question],
    pending: dict[int, int],
    asked: dict[int, bytes],
    out: list[wire.Reply | DnsError | None],
) -> None:
    while pending:
        try:
            data = sock.recv(_RECV)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        if len(data) < 2:
            continue
        qid = (data[0] << 8) | data[1]
        i = pending.get(qid)
        if i is None:
            continue
        name, qtype = questions[i]
        try:
            out[i] = wire.decode_reply(data, qid, name, qtype, asked[qid])
        except wire.WireError:
            continue  # not the answer to this question: wait for the real one
        del pending[qid]


async def _receive_exactly(stream: trio.SocketStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _judged(name: str, qtype: int, reply: wire.Reply | DnsError | None) -> wire.Reply | DnsError:
    if reply is None:
        return DnsError(f"no answer from the DNS resolver for {name}")
    if isinstance(reply, DnsError):
        return reply
    if reply.truncated:
        return DnsError(f"a truncated answer for {name} came again over TCP")
    if reply.rcode in (0, 3):  # NOERROR, NXDOMAIN
        return reply
    kind = next((k for k, v in wire.TYPES.items() if v == qtype), str(qtype))
    return DnsError(f"DNS lookup of {kind} {name} failed ({reply.rcode_text})")
