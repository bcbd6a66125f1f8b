"""The primary's mutual-TLS link to one remote perspective: HTTP/1.1 through h11 over
trio's TLS streams, connections kept alive and reused (a handshake per request would
cost more than the check), at most `connections` open, every response read within a
byte limit. A connection that fails or is cancelled is closed, never reused."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import h11
import trio


class LinkError(Exception):
    """The perspective could not be asked: no connection, TLS refused, a broken or
    oversized answer."""


class _Conn:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=16 << 10)


class Link:
    def __init__(self, url: str, tls: ssl.SSLContext, *, connections: int = 32) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{url}: https://HOST:PORT")
        self._host = parts.hostname
        self._port = parts.port or 443
        self._authority = parts.netloc
        self._tls = tls
        self._idle: list[_Conn] = []
        self._slots = trio.Semaphore(connections)

    async def request(self, method: str, path: str, body: bytes, limit: int) -> tuple[int, bytes]:
        """(status, body) of one request; LinkError when it could not be had."""
        async with self._slots:
            while True:
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    status, data = await self._exchange(conn, method, path, body, limit)
                except LinkError:
                    await trio.aclose_forcefully(conn.stream)
                    if reused:  # the perspective closed it while idle: a fresh one
                        continue
                    raise
                except BaseException:
                    await trio.aclose_forcefully(conn.stream)
                    raise
                if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                    conn.h11.start_next_cycle()
                    self._idle.append(conn)
                else:
                    await trio.aclose_forcefully(conn.stream)
                return status, data

    async def _connect(self) -> _Conn:
        try:
            tcp = await trio.open_tcp_stream(self._host, self._port)
        except OSError as exc:
            raise LinkError(f"unreachable ({exc.__class__.__name__})") from None
        stream = trio.SSLStream(tcp, self._tls, server_hostname=self._host)
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            cause = exc.__cause__.__class__.__name__ if exc.__cause__ else "BrokenResourceError"
            raise LinkError(f"unreachable (TLS: {cause})") from None
        return _Conn(stream)

    async def _exchange(
        self, conn: _Conn, method: str, path: str, body: bytes, limit: int
    ) -> tuple[int, bytes]:
        c = conn.h11
        headers = [("Host", self._authority), ("Content-Length", str(len(body)))]
        if body:
            headers.append(("Content-Type", "application/json"))
        try:
            out = c.send(h11.Request(method=method, target=path, headers=headers))
            out += c.send(h11.Data(data=body)) if body else b""
            await conn.stream.send_all(out + c.send(h11.EndOfMessage()))
            status, data = 0, bytearray()
            while True:
                event = c.next_event()
                if event is h11.NEED_DATA:
                    c.receive_data(bytes(await conn.stream.receive_some(65536)))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    data += event.data
                    if len(data) > limit:
                        raise LinkError("answered more than a reply can hold")
                elif isinstance(event, h11.EndOfMessage):
                    return status, bytes(data)
                elif isinstance(event, h11.ConnectionClosed):
                    raise LinkError("closed the connection")
        except h11.ProtocolError as exc:
            raise LinkError(f"answered broken HTTP ({exc})") from None
        except trio.BrokenResourceError:
            raise LinkError("unreachable (the connection broke)") from None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await trio.aclose_forcefully(conn.stream)
