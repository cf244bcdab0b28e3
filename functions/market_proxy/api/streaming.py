"""The SSE endpoints, served by the stream function (uvicorn under the Lambda Web Adapter)."""

from __future__ import annotations

import asyncio
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
    """``text/event-stream`` that no client can hold past the stream's time limit.

    uvicorn holds back a send while the client's connection is full, so what waits in memory
    stays bounded; but a client that never reads would then keep the stream, its task and
    its connection forever. Here a send may wait until the client missed two heartbeats, and
    never past the time limit plus one heartbeat; after that the stream is abandoned and its
    connection closed. Whatever ends the response, the events' generator is closed with it,
    so its work stops at once rather than whenever the garbage collector finds it.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[str, None], limits: StreamLimits) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events
        self._stall_s = 2 * limits.heartbeat_s
        self._lifetime_s = limits.max_duration_s + limits.heartbeat_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._lifetime_s

        async def send_or_give_up(message: Message) -> None:
            wait = min(self._stall_s, give_up_at - loop.time())
            try:
                async with asyncio.timeout(max(0.0, wait)):
                    await send(message)
            except TimeoutError:
                raise _ClientStalled from None

        try:
            await super().__call__(scope, receive, send_or_give_up)
        except _ClientStalled:
            # Returning without finishing the response makes the server close the connection.
            count("StreamsAbandoned")
            logger.warning("stream abandoned: the client stopped reading")
        finally:
            await self._events.aclose()


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
