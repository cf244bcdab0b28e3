"""Whether a stream's client still reads, from what its kernel has not acknowledged.

A send that the server buffers says nothing about the client: the server takes what it is
handed until its own buffers fill, long after the client stopped reading. The kernel's send
queue (SIOCOUTQ, Linux) counts the bytes the peer has not acknowledged, which it does within
a round trip of reading them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import deque
from collections.abc import Callable

from starlette.types import Message, Receive, Scope, Send

if sys.platform == "linux":  # where the kernel says what a peer has not acknowledged
    import fcntl
    import termios

# A chunk's framing (hex length, two CRLFs) and a response head's status line and the
# server's own headers, at most: what the server writes beyond the bytes handed to it.
_CHUNK_FRAMING = 16
_HEAD_EXTRA = 512
# Checks a heartbeat: a client stops being read from within two heartbeats and this part.
_CHECKS_PER_HEARTBEAT = 2


class ReaderWatch:
    """Whether the client reads, as its kernel's acknowledgements tell: checked twice a
    heartbeat, if more bytes are unacknowledged than were handed to the server in the last
    two heartbeats, some byte handed two heartbeats ago is still unread: ``give_up`` is
    called (two heartbeats to two and a half after the client stopped being able to take
    more).

    A client reading at any pace its network allows passes: its kernel acknowledges what
    arrives within a round trip. One that stops reading is seen once its receive buffer is
    full (from then, nothing it is sent is acknowledged), whatever the server buffers.
    Bytes handed are counted with their framing at most, so a miscount only errs towards
    keeping the stream.
    """

    def __init__(
        self, transport: asyncio.Transport, heartbeat_s: float, give_up: Callable[[str], None]
    ) -> None:
        self._transport = transport
        self._every_s = heartbeat_s / _CHECKS_PER_HEARTBEAT
        self._give_up = give_up
        self._handed = 0
        # Bytes handed at each check of the last two heartbeats, and at the one before.
        self._marks: deque[int] = deque([0], maxlen=2 * _CHECKS_PER_HEARTBEAT + 1)
        self._loop = asyncio.get_running_loop()
        self._check_at = self._loop.call_later(self._every_s, self._check)

    def handing(self, message: Message) -> None:
        """Count ``message`` as handed to the server (before it is: an over-count)."""
        if message["type"] == "http.response.start":
            head = message.get("headers", [])
            self._handed += _HEAD_EXTRA + sum(len(k) + len(v) + 4 for k, v in head)
        else:
            self._handed += len(message.get("body", b"")) + _CHUNK_FRAMING

    def _check(self) -> None:
        pending = unacknowledged(self._transport)
        if pending is None:
            return  # closing: nothing more will be sent
        self._marks.append(self._handed)
        handed_since = self._marks[-1] - self._marks[0]
        if len(self._marks) == self._marks.maxlen and pending > handed_since:
            self._give_up(f"{pending} bytes unacknowledged, two heartbeats old or more")
            return
        self._check_at = self._loop.call_later(self._every_s, self._check)

    def stop(self) -> None:
        self._check_at.cancel()


def tcp_transport(scope: Scope, receive: Receive, send: Send) -> asyncio.Transport | None:
    """The connection's transport, where its kernel can say what the client has not yet
    acknowledged: uvicorn's HTTP/1.x cycles (h11, httptools) hold it, and ``receive``
    reaches the app as the cycle's own method. None elsewhere (another server, HTTP/2,
    TLS, a Unix socket, not Linux), and the stream relies on its sends' timeouts alone."""
    if sys.platform != "linux" or scope.get("http_version") not in ("1.0", "1.1"):
        return None
    for channel in (receive, send):
        transport = getattr(getattr(channel, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "get_write_buffer_size"):
            break
    else:
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None  # the kernel would count TLS records, not the bytes handed
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return transport if unacknowledged(transport) is not None else None


def unacknowledged(transport: asyncio.Transport) -> int | None:
    """Bytes handed to ``transport`` that the peer has not acknowledged yet: those still in
    its buffer, and those in the kernel's send queue, sent or not (SIOCOUTQ)."""
    if transport.is_closing():
        return None  # its descriptor may be gone, or already another connection's
    try:
        queue = fcntl.ioctl(socket_of(transport).fileno(), termios.TIOCOUTQ, b"\0" * 4)
    except (OSError, ValueError):
        return None
    return int.from_bytes(queue, sys.byteorder, signed=True) + transport.get_write_buffer_size()


def socket_of(transport: asyncio.Transport) -> socket.socket:
    sock: socket.socket = transport.get_extra_info("socket")
    return sock
