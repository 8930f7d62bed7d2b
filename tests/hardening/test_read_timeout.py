"""Slow clients hold no connection (slowloris): with MUG_READ_TIMEOUT_S=2, connections that
send nothing, send half their headers or trickle an upload's body are closed by the server
within seconds (30 trickling uploads and 10 half-sent requests were all still held after
45 s), while /healthz answers throughout and a normal upload still succeeds."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import WRITE, WRITE_TOKEN, Server, start_server

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("read-timeout"), workers=0,
                       env={"MUG_READ_TIMEOUT_S": str(TIMEOUT_S)})
    yield srv
    srv.stop()


def _connect(server: Server, first: bytes) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    if first:
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Keep trickling one byte a second (if asked) until the server closes; True if it did
    within 6 timeouts."""
    deadline = time.monotonic() + 6 * TIMEOUT_S
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            if trickle:
                sock.sendall(trickle)
            data = sock.recv(65536)
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_slow_clients_are_cut_off(server: Server, tiny_mosi_pkl: Path) -> None:
    upload_head = (b"POST /v1/datasets?name=slow HTTP/1.1\r\nHost: x\r\n"
                   b"Authorization: Bearer " + WRITE_TOKEN.encode() + b"\r\n"
                   b"Content-Type: multipart/form-data; boundary=b\r\n"
                   b"Content-Length: 1000000\r\n\r\n--b\r\nContent-Disposition: form-data; "
                   b'name="file"; filename="x.pkl"\r\n\r\n\x80\x04')
    silent = [_connect(server, b"") for _ in range(10)]
    half_head = b"GET /v1/datasets HTTP/1.1\r\nHost: x\r\nX-Slow: "
    half = [_connect(server, half_head) for _ in range(10)]
    trickling = [_connect(server, upload_head) for _ in range(10)]
    start = time.monotonic()
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    for sock in silent + half:
        assert _closed_by_server(sock), "a silent or half-sent request was still held"
    for sock in trickling:
        assert _closed_by_server(sock, trickle=b"\x00"), "a trickling upload was still held"
    assert time.monotonic() - start < 8 * TIMEOUT_S
    for sock in silent + half + trickling:
        sock.close()
    with httpx.Client(base_url=server.url, headers=WRITE, timeout=60) as c, \
            open(tiny_mosi_pkl, "rb") as f:
        r = c.post("/v1/datasets", params={"name": "fast"}, files={"file": ("m.pkl", f)})
    assert r.status_code == 201, r.text
    assert list((server.store / "uploads").glob("*")) == []
