"""The API listener: an accept loop that caps open connections, in all and per client
address, does the TLS handshake under the header deadline, remembers each TLS peer's
certificate, and serves each connection with core/api/http1_io.py (HTTP/1.1 on llhttp;
hypercorn cost about 550 us of CPU per request here), every connection's bodies within
one buffer budget.

Two operations for the service's signals: `reload` swaps the TLS context (new
handshakes get the new certificate, open connections keep theirs) and the deadlines;
`drain` stops accepting, lets every request under way finish and be answered, closes
idle keep-alive connections, and returns when none is left or its time is up.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import msgspec
import trio

from core.api.http1 import Limits
from core.api.http1_io import AdmittingApp, BufferBudget, Http1Server
from core.base.errors import HankoError
from core.base.tls import server_context


class ListenerSettings(msgspec.Struct, frozen=True):
    host: str
    port: int
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None  # set: a client certificate from this CA is required
    max_connections: int = 1000
    # One client address holds at most this many of them (0: no cap of its own).
    max_connections_per_client: int = 64
    header_timeout: float = 10.0  # also the TLS handshake's and the keep-alive idle limit
    body_timeout: float = 30.0
    max_header: int = 16 << 10
    # Request bodies held by all connections at once; past it reading pauses.
    max_buffered: int = 64 << 20
    backlog: int = 1024
    setting: str = "api.listen"  # the configuration key errors name


class ListenerStatistics(msgspec.Struct, frozen=True):
    open_connections: int
    max_connections: int
    accepted: int
    handshakes_failed: int
    refused_per_client: int  # connections closed at once: their address was at its cap
    buffered_bytes: int
    buffered_peak: int
    draining: bool
    tls_reloads: int


class ListenError(HankoError):
    code = "listen_failed"


def tls_context(settings: ListenerSettings) -> ssl.SSLContext | None:
    """The server's TLS context from the files `settings` names (None: plain HTTP).
    A file that cannot be read or a key that does not match is one HankoError."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ctx = server_context()
    ctx.set_alpn_protocols(["http/1.1"])  # HTTP/1.1 only: core/api/http1.py
    try:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.client_ca is not None:
            ctx.load_verify_locations(settings.client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise HankoError(
            f"api TLS: cannot load {settings.tls_cert}, {settings.tls_key}"
            f"{' or ' + settings.client_ca if settings.client_ca else ''}: {exc}",
            code="tls_files",
        ) from None
    return ctx


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


def _address(sock: Any, peer: bool) -> tuple[str, int]:
    addr = sock.getpeername() if peer else sock.getsockname()
    return (str(addr[0]), int(addr[1]))


class ApiListener:
    def __init__(self, settings: ListenerSettings, *, peers: PeerCertificates) -> None:
        self._settings = settings
        self._tls = tls_context(settings)  # refused here, before anything starts
        self._slots = trio.Semaphore(settings.max_connections)
        self._max = settings.max_connections
        self._per_client_cap = settings.max_connections_per_client
        self._per_client: dict[str, int] = {}
        self._budget = BufferBudget(settings.max_buffered)
        self.peers = peers
        self._accepted = 0
        self._open = 0
        self._refused_per_client = 0
        self._failed_handshakes = 0
        self._reloads = 0
        self._draining = False
        self._accepting: trio.CancelScope | None = None
        self._connections: set[Http1Server] = set()
        self._idle_now = trio.Event()
        # Bound now: a port in use is refused before anything else starts.
        self._sock = self._bind()

    def draining(self) -> bool:
        return self._draining

    def _bind(self) -> socket.socket:
        s = self._settings
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((s.host, s.port))
            sock.listen(s.backlog)
        except OSError as exc:
            sock.close()
            raise ListenError(
                f"{s.setting}: cannot listen on {s.host}:{s.port}: {exc.strerror}"
            ) from None
        return sock

    async def run(
        self,
        app: AdmittingApp,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        sock = self._sock
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        host, port = _address(sock, peer=False)
        scheme = "https" if self._tls is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        async with trio.open_nursery() as connections:
            with trio.CancelScope() as self._accepting:
                task_status.started([f"{scheme}://{shown}:{port}"])
                while True:
                    await self._slots.acquire()
                    try:
                        stream = await listener.accept()
                    except BaseException:
                        self._release()
                        raise
                    address = _address(stream.socket, peer=True)[0]
                    if not self._admit_client(address):
                        self._refused_per_client += 1
                        await trio.aclose_forcefully(stream)
                        self._release()
                        continue
                    connections.start_soon(self._connection, app, stream, address)
            # Draining: no new connection; the nursery waits for the open ones.
            await listener.aclose()

    def _admit_client(self, address: str) -> bool:
        """Count a connection from `address`; False when it holds its cap already."""
        held = self._per_client.get(address, 0)
        if self._per_client_cap and held >= self._per_client_cap:
            return False
        self._per_client[address] = held + 1
        return True

    def _leave_client(self, address: str) -> None:
        held = self._per_client.get(address, 0) - 1
        if held > 0:
            self._per_client[address] = held
        else:
            self._per_client.pop(address, None)

    async def _connection(
        self, app: AdmittingApp, transport: trio.SocketStream, address: str
    ) -> None:
        self._accepted += 1
        self._open += 1
        client = _address(transport.socket, peer=True)
        server = _address(transport.socket, peer=False)
        stream: trio.abc.Stream = transport
        certified = False
        try:
            if self._tls is not None:
                tls = trio.SSLStream(transport, self._tls, server_side=True, https_compatible=True)
                stream = tls
                try:
                    with trio.fail_after(self._settings.header_timeout):
                        await tls.do_handshake()
                except (trio.BrokenResourceError, trio.TooSlowError):
                    self._failed_handshakes += 1
                    await trio.aclose_forcefully(stream)
                    return
                der = tls.getpeercert(binary_form=True)
                if der:
                    self.peers.add(client, hashlib.sha256(der).digest())
                    certified = True
            settings = self._settings
            connection = Http1Server(
                stream,
                app,
                scheme="https" if self._tls is not None else "http",
                client=client,
                server=server,
                limits=Limits(
                    max_header=settings.max_header,
                    header_timeout=settings.header_timeout,
                    body_timeout=settings.body_timeout,
                ),
                budget=self._budget,
                draining=self.draining,
            )
            self._connections.add(connection)
            try:
                await connection.run()
            finally:
                self._connections.discard(connection)
            await trio.aclose_forcefully(stream)
        finally:
            if certified:
                self.peers.remove(client)
            self._leave_client(address)
            self._open -= 1
            self._release()

    def _release(self) -> None:
        self._slots.release()
        if self._draining and self._slots.value == self._max:
            self._idle_now.set()

    @property
    def tls(self) -> bool:
        return self._tls is not None

    def reload(self, settings: ListenerSettings) -> None:
        """New TLS files (read again even under the same names: a renewed certificate)
        and deadlines for connections from now on; open ones keep what they have. The
        address and the connection cap need a restart. A TLS file that cannot be
        loaded raises and keeps the old context."""
        old = self._settings
        if (settings.tls_cert is None) != (old.tls_cert is None):
            raise HankoError(
                "api.tls_cert: switching TLS on or off needs a restart", code="reload_refused"
            )
        if self._tls is not None:
            self._tls = tls_context(settings)
            self._reloads += 1
        self._settings = msgspec.structs.replace(
            settings,
            host=old.host,
            port=old.port,
            max_connections=old.max_connections,
            max_buffered=old.max_buffered,
        )
        self._per_client_cap = settings.max_connections_per_client

    async def drain(self, timeout: float) -> bool:
        """Stop accepting and wait for every request under way; True if all finished
        within `timeout` seconds."""
        self._draining = True
        if self._accepting is not None:
            self._accepting.cancel()
        for connection in list(self._connections):
            connection.close_if_idle()
        with trio.move_on_after(timeout):
            await self._idle_now.wait()
            return True
        return False

    def statistics(self) -> ListenerStatistics:
        return ListenerStatistics(
            open_connections=self._open,
            max_connections=self._max,
            accepted=self._accepted,
            handshakes_failed=self._failed_handshakes,
            refused_per_client=self._refused_per_client,
            buffered_bytes=self._budget.used,
            buffered_peak=self._budget.peak,
            draining=self._draining,
            tls_reloads=self._reloads,
        )
