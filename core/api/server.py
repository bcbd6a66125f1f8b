"""The API listener: an accept loop that caps open connections, does the TLS handshake
under the header deadline, remembers each TLS peer's certificate, and serves each
connection with core/api/http1.py (HTTP/1.1 on llhttp; hypercorn cost about 550 us of
CPU per request here).

hypercorn's Config still describes the listener (binds, TLS files, mTLS, timeouts):
`hanko serve` builds it in one place (core/cmd/wiring.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import partial
from typing import Any

import msgspec
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.utils import parse_socket_addr, repr_socket_addr

from core.api.http1 import App, Http1Connection


class ListenerStatistics(msgspec.Struct, frozen=True):
    open_connections: int
    max_connections: int
    accepted: int
    handshakes_failed: int


class PeerCertificates:
    """SHA-256 of the client certificate of each open TLS connection, by the client
    address the ASGI scope names (host, port)."""

    def __init__(self) -> None:
        self._by_client: dict[Any, bytes] = {}

    def __call__(self, scope: Mapping[str, Any]) -> bytes | None:
        client = scope.get("client")
        return None if client is None else self._by_client.get(tuple(client))

    def add(self, client: Any, digest: bytes) -> None:
        self._by_client[client] = digest

    def remove(self, client: Any) -> None:
        self._by_client.pop(client, None)


class _CappedListener(trio.abc.Listener[trio.abc.Stream]):
    """Accepts only while a connection slot is free: past the cap, clients wait in the
    kernel's backlog instead of taking file descriptors and memory."""

    def __init__(self, inner: trio.abc.Listener[Any], slots: trio.Semaphore) -> None:
        self._inner = inner
        self._slots = slots

    async def accept(self) -> trio.abc.Stream:
        await self._slots.acquire()
        try:
            stream: trio.abc.Stream = await self._inner.accept()
        except BaseException:
            self._slots.release()
            raise
        return stream

    async def aclose(self) -> None:
        await self._inner.aclose()


class ApiListener:
    def __init__(
        self,
        config: HypercornConfig,
        *,
        max_connections: int,
        peers: PeerCertificates,
        body_timeout: float = 30.0,
    ) -> None:
        self._config = config
        self._body_timeout = body_timeout
        self._max = max_connections
        self._slots = trio.Semaphore(max_connections)
        self.peers = peers
        self._accepted = 0
        self._failed_handshakes = 0

    async def run(
        self, app: Any, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        hc = self._config
        sockets = hc.create_sockets()
        ssl_context = hc.create_ssl_context()
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["http/1.1"])  # HTTP/1.1 only: core/api/http1.py
        listeners: list[trio.abc.Listener[Any]] = []
        binds = []
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
            sock.listen(hc.backlog)
            inner: trio.abc.Listener[Any] = trio.SocketListener(
                trio.socket.from_stdlib_socket(sock)
            )
            if ssl_context is not None:
                inner = trio.SSLListener(inner, ssl_context, https_compatible=True)
            listeners.append(_CappedListener(inner, self._slots))
            scheme = "https" if ssl_context is not None else "http"
            binds.append(f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}")
        task_status.started(binds)
        await trio.serve_listeners(partial(self._connection, app), listeners)

    async def _connection(self, app: App, stream: trio.abc.Stream) -> None:
        self._accepted += 1
        client = None
        try:
            if isinstance(stream, trio.SSLStream):
                try:
                    with trio.fail_after(self._config.ssl_handshake_timeout):
                        await stream.do_handshake()
                except (trio.BrokenResourceError, trio.TooSlowError):
                    self._failed_handshakes += 1
                    await trio.aclose_forcefully(stream)
                    return
                der = stream.getpeercert(binary_form=True)
                if der:
                    sock = stream.transport_stream.socket
                    client = parse_socket_addr(sock.family, sock.getpeername())
                    self.peers.add(client, hashlib.sha256(der).digest())
            sock = _socket_of(stream)
            connection = Http1Connection(
                stream,
                app,
                scheme="https" if isinstance(stream, trio.SSLStream) else "http",
                client=parse_socket_addr(sock.family, sock.getpeername()),
                server=parse_socket_addr(sock.family, sock.getsockname()),
                header_timeout=self._config.keep_alive_timeout,
                body_timeout=self._body_timeout,
            )
            await connection.run()
            await trio.aclose_forcefully(stream)
        finally:
            if client is not None:
                self.peers.remove(client)
            self._slots.release()

    def statistics(self) -> ListenerStatistics:
        return ListenerStatistics(
            open_connections=self._max - self._slots.value,
            max_connections=self._max,
            accepted=self._accepted,
            handshakes_failed=self._failed_handshakes,
        )


def _socket_of(stream: trio.abc.Stream) -> Any:
    inner: Any = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    return inner.socket
