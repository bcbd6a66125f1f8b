"""Hostile clients for tests/core/api/test_hostile_clients.py, in a process of their own
so that their CPU does not slow the test's own probes: N TLS connections, each from one
of several loopback source addresses, each sending a request head and then a large
body (or trickling one), on trio. Prints one JSON line: how the server answered.

    python -m tests.core.api.flood_child HOST PORT CAFILE MODE N SOURCES
MODE: "length" (Content-Length: 4 MiB, then the body), "chunked" (4 MiB in chunks),
"slow" (Content-Length: 1000, one byte a second until the server closes).
"""

from __future__ import annotations

import json
import ssl
import sys
from collections import Counter

import trio

BODY = 4 << 20
CHUNK = 64 << 10
PATH = "/acme/new-order"


async def one(
    host: str, port: int, ctx: ssl.SSLContext, mode: str, source: str, seen: Counter[str]
) -> None:
    try:
        tcp = await trio.open_tcp_stream(host, port, local_address=source)
    except OSError:
        seen["connect_failed"] += 1
        return
    stream = trio.SSLStream(tcp, ctx, server_hostname="localhost")
    try:
        with trio.fail_after(60):
            await stream.do_handshake()
            if mode == "chunked":
                framing = b"Transfer-Encoding: chunked"
            else:
                framing = b"Content-Length: %d" % (1000 if mode == "slow" else BODY)
            await stream.send_all(
                b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/jose+json\r\n" + framing + b"\r\n\r\n"
            )
            await send_body(stream, mode)
            answer = await stream.receive_some(4096)
            seen[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        seen["closed"] += 1
    except trio.TooSlowError:
        seen["timeout"] += 1
    finally:
        await trio.aclose_forcefully(stream)


async def send_body(stream: trio.SSLStream[trio.SocketStream], mode: str) -> None:
    chunk = b"x" * CHUNK
    if mode == "slow":
        for _ in range(1000):
            await stream.send_all(b"x")
            await trio.sleep(1)
        return
    sent = 0
    while sent < BODY:
        if mode == "chunked":
            await stream.send_all(b"%x\r\n" % CHUNK + chunk + b"\r\n")
        else:
            await stream.send_all(chunk)
        sent += CHUNK
    if mode == "chunked":
        await stream.send_all(b"0\r\n\r\n")


async def main(host: str, port: int, cafile: str, mode: str, n: int, sources: list[str]) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    seen: Counter[str] = Counter()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, host, port, ctx, mode, sources[i % len(sources)], seen)
            if i % 50 == 49:
                await trio.sleep(0.01)  # the kernel's accept backlog, not the server, sets pace
    print(json.dumps(dict(seen)), flush=True)


if __name__ == "__main__":
    host, port, cafile, mode, n, sources = sys.argv[1:7]
    trio.run(main, host, int(port), cafile, mode, int(n), sources.split(","))
