"""The peers `hanko bench ocsp` runs beside hanko's responder on the same responses:
Go's `cfssl ocspserve` and nginx serving them as static files; and the wrk script and
checks every server gets."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.wrk import run_wrk
from core.base.errors import HankoError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lua(path: Path, requests: list[tuple[str, bytes]]) -> None:
    """A wrk script cycling through prepared requests: (path, POST body or b"").

    Every request names its Host: scripts are loaded before wrk knows the URL, and Go
    and nginx rightly refuse HTTP/1.1 without one (hanko's responder does not ask)."""
    lines = ["local reqs = {}", "local h = {['Host']='127.0.0.1'}"]
    post_headers = "{['Host']='127.0.0.1', ['Content-Type']='application/ocsp-request'}"
    for target, body in requests:
        if body:
            lines.append(
                f"reqs[#reqs+1] = wrk.format('POST', {json.dumps(target)}, {post_headers},"
                f" ({json.dumps(body.hex())}):gsub('..', function(x)"
                " return string.char(tonumber(x, 16)) end))"
            )
        else:
            lines.append(f"reqs[#reqs+1] = wrk.format('GET', {json.dumps(target)}, h)")
    lines += [
        "local i = 0",
        "function request()",
        "  i = i % #reqs + 1",
        "  return reqs[i]",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HankoError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise HankoError(f"{what} did not listen on {port}")


def check(url: str, method: str, body: bytes, want: bytes) -> None:
    """Each server must answer the sample with the stored bytes before it is timed."""
    r = (
        httpx.post(url, content=body, headers={"Content-Type": "application/ocsp-request"})
        if method == "POST"
        else httpx.get(url)
    )
    if r.status_code != 200 or r.content != want:
        raise HankoError(f"{url[:60]}: {r.status_code}, not the stored response")


def check_all(
    url: str, reqs: list[tuple[bytes, bytes, bytes]], target: Any, method: str = "GET"
) -> None:
    for serial, der, want in reqs[:500]:
        check(url + target(serial, der), method, der if method == "POST" else b"", want)


def cfssl(
    workdir: Path, reqs: list[tuple[bytes, bytes, bytes]], connections: int, seconds: float
) -> dict[str, dict[str, float]]:
    if shutil.which("cfssl") is None:
        raise HankoError("cfssl is not installed: run scripts/dev.sh setup (golang-cfssl)")
    responses = workdir / "cfssl-responses"
    responses.write_text("".join(base64.b64encode(r).decode() + "\n" for _, _, r in reqs))
    port = free_port()
    proc = subprocess.Popen(
        [
            "cfssl",
            "ocspserve",
            "-address",
            "127.0.0.1",
            "-port",
            str(port),
            "-responses",
            str(responses),
            "-loglevel",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "cfssl ocspserve")
        url = f"http://127.0.0.1:{port}"
        # Debian's cfssl (1.2.0+git20160825) keeps the leading "/" of a GET path in the
        # base64 it decodes, so every GET is a 400: it is compared on POST only.
        check_all(url, reqs, lambda s, d: "/", "POST")
        post = workdir / "cfssl-post.lua"
        lua(post, [("/", d) for _, d, _ in reqs])
        return {"cfssl POST": run_wrk(url, post, connections=connections, seconds=seconds)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def nginx(
    workdir: Path, reqs: list[tuple[bytes, bytes, bytes]], connections: int, seconds: float
) -> dict[str, dict[str, float]]:
    root = workdir / "nginx"
    files = root / "r"
    files.mkdir(parents=True)
    # nginx workers drop root for "nobody": the files must be world-readable.
    for folder in (workdir, root, files):
        folder.chmod(0o755)
    for serial, _, resp in reqs:
        (files / f"{serial.hex()}.der").write_bytes(resp)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / d).mkdir()
    port = free_port()
    processes = os.cpu_count() or 1
    conf = root / "nginx.conf"
    conf.write_text(f"""
worker_processes {processes};
pid {root}/nginx.pid;
error_log {root}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
    sendfile on; tcp_nopush on; open_file_cache max=100000;
    types {{ application/ocsp-response der; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root};
        location /r/ {{ expires 3d; etag on; }}
    }}
}}
""")
    proc = subprocess.Popen(
        ["nginx", "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "nginx")
        url = f"http://127.0.0.1:{port}"
        check_all(url, reqs, lambda s, d: f"/r/{s.hex()}.der")
        get = workdir / "nginx-get.lua"
        lua(get, [(f"/r/{s.hex()}.der", b"") for s, _, _ in reqs])
        return {"nginx GET": run_wrk(url, get, connections=connections, seconds=seconds)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
