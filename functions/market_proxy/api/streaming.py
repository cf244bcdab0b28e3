"""The SSE endpoints, served by the stream function (uvicorn under the Lambda Web Adapter)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncGenerator
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
from market_proxy.api.readers import ReaderWatch, socket_of, tcp_transport, unacknowledged
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
    unacknowledged by its kernel (:class:`ReaderWatch`), which happens as soon as its
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
        transport = tcp_transport(scope, receive, send)
        stalled: list[str] = []
        watch: ReaderWatch | None = None
        started: list[bool] = []

        async def send_or_give_up(message: Message) -> None:
            if transport is not None and transport.is_closing():
                # Gone (a reset), and the server not told yet: a poll's events would all be
                # written to the lost connection. Nothing more, as uvicorn does once it knows.
                return
            if watch is not None:
                watch.handing(message)
            if message["type"] == "http.response.start":
                started.append(True)
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
                    watch = ReaderWatch(transport, self._heartbeat_s, give_up)
                await super().__call__(scope, receive, send_or_give_up)
        except _ClientStalled:
            await self._abandon(transport, receive, "a send waited two heartbeats")
        except TimeoutError:
            if not limit.expired():
                raise
            # Past the time limit with nothing saying the client stopped reading (its events
            # were late, a busy loop) and all it was sent acknowledged: the response ends as
            # any does. Else the connection is reset, as for a client that stopped reading.
            caught_up = transport is not None and unacknowledged(transport) == 0
            if stalled or not started or not caught_up or not await self._finish(send):
                await self._abandon(transport, receive, stalled[0] if stalled else "past its time")
        finally:
            if watch is not None:
                watch.stop()
            await self._events.aclose()

    async def _finish(self, send: Send) -> bool:
        """End the response (its last chunk), unless that waits on the client."""
        try:
            async with asyncio.timeout(self._heartbeat_s):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (TimeoutError, OSError, RuntimeError):
            return False
        count("StreamsEndedLate")
        return True

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
            socket_of(transport).setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        transport.abort()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._heartbeat_s):
                while (await receive())["type"] != "http.disconnect":
                    pass


class _ClientStalled(Exception):
    """A send waited longer than a reading client would have let it."""


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
