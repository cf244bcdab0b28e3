"""The SSE endpoints, served by the stream function (uvicorn under the Lambda Web Adapter)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import StreamingResponse

from market_proxy import errors
from market_proxy.api.routes import ERRORS, Exchange, Market, Symbol
from market_proxy.settings import Settings
from market_proxy.streams import MAX_SYMBOLS, StreamLimits, ticker_events

router = APIRouter()
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An event stream"}
}
Interval = Annotated[
    float | None, Query(description="Seconds between polls of the cache (default 1)")
]
LastEventId = Annotated[
    str | None,
    Query(description="Resume after this event id (browsers send the Last-Event-ID header)"),
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


def stream(events: object) -> StreamingResponse:
    return StreamingResponse(
        events,  # type: ignore[arg-type]
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/sse/ticker/{exchange}/{symbol:path}",
    response_class=StreamingResponse,
    responses={**ERRORS, **_SSE},
    summary="Live ticker of one market (Server-Sent Events)",
)
async def sse_ticker(
    request: Request,
    service: Market,
    exchange: Exchange,
    symbol: Symbol,
    interval: Interval = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    events = await ticker_events(
        service,
        exchange,
        [symbol],
        limits(service.settings, interval),
        last_event_id=request.headers.get("last-event-id") or last_event_id,
    )
    return stream(events)


@router.get(
    "/sse/tickers/{exchange}",
    response_class=StreamingResponse,
    responses={**ERRORS, **_SSE},
    summary="Live tickers of several markets (Server-Sent Events)",
)
async def sse_tickers(
    request: Request,
    service: Market,
    exchange: Exchange,
    symbols: Annotated[
        str, Query(description=f"Comma-separated, at most {MAX_SYMBOLS}", max_length=1400)
    ],
    interval: Interval = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    wanted = list(dict.fromkeys(s.strip() for s in symbols.split(",") if s.strip()))
    if not 1 <= len(wanted) <= MAX_SYMBOLS:
        raise errors.InvalidParameter(
            "symbols", f"give 1 to {MAX_SYMBOLS} comma-separated symbols", valid=f"1..{MAX_SYMBOLS}"
        )
    events = await ticker_events(
        service,
        exchange,
        wanted,
        limits(service.settings, interval),
        last_event_id=request.headers.get("last-event-id") or last_event_id,
    )
    return stream(events)
