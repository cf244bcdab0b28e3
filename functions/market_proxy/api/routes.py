"""The HTTP endpoints. Each adapts a request to one call of the MarketData service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from market_proxy import errors
from market_proxy.api import problems, schemas
from market_proxy.api.rendering import json_response, render
from market_proxy.service import MarketData

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.Problem, "content": {problems.PROBLEM_JSON: {}}}
    for status in (400, 404, 422, 429, 501, 502, 503, 504)
}
Exchange = Annotated[
    str, Path(description="A ccxt exchange id from the allow-list, e.g. binance", max_length=32)
]
Symbol = Annotated[
    str,
    Path(
        description="BTC/USDT, BTC-USDT, BTC_USDT, BTC/USDT:USDT, or the exchange's id (BTCUSDT)",
        max_length=64,
    ),
]


def market(request: Request) -> MarketData:
    service: MarketData = request.app.state.market
    return service


Market = Annotated[MarketData, Depends(market)]


@router.get(
    "/ticker/{exchange}/{symbol:path}",
    response_model=schemas.Ticker,
    responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)"}},
    summary="The latest ticker of one market",
)
async def ticker(request: Request, service: Market, exchange: Exchange, symbol: Symbol) -> Response:
    return render(request, await service.ticker(exchange, symbol))


@router.get(
    "/historical/{exchange}/{symbol:path}",
    response_model=schemas.Candles,
    responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)"}},
    summary="OHLCV candles of one market",
)
async def historical(
    request: Request,
    service: Market,
    exchange: Exchange,
    symbol: Symbol,
    timeframe: Annotated[
        str, Query(description="One of the exchange's timeframes (see /exchanges)", max_length=8)
    ] = "1h",
    since: Annotated[
        str | None,
        Query(description="First candle's open time: epoch ms or ISO 8601", max_length=40),
    ] = None,
    until: Annotated[
        str | None,
        Query(description="End of the range, exclusive: epoch ms or ISO 8601", max_length=40),
    ] = None,
    limit: Annotated[int | None, Query(description="How many candles", ge=1)] = None,
) -> Response:
    answer = await service.candles(
        exchange,
        symbol,
        timeframe=timeframe,
        since=parse_time("since", since),
        until=parse_time("until", until),
        limit=limit,
    )
    return render(request, answer)


@router.get("/exchanges", response_model=schemas.Exchanges, summary="The served exchanges")
async def exchanges(service: Market) -> Response:
    return json_response(
        {"exchanges": service.exchanges()}, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(
    "/health", response_model=schemas.Health, summary="Liveness; deep=true checks the table"
)
async def health(service: Market, deep: bool = False) -> Response:
    report = await service.health(deep=deep)
    return json_response(report, headers={"Cache-Control": "no-store"})


@router.get("/problems", summary="Every problem code this service answers with")
async def problem_types() -> Response:
    return json_response({"problems": problems.describe()})


def parse_time(parameter: str, value: str | None) -> int | None:
    """Epoch milliseconds from ``value`` given as epoch milliseconds or ISO 8601."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isdigit():
        stamp = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            stamp = -1
        else:
            if moment.tzinfo is None:
                raise errors.InvalidParameter(
                    parameter, f"{parameter} needs a time zone, e.g. 2024-01-01T00:00:00Z"
                )
            stamp = int(moment.timestamp() * 1000)
    if not 0 <= stamp < 10**13:
        raise errors.InvalidParameter(
            parameter,
            f"{parameter} must be epoch milliseconds or ISO 8601",
            valid="e.g. 1704067200000 or 2024-01-01T00:00:00Z",
        )
    return stamp
