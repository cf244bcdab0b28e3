"""The SSE endpoints, served by the stream function (uvicorn under the Lambda Web Adapter)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from market_proxy import errors
from market_proxy.api.params import (
    ERRORS,
    Exchange,
    Market,
    Symbol,
    symbol_list,
    symbols_query,
)
from market_proxy.observability import count, logger
from market_proxy.settings import Settings
from market_proxy.streams import (
    EVENT_ID_PATTERN,
    MAX_EVENT_ID_LENGTH,
    MAX_SYMBOLS,
    StreamLimits,
    order_book_events,
    ticker_events,
)

if sys.platform == "linux":  # where the kernel says what a peer has not acknowledged
    import fcntl
    import termios

router = APIRouter()


def _event(name: str, data: str, *, with_id: bool) -> dict[str, Any]:
    """One kind of event, as the OpenAPI document describes a text/event-stream item."""
    return {
        "type": "object",
        "required": ["event", "data", *(["id"] if with_id else [])],
        "properties": {
            "event": {"const": name},
            "id": {"type": "string", "pattern": EVENT_ID_PATTERN},
            "retry": {"type": "integer", "minimum": 0},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{data}"},
            },
        },
    }


def _sse(name: str, schema: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a stream whose changes are ``name`` events holding a ``schema``."""
    return {
        200: {
            "description": (
                f"An event stream. Each event is described here: `{name}` when it changed, "
                "`problem` when a symbol cannot be refreshed for now, and `reconnect` last, "
                "before the time limit. Heartbeat comments fill silences."
            ),
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",  # one event, parsed (FastAPI would say "string")
                        "oneOf": [
                            _event(name, schema, with_id=True),
                            _event("problem", "StreamProblem", with_id=False),
                            _event("reconnect", "Reconnect", with_id=True),
                        ],
                    }
                }
            },
        }
    }


Interval = Annotated[
    float | None,
    Query(description="Seconds between polls of the cache (bounds: see the schema; default 1)"),
]
_EVENT_ID = "Resume after this event id; anything not an id this service sent means from scratch"
LastEventIdQuery = Annotated[
    str | None,
    Query(
        alias="last_event_id",
        description=f"{_EVENT_ID} (for clients that cannot send the Last-Event-ID header)",
        max_length=MAX_EVENT_ID_LENGTH,
    ),
]
LastEventIdHeader = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description=_EVENT_ID, max_length=MAX_EVENT_ID_LENGTH),
]


def limits(settings: Settings, interval: float | None) -> StreamLimits:
    low, high = settings.stream_min_interval_seconds, settings.stream_max_interval_seconds
    chosen = settings.stream_interval_seconds if interval is None else interval
    if not low <= chosen <= high:
        raise errors.InvalidParameter(
            "interval", f"interval must be {low} to {high} seconds", valid=f"{low}..{high}"
        )
    return StreamLimits(
        interval_s=chosen,
        heartbeat_s=settings.stream_heartbeat_seconds,
        max_duration_s=settings.stream_max_seconds,
        retry_ms=settings.stream_retry_ms,
    )


class EventStream(StreamingResponse):
    """``text/event-stream`` that no client can hold past the stream's time limit, nor for
    long once it stops reading.

    A client that stops reading is dropped once bytes sent two heartbeats ago are still
    unacknowledged by its kernel (:class:`_ReaderWatch`), which happens as soon as its
    receive buffer is full; the server's own buffers, megabytes, do not have to fill first.
    Where the kernel cannot be asked, a send may wait until the client missed two
    heartbeats. Nothing holds the stream past its time limit plus one heartbeat. An
    abandoned stream counts ``StreamsAbandoned`` and its connection is reset at once.
    Whatever ends the response, the events' generator is closed with it, so its work stops
    at once rather than whenever the garbage collector finds it.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[str, None], limits: StreamLimits) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events
        self._heartbeat_s = limits.heartbeat_s
        self._lifetime_s = limits.max_duration_s + limits.heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = _tcp_transport(scope, receive, send)
        stalled: list[str] = []
        watch: _ReaderWatch | None = None

        async def send_or_give_up(message: Message) -> None:
            if transport is not None and transport.is_closing():
                # Gone (a reset), and the server not told yet: a poll's events would all be
                # written to the lost connection. Nothing more, as uvicorn does once it knows.
                return
            if watch is not None:
                watch.handing(message)
            try:
                async with asyncio.timeout(2 * self._heartbeat_s):
                    await send(message)
            except TimeoutError:
                raise _ClientStalled from None

        try:
            async with asyncio.timeout(self._lifetime_s) as limit:

                def give_up(reason: str) -> None:
                    stalled.append(reason)
                    limit.reschedule(asyncio.get_running_loop().time())

                if transport is not None:
                    watch = _ReaderWatch(transport, self._heartbeat_s, give_up)
                await super().__call__(scope, receive, send_or_give_up)
        except _ClientStalled:
            await self._abandon(transport, receive, "a send waited two heartbeats")
        except TimeoutError:
            if not limit.expired():
                raise
            reason = stalled[0] if stalled else "past the time limit"
            await self._abandon(transport, receive, reason)
        finally:
            if watch is not None:
                watch.stop()
            await self._events.aclose()

    async def _abandon(
        self, transport: asyncio.Transport | None, receive: Receive, reason: str
    ) -> None:
        count("StreamsAbandoned")
        logger.warning("stream abandoned: the client stopped reading", extra={"reason": reason})
        if transport is None or transport.is_closing():
            return  # returning without finishing the response makes the server close it
        # What waits for this client is never read: reset, rather than let a close wait for
        # it to drain (forever) while holding the connection and its buffers; then let the
        # server see the connection go, so that it takes the unfinished response as a
        # disconnect, not as the app's mistake.
        with contextlib.suppress(OSError):
            _socket(transport).setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        transport.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._heartbeat_s):
                while (await receive())["type"] != "http.disconnect":
                    pass


class _ClientStalled(Exception):
    """A send waited longer than a reading client would have let it."""


# A chunk's framing (hex length, two CRLFs) and a response head's status line and the
# server's own headers, at most: what the server writes beyond the bytes handed to it.
_CHUNK_FRAMING = 16
_HEAD_EXTRA = 512
# Checks a heartbeat: a client stops being read from within two heartbeats and this part.
_CHECKS_PER_HEARTBEAT = 2


class _ReaderWatch:
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
        unacknowledged = _unacknowledged(self._transport)
        if unacknowledged is None:
            return  # closing: nothing more will be sent
        self._marks.append(self._handed)
        handed_since = self._marks[-1] - self._marks[0]
        if len(self._marks) == self._marks.maxlen and unacknowledged > handed_since:
            self._give_up(f"{unacknowledged} bytes unacknowledged, two heartbeats old or more")
            return
        self._check_at = self._loop.call_later(self._every_s, self._check)

    def stop(self) -> None:
        self._check_at.cancel()


def _tcp_transport(scope: Scope, receive: Receive, send: Send) -> asyncio.Transport | None:
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
    return transport if _unacknowledged(transport) is not None else None


def _unacknowledged(transport: asyncio.Transport) -> int | None:
    """Bytes handed to ``transport`` that the peer has not acknowledged yet: those still in
    its buffer, and those in the kernel's send queue, sent or not (SIOCOUTQ)."""
    if transport.is_closing():
        return None  # its descriptor may be gone, or already another connection's
    try:
        queue = fcntl.ioctl(_socket(transport).fileno(), termios.TIOCOUTQ, b"\0" * 4)
    except (OSError, ValueError):
        return None
    return int.from_bytes(queue, sys.byteorder, signed=True) + transport.get_write_buffer_size()


def _socket(transport: asyncio.Transport) -> socket.socket:
    sock: socket.socket = transport.get_extra_info("socket")
    return sock


@router.get(
    "/sse/ticker/{exchange}/{symbol:path}",
    response_class=EventStream,
    status_code=200,
    responses={**ERRORS, **_sse("ticker", "Ticker")},
    summary="Live ticker of one market (Server-Sent Events)",
)
async def sse_ticker(
    service: Market,
    exchange: Exchange,
    symbol: Symbol,
    interval: Interval = None,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
) -> EventStream:
    chosen = limits(service.settings, interval)
    events = await ticker_events(
        service, exchange, [symbol], chosen, last_event_id=last_event_id_header or last_event_id
    )
    return EventStream(events, chosen)


@router.get(
    "/sse/tickers/{exchange}",
    response_class=EventStream,
    status_code=200,
    responses={**ERRORS, **_sse("ticker", "Ticker")},
    summary="Live tickers of several markets (Server-Sent Events)",
)
async def sse_tickers(
    service: Market,
    exchange: Exchange,
    symbols: Annotated[str, symbols_query(MAX_SYMBOLS, "all in one stream")],
    interval: Interval = None,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
) -> EventStream:
    chosen = limits(service.settings, interval)
    events = await ticker_events(
        service,
        exchange,
        symbol_list(symbols, MAX_SYMBOLS),
        chosen,
        last_event_id=last_event_id_header or last_event_id,
    )
    return EventStream(events, chosen)


@router.get(
    "/sse/orderbook/{exchange}/{symbol:path}",
    response_class=EventStream,
    status_code=200,
    responses={**ERRORS, **_sse("orderbook", "OrderBook")},
    summary="Live top of one market's order book (Server-Sent Events)",
)
async def sse_order_book(
    service: Market,
    exchange: Exchange,
    symbol: Symbol,
    depth: Annotated[
        int | None,
        Query(description="Levels a side, 1 to ORDERBOOK_MAX_DEPTH (default 20)", ge=1),
    ] = None,
    interval: Interval = None,
    last_event_id: LastEventIdQuery = None,
    last_event_id_header: LastEventIdHeader = None,
) -> EventStream:
    chosen = limits(service.settings, interval)
    events = await order_book_events(
        service,
        exchange,
        symbol,
        depth,
        chosen,
        last_event_id=last_event_id_header or last_event_id,
    )
    return EventStream(events, chosen)
