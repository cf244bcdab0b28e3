"""Stream settings for tests: polls, freshness and heartbeats fast enough that a test sees
in a second what a deployment shows in a minute; and a raw socket client, for what an SSE
client library would not do (stop reading, read in bursts)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

FAST_STREAMS: dict[str, Any] = {
    "ticker_ttl_seconds": 0.2,
    "stream_interval_seconds": 0.2,
    "stream_min_interval_seconds": 0.1,
    "stream_heartbeat_seconds": 0.5,
    "stream_max_seconds": 30,
    "stream_retry_ms": 1500,
    "refresh_in_background": True,
}


def open_raw_stream(
    address: tuple[str, int], path: str, *, headers: str = "", rcvbuf: int = 0
) -> socket.socket:
    """A connection that has sent ``GET path`` (with ``headers``, each ending in CRLF) and
    read nothing yet; ``rcvbuf`` shrinks its receive buffer (before connecting, so that the
    window it offers is small too)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(address)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: proxy\r\n{headers}\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What arrives until ``marker`` has (and whatever came with it)."""
    received = b""
    while marker not in received:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the stream early")
        received += chunk
    return received


def closed_by_server(sock: socket.socket, *, within: float) -> bool:
    """Whether the server ends the connection within ``within`` seconds, what it had sent
    read first: the end of the stream (b"") or a reset."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        pass
    return False


def eventually(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Whether ``condition`` holds within ``within`` seconds, polled every 50 ms."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
